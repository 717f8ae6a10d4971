"""The constant texture, and the helpers that turn plain values into textures."""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import drjit as dr
import numpy as np

from .. import backend as bk
from ..scene.schema import Param, register
from .base import Texture


def to_color(value: Any, where: str) -> Any:
    """Convert a float, a 3-sequence, a ``Float`` or an ``Array3f`` to a width-1 ``Array3f``.

    Dr.Jit inputs are kept attached (no copy, no detach), so a grad-enabled
    value or a function of a latent variable stays differentiable. A scalar
    ``Float`` is broadcast to grey. The result is evaluated (``dr.make_opaque``).
    """
    if isinstance(value, bk.Array3f):
        arr = value
    elif isinstance(value, bk.Float):
        arr = bk.Array3f(value, value, value)
    elif isinstance(value, dr.ArrayBase):
        if dr.size_v(value) == 3:
            arr = bk.Array3f(value)
        elif dr.size_v(value) == 1 or dr.depth_v(value) == 1:
            f = bk.Float(value)
            arr = bk.Array3f(f, f, f)
        else:
            raise TypeError(f"{where}: cannot use a {type(value).__name__} as a colour")
    elif isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: expected a number or an RGB triple, got {value!r}")
    elif isinstance(value, (int, float, np.floating, np.integer)):
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"{where}: value {value!r} is not finite")
        arr = bk.Array3f(v, v, v)
    elif isinstance(value, (tuple, list, np.ndarray)):
        vals = np.asarray(value, dtype=np.float64).ravel()
        if vals.size == 1:
            vals = np.repeat(vals, 3)
        if vals.size != 3:
            raise ValueError(f"{where}: expected 1 or 3 components, got {vals.size}")
        if not np.all(np.isfinite(vals)):
            raise ValueError(f"{where}: value {value!r} is not finite")
        arr = bk.Array3f(*[float(v) for v in vals])
    else:
        raise TypeError(f"{where}: expected a number, an RGB triple or a Dr.Jit array, "
                        f"got {type(value).__name__}")
    if dr.width(arr) != 1:
        raise ValueError(f"{where}: expected a single colour (width 1), got an array of "
                         f"width {dr.width(arr)}")
    # Store an evaluated variable, never a literal: Dr.Jit 1.5.0's dr.select with a
    # constant-folded mask resizes a width-1 *literal* operand in place (the stored
    # parameter would then have the width of the last call). Kernels also do not
    # recompile when the value changes.
    dr.make_opaque(arr)
    return arr


@register
class ConstantTexture(Texture):
    """A spatially uniform value (Mitsuba's ``rgb``/``float``/``spectrum`` properties).

    Stored as a width-1 ``Array3f`` (a grey value is broadcast to three
    channels); ``eval_1`` returns the channel mean. Key ``value``.
    """

    PLUGIN = ("texture", "constant")
    PARAMS = {
        "value": Param("color", default=0.5, doc="RGB value (a float is grey)"),
    }

    def __init__(self, value: Any = 0.5, id: str | None = None) -> None:
        super().__init__(id)
        self._where = f"texture 'constant'{f' (id {id!r})' if id else ''}"
        self.value = to_color(value, f"{self._where}: 'value'")

    def _set_value(self, v: Any) -> None:
        self.value = to_color(v, f"{self._where}: 'value'")

    def eval(self, si: Any, active: Any = True) -> Any:
        return self.value

    def eval_1(self, si: Any, active: Any = True) -> Any:
        v = self.value
        return (v[0] + v[1] + v[2]) * (1.0 / 3.0)

    def mean(self) -> float:
        return float(np.mean(np.array(dr.detach(self.value), dtype=np.float64)))

    def mean_detached(self) -> Any:
        """Mean of the channels as a detached width-1 ``Float`` (no host sync)."""
        v = dr.detach(self.value)
        return (v[0] + v[1] + v[2]) * (1.0 / 3.0)

    def is_constant(self) -> bool:
        return True

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield "value", self.value, self._set_value

    def __repr__(self) -> str:
        return f"ConstantTexture({np.array(dr.detach(self.value)).ravel().tolist()})"


def as_texture(value: Any, where: str) -> Texture:
    """A texture object from a texture, a float, an RGB triple or a Dr.Jit value."""
    if isinstance(value, Texture):
        return value
    if value is None:
        raise ValueError(f"{where}: a value is required")
    return ConstantTexture(to_color(value, where))


def texture_parameters(prefix: str, tex: Texture
                       ) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
    """Yield a nested texture's parameters with ``prefix.`` prepended to their keys."""
    for key, value, setter in tex.parameters():
        yield f"{prefix}.{key}", value, setter


def texture_mean(tex: Texture) -> Any:
    """Detached width-1 ``Float`` mean of a texture (for sampling heuristics)."""
    f = getattr(tex, "mean_detached", None)
    if f is not None:
        return f()
    return bk.Float(tex.mean())
