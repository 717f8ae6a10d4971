"""Regenerate lumigrad's named-conductor table (core/fresnel.py CONDUCTOR_TABLE) and the
Mitsuba check data of tests/test_compat_bugs.py (needs Mitsuba 3, an optional tool).

Mitsuba 3's RGB variants turn a named conductor's measured spectra (``data/ior/<name>.
{eta,k}.spd``: refractiveindex.info / Palik's handbook data as distributed with
Mitsuba) into RGB with the *illuminant* quadrature (no D65 weighting, no clamping above
1), unlike a spectrum given as a file or a list. This script applies lumigrad's own
converter (``lumigrad.scene.spectra.spectrum_to_rgb``) that way and prints the table; it
also writes the values Mitsuba's ``traverse`` reports to ``conductors_mitsuba.json``.

    python tests/data/compat/make_conductor_table.py > /tmp/table.py
"""
import json
import os
from pathlib import Path

import numpy as np

from lumigrad.scene.spectra import read_spd, spectrum_to_rgb

import mitsuba as mi  # noqa: E402  (the reference; never imported by the package)

mi.set_variant("llvm_ad_rgb")
IOR = Path(os.path.dirname(mi.__file__)) / "data" / "ior"
names = sorted({f.name.split(".")[0] for f in IOR.glob("*.eta.spd")
                if (IOR / f.name.replace(".eta.", ".k.")).exists()}, key=str.lower)
mi.set_log_level(mi.LogLevel.Error)   # (out-of-gamut warnings would mix with the table)
ref, rows = {}, []
for n in names:
    rgb = [spectrum_to_rgb(*read_spd(IOR / f"{n}.{c}.spd"), illuminant=True, bounded=False)
           for c in ("eta", "k")]
    fmt = lambda t: "(" + ", ".join(f"{x:.5g}" for x in t) + ")"  # noqa: E731
    rows.append(f'    "{n}": ({fmt(rgb[0])}, {fmt(rgb[1])}),')
    p = mi.traverse(mi.load_dict({"type": "conductor", "material": n}))
    ref[n] = [np.array(p["eta.value"]).ravel().tolist(), np.array(p["k.value"]).ravel().tolist()]
print("CONDUCTOR_TABLE = {")
print('    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),')
print("\n".join(rows))
print("}")
(Path(__file__).parent / "conductors_mitsuba.json").write_text(json.dumps(ref, indent=0))
