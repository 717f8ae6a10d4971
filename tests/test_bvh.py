"""BVH build + traversal against a brute-force Möller–Trumbore reference (numpy, float64)."""
from __future__ import annotations

import drjit as dr
import numpy as np
import pytest

from lumigrad import backend as bk
from lumigrad.geometry.bvh import BVH, _LEAF_FLAG, _MAX_DEPTH, _to_dr

MISS = 0xFFFFFFFF


# ---------------------------------------------------------------------------
# reference
# ---------------------------------------------------------------------------
def _tri_data(p, f):
    p = np.asarray(p, np.float64)
    f = np.asarray(f, np.int64)
    p0 = p[f[:, 0]]
    e1 = p[f[:, 1]] - p0
    e2 = p[f[:, 2]] - p0
    n2 = (np.cross(e1, e2) ** 2).sum(1)
    e3 = e2 - e1
    longest = np.maximum(np.maximum((e1 ** 2).sum(1), (e2 ** 2).sum(1)), (e3 ** 2).sum(1))
    good = n2 > (1e-6 ** 2) * longest ** 2          # the BVH's zero-area rule
    return p0, e1, e2, good


def _mt(o, d, p0, e1, e2):
    """Möller–Trumbore for ray i against triangle i (broadcasting), float64."""
    pv = np.cross(d, e2)
    det = (e1 * pv).sum(-1)
    with np.errstate(all="ignore"):
        inv = 1.0 / det
        tv = o - p0
        u = (tv * pv).sum(-1) * inv
        qv = np.cross(tv, e1)
        v = (d * qv).sum(-1) * inv
        t = (e2 * qv).sum(-1) * inv
    return det, t, u, v


def brute_force(p, f, o, d, tmax):
    """Closest hit of every ray over all triangles: (t, prim, u, v, margin).

    ``margin`` is the smallest barycentric coordinate of the closest hit: rays
    that pass within ~1e-5 of an edge may legitimately differ in float32.
    """
    p0, e1, e2, good = _tri_data(p, f)
    o = np.asarray(o, np.float64)
    d = np.asarray(d, np.float64)
    R = o.shape[0]
    T = np.full(R, np.inf)
    P = np.full(R, MISS, np.int64)
    U = np.zeros(R)
    V = np.zeros(R)
    M = np.zeros(R)
    step = max(1, 4_000_000 // max(1, len(f)))
    for c in range(0, R, step):
        sl = slice(c, c + step)
        det, t, u, v = _mt(o[sl, None], d[sl, None], p0[None], e1[None], e2[None])
        with np.errstate(invalid="ignore"):
            h = good[None] & (det != 0) & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0) \
                & (t < tmax[sl, None])
        tt = np.where(h, t, np.inf)
        k = tt.argmin(1)
        r = np.arange(k.size)
        best = tt[r, k]
        hit = np.isfinite(best)
        T[sl] = best
        P[sl] = np.where(hit, k, MISS)
        U[sl] = np.where(hit, u[r, k], 0)
        V[sl] = np.where(hit, v[r, k], 0)
        M[sl] = np.where(hit, np.minimum(np.minimum(u[r, k], v[r, k]), 1 - u[r, k] - v[r, k]), 1)
    return T, P, U, V, M


def _rays(o, d, tmax, active):
    """Dr.Jit ray arrays over 64-byte aligned copies (numpy-mapped arrays of other
    alignments would compile separate kernel variants)."""
    n = len(o)
    o = np.asarray(o, np.float32)
    d = np.asarray(d, np.float32)
    tmax = np.full(n, np.inf, np.float32) if tmax is None else np.asarray(tmax, np.float32)
    active = np.ones(n, bool) if active is None else np.asarray(active, bool)
    return (bk.Array3f(*[_to_dr(bk.Float, o[:, k]) for k in range(3)]),
            bk.Array3f(*[_to_dr(bk.Float, d[:, k]) for k in range(3)]),
            _to_dr(bk.Float, tmax), _to_dr(bk.Bool, active))


def trace(bvh, o, d, tmax=None, active=None):
    res = bvh.ray_intersect(*_rays(o, d, tmax, active))
    dr.eval(res)
    t, prim, u, v, hit = (np.array(x) for x in res)
    return t, prim.astype(np.int64), u, v, hit


