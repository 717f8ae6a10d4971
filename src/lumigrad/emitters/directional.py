"""Directional light (``directional``): parallel light from infinitely far away.

Light travels along the unit vector ``ω_t`` (``direction``, or the local +Z axis
of ``to_world``, as in Mitsuba 3) and delivers irradiance ``E`` (W/m²) on a
surface facing it:

.. math::
    L_i(p, \\omega) = E \\, \\delta(\\omega + \\omega_t)

``sample_direction`` returns the direction towards the light, ``-ω_t``, at
``dist = inf`` with pdf 1 (discrete), ``weight = E`` and ``delta = True``.
Rays never hit it: ``eval_direction`` and ``pdf_direction`` are zero.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..geometry.transform import Transform4f
from ..core.frame import coordinate_system
from ..scene.schema import Param, register
from ._util import (as_mask, as_texture, constant_value, lane_count, texture_parameters,
                    to_vector3f)
from .base import DeltaEmitter, DirectionSample


@register
class DirectionalEmitter(DeltaEmitter):
    """Distant directional light. Keys: ``irradiance.value``, ``direction``, ``to_world``."""

    PLUGIN = ("emitter", "directional")
    PARAMS = {
        "irradiance": Param("texture", default=1.0, min=0.0, emission=True,
                            doc="irradiance (W/m²)"),
        "direction": Param("vector", default=None,
                           doc="direction the light travels in (alternative to to_world)"),
        "to_world": Param("transform", default=None,
                          doc="emitter-to-world transform; light travels along local +Z"),
        "sampling_weight": Param("float", default=1.0, min=0.0),
    }
    is_infinite = True

    def __init__(self, irradiance: Any = 1.0, direction: Any = None, to_world: Any = None,
                 sampling_weight: float = 1.0, id: str | None = None) -> None:
        super().__init__(id)
        where = f"directional emitter '{id}'"
        if direction is not None and to_world is not None:
            raise ValueError(f"{where}: give either 'direction' or 'to_world', not both")
        self.irradiance = as_texture(irradiance, f"{where}: irradiance")
        constant_value(self.irradiance, f"{where}: irradiance")  # validates
        if to_world is not None:
            self._set_to_world(to_world)
        elif direction is not None:
            self._set_direction(direction)
        else:
            self.direction = bk.Array3f(0.0, 0.0, 1.0)
        self.sampling_weight = float(sampling_weight)
        self.center = bk.Array3f(0.0, 0.0, 0.0)
        self.radius = 1.0

    # -- state ---------------------------------------------------------------
    def _set_direction(self, v: Any) -> None:
        where = f"directional emitter '{self.id}': direction"
        d = to_vector3f(v, where)
        if not isinstance(v, dr.ArrayBase) and float(dr.squared_norm(d)[0]) == 0.0:
            raise ValueError(f"{where}: the zero vector has no direction")
        self.direction = dr.normalize(d)

    def _set_to_world(self, m: Any) -> None:
        tw = Transform4f(m)
        self.direction = dr.normalize(tw.transform_vector(bk.Array3f(0.0, 0.0, 1.0)))

    @property
    def to_world(self) -> Transform4f:
        """A frame whose +Z is the light's travel direction (built from it)."""
        d = self.direction
        s, t = coordinate_system(d)
        m = dr.identity(bk.Matrix4f)
        for i in range(3):
            m[i, 0], m[i, 1], m[i, 2] = s[i], t[i], d[i]
        return Transform4f(m)

    def set_scene_bounds(self, center: Any, radius: float) -> None:
        self.center, self.radius = center, radius

    # -- queries -------------------------------------------------------------
    def sample_direction(self, p: Any, sample2: Any, active: Any = True) -> DirectionSample:
        n = lane_count(p, sample2)
        active = as_mask(active, n)
        d = -self.direction + dr.zeros(bk.Array3f, n)
        weight = constant_value(self.irradiance, "directional emitter irradiance")
        return self.delta_sample(d, dr.full(bk.Float, dr.inf, n), weight, active)

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        # Both keys write the same state (the travel direction); a scene update
        # should call only the setters of keys that changed.
        yield "direction", self.direction, self._set_direction
        yield "to_world", self.to_world, self._set_to_world
        yield from texture_parameters("irradiance", self.irradiance)

    def __repr__(self) -> str:
        return f"DirectionalEmitter(id={self.id!r}, direction={self.direction})"
