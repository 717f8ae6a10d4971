"""Orthonormal frames: world <-> local (shading) coordinates.

In a local frame the normal is +Z, so ``cos θ = v.z``. BSDFs work in local
coordinates; the integrator converts with :class:`Frame`.
"""
from __future__ import annotations

from typing import Any

import drjit as dr

from .. import backend as bk


def coordinate_system(n: Any) -> tuple[Any, Any]:
    """Two unit tangents completing ``n`` to a right-handed orthonormal basis.

    Branchless construction of Duff et al. 2017, "Building an Orthonormal Basis,
    Revisited" (JCGT 6(1)); continuous in ``n`` except at ``n.z = -1``.
    """
    sign = dr.sign(n[2])
    a = -dr.rcp(sign + n[2])
    b = n[0] * n[1] * a
    s = bk.Array3f(dr.fma(dr.square(n[0]) * a, sign, 1.0), b * sign, -n[0] * sign)
    t = bk.Array3f(b, dr.fma(dr.square(n[1]), a, sign), -n[1])
    return s, t


class Frame:
    """An orthonormal basis ``(s, t, n)``."""

    def __init__(self, n: Any, s: Any = None, t: Any = None) -> None:
        self.n = n
        if s is None:
            s, t = coordinate_system(n)
        self.s, self.t = s, t

    def to_local(self, v: Any) -> Any:
        return bk.Array3f(dr.dot(v, self.s), dr.dot(v, self.t), dr.dot(v, self.n))

    def to_world(self, v: Any) -> Any:
        return self.s * v[0] + self.t * v[1] + self.n * v[2]


def cos_theta(v: Any) -> Any:
    return v[2]


def reflect(v: Any) -> Any:
    """Mirror a local direction about the normal (+Z)."""
    return bk.Array3f(-v[0], -v[1], v[2])