def shadow(bvh, o, d, tmax=None, active=None):
    return np.array(bvh.ray_test(*_rays(o, d, tmax, active)))


def check_against_reference(bvh, p, f, o, d, tmax=None, max_marginal=0.01):
    """BVH closest hits equal brute force (t, prim up to ties, u, v); returns #hits."""
    n = len(o)
    tmax = np.full(n, np.inf) if tmax is None else np.asarray(tmax, np.float64)
    t, prim, u, v, hit = trace(bvh, o, d, tmax.astype(np.float32))
    T, P, U, V, M = brute_force(p, f, o, d, tmax.astype(np.float32).astype(np.float64))
    assert np.all(np.isfinite(u)) and np.all(np.isfinite(v)) and not np.any(np.isnan(t))
    assert np.array_equal(hit, prim != MISS)
    assert np.all(np.isinf(t[~hit])) and np.all(u[~hit] == 0) and np.all(v[~hit] == 0)
    assert np.all(t[hit] > 0) and np.all(t[hit] < tmax[hit])
    # The reported triangle, re-intersected in float64: a genuine hit at the reported t.
    p0, e1, e2, good = _tri_data(p, f)
    k = np.where(hit, prim, 0)
    det, tk, uk, vk = _mt(np.asarray(o, np.float64), np.asarray(d, np.float64),
                          p0[k], e1[k], e2[k])
    assert np.all(good[k[hit]]), "a zero-area triangle was hit"
    tol = 1e-4 * np.maximum(1.0, np.abs(tk))
    ok_t = np.abs(t - tk) <= tol
    ok_uv = (np.abs(u - uk) <= 1e-3) & (np.abs(v - vk) <= 1e-3)
    assert np.all(ok_t[hit]), "t differs from the reported triangle's intersection"
    assert np.all(ok_uv[hit]), "(u, v) differ from the reported triangle's intersection"
    # Closest: no reference hit clearly nearer; misses only where the reference grazes an edge.
    with np.errstate(invalid="ignore"):
        same = hit & (np.abs(t - T) <= tol)
    missed = ~hit & (P != MISS)
    extra = hit & (P == MISS)
    farther = hit & (P != MISS) & ~same
    marginal_miss = missed & (M < 1e-5)
    marginal_extra = extra & (np.minimum(np.minimum(uk, vk), 1 - uk - vk) > -1e-5)
    bad = (missed & ~marginal_miss) | (extra & ~marginal_extra) | farther
    assert not bad.any(), (
        f"{bad.sum()} rays disagree with brute force, e.g. ray {np.argmax(bad)}: "
        f"bvh t={t[bad][0]} prim={prim[bad][0]}, reference t={T[bad][0]} prim={P[bad][0]}")
    assert (marginal_miss.sum() + marginal_extra.sum()) <= max_marginal * n
    # ray_test agrees with the closest-hit query.
    h2 = shadow(bvh, o, d, tmax.astype(np.float32))
    assert np.array_equal(h2, hit)
    return int(hit.sum())


# ---------------------------------------------------------------------------
# meshes and rays
# ---------------------------------------------------------------------------
def soup(n, seed=0, size=0.05):
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1, 1, (n, 1, 3))
    p = (c + size * rng.standard_normal((n, 3, 3))).reshape(-1, 3).astype(np.float32)
    return p, np.arange(3 * n, dtype=np.uint32).reshape(-1, 3)


def uv_sphere(nv, nu, r=1.0):
    th = np.linspace(0, np.pi, nv + 1)
    ph = np.linspace(0, 2 * np.pi, nu + 1)[:-1]
    T, P = np.meshgrid(th, ph, indexing="ij")
    pos = np.stack([r * np.sin(T) * np.cos(P), r * np.sin(T) * np.sin(P), r * np.cos(T)],
                   -1).reshape(-1, 3)
    i = np.arange(nv)[:, None]
    j = np.arange(nu)[None, :]
    a, b = i * nu + j, i * nu + (j + 1) % nu
    c, d = (i + 1) * nu + j, (i + 1) * nu + (j + 1) % nu
    f = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3),
                        np.stack([a, d, c], -1).reshape(-1, 3)])
    return pos.astype(np.float32), f.astype(np.uint32)


