"""Reconstruction filters with negative lobes: ``mitchell``, ``catmullrom``,
``lanczos`` (Mitsuba 3's plugins).

lumigrad draws each camera sample's offset from its pixel centre in proportion
to the filter (filter importance sampling, see ``sensors/rfilter.py``). A
filter ``f`` with negative lobes is sampled in proportion to ``|f|`` instead,
and the sample is weighted by ``f(x) / (p(x) ∫f)`` (per axis; the filters are
separable; ``p ≈ |f| / ∫|f|`` is the density actually sampled, so the weight is
about ``sign(f(x)) ∫|f| / ∫f``): the pixel estimate is ``∫ f(x − c) L(x) dx / ∫ f``,
the same image as Mitsuba's splatting film (Ernst et al. 2006, "Filter
Importance Sampling", §4). The signed weights add noise where the image
varies; derivative passes refuse these filters for now (``SamplingIntegrator``).

* ``mitchell`` (Mitchell & Netravali 1988, "Reconstruction Filters in
  Computer Graphics"): the cubic with parameters ``B``, ``C`` (default 1/3,
  1/3) on ``|x| < 2``;
* ``catmullrom``: the same cubic with ``B = 0, C = 1/2``;
* ``lanczos``: ``sinc(x) sinc(x / a)`` on ``|x| < a``, ``a`` = ``lobes``
  (default 3).
"""
from __future__ import annotations

import math
from typing import Any

import drjit as dr
import numpy as np

from .. import backend as bk
from ..scene.schema import Param, register
from .rfilter import _TABLE, ReconstructionFilter


class SignedFilter(ReconstructionFilter):
    """A filter that may be negative: sampled by ``|f|``, signed sample weights."""

    #: integrators weight each camera sample by :meth:`sample_weight`
    signed = True

    def _table(self) -> Any:
        if self._inv_cdf is None:
            xs = np.linspace(-self.radius, self.radius, 8193)
            w = np.abs(self.eval(xs))
            cdf = np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(xs))])
            cdf /= cdf[-1]
            us = np.linspace(0.0, 1.0, _TABLE + 1)
            self._inv_cdf = bk.Float(np.interp(us, cdf, xs).astype(np.float32))
        return self._inv_cdf

    def _integrals(self) -> tuple[float, float]:
        xs = np.linspace(-self.radius, self.radius, 16385)
        f = self.eval(xs)
        return float(np.trapezoid(f, xs)), float(np.trapezoid(np.abs(f), xs))

    @property
    def integral(self) -> float:
        """``∫ f`` (signed) over the support."""
        return self._integrals()[0]

    def sample_weight(self, u: Any, x: Any) -> Any:
        """``f(x) / (p(x) ∫f)`` for the offset ``x = sample(u)``, with ``p`` the
        density :meth:`sample` actually draws from (its tabulated inverse CDF is
        piecewise linear, so ``p = 1 / (N (x_{i+1} − x_i))`` on segment ``i``):
        ``sign(f(x)) ∫|f| / ∫f`` up to the table's accuracy, and exactly unbiased."""
        table = self._table()
        i = dr.minimum(bk.UInt32(u * _TABLE), _TABLE - 1)
        width = dr.gather(bk.Float, table, i + 1) - dr.gather(bk.Float, table, i)
        total = self.integral
        return self.eval_dr(x) * (width * (_TABLE / total))


class _Cubic(SignedFilter):
    """Mitchell-Netravali cubic of parameters ``B``, ``C`` on ``|x| < 2``."""

    radius = 2.0

    def __init__(self, B: float, C: float, id: str | None = None) -> None:
        super().__init__(id)
        self.B, self.C = float(B), float(C)

    def _coefficients(self) -> tuple:
        B, C = self.B, self.C
        return ((12 - 9 * B - 6 * C) / 6, (-18 + 12 * B + 6 * C) / 6, (6 - 2 * B) / 6,
                (-B - 6 * C) / 6, (6 * B + 30 * C) / 6, (-12 * B - 48 * C) / 6,
                (8 * B + 24 * C) / 6)

    def eval(self, x: np.ndarray) -> np.ndarray:
        a3, a2, a0, b3, b2, b1, b0 = self._coefficients()
        x = np.abs(np.asarray(x, dtype=np.float64))
        inner = (a3 * x + a2) * x * x + a0
        outer = ((b3 * x + b2) * x + b1) * x + b0
        return np.where(x < 1, inner, np.where(x < 2, outer, 0.0))

    def eval_dr(self, x: Any) -> Any:
        a3, a2, a0, b3, b2, b1, b0 = self._coefficients()
        x = dr.abs(x)
        inner = (a3 * x + a2) * x * x + a0
        outer = ((b3 * x + b2) * x + b1) * x + b0
        return dr.select(x < 1, inner, dr.select(x < 2, outer, 0.0))


@register
class MitchellFilter(_Cubic):
    """Mitchell-Netravali filter (default ``B = C = 1/3``)."""

    PLUGIN = ("rfilter", "mitchell")
    PARAMS = {"B": Param("float", 1.0 / 3.0), "C": Param("float", 1.0 / 3.0)}

    def __init__(self, B: float = 1.0 / 3.0, C: float = 1.0 / 3.0,
                 id: str | None = None) -> None:
        super().__init__(B, C, id)


@register
class CatmullRomFilter(_Cubic):
    """Catmull-Rom filter: the Mitchell-Netravali cubic with ``B = 0, C = 1/2``."""

    PLUGIN = ("rfilter", "catmullrom")
    PARAMS: dict = {}

    def __init__(self, id: str | None = None) -> None:
        super().__init__(0.0, 0.5, id)


@register
class LanczosFilter(SignedFilter):
    """Lanczos filter ``sinc(x) sinc(x / lobes)`` on ``|x| < lobes``."""

    PLUGIN = ("rfilter", "lanczos")
    PARAMS = {"lobes": Param("int", 3, min=1, max=16)}

    def __init__(self, lobes: int = 3, id: str | None = None) -> None:
        super().__init__(id)
        self.lobes = int(lobes)
        self.radius = float(self.lobes)

    def eval(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return np.where(np.abs(x) < self.radius, np.sinc(x) * np.sinc(x / self.radius), 0.0)

    def eval_dr(self, x: Any) -> Any:
        ax = dr.abs(x)
        px = math.pi * ax
        safe = dr.select(ax < 1e-4, 1.0, px)
        sinc = dr.select(ax < 1e-4, 1.0, dr.sin(safe) / safe)
        pa = px * (1.0 / self.radius)
        safe_a = dr.select(ax < 1e-4, 1.0, pa)
        sinc_a = dr.select(ax < 1e-4, 1.0, dr.sin(safe_a) / safe_a)
        return dr.select(ax < self.radius, sinc * sinc_a, 0.0)
