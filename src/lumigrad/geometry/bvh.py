"""Bounding volume hierarchy over all triangles of a scene.

Build (CPU, vectorised numpy, no per-node or per-triangle Python loop)
----------------------------------------------------------------------
The triangles are sorted along a Morton (Z-order) curve of their box centroids,
quantised to 21 bits per axis on a cube that encloses the scene (63-bit codes).
After the sort every node of the tree is a *contiguous range* of the sorted
triangles, so the tree is built top-down one level at a time, processing all
nodes of a level with array operations:

* **Large nodes** (more than ``_SAH_MIN`` triangles) choose their split by the
  surface area heuristic (SAH; Goldsmith & Salmon 1987, MacDonald & Booth 1990)
  among candidate positions along the curve: the boundaries between the 2^k
  Morton sub-cells below the node's common code prefix (an octree of depth
  ``k/3`` inside the node's cell). The bounds of the sub-cells come from one
  ``reduceat`` over the level's triangles and the SAH of every candidate from
  prefix/suffix unions over the sub-cells. This is the "SAH on top, Morton
  below" idea of HLBVH (Pantaleoni & Luebke 2010; Garanzha et al. 2011).
* **Small nodes** split where the highest differing Morton bit changes, as an
  LBVH does (Lauterbach et al. 2009; Karras 2012), found by one
  ``searchsorted`` per level.
* **Leaves**: a node of at most ``leaf_size`` triangles becomes a leaf unless
  splitting it once more lowers its SAH cost (SAH-aware leaf collapsing, as
  suggested by Karras 2012, evaluated with one level of look-ahead).

A depth guard switches to median splits so that no leaf is deeper than
``_MAX_DEPTH``; this bounds the traversal stack.

Layout (flat Dr.Jit arrays)
---------------------------
Every interior node is one 16-float record holding the boxes of its *two
children* and their references (BVH2 with child boxes in the parent, so one
node fetch tests both children)::

    [L.lo.xyz, L.hi.xyz, R.lo.xyz, R.hi.xyz, bits(L.ref), bits(R.ref), 0, 0]

A reference is an interior node index, or ``0x80000000 | start << 4 | (count-1)``
for a leaf covering sorted triangles ``[start, start + count)``. Per sorted
triangle we store 12 floats ``[p0, e1 = p1 - p0, e2 = p2 - p0, bits(prim), 0, 0]``
for the intersection test; both arrays are read with 4-wide packet gathers.

Traversal (Dr.Jit kernel, LLVM and CUDA alike)
----------------------------------------------
One symbolic ``dr.while_loop`` per ray with a per-lane stack in local memory
(``dr.alloc_local``). Each iteration may (1) start a pending leaf, (2) test one
triangle of the current leaf and (3) test the two children of the current
interior node, pushing the farther hit child and descending into the nearer,
in the spirit of the "if-if" traversal of Aila & Laine 2009, which keeps the
SIMD lanes busy. Closest-hit queries shrink ``t_max`` as hits are found, so
farther boxes are culled; any-hit queries stop at the first hit.

Ray-box tests are slab tests (Kay & Kajiya 1986) with the near/far plane
chosen by the sign of ``1/d``; ``dr.rcp`` gives ``inf`` for ``d = 0`` and it is
clamped to a huge finite value so that ``0 * inf`` can never produce a NaN; the
far distance is enlarged by ``1 + 2 gamma_3`` (Ize 2013, "Robust BVH ray
traversal") so that rounding never culls a box the ray touches. Ray-triangle
tests are Möller & Trumbore 1997 ("Fast, minimum storage ray/triangle
intersection"), two-sided. Triangles of (numerically) zero area are stored with
zero edges, whose determinant is exactly 0, so they never hit and never make NaNs.

Ray intersection is not differentiated: the inputs are detached, the outputs are
plain arrays; the integrator recomputes a differentiable hit from ``prim``.
"""
from __future__ import annotations

import math
from typing import Any

import drjit as dr
import numpy as np

from .. import backend as bk

__all__ = ["BVH"]

