"""Render / forward-derivative / reverse-gradient timings and throughput.

    python benchmarks/bench_render.py                  # Cornell box, 256² × 64 spp and 512² × 128
    python benchmarks/bench_render.py --quick          # 128² × 16 only
    python benchmarks/bench_render.py --memory         # peak memory against max_depth (subprocesses)

Each figure is the median of ``--repeats`` runs after a warm-up run (so kernel
compilation is excluded; it is reported separately). ``dr.sync_thread()``
brackets every timing because launches are asynchronous. When Mitsuba 3 is
installed (optional, ``pip install mitsuba``) the same scene is timed with it
in the same process, so the ratio is measured side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import drjit as dr
import numpy as np

import lumigrad as lg

HERE = Path(__file__).resolve().parent
CBOX = HERE.parent / "tests" / "data" / "scenes" / "cbox.xml"   # (a copy of ../shared's)


def _scene(res: int, max_depth: int = 8):
    if CBOX.exists():
        return lg.load_file(CBOX, res=res, max_depth=max_depth)
    return lg.cornell_box(res=res, max_depth=max_depth)


def timed(fn, repeats: int) -> tuple[float, float]:
    """(first-call seconds incl. compilation, median of the following runs)."""
    dr.sync_thread()
    t0 = time.perf_counter()
    fn(0)
    dr.sync_thread()
    first = time.perf_counter() - t0
    times = []
    for i in range(repeats):
        dr.sync_thread()
        t0 = time.perf_counter()
        fn(i + 1)
        dr.sync_thread()
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def bench_lumigrad(res: int, spp: int, repeats: int) -> dict:
    scene = _scene(res)
    params = lg.traverse(scene)
    key = "green.reflectance.value"

    def render(i: int) -> None:
        dr.eval(lg.render(scene, spp=spp, seed=i))

    def forward(i: int) -> None:
        # The tutorial's workflow (image + derivative image), as Mitsuba is timed.
        value = params[key]
        dr.enable_grad(value)
        params.update()
        image = lg.render(scene, params, spp=spp, seed=i)
        dr.forward(value)
        dr.eval(dr.grad(image))
        dr.disable_grad(value)
        params.update()

    def derivative_only(i: int) -> None:
        # derivative_image: the tangent pass alone, no primal image.
        dr.eval(lg.derivative_image(scene, key, spp=spp, seed=i))

    ref = np.array(lg.render(scene, spp=spp, seed=12345))
    target = lg.TensorXf(ref * 0.9)

    def backward(i: int) -> None:
        value = params[key]
        dr.enable_grad(value)
        params.update()
        image = lg.render(scene, params, spp=spp, seed=i)
        loss = lg.l2(image, target)
        dr.backward(loss)
        dr.eval(dr.grad(value))
        dr.disable_grad(value)
        params.update()

    out = {}
    for name, fn in (("render", render), ("forward", forward), ("reverse", backward),
                     ("derivative_image", derivative_only)):
        first, med = timed(fn, repeats)
        out[name] = med
        out[name + "_first"] = first
    out["samples_per_s"] = res * res * spp / out["render"]
    return out


_MITSUBA_SCRIPT = r"""
import json, os, statistics, sys, time
import drjit as dr, mitsuba as mi
res, spp, repeats, variant, cbox = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
big = sys.argv[6] if len(sys.argv) > 6 else None
mi.set_variant(variant)
scene = mi.load_file(cbox, res=res, max_depth=8)
params = mi.traverse(scene)
key = 'green.reflectance.value'
target = mi.TensorXf(mi.render(scene, spp=spp, seed=12345) * 0.9)
integrator = mi.load_dict({'type': 'prb', 'max_depth': 8})
def render(i): dr.eval(mi.render(scene, spp=spp, seed=i))
def forward(i):
    dr.enable_grad(params[key]); params.update()
    img = mi.render(scene, params, spp=spp, seed=i, integrator=integrator)
    dr.forward(params[key]); dr.eval(dr.grad(img))
    dr.disable_grad(params[key]); params.update()
