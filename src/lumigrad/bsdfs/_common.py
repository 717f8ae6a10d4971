"""Helpers shared by the BSDF plugins (not public API)."""
from __future__ import annotations

from typing import Any

import drjit as dr

from .. import backend as bk


def width(*xs: Any) -> int:
    """Number of lanes of a call (the widest argument)."""
    return max([dr.width(x) for x in xs if isinstance(x, dr.ArrayBase)] + [1])


def mask(active: Any, n: int) -> Any:
    """``active`` as a ``Bool`` array of ``n`` lanes.

    A Python ``bool`` becomes an *evaluated* array, not a literal: in Dr.Jit 1.5.0
    ``dr.select`` with a constant-folded (literal) mask and a width-1 AD operand
    drops the broadcast in reverse mode (the adjoint of a width-1 parameter is
    then one lane's instead of the sum over lanes) and resizes a literal operand
    in place. Masks derived from an evaluated one are never literal.
    """
    if isinstance(active, (bool, int)) and not isinstance(active, dr.ArrayBase):
        return dr.opaque(bk.Bool, bool(active), n)
    m = bk.Bool(active)
    return m if dr.width(m) == n else m & dr.opaque(bk.Bool, True, n)


def full_bool(value: bool, n: int) -> Any:
    return dr.full(bk.Bool, value, n)


def full_float(value: float, n: int) -> Any:
    return dr.full(bk.Float, value, n)


def safe(x: Any, ok: Any) -> Any:
    """``x`` where ``ok`` else 1: division by it stays finite, also in derivatives."""
    return dr.select(ok, x, 1.0)


def where_prefix(kind: str, id: str | None) -> str:
    return f"bsdf '{kind}'{f' (id {id!r})' if id else ''}"


def to_scalar_float(value: Any, where: str, positive: bool = False) -> Any:
    """A width-1 ``Float`` from a number or a Dr.Jit value (kept attached)."""
    import math

    if isinstance(value, dr.ArrayBase):
        f = value if isinstance(value, bk.Float) else bk.Float(value)
        if dr.width(f) != 1:
            raise ValueError(f"{where}: expected a single value, got an array of width "
                             f"{dr.width(f)}")
        v = float(dr.detach(f)[0])
    else:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{where}: expected a number, got {value!r}") from None
        f = bk.Float(v)
    if not math.isfinite(v) or (positive and v <= 0):
        raise ValueError(f"{where}: expected a {'positive ' if positive else ''}finite number, "
                         f"got {v!r}")
    dr.make_opaque(f)   # never store a literal (see ``mask``)
    return f
