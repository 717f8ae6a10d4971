"""Spectra in scene files, converted to linear sRGB as Mitsuba 3's RGB variants do.

lumigrad renders in RGB. A spectrum given as wavelength:value pairs
(``<spectrum value="400:0.3, 500:0.6"/>``), read from an ``.spd`` file, or a
black body (``<blackbody temperature="3000K"/>``, ``{'type': 'blackbody'}``) is
turned into one RGB colour when the scene is loaded:

1. the spectrum ``S(λ)`` is the piecewise-linear interpolant of the pairs,
   zero outside the first and last wavelength given;
2. it is integrated against the CIE 1931 colour matching functions
   ``x̄, ȳ, z̄`` over 360–830 nm (the tables in :mod:`.cie_tables`, linearly
   interpolated) with Mitsuba's quadrature: a sum over 1000 evenly spaced
   wavelengths (so a narrow spectrum counts as the samples it covers):

   * an **illuminant** (a value inside an ``<emitter>``):
     ``XYZ = ∫ S (x̄, ȳ, z̄) dλ / ∫ ȳ dλ`` — an equal-energy spectrum of 1 has
     ``XYZ = (1, 1, 1)``;
   * a **reflectance** (anything else): the surface is seen under D65, sRGB's
     white, ``XYZ = ∫ S D65 (x̄, ȳ, z̄) dλ / ∫ D65 ȳ dλ``, so a flat spectrum
     ``S = c`` is the grey ``(c, c, c)``;

3. ``XYZ`` becomes linear sRGB with the Rec. 709 matrix (IEC 61966-2-1);
   colours outside the gamut are clamped: negative components to 0 and, for
   reflectances, components above 1 to 1 (Mitsuba warns and clamps alike) —
   except for a conductor's ``eta`` and ``k``, converted as reflectances but
   not clamped above (:data:`UNBOUNDED_PROPERTIES`, as Mitsuba does).

This is the behaviour Mitsuba 3.9.1's RGB variants show for the same input
(measured; ``tests/test_compat_loader.py`` compares with values it printed).
The black body is Planck's law in W / (m² sr nm),
``B(λ, T) = 2 h c² / λ⁵ / (exp(h c / (λ k T)) − 1)``, times ``scale``, converted
as an illuminant (Mitsuba 3's RGB variants cannot render a black body at all;
Mitsuba 0.6 scenes use it for emitters).
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from . import cie_tables as _t

__all__ = ["spectrum_to_rgb", "blackbody_rgb", "parse_wavelength_pairs", "read_spd",
           "XYZ_TO_SRGB"]

#: CIE XYZ -> linear sRGB (Rec. 709 primaries, D65 white; IEC 61966-2-1)
XYZ_TO_SRGB = np.array([[3.240479, -1.537150, -0.498535],
                        [-0.969256, 1.875991, 0.041556],
                        [0.055648, -0.204043, 1.057311]])

_GRID = np.arange(360.0, 830.0 + 0.5, 1.0)  # 1 nm integration grid


def _tables_on_grid() -> tuple[np.ndarray, np.ndarray]:
    wl = _t.WAVELENGTH_MIN + _t.WAVELENGTH_STEP * np.arange(len(_t.CIE_Y))
    cmf = np.stack([np.interp(_GRID, wl, np.asarray(c, dtype=np.float64))
                    for c in (_t.CIE_X, _t.CIE_Y, _t.CIE_Z)], axis=1)
    d65 = np.interp(_GRID, wl, np.asarray(_t.CIE_D65, dtype=np.float64))
    return cmf, d65


_CMF, _D65 = _tables_on_grid()
# Trapezoidal weights of the grid.
_W = np.full(len(_GRID), 1.0)
_W[[0, -1]] = 0.5
#: exact integrals of the (interpolated) tables: ∫ ȳ dλ and ∫ D65 ȳ dλ
_Y_INTEGRAL = float(_W @ _CMF[:, 1])
_D65_Y_INTEGRAL = float((_W * _D65) @ _CMF[:, 1])
# Mitsuba's quadrature: 1000 wavelengths spread evenly over [360, 830] (ends
# included); the weights that reproduce its values are the spacing 470/999 for
# illuminants and 470/1000 for reflectances (to 1e-6 and 1e-4).
_SAMPLES = np.linspace(360.0, 830.0, 1000)
_STEP_ILLUMINANT = 470.0 / 999.0
_STEP_REFLECTANCE = 470.0 / 1000.0
_CMF_S = np.stack([np.interp(_SAMPLES, _GRID, _CMF[:, i]) for i in range(3)], axis=1)
_D65_S = np.interp(_SAMPLES, _GRID, _D65)


#: properties whose spectra are not reflectances in [0, 1] (a conductor's complex
#: index of refraction): converted like reflectances but not clamped above 1
UNBOUNDED_PROPERTIES = ("eta", "k")


def spectrum_to_rgb(wavelengths: Sequence[float], values: Sequence[float],
                    illuminant: bool, bounded: bool = True) -> tuple[float, float, float]:
    """Linear sRGB of the piecewise-linear spectrum through ``(wavelengths,
    values)`` (nm, increasing), as an illuminant or as a reflectance (see the
    module docstring); ``bounded = False`` (an index of refraction such as a
    conductor's ``eta`` and ``k``) keeps components above 1."""
    wl = np.asarray(wavelengths, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if wl.ndim != 1 or wl.shape != v.shape or len(wl) < 1:
        raise ValueError("a spectrum needs as many wavelengths as values")
    if not (np.all(np.isfinite(wl)) and np.all(np.isfinite(v))):
        raise ValueError("a spectrum's wavelengths and values must be finite")
    if len(wl) > 1 and np.any(np.diff(wl) <= 0):
        raise ValueError("a spectrum's wavelengths must increase")
    if np.any(wl <= 0):
        raise ValueError("wavelengths must be positive (nm)")
    # Mitsuba's quadrature (module docstring): the spectrum at 1000 evenly spaced
    # wavelengths of [360, 830], zero outside [λ_0, λ_n].
    inside = (_SAMPLES >= wl[0]) & (_SAMPLES <= wl[-1])
    sx = np.where(inside, np.interp(_SAMPLES, wl, v), 0.0)
    if illuminant:
        xyz = (sx * _STEP_ILLUMINANT) @ _CMF_S / _Y_INTEGRAL
    else:
        xyz = (sx * _D65_S * _STEP_REFLECTANCE) @ _CMF_S / _D65_Y_INTEGRAL
    rgb = XYZ_TO_SRGB @ xyz
    rgb = np.clip(rgb, 0.0, 1.0) if bounded and not illuminant else np.maximum(rgb, 0.0)
    return tuple(float(c) for c in rgb)  # type: ignore[return-value]


def planck(wavelength_nm: np.ndarray, temperature: float) -> np.ndarray:
    """Black-body spectral radiance in W / (m² sr nm) (Planck's law)."""
    h, c, k = 6.62607015e-34, 2.99792458e8, 1.380649e-23
    lam = np.asarray(wavelength_nm, dtype=np.float64) * 1e-9
    with np.errstate(over="ignore"):
        return 2 * h * c * c / lam ** 5 / np.expm1(h * c / (lam * k * temperature)) * 1e-9


def blackbody_rgb(temperature: float, scale: float = 1.0) -> tuple[float, float, float]:
    """Linear sRGB radiance of a black body at ``temperature`` kelvin, times ``scale``."""
    t = float(temperature)
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"the black-body temperature must be positive (kelvin), got {temperature!r}")
    return spectrum_to_rgb(_GRID, planck(_GRID, t) * float(scale), illuminant=True)


def parse_wavelength_pairs(text: str) -> tuple[list[float], list[float]]:
    """``"400:0.3, 500:0.6"`` -> ``([400, 500], [0.3, 0.6])`` (ValueError if malformed)."""
    wl, vals = [], []
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.split(":")
        if len(parts) != 2:
            raise ValueError(f"{item!r} is not a wavelength:value pair")
        try:
            wl.append(float(parts[0]))
            vals.append(float(parts[1]))
        except ValueError:
            raise ValueError(f"cannot parse {item!r} as wavelength:value numbers") from None
    if not wl:
        raise ValueError("the spectrum lists no wavelength:value pair")
    return wl, vals


def read_spd(path: str) -> tuple[list[float], list[float]]:
    """A spectrum file as Mitsuba reads it: one ``wavelength value`` pair per
    line (nm), ``#`` starts a comment."""
    if not os.path.exists(path):
        raise ValueError(f"spectrum file {path!r} not found")
    wl, vals = [], []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.replace(",", " ").split()
            try:
                a, b = (float(x) for x in parts)
            except ValueError:
                raise ValueError(f"{path}:{n}: expected 'wavelength value', got "
                                 f"{line[:40]!r}") from None
            wl.append(a)
            vals.append(b)
    if not wl:
        raise ValueError(f"spectrum file {path!r} holds no wavelength/value pair")
    return wl, vals
