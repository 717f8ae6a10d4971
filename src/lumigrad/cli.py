"""The ``lumigrad`` command line.

    lumigrad demo [-o out/]                       render the built-in Cornell box and its
                                                  derivative image (no input files needed)
    lumigrad render SCENE -o OUT [--spp N] [-D name=value ...] [--backend llvm|cuda]
                          [--workers N] [--address ADDR]   on a Ray pool
    lumigrad derivative SCENE --param KEY -o OUT.png [--spp N]
    lumigrad check SCENE --param KEY [--spp N] [--retries N]
    lumigrad params SCENE                         list the scene's parameters
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence


def _defaults(items: Optional[Sequence[str]]) -> dict:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"lumigrad: -D expects name=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _load(args: argparse.Namespace) -> Any:
    import lumigrad as lg
    t0 = time.perf_counter()
    if args.scene in ("cbox", "cornell_box", "builtin:cbox"):
        kw = {k: int(v) for k, v in _defaults(args.define).items() if k in ("res", "spp", "max_depth")}
        scene = lg.cornell_box(**kw)
    else:
        scene = lg.load_file(args.scene, **_defaults(args.define))
    if getattr(args, "accel", None) is not None:
        scene.set_accelerator(args.accel)
    if getattr(args, "verbose", False):
        print(f"loaded {args.scene} in {time.perf_counter() - t0:.2f} s: {len(scene.shapes)} "
              f"shapes, {int(scene.faces_np.shape[0])} triangles, {len(scene.emitters)} "
              f"emitters; ray tracing: {scene.accel_name}", file=sys.stderr)
    return scene


def _render_with_progress(scene: Any, spp: Optional[int], seed: int, sensor: int = 0) -> Any:
    """Render, with a progress bar when the render takes several passes."""
    import drjit as dr
    from tqdm import tqdm

    import lumigrad as lg
    from .render import _default_integrator, _resolve_sensor

    sensor_obj = _resolve_sensor(scene, sensor)
    integrator = _default_integrator(scene)
    spp = spp if spp is not None else sensor_obj.sampler.sample_count
    if spp < 1:
        raise ValueError(f"--spp must be at least 1, got {spp}")
    passes = integrator._passes(scene, sensor_obj, spp)
    bar = tqdm(total=len(passes), desc="rendering", unit="pass", disable=len(passes) < 2,
               file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    t0 = time.perf_counter()
    with dr.suspend_grad():
        image = integrator.render(scene, sensor_obj, seed, spp, progress=progress)
        dr.eval(image)
        dr.sync_thread()
    bar.close()
    w, h = sensor_obj.resolution
    dt = time.perf_counter() - t0
    print(f"rendered {w}x{h} at {spp} spp in {dt:.2f} s "
          f"({w * h * spp / dt / 1e6:.2f} M samples/s) on {lg.variant()}", file=sys.stderr)
    return image


def cmd_render(args: argparse.Namespace) -> int:
    import lumigrad as lg
    if args.workers or args.address:  # a Ray pool (lumigrad[distributed])
        from .distributed.cli import render_distributed
        return render_distributed(args)
    scene = _load(args)
    image = _render_with_progress(scene, args.spp, args.seed, args.sensor)
    lg.write_image(args.output, image)
    print(f"wrote {args.output}")
    return 0


def _floats(text: Optional[str], name: str) -> Optional[list]:
    if text is None:
        return None
    try:
        return [float(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError:
        raise SystemExit(f"lumigrad: --{name} expects comma-separated numbers, got {text!r}")


def _direction(scene: Any, key: str, args: argparse.Namespace) -> Any:
    """The perturbation of ``key`` from --direction / --translate / --rotate."""
    import numpy as np

    import lumigrad as lg
    direction = _floats(args.direction, "direction")
    translate = _floats(args.translate, "translate")
    rotate = _floats(args.rotate, "rotate")
    if translate is None and rotate is None:
        return None if direction is None else np.asarray(direction)
    params = lg.traverse(scene)
    value = params[key]
    if not isinstance(value, lg.Transform4f):
        raise SystemExit(f"lumigrad: --translate/--rotate need a transform parameter; "
                         f"{key!r} is a {type(value).__name__}")
    for v, name in ((translate, "translate"), (rotate, "rotate")):
        if v is not None and len(v) != 3:
            raise SystemExit(f"lumigrad: --{name} expects 3 numbers, got {len(v)}")
    owner = params.owner(key)
    if hasattr(owner, "positions_numpy"):      # a shape: about its centroid
        centre = owner.positions_numpy().mean(axis=0)
    else:                                      # a camera: about its position
        centre = value.numpy()[:3, 3]
    return lg.transform_direction(value, translate=translate, rotate=rotate, centre=centre)


def _direction_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--direction", default=None, metavar="V1,V2,...",
                    help="perturbation of the parameter (default: ones for colours and "
                    "scalars, a random unit vector for arrays)")
    sp.add_argument("--translate", default=None, metavar="X,Y,Z",
                    help="transform keys: translate by this vector per unit")
    sp.add_argument("--rotate", default=None, metavar="AX,AY,AZ",
                    help="transform keys: rotate about this axis (radians per unit) through "
                    "the shape's centroid or the camera's position")


def cmd_derivative(args: argparse.Namespace) -> int:
    import numpy as np

    import lumigrad as lg
    from .viz import save_derivative_image
    scene = _load(args)
    t0 = time.perf_counter()
    grad = np.array(lg.derivative_image(scene, args.param, spp=args.spp, seed=args.seed,
                                        direction=_direction(scene, args.param, args)))
    print(f"derivative image of {args.param!r} in {time.perf_counter() - t0:.2f} s",
          file=sys.stderr)
    out = Path(args.output)
    save_derivative_image(grad, out, title=f"d image / d {args.param}")
    exr = out.with_suffix(".exr")
    lg.write_image(exr, grad)
    print(f"wrote {out} and {exr} (max |derivative| {np.abs(grad).max():.4g})")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    import lumigrad as lg
    scene = _load(args)
    report = lg.check_gradient(scene, args.param, spp=args.spp if args.spp is not None else 16,
                               seed=args.seed, eps=args.eps,
                               direction=_direction(scene, args.param, args),
                               fd_spp=args.fd_spp, retries=args.retries)
    print(report)
    # (2: the budget's noise could explain the error; more samples will tell.)
    return {"PASS": 0, "FAIL": 1, "INCONCLUSIVE": 2}[report.verdict]


def cmd_params(args: argparse.Namespace) -> int:
    import lumigrad as lg
    print(lg.traverse(_load(args)))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Render the built-in Cornell box and the derivative image of its green wall."""
    import numpy as np

    import lumigrad as lg
    from .viz import save_derivative_image
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    scene = lg.cornell_box(res=args.res)
    image = _render_with_progress(scene, args.spp, 0)
    lg.write_image(out / "cbox.png", image)
    lg.write_image(out / "cbox.exr", image)
    t0 = time.perf_counter()
    grad = np.array(lg.derivative_image(scene, "green.reflectance.value", spp=args.spp))
    print(f"forward-mode derivative image in {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    save_derivative_image(grad, out / "cbox_d_green_reflectance.png",
                          title="d image / d green.reflectance.value")
    lg.write_image(out / "cbox_d_green_reflectance.exr", grad)
    print(f"wrote {out}/cbox.png, cbox.exr, cbox_d_green_reflectance.png and .exr")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lumigrad", description="A differentiable renderer.")
    p.add_argument("--backend", choices=("llvm", "cuda"), default=None,
                   help="Dr.Jit backend (default: CUDA when a GPU is present, else LLVM)")
    sub = p.add_subparsers(dest="command", required=True)

    def scene_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("scene", help="a Mitsuba 3 XML scene file, or 'cbox' (built-in)")
        sp.add_argument("-D", "--define", action="append", metavar="NAME=VALUE",
                        help="override a <default> of the scene (repeatable)")
        sp.add_argument("--spp", type=int, default=None, help="samples per pixel")
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--accel", choices=("auto", "builtin", "mitsuba"), default=None,
                        help="ray-tracing core (default: LUMIGRAD_ACCEL, else auto: Embree "
                             "through Mitsuba when installed, for scenes beyond a few dozen "
                             "triangles)")
        sp.add_argument("-v", "--verbose", action="store_true",
                        help="report the scene's size, load time and ray-tracing core")

    sp = sub.add_parser("render", help="render an image (EXR, PNG, ... by extension)")
    scene_args(sp)
    sp.add_argument("-o", "--output", required=True)
    sp.add_argument("--sensor", type=int, default=0)
    sp.add_argument("--workers", type=int, default=None, metavar="N",
                    help="render on N Ray workers (extra lumigrad[distributed]); the samples "
                    "are split into passes with seeds seed, seed+1, ...")
    sp.add_argument("--address", default=None, help="an existing Ray cluster ('auto', "
                    "'host:6379'); the scene file's folder travels with the job")
    sp.add_argument("--passes", type=int, default=None,
                    help="with --workers: passes per view (default: one per worker)")
    sp.add_argument("--all-sensors", action="store_true",
                    help="with --workers: render every sensor, to OUT_<i>.<ext>")
    sp.set_defaults(func=cmd_render)

    sp = sub.add_parser("derivative", help="forward-mode derivative image of one parameter")
    scene_args(sp)
    sp.add_argument("--param", required=True, help="parameter key, e.g. green.reflectance.value")
    sp.add_argument("-o", "--output", required=True, help="PNG of the panels (an EXR is "
                    "written beside it)")
    _direction_args(sp)
    sp.set_defaults(func=cmd_derivative)

    sp = sub.add_parser("check", help="finite differences vs forward vs reverse mode (exit "
                        "status 0 pass, 1 fail, 2 inconclusive: too few samples to tell)")
    scene_args(sp)
    sp.add_argument("--param", required=True)
    _direction_args(sp)
    sp.add_argument("--eps", type=float, default=None, help="finite-difference step")
    sp.add_argument("--fd-spp", type=int, default=None,
                    help="samples of the finite differences where edges move (default 64 x spp)")
    sp.add_argument("--retries", type=int, default=2,
                    help="where edges move and the error is within the budget's noise "
                    "(INCONCLUSIVE), check again with 4x the samples, up to this many times "
                    "(default 2)")
    sp.set_defaults(func=cmd_check)

    sp = sub.add_parser("params", help="list the parameters of a scene")
    scene_args(sp)
    sp.set_defaults(func=cmd_params)

    sp = sub.add_parser("demo", help="render the built-in Cornell box and a derivative image")
    sp.add_argument("-o", "--output", default="out")
    sp.add_argument("--res", type=int, default=256)
    sp.add_argument("--spp", type=int, default=64)
    sp.set_defaults(func=cmd_demo)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.backend:
        os.environ["LUMIGRAD_VARIANT"] = args.backend
    import lumigrad as lg
    if args.backend:
        lg.set_variant(args.backend)
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, FileNotFoundError, TypeError) as e:
        print(f"lumigrad: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
