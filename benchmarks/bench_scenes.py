"""Render times of varied scenes: lumigrad with each ray-tracing core against Mitsuba 3.

    python benchmarks/bench_scenes.py                       # 128² × 128 spp, every scene
    python benchmarks/bench_scenes.py --res 64 --spp 16 --scenes cbox,spheres
    python benchmarks/bench_scenes.py --rounds 3             # a loaded machine: best of 3

The scenes are written as Mitsuba XML files (plus PLY meshes, a PNG texture and an
EXR environment map) into a temporary folder, so both renderers load the same
files. Per scene, in one run: lumigrad with the built-in BVH, lumigrad with the
Mitsuba (Embree) core, and Mitsuba 3 itself (``llvm_ad_rgb``, in a subprocess so that
its kernels and ours don't share a cache), each the median of ``--repeats`` renders
after a warm-up render (compilation excluded, ``dr.sync_thread()`` around each
timing). The table gives the ratios to Mitsuba; the median over the scenes is the
figure the speed issue judges. A scene that one renderer cannot load is reported,
not skipped silently.

``--derivatives`` times, per scene and core, the render, a forward derivative (render +
``dr.forward`` of a material parameter: the first ``*reflectance.value`` key) and a
reverse gradient (render + ``dr.backward`` of an L2 loss) at ``--spp``, CPU time, and
prints their ratios to the render (the speed issue: at most 2.5).

On a shared machine, ``--rounds N`` repeats the whole comparison N times (lumigrad,
then Mitsuba, alternating) and keeps each cell's fastest round, and the second table
gives CPU times (``time.process_time`` of each process, all threads; median of the
repeats): other processes' load inflates wall times but hardly CPU times.

Scenes:

``cbox``        the Cornell box (36 triangles; path, depth 8)
``cbox_torus``  the Cornell box with a 100k-triangle torus (path, depth 8)
``blob``        a 131k-triangle smooth displaced sphere on a floor, one area light (direct)
``materials``   textured, rough conductor, rough plastic and glass spheres (meshes),
                an environment map and a point light (path, depth 6)
``spheres``     64 meshed spheres (130k triangles) of rough plastic, two area lights
                (path, depth 5)
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import drjit as dr
import numpy as np

import lumigrad as lg
from lumigrad.geometry import meshio, primitives

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_boundary import displaced_sphere  # noqa: E402  (the 131k-triangle test mesh)
from bench_render import timed  # noqa: E402

CBOX = HERE.parent / "tests" / "data" / "scenes" / "cbox.xml"


def _sensor(res: int, spp: int, origin: str, target: str, fov: float = 40.0) -> str:
    return f"""  <sensor type="perspective">
    <float name="fov" value="{fov}"/>
    <transform name="to_world"><lookat origin="{origin}" target="{target}" up="0, 1, 0"/></transform>
    <sampler type="independent"><integer name="sample_count" value="{spp}"/></sampler>
    <film type="hdrfilm"><integer name="width" value="{res}"/><integer name="height" value="{res}"/>
      <rfilter type="box"/></film>
  </sensor>"""


def _floor(y: float, bsdf: str = "grey") -> str:
    return (f'  <shape type="rectangle" id="floor"><transform name="to_world"><scale value="6"/>'
            f'<rotate x="1" angle="-90"/><translate y="{y}"/></transform><ref id="{bsdf}"/></shape>')


def _ply(directory: Path, name: str, mesh: primitives.MeshData) -> str:
    path = directory / f"{name}.ply"
    meshio.write_ply(str(path), mesh.positions, mesh.faces, normals=mesh.normals, uvs=mesh.uvs)
    return path.name


def write_scenes(d: Path, res: int, spp: int) -> dict[str, Path]:
    """Write every benchmark scene into ``d``; returns name -> XML path."""
    out: dict[str, Path] = {}
    cbox = CBOX.read_text()
    (d / "cbox.xml").write_text(cbox)
    out["cbox"] = d / "cbox.xml"

    torus = primitives.torus(R=0.45, r=0.18, n_major=782, n_minor=64)
    tname = _ply(d, "torus", torus)
    shape = (f'<shape type="ply" id="torus"><string name="filename" value="{tname}"/>'
             '<transform name="to_world"><rotate x="1" angle="60"/>'
             '<translate x="0" y="0.2" z="0"/></transform><ref id="white"/></shape>')
    (d / "cbox_torus.xml").write_text(cbox.replace("</scene>", shape + "\n</scene>"))
    out["cbox_torus"] = d / "cbox_torus.xml"

    pos, faces = displaced_sphere(131_000)
    meshio.write_ply(str(d / "blob.ply"), pos, faces)
    (d / "blob.xml").write_text(f"""<scene version="3.0.0">
  <integrator type="direct"/>
{_sensor(res, spp, "0, 1.2, 4.2", "0, -0.1, 0")}
  <bsdf type="diffuse" id="grey"><rgb name="reflectance" value="0.6, 0.6, 0.6"/></bsdf>
  <bsdf type="diffuse" id="orange"><rgb name="reflectance" value="0.8, 0.45, 0.15"/></bsdf>
  <shape type="ply" id="blob"><string name="filename" value="blob.ply"/>
    <transform name="to_world"><scale value="0.8"/></transform><ref id="orange"/></shape>
{_floor(-0.85)}
  <shape type="rectangle" id="light">
    <transform name="to_world"><scale value="0.6"/><lookat origin="1.8, 2.5, 1.5" target="0, 0, 0" up="0, 1, 0"/></transform>
    <emitter type="area"><rgb name="radiance" value="12, 12, 12"/></emitter></shape>
