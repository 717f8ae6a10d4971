"""PSDR-CUDA's two differentiable-rendering workflows, with lumigrad.

1. A derivative image with respect to the rotation angle ``P`` of the first
   mesh (``Mesh[0]``) about the Z axis, with direct illumination (forward
   mode): a rotation built from a grad-enabled ``Float`` is left-multiplied onto
   ``params['Mesh[0].to_world']``, the scene is rendered and ``dr.forward(P)``
   gives ``dr.grad(image)``. It is split into its interior part (what automatic
   differentiation of the renderer gives) and its boundary part (silhouettes,
   creases and shadow edges moving over the image), and compared with central
   finite differences.
2. The gradient of an RMSE image loss with respect to all vertex positions of
   ``Mesh[0]`` (reverse mode), checked along a random direction against finite
   differences of the loss.

Run: ``python examples/psdr_rotation_derivative.py [--scene scene.xml] [--res 128]
[--spp 64] [--output out/psdr_rotation_derivative]`` (without ``--scene``, a
built-in scene: a tilted cube in front of a wall, lit by an area light; with
``--scene``, Mesh[0] turns about the Z axis through its centre).
"""
from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

import drjit as dr
import numpy as np

import lumigrad as lg
import lumigrad.viz
from lumigrad.integrators.path import DirectIntegrator

T = lg.Transform4f


def builtin_scene(res: int) -> dict:
    """``Mesh[0]`` is a cube at the origin (so a rotation about Z turns it in place)."""
    return {
        "type": "scene",
        "sensor": {"type": "perspective", "fov": 35,
                   "to_world": T().look_at(origin=[0, 0, 4], target=[0, 0, 0], up=[0, 1, 0]),
                   "film": {"type": "hdrfilm", "width": res, "height": res}},
        "grey": {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.6, 0.6, 0.6]}},
        "orange": {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.8, 0.4, 0.1]}},
        "cube": {"type": "cube",
                 "to_world": T().rotate([1, 0, 0], 25).rotate([0, 1, 0], 35).scale(0.45),
                 "bsdf": {"type": "ref", "id": "orange"}},
        "wall": {"type": "rectangle", "to_world": T().translate([0, 0, -1.5]).scale(3.0),
                 "bsdf": {"type": "ref", "id": "grey"}},
        "light": {"type": "rectangle",
                  "to_world": T().look_at(origin=[1.5, 2.0, 2.5], target=[0, 0, 0],
                                          up=[0, 1, 0]).scale(0.5),
                  "emitter": {"type": "area", "radiance": {"type": "rgb",
                                                           "value": [12.0, 12.0, 12.0]}}},
    }


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scene", default=None, help="a Mitsuba XML scene (Mesh[0] is rotated)")
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--spp", type=int, default=64)
    ap.add_argument("--fd-spp", type=int, default=None,
                    help="samples of the finite-difference reference (default 32 x spp)")
    ap.add_argument("--output", default=os.path.join("out", "psdr_rotation_derivative"))
    return ap.parse_args(argv)


