"""Writes spectra_mitsuba.json: the RGB values Mitsuba 3.9.1's RGB variant
(scalar_rgb) gives wavelength-list spectra, as a reflectance (a diffuse BSDF's
``reflectance``) and as an illuminant (an area emitter's ``radiance``).

Run with Mitsuba installed (an optional tool, not a dependency of lumigrad):
``python tests/data/compat_loader/make_spectra_reference.py``.
"""
import json
import os

import mitsuba as mi
import numpy as np

mi.set_variant("scalar_rgb")

rng = np.random.default_rng(7)
smooth_wl = np.arange(400, 701, 10)
CASES = {
    "flat": [(360, 1.0), (830, 1.0)],
    "four_points": [(400, 0.3), (500, 0.6), (600, 0.2), (700, 0.9)],
    "ramp": [(450, 0.2), (650, 0.4)],
    "narrow_box": [(550, 1.0), (560, 1.0)],
    "smooth_10nm": [(float(w), float(v)) for w, v in
                    zip(smooth_wl, 0.5 + 0.4 * np.sin(smooth_wl / 37.0))],
    "random_20nm": [(float(w), float(v)) for w, v in
                    zip(np.arange(380, 781, 20), rng.uniform(0.05, 0.95, 21))],
}


def as_reflectance(v):
    b = mi.load_dict({"type": "diffuse", "reflectance": {"type": "spectrum", "value": v}})
    return list(map(float, mi.traverse(b)["reflectance.value"]))


def as_illuminant(v):
    s = mi.load_dict({"type": "scene", "r": {"type": "rectangle", "emitter": {
        "type": "area", "radiance": {"type": "spectrum", "value": v}}}})
    return list(map(float, mi.traverse(s)["r.emitter.radiance.value"]))


out = {name: {"spectrum": v, "reflectance": as_reflectance(v), "illuminant": as_illuminant(v)}
       for name, v in CASES.items()}
with open(os.path.join(os.path.dirname(__file__), "spectra_mitsuba.json"), "w") as fh:
    json.dump({"mitsuba": mi.__version__, "variant": "scalar_rgb", "cases": out}, fh, indent=1)
