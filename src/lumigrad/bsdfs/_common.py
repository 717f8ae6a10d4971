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


def any_nested(bsdfs: Any, flag: str) -> bool:
    """Whether one of ``bsdfs`` (a BSDF or a list), or a BSDF nested in one, has
    the attribute ``flag`` set (e.g. ``needs_tangents``)."""
    from .base import BSDF
    for b in (bsdfs if isinstance(bsdfs, (list, tuple)) else [bsdfs]):
        if getattr(b, flag, False) or any(
                any_nested(v, flag) for v in vars(b).values() if isinstance(v, BSDF)):
            return True
    return False


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


def detached_clone(obj: Any) -> Any:
    """A shallow copy of a plugin whose nested textures/BSDFs are cloned too and
    whose parameters are set (through the clone's own setters) to detached
    copies of the current values."""
    import copy

    from ..textures.base import Texture
    from .base import BSDF

    clone = copy.copy(obj)
    for name, val in vars(obj).items():
        if isinstance(val, (Texture, BSDF)):
            setattr(clone, name, detached_clone(val))
    for _key, value, setter in list(clone.parameters()):
        if setter is not None and isinstance(value, dr.ArrayBase):
            setter(dr.detach(value))
    return clone


class FreezableSampling:
    """Sampling with a frozen, detached snapshot of the parameters.

    Subclasses implement ``_sample`` and ``_eval_pdf(si, wo, active, want_eval,
    want_pdf)``, from which ``eval`` and ``_pdf`` follow. Normally ``sample`` and
    ``pdf`` are ``_sample`` and ``_pdf``. While frozen, directions, lobe choices and the pdf
    come from the snapshot and the weight is ``eval(wo) / pdf_snapshot(wo)`` with
    the *current* parameters: an unbiased estimator whose per-sample value is a
    continuous function of the parameters, so finite differences with common
    random numbers agree with forward/reverse mode (whose derivative is
    ``(∂f/∂θ) / pdf`` for a detached direction in either case).
    """

    _frozen: Any = None

    def freeze_sampling(self) -> None:
        snap = detached_clone(self)
        snap._frozen = None
        self._frozen = snap

    def unfreeze_sampling(self) -> None:
        self._frozen = None

    def sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> Any:
        snap = self._frozen
        if snap is None:
            return self._sample(si, sample1, sample2, active)
        bs = snap._sample(si, sample1, sample2, active)
        ok = (bs.pdf > 0) & ~bk.Bool(bs.delta)
        value = self.eval(si, bs.wo, ok)
        bs.weight = dr.select(ok, value / safe(bs.pdf, ok), 0.0)
        return bs

    def eval(self, si: Any, wo: Any, active: Any = True) -> Any:
        return self._eval_pdf(si, wo, active, True, False)[0]

    def _pdf(self, si: Any, wo: Any, active: Any = True) -> Any:
        return self._eval_pdf(si, wo, active, False, True)[1]

    def pdf(self, si: Any, wo: Any, active: Any = True) -> Any:
        return (self._frozen or self)._pdf(si, wo, active)

    def eval_pdf(self, si: Any, wo: Any, active: Any = True) -> tuple[Any, Any]:
        if self._frozen is None:
            return self._eval_pdf(si, wo, active, True, True)
        return self.eval(si, wo, active), self._frozen._pdf(si, wo, active)
