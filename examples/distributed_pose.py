"""Recover an object's pose from N views, distributed over a Ray pool.

The scene, the pose parametrisation and the error measure are those of
``optimize_pose.py`` (a box on the floor of a small room, lit by an area
light); here the "photographs" are N views from cameras on an arc in front of
it, given to the pool as transforms of the scene's first sensor. Every worker
loads the scene once. Each step the driver builds ``obj.to_world`` from the
latent pose (translation on the floor, turn about the vertical axis); the pool
sends that one 4×4 matrix to the workers, which render their views, back-
propagate each view's L2 loss (path replay with the boundary terms) and return
their part of the gradient; ``dr.backward`` on the pool's loss carries the sum
to the latent variables and ``drjit.opt.Adam`` steps, exactly as in the
single-process loop of ``optimize_pose.py``.

Run: ``python examples/distributed_pose.py [--workers 2] [--views 8] [--res 48]
[--spp 4] [--iterations 40] [--address auto] [--output out/distributed_pose]``
(``--address`` joins a cluster started with ``ray start --head``; without it a
local Ray instance is started).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path
from typing import Optional, Sequence

import drjit as dr
import drjit.opt  # noqa: F401
import numpy as np
from tqdm import tqdm

import lumigrad as lg
import lumigrad.viz
from lumigrad.distributed import Pool


def _optimize_pose():
    """The single-process example, whose scene and pose model this one reuses."""
    path = Path(__file__).with_name("optimize_pose.py")
    spec = importlib.util.spec_from_file_location("_optimize_pose", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


pose = _optimize_pose()


def cameras(n: int) -> list:
    """``n`` camera transforms on an arc in front of the box (azimuth -70°..70°,
    alternating heights), looking at it."""
    out = []
    for i, az in enumerate(np.radians(np.linspace(-70, 70, n))):
        height = 0.7 if i % 2 == 0 else 1.5
        origin = [2.8 * np.sin(az), height, 2.8 * np.cos(az)]
        out.append(lg.Transform4f().look_at(origin=origin, target=[0, -0.35, 0], up=[0, 1, 0]))
    return out


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--address", default=None, help="an existing Ray cluster ('auto', ...)")
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--res", type=int, default=48)
    ap.add_argument("--spp", type=int, default=4, help="samples per pixel per view and step")
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--lr", type=float, default=0.03, help="Adam learning rate")
    ap.add_argument("--output", default=os.path.join("out", "distributed_pose"))
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    # A shape's to_world parameter starts as the identity, applied on top of the
    # file's transform: the pose is built on top of it.
    base = lg.Transform4f()

    def to_world(translation, angle) -> dict:
        return {"obj.to_world": pose.posed(base, translation, angle)}

    with Pool(pose.scene_dict(args.res), workers=args.workers, address=args.address,
              views=cameras(args.views), progress=False) as pool:
        ref_spp = 16 * args.spp
        truth = to_world(lg.Array2f(*pose.TRUE_POSE[:2]), lg.Float(pose.TRUE_POSE[2]))
        targets = pool.render(spp=ref_spp, seed=100, params=truth)
        pool.set_targets(targets)             # sent to the workers once

        opt = dr.opt.Adam(lr=args.lr)
        opt["translation"] = lg.Array2f(*pose.START_POSE[:2])
        opt["angle"] = lg.Float(pose.START_POSE[2])
        initial = pool.render(spp=ref_spp, seed=200,
                              params=to_world(opt["translation"], opt["angle"]))

        losses, errors = [], [pose.pose_error(opt["translation"], opt["angle"])]
        step_seconds = []
        bar = tqdm(range(args.iterations), disable=args.quiet, desc="optimising", unit="step")
        for it in bar:
            loss = pool.loss(to_world(opt["translation"], opt["angle"]), lg.l2,
                             spp=args.spp, seed=it)
            dr.backward(loss)
            opt.step()
            losses.append(float(loss[0]))
            errors.append(pose.pose_error(opt["translation"], opt["angle"]))
            step_seconds.append(pool.last.seconds)
            bar.set_postfix(loss=f"{losses[-1]:.5f}", dt=f"{errors[-1][0]:.3f}",
                            dphi=f"{errors[-1][1]:.3f}")
        summary = pool.summary()
        final = pool.render(spp=ref_spp, seed=300,
                            params=to_world(opt["translation"], opt["angle"]))

    t = [float(opt["translation"][0][0]), float(opt["translation"][1][0])]
    phi = float(opt["angle"][0])
    print(f"{args.views} views on {args.workers} worker(s): last step {summary}")
    print(f"mean step time {np.mean(step_seconds):.2f} s")
    print(f"pose: start t={list(pose.START_POSE[:2])} φ={pose.START_POSE[2]:.3f}; found "
          f"t={np.round(t, 4).tolist()} φ={phi:.4f}; true t={list(pose.TRUE_POSE[:2])} "
          f"φ={pose.TRUE_POSE[2]:.3f}")
    print(f"translation error {errors[0][0]:.4f} -> {errors[-1][0]:.4f}, "
          f"angle error {errors[0][1]:.4f} -> {errors[-1][1]:.4f} rad")
    out = args.output
    lumigrad.viz.plot_losses(losses, os.path.join(out, "losses.png"),
                             title=f"summed L2 loss, {args.views} views")
    lumigrad.viz.plot_losses([e[0] for e in errors], os.path.join(out, "translation_error.png"),
                             title="distance to the true position")
    lumigrad.viz.plot_losses([e[1] for e in errors], os.path.join(out, "angle_error.png"),
                             title="angle error (rad)")
    shown = sorted({0, len(targets) // 2, len(targets) - 1})
    lumigrad.viz.side_by_side([initial[v] for v in shown] + [final[v] for v in shown]
                              + [targets[v] for v in shown],
                              [f"{kind} (view {v})" for kind in ("initial", "final", "target")
                               for v in shown],
                              os.path.join(out, "before_after.png"))
    print(f"wrote {out}/losses.png, translation_error.png, angle_error.png, before_after.png")
    return {"losses": losses, "errors": errors, "translation": t, "angle": phi,
            "step_seconds": step_seconds, "output": out}


if __name__ == "__main__":
    main()
