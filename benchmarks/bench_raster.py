"""Benchmark of the rasterization pipeline (``lumigrad.raster``).

Prints, on the active variant (``LUMIGRAD_VARIANT=llvm|cuda``):

0. watertightness: pixels inside closed icospheres (20k, 82k, 328k triangles)
   at 512² that show the background or a back face (must be 0), with and
   without back-face culling, and the rasterization time of each;
1. rasterize + interpolate + shade (the course's forward pipeline) at 1024² for a
   ~250k-triangle mesh (a torus with 500 x 250 quads), median over runs;
2. forward + backward of an L2 image loss with respect to the vertex positions
   and the light parameters, without a discontinuity method and with each one
   (analytic antialiasing, splatting, and the course's two-layer variants);
3. the time to build a 128² Jacobian image with respect to a light direction
   component: forward mode, batched reverse mode, per-pixel reverse mode
   reusing one AD graph, and the course's per-pixel loop that renders again for
   every pixel (timed on a subset of pixels and extrapolated, as marked).

For scale: the course reports above 60 fps for its forward pipeline on the 250k-
triangle dragon at 1024² on a desktop GPU. Kernel compilation is excluded by
warm-up runs (it is reported separately once).

Run: ``python benchmarks/bench_raster.py [--res 1024] [--jres 128] [--runs 5]``
(``--quick`` skips the per-pixel reverse-mode loops).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import drjit as dr
import numpy as np

import lumigrad
from lumigrad import backend as bk
from lumigrad.raster import (PerspectiveCamera, Pipeline, TriangleMesh, TriangleRasterizer,
                             jacobian_image)


def timeit(fn, runs: int) -> tuple[float, float]:
    """(first call incl. compilation, median of ``runs`` later calls), seconds."""
    dr.sync_thread()
    t0 = time.perf_counter()
    fn()
    dr.sync_thread()
    first = time.perf_counter() - t0
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        dr.sync_thread()
        ts.append(time.perf_counter() - t0)
    return first, statistics.median(ts)


def big_pipeline(res: int, discontinuity=None) -> Pipeline:
    pipe = Pipeline(res, mesh="torus", mesh_kwargs={"n_major": 500, "n_minor": 250},
                    camera=PerspectiveCamera(position=(0.0, 1.6, 2.2), fov=50.0),
                    discontinuity=discontinuity, diffuse_constant=0.8)
    pipe.light_array.set_light_direction(0, (0.5, -1.0, -0.8))
    return pipe


def uncovered_inside_sphere(subdivisions: int, cull: bool, res: int = 512) -> tuple[int, float]:
    """(pixels inside the icosphere's outline showing background or a back face, as
    tests/test_raster_watertight.py counts them; median rasterization time in seconds)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_raster_watertight import _uncovered_inside_sphere
    mesh = TriangleMesh.example("icosphere", subdivisions=subdivisions)
    cam = PerspectiveCamera(position=(0.3, 0.2, 2.8), target=(0.0, 0.0, 0.0), fov=45)
    r = TriangleRasterizer(res, cam, mesh, cull_backfaces=cull)
    _, t = timeit(lambda: (r.forward(), dr.eval(r.barycentric_buffer.value)), 3)
    return _uncovered_inside_sphere(subdivisions, cull, res), t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--res", type=int, default=1024)
    ap.add_argument("--jres", type=int, default=128)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--subset", type=int, default=64,
                    help="pixels timed for the re-rendering per-pixel loop")
    ap.add_argument("--quick", action="store_true", help="skip the per-pixel reverse loops")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    print(f"lumigrad raster benchmark, variant {lumigrad.variant()}")

    # ---- 0. watertightness --------------------------------------------------------
    print("\nuncovered pixels inside closed icospheres at 512² (culling on / off), "
          "rasterization time:")
    for sub in (5, 6, 7):
        (n_on, t_on), (n_off, t_off) = (uncovered_inside_sphere(sub, c) for c in (True, False))
        print(f"  {20 * 4 ** sub:7d} triangles: {n_on:4d} / {n_off:4d}   "
              f"({t_on * 1e3:.1f} / {t_off * 1e3:.1f} ms)")

    # ---- 1. forward pipeline ------------------------------------------------------
    pipe = big_pipeline(a.res)
    first, med = timeit(lambda: dr.eval(pipe.forward()), a.runs)
    st = pipe.rasterizer.stats
    cov = float((pipe.rasterizer.triangle_id_buffer.numpy() >= 0).mean())
    print(f"\nmesh: {pipe.mesh.n_triangles} triangles, {pipe.mesh.n_vertices} vertices; "
          f"image {a.res}x{a.res}, coverage {cov:.0%}, candidate pairs "
          f"{st['candidate_pairs']:,} in {st['launches']} launch(es)")
    print(f"rasterize + interpolate + shade: {med * 1e3:8.1f} ms  ({1 / med:.1f} fps; "
          f"first call with compilation {first:.2f} s)")

    # ---- 2. forward + backward ------------------------------------------------------
    for method in (None, "antialias", "splat", "occlusion_antialias", "layered_splat"):
        p = big_pipeline(a.res, method) if method else pipe
        target = lumigrad.TensorXf(np.zeros((a.res, a.res, 3), np.float32))
        params = p.parameters()
        x = params["mesh.vertex_positions"]
        dr.enable_grad(x)
        params["mesh.vertex_positions"] = x
        col = params["light.0.color"]
        dr.enable_grad(col)
        params["light.0.color"] = col

        def fwd_bwd():
            img = p.forward()
            loss = dr.mean(dr.square(img.array - target.array))
            dr.backward(loss)
            dr.eval(dr.grad(x), dr.grad(col))

        first, med = timeit(fwd_bwd, a.runs)
        print(f"forward + backward (vertices, light), discontinuity={method!s:19}: "
              f"{med * 1e3:8.1f} ms  (first {first:.2f} s)")
        dr.disable_grad(x)

    # ---- 3. Jacobian images -------------------------------------------------------------
    jp = Pipeline(a.jres, mesh="icosphere", mesh_kwargs={"subdivisions": 4},
                  camera=PerspectiveCamera(position=(0.0, 0.0, 3.0), fov=45.0))
    jp.light_array.set_light_direction(0, (1.0, -1.0, -1.0))
    fn = jp.render_fn("light.0.direction", 0)
    print(f"\nJacobian image {a.jres}x{a.jres} w.r.t. light.0.direction.x "
          f"({jp.mesh.n_triangles} triangles), grey seed:")
    res = {}
    for mode in ("forward", "reverse_batched"):
        jacobian_image(fn, fn.value, mode=mode)  # warm-up (compilation)
        t0 = time.perf_counter()
        res[mode] = jacobian_image(fn, fn.value, mode=mode)
        t = time.perf_counter() - t0
        print(f"  {mode:34s} {t * 1e3:10.1f} ms")
    fv = jp.render_fn("lights.directions", 0)  # the vector form of the same scalar
    jacobian_image(fv, fv.value, mode="reverse_batched")
    t0 = time.perf_counter()
    jv = jacobian_image(fv, fv.value, mode="reverse_batched")
    t = time.perf_counter() - t0
    print(f"  {'reverse_batched (lights.directions)':34s} {t * 1e3:10.1f} ms  (max diff "
          f"{np.abs(jv - res['forward']).max():.1e})")
    if a.quick:
        return
    P = a.jres * a.jres
    sub = np.random.default_rng(0).choice(P, min(P, 256), replace=False)
    jacobian_image(fn, fn.value, mode="reverse_pixel", pixels=sub[:4])
    t0 = time.perf_counter()
    jr = jacobian_image(fn, fn.value, mode="reverse_pixel")
    t = time.perf_counter() - t0
    print(f"  {'reverse_pixel (one graph, P passes)':34s} {t * 1e3:10.1f} ms")
    sub = sub[: a.subset]
    jacobian_image(fn, fn.value, mode="reverse_pixel", rerender=True, pixels=sub[:2])
    t0 = time.perf_counter()
    jacobian_image(fn, fn.value, mode="reverse_pixel", rerender=True, pixels=sub)
    t = (time.perf_counter() - t0) / len(sub) * P
    print(f"  {'reverse_pixel, re-rendering (course)':34s} {t * 1e3:10.1f} ms  "
          f"(extrapolated from {len(sub)} pixels)")
    rng = float(np.abs(res["forward"]).max())
    print(f"  max |forward - reverse_pixel| / range = "
          f"{np.abs(res['forward'] - jr).max() / rng:.2e}; "
          f"max |forward - reverse_batched| / range = "
          f"{np.abs(res['forward'] - res['reverse_batched']).max() / rng:.2e}")


if __name__ == "__main__":
    _ = bk
    main()
