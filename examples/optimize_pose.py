"""Recover the pose of an object from two photographs, with the path tracer.

A box stands on the floor of a small room lit by an area light; two cameras see
it (and its shadow). Its true pose (a translation on the floor and a turn
about the vertical axis) renders the "photographs"; the optimisation starts
from a wrong pose and minimises the L2 error of both views with Adam
(``drjit.opt.Adam``). The pose parameters are latent variables: each
iteration builds ``obj.to_world = translate(t) · rotate_y(φ) · base`` from them,
renders both views with few samples and back-propagates through the
renderer. The derivatives of a pose are dominated by silhouettes, creases and
shadow edges moving over the images: the boundary terms of
``lumigrad.integrators.boundary`` carry them (without them the gradient is
mostly wrong and the pose does not converge).

Writes the loss and pose-error curves, the initial/final/target images of
both views and a side-by-side figure into ``--output``.

Run: ``python examples/optimize_pose.py [--res 64] [--spp 8] [--iterations 60]
[--output out/optimize_pose]``
"""
from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

import drjit as dr
import drjit.opt  # noqa: F401
import numpy as np
from tqdm import tqdm

import lumigrad as lg
import lumigrad.viz

T = lg.Transform4f
TRUE_POSE = (0.25, -0.15, 0.6)     # translation x, z on the floor; turn about y (rad)
START_POSE = (-0.05, 0.1, 0.15)


def scene_dict(res: int) -> dict:
    def camera(origin):
        return {"type": "perspective", "fov": 45,
                "to_world": T().look_at(origin=origin, target=[0, -0.3, 0], up=[0, 1, 0]),
                "film": {"type": "hdrfilm", "width": res, "height": res,
                         "rfilter": {"type": "box"}}}
    rgb = lambda *v: {"type": "rgb", "value": list(v)}  # noqa: E731
    return {
        "type": "scene",
        "integrator": {"type": "path", "max_depth": 3},
        "front": camera([0.0, 0.8, 3.0]),
        "side": camera([2.6, 1.2, 1.2]),
        "white": {"type": "diffuse", "reflectance": rgb(0.7, 0.7, 0.7)},
        "blue": {"type": "diffuse", "reflectance": rgb(0.15, 0.25, 0.7)},
        "floor": {"type": "rectangle", "to_world": T().translate([0, -0.7, 0])
                  .rotate([1, 0, 0], -90).scale(2.0), "bsdf": {"type": "ref", "id": "white"}},
        "back": {"type": "rectangle", "to_world": T().translate([0, 0.3, -1.2]).scale(2.0),
                 "bsdf": {"type": "ref", "id": "white"}},
        "obj": {"type": "cube", "to_world": T().translate([0, -0.45, 0]).scale([0.35, 0.25, 0.15]),
                "bsdf": {"type": "ref", "id": "blue"}},
        "light": {"type": "rectangle",
                  "to_world": T().look_at(origin=[-0.8, 1.6, 1.2], target=[0, -0.5, 0],
                                          up=[0, 1, 0]).scale(0.4),
                  "emitter": {"type": "area", "radiance": rgb(16.0, 15.0, 13.0)}},
    }


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--spp", type=int, default=8, help="samples per pixel per view and step")
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--lr", type=float, default=0.02, help="Adam learning rate")
    ap.add_argument("--output", default=os.path.join("out", "optimize_pose"))
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def posed(base: lg.Transform4f, translation, angle) -> lg.Transform4f:
    """``translate(t) · rotate_y(φ) · base`` (``t`` in the floor plane)."""
    t = lg.Array3f(translation[0], 0.0, translation[1])
    return T().translate(t) @ T(lg.rotation_matrix_rad([0.0, 1.0, 0.0], angle)) @ base


