"""Writes spot_texture_mitsuba.json: Mitsuba 3.9.1's (scalar_rgb) weights of a
``spot`` emitter with a projected bitmap ``texture`` (bilinear) at points around
it. Run with Mitsuba installed:
``python tests/data/compat_loader/make_spot_texture_reference.py``.
"""
import json
import os

import mitsuba as mi
import numpy as np

mi.set_variant("scalar_rgb")
T = mi.ScalarTransform4f
rng = np.random.default_rng(5)
img = rng.uniform(0.1, 1.0, (3, 5, 3)).astype(np.float32)
LOOK = {"origin": [0.5, -1.0, 2.0], "target": [0.0, 0.0, 0.0], "up": [0.0, 0.0, 1.0]}
em = mi.load_dict({"type": "spot", "cutoff_angle": 35.0, "beam_width": 20.0, "intensity": 3.0,
                   "to_world": T().look_at(**LOOK),
                   "texture": {"type": "bitmap", "bitmap": mi.Bitmap(img), "raw": True}})
m = np.array(T().look_at(**LOOK).matrix, dtype=np.float64)
points = [(m @ np.array([x, y, z, 1.0]))[:3].tolist()
          for x, y, z in [(0.1, 0.2, 1.0), (-0.3, 0.1, 1.5), (0.2, -0.25, 0.8), (0.0, 0.0, 2.0),
                          (-0.5, -0.4, 1.2), (0.35, 0.3, 1.1)]]
weights = []
for p in points:
    it = mi.Interaction3f()
    it.p = mi.ScalarPoint3f(p)
    _, w = em.sample_direction(it, mi.Point2f(0.5, 0.5))
    weights.append([float(x) for x in w])
with open(os.path.join(os.path.dirname(__file__), "spot_texture_mitsuba.json"), "w") as fh:
    json.dump({"mitsuba": mi.__version__, "image": img.tolist(), "look_at": LOOK,
               "cutoff_angle": 35.0, "beam_width": 20.0, "intensity": 3.0,
               "points": points, "weights": weights}, fh, indent=1)
