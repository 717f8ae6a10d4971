"""Surface interactions: what the integrator knows about a ray's hit point."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import drjit as dr

from .frame import Frame, coordinate_system
from .math import hmax


@dataclass
class SurfaceInteraction:
    """A hit point, differentiable in the scene geometry.

    ``wi`` is the direction towards where the ray came from, in the local
    shading frame (``wi.z > 0`` on the front side of the shading normal).
    ``n`` is the geometric normal, ``sh_n`` the shading normal, both in world
    space and oriented by the triangle's winding (not flipped towards the ray).
    """

    t: Any          # Float: distance along the ray
    p: Any          # Array3f: position (world)
    n: Any          # Array3f: geometric normal (world, unit)
    sh_n: Any       # Array3f: shading normal (world, unit)
    uv: Any         # Array2f: texture coordinates
    wi: Any         # Array3f: incident direction in the shading frame
    prim: Any       # UInt32: global triangle index
    shape: Any      # UInt32: shape index in Scene.shapes
    valid: Any      # Bool: the ray hit something
    bary: Any = None  # Array2f: barycentrics (b1, b2) of p in triangle ``prim``
    #: Array3f: ∂p/∂u and ∂p/∂v (world), only where a BSDF needs them (bumpmap,
    #: normalmap: ``Scene`` computes them when some BSDF has ``needs_tangents``)
    dp_du: Any = None
    dp_dv: Any = None


    @property
    def sh_frame(self) -> Frame:
        """The shading frame: normal ``sh_n``; where the tangents are known
        (``dp_du``), the first tangent is ``∂p/∂u`` made orthogonal to the
        normal, as in Mitsuba 3 (anisotropic BSDFs and normal maps are oriented
        by it), else an arbitrary continuous one (``coordinate_system``)."""
        if self.dp_du is None:
            return Frame(self.sh_n)
        n = self.sh_n
        s = self.dp_du - n * dr.dot(n, self.dp_du)
        s_len = dr.norm(s)
        ok = s_len > 1e-12
        s = dr.select(ok, s / dr.select(ok, s_len, 1.0), coordinate_system(n)[0])
        return Frame(n, s, dr.cross(n, s))

    def to_world(self, v: Any) -> Any:
        return self.sh_frame.to_world(v)

    def to_local(self, v: Any) -> Any:
        return self.sh_frame.to_local(v)

    def detached(self) -> "SurfaceInteraction":
        """A copy of the values without their derivatives."""
        from dataclasses import replace
        return replace(self, **{f: dr.detach(getattr(self, f)) for f in
                                ("t", "p", "n", "sh_n", "uv", "wi", "bary")
                                if getattr(self, f) is not None})

    def spawn_origin(self, d: Any) -> Any:
        """Offset the origin off the surface along the geometric normal (towards ``d``)
        to avoid self-intersection."""
        eps = (1.0 + hmax(dr.abs(self.p))) * 1e-4
        side = dr.mulsign(bk_one(self.p), dr.dot(self.n, d))
        return dr.fma(self.n, side * eps, self.p)


def triangle_tangents(dp1: Any, dp2: Any, duv1: Any, duv2: Any, n: Any) -> tuple[Any, Any]:
    """``(∂p/∂u, ∂p/∂v)`` of a triangle from its edge vectors ``dp1 = p1 - p0``,
    ``dp2 = p2 - p0`` and the matching texture-coordinate differences: the
    solution of ``dp_k = duv_k.x ∂p/∂u + duv_k.y ∂p/∂v`` (k = 1, 2). Where the
    uv map is degenerate, the tangents of the (geometric) normal ``n``
    (``coordinate_system``), as Mitsuba does for meshes without uv."""
    det = duv1[0] * duv2[1] - duv1[1] * duv2[0]
    ok = dr.abs(det) > 1e-12
    inv = dr.select(ok, dr.rcp(dr.select(ok, det, 1.0)), 0.0)
    dp_du = (dp1 * duv2[1] - dp2 * duv1[1]) * inv
    dp_dv = (dp2 * duv1[0] - dp1 * duv2[0]) * inv
    s, t = coordinate_system(n)
    return dr.select(ok, dp_du, s), dr.select(ok, dp_dv, t)


def bk_one(p: Any) -> Any:
    return dr.ones_like(p[0])
