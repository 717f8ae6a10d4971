"""BVH benchmark: build time and ray throughput (run by hand, prints a table).

    python benchmarks/bench_bvh.py [--build-tris 1000000] [--trace-tris 100000] [--rays 1000000]

* build: a noise-displaced sphere of ~1M triangles (median of 3 builds);
* trace: ~100k-triangle scene (a displaced sphere over a displaced ground grid),
  1M camera rays from a pinhole camera (1000 x 1000), closest hit and any hit.
  The first call compiles the kernel (reported separately as "first call");
  timings are medians of 5 warm runs with ``dr.sync_thread()`` around them.
"""
from __future__ import annotations

import argparse
import math
import time

import drjit as dr
import numpy as np

from lumigrad import backend as bk
from lumigrad.geometry.bvh import BVH


def sphere_mesh(n_tris: int, noise: float = 0.02, seed: int = 0,
                center=(0.0, 0.0, 0.0), radius: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A UV sphere with about ``n_tris`` triangles, radially displaced by noise."""
    nv = max(2, int(round(math.sqrt(n_tris / 4))))
    nu = 2 * nv
    th = np.linspace(0, np.pi, nv + 1)
    ph = np.linspace(0, 2 * np.pi, nu + 1)[:-1]
    T, P = np.meshgrid(th, ph, indexing="ij")
    r = radius * (1 + noise * np.random.default_rng(seed).standard_normal(T.shape))
    pos = np.stack([r * np.sin(T) * np.cos(P), r * np.sin(T) * np.sin(P), r * np.cos(T)],
                   -1).reshape(-1, 3) + np.asarray(center)
    i = np.arange(nv)[:, None]
    j = np.arange(nu)[None, :]
    a = i * nu + j
    b = i * nu + (j + 1) % nu
    c = (i + 1) * nu + j
    d = (i + 1) * nu + (j + 1) % nu
    f = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3),
                        np.stack([a, d, c], -1).reshape(-1, 3)])
    return pos.astype(np.float32), f.astype(np.uint32)


def grid_mesh(n: int, size: float = 4.0, amp: float = 0.05, z: float = -1.0,
              seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """An n x n quad grid (2 n^2 triangles) in the xy plane with height noise."""
    x = np.linspace(-size / 2, size / 2, n + 1)
    X, Y = np.meshgrid(x, x, indexing="ij")
    rng = np.random.default_rng(seed)
    Z = z + amp * (np.sin(3 * X) * np.cos(2 * Y) + 0.3 * rng.standard_normal(X.shape))
    pos = np.stack([X, Y, Z], -1).reshape(-1, 3)
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    a = i * (n + 1) + j
    b = a + 1
    c = a + n + 1
    d = c + 1
    f = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3),
                        np.stack([a, d, c], -1).reshape(-1, 3)])
    return pos.astype(np.float32), f.astype(np.uint32)


def trace_scene(n_tris: int) -> tuple[np.ndarray, np.ndarray]:
    """~n_tris triangles: a displaced sphere (60%) on a displaced ground grid (40%)."""
    ps, fs = sphere_mesh(int(0.6 * n_tris))
    pg, fg = grid_mesh(max(1, int(math.sqrt(0.2 * n_tris))))
    return np.concatenate([ps, pg]), np.concatenate([fs, fg + len(ps)]).astype(np.uint32)


def camera_rays(res: int, origin=(0.0, -3.5, 0.6), target=(0.0, 0.0, -0.2),
                fov_deg: float = 55.0, up=(0.0, 0.0, 1.0)):
    """Pinhole-camera rays (origins, unit directions) as Dr.Jit arrays, res x res."""
    o = np.asarray(origin, np.float64)
    fwd = np.asarray(target, np.float64) - o
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, np.asarray(up, np.float64))
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    s = math.tan(math.radians(fov_deg) / 2)
    idx = dr.arange(bk.UInt32, res * res)
    x = (bk.Float(idx % res) + 0.5) / res * 2 - 1
    y = 1 - (bk.Float(idx // res) + 0.5) / res * 2
    d = bk.Array3f(*[float(fwd[k]) + s * (x * float(right[k]) + y * float(up[k]))
                     for k in range(3)])
    d = dr.normalize(d)
    org = bk.Array3f(*[dr.full(bk.Float, float(o[k]), res * res) for k in range(3)])
    dr.eval(d, org)
    return org, d


def _median_time(fn, reps: int) -> float:
    ts = []
    for _ in range(reps):
        dr.sync_thread()
        t0 = time.perf_counter()
        fn()
        dr.sync_thread()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-tris", type=int, default=1_000_000)
    ap.add_argument("--trace-tris", type=int, default=100_000)
    ap.add_argument("--rays", type=int, default=1_000_000)
    ap.add_argument("--leaf-size", type=int, default=4)
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []
    print(f"variant: {bk.variant()}")

    p, f = sphere_mesh(args.build_tris)
    BVH.build(p[:300], f[:100] % 300, leaf_size=args.leaf_size)  # import/warm-up
    builds = []
    for _ in range(5):
        t0 = time.perf_counter()
        bvh = BVH.build(p, f, leaf_size=args.leaf_size)
        dr.sync_thread()             # the triangle records are packed asynchronously
        builds.append(time.perf_counter() - t0)
        del bvh                      # (the next build may reuse its memory)
    rows.append((f"build, {len(f):,} triangles (median of 5)",
                 f"{np.median(builds) * 1e3:.0f} ms"))
    rows.append(("  first build in this process (fresh memory)", f"{builds[0] * 1e3:.0f} ms"))
    bvh = BVH.build(p, f, leaf_size=args.leaf_size)
    rows.append(("  interior nodes / leaves / depth",
                 f"{bvh.node_count():,} / {bvh.leaf_count():,} / {bvh.depth}"))
    refits = []
    for k in range(3):
        t0 = time.perf_counter()
        bvh.refit(p * (1.0 + 0.01 * k))
        dr.sync_thread()
        refits.append(time.perf_counter() - t0)
    rows.append(("refit, same mesh (median of 3)", f"{np.median(refits) * 1e3:.0f} ms"))
    del bvh

    p, f = trace_scene(args.trace_tris)
    bvh = BVH.build(p, f, leaf_size=args.leaf_size)
    rows.append((f"trace scene: {len(f):,} triangles, SAH cost", f"{bvh.sah_cost():.1f}"))
    res = int(round(math.sqrt(args.rays)))
    o, d = camera_rays(res)
    n = res * res
    tmax = dr.opaque(bk.Float, dr.inf, n)     # opaque: not baked into the kernel
    active = dr.opaque(bk.Bool, True, n)

    def closest():
        out = bvh.ray_intersect(o, d, tmax, active)
        dr.eval(out)
        return out

    def shadow():
        out = bvh.ray_test(o, d, tmax, active)
        dr.eval(out)
        return out

    for name, fn in (("closest hit", closest), ("any hit", shadow)):
        dr.set_flag(dr.JitFlag.KernelHistory, True)
        dr.kernel_history()  # clear
        t_first = _median_time(fn, 1)
        hist = dr.kernel_history()
        compile_ms = sum((k.get("codegen_time") or 0) + (k.get("backend_time") or 0)
                         for k in hist)
        dr.set_flag(dr.JitFlag.KernelHistory, False)
        t = _median_time(fn, 5)
        rows.append((f"{name}: {n:,} camera rays", f"{t * 1e3:.1f} ms = {n / t / 1e6:.1f} Mrays/s"))
        rows.append((f"  first call (incl. compile: {compile_ms:.0f} ms, 0 = cached)",
                     f"{t_first * 1e3:.0f} ms"))
    hit = closest()[4]
    rows.append(("  fraction of rays that hit", f"{int(dr.count(hit)[0]) / n:.3f}"))
    it, nodes, tris = (np.array(x, dtype=np.float64)
                       for x in bvh.traversal_stats(o, d, tmax, active))
    rows.append(("  per ray (closest): iterations / nodes / triangles",
                 f"{it.mean():.1f} / {nodes.mean():.1f} / {tris.mean():.1f}"))

    w = max(len(r[0]) for r in rows)
    print("-" * (w + 24))
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    print("-" * (w + 24))


if __name__ == "__main__":
    main()
