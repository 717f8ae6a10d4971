"""Projector (``projector``): a point light that projects an image, the reverse
of a perspective camera (Mitsuba 3's ``projector`` plugin).

The light sits at the origin of ``to_world`` and projects along its local +Z
axis through a frustum of horizontal field of view ``fov`` (along ``fov_axis``,
as the perspective camera; the aspect ratio is the ``irradiance`` image's, 1
for a uniform colour). A point at camera-space position ``q`` (``q_z > 0``)
lies on the image at

    u = 1/2 − q_x / (2 q_z t_x),   v = 1/2 − q_y / (2 q_z t_y),

``t_x = tan(x_fov/2)``, ``t_y = t_x H/W`` (image right is local −X, image up
+Y: the image appears upright, as seen through a camera with the same
``to_world``); outside [0,1]² it gets nothing. Its radiant intensity towards
``q`` is

    I(q) = π · scale · E(u, v) / cos³θ,   cos θ = q_z / |q|,

so that the plane ``z = 1`` in front of it receives the irradiance
``I cos θ / r² = π scale E(u, v)``: the image, undistorted. (The factor π and
the ``1/cos³θ`` law are what Mitsuba 3.9.1's projector gives, measured with
its ``sample_direction``; ``tests/test_emitters_extra.py``.) A lit point
receives ``I / |x_l − p|²`` along the single direction towards the light: a
delta light, never hit by rays.

Differentiable in ``irradiance`` (colour or image texels) and ``scale``.
Derivatives with respect to ``to_world`` raise a clear error: moving the
projector moves the hard edge of its frustum over the scene, a boundary term
that is not sampled yet (the weight's own derivative at a lit point is right,
``tests/test_emitters_extra.py`` checks it with the guard lifted).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..core.interaction import SurfaceInteraction
from ..geometry.transform import Transform4f
from ..scene.schema import Param, register
from ..sensors.perspective import PerspectiveSensor, x_fov_from
from ._util import as_mask, as_texture, lane_count, texture_parameters
from .base import DeltaEmitter, DirectionSample


@register
class ProjectorEmitter(DeltaEmitter):
    """Image projector. Parameter keys: ``irradiance.*``, ``scale``, ``to_world``."""

    PLUGIN = ("emitter", "projector")
    PARAMS = {
        "irradiance": Param("texture", default=1.0, min=0.0, emission=True,
                            doc="the projected image (a bitmap texture) or a colour"),
        "scale": Param("float", default=1.0, min=0.0, doc="factor on the irradiance"),
        "fov": Param("float", None, min_exclusive=0.0, max_exclusive=180.0),
        "fov_axis": Param("string", "x", choices=("x", "y", "diagonal", "smaller", "larger")),
        "focal_length": Param("string", None),
        "to_world": Param("transform", default=None,
                          doc="emitter-to-world transform: at its origin, projecting "
                              "along its +Z axis"),
        "sampling_weight": Param("float", default=1.0, min=0.0),
    }
    #: refuse gradients on to_world (see the module docstring); tests lift it to
    #: check the weight's own derivative
    refuse_moving = True

    def __init__(self, irradiance: Any = 1.0, scale: float = 1.0, fov: float | None = None,
                 fov_axis: str = "x", focal_length: str | None = None, to_world: Any = None,
                 sampling_weight: float = 1.0, id: str | None = None) -> None:
        super().__init__(id)
        where = f"projector emitter '{id}'"
        self.irradiance = as_texture(irradiance, f"{where}: irradiance")
        shape = getattr(self.irradiance, "shape", None)
        w, h = (shape[1], shape[0]) if shape is not None else (1, 1)
        if fov is None:
            fov = PerspectiveSensor._fov_from_focal_length(focal_length or "50mm")
            fov_axis = "diagonal"
        elif focal_length is not None:
            raise ValueError(f"{where}: give either 'fov' or 'focal_length', not both")
        x_fov = x_fov_from(float(fov), fov_axis, w, h)
        if not (0.0 < x_fov < 180.0):
            raise ValueError(f"{where}: the horizontal field of view {x_fov:.3f}° implied by "
                             "fov/fov_axis is outside (0, 180)")
        self.tan_x = math.tan(math.radians(x_fov) / 2)
        self.tan_y = self.tan_x * h / w
        self.scale = bk.Float(float(scale))
        self.to_world = Transform4f(to_world) if to_world is not None else Transform4f()
        self.sampling_weight = float(sampling_weight)

    def sample_direction(self, p: Any, sample2: Any, active: Any = True) -> DirectionSample:
        if self.refuse_moving and dr.grad_enabled(self.to_world.matrix):
            # (False inside dr.suspend_grad(): primal renders are unaffected)
            raise NotImplementedError(
                f"projector emitter '{self.id}': derivatives with respect to its to_world "
                "are not supported yet: moving the projector moves the hard edge of its "
                "frustum across the scene, a boundary term lumigrad does not sample. "
                "Derivatives with respect to 'scale' and the 'irradiance' image work.")
        n = lane_count(p, sample2)
        active = as_mask(active, n)
        m = self.to_world.matrix
        pos = bk.Array3f(m[0, 3], m[1, 3], m[2, 3])
        diff = pos - bk.Array3f(p)
        dist2 = dr.squared_norm(diff)
        inv_dist = dr.rsqrt(dr.maximum(dist2, 1e-30))
        q = self.to_world.inverse_transform().transform_affine_point(bk.Array3f(p))
        qz = dr.select(q[2] > 0, q[2], 1.0)
        u = 0.5 - q[0] / (qz * dr.opaque(bk.Float, 2 * self.tan_x))
        v = 0.5 - q[1] / (qz * dr.opaque(bk.Float, 2 * self.tan_y))
        ok = active & (dist2 > 0) & (q[2] > 0) & (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
        d = dr.select(ok, diff * inv_dist, bk.Array3f(0.0, 0.0, 1.0))
        cos_theta = q[2] * dr.rsqrt(dr.maximum(dr.squared_norm(q), 1e-30))
        zero = dr.zeros(bk.Float, n)
        si = SurfaceInteraction(t=zero, p=bk.Array3f(p), n=bk.Array3f(0, 0, 1),
                                sh_n=bk.Array3f(0, 0, 1), uv=bk.Array2f(u, v),
                                wi=bk.Array3f(0, 0, 1), prim=dr.zeros(bk.UInt32, n),
                                shape=dr.zeros(bk.UInt32, n), valid=ok)
        e = bk.Array3f(self.irradiance.eval(si, ok))
        falloff = math.pi * self.scale * dr.rcp(dr.maximum(cos_theta, 1e-6) ** 3)
        weight = e * (falloff * dr.square(inv_dist))
        return self.delta_sample(d, dist2 * inv_dist, weight, ok)

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        def set_to_world(v: Any) -> None:
            self.to_world = v if isinstance(v, Transform4f) else Transform4f(v)
        yield "to_world", self.to_world, set_to_world
        yield "scale", self.scale, lambda v: setattr(self, "scale", v)
        yield from texture_parameters("irradiance", self.irradiance)

    def __repr__(self) -> str:
        return f"ProjectorEmitter(id={self.id!r})"
