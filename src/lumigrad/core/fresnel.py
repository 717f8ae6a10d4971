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


#: Complex indices of refraction ``(eta, k)`` of metals at the RGB wavelengths
#: (650 nm, 550 nm, 450 nm), relative to vacuum, obtained by linear interpolation
#: in wavelength of tabulated measurements:
#:
#: * Au, Ag, Cu: P. B. Johnson and R. W. Christy, "Optical constants of the noble
#:   metals", Phys. Rev. B 6, 4370 (1972);
#: * Cr: P. B. Johnson and R. W. Christy, "Optical constants of transition metals",
#:   Phys. Rev. B 9, 5056 (1974);
#: * Al: A. D. Rakić, "Algorithm for the determination of intrinsic optical
#:   constants of metal films: application to aluminum", Appl. Opt. 34, 4755 (1995);
#:
#: as tabulated in the public-domain refractiveindex.info database. The normal
#: incidence reflectance ((η-1)² + k²)/((η+1)² + k²) is, for instance,
#: Au (0.957, 0.792, 0.408), Ag (0.990, 0.983, 0.980), Cu (0.935, 0.624, 0.538).
#: ``none`` is Mitsuba's ideal mirror (η = 0, k = 1 gives F = 1 at every angle).
CONDUCTOR_TABLE: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "Au": ((0.1556, 0.4241, 1.3831), (3.6024, 2.4721, 1.9155)),
    "Ag": ((0.0522, 0.0596, 0.0400), (4.4094, 3.5974, 2.6484)),
    "Cu": ((0.2378, 1.0066, 1.2404), (3.6264, 2.5823, 2.3929)),
    "Al": ((1.5580, 1.0152, 0.6332), (7.7124, 6.6273, 5.4544)),
    "Cr": ((3.1071, 3.1812, 2.3230), (3.3314, 3.3291, 3.1350)),
}


def conductor_ior(name: str, where: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(eta_rgb, k_rgb)`` of a named conductor (case-insensitive), else ``ValueError``."""
    lookup = {k.lower(): k for k in CONDUCTOR_TABLE}
    key = str(name).strip().lower()
    if key not in lookup:
        raise ValueError(f"{where}: unknown conductor material {name!r}; known materials: "
                         f"{', '.join(CONDUCTOR_TABLE)}")
    return CONDUCTOR_TABLE[lookup[key]]
