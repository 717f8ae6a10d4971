"""Geometry derivatives with boundary terms: time to equal error, side by side with Mitsuba 3.

    python benchmarks/bench_boundary.py                 # both cases, 128 px
    python benchmarks/bench_boundary.py --case rotation --res 128
    python benchmarks/bench_boundary.py --memory        # reverse-mode memory against max_depth

Cases (the issue's speed criteria):

* ``rotation``: the derivative image of a rotation about the vertical axis of a
  131k-triangle mesh (a noise-displaced sphere, flat shaded) on a floor, lit by
  an area light, with direct illumination. Mitsuba: ``direct_projective``.
* ``cbox``: the derivative image of a translation (x) of the small box of the
  Cornell box, path traced (``max_depth`` 8). Mitsuba: ``prb_projective``.

Both renderers load the same Mitsuba XML file. The reference is central finite
differences rendered by lumigrad with common random numbers and many samples
(cached in ``--cache``); the error measure is the block relative L1 of 8×8
block means (``lg.block_relative_l1``). Each renderer computes the derivative
image at several sample counts; a figure reports its time (median of
``--repeats`` after a warm-up: compilation excluded) and error. Also the plain
render time of lumigrad at the same sample count (the issue: the derivative
image at most 3× the render). Mitsuba runs in a subprocess (``--mitsuba-python``,
default: this interpreter) with the same Dr.Jit and LLVM.
"""
from __future__ import annotations

import argparse
import json
import math
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
from lumigrad.geometry.meshio import write_ply

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_render import CBOX, gradient_peak_memory  # noqa: E402
from bench_render import bench_memory as bench_memory_in  # noqa: E402


def displaced_sphere(n_tris: int, noise: float = 0.03, seed: int = 0) -> tuple:
    """A UV sphere of about ``n_tris`` triangles with smooth radial noise."""
    nv = max(2, int(round(math.sqrt(n_tris / 4))))
    nu = 2 * nv
    th = np.linspace(0, np.pi, nv + 1)
    ph = np.linspace(0, 2 * np.pi, nu + 1)[:-1]
    T, P = np.meshgrid(th, ph, indexing="ij")
    rng = np.random.default_rng(seed)
    bumps = sum(rng.uniform(0.5, 1.0) * np.sin(k * T + rng.uniform(0, 6)) *
                np.cos(k * P + rng.uniform(0, 6)) for k in (3, 5, 9))
    r = 1.0 + noise * bumps
    pos = np.stack([r * np.sin(T) * np.cos(P), r * np.cos(T), r * np.sin(T) * np.sin(P)],
                   -1).reshape(-1, 3)
    i = np.arange(nv)[:, None]
    j = np.arange(nu)[None, :]
    a, b = i * nu + j, i * nu + (j + 1) % nu
    c, d = (i + 1) * nu + j, (i + 1) * nu + (j + 1) % nu
    f = np.concatenate([np.stack([a, d, b], -1).reshape(-1, 3),
                        np.stack([a, c, d], -1).reshape(-1, 3)])
    keep = ~((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2]))
    f = f[keep]
    # Wind the faces outwards (a diffuse surface seen from its back is black).
    p0, p1, p2 = pos[f[:, 0]], pos[f[:, 1]], pos[f[:, 2]]
    if np.sum(np.cross(p1 - p0, p2 - p0) * (p0 + p1 + p2)) < 0:
        f = f[:, [0, 2, 1]]
    return pos.astype(np.float32), f.astype(np.uint32)


def rotation_scene(directory: Path, res: int, spp: int) -> Path:
    pos, faces = displaced_sphere(131_000)
    write_ply(directory / "blob.ply", pos, faces)
    xml = f"""<scene version="3.0.0">
  <integrator type="direct"/>
  <sensor type="perspective">
    <float name="fov" value="40"/>
    <transform name="to_world"><lookat origin="0, 1.2, 4.2" target="0, -0.1, 0" up="0, 1, 0"/></transform>
    <sampler type="independent"><integer name="sample_count" value="{spp}"/></sampler>
    <film type="hdrfilm"><integer name="width" value="{res}"/><integer name="height" value="{res}"/>
      <rfilter type="box"/></film>
  </sensor>
  <bsdf type="diffuse" id="grey"><rgb name="reflectance" value="0.6, 0.6, 0.6"/></bsdf>
  <bsdf type="diffuse" id="orange"><rgb name="reflectance" value="0.8, 0.45, 0.15"/></bsdf>
  <shape type="ply" id="blob">
    <string name="filename" value="blob.ply"/>
    <transform name="to_world"><scale value="0.8"/></transform>
    <ref id="orange"/>
  </shape>
  <shape type="rectangle" id="floor">
    <transform name="to_world"><scale value="4"/><rotate x="1" angle="-90"/><translate y="-0.85"/></transform>
    <ref id="grey"/>
  </shape>
  <shape type="rectangle" id="light">
    <transform name="to_world"><scale value="0.6"/><lookat origin="1.8, 2.5, 1.5" target="0, 0, 0" up="0, 1, 0"/></transform>
    <emitter type="area"><rgb name="radiance" value="12, 12, 12"/></emitter>
  </shape>
</scene>
"""
    path = directory / "rotation.xml"
    path.write_text(xml)
    return path


