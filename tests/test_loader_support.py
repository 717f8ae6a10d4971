"""Shared fixtures of the loader tests: stand-in plugins (registered only for
the duration of a test, so other test modules never see them)."""
from typing import Any

import pytest

from lumigrad.scene import loader
from lumigrad.scene.schema import REGISTRY, Param


class KindsPlugin:
    """A test plugin that accepts one parameter of every kind."""

    PLUGIN = ("bsdf", "kinds")
    PARAMS = {
        "f": Param("float", 1.0, min=0.0, max=10.0),
        "i": Param("int", 3, min=1),
        "b": Param("bool", False),
        "s": Param("string", "a", choices=("a", "b", "long_name")),
        "c": Param("color", (0.5, 0.5, 0.5), min=0.0),
        "tex": Param("texture", 0.25, min=0.0, max=1.0),
        "p": Param("point", (0.0, 0.0, 0.0)),
        "v": Param("vector", (0.0, 0.0, 1.0)),
        "to_world": Param("transform", None, aliases=("toWorld",)),
        "nested": Param("object", None, category="bsdf"),
        "many": Param("objects", None, category="texture"),
        "req": Param("float", None, required=False),
        "max_depth": Param("int", 1, min=-1),
    }

    def __init__(self, id=None, **kw: Any) -> None:
        self.id = id
        self.values = kw


class RequiredPlugin:
    PLUGIN = ("bsdf", "needs")
    PARAMS = {"must": Param("float", None, required=True, doc="a number")}

    def __init__(self, must: float, id=None) -> None:
        self.id = id
        self.must = must


class StandInConstant:
    PLUGIN = ("texture", "constant")
    PARAMS = {"value": Param("color", 0.5)}

    def __init__(self, value=0.5, id=None) -> None:
        self.id = id
        self.value = value

    def eval(self, si, active=True):  # marks it as a texture for the dict form
        raise NotImplementedError


class StandInDiffuse:
    PLUGIN = ("bsdf", "diffuse")
    PARAMS = {"reflectance": Param("texture", 0.5)}

    def __init__(self, reflectance=None, id=None) -> None:
        self.id = id
        self.reflectance = reflectance


@pytest.fixture
def plugins(monkeypatch):
    """Make sure the real plugins are imported, add stand-ins where a real one
    is missing, and register the test-only plugins."""
    loader.ensure_plugins()
    for cls in (StandInConstant, StandInDiffuse):
        if cls.PLUGIN not in REGISTRY:
            monkeypatch.setitem(REGISTRY, cls.PLUGIN, cls)
    for cls in (KindsPlugin, RequiredPlugin):
        monkeypatch.setitem(REGISTRY, cls.PLUGIN, cls)
    return REGISTRY
