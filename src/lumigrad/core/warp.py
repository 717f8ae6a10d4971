"""Warps from the unit square to common domains, with their densities.

Each ``square_to_X`` maps a uniform sample on [0,1)^k to domain X; the matching
``square_to_X_pdf`` is its density with respect to the domain's measure (area or
solid angle). See Pharr, Jakob, Humphreys, *Physically Based Rendering*, 3rd
ed., chapter 13.6.
"""
from __future__ import annotations

from typing import Any

import drjit as dr

from .. import backend as bk


def square_to_uniform_disk_concentric(s: Any) -> Any:
    """Shirley & Chiu's concentric map (low distortion), unit disk."""
    x = dr.fma(2.0, s[0], -1.0)
    y = dr.fma(2.0, s[1], -1.0)
    is_zero = (x == 0) & (y == 0)
    quad1 = dr.abs(x) < dr.abs(y)
    r = dr.select(quad1, y, x)
    rp = dr.select(quad1, x, y)
    phi = 0.25 * dr.pi * rp / r
    phi = dr.select(quad1, 0.5 * dr.pi - phi, phi)
    phi = dr.select(is_zero, 0.0, phi)
    sp, cp = dr.sincos(phi)
    return bk.Array2f(r * cp, r * sp)


def square_to_cosine_hemisphere(s: Any) -> Any:
    """Malley's method: project a uniform disk sample up onto the hemisphere."""
    p = square_to_uniform_disk_concentric(s)
    z = dr.safe_sqrt(1.0 - dr.squared_norm(p))
    return bk.Array3f(p[0], p[1], z)


def square_to_cosine_hemisphere_pdf(v: Any) -> Any:
    return dr.inv_pi * dr.maximum(v[2], 0.0)


def square_to_uniform_sphere(s: Any) -> Any:
    z = dr.fma(-2.0, s[1], 1.0)
    r = dr.safe_sqrt(1.0 - z * z)
    sp, cp = dr.sincos(2.0 * dr.pi * s[0])
    return bk.Array3f(r * cp, r * sp, z)


def square_to_uniform_sphere_pdf(v: Any) -> Any:
    return dr.full(bk.Float, dr.inv_four_pi, dr.width(v))


def square_to_uniform_hemisphere(s: Any) -> Any:
    z = s[1]
    r = dr.safe_sqrt(1.0 - z * z)
    sp, cp = dr.sincos(2.0 * dr.pi * s[0])
    return bk.Array3f(r * cp, r * sp, z)


def square_to_uniform_hemisphere_pdf(v: Any) -> Any:
    return dr.select(v[2] >= 0, dr.inv_two_pi, 0.0)


def square_to_uniform_triangle(s: Any) -> Any:
    """Barycentrics (b1, b2) uniform over a triangle (square-root parametrisation)."""
    t = dr.safe_sqrt(1.0 - s[0])
    return bk.Array2f(1.0 - t, t * s[1])


def square_to_uniform_cone(s: Any, cos_cutoff: Any) -> Any:
    cos_theta = (1.0 - s[1]) + s[1] * cos_cutoff
    sin_theta = dr.safe_sqrt(1.0 - cos_theta * cos_theta)
    sp, cp = dr.sincos(2.0 * dr.pi * s[0])
    return bk.Array3f(cp * sin_theta, sp * sin_theta, cos_theta)


def square_to_uniform_cone_pdf(v: Any, cos_cutoff: Any) -> Any:
    return dr.select(v[2] >= cos_cutoff, dr.inv_two_pi / (1.0 - cos_cutoff), 0.0)
