"""Fresnel equations, refraction, and tables of indices of refraction.

Conventions (as in the BSDFs, local shading frame, normal = +Z):

* ``eta`` is the *relative* index of refraction of the interface,
  ``eta = n_interior / n_exterior``; the exterior is the side the normal points to.
* ``cos_theta_i > 0``: the incident direction lies outside; ``< 0``: inside
  (the relative index seen by the ray is then ``1 / eta``).

Formulas: Born & Wolf, *Principles of Optics*, ch. 1.5 (dielectrics) and
ch. 14 (absorbing media, complex index ``eta + i k``); the conductor form used
here is the standard closed form for unpolarised light, e.g. Pharr, Jakob &
Humphreys, *Physically Based Rendering* 3rd ed., section 8.2.1.

Every kernel-side function is written so that it never produces NaN or inf
(grazing angles, ``cos = 0``, total internal reflection, ``eta = 1``), and its
derivatives stay finite too: denominators are replaced *before* dividing in the
lanes where they vanish, so reverse-mode AD never multiplies a zero adjoint by
an infinite partial derivative.
"""
from __future__ import annotations

import math
from typing import Any

import drjit as dr
import numpy as np

from .. import backend as bk

# ---------------------------------------------------------------------------
# Dielectric Fresnel
# ---------------------------------------------------------------------------


def fresnel_dielectric(cos_theta_i: Any, eta: Any) -> tuple[Any, Any, Any, Any]:
    """Unpolarised Fresnel reflectance of a smooth dielectric interface.

    With ``c_i = |cos θ_i|`` and the relative index seen by the ray
    ``η_it = η_t / η_i`` (``eta`` from outside, ``1/eta`` from inside), Snell's
    law gives ``sin²θ_t = (1 - c_i²) / η_it²``; the amplitude coefficients are

        r_s = (c_i - η_it c_t) / (c_i + η_it c_t),
        r_p = (η_it c_i - c_t) / (η_it c_i + c_t),

    and ``F = (r_s² + r_p²) / 2``; ``F = 1`` under total internal reflection.

    Returns ``(F, cos_theta_t, eta_it, eta_ti)``: ``cos_theta_t`` is signed like
    the transmitted direction's z (opposite to ``cos_theta_i``; 0 under total
    internal reflection), ``eta_it = η_t/η_i`` and ``eta_ti = 1/eta_it``.
    """
    outside = cos_theta_i >= 0
    inv_eta = dr.rcp(eta)
    eta_it = dr.select(outside, eta, inv_eta)
    eta_ti = dr.select(outside, inv_eta, eta)

    ci = dr.minimum(dr.abs(cos_theta_i), 1.0)
    sin2_t = dr.square(eta_ti) * (1.0 - dr.square(ci))
    tir = sin2_t >= 1.0
    ct = dr.safe_sqrt(1.0 - sin2_t)

    # Replace the inputs in TIR lanes (where both c_i and c_t may be 0) so the
    # divisions below stay finite in value and derivative.
    ci_s = dr.select(tir, 1.0, ci)
    ct_s = dr.select(tir, 1.0, ct)
    rs = (ci_s - eta_it * ct_s) / (ci_s + eta_it * ct_s)
    rp = (eta_it * ci_s - ct_s) / (eta_it * ci_s + ct_s)
    f = dr.select(tir, 1.0, 0.5 * (dr.square(rs) + dr.square(rp)))

    cos_theta_t = dr.select(outside, -ct, ct)
    cos_theta_t = dr.select(tir, 0.0, cos_theta_t)
    return f, cos_theta_t, eta_it, eta_ti


def refract(wi: Any, cos_theta_t: Any, eta_ti: Any, m: Any = None) -> Any:
    """Refract ``wi`` (pointing away from the surface) through the microfacet normal ``m``.

    ``cos_theta_t`` and ``eta_ti`` come from :func:`fresnel_dielectric` evaluated
    with ``dot(wi, m)``. The result ``wo = m (η_ti (wi·m) + cos θ_t) - η_ti wi``
    points away from the surface on the other side (unit length when not TIR).
    With ``m = None`` the macro normal +Z is used.
    """
    if m is None:
        return bk.Array3f(-eta_ti * wi[0], -eta_ti * wi[1], cos_theta_t)
    return dr.fma(m, dr.fma(dr.dot(wi, m), eta_ti, cos_theta_t), -wi * eta_ti)