def axis_parallel_rays(rng, n, size):
    """Rays along a random axis from just outside the lattice [0, size)^3, with integer
    origins: they run inside box faces (d component 0, origin on the plane: 0 * inf);
    half of them with -0.0 in the zero components (1/d = -inf)."""
    axis = rng.integers(0, 3, n)
    o = rng.integers(0, size, (n, 3)).astype(np.float32)
    o[np.arange(n), axis] = rng.choice([-1.0, size + 1.0], n)
    d = np.zeros((n, 3), np.float32)
    d[np.arange(n), axis] = np.where(o[np.arange(n), axis] < 0, 1.0, -1.0)
    neg0 = rng.random(n) < 0.5
    d[neg0] = np.where(d[neg0] == 0, np.float32(-0.0), d[neg0])
    return o, d


def random_rays(n, seed=1, box=1.5):
    rng = np.random.default_rng(seed)
    o = rng.uniform(-box, box, (n, 3)).astype(np.float32)
    d = rng.standard_normal((n, 3)).astype(np.float32)
    return o, d


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------
def test_random_soup_matches_brute_force():
    p, f = soup(3000)
    bvh = BVH.build(p, f)
    assert bvh.triangle_count() == 3000
    o, d = random_rays(2000)
    d *= np.random.default_rng(5).uniform(0.2, 3, (len(d), 1)).astype(np.float32)  # t in units of d
    assert check_against_reference(bvh, p, f, o, d) > 300


@pytest.mark.parametrize("leaf_size", [1, 16])
def test_leaf_sizes(leaf_size):
    p, f = soup(800, seed=3, size=0.1)
    bvh = BVH.build(p, f, leaf_size=leaf_size)
    o, d = random_rays(600, seed=4)
    assert check_against_reference(bvh, p, f, o, d) > 100