def pose_error(translation, angle) -> tuple[float, float]:
    t = np.array([float(translation[0][0]), float(translation[1][0])])
    return (float(np.linalg.norm(t - np.array(TRUE_POSE[:2]))),
            abs(float(angle[0]) - TRUE_POSE[2]))


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    scene = lg.load_dict(scene_dict(args.res))
    params = lg.traverse(scene)
    base = params["obj.to_world"]
    views = range(len(scene.sensors))

    def set_pose(translation, angle) -> None:
        params["obj.to_world"] = posed(base, translation, angle)
        params.update()

    ref_spp = 32 * args.spp
    set_pose(lg.Array2f(*TRUE_POSE[:2]), lg.Float(TRUE_POSE[2]))
    targets = [lg.render(scene, params, sensor=v, spp=ref_spp, seed=100 + v) for v in views]

    opt = dr.opt.Adam(lr=args.lr)
    opt["translation"] = lg.Array2f(*START_POSE[:2])
    opt["angle"] = lg.Float(START_POSE[2])
    with dr.suspend_grad():
        set_pose(opt["translation"], opt["angle"])
    initial = [lg.render(scene, params, sensor=v, spp=ref_spp, seed=200 + v) for v in views]

    losses, errors = [], [pose_error(opt["translation"], opt["angle"])]
    bar = tqdm(range(args.iterations), disable=args.quiet, desc="optimising", unit="it")
    for it in bar:
        set_pose(opt["translation"], opt["angle"])
        loss = None
        for v in views:
            image = lg.render(scene, params, sensor=v, spp=args.spp, seed=2 * it + v)
            term = lg.l2(image, targets[v])
            loss = term if loss is None else loss + term
        dr.backward(loss)
        opt.step()
        losses.append(loss.item())
        errors.append(pose_error(opt["translation"], opt["angle"]))
        bar.set_postfix(loss=f"{losses[-1]:.5f}", dt=f"{errors[-1][0]:.3f}",
                        dphi=f"{errors[-1][1]:.3f}")

    with dr.suspend_grad():
        set_pose(opt["translation"], opt["angle"])
    final = [lg.render(scene, params, sensor=v, spp=ref_spp, seed=300 + v) for v in views]
    t = [float(opt["translation"][0][0]), float(opt["translation"][1][0])]
    phi = float(opt["angle"][0])
    print(f"pose: start t={list(START_POSE[:2])} φ={START_POSE[2]:.3f}; found "
          f"t={np.round(t, 4).tolist()} φ={phi:.4f}; true t={list(TRUE_POSE[:2])} "
          f"φ={TRUE_POSE[2]:.3f}")
    print(f"translation error {errors[0][0]:.4f} -> {errors[-1][0]:.4f}, "
          f"angle error {errors[0][1]:.4f} -> {errors[-1][1]:.4f} rad")
    out = args.output
    for v, name in zip(views, ("front", "side")):
        lg.write_image(os.path.join(out, f"target_{name}.png"), targets[v])
        lg.write_image(os.path.join(out, f"initial_{name}.png"), initial[v])
        lg.write_image(os.path.join(out, f"final_{name}.png"), final[v])
    lumigrad.viz.plot_losses(losses, os.path.join(out, "losses.png"), title="L2 loss, two views")
    lumigrad.viz.plot_losses([e[0] for e in errors], os.path.join(out, "translation_error.png"),
                             title="distance to the true position")
    lumigrad.viz.plot_losses([e[1] for e in errors], os.path.join(out, "angle_error.png"),
                             title="angle error (rad)")
    lumigrad.viz.side_by_side(initial + final + targets,
                              ["initial (front)", "initial (side)", "final (front)",
                               "final (side)", "target (front)", "target (side)"],
                              os.path.join(out, "before_after.png"))
    print(f"wrote {out}/losses.png, translation_error.png, angle_error.png, before_after.png")
    return {"losses": losses, "errors": errors, "translation": t, "angle": phi,
            "output": out}


if __name__ == "__main__":
    main()