_LEAF_FLAG = 0x80000000
_SENTINEL = 0xFFFFFFFF          # "no node": stack empty / lane inactive
_MAX_LEAF_SIZE = 16             # leaf counts are stored in 4 bits
_MAX_TRIANGLES = (1 << 27) - 1  # leaf starts are stored in 27 bits
_STACK_SIZE = 64                # per-lane traversal stack (entries)
_MAX_DEPTH = 60                 # leaves never deeper; the stack holds <= depth entries
_SAH_MIN = 64                   # nodes larger than this use the SAH split search
_SAH_BITS = 6                   # Morton sub-cells per SAH node: 2**_SAH_BITS
_C_TRAV = 1.0                   # SAH cost of visiting a node (two box tests)
_C_ISECT = 1.0                  # SAH cost of one ray-triangle test
_BIG = 1e30                     # clamp for 1/d (keeps 0 * (1/d) finite)
_ROBUST = 1.0 + 2.0 * (3 * 2.0**-24) / (1 - 3 * 2.0**-24)  # Ize 2013: 1 + 2 gamma_3
_DEGENERATE_EPS = 1e-7          # |e1 x e2| <= eps * (longest edge)^2  -> zero area


# ----------------------------------------------------------------------------
# numpy helpers (build time)
# ----------------------------------------------------------------------------
def _spread_bits(v: np.ndarray) -> np.ndarray:
    """Insert two zero bits between the low 21 bits of ``v`` (uint64)."""
    v = v & np.uint64(0x1FFFFF)
    v = (v | (v << np.uint64(32))) & np.uint64(0x1F00000000FFFF)
    v = (v | (v << np.uint64(16))) & np.uint64(0x1F0000FF0000FF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x100F00F00F00F00F)
    v = (v | (v << np.uint64(4))) & np.uint64(0x10C30C30C30C30C3)
    v = (v | (v << np.uint64(2))) & np.uint64(0x1249249249249249)
    return v


def _morton_codes(c: np.ndarray) -> np.ndarray:
    """63-bit Morton codes of points ``c`` (F,3), quantised on a bounding cube.

    A cube (not a per-axis box) keeps the implied split planes near the middle
    of the longest axis, which is what SAH prefers for elongated scenes.
    """
    lo = c.min(axis=0)
    extent = float((c.max(axis=0) - lo).max())
    scale = (2**21 - 1) / extent if extent > 0 else 0.0
    q = np.clip((c - lo) * scale, 0, 2**21 - 1).astype(np.uint64)
    return (_spread_bits(q[:, 0]) << np.uint64(2)) | (_spread_bits(q[:, 1]) << np.uint64(1)) \
        | _spread_bits(q[:, 2])


def _highest_bit(x: np.ndarray) -> np.ndarray:
    """Index of the highest set bit of nonzero uint64 values (int64)."""
    b = np.frexp(x.astype(np.float64))[1].astype(np.int64) - 1
    # float64 rounding may have bumped x up to the next power of two.
    over = (x >> b.astype(np.uint64)) == 0
    return b - over


