"""The ``cylinder`` shape (Mitsuba 3's plugin), tessellated.

Mitsuba's cylinder is analytic: the open tube (no caps) of radius ``radius``
around the segment from ``p0`` (default (0, 0, 0)) to ``p1`` (default
(0, 0, 1)), then placed by ``to_world``; normals point away from the axis, uvs
are ``(φ / 2π, z)`` with ``z`` in [0, 1] from ``p0`` to ``p1``.

Here it is a triangle mesh like every lumigrad shape (see
:mod:`lumigrad.geometry.shapes`): ``CYLINDER_SEGMENTS`` = 512 quads around
(1024 triangles) — straight along the axis, so only the circle is
approximated: every vertex lies on the true surface and the largest distance
of a triangle to it is ``r (1 − cos(π / 512)) ≈ 1.9e-5 r``. Vertex normals are
the exact radial directions (smooth shading, as the analytic shape). The seam
(φ = 0 = 2π) is duplicated so uvs are continuous.

Object space: the unit cylinder (radius 1, z from 0 to 1) is mapped by
``to_world · translate(p0) · frame(p1 − p0) · scale(r, r, |p1 − p0|)``, where
``frame(d)`` rotates +Z onto ``d`` (its x/y axes from Duff et al. 2017, "Building
an Orthonormal Basis, Revisited"; they fix where φ = 0 lies). A mirroring
``to_world`` keeps the normals outward, as Mitsuba transforms the analytic
normal with ``M^{-T}``.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..scene.schema import Param, register
from .primitives import MeshData, _check_count
from .shapes import COMMON_PARAMS, _BaseShape
from .transform import Transform4f

__all__ = ["CylinderShape", "cylinder_mesh", "CYLINDER_SEGMENTS"]

CYLINDER_SEGMENTS = 512


def cylinder_mesh(n_segments: int = 64) -> MeshData:
    """The open unit cylinder (radius 1, z in [0, 1]) with outward normals,
    uvs ``(φ / 2π, z)``; ``2 (n + 1)`` vertices and ``2 n`` triangles,
    counter-clockwise seen from outside."""
    n = _check_count("n_segments", n_segments, 3)
    phi = np.linspace(0.0, 2.0 * np.pi, n + 1)
    c, s = np.cos(phi), np.sin(phi)
    c[-1], s[-1] = c[0], s[0]  # exact seam
    ring = np.stack([c, s, np.zeros_like(c)], axis=-1)
    p = np.concatenate([ring, ring + [0.0, 0.0, 1.0]])
    normals = np.concatenate([ring, ring])
    uv = np.concatenate([np.stack([phi / (2 * np.pi), np.zeros_like(phi)], -1),
                         np.stack([phi / (2 * np.pi), np.ones_like(phi)], -1)])
    k = np.arange(n)
    b0, b1, t0, t1 = k, k + 1, k + n + 1, k + n + 2
    # d/dφ x d/dz points outward: (b0, b1, t1) and (b0, t1, t0) are CCW from outside.
    f = np.concatenate([np.stack([b0, b1, t1], -1), np.stack([b0, t1, t0], -1)])
    return MeshData(p, f, normals=normals, uvs=uv)


def _frame(d: np.ndarray) -> np.ndarray:
    """3x3 rotation whose third column is the unit vector ``d`` (Duff et al. 2017)."""
    x, y, z = d
    sign = 1.0 if z >= 0.0 else -1.0
    a = -1.0 / (sign + z)
    b = x * y * a
    s = np.array([1.0 + sign * x * x * a, sign * b, -sign * x])
    t = np.array([b, sign + y * y * a, -y])
    return np.stack([s, t, d], axis=1)


@register
class CylinderShape(_BaseShape):
    """An open cylinder (see the module docstring)."""

    PLUGIN = ("shape", "cylinder")
    PARAMS = {
        "p0": Param("point", (0.0, 0.0, 0.0), doc="centre of the start of the axis"),
        "p1": Param("point", (0.0, 0.0, 1.0), doc="centre of the end of the axis"),
        "radius": Param("float", 1.0, min_exclusive=0.0, doc="radius"),
        **COMMON_PARAMS,
    }

    def __init__(self, p0: Any = (0.0, 0.0, 0.0), p1: Any = (0.0, 0.0, 1.0),
                 radius: float = 1.0, to_world: Optional[Transform4f] = None,
                 flip_normals: bool = False, bsdf: Any = None, emitter: Any = None,
                 id: Optional[str] = None) -> None:
        a = np.asarray(p0, dtype=np.float64).reshape(-1)
        b = np.asarray(p1, dtype=np.float64).reshape(-1)
        if a.size != 3 or b.size != 3 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            raise ValueError(f"cylinder {id!r}: p0 and p1 must be 3 finite numbers each")
        length = float(np.linalg.norm(b - a))
        if length <= 0.0:
            raise ValueError(f"cylinder {id!r}: p0 and p1 coincide, so the cylinder has no "
                             "length")
        radius = float(radius)
        if not (np.isfinite(radius) and radius > 0):
            raise ValueError(f"cylinder {id!r}: radius must be positive, got {radius}")
        local = np.eye(4)
        local[:3, :3] = _frame((b - a) / length) @ np.diag([radius, radius, length])
        local[:3, 3] = a
        full = local if to_world is None else (
            (to_world.numpy() if isinstance(to_world, Transform4f) else np.asarray(to_world))
            @ local)
        self.p0, self.p1, self.radius = tuple(a), tuple(b), radius
        m = cylinder_mesh(CYLINDER_SEGMENTS)
        self._build(m.positions, m.faces, m.normals, m.uvs, Transform4f(full), flip_normals,
                    False, bsdf, emitter, id, source="cylinder", keep_front=True)
