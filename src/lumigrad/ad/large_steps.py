"""Vertex positions optimised in a smooth parametrisation: "large steps".

Nicolet, Jacobson & Jakob 2021, "Large Steps in Inverse Rendering of
Geometry" (ACM TOG 40(6)). The gradient of an image loss with respect to
vertex positions ``x`` is sparse and noisy: vertices on silhouettes and shadow
edges get most of it, their neighbours none. Plain gradient steps move each
vertex alone, so the mesh tangles (flipped, self-intersecting triangles) long
before the shape converges, however small the step. Instead, optimise

    u = (I + λ L) x,       x = (I + λ L)⁻¹ u

with ``L`` the combinatorial (uniform) Laplacian of the mesh graph
(``L = D − A``: degrees minus adjacency). A step ``Δu`` moves the vertices by
``(I + λ L)⁻¹ Δu``, a smoothed step that reaches the whole surface (a Sobolev
preconditioning of the gradient, as the paper shows); ``λ`` sets how smooth
(the paper uses 10–100 for meshes of a few thousand vertices). Pair it with
``drjit.opt.Adam(..., uniform=True)`` (the paper's UniformAdam: one
second-moment scale for all coordinates, so the step keeps its smooth shape).

The system is solved with a sparse Cholesky factorisation (``cholespy``, by the
paper's authors), computed once per mesh; the derivative of the solve is the
same solve (``I + λ L`` is symmetric), so gradients reach ``u`` in reverse mode
and tangents reach ``x`` in forward mode (:class:`_SolveOp`).

Vertices that share a position (meshes split at UV seams or at the corners of
flat-shaded faces, Mitsuba's ``cube``) are welded first: one unknown per
position, copies moved together (else seams would tear open).
"""
from __future__ import annotations

from typing import Any

import drjit as dr
import numpy as np

from .. import backend as bk


