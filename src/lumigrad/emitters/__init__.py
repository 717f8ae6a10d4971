"""Emitter plugins (area, point, directional, constant, envmap).

Importing this package registers every emitter in ``scene.schema.REGISTRY``
under ``('emitter', <name>)``.
"""
from .base import DirectionSample, Emitter
from .area import AreaEmitter
from .point import PointEmitter
from .directional import DirectionalEmitter
from .constant import ConstantEmitter
from .envmap import EnvironmentMapEmitter, direction_to_uv, uv_to_direction
from .distr2d import PiecewiseConstant2D

__all__ = [
    "DirectionSample", "Emitter", "AreaEmitter", "PointEmitter", "DirectionalEmitter",
    "ConstantEmitter", "EnvironmentMapEmitter", "PiecewiseConstant2D",
    "direction_to_uv", "uv_to_direction",
]
