"""A piecewise-constant 2-D distribution on the unit square, sampled by inversion.

The square is cut into ``R x C`` equal cells (row ``r`` covers
``y in [r/R, (r+1)/R)``, column ``c`` covers ``x in [c/C, (c+1)/C)``) and cell
``(r, c)`` carries the non-negative weight ``w[r, c]``. The density is

.. math::
    p(x, y) = \\frac{w[r, c]}{\\sum w} \\, R \\, C  \\qquad (x, y) \\in \\text{cell}(r, c)

Sampling (Pharr, Jakob & Humphreys, *PBRT* 3rd ed., §13.6.7, "Piecewise-Constant
2D Distributions"): pick the row from the marginal CDF ``P(r)`` with the sample's
second coordinate, then the column from the row's conditional CDF ``P(c | r)``
with the first; both by binary search (``dr.binary_search``). The part of each
sample coordinate left over inside the chosen CDF step is reused as the
position within the cell, so the map from [0,1)^2 is continuous within cells and
stratification is preserved.

Tables are built once from numpy weights (load-time work), in float64, and
stored as Dr.Jit float32 arrays; they are *not* differentiated (the sampling
density is a proposal: gradients flow through the integrand it weights).
"""
from __future__ import annotations

from typing import Any

import drjit as dr
import numpy as np

from .. import backend as bk


class PiecewiseConstant2D:
    """Piecewise-constant density on [0,1]^2 from a ``(R, C)`` weight array."""

    def __init__(self, weights: Any) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
            raise ValueError(f"PiecewiseConstant2D: weights must be a non-empty 2-D array, "
                             f"got shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise ValueError("PiecewiseConstant2D: weights contain NaN or inf")
        w = np.maximum(w, 0.0)
        R, C = w.shape
        row_sum = w.sum(axis=1)
        total = row_sum.sum()
        if total <= 0.0:  # all black: fall back to the uniform density
            w = np.ones_like(w)
            row_sum = w.sum(axis=1)
            total = row_sum.sum()
        # Conditional CDFs (one per row, C + 1 entries); empty rows uniform.
        safe = np.where(row_sum > 0, row_sum, 1.0)[:, None]
        cond = np.where(row_sum[:, None] > 0, w / safe, 1.0 / C)
        cond_cdf = np.zeros((R, C + 1))
        cond_cdf[:, 1:] = np.cumsum(cond, axis=1)
        cond_cdf[:, -1] = 1.0
        marg = row_sum / total
        marg_cdf = np.zeros(R + 1)
        marg_cdf[1:] = np.cumsum(marg)
        marg_cdf[-1] = 1.0
        self.shape = (R, C)
        #: probability of each cell (sums to 1), numpy float64, row-major
        self.cell_prob = marg[:, None] * cond
        self._marg_cdf = bk.Float(marg_cdf.astype(np.float32))
        self._cond_cdf = bk.Float(cond_cdf.reshape(-1).astype(np.float32))
        self._density = bk.Float((self.cell_prob * (R * C)).reshape(-1).astype(np.float32))

    # ------------------------------------------------------------------
    def sample(self, s: Any, active: Any = True) -> tuple[Any, Any, Any]:
        """Map uniform ``s`` (``Array2f`` in [0,1)^2) to ``(point, density, cell)``.

        ``point`` is an ``Array2f`` in [0,1)^2, ``density`` its density w.r.t. area
        on the unit square, ``cell`` the flat cell index ``r * C + c``.
        """
        R, C = self.shape
        s = bk.Array2f(s)
        sx = dr.clip(dr.detach(s[0]), 0.0, dr.one_minus_epsilon(bk.Float))
        sy = dr.clip(dr.detach(s[1]), 0.0, dr.one_minus_epsilon(bk.Float))
        # Row: the first r whose CDF upper end exceeds sy.
        marg = self._marg_cdf
        if R > 1:
            row = bk.UInt32(dr.binary_search(
                0, R - 1, lambda i: dr.gather(bk.Float, marg, i + 1) <= sy))
        else:
            row = dr.zeros(bk.UInt32, dr.width(sy))
        lo = dr.gather(bk.Float, marg, row)
        hi = dr.gather(bk.Float, marg, row + 1)
        fy = dr.clip((sy - lo) / dr.maximum(hi - lo, 1e-30), 0.0,
                     dr.one_minus_epsilon(bk.Float))
        # Column within the row.
        cond = self._cond_cdf
        base = row * (C + 1)
        if C > 1:
            col = bk.UInt32(dr.binary_search(
                0, C - 1, lambda i: dr.gather(bk.Float, cond, base + i + 1) <= sx))
        else:
            col = dr.zeros(bk.UInt32, dr.width(sx))
        lo = dr.gather(bk.Float, cond, base + col)
        hi = dr.gather(bk.Float, cond, base + col + 1)
        fx = dr.clip((sx - lo) / dr.maximum(hi - lo, 1e-30), 0.0,
                     dr.one_minus_epsilon(bk.Float))
        cell = row * C + col
        density = dr.gather(bk.Float, self._density, cell)
        point = bk.Array2f((bk.Float(col) + fx) / C, (bk.Float(row) + fy) / R)
        return point, density, cell

    def cell_of(self, p: Any) -> Any:
        """Flat cell index of points ``p`` (clamped into the square)."""
        R, C = self.shape
        cx = dr.clip(bk.Int32(dr.floor(p[0] * C)), 0, C - 1)
        cy = dr.clip(bk.Int32(dr.floor(p[1] * R)), 0, R - 1)
        return bk.UInt32(cy * C + cx)

    def eval(self, p: Any, active: Any = True) -> Any:
        """Density at points ``p`` (``Array2f``) w.r.t. area on the unit square."""
        return dr.gather(bk.Float, self._density, self.cell_of(dr.detach(p)), active)