class LargeSteps:
    """The parametrisation ``x = (I + λ L)⁻¹ u`` of one mesh's vertex positions.

    Args:
        positions: the mesh's vertex positions (flat ``Float`` as in
            ``params['<shape>.vertex_positions']``, or an ``(n, 3)`` array).
        faces: its triangles (flat ``UInt32`` or ``(m, 3)`` indices).
        lambda_: smoothness weight ``λ`` (> 0).

    Typical use (see ``examples/shape_reconstruction.py``)::

        steps = lg.LargeSteps(params["obj.vertex_positions"], params["obj.faces"], 20.0)
        opt = dr.opt.Adam(lr=1e-2, uniform=True)
        opt["u"] = steps.to_differential(params["obj.vertex_positions"])
        for it in range(n):
            params["obj.vertex_positions"] = steps.from_differential(opt["u"])
            params.update()
            loss = ...
            dr.backward(loss)
            opt.step()
    """

    def __init__(self, positions: Any, faces: Any, lambda_: float = 19.0) -> None:
        try:
            import cholespy
        except ImportError as e:        # a dependency of lumigrad; say so if it is missing
            raise ImportError("lg.LargeSteps needs the 'cholespy' package (sparse Cholesky "
                              "solver): pip install cholespy") from e
        lam = float(lambda_)
        if not (lam > 0 and np.isfinite(lam)):
            raise ValueError(f"LargeSteps: lambda_ must be a positive number, got {lambda_!r}")
        p = _as_rows(positions, np.float32, "positions")
        f = _as_rows(faces, np.int64, "faces")
        if f.size == 0 or p.size == 0:
            raise ValueError("LargeSteps: the mesh is empty")
        if f.min() < 0 or f.max() >= p.shape[0]:
            raise ValueError(f"LargeSteps: face indices outside [0, {p.shape[0] - 1}]")
        if not np.all(np.isfinite(p)):
            raise ValueError("LargeSteps: vertex positions contain NaN or inf")
        from ..geometry.edges import weld_by_position
        rep = weld_by_position(p)
        # Unknowns: one per distinct position; ``self.copy_of[k]``: vertex k's unknown.
        firsts, self.copy_of = np.unique(rep, return_inverse=True)
        self.copy_of = self.copy_of.ravel().astype(np.int64)
        self.vertex_count = int(p.shape[0])
        n = self.n = int(firsts.size)
        w = self.copy_of[f]
        pairs = np.concatenate([w[:, [0, 1]], w[:, [1, 2]], w[:, [2, 0]]])
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]                 # degenerate triangles
        # Each edge once (as one integer key: np.unique of rows sorts far slower).
        lo, hi = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0], pairs[:, 1])
        key = np.unique(lo * n + hi)
        pairs = np.stack([key // n, key % n], axis=1)
        degree = np.bincount(pairs.ravel(), minlength=n).astype(np.float64)
        # I + λ (D − A) in coordinate format: the diagonal, then both triangles.
        self._rows = np.concatenate([np.arange(n), pairs[:, 0], pairs[:, 1]]).astype(np.int32)
        self._cols = np.concatenate([np.arange(n), pairs[:, 1], pairs[:, 0]]).astype(np.int32)
        self._vals = np.concatenate([1.0 + lam * degree,
                                     np.full(2 * len(pairs), -lam)]).astype(np.float64)
        self.lambda_ = lam
        self._solver = cholespy.CholeskySolverF(n, self._rows, self._cols, self._vals,
                                                cholespy.MatrixType.COO)

    # -- the linear maps (numpy, (n, 3) rows) ------------------------------------
    def _matvec(self, x: np.ndarray) -> np.ndarray:
        """``(I + λ L) x`` for unknowns ``x`` (n, 3)."""
        out = np.empty_like(x, dtype=np.float64)
        for c in range(3):
            out[:, c] = np.bincount(self._rows, self._vals * x[self._cols, c], minlength=self.n)
        return out

    def _solve(self, b: np.ndarray) -> np.ndarray:
        """``(I + λ L)⁻¹ b`` for right-hand sides ``b`` (n, 3)."""
        rhs = np.ascontiguousarray(b, dtype=np.float32)
        x = np.zeros_like(rhs)
        self._solver.solve(rhs, x)
        return x

    def _gather_copies(self, x: np.ndarray) -> Any:
        """Unknowns (n, 3) to a flat ``Float`` of every vertex (copies included)."""
        return bk.from_numpy(bk.Float, np.ascontiguousarray(x[self.copy_of], np.float32).ravel())

    def _sum_copies(self, g: Any) -> np.ndarray:
        """Adjoint of :meth:`_gather_copies`: per-vertex values summed per unknown."""
        rows = np.asarray(g, dtype=np.float64).reshape(-1, 3)
        return np.stack([np.bincount(self.copy_of, rows[:, c], minlength=self.n)
                         for c in range(3)], axis=1)

    # -- the parametrisation -------------------------------------------------------
    def to_differential(self, positions: Any) -> Any:
        """``u = (I + λ L) x`` (flat ``Float`` of ``3 n`` values, ``n`` the number
        of distinct positions) for vertex positions ``positions`` (detached)."""
        p = _as_rows(dr.detach(positions) if isinstance(positions, dr.ArrayBase)
                     else positions, np.float64, "positions")
        if p.shape[0] != self.vertex_count:
            raise ValueError(f"LargeSteps.to_differential: {p.shape[0]} vertices given, the "
                             f"mesh has {self.vertex_count}")
        x = np.zeros((self.n, 3))
        x[self.copy_of] = p
        return bk.from_numpy(bk.Float, self._matvec(x).astype(np.float32).ravel())

    def from_differential(self, u: Any) -> Any:
        """Vertex positions ``x = (I + λ L)⁻¹ u`` as a flat ``Float`` of every
        vertex of the mesh (for ``params['<shape>.vertex_positions']``),
        differentiable in ``u`` (forward and reverse mode)."""
        u = bk.Float(u)
        if dr.width(u) != 3 * self.n:
            raise ValueError(f"LargeSteps.from_differential: expected {3 * self.n} values "
                             f"(3 per distinct vertex position), got {dr.width(u)}")
        return dr.custom(_SolveOp, self, u)


class _SolveOp(dr.CustomOp):
    """``x = G (I + λ L)⁻¹ u`` (``G`` copies each unknown to its vertices)."""

    def eval(self, steps: LargeSteps, u: Any) -> Any:
        self.steps = steps
        return steps._gather_copies(steps._solve(np.asarray(u).reshape(-1, 3)))

    def forward(self) -> None:
        s = self.steps
        self.set_grad_out(s._gather_copies(s._solve(np.asarray(self.grad_in("u")).reshape(-1, 3))))

    def backward(self) -> None:
        # (I + λ L) is symmetric: the adjoint solve is the same solve.
        s = self.steps
        g = s._solve(s._sum_copies(self.grad_out()))
        self.set_grad_in("u", bk.from_numpy(bk.Float, g.astype(np.float32).ravel()))

    def name(self) -> str:
        return "lumigrad.LargeSteps"


def _as_rows(a: Any, dtype: Any, what: str) -> np.ndarray:
    arr = np.asarray(a, dtype=dtype)
    if arr.size % 3:
        raise ValueError(f"LargeSteps: {what} must hold 3 values per row, got {arr.size}")
    return arr.reshape(-1, 3)
