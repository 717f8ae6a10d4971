"""The checkerboard texture (Mitsuba's ``checkerboard``)."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr

from ..scene.schema import Param, register
from .base import Texture
from .bitmap import apply_to_uv, check_to_uv
from .constant import as_texture, texture_mean, texture_parameters


@register
class CheckerboardTexture(Texture):
    """2×2 checks on the unit square of (transformed) uv, repeated periodically.

    With ``(u, v) = to_uv(uv)``, ``a = frac(u) > 1/2`` and ``b = frac(v) > 1/2``,
    the value is ``color0`` where ``a == b`` (the bottom-left and top-right
    quarters) and ``color1`` elsewhere. Keys ``color0.value``, ``color1.value``
    (or the nested textures' keys).
    """

    PLUGIN = ("texture", "checkerboard")
    PARAMS = {
        "color0": Param("texture", default=0.4, min=0.0, doc="colour of the checks at uv (0,0)"),
        "color1": Param("texture", default=0.2, min=0.0, doc="colour of the other checks"),
        "to_uv": Param("transform", default=None, singular_ok=True,
                         doc="transform applied to uv"),
    }

    def __init__(self, color0: Any = 0.4, color1: Any = 0.2, to_uv: Any = None,
                 id: str | None = None) -> None:
        super().__init__(id)
        where = f"texture 'checkerboard'{f' (id {id!r})' if id else ''}"
        self.color0 = as_texture(color0, f"{where}: 'color0'")
        self.color1 = as_texture(color1, f"{where}: 'color1'")
        self.to_uv = check_to_uv(to_uv, where)

    def _mask(self, si: Any) -> Any:
        uv = apply_to_uv(self.to_uv, dr.detach(si.uv))
        a = (uv[0] - dr.floor(uv[0])) > 0.5
        b = (uv[1] - dr.floor(uv[1])) > 0.5
        return a == b

    def eval(self, si: Any, active: Any = True) -> Any:
        m = self._mask(si)
        return dr.select(m, self.color0.eval(si, active), self.color1.eval(si, active))

    def eval_1(self, si: Any, active: Any = True) -> Any:
        m = self._mask(si)
        return dr.select(m, self.color0.eval_1(si, active), self.color1.eval_1(si, active))

    def mean(self) -> float:
        return 0.5 * (self.color0.mean() + self.color1.mean())

    def mean_detached(self) -> Any:
        return 0.5 * (texture_mean(self.color0) + texture_mean(self.color1))

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield from texture_parameters("color0", self.color0)
        yield from texture_parameters("color1", self.color1)
