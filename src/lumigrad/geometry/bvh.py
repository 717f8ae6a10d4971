"""Bounding volume hierarchy over all triangles of a scene.

Build (CPU, vectorised numpy: no per-triangle or per-node Python loop)
----------------------------------------------------------------------
A two-level build in the spirit of HLBVH (Pantaleoni & Luebke 2010; Garanzha,
Pantaleoni & McAllister 2011, "Simpler and faster HLBVH with work queues"):

1. **Morton clusters.** Triangles are sorted along a 63-bit Morton curve of
   their box centres (quantised on the bounding cube of the vertices; a Dr.Jit
   kernel computes the boxes and codes, numpy sorts). Ranges of the
   sorted order are split where their highest differing code bit changes (the
   LBVH rule: Lauterbach et al. 2009; Karras 2012) until each range holds at
   most ``_CLUSTER`` triangles: these ranges are compact *clusters*.
2. **SAH top tree over the clusters.** A top-down sweep build that minimises
   the surface area heuristic (Goldsmith & Salmon 1987; MacDonald & Booth
   1990) ``A_L N_L + A_R N_R`` over every split position of the clusters
   sorted by centroid along each axis (three pre-sorted orders kept sorted by
   stable partitioning, as in Wald 2007). All nodes of a level are processed at
   once: segmented prefix/suffix box unions with ``ufunc.accumulate``.
3. **Bottom trees.** Inside every cluster (a Morton-sorted range) LBVH splits,
   again one whole level at a time. A range of at most ``leaf_size`` triangles
   becomes a leaf unless one more split lowers its SAH cost (SAH-aware leaf
   collapsing, one level of look-ahead).

A depth guard falls back to median splits so that no leaf is deeper than
``_MAX_DEPTH``, which bounds the traversal stack. The triangle records are
packed by a small Dr.Jit kernel that runs asynchronously on the worker threads
while numpy builds the bottom trees; the node boxes are then computed bottom-up
by Dr.Jit, one small kernel launch per tree level. :meth:`BVH.refit` reuses
those two steps with new vertex positions (same topology).

Layout (flat Dr.Jit arrays)
---------------------------
The build makes a binary tree. Every interior node is one 16-float record
holding the boxes of its *two children* and their references::

    [L.lo.xyz, L.hi.xyz, R.lo.xyz, R.hi.xyz, bits(L.ref), bits(R.ref), 0, 0]

A reference is an interior node index, or ``0x80000000 | start << 4 | (count-1)``
for a leaf covering the reordered triangles ``[start, start + count)``. Per
reordered triangle we store 16 floats (one 64-byte cache line) ``[p0, e1 = p1 -
p0, e2 = p2 - p0, bits(prim), 0...]``. The binary records (refitted bottom-up)
are then gathered into a **4-wide** tree (BVH4, ``_WIDTH``; greedy collapse:
a wide node starts with the two children of a binary node and opens the
interior slot of largest surface area until it has four, leaves kept as they
are), one 32-float record per node::

    [lo.x x4, lo.y x4, lo.z x4, hi.x x4, hi.y x4, hi.z x4, bits(ref) x4, 0 x4]

Empty slots have inverted boxes. Records are read with 16-float packet gathers
(on the CPU one 64-byte load per lane; 1.7x faster than 4-float gathers).

Traversal (Dr.Jit kernel, LLVM and CUDA alike)
----------------------------------------------
One symbolic ``dr.while_loop`` per ray with a per-lane stack in local memory
(``dr.alloc_local``, part of the loop state). Each iteration may (1) start a
pending leaf, (2) test up to two triangles of the current leaf (``_TRI_STEP``;
leaves hold 1-4, mostly 2) and (3) test the four
children of the current 4-wide node, sorted by entry distance (a five-exchange
sorting network), descending into the nearest hit and pushing the others
farthest first, in the spirit of the "if-if" traversal of Aila & Laine 2009
("Understanding the efficiency of ray traversal on GPUs"), which keeps SIMD
lanes busy; (2) and (3) are symbolic conditionals, i.e. branches that a SIMD
packet (or GPU warp) skips when none of its lanes needs them. The 4-wide tree
halves the loop iterations of the binary one, and with them the time that
lanes of a packet wait for the slowest (Cornell box + 100k-triangle torus:
bounce rays 16.5 -> 9.5 iterations on average, 45 -> 25 for the slowest of 16
lanes; 1.26x faster rendering). Closest-hit queries shrink ``t_max`` as hits
are found, so farther boxes are culled; any-hit queries stop at the first hit.
A closest-hit stack entry is one 64-bit word, ``ref | bits(entry t) << 32``
(one local-memory scatter per push; a pop drops entries that start beyond
the closest hit found since); a visit that hits no child leaves the pop to
the next iteration's step (1), so an iteration pops once. Measurements of
these choices and of the alternatives that did not pay (8-wide nodes, four
triangles per iteration, ...): BENCHMARKS.md, "BVH".

Small scenes (at most ``BVH.unroll_max_triangles`` triangles, e.g. a Cornell
box; queries of at least ``BVH.unroll_min_rays`` rays) are traversed
differently: the whole tree is written out into the kernel as nested symbolic
conditionals, with the node boxes and triangles as scalar kernel inputs (packet
traversal without a stack or any per-lane memory access, see
``BVH._trace_unrolled``); it is 2-3x faster there, and compiles slower as the
tree grows, hence the limits.
"""
from __future__ import annotations

import time
from typing import Any

import drjit as dr
import numpy as np

from .. import backend as bk

__all__ = ["BVH"]

_LEAF_FLAG = 0x80000000
_SENTINEL = 0xFFFFFFFF          # "no node": stack empty / lane done
_POP = 0xFFFFFFFE               # "pop next iteration" (a visit hit no child, stack not empty)
_MAX_LEAF_SIZE = 16             # leaf counts are stored in 4 bits
_MAX_TRIANGLES = (1 << 27) - 1  # leaf starts are stored in 27 bits
_MAX_DEPTH = 60                 # leaves never deeper; the stack holds <= depth entries
_WIDTH = 4                      # children per node of the traversed tree (4 or 8)
# Per-lane stack: <= _WIDTH - 1 pushes per wide level, and every wide level of the
# greedy collapse descends at least one binary level (<= _MAX_DEPTH).
_STACK_SIZE = (_WIDTH - 1) * _MAX_DEPTH
_TRI_STEP = 2                   # triangle tests per traversal iteration
_CLUSTER = 64                   # max triangles per Morton cluster (SAH top-tree unit)
_LEAF_SAH = True                # SAH-aware leaf collapsing
_C_TRAV = 1.5                   # SAH cost of visiting a node (two box tests)
_C_ISECT = 1.0                  # SAH cost of one ray-triangle test
_ROBUST = 1.0 + 2.0 * (3 * 2.0**-24) / (1 - 3 * 2.0**-24)  # Ize 2013: 1 + 2 gamma_3
_DEGENERATE_EPS = 1e-6          # zero area: |e1 x e2| <= eps * (longest edge)^2


# ----------------------------------------------------------------------------
# numpy helpers (build time)
# ----------------------------------------------------------------------------
def _spread_bits_dr(v: Any) -> Any:
    """Insert two zero bits between the low 21 bits of a Dr.Jit ``UInt64`` array
    (interleaving three of them gives a 63-bit Morton code)."""
    v = v & 0x1FFFFF
    v = (v | (v << 32)) & 0x1F00000000FFFF
    v = (v | (v << 16)) & 0x1F0000FF0000FF
    v = (v | (v << 8)) & 0x100F00F00F00F00F
    v = (v | (v << 4)) & 0x10C30C30C30C30C3
    v = (v | (v << 2)) & 0x1249249249249249
    return v


