"""Writes spot_mitsuba.json: Mitsuba 3.9.1's (scalar_rgb) direct-illumination
weight of a ``spot`` emitter (intensity / distance² times its falloff) at
points around it. Run with Mitsuba installed:
``python tests/data/compat_loader/make_spot_reference.py``.
"""
import json
import math
import os

import mitsuba as mi

mi.set_variant("scalar_rgb")

T = mi.ScalarTransform4f
LIGHT = {"type": "spot", "intensity": {"type": "rgb", "value": [1.0, 2.0, 3.0]},
         "cutoff_angle": 30.0, "beam_width": 10.0,
         "to_world": T().look_at(origin=[1, 2, 3], target=[1, 2, 0], up=[0, 1, 0])}
em = mi.load_dict(LIGHT)
points = []
for deg in (0.0, 5.0, 9.9, 10.5, 15.0, 20.0, 25.0, 29.5, 30.5, 60.0):
    r = 2.0 + deg / 30.0
    a = math.radians(deg)
    points.append([1.0 + r * math.sin(a), 2.0, 3.0 - r * math.cos(a)])
weights = []
for p in points:
    it = mi.Interaction3f()
    it.p = mi.ScalarPoint3f(p)
    ds, w = em.sample_direction(it, mi.Point2f(0.5, 0.5))
    weights.append([float(x) for x in w])
with open(os.path.join(os.path.dirname(__file__), "spot_mitsuba.json"), "w") as fh:
    json.dump({"mitsuba": mi.__version__, "light": {"intensity": [1, 2, 3],
               "cutoff_angle": 30.0, "beam_width": 10.0, "origin": [1, 2, 3],
               "target": [1, 2, 0], "up": [0, 1, 0]},
               "points": points, "weights": weights}, fh, indent=1)