def reflect_about(wi: Any, m: Any) -> Any:
    """Mirror ``wi`` about the (unit) microfacet normal ``m``: ``2 (wi·m) m - wi``."""
    return dr.fma(m, 2.0 * dr.dot(wi, m), -wi)


# ---------------------------------------------------------------------------
# Conductor Fresnel
# ---------------------------------------------------------------------------


def _safe_ratio(num: Any, den: Any, fallback: float) -> Any:
    ok = den > 0
    return dr.select(ok, num / dr.select(ok, den, 1.0), fallback)


def fresnel_conductor(cos_theta_i: Any, eta: Any, k: Any) -> Any:
    """Unpolarised Fresnel reflectance of a conductor with complex index ``eta + i k``
    (relative to the exterior medium), for light arriving from outside.

    With ``c = cos θ``, ``s² = 1 - c²`` and ``a² + b² = sqrt((η² - k² - s²)² + 4η²k²)``,
    ``a² = ((a² + b²) + η² - k² - s²) / 2``:

        R_s = (a² + b² - 2ac + c²) / (a² + b² + 2ac + c²)
        R_p = R_s (c²(a² + b²) - 2acs² + s⁴) / (c²(a² + b²) + 2acs² + s⁴)

    and ``F = (R_s + R_p) / 2``. For ``k = 0`` this equals
    :func:`fresnel_dielectric` with ``eta``. ``eta``/``k`` may be ``Color3f``.
    """
    c = dr.clip(cos_theta_i, 0.0, 1.0)
    c2 = dr.square(c)
    s2 = 1.0 - c2
    n2 = dr.square(eta)
    k2 = dr.square(k)
    t0 = n2 - k2 - s2
    a2b2 = dr.safe_sqrt(dr.square(t0) + 4.0 * n2 * k2)
    a = dr.safe_sqrt(0.5 * (a2b2 + t0))
    t1 = a2b2 + c2
    t2 = 2.0 * a * c
    rs = _safe_ratio(t1 - t2, t1 + t2, 1.0)
    t3 = c2 * a2b2 + dr.square(s2)
    t4 = t2 * s2
    rp = rs * _safe_ratio(t3 - t4, t3 + t4, 1.0)
    return 0.5 * (rs + rp)


# ---------------------------------------------------------------------------
# Load-time (numpy) versions and hemispherical averages
# ---------------------------------------------------------------------------


def fresnel_dielectric_np(cos_theta_i: np.ndarray, eta: float) -> np.ndarray:
    """numpy twin of :func:`fresnel_dielectric` (reflectance only, float64)."""
    c = np.asarray(cos_theta_i, dtype=np.float64)
    eta_it = np.where(c >= 0, eta, 1.0 / eta)
    ci = np.minimum(np.abs(c), 1.0)
    sin2_t = (1.0 - ci * ci) / (eta_it * eta_it)
    tir = sin2_t >= 1.0
    ct = np.sqrt(np.maximum(1.0 - sin2_t, 0.0))
    ci_s = np.where(tir, 1.0, ci)
    ct_s = np.where(tir, 1.0, ct)
    rs = (ci_s - eta_it * ct_s) / (ci_s + eta_it * ct_s)
    rp = (eta_it * ci_s - ct_s) / (eta_it * ci_s + ct_s)
    return np.where(tir, 1.0, 0.5 * (rs * rs + rp * rp))


