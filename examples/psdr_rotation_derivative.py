"""PSDR-CUDA's first differentiable-rendering workflow, with lumigrad.

1. A derivative image with respect to the rotation angle ``P`` of the first
   mesh (``Mesh[0]``) about the Z axis: a rotation matrix built from a
   grad-enabled ``Float`` is left-multiplied onto ``params['Mesh[0].to_world']``,
   the scene is rendered with direct illumination and ``dr.forward(P)`` gives
   ``dr.grad(image)``.
2. (PSDR's second workflow) the gradient of an RMSE image loss with respect to
   all vertex positions of ``Mesh[0]`` (reverse mode).

Such derivatives are dominated by silhouettes and shadow edges, which need
explicit boundary terms. lumigrad does not add them yet: it warns, and the
result holds only the interior (shading) part — the change of shading on the
rotating faces — not the motion of the edges.

Run: ``python examples/psdr_rotation_derivative.py [--scene scene.xml] [--res 128]
[--spp 64] [--output out/psdr_rotation_derivative]`` (without ``--scene``, a
built-in scene: a tilted cube in front of a wall, lit by an area light).
"""
from __future__ import annotations

import argparse
import os
import warnings
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
    ap.add_argument("--output", default=os.path.join("out", "psdr_rotation_derivative"))
    return ap.parse_args(argv)


def _render_reporting_warnings(scene, params, **kw):
    """Render; print lumigrad's boundary-term warning prominently."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = lg.render(scene, params, **kw)
    for w in caught:
        if "boundary" in str(w.message):
            print("WARNING (incomplete derivative): " + str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return image, caught


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    os.makedirs(args.output, exist_ok=True)
    scene = (lg.load_file(args.scene, res=args.res) if args.scene
             else lg.load_dict(builtin_scene(args.res)))
    integrator = DirectIntegrator()
    params = lg.traverse(scene)
    print(f"Mesh[0] is {params['Mesh[0]']!r}")
    base = params["Mesh[0].to_world"]

    # -- 1. derivative image w.r.t. the rotation angle P about Z (forward mode) ----------
    P = lg.Float(0.0)
    dr.enable_grad(P)
    mat = lg.rotation_matrix_rad([0.0, 0.0, 1.0], P)
    # Left-multiply the rotation onto the to-world transform of the first mesh
    params["Mesh[0].to_world"] = T(mat) @ params["Mesh[0].to_world"]
    params.update()
    image, caught = _render_reporting_warnings(scene, params, spp=args.spp,
                                               integrator=integrator)
    dr.forward(P)
    image_deriv = dr.grad(image)
    deriv = np.array(image_deriv)
    print(f"derivative image w.r.t. P: range [{deriv.min():.4f}, {deriv.max():.4f}], "
          f"all finite: {bool(np.isfinite(deriv).all())}")
    out = args.output
    lg.write_image(os.path.join(out, "image.png"), image)
    lg.write_image(os.path.join(out, "image_deriv.exr"), image_deriv)
    lumigrad.viz.save_derivative_image(
        image_deriv, os.path.join(out, "image_deriv.png"),
        title="d image / d P (rotation about Z; interior part only)")

    # -- 2. gradient of an RMSE loss w.r.t. all vertex positions (reverse mode) --------
    # target: the mesh turned by 0.1 rad
    params["Mesh[0].to_world"] = T(lg.rotation_matrix_rad([0.0, 0.0, 1.0], 0.1)) @ base
    params.update()
    target_image = lg.render(scene, params, spp=4 * args.spp, seed=1, integrator=integrator)
    params["Mesh[0].to_world"] = base
    params.update()
    vp = params["Mesh[0].vertex_positions"]
    dr.enable_grad(vp)
    image, _ = _render_reporting_warnings(scene, params, spp=args.spp, seed=2,
                                          integrator=integrator)
    loss = lg.rmse(image, target_image)
    dr.backward(loss)
    grad = np.array(dr.grad(vp)).reshape(-1, 3)
    dr.disable_grad(vp)
    print(f"RMSE loss {loss.item():.5f}; gradient w.r.t. {grad.shape[0]} vertex positions: "
          f"norm {np.linalg.norm(grad):.4g}, all finite: {bool(np.isfinite(grad).all())}")
    print(f"wrote {out}/image.png, image_deriv.png, image_deriv.exr")
    return {"image": np.array(image), "image_deriv": deriv, "vertex_grad": grad,
            "warnings": [str(w.message) for w in caught]}


if __name__ == "__main__":
    main()
