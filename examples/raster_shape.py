"""Inverse rendering with the rasterizer: deform an icosphere towards a target mesh.

Target images of a mesh (by default a rounded box: a cube whose corners are
pulled towards a sphere) are rendered from several viewpoints, each as a
silhouette and as a Blinn-Phong shaded image. Starting from an icosphere, all
vertex positions are optimised with Adam (``drjit.opt``) to match them, with
an edge-length regulariser (``TriangleMesh.edge_length_loss``) that keeps the
triangles even. Silhouette gradients come from analytic antialiasing (Laine et
al. 2020), which is what makes the outline move at all; the optimised shape is
saved as OBJ and PLY.

Run: ``python examples/raster_shape.py [--res 96] [--iters 300] [--out DIR]``.
"""
from __future__ import annotations

import argparse
import os

import drjit as dr
import numpy as np
from drjit.opt import Adam
from tqdm import tqdm

import lumigrad  # noqa: F401  (binds the variant)
from lumigrad.viz import save_before_after
from lumigrad.raster import (AnalyticAntialias, PerspectiveCamera, Pipeline, RasterizeThenSplat,
                             Resolve, SilhouetteShader, TriangleMesh)

#: viewpoints on a sphere of radius 3.2 around the object
VIEWS = [(3.2, 0.8, 0.0), (-3.2, 0.8, 0.3), (0.3, 0.8, 3.2), (0.0, 0.9, -3.2),
         (0.2, 3.2, 0.5), (1.8, -2.2, 1.8)]


def target_mesh() -> TriangleMesh:
    """A rounded box: icosphere vertices pushed towards the cube [-0.7, 0.7]^3."""
    m = TriangleMesh.example("icosphere", subdivisions=3)
    p = m.positions_numpy().astype(np.float64)
    cube = p / np.abs(p).max(axis=1, keepdims=True)  # radial projection on the cube
    q = (0.6 * cube + 0.4 * p) * 0.75
    m.vertex_positions = lumigrad.Float(q.astype(np.float32).ravel())
    return m


class SilhouetteView:
    """A silhouette image made from another pipeline's rasterizer buffers: the stages
    are plain objects wired by buffers, so a second shader can share one
    rasterization."""

    def __init__(self, pipe: Pipeline, discontinuity: str | None) -> None:
        self.shader = SilhouetteShader(pipe.rasterizer.triangle_id_buffer)
        self.stages = [self.shader]
        out = self.shader.output_buffer
        if discontinuity is not None:
            cls = AnalyticAntialias if discontinuity == "antialias" else RasterizeThenSplat
            self.stages.append(cls(out, pipe.rasterizer))
            out = self.stages[-1].output_buffer
        self.stages.append(Resolve(out))

    def forward(self):  # run after the shaded pipeline's forward()
        for st in self.stages:
            st.forward()
        return self.stages[-1].output_buffer.tensor


def make_views(mesh: TriangleMesh, resolution: int, discontinuity: str | None,
               n_views: int = len(VIEWS)) -> list:
    out = []
    for pos in VIEWS[:n_views]:
        up = (0.0, 0.0, 1.0) if abs(pos[1]) > 3 else (0.0, 1.0, 0.0)
        cam = PerspectiveCamera(position=pos, up=up, fov=40.0)
        shaded = Pipeline(resolution, mesh=mesh, camera=cam, discontinuity=discontinuity,
                          ambient_constant=0.2, diffuse_constant=0.8, specular_constant=0.0)
        shaded.light_array.set_light_direction(0, tuple(-np.asarray(pos)))  # a head light
        out.append((shaded, SilhouetteView(shaded, discontinuity)))
    return out


def render_all(views: list) -> list:
    return [(s.forward(), m.forward()) for s, m in views]


def main(resolution: int = 96, iterations: int = 300, lr: float = 0.01,
         edge_weight: float = 1.0, subdivisions: int = 3, out_dir: str = "raster_shape_out",
         discontinuity: str = "antialias", n_views: int = len(VIEWS), progress: bool = True,
         verbose: bool = True) -> dict:
    tgt = target_mesh()
    targets = [(lumigrad.TensorXf(a.numpy()), lumigrad.TensorXf(b.numpy()))
               for a, b in render_all(make_views(tgt, resolution, None, n_views))]
    mesh = TriangleMesh.example("icosphere", subdivisions=subdivisions)
    views = make_views(mesh, resolution, discontinuity, n_views)
    before = render_all(views)[0][0].numpy()

    def image_loss() -> object:
        total = 0.0
        for (shaded, sil), (ts, tm) in zip(views, targets):
            a = shaded.forward()
            b = sil.forward()
            total = total + dr.mean(dr.square(a.array - ts.array)) + \
                dr.mean(dr.square(b.array - tm.array))
        return total / len(views)

    opt = Adam(lr=lr)
    opt["vertex_positions"] = mesh.vertex_positions
    losses = []
    bar = tqdm(range(iterations), desc="shape", disable=not progress)
    for it in bar:
        mesh.vertex_positions = opt["vertex_positions"]
        loss = image_loss()
        reg = mesh.edge_length_loss()
        dr.backward(loss + edge_weight * reg)
        opt.step()
        losses.append(float(loss[0]))
        bar.set_postfix(loss=f"{losses[-1]:.3e}")
        if verbose and not progress and (it % 50 == 0 or it == iterations - 1):
            print(f"iteration {it:4d}: image loss {losses[-1]:.4e}")
    mesh.vertex_positions = dr.detach(opt["vertex_positions"])
    final = float(image_loss()[0])
    p, q = mesh.positions_numpy(), tgt.positions_numpy()
    # the same vertex ordering: mean distance to the target's corresponding vertices
    vertex_error = float(np.linalg.norm(p - q, axis=1).mean()) if len(p) == len(q) else None
    if out_dir:
        save_before_after(out_dir, targets[0][0], before, views[0][0].forward())
        mesh.write_obj(os.path.join(out_dir, "optimized.obj"))
        mesh.write_ply(os.path.join(out_dir, "optimized.ply"))
    result = {"losses": losses, "initial_loss": losses[0] if losses else final,
              "final_loss": final, "vertex_error": vertex_error}
    if verbose:
        print(f"image loss {result['initial_loss']:.4e} -> {final:.4e} "
              f"(x{result['initial_loss'] / max(final, 1e-30):.1f} lower)"
              + (f"; mean vertex distance to the target {vertex_error:.4f}"
                 if vertex_error is not None else ""))
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--res", type=int, default=96)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--edge-weight", type=float, default=1.0)
    ap.add_argument("--out", default="raster_shape_out")
    ap.add_argument("--discontinuity", default="antialias", choices=["antialias", "splat"])
    a = ap.parse_args()
    main(a.res, a.iters, a.lr, a.edge_weight, out_dir=a.out, discontinuity=a.discontinuity)
