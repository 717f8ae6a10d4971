"""Imports every plugin module so that each registers itself (see scene/schema.py)."""
from __future__ import annotations

import importlib

#: Modules that define plugins, by category.
PLUGIN_MODULES = (
    "lumigrad.geometry.shapes", "lumigrad.geometry.cylinder", "lumigrad.geometry.instance",
    "lumigrad.textures.constant", "lumigrad.textures.bitmap", "lumigrad.textures.checkerboard",
    "lumigrad.bsdfs.diffuse", "lumigrad.bsdfs.twosided", "lumigrad.bsdfs.conductor",
    "lumigrad.bsdfs.roughconductor", "lumigrad.bsdfs.dielectric",
    "lumigrad.bsdfs.roughdielectric", "lumigrad.bsdfs.plastic", "lumigrad.bsdfs.roughplastic",
    "lumigrad.bsdfs.thindielectric", "lumigrad.bsdfs.null", "lumigrad.bsdfs.mask",
    "lumigrad.bsdfs.blendbsdf", "lumigrad.bsdfs.bumpmap", "lumigrad.bsdfs.normalmap",
    "lumigrad.bsdfs.principled",
    "lumigrad.emitters.area", "lumigrad.emitters.point", "lumigrad.emitters.directional",
    "lumigrad.emitters.constant", "lumigrad.emitters.envmap", "lumigrad.emitters.spot",
    "lumigrad.emitters.projector",
    "lumigrad.sensors.perspective", "lumigrad.sensors.film", "lumigrad.sensors.rfilter",
    "lumigrad.sensors.orthographic", "lumigrad.sensors.thinlens",
    "lumigrad.sensors.rfilter_signed",
    "lumigrad.sensors.sampler",
    "lumigrad.integrators.path", "lumigrad.integrators.aov", "lumigrad.integrators.moment",
    "lumigrad.integrators.depth", "lumigrad.integrators.projective",
)

for _name in PLUGIN_MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as _e:  # pragma: no cover - during development only
        if _e.name != _name:
            raise