def test_sphere_inside_and_outside():
    p, f = uv_sphere(40, 80)
    bvh = BVH.build(p, f)
    rng = np.random.default_rng(2)
    # From the centre: every ray leaves through the surface at t ~ radius.
    d = rng.standard_normal((1000, 3)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    o = np.zeros_like(d)
    t, prim, u, v, hit = trace(bvh, o, d)
    assert hit.all()
    assert np.all(np.abs(t - 1) < 2e-3)
    # From outside towards random points inside: hits equal brute force, nearest side.
    o2 = 3 * d
    tgt = rng.uniform(-0.5, 0.5, (1000, 3)).astype(np.float32)
    d2 = (tgt - o2).astype(np.float32)
    assert check_against_reference(bvh, p, f, o2, d2) >= 990
    t2 = trace(bvh, o2, d2)[0]
    assert np.all(t2 < 1.0)          # entered before reaching the interior target


def test_degenerate_triangles_never_hit():
    p, f = soup(500, seed=7, size=0.1)
    n = len(p)
    rng = np.random.default_rng(8)
    a = rng.uniform(-1, 1, (150, 3)).astype(np.float32)
    b = rng.uniform(-1, 1, (150, 3)).astype(np.float32)
    extra = np.concatenate([
        np.stack([a, a, b], 1),                      # repeated vertex
        np.stack([a, b, (a + 2 * (b - a))], 1),      # collinear
        np.stack([a, a, a], 1),                      # a point
    ]).reshape(-1, 3)
    p2 = np.concatenate([p, extra]).astype(np.float32)
    f2 = np.concatenate([f, n + np.arange(len(extra)).reshape(-1, 3)]).astype(np.uint32)
    bvh = BVH.build(p2, f2)
    assert bvh.degenerate_count == 450
    # Rays straight through the degenerate triangles' vertices and midpoints.
    tri = extra.reshape(-1, 3, 3)
    target = np.concatenate([tri.mean(1), tri[:, 0], 0.5 * (tri[:, 0] + tri[:, 1])])
    o = target + rng.standard_normal(target.shape).astype(np.float32)
    d = (target - o).astype(np.float32)
    check_against_reference(bvh, p2, f2, o, d)
    t, prim, u, v, hit = trace(bvh, o, d)
    assert np.all(prim[hit] < len(f))
    # A mesh made only of degenerate triangles: nothing is ever hit.
    only = BVH.build(extra, np.arange(len(extra)).reshape(-1, 3))
    t, prim, u, v, hit = trace(only, o, d)
    assert not hit.any() and np.all(np.isinf(t)) and np.all(prim == MISS)
    assert not shadow(only, o, d).any()


def test_axis_parallel_rays_on_box_planes():
    """Integer-lattice triangles and axis-aligned rays with integer coordinates: the
    rays run inside box faces (d component 0, origin on the plane: 0 * inf)."""
    rng = np.random.default_rng(11)
    p = rng.integers(0, 9, (1500, 3)).astype(np.float32)
    f = np.arange(1500, dtype=np.uint32).reshape(-1, 3)
    bvh = BVH.build(p, f)
    o, d = axis_parallel_rays(rng, 1500, 9)
    assert check_against_reference(bvh, p, f, o, d, max_marginal=0.5) > 50


def test_rays_starting_inside_boxes_and_tmax():
    p, f = soup(2000, seed=12, size=0.08)
    bvh = BVH.build(p, f)
    rng = np.random.default_rng(13)
    # Origins near triangle centroids: inside leaf boxes (not exactly on a
    # triangle, where float32 and float64 legitimately disagree about t ~ 0).
    o = (p.reshape(-1, 3, 3).mean(1)[rng.integers(0, 2000, 1500)]
         + 0.01 * rng.standard_normal((1500, 3))).astype(np.float32)
    d = rng.standard_normal((1500, 3)).astype(np.float32)
    tmax = rng.uniform(0.01, 1.0, 1500)
    check_against_reference(bvh, p, f, o, d, tmax=tmax)
    # tmax only cuts: with a larger tmax, every hit stays and none gets farther.
    t1, prim1, _, _, h1 = trace(bvh, o, d, tmax)
    t2, prim2, _, _, h2 = trace(bvh, o, d)
    assert np.all(h2[h1]) and np.allclose(t1[h1], t2[h1])
    assert np.all(t2[h2 & ~h1] >= tmax[h2 & ~h1].astype(np.float32))
    # t in (0, tmax): tmax <= 0 or inactive lanes never hit.
    t3, prim3, _, _, h3 = trace(bvh, o, d, np.where(np.arange(1500) % 2 == 0, 0.0, 1e3),
                                active=np.arange(1500) % 3 != 0)
    assert not h3[np.arange(1500) % 2 == 0].any()
    assert not h3[np.arange(1500) % 3 == 0].any()
    assert not shadow(bvh, o, d, np.full(1500, 1e3), np.zeros(1500, bool)).any()


def test_refit_equals_rebuild():
    p, f = uv_sphere(30, 60)
    bvh = BVH.build(p, f)
    rng = np.random.default_rng(21)
    moved = (p * np.array([1.3, 0.8, 1.0], np.float32)
             + 0.03 * rng.standard_normal(p.shape).astype(np.float32)
             + np.array([0.2, 0.0, -0.1], np.float32))
    bvh.refit(moved)
    fresh = BVH.build(moved, f)
    o = rng.uniform(-3, 3, (600, 3)).astype(np.float32)
    d = (rng.uniform(-0.5, 0.5, (600, 3)) - o).astype(np.float32)
    a = trace(bvh, o, d)
    b = trace(fresh, o, d)
    assert np.array_equal(a[4], b[4])
    assert np.allclose(a[0][a[4]], b[0][b[4]], rtol=1e-6)
    assert np.mean(a[1] == b[1]) > 0.99          # different prims only on shared edges
    check_against_reference(bvh, moved, f, o, d)
    # Refit back to the original positions restores the original answers.
    bvh.refit(p)
    c = trace(bvh, o, d)
    assert check_against_reference(bvh, p, f, o, d) > 300
    assert np.array_equal(c[4], trace(BVH.build(p, f), o, d)[4])


def test_structure_invariants():
    for p, f in (soup(3000, seed=30), uv_sphere(20, 40)):
        bvh = BVH.build(p, f, leaf_size=4)
        rec = bvh._rec_np
        ref = bvh._child_ref
        tri = p[np.asarray(f, np.int64)[bvh._order]]
        lo, hi = tri.min(1), tri.max(1)
        covered = np.zeros(len(f), int)
        leaf = (ref & _LEAF_FLAG) != 0
        for k in range(2):
            blo, bhi = rec[:, 6 * k:6 * k + 3], rec[:, 6 * k + 3:6 * k + 6]
            lk = leaf[:, k]
            start = ((ref[lk, k] >> 4) & 0x7FFFFFF).astype(np.int64)
            cnt = (ref[lk, k] & 15).astype(np.int64) + 1
            assert cnt.max() <= 4
            idx = np.repeat(np.arange(lk.sum()), cnt)
            g = np.repeat(start, cnt) + (np.arange(cnt.sum())
                                         - np.repeat(np.cumsum(cnt) - cnt, cnt))
            np.add.at(covered, g, 1)
            assert np.all(lo[g] >= blo[lk][idx]) and np.all(hi[g] <= bhi[lk][idx])
            child = ref[~lk, k].astype(np.int64)
            assert np.all(child > np.nonzero(~lk)[0])            # children after parents
            clo = np.minimum(rec[child, 0:3], rec[child, 6:9])
            chi = np.maximum(rec[child, 3:6], rec[child, 9:12])
            assert np.all(clo >= blo[~lk]) and np.all(chi <= bhi[~lk])
        assert np.all(covered == 1)                   # every triangle in exactly one leaf
        assert sorted(bvh._order.tolist()) == list(range(len(f)))
        assert 0 < bvh.depth <= _MAX_DEPTH


def test_wide_collapse_invariants():
    """The 4-wide records (greedy collapse) hold every leaf of the binary tree in
    exactly one slot, each slot box equals its binary box, interior slots point
    to later nodes, and the nodes are full wherever the binary subtree has four
    or more leaves (a wide node is short only when its subtree is)."""
    from lumigrad.geometry.bvh import _WIDTH
    p, f = uv_sphere(20, 40)
    bvh = BVH.build(p, f, leaf_size=2)
    W = _WIDTH
    rec = np.array(bvh._nodes4, dtype=np.float32).reshape(-1, 8, W)
    refs = rec[:, 6].view(np.uint32)
    lo, hi = rec[:, 0:3], rec[:, 3:6]                  # (nodes, 3, W)
    empty = refs == 0xFFFFFFFF
    assert np.all(lo[np.broadcast_to(empty[:, None], lo.shape)] == np.inf)
    leaf = ~empty & ((refs & _LEAF_FLAG) != 0)
    inner = ~empty & ~leaf
    # every binary leaf exactly once
    bref = bvh._child_ref
    bleaf = np.sort(bref[(bref & _LEAF_FLAG) != 0])
    assert np.array_equal(np.sort(refs[leaf]), bleaf)
    rows = np.nonzero(inner)[0]
    assert np.all(refs[inner] > rows)                  # children after parents
    assert np.array_equal(np.sort(refs[inner]), np.arange(1, rec.shape[0]))
    # triangles of a leaf slot lie in its box
    tri = p[np.asarray(f, np.int64)[bvh._order]]
    for r, k in zip(*np.nonzero(leaf)):
        s, c = (int(refs[r, k]) >> 4) & 0x7FFFFFF, (int(refs[r, k]) & 15) + 1
        t = tri[s:s + c]
        assert np.all(t.min((0, 1)) >= lo[r, :, k]) and np.all(t.max((0, 1)) <= hi[r, :, k])
    # leaves under each node: a short node has fewer than W leaves below it
    below = np.zeros(rec.shape[0], np.int64)
    for r in range(rec.shape[0] - 1, -1, -1):
        below[r] = leaf[r].sum() + below[refs[r][inner[r]].astype(np.int64)].sum()
    short = (~empty).sum(1) < W
    assert np.all(below[short] < W)


def test_pathological_distributions_depth_guard():
    """Exponentially spaced triangles, coincident triangles (identical Morton
    codes) and a tight depth limit: depth stays bounded, hits stay right."""
    n = 1500
    x = 1.015 ** np.arange(n, dtype=np.float64)         # 1 .. 5e9 (float32 MT: t ~ |e|^3)
    s = 0.01 * x
    base = np.stack([x, np.zeros(n), np.zeros(n)], 1)
    tri = np.stack([base, base + s[:, None] * [0, 1, 0], base + s[:, None] * [0, 0, 1]], 1)
    p = tri.reshape(-1, 3).astype(np.float32)
    f = np.arange(3 * n, dtype=np.uint32).reshape(-1, 3)
    bvh = BVH.build(p, f)
    assert bvh.depth <= _MAX_DEPTH and bvh.degenerate_count == 0
    k = np.arange(0, n, 5)
    o = np.stack([0.99 * x[k], 0.25 * s[k], 0.25 * s[k]], 1).astype(np.float32)
    d = np.tile(np.array([[1, 0, 0]], np.float32), (len(k), 1))
    t, prim, u, v, hit = trace(bvh, o, d)
    assert hit.all() and np.array_equal(prim, k)
    assert np.allclose(t, 0.01 * x[k], rtol=1e-4)

    same = np.tile(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32), (3000, 1))
    bvh = BVH.build(same, np.arange(9000, dtype=np.uint32).reshape(-1, 3), leaf_size=2)
    assert bvh.depth <= _MAX_DEPTH
    o = np.tile(np.array([[0.2, 0.3, 1.0]], np.float32), (50, 1))
    d = np.tile(np.array([[0, 0, -2.0]], np.float32), (50, 1))
    t, prim, u, v, hit = trace(bvh, o, d)
    assert hit.all() and np.allclose(t, 0.5) and np.all(prim < 3000)
    assert np.allclose(u, 0.2) and np.allclose(v, 0.3)


