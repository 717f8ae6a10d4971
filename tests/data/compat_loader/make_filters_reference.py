"""Renders filters_scene.xml with Mitsuba 3.9.1 (scalar_rgb) at 16384 spp for the
filters with negative lobes and writes filters_<name>_ref.npy (float32, 16 x 24
x 3). Run with Mitsuba installed:
``python tests/data/compat_loader/make_filters_reference.py``."""
import os

import mitsuba as mi
import numpy as np

mi.set_variant("scalar_rgb")
here = os.path.dirname(os.path.abspath(__file__))
for name in ("mitchell", "catmullrom", "lanczos"):
    scene = mi.load_file(os.path.join(here, "filters_scene.xml"), filter=name, spp=16384)
    img = np.array(mi.render(scene, seed=5), dtype=np.float32)
    np.save(os.path.join(here, f"filters_{name}_ref.npy"), img)
    print(name, img.shape, img.reshape(-1, 3).mean(axis=0), img.min())
