"""Point light (``point``): an isotropic delta light.

A point light at ``x_l`` with radiant intensity ``I`` (W/sr) produces at ``p``
the irradiance-like contribution

.. math::
    L_i(p, \\omega) \\, d\\omega \\to \\frac{I}{\\lVert x_l - p \\rVert^2}\\,
    \\delta(\\omega - \\omega_l), \\qquad \\omega_l = \\frac{x_l - p}{\\lVert x_l - p\\rVert}

(inverse-square law). ``sample_direction`` returns ``ω_l`` with pdf 1 (a
discrete choice), ``weight = I / dist²`` and ``delta = True``; rays never hit it,
so ``eval_direction`` and ``pdf_direction`` are zero.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..geometry.transform import Transform4f
from ..scene.schema import Param, register
from ._util import (as_mask, as_texture, constant_value, lane_count, texture_parameters,
                    to_vector3f)
from .base import DeltaEmitter, DirectionSample


@register
class PointEmitter(DeltaEmitter):
    """Isotropic point light. Parameter keys: ``position``, ``intensity.value``."""

    PLUGIN = ("emitter", "point")
    PARAMS = {
        "intensity": Param("texture", default=1.0, min=0.0, emission=True,
                           doc="radiant intensity (W/sr)"),
        "position": Param("point", default=None,
                          doc="light position (alternative to to_world)"),
        "to_world": Param("transform", default=None,
                          doc="emitter-to-world transform; the light sits at its origin"),
        "sampling_weight": Param("float", default=1.0, min=0.0),
    }

    def __init__(self, intensity: Any = 1.0, position: Any = None, to_world: Any = None,
                 sampling_weight: float = 1.0, id: str | None = None) -> None:
        super().__init__(id)
        where = f"point emitter '{id}'"
        if position is not None and to_world is not None:
            raise ValueError(f"{where}: give either 'position' or 'to_world', not both")
        self.intensity = as_texture(intensity, f"{where}: intensity")
        constant_value(self.intensity, f"{where}: intensity")  # validates
        if to_world is not None:
            tw = Transform4f(to_world)
            self.position = tw.transform_affine_point(bk.Array3f(0.0, 0.0, 0.0))
        elif position is not None:
            self.position = to_vector3f(position, f"{where}: position")
        else:
            self.position = bk.Array3f(0.0, 0.0, 0.0)
        self.sampling_weight = float(sampling_weight)

    def sample_direction(self, p: Any, sample2: Any, active: Any = True) -> DirectionSample:
        n = lane_count(p, sample2)
        active = as_mask(active, n)
        diff = self.position - bk.Array3f(p)
        dist2 = dr.squared_norm(diff)
        ok = active & (dist2 > 0)
        # Guard the coincident case (no direction, infinite irradiance): zero weight.
        inv_dist = dr.rsqrt(dr.maximum(dist2, 1e-30))
        d = dr.select(ok, diff * inv_dist, bk.Array3f(0.0, 0.0, 1.0))
        weight = constant_value(self.intensity, "point emitter intensity") * \
            dr.square(inv_dist)
        return self.delta_sample(d, dist2 * inv_dist, weight, ok)

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        def set_position(v: Any) -> None:
            self.position = to_vector3f(v, f"point emitter '{self.id}': position")
        yield "position", self.position, set_position
        yield from texture_parameters("intensity", self.intensity)

    def __repr__(self) -> str:
        return f"PointEmitter(id={self.id!r}, position={self.position})"