def test_depth_guard(monkeypatch):
    import lumigrad.geometry.bvh as bvh_module
    p, f = soup(4000, seed=60)
    free = BVH.build(p, f, leaf_size=1)
    # (a limit must leave room for log2(#clusters) + log2(cluster size) levels)
    monkeypatch.setattr(bvh_module, "_MAX_DEPTH", free.depth - 2)
    bvh = BVH.build(p, f, leaf_size=1)
    assert bvh.depth <= free.depth - 2
    o, d = random_rays(500, seed=61)
    assert check_against_reference(bvh, p, f, o, d) > 50


def test_single_and_two_triangles():
    p = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    for f in (np.array([[0, 1, 2]]), np.array([[0, 1, 2], [0, 1, 3]])):
        bvh = BVH.build(p, f)
        o = np.array([[0.25, 0.25, 1.0], [0.25, -1.0, 0.25], [2, 2, 2]], np.float32)
        d = np.array([[0, 0, -1], [0, 1, 0], [1, 0, 0]], np.float32)
        t, prim, u, v, hit = trace(bvh, o, d)
        assert hit[0] and prim[0] == 0 and abs(t[0] - 1) < 1e-6
        assert abs(u[0] - 0.25) < 1e-6 and abs(v[0] - 0.25) < 1e-6
        assert hit[1] == (len(f) == 2) and not hit[2]
        if len(f) == 2:
            assert prim[1] == 1 and abs(t[1] - 1) < 1e-6
            # p = (1-u-v) p0 + u p1 + v p3 = (0.25, 0, 0.25)
            assert abs(u[1] - 0.25) < 1e-6 and abs(v[1] - 0.25) < 1e-6


