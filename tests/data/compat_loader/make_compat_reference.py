"""Renders compat_scene.xml with Mitsuba 3.9.1 (scalar_rgb) at 4096 samples per
pixel and writes compat_scene_ref.npy (float32, H x W x 3), and compat_moment.xml
(the same with the moment integrator) at 4096 spp into compat_moment_ref.npy
(H x W x 9). Run with Mitsuba
installed: ``python tests/data/compat_loader/make_compat_reference.py``."""
import os

import mitsuba as mi
import numpy as np

mi.set_variant("scalar_rgb")  # (the LLVM variants crash on this LLVM, see docs/drjit-pitfalls.md)
here = os.path.dirname(os.path.abspath(__file__))
scene = mi.load_file(os.path.join(here, "compat_scene.xml"), spp=4096)
img = np.array(mi.render(scene, seed=7), dtype=np.float32)
np.save(os.path.join(here, "compat_scene_ref.npy"), img)
print(img.shape, img.reshape(-1, 3).mean(axis=0))
scene = mi.load_file(os.path.join(here, "compat_moment.xml"), spp=4096)
img = np.array(mi.render(scene, seed=11), dtype=np.float32)
np.save(os.path.join(here, "compat_moment_ref.npy"), img)
print(img.shape, img.reshape(-1, img.shape[-1]).mean(axis=0))
