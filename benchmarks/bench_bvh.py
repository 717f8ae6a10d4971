"""BVH benchmark: build time and ray throughput (run by hand, prints a table).

    python benchmarks/bench_bvh.py [--build-tris 1000000] [--trace-tris 100000] [--rays 1000000]
    python benchmarks/bench_bvh.py --incoherent [--mitsuba] [--json] [--bvh-module FILE]
    python benchmarks/bench_bvh.py --incoherent --compare OLD_BVH.py [--rounds 5]

* build: a noise-displaced sphere of ~1M triangles (median of 3 builds);
* trace: ~100k-triangle scene (a displaced sphere over a displaced ground grid),
  1M camera rays from a pinhole camera (1000 x 1000), closest hit and any hit.
  The first call compiles the kernel (reported separately as "first call");
  timings are medians of 5 warm runs with ``dr.sync_thread()`` around them.
* ``--incoherent``: the 131k-triangle mesh of ``bench_boundary.py``
  (``displaced_sphere(131_000)``), 1M reproducible *incoherent* rays (uniform
  points on the surface by area, cosine-weighted directions about the outward
  or, for half of them, the inward normal: inward rays cross the sphere) and
  1000 x 1000 camera rays; closest hit and any hit. Reports the **CPU time of
  the process** (``time.process_time`` around ``dr.eval``/``dr.sync_thread``,
  all threads; the minimum of ``--reps``), which is what a loaded shared
  machine still measures reliably, as M rays per CPU-second, plus the
  deterministic counters of ``BVH.traversal_stats`` (mean per ray and mean of
  the per-16-lane maximum: SIMD lanes run in lock step, a packet pays for its
  slowest lane) and a checksum of the results (A/B variants must agree).
  ``--mitsuba``: the same queries through Embree (``build_accelerator(...,
  'mitsuba')``); ``--bvh-module FILE``: use another ``bvh.py`` (e.g. an old
  revision, ``git show REV:src/lumigrad/geometry/bvh.py > old.py``);
  ``--compare FILE``: run this file and the current BVH alternately in separate
  processes (``--rounds`` each) and print the minimum CPU time per variant.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
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


# ----------------------------------------------------------------------------
# incoherent rays on the 131k-triangle mesh (CPU time, A/B in separate processes)
# ----------------------------------------------------------------------------
def load_bvh_class(path: str | None):
    """``BVH`` of the package, or of another ``bvh.py`` loaded as a sibling module
    (its relative imports resolve inside ``lumigrad.geometry``)."""
    if not path:
        return BVH
    spec = importlib.util.spec_from_file_location("lumigrad.geometry._bvh_bench",
                                                  os.path.abspath(path))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod.BVH


def surface_rays(pos: np.ndarray, faces: np.ndarray, n: int, seed: int = 0):
    """``n`` incoherent rays (numpy float32): origins uniform on the surface (by
    area), offset by 1e-4 along the chosen normal, directions cosine-distributed
    about the outward normal, or the inward one for every second ray."""
    rng = np.random.default_rng(seed)
    p = pos.astype(np.float64)
    p0, p1, p2 = p[faces[:, 0]], p[faces[:, 1]], p[faces[:, 2]]
    cr = np.cross(p1 - p0, p2 - p0)
    area = np.linalg.norm(cr, axis=1)
    k = rng.choice(len(faces), size=n, p=area / area.sum())
    s, t = np.sqrt(rng.random(n)), rng.random(n)
    b1, b2 = s * (1 - t), s * t
    org = p0[k] + b1[:, None] * (p1[k] - p0[k]) + b2[:, None] * (p2[k] - p0[k])
    nrm = cr[k] / area[k, None]
    nrm *= np.where(np.arange(n) % 2 == 0, 1.0, -1.0)[:, None]
    # Cosine-weighted local direction, then an orthonormal frame about nrm.
    r, phi = np.sqrt(rng.random(n)), 2 * np.pi * rng.random(n)
    lx, ly = r * np.cos(phi), r * np.sin(phi)
    lz = np.sqrt(np.maximum(0.0, 1 - r * r))
    a = np.where(np.abs(nrm[:, :1]) > 0.9, [[0.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]])
    tx = np.cross(a, nrm)
    tx /= np.linalg.norm(tx, axis=1, keepdims=True)
    ty = np.cross(nrm, tx)
    d = lx[:, None] * tx + ly[:, None] * ty + lz[:, None] * nrm
    return (org + 1e-4 * nrm).astype(np.float32), d.astype(np.float32)


def _dr3(a: np.ndarray):
    return bk.Array3f(*[bk.from_numpy(bk.Float, np.ascontiguousarray(a[:, k])) for k in range(3)])


def _cpu_time(fn, reps: int) -> float:
    """Minimum CPU time of the process (all threads) over ``reps`` warm calls."""
    fn()                               # compile / warm up
    ts = []
    for _ in range(reps):
        dr.sync_thread()
        t0 = time.process_time()
        fn()
        dr.sync_thread()
        ts.append(time.process_time() - t0)
    return min(ts)


def incoherent(args) -> dict:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_boundary import displaced_sphere
    pos, faces = displaced_sphere(131_000)
    cls = load_bvh_class(args.bvh_module)
    res: dict = {"variant": args.bvh_module or "current", "triangles": int(len(faces))}
    if args.mitsuba:
        from lumigrad.geometry.accel import build_accelerator
        accel = build_accelerator(pos, faces, "mitsuba")
    else:
        accel = cls.build(pos, faces, leaf_size=args.leaf_size)
        res["sah"] = accel.sah_cost()
    n = args.rays
    so, sd = surface_rays(pos, faces, n)
    ro, rd = _dr3(so), _dr3(sd)
    cres = int(round(math.sqrt(n)))
    co, cd = camera_rays(cres, origin=(0.0, 0.6, 3.2), target=(0.0, 0.0, 0.0), fov_deg=40.0,
                         up=(0.0, 1.0, 0.0))
    sets = {"incoherent": (ro, rd), "camera": (co, cd)}
    for name, (o, d) in sets.items():
        m = dr.width(o.x)
        tmax = dr.opaque(bk.Float, dr.inf, m)
        active = dr.opaque(bk.Bool, True, m)
        for q in ("closest", "any"):
            def run(o=o, d=d, tmax=tmax, active=active, q=q):
                out = accel.ray_intersect(o, d, tmax, active) if q == "closest"                     else accel.ray_test(o, d, tmax, active)
                dr.eval(out)
                return out
            t = _cpu_time(run, args.reps)
            out = run()
            key = f"{name}_{q}"
            res[key + "_cpu_ms"] = t * 1e3
            res[key + "_mrays_cpu_s"] = m / t / 1e6
            if q == "closest":
                prim = np.array(out[1], dtype=np.uint64)
                tt = np.array(out[0], dtype=np.float32)
                res[key + "_hits"] = int((prim != 0xFFFFFFFF).sum())
                res[key + "_check"] = int((prim * np.arange(1, m + 1, dtype=np.uint64)).sum()
                                          % (1 << 61)) ^ int(tt.view(np.uint32)[prim != 0xFFFFFFFF]
                                                             .astype(np.uint64).sum())
            else:
                res[key + "_hits"] = int(np.array(out, dtype=bool).sum())
            if not args.mitsuba and hasattr(accel, "traversal_stats"):
                st = [np.array(x, dtype=np.float64)
                      for x in accel.traversal_stats(o, d, tmax, active, any_hit=q == "any")]
                pad = (-m) % 16
                res[key + "_stats"] = [round(float(x.mean()), 2) for x in st] + \
                    [round(float(np.pad(x, (0, pad)).reshape(-1, 16).max(1).mean()), 2)
                     for x in st]
    return res


def compare(args) -> None:
    """Alternate ``--compare FILE`` and the current BVH in separate processes."""
    base = [sys.executable, os.path.abspath(__file__), "--incoherent", "--json",
            "--rays", str(args.rays), "--reps", str(args.reps), "--leaf-size", str(args.leaf_size)]
    runs: dict[str, list] = {"old": [], "new": []}
    for r in range(args.rounds):
        for tag in (("old", "new") if r % 2 == 0 else ("new", "old")):
            cmd = base + (["--bvh-module", args.compare] if tag == "old" else [])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            runs[tag].append(json.loads(out.strip().splitlines()[-1]))
            print(tag, {k: round(v, 1) for k, v in runs[tag][-1].items()
                        if k.endswith("_cpu_ms")}, flush=True)
    keys = [k for k in runs["new"][0] if k.endswith("_cpu_ms")]
    print(f"{'CPU ms (min over ' + str(args.rounds) + ' processes)':<36} {'old':>8} {'new':>8}"
          f" {'old/new':>8}")
    for k in keys:
        a = min(x[k] for x in runs["old"])
        b = min(x[k] for x in runs["new"])
        print(f"{k:<36} {a:8.1f} {b:8.1f} {a / b:8.3f}")
    for k in runs["new"][0]:
        if k.endswith(("_check", "_hits", "_stats")) or k == "sah":
            print(f"{k:<36} old {runs['old'][0][k]}  new {runs['new'][0][k]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-tris", type=int, default=1_000_000)
    ap.add_argument("--trace-tris", type=int, default=100_000)
    ap.add_argument("--rays", type=int, default=1_000_000)
    ap.add_argument("--leaf-size", type=int, default=4)
    ap.add_argument("--incoherent", action="store_true",
                    help="incoherent + camera rays on the 131k-triangle mesh (CPU time)")
    ap.add_argument("--mitsuba", action="store_true", help="--incoherent through Embree")
    ap.add_argument("--bvh-module", default=None, help="another bvh.py to load")
    ap.add_argument("--compare", default=None, help="A/B: this bvh.py against the current")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.compare:
        compare(args)
        return
    if args.incoherent:
        res = incoherent(args)
        if args.json:
            print(json.dumps(res))
        else:
            for k, v in res.items():
                print(f"{k:<36} {v}")
        return
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