def test_inside_symbolic_loop_matches_outside():
    """ray_intersect called inside a symbolic loop (as in the path tracer)."""
    p, f = soup(1500, seed=40)
    bvh = BVH.build(p, f)
    o_np, d_np = random_rays(500, seed=41)
    o, d = bk.Array3f(o_np.T), bk.Array3f(d_np.T)
    shift = bk.Array3f(0.05, -0.03, 0.02)

    @dr.syntax
    def looped(bvh, o, d, shift):  # (dr.syntax functions do not see closure variables)
        i = dr.zeros(bk.UInt32, dr.width(o))
        acc_t = dr.zeros(bk.Float, dr.width(o))
        acc_p = dr.zeros(bk.UInt32, dr.width(o))
        while i < 3:
            oi = o + bk.Float(i) * shift
            t, prim, u, v, hit = bvh.ray_intersect(oi, d, dr.full(bk.Float, dr.inf, dr.width(o)),
                                                   bk.Bool(True))
            acc_t += dr.select(hit, t, 0.0)
            acc_p += dr.select(hit, prim + 1, 0)
            i += 1
        return acc_t, acc_p

    acc_t, acc_p = looped(bvh, o, d, shift)
    ref_t = np.zeros(500)
    ref_p = np.zeros(500, np.int64)
    for i in range(3):
        t, prim, u, v, hit = trace(bvh, o_np + i * np.array([0.05, -0.03, 0.02], np.float32), d_np)
        ref_t += np.where(hit, t, 0)
        ref_p += np.where(hit, prim + 1, 0)
    assert np.allclose(np.array(acc_t), ref_t, rtol=1e-5, atol=1e-6)
    assert np.array_equal(np.array(acc_p).astype(np.int64), ref_p)
    assert ref_p.sum() > 0


