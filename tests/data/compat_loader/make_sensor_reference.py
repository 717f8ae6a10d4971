"""Writes sensors_mitsuba.json: rays of Mitsuba 3.9.1's (scalar_rgb)
``orthographic`` and ``thinlens`` sensors for given film and aperture samples.
Run with Mitsuba installed: ``python tests/data/compat_loader/make_sensor_reference.py``.
"""
import json
import os

import mitsuba as mi

mi.set_variant("scalar_rgb")
T = mi.ScalarTransform4f
FILM = {"type": "hdrfilm", "width": 100, "height": 50}
CROP = {**FILM, "crop_offset_x": 10, "crop_offset_y": 5, "crop_width": 30, "crop_height": 20}
LOOK = {"origin": [1, 2, 3], "target": [0, 0, 0], "up": [0, 0, 1]}
SENSORS = {
    "ortho": {"type": "orthographic", "near_clip": 0.5, "far_clip": 20.0, "film": FILM,
              "to_world": T().look_at(**LOOK) @ T().scale([2.0, 2.0, 1.0])},
    "ortho_crop": {"type": "orthographic", "film": CROP},
    "thinlens": {"type": "thinlens", "aperture_radius": 0.2, "focus_distance": 4.0,
                 "fov": 60.0, "near_clip": 0.5, "film": FILM, "to_world": T().look_at(**LOOK)},
    "thinlens_default_fov": {"type": "thinlens", "aperture_radius": 0.1, "film": FILM},
    "thinlens_crop": {"type": "thinlens", "aperture_radius": 0.1, "focus_distance": 2.0,
                      "fov": 45.0, "fov_axis": "y", "film": CROP},
}
SAMPLES = [((0.5, 0.5), (0.5, 0.5)), ((0.5, 0.5), (1.0, 0.5)), ((0.0, 0.0), (0.8, 0.3)),
           ((0.3, 0.7), (0.1, 0.9)), ((1.0, 0.25), (0.35, 0.6))]


def dump(v):
    return [float(x) for x in v]


out = {}
for name, d in SENSORS.items():
    s = mi.load_dict(d)
    rays = []
    for pos, ap in SAMPLES:
        r, _ = s.sample_ray(0.0, 0.5, pos, ap)
        rays.append({"film": pos, "aperture": ap, "o": dump(r.o), "d": dump(r.d),
                     "maxt": float(r.maxt)})
    out[name] = rays
with open(os.path.join(os.path.dirname(__file__), "sensors_mitsuba.json"), "w") as fh:
    json.dump({"mitsuba": mi.__version__, "look_at": LOOK, "rays": out}, fh, indent=1)