def reverse(i):
    dr.enable_grad(params[key]); params.update()
    img = mi.render(scene, params, spp=spp, seed=i, integrator=integrator)
    dr.backward(dr.mean(dr.square(img - target), axis=None)); dr.eval(dr.grad(params[key]))
    dr.disable_grad(params[key]); params.update()
out = {}
fns = [('render', render), ('forward', forward), ('reverse', reverse)]
if big:
    big_scene = mi.load_file(big, res=res, max_depth=8)
    fns.append(('render_big', lambda i: dr.eval(mi.render(big_scene, spp=spp, seed=i))))
for name, fn in fns:
    fn(0); dr.sync_thread(); ts = []
    for i in range(repeats):
        dr.sync_thread(); t0 = time.perf_counter(); fn(i + 1); dr.sync_thread()
        ts.append(time.perf_counter() - t0)
    out[name] = statistics.median(ts)
print(json.dumps(out))
"""


def bench_mitsuba(res: int, spp: int, repeats: int, python: str | None,
                  big: Path | None = None) -> dict | None:
    """Time Mitsuba 3 on the same scenes (the Cornell box; with ``big``, that
    scene file too), in a subprocess of ``python`` (an interpreter where
    ``mitsuba`` is installed; default: this one)."""
    if not CBOX.exists():
        return None
    exe = python or sys.executable
    variant = "cuda_ad_rgb" if lg.variant() == "cuda" else "llvm_ad_rgb"
    env = dict(os.environ)
    try:
        out = subprocess.run([exe, "-c", _MITSUBA_SCRIPT, str(res), str(spp), str(repeats),
                              variant, str(CBOX)] + ([str(big)] if big else []),
                             capture_output=True, text=True, env=env,
                             timeout=1800)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        if "No module named 'mitsuba'" not in out.stderr:
            print("  (mitsuba run failed: " + out.stderr.strip().splitlines()[-1] + ")")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def large_mesh_scene(directory: str, triangles: int = 100_000) -> Path:
    """Writes ``cbox_torus.xml``: the Cornell box of ``CBOX`` plus a ~100k-triangle
    torus (PLY) in it, where the BVH dominates; both renderers load this file."""
    from lumigrad.geometry import meshio, primitives
    n_minor = 64
    n_major = max(8, triangles // (2 * n_minor))
    v, f = primitives.torus(R=0.45, r=0.18, n_major=n_major, n_minor=n_minor)[:2]
    ply = Path(directory) / "torus.ply"
    meshio.write_ply(str(ply), v, f)
    shape = (f'<shape type="ply" id="torus"><string name="filename" value="{ply}"/>'
             '<transform name="to_world"><rotate x="1" angle="60"/>'
             '<translate x="0" y="0.2" z="0"/></transform><ref id="white"/></shape>')
    xml = Path(directory) / "cbox_torus.xml"
    xml.write_text(CBOX.read_text().replace("</scene>", shape + "\n</scene>"))
    return xml


def bench_large_mesh(xml: Path, res: int, spp: int, repeats: int) -> dict:
    """Render time of the Cornell box with the torus (see large_mesh_scene)."""
    scene = lg.load_file(xml, res=res, max_depth=8)
    tris = scene._n_faces

    def render(i: int) -> None:
        dr.eval(lg.render(scene, spp=spp, seed=i))

    first, med = timed(render, repeats)
    return {"triangles": tris, "render": med, "samples_per_s": res * res * spp / med}


def gradient_peak_memory(scene, key: str, spp: int) -> dict:
    """One reverse-mode gradient of ``key`` (L1 of the image): peak RSS and its growth."""
    import resource
    params = lg.traverse(scene)
    dr.enable_grad(params[key])
    params.update()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    image = lg.render(scene, params, spp=spp)
    dr.backward(dr.mean(image, axis=None))
    grad = dr.grad(params[key])
    dr.eval(grad)
    dr.sync_thread()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_mib": peak / 1024, "delta_mib": (peak - base) / 1024,
            "finite": bool(np.isfinite(np.array(grad)).all())}


def memory_child(max_depth: int, res: int, spp: int) -> None:
    """Runs in a subprocess: one reverse-mode gradient, then reports the peak RSS."""
    out = gradient_peak_memory(_scene(res, max_depth=max_depth), "green.reflectance.value", spp)
    print(json.dumps({"max_depth": max_depth, **out}))


def bench_memory(res: int, spp: int, script: str = __file__) -> list[dict]:
    """``script --memory-child DEPTH`` in a fresh process per depth (peak RSS is per process)."""
    rows = []
    for depth in (4, 16, 64):
        out = subprocess.run([sys.executable, script, "--memory-child", str(depth),
                              "--res", str(res), "--spp", str(spp)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--configs", default=None,
                   help="comma-separated RESxSPP list, e.g. 256x64,512x128 (default both)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--memory", action="store_true")
    p.add_argument("--memory-child", type=int, default=None)
    p.add_argument("--res", type=int, default=128)
    p.add_argument("--spp", type=int, default=16)
    p.add_argument("--mitsuba-python", default=None,
                   help="Python interpreter with Mitsuba 3 installed, for side-by-side figures")
    args = p.parse_args(argv)
    if args.memory_child is not None:
        memory_child(args.memory_child, args.res, args.spp)
        return
    print(f"lumigrad {lg.__version__} on {lg.variant()} ({os.cpu_count()} CPUs)")
    if args.memory:
        print(f"peak memory of one reverse-mode gradient, {args.res}² × {args.spp} spp:")
        rows = bench_memory(args.res, args.spp)
        for r in rows:
            print(f"  max_depth {r['max_depth']:>3}: peak RSS {r['peak_mib']:8.1f} MiB "
                  f"(+{r['delta_mib']:.1f} MiB during the gradient)")
        print(f"  ratio max_depth 64 / 4 (peak RSS): {rows[-1]['peak_mib'] / rows[0]['peak_mib']:.3f}")
        return
    configs = [(128, 16)] if args.quick else [(256, 64), (512, 128)]
    if args.configs:
        configs = [tuple(int(x) for x in c.split("x")) for c in args.configs.split(",")]
    print(f"{'size':>8} {'spp':>4} | {'render':>8} {'forward':>8} {'reverse':>8} | "
          f"{'fwd/r':>6} {'rev/r':>6} | {'Msamples/s':>10} | first render (compile)")
    tmp = tempfile.TemporaryDirectory()
    big_xml = large_mesh_scene(tmp.name) if CBOX.exists() else None
    for res, spp in configs:
        r = bench_lumigrad(res, spp, args.repeats)
        print(f"{res:>6}² {spp:>4} | {r['render']:8.3f} {r['forward']:8.3f} {r['reverse']:8.3f} | "
              f"{r['forward'] / r['render']:6.2f} {r['reverse'] / r['render']:6.2f} | "
              f"{r['samples_per_s'] / 1e6:10.2f} | {r['render_first']:.2f} s")
        print(f"{'':>13} derivative_image alone (no primal image): {r['derivative_image']:.3f} s")
        first = res == configs[0][0] and big_xml is not None
        if first:
            big = bench_large_mesh(big_xml, res, spp, args.repeats)
            print(f"{'':>13} Cornell box + torus ({big['triangles']} triangles): render "
                  f"{big['render']:.3f} s, {big['samples_per_s'] / 1e6:.2f} M samples/s")
        m = bench_mitsuba(res, spp, args.repeats, args.mitsuba_python, big_xml if first else None)
        if m:
            print(f"{'mitsuba':>7} {spp:>4} | {m['render']:8.3f} {m['forward']:8.3f} "
                  f"{m['reverse']:8.3f} | {m['forward'] / m['render']:6.2f} "
                  f"{m['reverse'] / m['render']:6.2f} | {res * res * spp / m['render'] / 1e6:10.2f} |")
            print(f"{'':>13} ratio lumigrad / Mitsuba: render {r['render'] / m['render']:.2f}, "
                  f"forward {r['forward'] / m['forward']:.2f}, reverse {r['reverse'] / m['reverse']:.2f}")
            if "render_big" in m:
                print(f"{'':>13} Mitsuba, Cornell box + torus: render {m['render_big']:.3f} s; "
                      f"ratio lumigrad / Mitsuba {big['render'] / m['render_big']:.2f}")


if __name__ == "__main__":
    main()
