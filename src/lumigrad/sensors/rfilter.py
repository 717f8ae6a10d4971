"""Reconstruction filters (``box``, ``tent``, ``gaussian``) and filter importance sampling.

A pixel value is the filter-weighted average of the image plane radiance,
``I_p = ∫ f(x - c_p) L(x) dx / ∫ f``. Rather than splatting every sample into
all pixels within the filter radius (atomics, a ratio estimator), lumigrad
draws each sample's offset from the pixel centre *proportionally to the
filter* (filter importance sampling; Ernst et al. 2006, "Filter Importance
Sampling"), so every sample contributes to exactly one pixel with weight
``1/spp``. All three filters are separable and non-negative, so this is exact:
both estimators converge to the same image as Mitsuba's splatting film. (At the
image border Mitsuba truncates the filter to the image; lumigrad samples the
full footprint, a difference confined to a filter radius from the border.)
"""
from __future__ import annotations

from typing import Any

import drjit as dr
import numpy as np

from .. import backend as bk
from ..scene.schema import Param, register

_TABLE = 256  # resolution of the tabulated inverse CDF


class ReconstructionFilter:
    radius: float = 0.5

    def __init__(self, id: str | None = None) -> None:
        self.id = id
        self._inv_cdf: Any = None

    def eval(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def eval_dr(self, x: Any) -> Any:
        """The 1-D filter at offsets ``x`` (pixels), a Dr.Jit ``Float``."""
        raise NotImplementedError

    @property
    def integral(self) -> float:
        """``∫ f(x) dx`` of the 1-D filter over its support."""
        xs = np.linspace(-self.radius, self.radius, 16385)
        return float(np.trapezoid(np.maximum(self.eval(xs), 0.0), xs))

    def weight_dr(self, dx: Any, dy: Any) -> Any:
        """The normalised 2-D filter ``f(dx) f(dy) / (∫f)²`` (pixels⁻²): the
        density with which :meth:`sample` places a pixel's samples, hence the
        weight of a film point in that pixel (used to splat boundary terms)."""
        return self.eval_dr(dx) * self.eval_dr(dy) * (1.0 / self.integral ** 2)

    def _table(self) -> Any:
        # Tabulated inverse CDF of the normalised 1-D filter on [-r, r].
        if self._inv_cdf is None:
            xs = np.linspace(-self.radius, self.radius, 8193)
            w = np.maximum(self.eval(xs), 0.0)
            cdf = np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(xs))])
            cdf /= cdf[-1]
            us = np.linspace(0.0, 1.0, _TABLE + 1)
            self._inv_cdf = bk.Float(np.interp(us, cdf, xs).astype(np.float32))
        return self._inv_cdf

    def sample(self, u: Any) -> Any:
        """Map uniform ``u`` in [0,1) to an offset distributed as the filter (1-D)."""
        if isinstance(self, BoxFilter) and self.radius == 0.5:
            return u - 0.5
        table = self._table()
        x = u * _TABLE
        i = dr.minimum(bk.UInt32(x), _TABLE - 1)
        t = x - bk.Float(i)
        a = dr.gather(bk.Float, table, i)
        b = dr.gather(bk.Float, table, i + 1)
        return dr.lerp(a, b, t)


@register
class BoxFilter(ReconstructionFilter):
    """Box filter of half-width ``radius`` (default 0.5: one pixel)."""

    PLUGIN = ("rfilter", "box")
    PARAMS = {"radius": Param("float", 0.5, min_exclusive=0.0, max=16.0)}

    def __init__(self, radius: float = 0.5, id: str | None = None) -> None:
        super().__init__(id)
        self.radius = float(radius)

    def eval(self, x: np.ndarray) -> np.ndarray:
        return (np.abs(x) <= self.radius).astype(np.float64)

    def eval_dr(self, x: Any) -> Any:
        # Inclusive: a film point on the border between two pixels must count
        # in one of them (the footprint of a radius-0.5 box holds only the pixel
        # the point's floor names, at offset in (-0.5, 0.5]).
        return dr.select(dr.abs(x) <= self.radius, 1.0, 0.0)

    @property
    def integral(self) -> float:
        return 2.0 * self.radius


@register
class TentFilter(ReconstructionFilter):
    """Tent (triangle) filter ``max(0, 1 - |x|/radius)``, default radius 1."""

    PLUGIN = ("rfilter", "tent")
    PARAMS = {"radius": Param("float", 1.0, min_exclusive=0.0, max=16.0)}

    def __init__(self, radius: float = 1.0, id: str | None = None) -> None:
        super().__init__(id)
        self.radius = float(radius)

    def eval(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(0.0, 1.0 - np.abs(x) / self.radius)

    def eval_dr(self, x: Any) -> Any:
        return dr.maximum(0.0, 1.0 - dr.abs(x) * (1.0 / self.radius))

    @property
    def integral(self) -> float:
        return self.radius


@register
class GaussianFilter(ReconstructionFilter):
    """Gaussian of standard deviation ``stddev`` (default 0.5 pixel), truncated at
    4σ and shifted down so it reaches zero there (as Mitsuba's)."""

    PLUGIN = ("rfilter", "gaussian")
    PARAMS = {"stddev": Param("float", 0.5, min_exclusive=0.0, max=8.0)}

    def __init__(self, stddev: float = 0.5, id: str | None = None) -> None:
        super().__init__(id)
        self.stddev = float(stddev)
        self.radius = 4.0 * self.stddev

    def eval(self, x: np.ndarray) -> np.ndarray:
        a = -1.0 / (2.0 * self.stddev ** 2)
        return np.maximum(0.0, np.exp(a * x * x) - np.exp(a * self.radius ** 2))

    def eval_dr(self, x: Any) -> Any:
        a = -1.0 / (2.0 * self.stddev ** 2)
        return dr.maximum(0.0, dr.exp(a * x * x) - float(np.exp(a * self.radius ** 2)))
