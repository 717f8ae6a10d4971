"""Surface interactions: what the integrator knows about a ray's hit point."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import drjit as dr

from .frame import Frame
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


    @property
    def sh_frame(self) -> Frame:
        return Frame(self.sh_n)

    def to_world(self, v: Any) -> Any:
        return self.sh_frame.to_world(v)

    def to_local(self, v: Any) -> Any:
        return self.sh_frame.to_local(v)

    def spawn_origin(self, d: Any) -> Any:
        """Offset the origin off the surface along the geometric normal (towards ``d``)
        to avoid self-intersection."""
        eps = (1.0 + hmax(dr.abs(self.p))) * 1e-4
        side = dr.mulsign(bk_one(self.p), dr.dot(self.n, d))
        return dr.fma(self.n, side * eps, self.p)


def bk_one(p: Any) -> Any:
    return dr.ones_like(p[0])