def fresnel_diffuse_reflectance(eta: float, n: int = 256) -> float:
    """Hemispherical (cosine-weighted) average of the Fresnel reflectance,

        F_dr(η) = ∫_{H²} F(cos θ, η) cos θ dω / π = 2 ∫_0^1 F(μ, η) μ dμ,

    for light arriving from the side where the relative index is ``eta``
    (``eta < 1``: from inside a denser medium; large part totally reflected).
    Computed by Gauss–Legendre quadrature, split at the critical angle where
    ``F`` has a kink, so the result is accurate to ~1e-7 (not a fitted formula).
    """
    eta = float(eta)
    if not (eta > 0 and math.isfinite(eta)):
        raise ValueError(f"fresnel_diffuse_reflectance: eta must be positive and finite, got {eta}")
    x, w = np.polynomial.legendre.leggauss(n)
    if eta < 1.0:
        mu_c = math.sqrt(max(0.0, 1.0 - eta * eta))  # below mu_c: total internal reflection
        # [0, mu_c]: F = 1 -> contributes mu_c^2 exactly
        lo, hi = mu_c, 1.0
        mu = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
        part = 0.5 * (hi - lo) * np.sum(w * fresnel_dielectric_np(mu, eta) * mu)
        return float(mu_c * mu_c + 2.0 * part)
    mu = 0.5 * x + 0.5
    return float(2.0 * 0.5 * np.sum(w * fresnel_dielectric_np(mu, eta) * mu))


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------

#: Indices of refraction (visible range, ~589 nm) of common media, from standard
#: handbook values (CRC Handbook of Chemistry and Physics; Schott for BK7). The
#: same names Mitsuba 3 accepts for ``int_ior`` / ``ext_ior``.
IOR_TABLE: dict[str, float] = {
    "vacuum": 1.0,
    "helium": 1.000036,
    "hydrogen": 1.000132,
    "air": 1.000277,
    "carbon dioxide": 1.00045,
    "water": 1.3330,
    "acetone": 1.36,
    "ethanol": 1.361,
    "carbon tetrachloride": 1.461,
    "glycerol": 1.4729,
    "benzene": 1.501,
    "silicone oil": 1.52045,
    "bromine": 1.661,
    "water ice": 1.31,
    "fused quartz": 1.458,
    "pyrex": 1.470,
    "acrylic glass": 1.49,
    "polypropylene": 1.49,
    "bk7": 1.5046,
    "glass": 1.5046,
    "sodium chloride": 1.544,
    "amber": 1.55,
    "pet": 1.5750,
    "diamond": 2.419,
}


def resolve_ior(value: Any, where: str) -> float:
    """An index of refraction given as a number or a name of :data:`IOR_TABLE`.

    Raises ``ValueError`` naming ``where`` for unknown names and non-positive
    or non-finite numbers.
    """
    if isinstance(value, str):
        key = value.strip().lower().replace("_", " ").replace("-", " ")
        if key not in IOR_TABLE:
            import difflib

            close = difflib.get_close_matches(key, IOR_TABLE.keys(), n=3)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            raise ValueError(f"{where}: unknown index of refraction {value!r}{hint}; known "
                             f"names: {', '.join(sorted(IOR_TABLE))}")
        return IOR_TABLE[key]
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: expected a number or a material name, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{where}: index of refraction must be positive and finite, got {value!r}")
    return v