</scene>
""")
    out["blob"] = d / "blob.xml"

    # materials: a checker texture (PNG), an environment map (EXR), four spheres
    checks = ((np.indices((256, 256)).sum(0) // 32) % 2).astype(np.float32)
    tex = np.stack([0.1 + 0.7 * checks, 0.2 + 0.3 * checks, 0.6 - 0.4 * checks], -1)
    lg.write_image(str(d / "checks.png"), tex)
    u, v = np.meshgrid(np.linspace(0, 1, 256), np.linspace(0, 1, 128))
    sky = np.stack([0.3 + 0.7 * (1 - v), 0.4 + 0.6 * (1 - v), 0.9 * np.ones_like(v)], -1)
    sky[10:20, 40:60] = 40.0                                     # a small bright "sun"
    lg.write_image(str(d / "sky.exr"), sky.astype(np.float32))
    sph = _ply(d, "ball", primitives.uv_sphere(96, 192, 0.45))   # 36k triangles each
    balls = [("-1.5", '<bsdf type="diffuse"><texture type="bitmap" name="reflectance">'
                      '<string name="filename" value="checks.png"/></texture></bsdf>'),
             ("-0.5", '<bsdf type="roughconductor"><string name="material" value="Au"/>'
                      '<float name="alpha" value="0.2"/></bsdf>'),
             ("0.5", '<bsdf type="roughplastic"><rgb name="diffuse_reflectance" value="0.2, 0.5, 0.3"/>'
                     '<float name="alpha" value="0.3"/></bsdf>'),
             ("1.5", '<bsdf type="dielectric"/>')]
    shapes = "\n".join(
        f'  <shape type="ply" id="ball{i}"><string name="filename" value="{sph}"/>'
        f'<transform name="to_world"><translate x="{x}" y="-0.35"/></transform>{b}</shape>'
        for i, (x, b) in enumerate(balls))
    (d / "materials.xml").write_text(f"""<scene version="3.0.0">
  <integrator type="path"><integer name="max_depth" value="6"/></integrator>
{_sensor(res, spp, "0, 1.0, 5.0", "0, -0.3, 0", fov=45)}
  <bsdf type="diffuse" id="grey"><rgb name="reflectance" value="0.5, 0.5, 0.5"/></bsdf>
{shapes}
{_floor(-0.8)}
  <emitter type="envmap"><string name="filename" value="sky.exr"/></emitter>
  <emitter type="point"><point name="position" x="2" y="3" z="2"/>
    <rgb name="intensity" value="20, 20, 20"/></emitter>