def rotation_about_z(angle, centre) -> lg.Transform4f:
    """A rotation by ``angle`` (radians) about the Z axis through ``centre``."""
    c = [float(x) for x in centre]
    return T().translate(c) @ T(lg.rotation_matrix_rad([0.0, 0.0, 1.0], angle)) @ \
        T().translate([-c[0], -c[1], -c[2]])


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    scene = (lg.load_file(args.scene, res=args.res) if args.scene
             else lg.load_dict(builtin_scene(args.res)))
    integrator = DirectIntegrator()
    params = lg.traverse(scene)
    mesh = params["Mesh[0]"]
    print(f"Mesh[0] is {mesh!r}")
    base = params["Mesh[0].to_world"]
    centre = mesh.positions_numpy().mean(axis=0)
    fd_spp = args.fd_spp or 32 * args.spp

    # -- 1. derivative image w.r.t. the rotation angle P about Z (forward mode) ----------
    # PSDR: P = FloatD(0.); mat = Matrix4fD.rotate(Vector3fD(0., 0., 1.), P)
    P = lg.Float(0.0)
    dr.enable_grad(P)
    mat = rotation_about_z(P, centre)
    # Left-multiply the matrix onto the to-world transformation of the first mesh
    params["Mesh[0].to_world"] = mat @ params["Mesh[0].to_world"]
    # Configure the scene
    params.update()
    # Render, then the derivative image w.r.t. P (forward mode)
    image = lg.render(scene, params, spp=args.spp, integrator=integrator)
    dr.forward(P)
    image_deriv = dr.grad(image)
    deriv = np.array(image_deriv)

    # The same derivative in parts (same samples: they add up to image_deriv).
    # (dr.forward consumed the graph from P to the scene: build it again.)
    params["Mesh[0].to_world"] = rotation_about_z(P, centre) @ base
    params.update()
    parts = {name: np.array(lg.derivative_image(scene, P, spp=args.spp, params=params,
                                                integrator=integrator, terms=terms))
             for name, terms in (("interior", ("interior",)),
                                 ("boundary", ("primary", "shadow", "indirect")))}

    def assign(x: float) -> None:
        params["Mesh[0].to_world"] = rotation_about_z(x, centre) @ base
        params.update()

    fd = lg.central_difference_image(scene, assign, eps=2e-3, spp=fd_spp, seed=7,
                                     integrator=integrator)
    err = lg.block_relative_l1(deriv, fd)
    err_interior = lg.block_relative_l1(parts["interior"], fd)
    print(f"derivative image w.r.t. P: block relative L1 against finite differences "
          f"{err:.3f} (interior part alone: {err_interior:.3f})")
    out = args.output
    lg.write_image(os.path.join(out, "image.png"), image)
    lg.write_image(os.path.join(out, "image_deriv.exr"), image_deriv)
    lumigrad.viz.save_derivative_image(image_deriv, os.path.join(out, "image_deriv.png"),
                                       title="d image / d P (rotation about Z)")
    lumigrad.viz.derivative_row(
        [parts["interior"], parts["boundary"], deriv, fd],
        ["interior", "boundary", "total", "finite differences"],
        os.path.join(out, "interior_boundary_total_fd.png"))

    # -- 2. gradient of an RMSE loss w.r.t. all vertex positions (reverse mode) --------
    # target: the mesh turned by 0.1 rad
    assign(0.1)
    target_image = lg.render(scene, params, spp=4 * args.spp, seed=1, integrator=integrator)
    assign(0.0)
    # PSDR: enable gradients on scene.param_map["Mesh[0]"].vertex_positions
    vp = params["Mesh[0].vertex_positions"]
    dr.enable_grad(vp)
    params.update()
    # (The primal image has the finite differences' samples, so that both
    # differentiate the same loss; the derivative passes have 4 spp.)
    image = lg.render(scene, params, spp=fd_spp, seed=2, seed_grad=3, spp_grad=4 * args.spp,
                      integrator=integrator)
    loss = lg.rmse(image, target_image)
    dr.backward(loss)
    grad = np.array(dr.grad(vp)).reshape(-1, 3)
    dr.disable_grad(vp)
    # Check along a random direction u of all vertices: <grad, u> against the
    # forward-mode derivative of the loss (the same samples: equal up to rounding)
    # and against finite differences of the loss (common random numbers; noisy).
    # (Copies of one vertex, in meshes split per face, move together: tearing the
    # mesh open at a seam has no derivative, only one-sided ones.)
    from lumigrad.geometry.edges import weld_by_position
    weld = weld_by_position(np.array(vp).reshape(-1, 3))
    u = np.random.default_rng(0).standard_normal(grad.shape)[weld]
    u /= np.linalg.norm(u)
    v0 = np.array(vp, dtype=np.float64).ravel()
    eps = 1e-3 * float(np.abs(v0).max())
    theta = lg.Float(0.0)
    dr.enable_grad(theta)
    params["Mesh[0].vertex_positions"] = lg.Float(v0.astype(np.float32)) + \
        lg.Float(u.ravel().astype(np.float32)) * theta
    params.update()
    loss_fwd = lg.rmse(lg.render(scene, params, spp=fd_spp, seed=2, seed_grad=3,
                                 spp_grad=4 * args.spp, integrator=integrator), target_image)
    dr.forward(theta)
    fwd_dir = float(dr.grad(loss_fwd).array[0])

    def loss_at(x: float) -> float:
        params["Mesh[0].vertex_positions"] = lg.Float((v0 + x * u.ravel()).astype(np.float32))
        params.update()
        return float(lg.rmse(lg.render(scene, params, spp=fd_spp, seed=2,
                                       integrator=integrator), target_image).array[0])
    fd_dir = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    loss_at(0.0)
    g_dir = float((grad * u).sum())
    print(f"RMSE loss {loss.item():.5f}; gradient w.r.t. {grad.shape[0]} vertex positions: "
          f"<grad, u> = {g_dir:.5g}; forward mode along u {fwd_dir:.5g}; "
          f"finite differences {fd_dir:.5g}")
    print(f"wrote {out}/image.png, image_deriv.png, image_deriv.exr, "
          f"interior_boundary_total_fd.png")
    return {"image": np.array(image), "image_deriv": deriv, "parts": parts, "fd": fd,
            "error": err, "error_interior": err_interior, "vertex_grad": grad,
            "grad_dot_u": g_dir, "forward_dot_u": fwd_dir, "fd_dot_u": fd_dir}


if __name__ == "__main__":
    main()
