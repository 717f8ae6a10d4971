"""Constant environment (``constant``): uniform radiance from every direction.

``eval_direction(d) = L`` for all escaping directions. Direction sampling is
uniform on the sphere: ``pdf = 1 / (4π)``, so the sample weight is
``L / pdf = 4π L`` and ``E[weight] = ∫ L dω = 4π L`` exactly.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..core import warp
from ..scene.schema import Param, register
from ._util import as_mask, as_texture, constant_value, lane_count, texture_parameters
from .base import DirectionSample, Emitter


@register
class ConstantEmitter(Emitter):
    """Uniform infinite environment. Key: ``radiance.value``."""

    PLUGIN = ("emitter", "constant")
    PARAMS = {
        "radiance": Param("texture", default=1.0, min=0.0, emission=True,
                          doc="emitted radiance (W / (m^2 sr))"),
        "sampling_weight": Param("float", default=1.0, min=0.0),
    }
    is_infinite = True

    def __init__(self, radiance: Any = 1.0, sampling_weight: float = 1.0,
                 id: str | None = None) -> None:
        super().__init__(id)
        where = f"constant emitter '{id}': radiance"
        self.radiance = as_texture(radiance, where)
        constant_value(self.radiance, where)  # validates: must be uniform
        self.sampling_weight = float(sampling_weight)
        self.center = bk.Array3f(0.0, 0.0, 0.0)
        self.radius = 1.0

    def set_scene_bounds(self, center: Any, radius: float) -> None:
        """Store the scene's bounding sphere (for shadow rays and power estimates)."""
        self.center, self.radius = center, radius

    def _value(self) -> Any:
        return constant_value(self.radiance, "constant emitter radiance")

    def sample_direction(self, p: Any, sample2: Any, active: Any = True) -> DirectionSample:
        n = lane_count(p, sample2)
        return self._uniform(n, warp.square_to_uniform_sphere(bk.Array2f(sample2)),
                             as_mask(active, n))

    def _uniform(self, n: int, d: Any, active: Any) -> DirectionSample:
        """The sample in direction ``d`` of uniform sampling over the sphere."""
        return DirectionSample(
            d=d,
            dist=dr.full(bk.Float, dr.inf, n),
            pdf=dr.select(active, dr.full(bk.Float, dr.inv_four_pi, n), 0.0),
            weight=dr.select(active, self._value() * (4.0 * dr.pi), 0.0),
            delta=dr.full(bk.Bool, False, n))

    def eval_direction(self, d: Any, active: Any = True) -> Any:
        n = lane_count(d)
        return dr.select(as_mask(active, n), self._value(), 0.0)

    def direction_point(self, d: Any) -> Any:
        from .envmap import direction_to_uv
        u, v, _ = direction_to_uv(dr.detach(bk.Array3f(d)))
        return bk.Array2f(u, v)

    def sample_at(self, p: Any, point: Any, active: Any = True) -> DirectionSample:
        from .envmap import uv_to_direction
        n = lane_count(p, point)
        return self._uniform(n, uv_to_direction(point[0], point[1]), as_mask(active, n))

    def pdf_direction(self, p: Any, d: Any, active: Any = True) -> Any:
        n = lane_count(p, d)
        return dr.select(as_mask(active, n), dr.full(bk.Float, dr.inv_four_pi, n), 0.0)

    def eval(self, si: Any, active: Any = True) -> Any:
        return dr.zeros(bk.Array3f, lane_count(si.p))

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield from texture_parameters("radiance", self.radiance)

    def __repr__(self) -> str:
        return f"ConstantEmitter(id={self.id!r})"