def _highest_bit(x: np.ndarray) -> np.ndarray:
    """Index of the highest set bit of nonzero uint64 values (int64)."""
    b = np.frexp(x.astype(np.float64))[1].astype(np.int64) - 1
    over = (x >> b.astype(np.uint64)) == 0   # float rounding bumped x to 2^(b+1)
    return b - over


def _bit_split(codes: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """LBVH split of Morton-sorted ranges ``[s, e)`` (``e - s >= 2``).

    The split is the first position whose code has the range's highest
    differing bit set (a vectorised binary search inside each range); ranges
    of identical codes split at the median.
    """
    c0 = codes[s]
    x = c0 ^ codes[e - 1]
    same = x == 0
    b = _highest_bit(np.where(same, np.uint64(1), x)).astype(np.uint64)
    q = ((c0 >> b) | np.uint64(1)) << b
    lo, hi = s + 1, e - 1                      # codes[e-1] >= q > codes[s]
    while True:
        open_ = lo < hi
        if not open_.any():
            break
        mid = (lo + hi) >> 1
        go = codes[mid] < q
        lo = np.where(open_ & go, mid + 1, lo)
        hi = np.where(open_ & ~go, mid, hi)
    return np.where(same, s + (e - s) // 2, lo)


def _ranges_to_index(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(start[i], start[i] + count[i])`` for all i."""
    total = int(count.sum())
    off = np.cumsum(count) - count
    return np.arange(total, dtype=np.int64) + np.repeat(start - off, count)


def _range_boxes(lohi: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """``min`` of rows ``[s_i, e_i)`` of ``lohi`` (nonempty ranges), i.e. boxes in
    the ``[lo, -hi]`` representation."""
    cnt = e - s
    idx = _ranges_to_index(s, cnt)
    return np.minimum.reduceat(lohi[idx], np.cumsum(cnt) - cnt, axis=0)


def _half_area(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Half the surface area of boxes (..., 3); 0 for empty (inverted) boxes.
    Computed in float64: float32 areas overflow for coordinates beyond ~1e19."""
    e = np.maximum(hi.astype(np.float64) - lo, 0)
    return e[..., 0] * e[..., 1] + e[..., 1] * e[..., 2] + e[..., 2] * e[..., 0]


def _ceil_log2(x: np.ndarray) -> np.ndarray:
    return np.ceil(np.log2(np.maximum(x, 1))).astype(np.int64)


#: barycentric tolerance of the ray-triangle test (watertight shared edges)
_EDGE_EPS = 1e-6

_to_dr = bk.from_numpy  # aligned private copies (see backend.from_numpy)


# Kernel min/max as compare + select, with defined NaN semantics on both
# backends: a NaN *first* operand is dropped (the result is ``b``). This is what
# the slab test needs. (dr.minimum/dr.maximum also lower to LLVM's fminimum/
# fmaximum, which the x86 backend of the bundled LLVM cannot always select:
# "LLVM ERROR: Cannot select: fminimum", a process abort.)
#: Sorting networks (Knuth, TAOCP 5.3.4): 5 comparators for 4 keys, 19 for 8.
_SORT = {4: ((0, 1), (2, 3), (0, 2), (1, 3), (1, 2)),
         8: ((0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7), (0, 1), (2, 3),
             (4, 5), (6, 7), (2, 4), (3, 5), (1, 4), (3, 6), (1, 2), (3, 4), (5, 6))}


def _min(a: Any, b: Any) -> Any:
    return dr.select(a < b, a, b)


def _max(a: Any, b: Any) -> Any:
    return dr.select(a > b, a, b)


def _slab(o: Any, inv: Any, neg: list, lo: tuple, hi: tuple, t_hi: Any) -> tuple[Any, Any]:
    """Slab test of the box ``[lo, hi]``: (hit with entry before ``t_hi``, entry t)."""
    # Near/far planes by the sign of 1/d: empty (inverted) boxes never hit.
    tn = [(dr.select(neg[a], hi[a], lo[a]) - o[a]) * inv[a] for a in range(3)]
    tf = [(dr.select(neg[a], lo[a], hi[a]) - o[a]) * inv[a] for a in range(3)]
    # NaN (ray inside a face plane, parallel to it) must not constrain the
    # interval: _max/_min drop a NaN first operand (the comparison is false).
    t_near = _max(tn[0], _max(tn[1], _max(tn[2], 0.0)))
    t_far = _min(tf[0], _min(tf[1], _min(tf[2], dr.inf))) * _ROBUST
    return (t_near <= t_far) & (t_near <= t_hi), t_near


def _triangle_test(o: Any, d: Any, rec: Any, t_best: Any) -> tuple[Any, Any, Any, Any]:
    """Möller-Trumbore test against the triangle record ``rec`` (its first nine
    floats: p0, e1, e2): ``(hit closer than t_best, t, u, v)``."""
    p0 = bk.Array3f(rec[0], rec[1], rec[2])
    e1 = bk.Array3f(rec[3], rec[4], rec[5])
    e2 = bk.Array3f(rec[6], rec[7], rec[8])
    pvec = dr.cross(d, e2)
    det = dr.dot(e1, pvec)
    inv_det = dr.rcp(det)
    tvec = o - p0
    u = dr.dot(tvec, pvec) * inv_det
    qvec = dr.cross(tvec, e1)
    v = dr.dot(d, qvec) * inv_det
    t = dr.dot(e2, qvec) * inv_det
    # A tolerance of _EDGE_EPS in barycentric space closes the cracks that
    # rounding opens along edges shared by two triangles (a ray through a
    # shared edge must hit one of them, not slip between both).
    hit = (det != 0) & (u >= -_EDGE_EPS) & (v >= -_EDGE_EPS) & \
        (u + v <= 1 + _EDGE_EPS) & (t > 0) & (t < t_best)
    return hit, t, u, v


def _validate(positions: Any, faces: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        p = np.asarray(positions)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{where}: positions must be an array of shape (N, 3)") from exc
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"{where}: positions must have shape (N, 3), got {p.shape}")
    if p.shape[0] == 0:
        raise ValueError(f"{where}: no vertex positions (empty array)")
    if not (np.issubdtype(p.dtype, np.floating) or np.issubdtype(p.dtype, np.integer)):
        raise ValueError(f"{where}: positions must be numeric, got dtype {p.dtype}")
    p = np.ascontiguousarray(p, dtype=np.float32)   # read only; _to_dr copies it
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


def _sah_sweep(lh: np.ndarray, cnt: np.ndarray, ords: list, st: np.ndarray, ln: np.ndarray,
               segid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best SAH split of every segment ``[st, st + ln)`` of the three orderings.

    ``lh``: cluster boxes ``[lo, -hi]`` normalised to [-1, 1] (float64), ``cnt``:
    triangles per cluster. Prefix and suffix unions use one ``accumulate`` over
    all segments: adding ``4 (n - segment)`` (prefix) or ``4 segment`` (suffix)
    makes every earlier segment compare larger, so the scan restarts at each
    segment start. Returns (cost, axis, index of the last left element).
    """
    n, Kl = st.size, ords[0].size
    seg_last = st + ln - 1
    best_cost = np.full(n, np.inf)
    best_axis = np.zeros(n, np.int64)
    best_i = st.copy()
    off_f = (4.0 * (n - segid))[:, None]
    off_b = (4.0 * segid)[:, None]
    ar = np.arange(Kl)
    for a in range(3):
        ids = ords[a]
        x, c = lh[ids], cnt[ids]
        pre = np.minimum.accumulate(x + off_f, axis=0) - off_f
        suf = np.minimum.accumulate((x + off_b)[::-1], axis=0)[::-1] - off_b
        cc = np.cumsum(c)
        seg_base = (cc - c)[st]
        n_pre = cc - seg_base[segid]
        n_tot = (cc[seg_last] - seg_base)[segid]
        a_suf = np.zeros(Kl)
        a_suf[:-1] = _half_area(suf[1:, :3], -suf[1:, 3:])
        cost = _half_area(pre[:, :3], -pre[:, 3:]) * n_pre + a_suf * (n_tot - n_pre)
        cost[seg_last] = np.inf                    # right part would be empty
        seg_min = np.minimum.reduceat(cost, st)
        arg = np.minimum.reduceat(np.where(cost == seg_min[segid], ar, Kl), st)
        better = seg_min < best_cost
        best_cost = np.where(better, seg_min, best_cost)
        best_axis = np.where(better, a, best_axis)
        best_i = np.where(better, arg, best_i)
    return best_cost, best_axis, best_i


class BVH:
    """A BVH over triangles (built binary, traversed 4-wide) with Dr.Jit traversal kernels.

    Build with :meth:`BVH.build`; query with :meth:`ray_intersect` (closest hit)
    and :meth:`ray_test` (any hit, for shadow rays); :meth:`refit` after moving
    vertices without changing the triangles.

    ``unroll_max_triangles``: BVHs of at most this many triangles are traversed
    by code unrolled into the kernel (:meth:`_trace_unrolled`, fastest for tiny
    scenes such as a Cornell box); larger ones by the stack-based loop. Kernel
    compilation time grows faster than the unrolled tree (LLVM, 2-core CPU: a
    path-tracing kernel compiles in 2.8 s with 36 triangles, 4.6 s with 48, 9.7 s
    with 64, against 0.2 s with the loop), hence the small limit (set the class
    or instance attribute to change it; 0 disables unrolling).
    """

    unroll_max_triangles: int = 48
    #: ... and only queries of at least this many rays: tracing the unrolled code
    #: costs ~15 ms of Python per kernel, more than it saves on small launches.
    unroll_min_rays: int = 1 << 16

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
        indices (all meshes concatenated); ``prim`` in the query results is a
        row of ``faces``. ``leaf_size`` (1..16) is the largest leaf.
        """
        t0 = time.perf_counter()
        if not isinstance(leaf_size, (int, np.integer)) or isinstance(leaf_size, bool) \
                or not 1 <= int(leaf_size) <= _MAX_LEAF_SIZE:
            raise ValueError(f"BVH.build: leaf_size must be an integer in [1, {_MAX_LEAF_SIZE}],"
                             f" got {leaf_size!r}")
        p, f = _validate(positions, faces, "BVH.build")
        self = cls()
        self.leaf_size = int(leaf_size)
        self._faces = f
        self._faces_dr = _to_dr(bk.UInt32, f.astype(np.uint32))
        self._n_vertices = p.shape[0]

        self._verts = _to_dr(bk.Float, p)
        codes, lohi = self._bounds_and_codes(p)
        order = np.argsort(codes)
        codes = codes[order]
        lohi = lohi[order]          # boxes as [lo, -hi]: unions are plain minima

        cs, ce = self._clusters(codes)
        top = self._sah_top(lohi, cs, ce)
        # Final triangle order: clusters in top-tree order, Morton order inside.
        corder = top["corder"]
        ccnt = (ce - cs)[corder]
        idx = _ranges_to_index(cs[corder], ccnt)
        self._order = order[idx]
        self._order_dr = _to_dr(bk.UInt32, self._order.astype(np.uint32))
        # Triangle records: a Dr.Jit kernel, launched asynchronously, so that it
        # runs on the worker threads while numpy builds the bottom trees.
        lo, hi = self._pack_triangles()
        self._bottom(codes[idx], lohi[idx], ccnt, top)
        self._node_records(lo, hi)
        self.build_time = time.perf_counter() - t0
        return self

    @staticmethod
    def _clusters(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Morton-sorted ranges of at most ``_CLUSTER`` triangles (LBVH splits)."""
        F = codes.shape[0]
        s, e = np.array([0], np.int64), np.array([F], np.int64)
        out_s, out_e = [], []
        while s.size:
            small = e - s <= _CLUSTER
            out_s.append(s[small])
            out_e.append(e[small])
            s, e = s[~small], e[~small]
            if s.size:
                m = _bit_split(codes, s, e)
                s, e = np.stack([s, m], 1).ravel(), np.stack([m, e], 1).ravel()
        cs, ce = np.concatenate(out_s), np.concatenate(out_e)
        srt = np.argsort(cs, kind="stable")
        return cs[srt], ce[srt]

    @staticmethod
    def _sah_top(lohi: np.ndarray, cs: np.ndarray, ce: np.ndarray) -> dict:
        """SAH sweep build over clusters, all nodes of a level at once.

        Each node is a segment of three orderings of its clusters (sorted by
        centroid x, y, z). For every split position of every ordering the cost
        ``A_L N_L + A_R N_R`` is evaluated (:func:`_sah_sweep`); the cheapest
        wins, and all three orderings are stably partitioned so they stay
        sorted. Single clusters become the roots of the bottom trees.
        """
        K = cs.size
        cnt = (ce - cs).astype(np.float64)
        box = np.minimum.reduceat(lohi, cs, axis=0).astype(np.float64)
        if K == 1:
            return {"corder": np.zeros(1, np.int64), "cdepth": np.zeros(1, np.int64),
                    "levels": []}
        base = box[:, :3].min(axis=0)
        ext = max(float((-box[:, 3:].min(axis=0) - base).max()), 1e-30)
        # Normalised to the scene box: [lo, -hi] in [-1, 1], so offsets of 4 per
        # segment keep the segmented scans apart (float64 keeps ~1e-10 precision).
        lh = (box - np.concatenate([base, -base])) / ext
        cen = lh[:, :3] - lh[:, 3:]
        ords = [np.argsort(cen[:, a], kind="stable") for a in range(3)]
        corder = np.empty(K, np.int64)
        cdepth = np.empty(K, np.int64)
        st = np.array([0], np.int64)        # segment starts (in the compacted orderings)
        ln = np.array([K], np.int64)        # segment lengths (clusters)
        gpos = np.array([0], np.int64)      # segment start in the final cluster order
        levels = []                          # per level: (is_cluster (n,2), value (n,2))
        extra = int(np.ceil(np.log2(_CLUSTER))) + 2
        depth = 0
        while st.size:
            n, Kl = st.size, ords[0].size
            segid = np.repeat(np.arange(n), ln)
            pos = np.arange(Kl) - st[segid]
            # Two clusters split one way only: sweep the larger segments alone.
            best_cost = np.zeros(n)
            best_axis = np.zeros(n, np.int64)
            best_i = st.copy()               # last element of the left part
            big = ln > 2
            if big.all():
                best_cost, best_axis, best_i = _sah_sweep(lh, cnt, ords, st, ln, segid)
            elif big.any():
                keep_e = big[segid]
                sub_ln = ln[big]
                sub_st = np.cumsum(sub_ln) - sub_ln
                c_, a_, i_ = _sah_sweep(lh, cnt, [o[keep_e] for o in ords], sub_st, sub_ln,
                                        np.repeat(np.arange(sub_ln.size), sub_ln))
                best_cost[big], best_axis[big], best_i[big] = c_, a_, st[big] + (i_ - sub_st)
            # Depth guard: median split (by count) when the depth budget runs out.
            forced = depth + _ceil_log2(ln) + extra >= _MAX_DEPTH
            forced |= ~np.isfinite(best_cost)
            best_axis = np.where(forced, 0, best_axis)
            best_i = np.where(forced, st + ln // 2 - 1, best_i)
            n_left = best_i - st + 1
            # Mark the left clusters, then stably partition all three orderings.
            left = np.zeros(K, bool)
            in_left = pos < n_left[segid]
            for a in range(3):
                sel = in_left & (best_axis[segid] == a)
                left[ords[a][sel]] = True
            for a in range(3):
                f = left[ords[a]]
                cf = np.cumsum(f)
                incl = cf - (cf - f)[st][segid]
                new = np.where(f, st[segid] + incl - 1,
                               st[segid] + n_left[segid] + pos - incl)
                o2 = np.empty_like(ords[a])
                o2[new] = ords[a]
                ords[a] = o2
            c_st = np.stack([st, st + n_left], 1)
            c_ln = np.stack([n_left, ln - n_left], 1)
            c_gp = np.stack([gpos, gpos + n_left], 1)
            term = c_ln == 1
            tid = ords[0][c_st[term]]
            corder[c_gp[term]] = tid
            cdepth[tid] = depth + 1
            val = np.empty((n, 2), np.int64)
            val[term] = tid
            inner = ~term
            val[inner] = np.arange(int(inner.sum()))
            levels.append((term, val))
            # Drop finished (single-cluster) children from the orderings.
            side = (pos >= n_left[segid]).astype(np.int64)
            keep = ~term[segid, side]
            for a in range(3):
                ords[a] = ords[a][keep]
            ln = c_ln[inner]
            st = np.cumsum(ln) - ln
            gpos = c_gp[inner]
            depth += 1
        return {"corder": corder, "cdepth": cdepth, "levels": levels}

    def _split_pays(self, lohi: np.ndarray, s: np.ndarray, e: np.ndarray,
                    m: np.ndarray) -> np.ndarray:
        """Whether splitting ``[s, e)`` at ``m`` once lowers the SAH cost of a leaf:
        ``C_t + C_i (A_L N_L + A_R N_R) / A < C_i N``."""
        if s.size == 0 or not _LEAF_SAH:
            return np.zeros(s.shape, bool)
        # Boxes of [s, m) and [m, e) from one gather of the rows [s, e).
        cnt = e - s
        off = np.cumsum(cnt) - cnt
        rows = lohi[_ranges_to_index(s, cnt)]
        bounds = np.stack([off, off + (m - s)], axis=1).ravel()
        lr = np.minimum.reduceat(rows, bounds, axis=0)
        bl, br = lr[0::2], lr[1::2]
        b = np.minimum(bl, br)
        a = _half_area(b[:, :3], -b[:, 3:])
        al = _half_area(bl[:, :3], -bl[:, 3:])
        ar = _half_area(br[:, :3], -br[:, 3:])
        with np.errstate(invalid="ignore", divide="ignore"):
            split = _C_TRAV + _C_ISECT * (al * (m - s) + ar * (e - m)) / a
        return (a > 0) & (split < _C_ISECT * (e - s))

    def _leaf_or_split(self, codes, lohi, s, e, depth):
        """Leaf decision for ranges ``[s, e)`` at ``depth``: (leaf mask, split m)."""
        cnt = e - s
        many = cnt >= 2
        m = s + cnt // 2
        if many.any():
            m[many] = _bit_split(codes, s[many], e[many])
        leaf = cnt <= self.leaf_size
        cand = leaf & many
        if int(np.max(depth)) + int(np.ceil(np.log2(max(int(cnt.max()), 1)))) + 1 >= _MAX_DEPTH:
            # Depth guard: medians from here on keep every leaf at depth <= _MAX_DEPTH,
            # and no look-ahead split where it could go deeper.
            forced = many & (depth + _ceil_log2(cnt / self.leaf_size) + 1 >= _MAX_DEPTH)
            m = np.where(forced, s + cnt // 2, m)
            cand &= depth + _ceil_log2(cnt) + 1 < _MAX_DEPTH
        cand = np.nonzero(cand)[0]
        if cand.size:
            leaf[cand] &= ~self._split_pays(lohi, s[cand], e[cand], m[cand])
        return leaf, m

    def _bottom(self, codes: np.ndarray, lohi: np.ndarray, ccnt: np.ndarray, top: dict) -> None:
        """Assemble the node table: SAH top levels, then LBVH levels inside clusters.

        Nodes are numbered level by level (top tree first), so every child has
        a larger index than its parent: bottom-up passes run levels in reverse.
        """
        K = ccnt.size
        cstart = np.cumsum(ccnt) - ccnt           # cluster starts, final order
        corder = top["corder"]
        cdepth = top["cdepth"][corder]
        top_levels = top["levels"]
        T = sum(v.shape[0] for _, v in top_levels)

        leaf_k, m_k = self._leaf_or_split(codes, lohi, cstart, cstart + ccnt, cdepth)
        # Reference of every cluster (by final position): leaf or bottom root node.
        inner_k = ~leaf_k
        cref = np.empty(K, np.int64)
        cref[leaf_k] = _LEAF_FLAG | (cstart[leaf_k] << 4) | (ccnt[leaf_k] - 1)
        cref[inner_k] = T + np.arange(int(inner_k.sum()))
        ref_by_id = np.empty(K, np.int64)
        ref_by_id[corder] = cref

        refs: list[np.ndarray] = []
        empty: list[np.ndarray] = []
        levels: list[tuple[int, int]] = []
        first = 0
        for term, val in top_levels:
            n = val.shape[0]
            r = np.where(term, ref_by_id[np.where(term, val, 0)], first + n + val)
            refs.append(r)
            empty.append(np.zeros((n, 2), bool))
            levels.append((first, first + n))
            first += n
        max_depth = int(cdepth.max()) if K else 0
        if K == 1 and leaf_k[0]:
            # A single leaf: root with the leaf and an empty child (never hit).
            refs.append(np.array([[cref[0], _LEAF_FLAG]], np.int64))
            empty.append(np.array([[False, True]]))
            levels.append((0, 1))
            max_depth = 1
        s, e = cstart[inner_k], cstart[inner_k] + ccnt[inner_k]
        m, dep = m_k[inner_k], cdepth[inner_k]
        while s.size:
            n = s.size
            levels.append((first, first + n))
            c_s = np.stack([s, m], 1).ravel()
            c_e = np.stack([m, e], 1).ravel()
            c_d = np.repeat(dep + 1, 2)
            leaf, c_m = self._leaf_or_split(codes, lohi, c_s, c_e, c_d)
            r = np.empty(2 * n, np.int64)
            r[leaf] = _LEAF_FLAG | (c_s[leaf] << 4) | (c_e[leaf] - c_s[leaf] - 1)
            inner = ~leaf
            r[inner] = first + n + np.arange(int(inner.sum()))
            refs.append(r.reshape(n, 2))
            empty.append(np.zeros((n, 2), bool))
            if leaf.any():
                max_depth = max(max_depth, int(c_d[leaf].max()))
            first += n
            s, e, m, dep = c_s[inner], c_e[inner], c_m[inner], c_d[inner]

        self._levels = levels
        ref = np.concatenate(refs).astype(np.uint32)
        emp = np.concatenate(empty)
        self._child_ref = ref
        self.depth = max_depth
        # Box sources for every child slot: node table, leaf table or the empty box.
        n_nodes = ref.shape[0]
        is_leaf = ((ref & _LEAF_FLAG) != 0) & ~emp
        starts = ((ref >> 4) & 0x7FFFFFF).astype(np.int64)
        self._leaf_starts = np.sort(starts[is_leaf])
        n_leaves = self._leaf_starts.size
        src = ref.astype(np.int64)
        src[is_leaf] = n_nodes + np.searchsorted(self._leaf_starts, starts[is_leaf])
        src[emp] = n_nodes + n_leaves
        self._box_src = src
        # Dr.Jit copies of the topology for the box passes (build and refit); the
        # leaf table ends with the empty box (a leaf of count 0).
        leaf_ref = ref[is_leaf]
        leaf_cnt = ((leaf_ref & 15) + 1)[np.argsort(starts[is_leaf], kind="stable")]
        self._leaf_start_dr = _to_dr(bk.UInt32, np.append(self._leaf_starts, 0).astype(np.uint32))
        self._leaf_count_dr = _to_dr(bk.UInt32, np.append(leaf_cnt, 0).astype(np.uint32))
        self._box_src_dr = _to_dr(bk.UInt32, src.astype(np.uint32))
        self._child_ref_dr = _to_dr(bk.UInt32, ref)

    # ------------------------------------------------------------ bounds/upload
    def _bounds_and_codes(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Triangle boxes ``[lo, -hi]`` (F,6) and 63-bit Morton codes of their
        centres, quantised on the bounding cube of the vertices (Dr.Jit kernel)."""
        UInt32, UInt64, Float = bk.UInt32, bk.UInt64, bk.Float
        F = self._faces.shape[0]
        base = np.array([p[:, k].min() for k in range(3)], np.float64)
        extent = float(max(p[:, k].max() - base[k] for k in range(3)))
        scale = (2**21 - 1) / extent if extent > 0 else 0.0
        idx = dr.arange(UInt32, F) * 3
        v = [dr.gather(bk.Array3f, self._verts, dr.gather(UInt32, self._faces_dr, idx + k))
             for k in range(3)]
        lo = bk.Array3f(*[_min(v[0][i], _min(v[1][i], v[2][i])) for i in range(3)])
        hi = bk.Array3f(*[_max(v[0][i], _max(v[1][i], v[2][i])) for i in range(3)])
        codes = dr.zeros(UInt64, F)
        for i in range(3):
            # Scene constants are opaque so that the kernel is reused for every mesh.
            x = ((lo[i] + hi[i]) * 0.5 - dr.opaque(Float, base[i])) * dr.opaque(Float, scale)
            q = UInt64(UInt32(_min(_max(x, 0.0), float(2**21 - 1))))
            codes |= _spread_bits_dr(q) << (2 - i)
        dr.eval(lo, hi, codes)
        lohi = np.empty((F, 6), np.float32)
        for i in range(3):
            lohi[:, i] = lo[i].numpy()
            lohi[:, 3 + i] = -hi[i].numpy()
        return codes.numpy().copy(), lohi

    def _pack_triangles(self) -> tuple[Any, Any]:
        """Triangle records ``[p0, e1, e2, bits(prim), 0 x 6]`` (64 bytes, one cache
        line) in BVH order (Dr.Jit);
        returns the triangle boxes (lo, hi) in BVH order.

        Zero-area triangles (``|e1 x e2|^2 <= eps^2 (longest edge)^4``, tested in
        double precision) get zero edges, so their determinant is exactly 0.
        """
        UInt32, Float, Float64 = bk.UInt32, bk.Float, bk.Float64
        F = self._order.size
        prim = self._order_dr
        v = [dr.gather(bk.Array3f, self._verts, dr.gather(UInt32, self._faces_dr, prim * 3 + k))
             for k in range(3)]
        e1, e2 = v[1] - v[0], v[2] - v[0]
        a = [Float64(e1[k]) for k in range(3)]
        b = [Float64(e2[k]) for k in range(3)]
        cx = a[1] * b[2] - a[2] * b[1]
        cy = a[2] * b[0] - a[0] * b[2]
        cz = a[0] * b[1] - a[1] * b[0]
        n2 = cx * cx + cy * cy + cz * cz
        la = a[0] * a[0] + a[1] * a[1] + a[2] * a[2]
        lb = b[0] * b[0] + b[1] * b[1] + b[2] * b[2]
        lc = dr.square(b[0] - a[0]) + dr.square(b[1] - a[1]) + dr.square(b[2] - a[2])
        longest = _max(_max(la, lb), lc)
        degenerate = n2 <= (_DEGENERATE_EPS ** 2) * longest * longest
        lo = bk.Array3f(*[_min(v[0][i], _min(v[1][i], v[2][i])) for i in range(3)])
        hi = bk.Array3f(*[_max(v[0][i], _max(v[1][i], v[2][i])) for i in range(3)])
        e1 = dr.select(degenerate, 0.0, e1)
        e2 = dr.select(degenerate, 0.0, e2)
        # One 16-wide packet scatter (separate scatters into one array would each
        # become a kernel of their own).
        rec = dr.empty(Float, 16 * F)        # fully written by the packet scatter
        zero = dr.zeros(Float, F)
        dr.scatter(rec, bk.module.ArrayXf([v[0].x, v[0].y, v[0].z, e1.x, e1.y, e1.z, e2.x, e2.y,
                                           e2.z, dr.reinterpret_array(Float, prim)] + [zero] * 6),
                   dr.arange(UInt32, F))
        self._degenerate = degenerate
        self._tris = rec
        dr.eval(self._tris, self._degenerate, lo, hi)    # asynchronous launch on LLVM
        return lo, hi

    def _node_records(self, lo: Any, hi: Any) -> None:
        """Node records from the triangle boxes (BVH order), bottom-up (Dr.Jit).

        A table holds one box (8 floats: ``lo, hi, 0, 0``) per interior node, per
        leaf and one empty box; leaves reduce their triangles, then each level
        (deepest first) unites its children, and the records are scattered last.
        """
        UInt32, Float = bk.UInt32, bk.Float
        n_nodes = self._child_ref.shape[0]
        n_leaves = self._leaf_starts.size
        table = dr.empty(Float, 8 * (n_nodes + n_leaves + 1))   # every entry is written
        inf = dr.inf
        ArrayXf = bk.module.ArrayXf

        def put(lo_, hi_, index):
            # One 8-wide packet scatter per entry: [lo, hi, 0, 0].
            zero = dr.zeros(Float, dr.width(index))
            dr.scatter(table, ArrayXf([lo_[0], lo_[1], lo_[2], hi_[0], hi_[1], hi_[2], zero,
                                       zero]), index)

        def get(index):
            q0 = dr.gather(bk.Array4f, table, index * 2)
            q1 = dr.gather(bk.Array4f, table, index * 2 + 1)
            return (q0.x, q0.y, q0.z), (q0.w, q1.x, q1.y)

        # Leaves (and the empty box as one more leaf of count 0): unrolled over
        # the largest possible leaf.
        start, count = self._leaf_start_dr, self._leaf_count_dr
        blo = [dr.full(Float, inf, n_leaves + 1) for _ in range(3)]
        bhi = [dr.full(Float, -inf, n_leaves + 1) for _ in range(3)]
        for k in range(max(self.leaf_size, 1)):
            m = count > k
            lk = dr.gather(bk.Array3f, lo, start + k, m)
            hk = dr.gather(bk.Array3f, hi, start + k, m)
            blo = [dr.select(m, _min(lk[i], blo[i]), blo[i]) for i in range(3)]
            bhi = [dr.select(m, _max(hk[i], bhi[i]), bhi[i]) for i in range(3)]
        put(blo, bhi, dr.arange(UInt32, n_leaves + 1) + dr.opaque(UInt32, n_nodes))
        dr.eval(table)

        src = self._box_src_dr
        def union(i):
            (l0, h0), (l1, h1) = get(dr.gather(UInt32, src, i * 2)), \
                get(dr.gather(UInt32, src, i * 2 + 1))
            u_lo = [_min(l0[c], l1[c]) for c in range(3)]
            u_hi = [_max(h0[c], h1[c]) for c in range(3)]
            dr.eval(u_lo, u_hi)
            return u_lo, u_hi

        for a, b in reversed(self._levels):
            i = dr.arange(UInt32, b - a) + dr.opaque(UInt32, a)
            # The gathers are evaluated and released (union() returns) before the
            # scatter: a scatter into an array that pending gathers still read
            # would copy the whole table (copy-on-write) once per level.
            u_lo, u_hi = union(i)
            put(u_lo, u_hi, i)
            dr.eval(table)

        i = dr.arange(UInt32, n_nodes)
        (l0, h0), (l1, h1) = get(dr.gather(UInt32, src, i * 2)), \
            get(dr.gather(UInt32, src, i * 2 + 1))
        ref = self._child_ref_dr
        zero = dr.zeros(Float, n_nodes)
        rec = dr.empty(Float, 16 * n_nodes)
        dr.scatter(rec, ArrayXf([*l0, *h0, *l1, *h1,
                                 dr.reinterpret_array(Float, dr.gather(UInt32, ref, i * 2)),
                                 dr.reinterpret_array(Float, dr.gather(UInt32, ref, i * 2 + 1)),
                                 zero, zero]), i)
        self._nodes = rec
        dr.eval(self._nodes)
        self._wide_records()

    def _wide_plan(self) -> tuple[Any, Any, Any, int]:
        """Collapse of the binary tree into a ``_WIDTH``-wide one (numpy, once per build).

        Every 4-wide node stands for a binary node ``f``: its slots start as
        ``f``'s two children, then twice the interior slot of the largest
        surface area is opened (replaced by its two children), the greedy
        collapse of Wald, Benthin & Boulos 2008 ("Getting rid of packets") /
        Embree: nodes are full wherever the subtree allows, and the largest
        (most often entered) boxes are flattened first. Returns per slot (4 per
        node): the offset of its box in the binary records, whether it is
        empty, and its reference (interior references renumbered to 4-wide
        nodes); and the node count.
        """
        ref = self._child_ref
        empty_box = self._box_src == ref.shape[0] + self._leaf_starts.size
        rec = self._rec_np
        area = np.stack([_half_area(rec[:, 0:3], rec[:, 3:6]),
                         _half_area(rec[:, 6:9], rec[:, 9:12])], axis=1)
        openable = ((ref & _LEAF_FLAG) == 0) & ~empty_box
        wide_index = np.full(ref.shape[0], -1, np.int64)
        frontier = np.array([0], np.int64)
        pending = np.zeros(1, np.int64)   # stack entries above a node: its ancestors' pushes
        need = 1
        parts = []
        count = 0
        while frontier.size:
            n = frontier.size
            rows = np.arange(n)
            wide_index[frontier] = count + rows
            count += n
            # Slot k is child side[:, k] of binary node par[:, k].
            par = np.stack([frontier, frontier], axis=1)
            side = np.tile(np.array([0, 1], np.int64), (n, 1))
            valid = np.ones((n, 2), bool)
            for _ in range(_WIDTH - 2):
                a = np.where(valid & openable[par, side], area[par, side], -1.0)
                k = np.argmax(a, axis=1)
                ok = a[rows, k] >= 0
                c = ref[par[rows, k], side[rows, k]].astype(np.int64)
                par[rows, k] = np.where(ok, c, par[rows, k])
                side[rows, k] = np.where(ok, 0, side[rows, k])
                par = np.concatenate([par, np.where(ok, c, 0)[:, None]], axis=1)
                side = np.concatenate([side, np.ones((n, 1), np.int64)], axis=1)
                valid = np.concatenate([valid, ok[:, None]], axis=1)
            sref = np.where(valid, ref[par, side], _SENTINEL).astype(np.uint32)
            sempty = ~valid | empty_box[par, side]
            parts.append((par * 16 + side * 6, sref, sempty))
            down = ~sempty & ((sref & _LEAF_FLAG) == 0)
            frontier = sref[down].astype(np.int64)
            pending = pending + (~sempty).sum(axis=1) - 1      # after this node's pushes
            need = max(need, int(pending.max()))
            pending = np.repeat(pending, down.sum(axis=1))
        # A visit pushes all but one hit slot, so a lane never holds more stack
        # entries than the pushes along its path (checked, as the kernel's stack
        # has a fixed size: Dr.Jit 1.5 reuses a cached kernel whose local arrays
        # differ only in size, so the size must never vary).
        if need > _STACK_SIZE:   # pragma: no cover - excluded by _MAX_DEPTH
            raise RuntimeError(f"BVH: traversal stack of {need} entries needed, "
                               f"{_STACK_SIZE} allocated")
        src = np.concatenate([q[0] for q in parts]).ravel()
        sref = np.concatenate([q[1] for q in parts]).ravel()
        sempty = np.concatenate([q[2] for q in parts]).ravel()
        interior = ~sempty & ((sref & _LEAF_FLAG) == 0)
        sref[interior] = wide_index[sref[interior]]
        sref[sempty] = _SENTINEL
        return (_to_dr(bk.UInt32, src.astype(np.uint32)),
                _to_dr(bk.UInt32, sempty.astype(np.uint32)), _to_dr(bk.UInt32, sref), count)

    def _wide_records(self) -> None:
        """4-wide node records (32 floats, layout in the module docstring) gathered
        from the binary ones (Dr.Jit; after every build and refit); the stack
        traversal reads these."""
        if getattr(self, "_wide", None) is None:
            self._wide = self._wide_plan()
        src, empty, refs, count = self._wide
        UInt32 = bk.UInt32
        W = _WIDTH
        sh = W.bit_length() - 1                  # log2(W)
        i = dr.arange(UInt32, 8 * W * count)
        slot = (i >> (sh + 3)) * W + (i & (W - 1))
        field = (i >> sh) & 7                    # 0-5: lo.xyz, hi.xyz; 6: ref; 7: padding
        is_box = field < 6
        hole = dr.gather(UInt32, empty, slot) != 0
        val = dr.gather(bk.Float, self._nodes, dr.gather(UInt32, src, slot) + field,
                        is_box & ~hole)
        val = dr.select(is_box & hole, dr.select(field < 3, dr.inf, -dr.inf), val)
        val = dr.select(field == 6, dr.reinterpret_array(bk.Float, dr.gather(UInt32, refs, slot)),
                        val)
        self._nodes4 = dr.select(field == 7, 0.0, val)
        dr.eval(self._nodes4)

    @property
    def _rec_np(self) -> np.ndarray:
        """The node records as a numpy array (n_nodes, 16) (diagnostics, tests)."""
        return np.array(self._nodes, dtype=np.float32).reshape(-1, 16)

    @property
    def degenerate_count(self) -> int:
        """Number of zero-area triangles (never hit)."""
        return int(dr.count(self._degenerate)[0])

    # ------------------------------------------------------------------ refit
    def refit(self, positions: np.ndarray) -> None:
        """Recompute all boxes and triangle records for moved vertices.

        The triangles (``faces``) and the tree topology stay; tree quality
        degrades if the motion is large (rebuild then).
        """
        p, _ = _validate(positions, None, "BVH.refit")
        if p.shape[0] != self._n_vertices:
            raise ValueError(f"BVH.refit: got {p.shape[0]} vertex positions, the BVH was "
                             f"built over {self._n_vertices}")
        self._verts = _to_dr(bk.Float, p)
        lo, hi = self._pack_triangles()
        self._node_records(lo, hi)

    # ---------------------------------------------------------------- queries
    def triangle_count(self) -> int:
        """Number of triangles (rows of ``faces``) in the hierarchy."""
        return int(self._faces.shape[0])

    def node_count(self) -> int:
        """Number of interior nodes."""
        return int(self._child_ref.shape[0])

    def leaf_count(self) -> int:
        """Number of leaves."""
        return int(self._leaf_starts.size)

    def sah_cost(self) -> float:
        """SAH cost of the tree relative to its root box: ``C_t (1 + sum_n A_n / A)
        + C_i sum_l N_l A_l / A`` over interior nodes ``n`` and leaves ``l``, the
        expected cost of a random ray that hits the root box (a quality measure)."""
        rec = self._rec_np
        al = _half_area(rec[:, 0:3], rec[:, 3:6])
        ar = _half_area(rec[:, 6:9], rec[:, 9:12])
        root = _half_area(np.minimum(rec[0, 0:3], rec[0, 6:9]),
                          np.maximum(rec[0, 3:6], rec[0, 9:12]))
        if root <= 0:
            return 0.0
        ref = self._child_ref
        area = np.stack([al, ar], axis=1)
        leaf = (ref & _LEAF_FLAG) != 0
        count = np.where(leaf, (ref & 15) + 1, 0)
        empty = self._box_src == ref.shape[0] + self._leaf_starts.size
        count[empty] = 0                                     # the empty child, if any
        inner = area[~leaf].sum()
        return float(_C_TRAV * (1.0 + inner / root)
                     + _C_ISECT * (area * count).sum() / root)

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
    def traversal_stats(self, o: Any, d: Any, tmax: Any, active: Any,
                        any_hit: bool = False) -> tuple[Any, Any, Any]:
        """Per-ray counts ``(iterations, node visits, triangle tests)`` of a query
        (diagnostics for benchmarks; compiles a separate kernel)."""
        return self._trace(o, d, tmax, active, any_hit, stats=True)

    def _trace(self, o: Any, d: Any, tmax: Any, active: Any, any_hit: bool,
               stats: bool = False) -> Any:
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
        # 1/d: d = +-0 gives +-inf, so the slab of a parallel axis is (-inf, inf)
        # unless the origin lies exactly on its plane, where (plane - o) * inf = NaN.
        inv = dr.rcp(d)
        neg = [inv.x < 0, inv.y < 0, inv.z < 0]

        if not stats and self.unrolled(n):
            return self._trace_unrolled(o, d, inv, neg, dr.select(active, tmax, 0.0), n, any_hit)

        nodes4, tris = self._nodes4, self._tris
        # Closest hit: one 64-bit word per entry, ``ref | bits(entry t) << 32``: one
        # local-memory scatter per push instead of two (per-lane scatters are
        # what a push costs). Any hit keeps no distances.
        stack = dr.alloc_local(UInt32 if any_hit else bk.UInt64, _STACK_SIZE)
        stack_t = None

        def pop(stack, stack_t, node, sp, t_best, mask):
            """Pop the next node; closest hit: skip entries that start beyond the
            closest hit found since they were pushed (any hit keeps no distances)."""
            def c(stack, stack_t, node, sp, go):
                return go

            def b(stack, stack_t, node, sp, go):
                has = go & (sp > 0)
                sp = dr.select(has, sp - 1, sp)
                val = stack.read(sp, has)
                if not any_hit:
                    t_entry = dr.reinterpret_array(Float, UInt32(val >> 32))
                    val = UInt32(val & 0xFFFFFFFF)
                node = dr.select(go, dr.select(has, val, UInt32(_SENTINEL)), node)
                if not any_hit:
                    go = has & (t_entry >= t_best)
                return stack, stack_t, node, sp, go

            if any_hit:
                return b(stack, stack_t, node, sp, mask)[:4]
            stack, stack_t, node, sp, _ = dr.while_loop(
                (stack, stack_t, node, sp, Bool(mask)), c, b, label="bvh.pop")
            return stack, stack_t, node, sp

        def tri_step(tri_cur, tri_end, t_best, prim, bu, bv, found):
            """Möller-Trumbore tests of up to ``_TRI_STEP`` pending triangles from
            ``tri_cur`` on, in order (the same results as one per iteration)."""
            for j in range(_TRI_STEP):
                m = tri_cur + j < tri_end
                r = dr.gather(bk.module.ArrayXf, tris, tri_cur + j, m, shape=(16, n))
                hit, t, u, v = _triangle_test(o, d, r, t_best)
                hit &= m
                if any_hit:
                    found = found | hit
                else:
                    t_best = dr.select(hit, t, t_best)
                    prim = dr.select(hit, dr.reinterpret_array(UInt32, r[9]), prim)
                    bu = dr.select(hit, u, bu)
                    bv = dr.select(hit, v, bv)
            return _min(tri_cur + _TRI_STEP, tri_end), tri_end, t_best, prim, bu, bv, found

        def node_step(stack, stack_t, node, sp, t_best):
            """Test the four child boxes of 4-wide ``node``: descend into the
            nearest hit, push the other hits (farthest first)."""
            W = _WIDTH
            g = []
            for j in range(W // 2):     # 8 W floats: 16-float packet gathers
                g.extend(dr.gather(bk.module.ArrayXf, nodes4, node * (W // 2) + j, shape=(16, n)))
            slots = []
            for k in range(W):
                hit, tn = _slab(o, inv, neg, (g[k], g[W + k], g[2 * W + k]),
                                (g[3 * W + k], g[4 * W + k], g[5 * W + k]), t_best)
                slots.append([dr.select(hit, tn, dr.inf),
                              dr.reinterpret_array(UInt32, g[6 * W + k]), hit])
            # Sorting network on the entry distance (misses last).
            for a, b in _SORT[W]:
                swap = slots[b][0] < slots[a][0]
                sa, sb = slots[a], slots[b]
                slots[a] = [dr.select(swap, y, x) for x, y in zip(sa, sb)]
                slots[b] = [dr.select(swap, x, y) for x, y in zip(sa, sb)]
            for k in range(W - 1, 0, -1):
                push = slots[k][2]
                if any_hit:
                    stack.write(slots[k][1], sp, push)
                else:
                    t_bits = bk.UInt64(dr.reinterpret_array(UInt32, slots[k][0]))
                    stack.write(bk.UInt64(slots[k][1]) | (t_bits << 32), sp, push)
                sp = dr.select(push, sp + 1, sp)
            # No child hit: the next iteration pops (one pop per iteration).
            node = dr.select(slots[0][2], slots[0][1],
                             dr.select(sp > 0, UInt32(_POP), UInt32(_SENTINEL)))
            return stack, stack_t, node, sp

        def step(stack, stack_t, node, tri_cur, tri_end, sp, t_best, prim, bu, bv, found, cnt):
            # (1) No triangles pending and the current reference is a leaf: start
            # it and pop; or pop after a visit that hit no child.
            is_leaf = (node & _LEAF_FLAG) != 0
            fetch = (tri_cur >= tri_end) & is_leaf & (node < _POP)
            start = (node >> 4) & 0x7FFFFFF
            tri_cur = dr.select(fetch, start, tri_cur)
            tri_end = dr.select(fetch, start + (node & 15) + 1, tri_end)
            stack, stack_t, node, sp = pop(stack, stack_t, node, sp, t_best,
                                           fetch | (node == _POP))

            # (2) One triangle test, (3) one interior node. Symbolic conditionals
            # compile to branches that a SIMD packet skips when no lane needs them.
            do_tri = tri_cur < tri_end
            tri_cur, tri_end, t_best, prim, bu, bv, found = dr.if_stmt(
                (tri_cur, tri_end, t_best, prim, bu, bv, found), do_tri, tri_step,
                lambda *args: args, label="bvh.triangle")
            do_node = ((node & _LEAF_FLAG) == 0) & ~found
            stack, stack_t, node, sp = dr.if_stmt(
                (stack, stack_t, node, sp, t_best), do_node, node_step,
                lambda stack, stack_t, node, sp, t_best: (stack, stack_t, node, sp),
                label="bvh.node")
            if stats:
                cnt = (cnt[0] + 1, dr.select(do_node, cnt[1] + 1, cnt[1]),
                       dr.select(do_tri, cnt[2] + 1, cnt[2]))
            return stack, stack_t, node, tri_cur, tri_end, sp, t_best, prim, bu, bv, found, cnt

        def cond(stack, stack_t, node, tri_cur, tri_end, sp, t_best, prim, bu, bv, found, cnt):
            return ((node != _SENTINEL) | (tri_cur < tri_end)) & ~found

        zero_u = dr.zeros(UInt32, n)    # full width: LLVM needs it for the stack index
        # The stack must be loop state: otherwise a read that precedes the write
        # in the traced body does not see the previous iteration's writes.
        state = (
            stack, stack_t,
            dr.select(active, zero_u, UInt32(_SENTINEL)),   # node (root = 0)
            dr.zeros(UInt32, n),                             # tri_cur
            dr.zeros(UInt32, n),                             # tri_end
            dr.zeros(UInt32, n),                             # sp
            dr.select(active, tmax, 0.0) + dr.zeros(Float, n),  # t_best
            dr.full(UInt32, _SENTINEL, n),                   # prim
            dr.zeros(Float, n),                              # u
            dr.zeros(Float, n),                              # v
            dr.zeros(Bool, n),                               # found (any-hit)
            tuple(dr.zeros(UInt32, n) for _ in range(3)) if stats else (),
        )
        label = "lumigrad.bvh.ray_test" if any_hit else "lumigrad.bvh.ray_intersect"
        _, _, node, tri_cur, tri_end, sp, t_best, prim, bu, bv, found, cnt = dr.while_loop(
            state, cond, step, label=label, mode="symbolic")
        if stats:
            return cnt
        if any_hit:
            return found
        hit = prim != _SENTINEL
        t = dr.select(hit, t_best, dr.inf)
        return t, prim, bu, bv, hit

    # ------------------------------------------------- small scenes: unrolled
    def unrolled(self, rays: int) -> bool:
        """Whether a query of ``rays`` rays uses the unrolled packet traversal (at
        most ``unroll_max_triangles`` triangles and at least ``unroll_min_rays``
        rays; see :meth:`_trace_unrolled`)."""
        return self.triangle_count() <= self.unroll_max_triangles \
            and rays >= self.unroll_min_rays

    def _trace_unrolled(self, o: Any, d: Any, inv: Any, neg: list, t_init: Any, n: int,
                        any_hit: bool) -> Any:
        """Traversal of a small BVH written out into the kernel, node by node.

        Packet traversal (Wald, Slusallek, Benthin & Wagner 2001, "Interactive
        rendering with coherent ray tracing") without a stack: the tree is walked
        in a fixed order at trace time, every child visit is a symbolic
        conditional (a branch that a SIMD packet skips when none of its lanes'
        rays enters the box) and every triangle of an entered leaf is tested.
        The node boxes and triangle records are read as width-1 gathers with
        constant indices, which Dr.Jit turns into scalar kernel inputs: no
        per-lane memory access is left in the traversal, which is what costs in
        the stack traversal (on the CPU: 2-3x faster for a Cornell box). The
        values are inputs, not literals, so a refit (new vertex positions, same
        tree) reuses the compiled kernel; a rebuild compiles a new one.
        The code grows with the tree, so only scenes of at most
        ``unroll_max_triangles`` triangles take this path.
        """
        UInt32, Float = bk.UInt32, bk.Float
        refs = self._child_ref
        nodes, tris = self._nodes, self._tris
        # The scalar inputs are made once per build/refit, not per query (each is a
        # small device copy: ~2,300 per Cornell-box render otherwise).
        cache = self.__dict__.setdefault("_scalar_inputs", {})
        if cache.get("buffers") != (id(nodes), id(tris)):
            cache.clear()
            cache["buffers"] = (id(nodes), id(tris))
            cache["keep"] = (nodes, tris)     # ids stay unique while cached

        def record(buf: Any, start: int, count: int) -> list:
            key = (buf is tris, start, count)
            if key not in cache:
                cache[key] = [dr.gather(Float, buf, UInt32(start + j)) for j in range(count)]
            return cache[key]

        keys = ("t", "prim", "u", "v", "found")
        state = dict(t=t_init + dr.zeros(Float, n), prim=dr.full(UInt32, _SENTINEL, n),
                     u=dr.zeros(Float, n), v=dr.zeros(Float, n), found=dr.zeros(bk.Bool, n))

        def leaf(ref: int, st: dict) -> None:
            start = (ref >> 4) & 0x7FFFFFF
            for k in range(start, start + (ref & 15) + 1):
                rec = record(tris, 16 * k, 10)
                hit, t, u, v = _triangle_test(o, d, rec, st["t"])
                if any_hit:
                    st["found"] = st["found"] | hit
                else:
                    st["t"] = dr.select(hit, t, st["t"])
                    st["prim"] = dr.select(hit, dr.reinterpret_array(UInt32, rec[9]),
                                           st["prim"])
                    st["u"] = dr.select(hit, u, st["u"])
                    st["v"] = dr.select(hit, v, st["v"])

        def visit(ref: int, st: dict) -> None:
            (leaf if ref & _LEAF_FLAG else inner)(ref, st)

        def inner(node: int, st: dict) -> None:
            box = record(nodes, 16 * node, 12)
            for side in range(2):
                ref = int(refs[node, side])
                enter, _ = _slab(o, inv, neg, box[6 * side:6 * side + 3],
                                 box[6 * side + 3:6 * side + 6], st["t"])
                if any_hit:
                    enter = enter & ~st["found"]

                def body(*values: Any, ref: int = ref) -> tuple:
                    sub = dict(zip(keys, values))
                    visit(ref, sub)
                    return tuple(sub[k] for k in keys)

                out = dr.if_stmt(tuple(st[k] for k in keys), enter,
                                 body, lambda *values: values, label="bvh.unrolled")
                st.update(zip(keys, out))

        if refs.shape[0]:
            inner(0, state)
        if any_hit:
            return state["found"]
        hit = state["prim"] != _SENTINEL
        return dr.select(hit, state["t"], dr.inf), state["prim"], state["u"], state["v"], hit