#: Complex indices of refraction ``(eta, k)`` of the conductors Mitsuba 3 names, as
#: linear RGB, relative to vacuum. Each is the measured spectrum (refractiveindex.info /
#: E. D. Palik, "Handbook of Optical Constants of Solids"; P. B. Johnson and R. W.
#: Christy, Phys. Rev. B 6, 4370 (1972) for the noble metals; as distributed in
#: Mitsuba's ``data/ior``) converted the way Mitsuba 3's RGB variants convert a named
#: material: the illuminant quadrature of :func:`lumigrad.scene.spectra.spectrum_to_rgb`
#: (no D65 weighting, negative components set to 0, none clamped at 1). The values were
#: computed with lumigrad's converter by ``tests/data/compat/make_conductor_table.py``,
#: which also checks them against Mitsuba 3.9.1 (``conductors_mitsuba.json``). A spectrum
#: given as a file or list is converted as a reflectance instead (Mitsuba does so too).
#: ``none`` is Mitsuba's ideal mirror (η = 0, k = 1 gives F = 1 at every angle).
CONDUCTOR_TABLE: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "a-C": ((2.944, 2.2271, 1.9682), (0.88747, 0.7993, 0.81529)),
    "Ag": ((0.15528, 0.11673, 0.13839), (4.8284, 3.1222, 2.1469)),
    "Al": ((1.6575, 0.88041, 0.52124), (9.2238, 6.2695, 4.837)),
    "AlAs": ((3.6053, 3.2329, 2.2163), (0.00067944, 0, 0.0075127)),
    "AlAs_palik": ((3.6053, 3.2329, 2.2163), (0.00067944, 0, 0.0075127)),
    "AlSb": ((0, 4.1394, 4.6693), (0, 0.094009, 1.3006)),
    "AlSb_palik": ((0, 4.1394, 4.6693), (0, 0.094009, 1.3006)),
    "Au": ((0.14304, 0.37531, 1.442), (3.983, 2.3856, 1.6034)),
    "Be": ((4.185, 3.185, 2.7841), (3.8355, 3.0101, 2.869)),
    "Be_palik": ((4.185, 3.185, 2.7841), (3.8355, 3.0101, 2.869)),
    "Cr": ((4.3697, 2.9165, 1.6549), (5.2066, 4.2313, 3.7547)),
    "CsI": ((2.1449, 1.7023, 1.6624), (0, 0, 0)),
    "CsI_palik": ((2.1449, 1.7023, 1.6624), (0, 0, 0)),
    "Cu": ((0.20101, 0.92375, 1.1022), (3.9133, 2.453, 2.1421)),
    "Cu2O": ((3.5518, 2.9499, 2.7519), (0.11421, 0.1939, 0.60613)),
    "Cu2O_palik": ((3.5518, 2.9499, 2.7519), (0.11421, 0.1939, 0.60613)),
    "Cu_palik": ((0.21323, 0.91972, 1.1024), (3.9219, 2.4573, 2.1366)),
    "CuO": ((3.2475, 2.4478, 2.2102), (0.52109, 0.57003, 0.72218)),
    "CuO_palik": ((3.2475, 2.4478, 2.2102), (0.52109, 0.57003, 0.72218)),
    "d-C": ((2.7087, 2.3188, 2.2289), (0, 0, 0)),
    "d-C_palik": ((2.7087, 2.3188, 2.2289), (0, 0, 0)),
    "Hg": ((2.3989, 1.44, 0.90957), (6.3276, 4.3719, 3.4218)),
    "Hg_palik": ((2.3989, 1.44, 0.90957), (6.3276, 4.3719, 3.4218)),
    "HgTe": ((4.779, 3.2312, 2.6599), (1.6316, 1.5808, 1.7293)),
    "HgTe_palik": ((4.779, 3.2312, 2.6599), (1.6316, 1.5808, 1.7293)),
    "Ir": ((3.0863, 2.0822, 1.6179), (5.5922, 4.0671, 3.2673)),
    "Ir_palik": ((3.0863, 2.0822, 1.6179), (5.5922, 4.0671, 3.2673)),
    "K": ((0.064043, 0.04641, 0.038185), (2.1042, 1.3489, 0.91313)),
    "K_palik": ((0.064043, 0.04641, 0.038185), (2.1042, 1.3489, 0.91313)),
    "Li": ((0.26579, 0.19562, 0.22095), (3.5402, 2.3111, 1.6686)),
    "Li_palik": ((0.26579, 0.19562, 0.22095), (3.5402, 2.3111, 1.6686)),
    "MgO": ((2.0896, 1.6507, 1.5949), (4.3327e-12, 0, 2.4986e-11)),
    "MgO_palik": ((2.0896, 1.6507, 1.5949), (4.3327e-12, 0, 2.4986e-11)),
    "Mo": ((4.484, 3.5251, 2.7763), (4.1114, 3.4208, 3.1506)),
    "Mo_palik": ((4.484, 3.5251, 2.7763), (4.1114, 3.4208, 3.1506)),
    "Na_palik": ((0.060269, 0.056141, 0.061988), (3.1793, 2.1125, 1.579)),
    "Nb": ((3.4201, 2.7901, 2.3956), (3.4414, 2.7377, 2.5797)),
    "Nb_palik": ((3.4201, 2.7901, 2.3956), (3.4414, 2.7377, 2.5797)),
    "Ni_palik": ((2.3673, 1.6634, 1.4671), (4.4988, 3.0502, 2.3454)),
    "Rh": ((2.5858, 1.8602, 1.5543), (6.7823, 4.703, 3.9761)),
    "Rh_palik": ((2.5858, 1.8602, 1.5543), (6.7823, 4.703, 3.9761)),
    "Se": ((4.0583, 2.8429, 2.8209), (0.75405, 0.63844, 0.52181)),
    "Se-e": ((5.7229, 4.1657, 4.0813), (0.87114, 1.1052, 1.5653)),
    "Se-e_palik": ((5.7229, 4.1657, 4.0813), (0.87114, 1.1052, 1.5653)),
    "Se_palik": ((4.0583, 2.8429, 2.8209), (0.75405, 0.63844, 0.52181)),
    "SiC": ((3.1723, 2.526, 2.4794), (7.5377e-07, 0, 1.0193e-05)),
    "SiC_palik": ((3.1723, 2.526, 2.4794), (7.5377e-07, 0, 1.0193e-05)),
    "SnTe": ((4.5243, 1.9816, 1.2816), (0, 0, 0)),
    "SnTe_palik": ((4.5243, 1.9816, 1.2816), (0, 0, 0)),
    "Ta": ((2.0627, 2.3929, 2.6279), (2.4084, 1.7415, 1.947)),
    "Ta_palik": ((2.0627, 2.3929, 2.6279), (2.4084, 1.7415, 1.947)),
    "Te": ((7.3902, 4.4821, 2.6371), (3.256, 3.5271, 3.2921)),
    "Te-e": ((7.5089, 4.2964, 2.37), (5.5839, 4.9472, 3.9976)),
    "Te-e_palik": ((7.5089, 4.2964, 2.37), (5.5839, 4.9472, 3.9976)),
    "Te_palik": ((7.3902, 4.4821, 2.6371), (3.256, 3.5271, 3.2921)),
    "ThF4": ((1.8307, 1.4422, 1.3876), (0, 0, 0)),
    "ThF4_palik": ((1.8307, 1.4422, 1.3876), (0, 0, 0)),
    "TiC": ((3.7005, 2.8374, 2.5823), (3.2656, 2.3516, 2.1728)),
    "TiC_palik": ((3.7005, 2.8374, 2.5823), (3.2656, 2.3516, 2.1728)),
    "TiN": ((1.6485, 1.1505, 1.3798), (3.3683, 1.9435, 1.1021)),
    "TiN_palik": ((1.6485, 1.1505, 1.3798), (3.3683, 1.9435, 1.1021)),
    "TiO2": ((3.4566, 2.8017, 2.9052), (0.00010526, 0, 0.00065289)),
    "TiO2-e": ((3.1066, 2.5132, 2.5824), (2.9752e-05, 0, 0.0001827)),
    "TiO2-e_palik": ((3.1066, 2.5132, 2.5824), (2.9752e-05, 0, 0.0001827)),
    "TiO2_palik": ((3.4566, 2.8017, 2.9052), (0.00010526, 0, 0.00065289)),
    "V_palik": ((4.2776, 3.513, 2.7611), (3.4913, 2.8895, 3.1115)),
    "VC": ((3.6576, 2.7527, 2.5327), (3.0683, 2.1987, 1.9632)),
    "VC_palik": ((3.6576, 2.7527, 2.5327), (3.0683, 2.1987, 1.9632)),
    "VN": ((2.8656, 2.1192, 1.9401), (3.0322, 2.0561, 1.6163)),
    "VN_palik": ((2.8656, 2.1192, 1.9401), (3.0322, 2.0561, 1.6163)),
    "W": ((4.3708, 3.3002, 2.9984), (3.5006, 2.6049, 2.2732)),
}


def conductor_ior(name: str, where: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(eta_rgb, k_rgb)`` of a named conductor (case-insensitive), else ``ValueError``."""
    lookup = {k.lower(): k for k in CONDUCTOR_TABLE}
    key = str(name).strip().lower()
    if key not in lookup:
        import difflib
        close = difflib.get_close_matches(str(name), list(CONDUCTOR_TABLE), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise ValueError(f"{where}: unknown conductor material {name!r}{hint}; known materials "
                         f"(Mitsuba 3's): {', '.join(CONDUCTOR_TABLE)}")
    return CONDUCTOR_TABLE[lookup[key]]