</scene>
""")
    out["materials"] = d / "materials.xml"

    small = _ply(d, "small_ball", primitives.uv_sphere(32, 32, 0.18))  # ~2k triangles
    grid = "\n".join(
        f'  <shape type="ply" id="s{i}_{j}"><string name="filename" value="{small}"/>'
        f'<transform name="to_world"><translate x="{-1.4 + 0.4 * i:.2f}" y="-0.6" '
        f'z="{-1.4 + 0.4 * j:.2f}"/></transform><ref id="{("red", "blue")[(i + j) % 2]}"/></shape>'
        for i in range(8) for j in range(8))
    (d / "spheres.xml").write_text(f"""<scene version="3.0.0">
  <integrator type="path"><integer name="max_depth" value="5"/></integrator>
{_sensor(res, spp, "0, 2.5, 4.0", "0, -0.6, 0", fov=45)}
  <bsdf type="diffuse" id="grey"><rgb name="reflectance" value="0.5, 0.5, 0.5"/></bsdf>
  <bsdf type="roughplastic" id="red"><rgb name="diffuse_reflectance" value="0.7, 0.15, 0.1"/>
    <float name="alpha" value="0.2"/></bsdf>
  <bsdf type="roughplastic" id="blue"><rgb name="diffuse_reflectance" value="0.1, 0.2, 0.7"/>
    <float name="alpha" value="0.2"/></bsdf>
{grid}
{_floor(-0.78)}
  <shape type="rectangle" id="light1"><transform name="to_world"><scale value="0.5"/>
    <lookat origin="-2, 3, 1" target="0, 0, 0" up="0, 1, 0"/></transform>
    <emitter type="area"><rgb name="radiance" value="15, 14, 12"/></emitter></shape>
  <shape type="rectangle" id="light2"><transform name="to_world"><scale value="0.3"/>
    <lookat origin="2, 2, -1" target="0, 0, 0" up="0, 1, 0"/></transform>
    <emitter type="area"><rgb name="radiance" value="6, 8, 12"/></emitter></shape>
</scene>
""")
    out["spheres"] = d / "spheres.xml"
    return out


def bench_lumigrad(xml: Path, accel: str, spp: int, repeats: int) -> dict:
    t0 = time.perf_counter()
    scene = lg.load_file(xml)
    load = time.perf_counter() - t0
    scene.set_accelerator(accel)
    cpu = []

    def run(i: int) -> None:
        c0 = time.process_time()
        dr.eval(lg.render(scene, spp=spp, seed=i))
        dr.sync_thread()
        cpu.append(time.process_time() - c0)

    _, t = timed(run, repeats)
    return {"render": t, "cpu": statistics.median(cpu[1:]), "load": load,
            "triangles": int(scene.faces_np.shape[0]), "accel": scene.accel_name}


def bench_derivatives(xml: Path, accel: str, spp: int, repeats: int) -> dict:
    """CPU seconds (median of ``repeats`` after a warm-up) of render, forward and reverse."""
    scene = lg.load_file(xml)
    scene.set_accelerator(accel)
    params = lg.traverse(scene)
    key = next(k for k in params.keys() if k.endswith("reflectance.value"))
    target = lg.TensorXf(np.array(lg.render(scene, spp=spp, seed=12345)) * 0.9)

    def differentiate(i: int, reverse: bool) -> None:
        value = params[key]
        dr.enable_grad(value)
        params.update()
        image = lg.render(scene, params, spp=spp, seed=i)
        if reverse:
            dr.backward(lg.l2(image, target))
            dr.eval(dr.grad(value))
        else:
            dr.forward(value)
            dr.eval(dr.grad(image))
        dr.disable_grad(value)
        params.update()

    fns = {"render": lambda i: dr.eval(lg.render(scene, spp=spp, seed=i)),
           "forward": lambda i: differentiate(i, False),
           "reverse": lambda i: differentiate(i, True)}
    out = {"key": key, "accel": scene.accel_name}
    for name, fn in fns.items():
        cpu = []

        def run(i: int) -> None:
            c0 = time.process_time()
            fn(i)
            dr.sync_thread()
            cpu.append(time.process_time() - c0)
        timed(run, repeats)
        out[name] = statistics.median(cpu[1:])
    return out


_MITSUBA = r"""
import json, statistics, sys, time
import drjit as dr, mitsuba as mi
mi.set_variant(sys.argv[1]); spp, repeats = int(sys.argv[2]), int(sys.argv[3])
out = {}
for xml in sys.argv[4:]:
    try:
        t0 = time.perf_counter(); scene = mi.load_file(xml); load = time.perf_counter() - t0
        dr.eval(mi.render(scene, spp=spp, seed=0)); dr.sync_thread(); ts = []; cs = []
        for i in range(repeats):
            dr.sync_thread(); t0 = time.perf_counter(); c0 = time.process_time()
            dr.eval(mi.render(scene, spp=spp, seed=i + 1)); dr.sync_thread()
            ts.append(time.perf_counter() - t0); cs.append(time.process_time() - c0)
        out[xml] = {"render": statistics.median(ts), "cpu": statistics.median(cs), "load": load}
    except Exception as e:
        out[xml] = {"error": str(e).splitlines()[0][:200]}