def test_outputs_are_detached_and_inputs_may_be_grad_enabled():
    p, f = soup(200, seed=50)
    bvh = BVH.build(p, f)
    o_np, d_np = random_rays(100, seed=51)
    o = bk.Array3f(o_np.T)
    dr.enable_grad(o)
    t, prim, u, v, hit = bvh.ray_intersect(o, bk.Array3f(d_np.T),
                                           bk.Float(np.full(100, np.inf, np.float32)),
                                           bk.Bool(True))
    assert not dr.grad_enabled(t) and not dr.grad_enabled(u)


def test_invalid_input_errors():
    p = np.zeros((4, 3), np.float32)
    p[1, 0] = p[2, 1] = 1
    good_f = np.array([[0, 1, 2]])
    with pytest.raises(ValueError, match="no triangles"):
        BVH.build(p, np.zeros((0, 3), np.uint32))
    with pytest.raises(ValueError, match="shape"):
        BVH.build(p, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="shape"):
        BVH.build(p[:, :2], good_f)
    with pytest.raises(ValueError, match="no vertex positions"):
        BVH.build(np.zeros((0, 3)), good_f)
    with pytest.raises(ValueError, match="outside"):
        BVH.build(p, np.array([[0, 1, 4]]))
    with pytest.raises(ValueError, match="outside"):
        BVH.build(p, np.array([[0, -1, 2]]))
    with pytest.raises(ValueError, match="integer"):
        BVH.build(p, good_f.astype(np.float32))
    bad = p.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="vertex 3"):
        BVH.build(bad, good_f)
    with pytest.raises(ValueError, match="leaf_size"):
        BVH.build(p, good_f, leaf_size=0)
    with pytest.raises(ValueError, match="leaf_size"):
        BVH.build(p, good_f, leaf_size=17)
    bvh = BVH.build(p, good_f)
    with pytest.raises(ValueError, match="4"):
        bvh.refit(p[:3])
    bad2 = p.copy()
    bad2[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        bvh.refit(bad2)


def test_traversal_stats_and_quality():
    p, f = uv_sphere(30, 60)
    bvh = BVH.build(p, f)
    rng = np.random.default_rng(70)
    o = (3 * rng.standard_normal((400, 3))).astype(np.float32)
    d = (rng.uniform(-0.3, 0.3, (400, 3)) - o).astype(np.float32)
    act = np.arange(400) % 4 != 0
    it, nodes, tris = (np.array(x).astype(np.int64) for x in bvh.traversal_stats(
        bk.Array3f(o.T), bk.Array3f(d.T), bk.Float(np.full(400, np.inf, np.float32)),
        bk.Bool(act)))
    assert np.all(it[~act] == 0) and np.all(it[act] >= 1)
    assert np.all(it >= nodes) and np.all(it >= tris)
    # A ray aimed at the sphere hits after testing a handful of triangles, not all 3600.
    assert 0 < tris[act].mean() < 40 and nodes[act].mean() < 60
    assert 1.5 < bvh.sah_cost() < 100


# ---------------------------------------------------------------------------
# small scenes: the unrolled packet traversal
# ---------------------------------------------------------------------------
@pytest.fixture(autouse=False)
def unroll_any_size(monkeypatch):
    """The unrolled traversal for queries of any size (tests trace few rays)."""
    monkeypatch.setattr(BVH, "unroll_min_rays", 0)


def _stack_twin(p, f, **kw):
    """The same BVH traversed by the stack loop (unrolling disabled on it)."""
    twin = BVH.build(p, f, **kw)
    twin.unroll_max_triangles = 0
    return twin


@pytest.mark.parametrize("n, leaf_size", [(1, 4), (9, 1), (30, 4), (48, 16)])
def test_unrolled_matches_brute_force_and_stack(n, leaf_size, unroll_any_size):
    p, f = soup(n, seed=60 + n, size=0.3)
    bvh = BVH.build(p, f, leaf_size=leaf_size)
    assert bvh.unrolled(1) and n <= BVH.unroll_max_triangles
    twin = _stack_twin(p, f, leaf_size=leaf_size)
    assert not twin.unrolled(1)
    o, _ = random_rays(3000, seed=61)
    rng = np.random.default_rng(62)
    # Half the rays aimed near triangle centroids, half random.
    target = p.reshape(-1, 3, 3).mean(1)[rng.integers(0, n, 3000)] \
        + 0.2 * rng.standard_normal((3000, 3))
    d = np.where(np.arange(3000)[:, None] % 2 == 0, target - o,
                 rng.standard_normal((3000, 3))).astype(np.float32)
    hits = check_against_reference(bvh, p, f, o, d)
    assert hits > 300
    a, b = trace(bvh, o, d), trace(twin, o, d)
    assert np.array_equal(a[4], b[4]) and np.array_equal(a[1], b[1])
    assert np.array_equal(a[0], b[0])          # the same arithmetic: bit-identical t
    assert np.array_equal(shadow(bvh, o, d), shadow(twin, o, d))


def test_unrolled_degenerate_parallel_and_inactive_rays(unroll_any_size):
    # A small lattice mesh: axis-parallel rays inside box planes, plus degenerate
    # triangles, NaN rays, tmax <= 0 and inactive lanes.
    rng = np.random.default_rng(70)
    p = rng.integers(0, 5, (90, 3)).astype(np.float32)
    p[60:63] = p[60]                                     # a point triangle
    p[63:66] = [[0, 0, 0], [1, 1, 1], [2, 2, 2]]         # a collinear one
    f = np.arange(90, dtype=np.uint32).reshape(-1, 3)
    bvh = BVH.build(p, f)
    good = _tri_data(p, f)[3]
    assert bvh.unrolled(1) and not good[20] and not good[21]
    assert bvh.degenerate_count == (~good).sum()
    n = 800
    o, d = axis_parallel_rays(rng, n, 5)
    assert check_against_reference(bvh, p, f, o, d, max_marginal=0.5) > 20
    t, prim, u, v, hit = trace(bvh, o, d)
    assert good[prim[hit]].all()                         # degenerate ones never hit
    o2 = o.copy()
    o2[::7] = np.nan
    tmax = np.where(np.arange(n) % 5 == 0, 0.0, np.inf)
    active = np.arange(n) % 3 != 0
    t2, prim2, _, _, hit2 = trace(bvh, o2, d, tmax, active)
    dead = (np.arange(n) % 7 == 0) | (tmax == 0) | ~active
    assert not hit2[dead].any() and np.all(np.isinf(t2[dead]))
    assert np.array_equal(hit2[~dead], hit[~dead])
    assert not shadow(bvh, o2, d, tmax, active)[dead].any()


def test_unrolled_refit_reuses_the_kernel(unroll_any_size):
    p, f = soup(30, seed=80, size=0.3)
    bvh = BVH.build(p, f)
    assert bvh.unrolled(500)
    o, d = random_rays(500, seed=81)
    trace(bvh, o, d), shadow(bvh, o, d)
    moved = p + np.float32(0.05)
    bvh.refit(moved)
    dr.set_flag(dr.JitFlag.KernelHistory, True)
    try:
        dr.kernel_history()                              # clear
        trace(bvh, o, d), shadow(bvh, o, d)
        launched = [k for k in dr.kernel_history() if k["type"] == dr.KernelType.JIT]
    finally:
        dr.set_flag(dr.JitFlag.KernelHistory, False)
    # New box/triangle values are kernel inputs, not literals: no recompilation.
    assert launched and all(k["cache_hit"] for k in launched)
    check_against_reference(bvh, moved, f, o, d)