CASES = {
    "rotation": dict(key="blob.vertex_positions", motion="rotate_y", mitsuba="direct_projective",
                     spps=(4, 16, 64, 256), fd_spp=8192, eps=2e-3),
    "cbox": dict(key="small-box.vertex_positions", motion="translate_x",
                 mitsuba="prb_projective", spps=(16, 64, 256, 1024), fd_spp=16384, eps=5e-3),
}


def direction(positions: np.ndarray, motion: str) -> np.ndarray:
    p = positions.reshape(-1, 3).astype(np.float64)
    if motion == "translate_x":
        d = np.zeros_like(p)
        d[:, 0] = 1.0
    else:  # rotate_y about the mesh's centroid: d = ω × (p - c)
        c = p.mean(axis=0)
        q = p - c
        d = np.stack([q[:, 2], np.zeros(len(q)), -q[:, 0]], -1)
    return d.ravel()


def lumigrad_case(name: str, xml: Path, res: int, repeats: int, cache: Path) -> dict:
    cfg = CASES[name]
    scene = lg.load_file(str(xml)) if name != "cbox" else \
        lg.load_file(str(xml), res=res, max_depth=8)
    params = lg.traverse(scene)
    key = cfg["key"]
    v0 = np.array(params[key], dtype=np.float64)
    d = direction(v0, cfg["motion"])

    def assign(x: float) -> None:
        params[key] = lg.Float((v0 + x * d).astype(np.float32))
        params.update()

    ref_path = cache / f"{name}_{res}_fd.npy"
    if ref_path.exists():
        fd = np.load(ref_path)
    else:
        t0 = time.perf_counter()
        fd = np.mean([lg.central_difference_image(scene, assign, cfg["eps"],
                                                  spp=cfg["fd_spp"], seed=s) for s in range(4)],
                     axis=0)
        np.save(ref_path, fd)
        print(f"  [{name}] finite-difference reference in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
    rows = []
    for spp in cfg["spps"]:
        lg.derivative_image(scene, key, direction=d, spp=spp, seed=0)      # warm-up
        times, errs = [], []
        for r in range(repeats):
            dr.sync_thread()
            t0 = time.perf_counter()
            g = np.array(lg.derivative_image(scene, key, direction=d, spp=spp, seed=r + 1))
            times.append(time.perf_counter() - t0)
            errs.append(lg.block_relative_l1(g, fd))
        dr.eval(lg.render(scene, spp=spp, seed=0))
        rt = []
        for r in range(repeats):
            dr.sync_thread()
            t0 = time.perf_counter()
            dr.eval(lg.render(scene, spp=spp, seed=r + 1))
            dr.sync_thread()
            rt.append(time.perf_counter() - t0)
        rows.append(dict(spp=spp, time=statistics.median(times), error=statistics.median(errs),
                         render=statistics.median(rt)))
    return dict(rows=rows, fd_path=str(ref_path))


_MITSUBA = r"""
import json, statistics, sys, time
import numpy as np, drjit as dr, mitsuba as mi
xml, res, key, motion, integ, spps, repeats, fd_path, variant = sys.argv[1:10]
mi.set_variant(variant)
kw = dict(res=int(res), max_depth=8) if 'cbox' in xml else {}
scene = mi.load_file(xml, optimize=False, **kw)
params = mi.traverse(scene)
integrator = mi.load_dict({'type': integ, 'max_depth': 8} if integ.startswith('prb') else {'type': integ})
v0 = np.array(params[key], dtype=np.float64)
p = v0.reshape(-1, 3)
if motion == 'translate_x':
    d = np.zeros_like(p); d[:, 0] = 1
else:
    q = p - p.mean(0); d = np.stack([q[:, 2], np.zeros(len(q)), -q[:, 0]], -1)
d = d.ravel()
fd = np.load(fd_path)
def block(a, b=8):
    h, w = a.shape[:2]; return a[:h//b*b, :w//b*b].reshape(h//b, b, w//b, b, -1).mean(axis=(1, 3))
def rel(a, b): return float(np.abs(block(a) - block(b)).sum() / np.abs(block(b)).sum())
def deriv(spp, seed):
    theta = mi.Float(0.0); dr.enable_grad(theta)
    params[key] = mi.Float(v0.astype(np.float32)) + mi.Float(d.astype(np.float32)) * theta
    params.update()
    img = mi.render(scene, params, integrator=integrator, spp=spp, seed=seed)
    dr.forward(theta); g = dr.grad(img); dr.eval(g); dr.sync_thread()
    return np.array(g)
rows = []
for spp in [int(s) for s in spps.split(',')]:
    deriv(spp, 0)
    ts, es = [], []
    for r in range(int(repeats)):
        dr.sync_thread(); t0 = time.perf_counter(); g = deriv(spp, r + 1); ts.append(time.perf_counter() - t0)
        es.append(rel(g, fd))
    rows.append(dict(spp=spp, time=statistics.median(ts), error=statistics.median(es)))
print("RESULT " + json.dumps(rows))
"""


def mitsuba_case(name: str, xml: Path, res: int, repeats: int, fd_path: str,
                 python: str, spps: tuple, llvm: str = "") -> list:
    cfg = CASES[name]
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(_MITSUBA)
    env = dict(os.environ)
    if llvm:
        # Mitsuba's projective integrators need an LLVM that compiles their kernels
        # (3.9.1: LLVM 20 fails on direct_projective, 23 on prb_projective; 18 works).
        env["DRJIT_LIBLLVM_PATH"] = llvm
        libcxx = Path(llvm).parent / "x86_64-unknown-linux-gnu"
        env["LD_LIBRARY_PATH"] = f"{libcxx}:{env.get('LD_LIBRARY_PATH', '')}"
    out = subprocess.run([python, f.name, str(xml), str(res), cfg["key"], cfg["motion"],
                          cfg["mitsuba"], ",".join(map(str, spps)), str(repeats), fd_path,
                          "llvm_ad_rgb"], capture_output=True, text=True, env=env)
    os.unlink(f.name)
    if out.returncode != 0:
        raise RuntimeError(f"Mitsuba run failed:\n{out.stderr[-2000:]}")
    # (Mitsuba's log goes to stdout too.)
    line = [x for x in out.stdout.splitlines() if "RESULT " in x][-1]
    return json.loads(line[line.index("RESULT ") + 7:])


def cbox_xml(directory: Path, res: int) -> Path:
    """The Cornell box as XML (the copy of ``../shared/scenes/cbox.xml`` in tests/data)."""
    return CBOX


def memory_child(max_depth: int, res: int, spp: int) -> None:
    """Runs in a subprocess: one reverse-mode gradient of a geometry parameter
    (the Cornell box's small box, translated), then prints the peak RSS."""
    scene = lg.load_file(str(CBOX), res=res, max_depth=max_depth)
    out = gradient_peak_memory(scene, CASES["cbox"]["key"], spp)
    print(json.dumps({"max_depth": max_depth, **out}))


def bench_memory(res: int, spp: int) -> list:
    return bench_memory_in(res, spp, script=__file__)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", choices=tuple(CASES) + ("all",), default="all")
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache", default=str(HERE / ".cache"))
    ap.add_argument("--mitsuba-python", default=sys.executable)
    ap.add_argument("--mitsuba-spp", default=None,
                    help="sample counts for Mitsuba (comma-separated; default: the case's)")
    ap.add_argument("--no-mitsuba", action="store_true")
    ap.add_argument("--mitsuba-llvm", default=os.environ.get("MITSUBA_LLVM", ""),
                    help="libLLVM.so for the Mitsuba subprocess (e.g. karellen-llvm-core "
                         "18.1.8's, unpacked from its wheel)")
    ap.add_argument("--memory", action="store_true",
                    help="peak memory of a reverse-mode geometry gradient against max_depth")
    ap.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--spp", type=int, default=16, help="samples per pixel of --memory")
    args = ap.parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child, args.res, args.spp)
        return
    if args.memory:
        print(f"peak memory of one reverse-mode geometry gradient (Cornell box, small box "
              f"translated), {args.res}² × {args.spp} spp:")
        rows = bench_memory(args.res, args.spp)
        for r in rows:
            print(f"  max_depth {r['max_depth']:>3}: peak RSS {r['peak_mib']:8.1f} MiB "
                  f"(+{r['delta_mib']:.1f} MiB during the gradient), finite: {r['finite']}")
        print(f"  ratio max_depth 64 / 4 (peak RSS): {rows[-1]['peak_mib'] / rows[0]['peak_mib']:.3f}")
        return
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    cases = tuple(CASES) if args.case == "all" else (args.case,)
    report = {}
    for name in cases:
        xml = rotation_scene(cache, args.res, 16) if name == "rotation" else cbox_xml(cache, args.res)
        print(f"== {name} ({args.res}x{args.res}) ==")
        lgr = lumigrad_case(name, xml, args.res, args.repeats, cache)
        for r in lgr["rows"]:
            print(f"  lumigrad {r['spp']:5d} spp: derivative {r['time']:7.3f} s "
                  f"(render {r['render']:.3f} s, ratio {r['time'] / r['render']:.2f}), "
                  f"error {r['error']:.4f}")
        report[name] = {"lumigrad": lgr["rows"]}
        if not args.no_mitsuba:
            spps = tuple(int(s) for s in args.mitsuba_spp.split(",")) if args.mitsuba_spp \
                else CASES[name]["spps"]
            try:
                rows = mitsuba_case(name, xml, args.res, args.repeats, lgr["fd_path"],
                                    args.mitsuba_python, spps, args.mitsuba_llvm)
                for r in rows:
                    print(f"  Mitsuba {CASES[name]['mitsuba']} {r['spp']:5d} spp: derivative "
                          f"{r['time']:7.3f} s, error {r['error']:.4f}")
                report[name]["mitsuba"] = rows
            except (RuntimeError, FileNotFoundError) as e:
                print(f"  Mitsuba: {e}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