print(json.dumps(out))
"""


def bench_mitsuba(xmls: list[Path], spp: int, repeats: int) -> dict:
    variant = "cuda_ad_rgb" if lg.variant() == "cuda" else "llvm_ad_rgb"
    r = subprocess.run([sys.executable, "-c", _MITSUBA, variant, str(spp), str(repeats)]
                       + [str(x) for x in xmls], capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        print("Mitsuba run failed:", (r.stderr.strip().splitlines() or ["?"])[-1])
        return {}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--res", type=int, default=128)
    p.add_argument("--spp", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--scenes", default=None, help="comma-separated subset")
    p.add_argument("--accels", default="builtin,mitsuba")
    p.add_argument("--rounds", type=int, default=1,
                   help="repeat lumigrad and Mitsuba alternately; keep each cell's best")
    p.add_argument("--derivatives", action="store_true",
                   help="time forward and reverse derivatives against the render instead")
    a = p.parse_args(argv)
    accels = a.accels.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        scenes = write_scenes(Path(tmp), a.res, a.spp)
        if a.scenes:
            scenes = {k: v for k, v in scenes.items() if k in a.scenes.split(",")}
        if a.derivatives:
            print(f"{a.res}² × {a.spp} spp, CPU time, median of {a.repeats}\n")
            print("| scene, core | parameter | render | forward | reverse |\n| --- | --- | --- | --- | --- |")
            for name, xml in scenes.items():
                for accel in accels:
                    r = bench_derivatives(xml, accel, a.spp, a.repeats)
                    print(f"| {name}, {r['accel']} | `{r['key']}` | {r['render']:.3f} s | "
                          f"{r['forward']:.3f} s ({r['forward'] / r['render']:.2f}×) | "
                          f"{r['reverse']:.3f} s ({r['reverse'] / r['render']:.2f}×) |",
                          flush=True)
            return
        rows: dict = {name: {} for name in scenes}
        mits: dict = {}
        for _ in range(max(a.rounds, 1)):
            for name, xml in scenes.items():
                for accel in accels:
                    try:
                        r = bench_lumigrad(xml, accel, a.spp, a.repeats)
                    except Exception as e:  # report, don't hide
                        r = {"error": f"{type(e).__name__}: {e}"[:200]}
                    rows[name][accel] = _best(rows[name].get(accel), r)
                    print(name, accel, r, flush=True)
            for xml, r in bench_mitsuba(list(scenes.values()), a.spp, a.repeats).items():
                mits[xml] = _best(mits.get(xml), r)
    rounds = f", best of {a.rounds} rounds" if a.rounds > 1 else ""
    print(f"\n{a.res}² × {a.spp} spp, median of {a.repeats}{rounds}, variant {lg.variant()}")
    for key, what in (("render", "wall time"), ("cpu", "CPU time (all threads)")):
        print(f"\n{what}")
        print("| scene | triangles | " + " | ".join(f"lumigrad {x}" for x in accels)
              + " | Mitsuba 3 | " + " | ".join(f"ratio {x}" for x in accels) + " |")
        print("|" + " --- |" * (3 + 2 * len(accels)))
        ratios: dict[str, list[float]] = {x: [] for x in accels}
        for name, xml in scenes.items():
            m = mits.get(str(xml), {"error": "not run"})
            cells, rcells = [], []
            tris = next((r["triangles"] for r in rows[name].values() if "triangles" in r), "?")
            for x in accels:
                r = rows[name][x]
                cells.append(f"{r[key]:.3f} s" if key in r else r["error"])
                if key in r and key in m:
                    ratios[x].append(r[key] / m[key])
                    rcells.append(f"{ratios[x][-1]:.2f}")
                else:
                    rcells.append("—")
            mcell = f"{m[key]:.3f} s" if key in m else m["error"]
            print(f"| {name} | {tris} | " + " | ".join(cells) + f" | {mcell} | "
                  + " | ".join(rcells) + " |")
        for x in accels:
            if ratios[x]:
                print(f"median ratio lumigrad {x} / Mitsuba ({what}): "
                      f"{statistics.median(ratios[x]):.2f}")


def _best(old: dict | None, new: dict) -> dict:
    """The faster of two measurements of one cell (per time), errors last."""
    if old is None or "error" in old:
        return new
    if "error" in new:
        return old
    out = dict(old)
    for k in ("render", "cpu"):
        if k in new:
            out[k] = min(old.get(k, new[k]), new[k])
    return out


if __name__ == "__main__":
    main()
