"""Writes projector_mitsuba.json: Mitsuba 3.9.1's (scalar_rgb) direct-illumination
weight of a ``projector`` emitter projecting a small random image, at points
around it (texel centres, points between texels, outside the frustum).
Run with Mitsuba installed: ``python tests/data/compat_loader/make_projector_reference.py``.
"""
import json
import math
import os

import mitsuba as mi
import numpy as np

mi.set_variant("scalar_rgb")
T = mi.ScalarTransform4f
rng = np.random.default_rng(3)
img = rng.uniform(0.1, 1.0, (4, 8, 3)).astype(np.float32)
LOOK = {"origin": [0.5, -1.0, 2.0], "target": [0.0, 0.0, 0.0], "up": [0.0, 0.0, 1.0]}
em = mi.load_dict({"type": "projector", "fov": 50.0, "scale": 1.5,
                   "to_world": T().look_at(**LOOK),
                   "irradiance": {"type": "bitmap", "bitmap": mi.Bitmap(img), "raw": True}})
to_world = np.array(T().look_at(**LOOK).matrix, dtype=np.float64)
tx = math.tan(math.radians(25.0))
ty = tx * 4 / 8
points = []
for (u, v, z) in [(0.5 / 8, 0.5 / 4, 1.0), (3.5 / 8, 1.5 / 4, 2.0), (7.5 / 8, 3.5 / 4, 1.5),
                  (0.3, 0.6, 2.5), (0.71, 0.33, 1.2), (0.5, 0.5, 3.0), (1.2, 0.5, 1.0),
                  (0.5, -0.1, 1.0)]:
    q = np.array([(0.5 - u) * 2 * tx * z, (0.5 - v) * 2 * ty * z, z, 1.0])
    points.append((to_world @ q)[:3].tolist())
weights = []
for p in points:
    it = mi.Interaction3f()
    it.p = mi.ScalarPoint3f(p)
    _, w = em.sample_direction(it, mi.Point2f(0.5, 0.5))
    weights.append([float(x) for x in w])
with open(os.path.join(os.path.dirname(__file__), "projector_mitsuba.json"), "w") as fh:
    json.dump({"mitsuba": mi.__version__, "image": img.tolist(), "fov": 50.0, "scale": 1.5,
               "look_at": LOOK, "points": points, "weights": weights}, fh, indent=1)