def _half_area(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Half the surface area of boxes (..., 3); 0 for empty (inverted) boxes."""
    e = np.maximum(hi - lo, 0)
    return e[..., 0] * e[..., 1] + e[..., 1] * e[..., 2] + e[..., 2] * e[..., 0]


# Kernel min/max as compare + select: dr.minimum/dr.maximum lower to LLVM's
# NaN-propagating fminimum/fmaximum, which the x86 backend of some LLVM
# versions cannot select once a value is scalarised ("Cannot select:
# fminimum"); our operands are never NaN, so a select is equivalent.
def _min(a: Any, b: Any) -> Any:
    return dr.select(a < b, a, b)


def _max(a: Any, b: Any) -> Any:
    return dr.select(a > b, a, b)


def _clamp_big(x: Any) -> Any:
    return dr.select(x > _BIG, _BIG, dr.select(x < -_BIG, -_BIG, x))


def _validate(positions: Any, faces: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        p = np.asarray(positions)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{where}: positions must be an array of shape (N, 3)") from exc
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"{where}: positions must have shape (N, 3), got {p.shape}")
    if p.shape[0] == 0:
        raise ValueError(f"{where}: no vertex positions (empty array)")
    if not np.issubdtype(p.dtype, np.number):
        raise ValueError(f"{where}: positions must be numeric, got dtype {p.dtype}")
    p = np.ascontiguousarray(p, dtype=np.float32)
    if not np.all(np.isfinite(p)):
        bad = int(np.argmax(~np.isfinite(p).all(axis=1)))
        raise ValueError(f"{where}: vertex {bad} has a NaN or infinite coordinate "
                         f"{p[bad].tolist()}")
    if faces is None:
        return p, None  # type: ignore[return-value]
    f = np.asarray(faces)
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"{where}: faces must have shape (F, 3), got {f.shape}")
    if f.shape[0] == 0:
        raise ValueError(f"{where}: no triangles (faces is empty)")
    if not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"{where}: faces must hold integer vertex indices, got dtype {f.dtype}")
    if f.shape[0] > _MAX_TRIANGLES:
        raise ValueError(f"{where}: {f.shape[0]} triangles exceed the supported "
                         f"maximum of {_MAX_TRIANGLES}")
    f = f.astype(np.int64)
    if f.min() < 0 or f.max() >= p.shape[0]:
        bad = int(np.argmax(((f < 0) | (f >= p.shape[0])).any(axis=1)))
        raise ValueError(f"{where}: face {bad} refers to vertices {f[bad].tolist()} outside "
                         f"[0, {p.shape[0] - 1}]")
    return p, f


class BVH:
    """A binary BVH over triangles with Dr.Jit traversal kernels.

    Build with :meth:`BVH.build`; query with :meth:`ray_intersect` (closest hit)
    and :meth:`ray_test` (any hit, for shadow rays).
    """

    def __init__(self) -> None:  # use BVH.build()
        self._faces: np.ndarray | None = None
        self._n_vertices = 0
        self.leaf_size = 0
        self.depth = 0
        self.build_time = 0.0

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, positions: np.ndarray, faces: np.ndarray, leaf_size: int = 4) -> "BVH":
        """Build a BVH over triangles ``faces`` (F,3) of vertices ``positions`` (N,3).

        ``positions`` are world-space float32 coordinates, ``faces`` vertex
        indices of all meshes concatenated; prim ``i`` of the queries is row
        ``i`` of ``faces``. ``leaf_size`` (1..16) is the largest leaf.
        """
        import time
        t0 = time.perf_counter()
        if not isinstance(leaf_size, (int, np.integer)) or isinstance(leaf_size, bool) \
                or not 1 <= int(leaf_size) <= _MAX_LEAF_SIZE:
            raise ValueError(f"BVH.build: leaf_size must be an integer in [1, {_MAX_LEAF_SIZE}],"
                             f" got {leaf_size!r}")
        p, f = _validate(positions, faces, "BVH.build")
        self = cls()
        self.leaf_size = int(leaf_size)
        self._faces = f
        self._n_vertices = p.shape[0]
        tri = p[f]                                   # (F, 3 vertices, 3)
        lo, hi = tri.min(axis=1), tri.max(axis=1)
        codes = _morton_codes(0.5 * (lo + hi))
        order = np.argsort(codes, kind="stable")
        self._order = order
        self._topology(codes[order], lo[order], hi[order])
        self._upload(tri[order], lo[order], hi[order])
        self.build_time = time.perf_counter() - t0
        return self

    def _topology(self, codes: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """Level-synchronous top-down split of contiguous ranges of sorted triangles.

        Produces, per interior node (numbered level by level), the two child
        references and, for the refit, which children are leaves.
        """
        F = codes.shape[0]
        leaf_size = self.leaf_size
        levels: list[tuple[int, int]] = []          # [first node, end) per level
        child_ref: list[np.ndarray] = []            # (n, 2) uint32 per level
        child_leaf: list[np.ndarray] = []           # (n, 2) leaf id or -1 per level
        leaf_s: list[np.ndarray] = []
        leaf_c: list[np.ndarray] = []
        n_leaves = 0

        # Flattened per-triangle bounds for the SAH sub-cell reductions: min of
        # [lo, -hi] gives lo and -hi in one reduceat.
        # One extra +inf row so that reduceat may use index F as a range end.
        lohi = np.concatenate([np.concatenate([lo, -hi], axis=1),
                               np.full((1, 6), np.inf, np.float32)])

        if F <= leaf_size:
            # Root with one leaf child and one empty child (never hit).
            levels.append((0, 1))
            child_ref.append(np.array([[_LEAF_FLAG | (F - 1), _LEAF_FLAG]], np.uint32))
            child_leaf.append(np.array([[0, -1]], np.int64))
            leaf_s.append(np.array([0], np.int64))
            leaf_c.append(np.array([F], np.int64))
            self._finish_topology(levels, child_ref, child_leaf, leaf_s, leaf_c, depth=1)
            return

        s = np.array([0], np.int64)
        e = np.array([F], np.int64)
        first = 0
        depth = 0
        while s.size:
            n = s.size
            levels.append((first, first + n))
            m = self._split(codes, lohi, s, e, depth)
            cs = np.stack([s, m], axis=1)            # (n, 2) child starts
            ce = np.stack([m, e], axis=1)
            cc = ce - cs
            leaf = cc <= leaf_size
            if leaf.any() and leaf_size > 1:
                leaf &= ~self._split_pays(codes, lo, hi, cs, ce, leaf, depth + 1)
            ref = np.empty((n, 2), np.uint32)
            lid = np.full((n, 2), -1, np.int64)
            nl = int(leaf.sum())
            lid[leaf] = n_leaves + np.arange(nl)
            n_leaves += nl
            ref[leaf] = (_LEAF_FLAG | (cs[leaf] << 4) | (cc[leaf] - 1)).astype(np.uint32)
            leaf_s.append(cs[leaf])
            leaf_c.append(cc[leaf])
            inner = ~leaf
            ni = int(inner.sum())
            ref[inner] = (first + n + np.arange(ni)).astype(np.uint32)
            child_ref.append(ref)
            child_leaf.append(lid)
            first += n
            s, e = cs[inner], ce[inner]            # row-major: children stay sorted by start
            depth += 1
        self._finish_topology(levels, child_ref, child_leaf, leaf_s, leaf_c, depth=depth)

    def _finish_topology(self, levels, child_ref, child_leaf, leaf_s, leaf_c, depth) -> None:
        self._levels = levels
        self._child_ref = np.concatenate(child_ref)
        self._child_leaf = np.concatenate(child_leaf)
        ls = np.concatenate(leaf_s)
        lc = np.concatenate(leaf_c)
        # Leaves partition [0, F): sorted by start, one reduceat gives their boxes.
        srt = np.argsort(ls, kind="stable")
        self._leaf_sorted_starts = ls[srt]
        self._leaf_rank = np.empty_like(srt)
        self._leaf_rank[srt] = np.arange(srt.size)
        self._leaf_count = lc
        self.depth = depth

    def _split(self, codes, lohi, s, e, depth) -> np.ndarray:
        """Split position ``m`` (s < m < e) for every node ``[s, e)`` of a level."""
        cnt = e - s
        c0, c1 = codes[s], codes[e - 1]
        x = c0 ^ c1
        same = x == 0
        b = _highest_bit(np.where(same, np.uint64(1), x))
        query = ((c0 >> b.astype(np.uint64)) | np.uint64(1)) << b.astype(np.uint64)
        m = np.searchsorted(codes, query).astype(np.int64)
        # Depth guard: median splits keep every leaf at depth <= _MAX_DEPTH.
        need = np.ceil(np.log2(np.maximum(cnt, 1) / max(self.leaf_size, 1)))
        median = same | (depth + need + 1 >= _MAX_DEPTH)
        m = np.where(median, s + cnt // 2, m)
        big = (cnt > _SAH_MIN) & ~median
        if big.any():
            idx = np.nonzero(big)[0]
            m[idx] = self._sah_split(codes, lohi, s[idx], e[idx], b[idx], m[idx])
        return m

    @staticmethod
    def _sah_split(codes, lohi, s, e, b, m_lbvh) -> np.ndarray:
        """SAH split among the Morton sub-cell boundaries of each node.

        Below the highest differing bit ``b`` of a node, the next ``k`` bits cut
        its cell into 2^k sub-cells, each a contiguous run of the sorted
        triangles. The SAH cost of splitting between sub-cell ``j-1`` and ``j``
        is ``A(prefix) N(prefix) + A(suffix) N(suffix)`` with the boxes of the
        unions of sub-cells; the cheapest boundary wins.
        """
        n = s.size
        k = np.minimum(_SAH_BITS, b + 1)           # cannot go below bit 0
        K = 1 << _SAH_BITS
        j = np.arange(K, dtype=np.uint64)
        shift = (b + 1 - k).astype(np.uint64)       # bit position of sub-cell index
        prefix = (codes[s] >> (b + 1).astype(np.uint64)) << (b + 1).astype(np.uint64)
        # Boundary codes of sub-cells j = 0..K-1 (sub-cells beyond 2^k collapse to the end).
        jj = np.minimum(j[None, :], ((np.uint64(1) << k.astype(np.uint64)) - np.uint64(1))[:, None])
        bound = prefix[:, None] | (jj << shift[:, None])
        pos = np.searchsorted(codes, bound.ravel()).reshape(n, K).astype(np.int64)
        pos = np.clip(pos, s[:, None], e[:, None])
        pos[:, 0] = s
        # Boxes of sub-cells [pos_j, pos_{j+1}): reduceat over all boundaries at once.
        starts = pos.ravel()
        ends = np.concatenate([pos[:, 1:], e[:, None]], axis=1).ravel()
        nonempty = ends > starts
        box = np.full((n * K, 6), np.inf, np.float32)
        st = starts[nonempty]
        # reduceat reduces [idx_i, idx_{i+1}); interleaved (start, end) pairs give
        # exactly the sub-cell runs (lohi has a padding row at index F).
        pairs = np.stack([st, ends[nonempty]], axis=1).ravel()
        red = np.minimum.reduceat(lohi, pairs, axis=0)[::2]
        box[nonempty] = red
        box = box.reshape(n, K, 6)
        cntc = (ends - starts).reshape(n, K)
        # Prefix unions (cells < j) and suffix unions (cells >= j).
        pre = np.minimum.accumulate(box, axis=1)
        suf = np.minimum.accumulate(box[:, ::-1], axis=1)[:, ::-1]
        npre = np.cumsum(cntc, axis=1)
        ntot = npre[:, -1:]
        # Candidate j (1..K-1) splits between cell j-1 and j.
        a_l = _half_area(pre[:, :-1, :3], -pre[:, :-1, 3:])
        a_r = _half_area(suf[:, 1:, :3], -suf[:, 1:, 3:])
        n_l = npre[:, :-1]
        n_r = ntot - n_l
        cost = a_l * n_l + a_r * n_r
        valid = (n_l > 0) & (n_r > 0)
        cost = np.where(valid, cost, np.inf)
        best = np.argmin(cost, axis=1)
        ok = np.isfinite(cost[np.arange(n), best])
        m = pos[np.arange(n), best + 1]
        return np.where(ok, m, m_lbvh)

    @staticmethod
    def _split_pays(codes, lo, hi, cs, ce, leaf, depth) -> np.ndarray:
        """For candidate leaves (mask ``leaf``), whether one more split lowers the SAH.

        Leaf cost ``N C_i`` versus ``C_t + (A_L N_L + A_R N_R) / A C_i`` with the
        LBVH split of the range (one level of look-ahead). Nodes of one triangle
        never split.
        """
        out = np.zeros_like(leaf)
        idx = np.nonzero(leaf & (ce - cs > 1))
        if idx[0].size == 0 or depth + 2 >= _MAX_DEPTH:
            return out
        s, e = cs[idx], ce[idx]
        c0, c1 = codes[s], codes[e - 1]
        x = c0 ^ c1
        same = x == 0
        b = _highest_bit(np.where(same, np.uint64(1), x))
        query = ((c0 >> b.astype(np.uint64)) | np.uint64(1)) << b.astype(np.uint64)
        m = np.where(same, (s + e) // 2, np.searchsorted(codes, query))
        L = e.max() - s.min()
        width = int((e - s).max())
        off = np.arange(width)
        g = s[:, None] + off[None, :]
        valid = g < e[:, None]
        g = np.minimum(g, codes.shape[0] - 1)
        glo, ghi = lo[g], hi[g]                     # (n, width, 3)
        inl = valid & (g < m[:, None])
        inr = valid & ~(g < m[:, None])
        inf = np.float32(np.inf)

        def box(mask):
            blo = np.where(mask[..., None], glo, inf).min(axis=1)
            bhi = np.where(mask[..., None], ghi, -inf).max(axis=1)
            return _half_area(blo, bhi)
        a = box(valid)
        al, ar = box(inl), box(inr)
        nl, nr = inl.sum(1), inr.sum(1)
        ntot = nl + nr
        del L
        with np.errstate(invalid="ignore", divide="ignore"):
            split_cost = _C_TRAV + _C_ISECT * (al * nl + ar * nr) / a
        pays = (a > 0) & (split_cost < _C_ISECT * ntot)
        out[idx] = pays
        return out

    # ------------------------------------------------------------ bounds/upload
    def _node_boxes(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Child boxes (n_nodes, 2, 6) of every node, bottom-up (also for refit)."""
        lohi = np.concatenate([lo, -hi], axis=1)
        leaf_box = np.minimum.reduceat(lohi, self._leaf_sorted_starts, axis=0)[self._leaf_rank]
        n_nodes = self._child_ref.shape[0]
        node_box = np.empty((n_nodes, 6), np.float32)     # union of both children
        child_box = np.empty((n_nodes, 2, 6), np.float32)
        empty = np.array([np.inf] * 6, np.float32)        # lo = +inf, -hi = +inf
        for a, b in reversed(self._levels):
            ref = self._child_ref[a:b]
            lid = self._child_leaf[a:b]
            is_leaf = (ref & _LEAF_FLAG) != 0
            cb = np.empty((b - a, 2, 6), np.float32)
            real_leaf = lid >= 0
            cb[real_leaf] = leaf_box[lid[real_leaf]]
            cb[is_leaf & ~real_leaf] = empty
            inner = ~is_leaf
            cb[inner] = node_box[ref[inner].astype(np.int64)]
            child_box[a:b] = cb
            node_box[a:b] = np.minimum(cb[:, 0], cb[:, 1])
        return child_box

    def _upload(self, tri: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """Pack node records and triangle records into Dr.Jit arrays."""
        child_box = self._node_boxes(lo, hi)
        n_nodes = child_box.shape[0]
        rec = np.zeros((n_nodes, 16), np.float32)
        rec[:, 0:3] = child_box[:, 0, :3]
        rec[:, 3:6] = -child_box[:, 0, 3:]
        rec[:, 6:9] = child_box[:, 1, :3]
        rec[:, 9:12] = -child_box[:, 1, 3:]
        rec.view(np.uint32)[:, 12:14] = self._child_ref
        F = tri.shape[0]
        p0 = tri[:, 0]
        e1 = tri[:, 1] - p0
        e2 = tri[:, 2] - p0
        # Zero-area triangles get zero edges: their determinant is exactly 0.
        e1d, e2d = e1.astype(np.float64), e2.astype(np.float64)
        n2 = np.einsum("ij,ij->i", *(np.cross(e1d, e2d),) * 2)
        e3d = e2d - e1d
        longest = np.maximum(np.maximum((e1d * e1d).sum(1), (e2d * e2d).sum(1)),
                             (e3d * e3d).sum(1))
        degenerate = n2 <= (_DEGENERATE_EPS**2) * longest * longest
        trec = np.zeros((F, 12), np.float32)
        trec[:, 0:3] = p0
        trec[:, 3:6] = np.where(degenerate[:, None], 0, e1)
        trec[:, 6:9] = np.where(degenerate[:, None], 0, e2)
        trec.view(np.uint32)[:, 9] = self._order.astype(np.uint32)
        self.degenerate_count = int(degenerate.sum())
        # Copies: Float(np_array) may share memory with numpy.
        self._nodes = bk.Float(rec.ravel())
        self._tris = bk.Float(trec.ravel())
        self._rec_np = rec
        dr.eval(self._nodes, self._tris)

    # ------------------------------------------------------------------ refit
    def refit(self, positions: np.ndarray) -> None:
        """Recompute all boxes and triangle records for moved vertices (same topology).

        Tree quality degrades if the motion is large; rebuild then.
        """
        p, _ = _validate(positions, None, "BVH.refit")
        if p.shape[0] != self._n_vertices:
            raise ValueError(f"BVH.refit: got {p.shape[0]} vertex positions, the BVH was "
                             f"built over {self._n_vertices}")
        tri = p[self._faces[self._order]]
        self._upload(tri, tri.min(axis=1), tri.max(axis=1))

    # ---------------------------------------------------------------- queries
    def triangle_count(self) -> int:
        """Number of triangles (rows of ``faces``) in the hierarchy."""
        return int(self._faces.shape[0])

    def node_count(self) -> int:
        """Number of interior nodes."""
        return int(self._child_ref.shape[0])

    def leaf_count(self) -> int:
        return int(self._leaf_count.size)

    def sah_cost(self) -> float:
        """SAH cost of the tree (``C_t`` per interior node, ``C_i`` per triangle),
        relative to the root box area: the expected cost of a random ray through it."""
        rec = self._rec_np
        lo_l, hi_l, lo_r, hi_r = rec[:, 0:3], rec[:, 3:6], rec[:, 6:9], rec[:, 9:12]
        al, ar = _half_area(lo_l, hi_l), _half_area(lo_r, hi_r)
        root = _half_area(np.minimum(lo_l[0], lo_r[0]), np.maximum(hi_l[0], hi_r[0]))
        node_area = al + ar  # a node is visited when its parent's child box is hit
        ref = self._child_ref
        leaf = (ref & _LEAF_FLAG) != 0
        cnt = np.where(leaf, (ref & 15) + 1, 0)
        cnt = np.where(ref == _LEAF_FLAG, 0, cnt)  # empty child of a tiny root
        leaf_cost = (al * cnt[:, 0] + ar * cnt[:, 1]).sum()
        # Interior children: visiting them costs C_t weighted by their box area.
        inner_area = np.where(~leaf[:, 0], al, 0) + np.where(~leaf[:, 1], ar, 0)
        total = _C_TRAV * (root + inner_area.sum()) + _C_ISECT * leaf_cost
        del node_area
        return float(total / root) if root > 0 else 0.0

    def ray_intersect(self, o: Any, d: Any, tmax: Any, active: Any) -> tuple:
        """Closest hit with ``t`` in ``(0, tmax)`` along ``o + t d``.

        Returns ``(t, prim, u, v, hit)``: ``prim`` indexes ``faces``, and the hit
        point is ``(1-u-v) p0 + u p1 + v p2``; on a miss ``t = inf``,
        ``prim = 0xFFFFFFFF``, ``u = v = 0`` and ``hit = False``.
        """
        return self._trace(o, d, tmax, active, any_hit=False)

    def ray_test(self, o: Any, d: Any, tmax: Any, active: Any) -> Any:
        """Whether any triangle is hit with ``t`` in ``(0, tmax)`` (shadow rays)."""
        return self._trace(o, d, tmax, active, any_hit=True)

    # --------------------------------------------------------------- kernels
    def _trace(self, o: Any, d: Any, tmax: Any, active: Any, any_hit: bool) -> Any:
        UInt32, Float, Bool = bk.UInt32, bk.Float, bk.Bool
        o = bk.Array3f(dr.detach(o))
        d = bk.Array3f(dr.detach(d))
        tmax = Float(dr.detach(tmax))
        active = Bool(active)
        n = max(dr.width(o), dr.width(d), dr.width(tmax), dr.width(active))

        # Rays with NaN/inf components or no valid interval do not traverse.
        finite = dr.isfinite(o.x) & dr.isfinite(o.y) & dr.isfinite(o.z) \
            & dr.isfinite(d.x) & dr.isfinite(d.y) & dr.isfinite(d.z)
        active = active & finite & (tmax > 0)
        # 1/d; d = 0 gives inf, clamped to +-BIG so that 0 * (1/d) = 0, never NaN.
        inv = dr.rcp(d)
        inv = bk.Array3f(_clamp_big(inv.x), _clamp_big(inv.y), _clamp_big(inv.z))
        neg = [inv.x < 0, inv.y < 0, inv.z < 0]
        ox, oy, oz = o.x, o.y, o.z

        nodes, tris = self._nodes, self._tris
        stack = dr.alloc_local(UInt32, _STACK_SIZE)

        def slab(lo_x, lo_y, lo_z, hi_x, hi_y, hi_z, t_hi):
            # Near/far planes by the sign of 1/d: empty (inverted) boxes never hit.
            tnx = (dr.select(neg[0], hi_x, lo_x) - ox) * inv.x
            tfx = (dr.select(neg[0], lo_x, hi_x) - ox) * inv.x
            tny = (dr.select(neg[1], hi_y, lo_y) - oy) * inv.y
            tfy = (dr.select(neg[1], lo_y, hi_y) - oy) * inv.y
            tnz = (dr.select(neg[2], hi_z, lo_z) - oz) * inv.z
            tfz = (dr.select(neg[2], lo_z, hi_z) - oz) * inv.z
            tn = _max(_max(tnx, tny), _max(tnz, 0.0))
            tf = _min(_min(tfx, tfy), tfz) * _ROBUST
            return (tn <= tf) & (tn <= t_hi), tn

        def pop(stack, node, sp, mask):
            has = mask & (sp > 0)
            sp = dr.select(has, sp - 1, sp)
            val = stack.read(sp, has)
            node = dr.select(mask, dr.select(has, val, UInt32(_SENTINEL)), node)
            return node, sp

        def step(stack, node, tri_cur, tri_end, sp, t_best, prim, bu, bv, found):
            # (1) No triangles pending and the current reference is a leaf: start it.
            is_leaf = (node & _LEAF_FLAG) != 0
            fetch = (tri_cur >= tri_end) & is_leaf & (node != _SENTINEL)
            start = (node >> 4) & 0x7FFFFFF
            tri_cur = dr.select(fetch, start, tri_cur)
            tri_end = dr.select(fetch, start + (node & 15) + 1, tri_end)
            node, sp = pop(stack, node, sp, fetch)

            # (2) One Möller-Trumbore test.
            do_tri = tri_cur < tri_end
            r0 = dr.gather(bk.Array4f, tris, tri_cur * 3 + 0, do_tri)
            r1 = dr.gather(bk.Array4f, tris, tri_cur * 3 + 1, do_tri)
            r2 = dr.gather(bk.Array4f, tris, tri_cur * 3 + 2, do_tri)
            e1 = bk.Array3f(r0.w, r1.x, r1.y)
            e2 = bk.Array3f(r1.z, r1.w, r2.x)
            pvec = dr.cross(d, e2)
            det = dr.dot(e1, pvec)
            inv_det = dr.rcp(det)
            tvec = o - bk.Array3f(r0.x, r0.y, r0.z)
            u = dr.dot(tvec, pvec) * inv_det
            qvec = dr.cross(tvec, e1)
            v = dr.dot(d, qvec) * inv_det
            t = dr.dot(e2, qvec) * inv_det
            hit = do_tri & (det != 0) & (u >= 0) & (v >= 0) & (u + v <= 1) \
                & (t > 0) & (t < t_best)
            tri_cur = dr.select(do_tri, tri_cur + 1, tri_cur)
            if any_hit:
                found = found | hit
            else:
                t_best = dr.select(hit, t, t_best)
                prim = dr.select(hit, dr.reinterpret_array(UInt32, r2.y), prim)
                bu = dr.select(hit, u, bu)
                bv = dr.select(hit, v, bv)

            # (3) Interior node: test both child boxes, descend into the nearer.
            do_node = ((node & _LEAF_FLAG) == 0) & ~found
            q0 = dr.gather(bk.Array4f, nodes, node * 4 + 0, do_node)
            q1 = dr.gather(bk.Array4f, nodes, node * 4 + 1, do_node)
            q2 = dr.gather(bk.Array4f, nodes, node * 4 + 2, do_node)
            q3 = dr.gather(bk.Array4f, nodes, node * 4 + 3, do_node)
            hit_l, tn_l = slab(q0.x, q0.y, q0.z, q0.w, q1.x, q1.y, t_best)
            hit_r, tn_r = slab(q1.z, q1.w, q2.x, q2.y, q2.z, q2.w, t_best)
            ref_l = dr.reinterpret_array(UInt32, q3.x)
            ref_r = dr.reinterpret_array(UInt32, q3.y)
            swap = hit_r & (~hit_l | (tn_r < tn_l))
            near = dr.select(swap, ref_r, ref_l)
            far = dr.select(swap, ref_l, ref_r)
            push = do_node & hit_l & hit_r
            stack.write(far, sp, push)
            sp = dr.select(push, sp + 1, sp)
            descend = do_node & (hit_l | hit_r)
            node = dr.select(descend, near, node)
            node, sp = pop(stack, node, sp, do_node & ~(hit_l | hit_r))
            return stack, node, tri_cur, tri_end, sp, t_best, prim, bu, bv, found

        def cond(stack, node, tri_cur, tri_end, sp, t_best, prim, bu, bv, found):
            return ((node != _SENTINEL) | (tri_cur < tri_end)) & ~found

        zero_u = dr.zeros(UInt32, n)    # full width: LLVM needs it for the stack index
        # The stack must be loop state: otherwise a read that precedes the write
        # in the traced body does not see the previous iteration's writes.
        state = (
            stack,
            dr.select(active, zero_u, UInt32(_SENTINEL)),   # node (root = 0)
            dr.zeros(UInt32, n),                             # tri_cur
            dr.zeros(UInt32, n),                             # tri_end
            dr.zeros(UInt32, n),                             # sp
            dr.select(active, tmax, 0.0) + dr.zeros(Float, n),  # t_best
            dr.full(UInt32, _SENTINEL, n),                   # prim
            dr.zeros(Float, n),                              # u
            dr.zeros(Float, n),                              # v
            dr.zeros(Bool, n),                               # found (any-hit)
        )
        label = "lumigrad.bvh.ray_test" if any_hit else "lumigrad.bvh.ray_intersect"
        _, node, tri_cur, tri_end, sp, t_best, prim, bu, bv, found = dr.while_loop(
            state, cond, step, label=label, mode="symbolic")
        if any_hit:
            return found
        hit = prim != _SENTINEL
        t = dr.select(hit, t_best, dr.inf)
        return t, prim, bu, bv, hit
