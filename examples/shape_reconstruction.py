"""Recover a shape from photographs: every vertex of a mesh, by gradient descent.

The "photographs" are renders of a target object (a lumpy, squashed sphere:
6k triangles) from six cameras around it, lit by a sun and a sky. The
optimisation starts from a plain sphere (1280 triangles, other vertices than
the target's) and moves all its vertices to minimise the L1 error of the six
views. Silhouettes and shadow lines carry most of the information, and their
derivatives are the boundary terms of ``lumigrad.integrators.boundary``.
Vertices are optimised in the "large steps" parametrisation of Nicolet et al.
2021 (``lg.LargeSteps``: ``x = (I + λL)⁻¹ u``, with UniformAdam): plain
steps on the positions tangle the mesh.

Prints the loss and the mean distance of the mesh's vertices to the target
surface (in units of the target's mean radius); writes the
curves, two views (start / result / target) and the final mesh (PLY) into
``--output``.

Run: ``python examples/shape_reconstruction.py [--res 64] [--spp 4]
[--iterations 150] [--output out/shape_reconstruction]``
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
from lumigrad.geometry import meshio, primitives

T = lg.Transform4f


def target_mesh(subdivisions: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A lumpy, squashed sphere (an icosphere, displaced); ``subdivisions=6``
    gives 41k points of its surface for measuring distances to it."""
    m = primitives.icosphere(subdivisions)
    d = m.positions
    r = 1.0 + 0.18 * np.sin(3.0 * d[:, 0] + 1.0) * np.cos(2.0 * d[:, 1]) \
        + 0.12 * np.sin(4.0 * d[:, 2] + 0.5 * d[:, 0])
    return (d * r[:, None] * np.array([0.75, 0.55, 0.65])).astype(np.float32), m.faces


def start_mesh() -> tuple[np.ndarray, np.ndarray]:
    m = primitives.icosphere(3, radius=0.55)
    return m.positions.astype(np.float32), m.faces


def scene_dict(res: int, mesh_file: str) -> dict:
    def camera(azimuth: float, elevation: float) -> dict:
        a, e = np.radians(azimuth), np.radians(elevation)
        origin = 3.2 * np.array([np.cos(e) * np.sin(a), np.sin(e), np.cos(e) * np.cos(a)])
        return {"type": "perspective", "fov": 35,
                "to_world": T().look_at(origin=origin.tolist(), target=[0, 0, 0], up=[0, 1, 0]),
                "film": {"type": "hdrfilm", "width": res, "height": res,
                         "rfilter": {"type": "box"}}}
    views = {f"view{i}": camera(az, el) for i, (az, el) in
             enumerate([(0, 15), (60, -10), (120, 25), (180, 0), (240, 30), (300, -20)])}
    return dict({
        "type": "scene",
        "integrator": {"type": "direct"},
        "obj": {"type": "ply", "filename": mesh_file, "face_normals": True,
                "bsdf": {"type": "diffuse", "reflectance": {"type": "rgb",
                                                            "value": [0.7, 0.6, 0.5]}}},
        "sun": {"type": "directional", "direction": [-0.6, -1.0, -0.4],
                "irradiance": {"type": "rgb", "value": [2.5, 2.4, 2.2]}},
        "sky": {"type": "constant", "radiance": {"type": "rgb", "value": [0.35, 0.4, 0.5]}},
    }, **views)


def surface_distance(points: np.ndarray, surface: np.ndarray) -> float:
    """Mean distance from ``points`` to the nearest of the dense ``surface``
    samples (in chunks: a few hundred MB at most)."""
    q2 = np.sum(surface * surface, 1)
    out = []
    for chunk in np.array_split(points, max(1, len(points) // 256)):
        d2 = np.sum(chunk * chunk, 1)[:, None] + q2[None, :] - 2.0 * chunk @ surface.T
        out.append(np.sqrt(np.maximum(d2.min(1), 0.0)))
    return float(np.concatenate(out).mean())


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--spp", type=int, default=4, help="samples per pixel per view and step")
    ap.add_argument("--iterations", type=int, default=150)
    ap.add_argument("--lr", type=float, default=0.05, help="UniformAdam learning rate")
    ap.add_argument("--smoothness", type=float, default=20.0, help="λ of lg.LargeSteps")
    ap.add_argument("--output", default=os.path.join("out", "shape_reconstruction"))
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    tgt_v, tgt_f = target_mesh()
    start_v, start_f = start_mesh()
    meshio.write_ply(os.path.join(args.output, "target.ply"), tgt_v, tgt_f)
    meshio.write_ply(os.path.join(args.output, "start.ply"), start_v, start_f)

    target_scene = lg.load_dict(scene_dict(args.res, os.path.join(args.output, "target.ply")))
    views = range(len(target_scene.sensors))
    targets = [lg.render(target_scene, sensor=v, spp=16 * args.spp, seed=100 + v) for v in views]

    scene = lg.load_dict(scene_dict(args.res, os.path.join(args.output, "start.ply")))
    params = lg.traverse(scene)
    key = "obj.vertex_positions"
    steps = lg.LargeSteps(params[key], params["obj.faces"], args.smoothness)
    opt = dr.opt.Adam(lr=args.lr, uniform=True)
    opt["u"] = steps.to_differential(params[key])
    initial = [lg.render(scene, sensor=v, spp=16 * args.spp, seed=200 + v) for v in views]

    dense = target_mesh(6)[0].astype(np.float64)

    def distance() -> float:
        """The mesh's vertices to the target surface, in units of its mean radius."""
        return surface_distance(np.array(params[key]).reshape(-1, 3), dense) / 0.65

    losses, distances = [], [distance()]
    bar = tqdm(range(args.iterations), disable=args.quiet, desc="optimising", unit="it")
    for it in bar:
        params[key] = steps.from_differential(opt["u"])
        params.update()
        loss = None
        for v in views:
            image = lg.render(scene, params, sensor=v, spp=args.spp, seed=len(views) * it + v)
            term = lg.l1(image, targets[v])
            loss = term if loss is None else loss + term
        dr.backward(loss)
        opt.step()
        losses.append(loss.item() / len(views))
        with dr.suspend_grad():
            params[key] = steps.from_differential(opt["u"])
            params.update()
        distances.append(distance())
        bar.set_postfix(loss=f"{losses[-1]:.4f}", distance=f"{distances[-1]:.4f}")

    final_v = np.array(params[key]).reshape(-1, 3)
    meshio.write_ply(os.path.join(args.output, "result.ply"), final_v.astype(np.float32),
                     start_f)
    finals = [lg.render(scene, sensor=v, spp=16 * args.spp, seed=300 + v) for v in views]
    out = args.output
    lumigrad.viz.plot_losses(losses, os.path.join(out, "losses.png"), title="L1 loss per view")
    lumigrad.viz.plot_losses(distances, os.path.join(out, "distance.png"),
                             title="distance to the target surface (of its radius)")
    for v in (0, 2):
        lumigrad.viz.side_by_side([initial[v], finals[v], targets[v]],
                                  ["start", "result", "target"],
                                  os.path.join(out, f"view{v}.png"))
    if not args.quiet:
        print(f"distance to the target surface: {distances[0]:.4f} -> {distances[-1]:.4f} "
              f"(of its radius); loss {losses[0]:.4f} -> {losses[-1]:.4f}")
        print(f"wrote {out}/losses.png, distance.png, view0.png, view2.png, result.ply")
    return {"losses": losses, "distances": distances}


if __name__ == "__main__":
    main()
