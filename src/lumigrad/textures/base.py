"""The texture interface.

``eval(si, active) -> Color3f`` (RGB) and ``eval_1(si, active) -> Float``
(scalar, e.g. roughness) at ``si.uv``. ``mean()`` returns a scalar Python float
average (used for sampling heuristics). ``parameters()`` yields
``(key_suffix, value, setter)`` like BSDF.parameters: ``'value'`` for a
constant, ``'data'`` (a TensorXf H×W×C) for a bitmap, ``'color0.value'`` ...
"""
from __future__ import annotations

from typing import Any, Callable, Iterator


class Texture:
    def __init__(self, id: str | None = None) -> None:
        self.id = id

    def eval(self, si: Any, active: Any = True) -> Any:
        raise NotImplementedError

    def eval_1(self, si: Any, active: Any = True) -> Any:
        raise NotImplementedError

    def mean(self) -> float:
        raise NotImplementedError

    def is_constant(self) -> bool:
        return False

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        return iter(())
