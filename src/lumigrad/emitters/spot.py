"""Spot light (``spot``): a point light whose intensity falls off with the angle
to its axis (Mitsuba 3's ``spot`` plugin).

The light sits at the origin of ``to_world`` and shines along its local +Z axis.
With ``θ`` the angle between that axis and the direction towards the lit point,
the radiant intensity is ``I · f(θ)`` with the falloff (Mitsuba 3's spot docs):

.. math::
    f(θ) = \\begin{cases} 1 & θ \\le θ_b \\\\
                         (θ_c - θ) / (θ_c - θ_b) & θ_b < θ < θ_c \\\\
                         0 & θ \\ge θ_c \\end{cases}

``θ_c`` = ``cutoff_angle`` (degrees, default 20) and ``θ_b`` = ``beam_width``
(default ``3/4 θ_c``). A lit point ``p`` receives, as from a point light,
``I f(θ) / |x_l − p|²`` along the single direction towards ``x_l``: a delta
light, sampled with pdf 1 and never hit by rays.

An optional ``texture`` multiplies the intensity: the image is looked up at
``uv = 1/2 + (q_x, q_y) / (2 q_z tan θ_c)`` for the direction ``q`` in the
light's frame (so it spans the cone of the cutoff angle; measured on Mitsuba
3.9.1).

Differentiable in ``intensity``, ``texture`` and ``to_world`` (position and axis;
the falloff is continuous when ``beam_width < cutoff_angle``; with equal angles
the cone's edge is hard and ``to_world`` derivatives raise a clear error).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..geometry.transform import Transform4f
from ..scene.schema import Param, register
from ._util import (as_mask, as_texture, constant_value, lane_count, texture_parameters)
from .base import DeltaEmitter, DirectionSample


@register
class SpotEmitter(DeltaEmitter):
    """Spot light. Parameter keys: ``intensity.value``, ``to_world``."""

    PLUGIN = ("emitter", "spot")
    PARAMS = {
        "intensity": Param("texture", default=1.0, min=0.0, emission=True,
                           doc="radiant intensity on the axis (W/sr)"),
        "cutoff_angle": Param("float", default=20.0, min_exclusive=0.0, max=90.0,
                              doc="angle (degrees) beyond which no light is emitted"),
        "beam_width": Param("float", default=None, min=0.0, max=90.0,
                            doc="angle (degrees) of the cone of full intensity "
                                "(default: 3/4 of cutoff_angle)"),
        "to_world": Param("transform", default=None,
                          doc="emitter-to-world transform: position at its origin, "
                              "shining along its +Z axis"),
        "sampling_weight": Param("float", default=1.0, min=0.0),
        "texture": Param("texture", default=None,
                         doc="an image projected by the light (multiplies intensity)"),
    }

    def __init__(self, intensity: Any = 1.0, cutoff_angle: float = 20.0,
                 beam_width: float | None = None, to_world: Any = None,
                 sampling_weight: float = 1.0, texture: Any = None,
                 id: str | None = None) -> None:
        super().__init__(id)
        where = f"spot emitter '{id}'"
        self.intensity = as_texture(intensity, f"{where}: intensity")
        constant_value(self.intensity, f"{where}: intensity")  # validates
        #: optional projected image, looked up at ``uv = 1/2 + (q_x, q_y) / (2 q_z
        #: tan θ_c)`` for the light-space direction ``q`` (measured on Mitsuba 3.9.1)
        self.texture = None if texture is None else as_texture(texture, f"{where}: texture")
        cutoff = float(cutoff_angle)
        beam = 0.75 * cutoff if beam_width is None else float(beam_width)
        if not (0.0 < cutoff <= 90.0):
            raise ValueError(f"{where}: cutoff_angle must be in (0, 90] degrees, got {cutoff}")
        if not (0.0 <= beam <= cutoff):
            raise ValueError(f"{where}: beam_width must be in [0, cutoff_angle = {cutoff}] "
                             f"degrees, got {beam}")
        self.cutoff_angle = cutoff
        self.beam_width = beam
        self.to_world = Transform4f(to_world) if to_world is not None else Transform4f()
        self.sampling_weight = float(sampling_weight)

    def position(self) -> Any:
        m = self.to_world.matrix
        return bk.Array3f(m[0, 3], m[1, 3], m[2, 3])

    def falloff(self, cos_theta: Any) -> Any:
        """``f(θ)`` of the module docstring from ``cos θ``."""
        cut = math.radians(self.cutoff_angle)
        beam = math.radians(self.beam_width)
        cos_cut = dr.opaque(bk.Float, math.cos(cut))
        cos_beam = dr.opaque(bk.Float, math.cos(beam))
        # (acos only where the ramp applies; its derivative is finite there)
        theta = dr.acos(dr.clip(cos_theta, -1.0, 1.0))
        ramp = (dr.opaque(bk.Float, cut) - theta) * \
            dr.opaque(bk.Float, 1.0 / max(cut - beam, 1e-12))
        value = dr.select(cos_theta >= cos_beam, 1.0, ramp)
        return dr.select(cos_theta > cos_cut, value, 0.0)

    def sample_direction(self, p: Any, sample2: Any, active: Any = True) -> DirectionSample:
        if self.beam_width >= self.cutoff_angle and dr.grad_enabled(self.to_world.matrix):
            # (False inside dr.suspend_grad(): primal renders are unaffected)
            raise NotImplementedError(
                f"spot emitter '{self.id}': with beam_width = cutoff_angle the cone has a "
                "hard edge, and derivatives with respect to to_world would need its "
                "boundary term, which is not sampled yet; use a beam_width below the "
                "cutoff_angle (a soft edge) to differentiate the light's placement")
        n = lane_count(p, sample2)
        active = as_mask(active, n)
        pos = self.position()
        diff = pos - bk.Array3f(p)
        dist2 = dr.squared_norm(diff)
        ok = active & (dist2 > 0)
        inv_dist = dr.rsqrt(dr.maximum(dist2, 1e-30))
        d = dr.select(ok, diff * inv_dist, bk.Array3f(0.0, 0.0, 1.0))
        axis = dr.normalize(self.to_world.transform_vector(bk.Array3f(0.0, 0.0, 1.0)))
        cos_theta = dr.dot(-d, axis)
        weight = constant_value(self.intensity, "spot emitter intensity") * \
            (self.falloff(cos_theta) * dr.square(inv_dist))
        if self.texture is not None:
            weight = weight * self._texture_value(p, ok)
        return self.delta_sample(d, dist2 * inv_dist, weight, ok)

    def _texture_value(self, p: Any, active: Any) -> Any:
        from ..core.interaction import SurfaceInteraction
        n = dr.width(active)
        q = self.to_world.inverse_transform().transform_affine_point(bk.Array3f(p))
        qz = dr.select(q[2] > 0, q[2], 1.0)
        k = dr.opaque(bk.Float, 0.5 / math.tan(math.radians(self.cutoff_angle)))
        uv = bk.Array2f(0.5 + q[0] / qz * k, 0.5 + q[1] / qz * k)
        zero = dr.zeros(bk.Float, n)
        si = SurfaceInteraction(t=zero, p=bk.Array3f(p), n=bk.Array3f(0, 0, 1),
                                sh_n=bk.Array3f(0, 0, 1), uv=uv, wi=bk.Array3f(0, 0, 1),
                                prim=dr.zeros(bk.UInt32, n), shape=dr.zeros(bk.UInt32, n),
                                valid=active)
        return bk.Array3f(self.texture.eval(si, active))

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        def set_to_world(v: Any) -> None:
            self.to_world = v if isinstance(v, Transform4f) else Transform4f(v)
        yield "to_world", self.to_world, set_to_world
        yield from texture_parameters("intensity", self.intensity)
        if self.texture is not None:
            yield from texture_parameters("texture", self.texture)

    def __repr__(self) -> str:
        return (f"SpotEmitter(id={self.id!r}, cutoff_angle={self.cutoff_angle}, "
                f"beam_width={self.beam_width})")
