"""A smooth-shaded concave mesh that sees itself, path traced (a former bias).

    python benchmarks/repro_smooth_interreflection.py            # smooth torus: 0.015
    python benchmarks/repro_smooth_interreflection.py --flat     # face normals
    python benchmarks/repro_smooth_interreflection.py --depth 2  # direct light only: 0.016

A torus (48 x 24 quads, vertex normals) lit by a point light, no other surface,
``path`` with ``max_depth`` 3; the camera translates along x. Prints the
block relative L1 error (8x8 blocks, 32² film) of lumigrad's derivative image
against central finite differences (common random numbers), and, per 8x8 block
of the torus, the part of the finite differences that the interior term does
not explain (measured sample by sample: FD of the interior estimator with its
samples held fixed, minus its forward-mode derivative) beside the boundary
terms that should explain it.

Status (2026-12-07): fixed, 0.057 -> 0.015 (depth 2: 0.063 -> 0.016). What was
missing is the horizon of smooth shading (``boundary/horizons.py``): light
below a face's plane is blocked by the surface itself while the interpolated
normal still sees it, so the radiance jumps across every smooth edge by the
light through the lune between its faces' planes (here: whether the point
light lies in it, and the torus's own light through it), and those edges move.
The hunt below looked at silhouettes, rims and their velocities, never at edges
whose two faces both face the camera.

Status (2026-12-06, end of the night session): the main cause was found and
fixed: shading rims seen from path vertices (``boundary/vertex_rims.py``) are
discontinuities of the indirect light, and they must be seen from the vertex's
*spawned* ray origin (1e-4 off the surface): rims are met at grazing angles,
where that offset moves the hit point across them. 0.366 -> 0.079 (the
horizon term of branch ``wip/smooth-indirect-terms`` adds nothing: 0.082). A
bias of ~0.07 remains. The history of the hunt follows.

What was known before the fix: the interior term agrees with its sample-wise
finite differences lane by lane; with ``max_depth`` 2 the boundary terms
match that part; with one indirect bounce the indirect term is about a third
of what is missing, on smooth concave meshes only (flat-shaded torus, smooth
convex sphere: right). A 4x finer torus: 0.30 -> 0.21. Tried without effect:
shading rims and the geometric horizon seen from path vertices (branch
``wip/smooth-indirect-terms``), smooth edges as candidates of the primary and
vertex-first samples, the shading normal in the vertex-first edge target,
no contact exclusion (``CONTACT_OFFSETS = 0``), the side-ray offset, a
terminator (light-silhouette) candidate for smooth edges, no pass-ray test.

Sample-wise classification of the indirect part (depth 3 minus depth 2, 4 x
512 spp, eps 2e-3; a debug copy of ``pathgeo.trace`` returned each lane's
first two triangles, visibility and spawn side at ±eps): the lanes whose ray
from the first vertex switches between hitting the torus and escaping (its own
silhouettes seen from a point on it, same first triangle, no spawn-side flip)
carry +1.80 (image sum) of the derivative; the indirect term gives 0.40
(4 x 4096 spp, vertex-first and edge-first agree: 0.19 vertex-first alone at
1024 spp). Flat torus: the same class carries +0.34 (169 lanes against 786:
with smooth normals the sliding first vertex turns its shading frame, ~5
rad per unit, and sweeps its rays across those silhouettes). The estimators'
candidate edges, jumps (``L_pass - L_face``) and velocities are where to look.

Vertex-first samples taken outside the loop at the camera-visible points (64
spp): smooth: 2395 candidates, 899 pass the pass-ray test, 756 have f > 0, and
in 630 of those ``L_face == L_pass`` (the face side lies in the dark shading
rim seen from x); flat: 1039 with f > 0, 217 equal. The rim samples of the
WIP branch find a crossing in 938 of 3655 triangles, 326 visible from x, and
a non-zero jump in 12 (the rims lie on unlit parts). Camera-visible smooth
points see their own neighbourhood at grazing angles where ``f cos θ`` does not
vanish (it does for flat shading); the edges of the vertex's own triangle are
never candidates there (zero target, ``touches``) — allowing them (target with
the shading normal, no contact test) did not change the error either.
Also without effect: 64 instead of 4 resampling candidates per vertex-first
edge sample (vertex-first alone: 0.364), another tangent-frame construction
(``coordinate_system`` replaced: 0.372), i.e. neither candidate coverage nor the
frame's twist explains it. Derivatives w.r.t. ``vertex_normals`` alone: the boundary terms are not enabled
(``moves_geometry`` looks at positions only) — 0.059 with the standard
estimator at depth 3; enabling them switches to ``pathgeo`` and gives 0.17.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import drjit as dr
import numpy as np

import lumigrad as lg
from lumigrad.integrators import pathgeo
from lumigrad.integrators.boundary import TERM_NAMES

T = lg.Transform4f


def torus_obj(path: Path, n_major: int = 48, n_minor: int = 24) -> None:
    """A torus (R = 1, r = 0.35) with its exact normals as vertex normals."""
    u = np.arange(n_major) / n_major * 2 * np.pi
    w = np.arange(n_minor) / n_minor * 2 * np.pi
    U, W = np.meshgrid(u, w, indexing="ij")
    p = np.stack([(1 + 0.35 * np.cos(W)) * np.cos(U), 0.35 * np.sin(W),
                  (1 + 0.35 * np.cos(W)) * np.sin(U)], -1).reshape(-1, 3)
    n = np.stack([np.cos(W) * np.cos(U), np.sin(W), np.cos(W) * np.sin(U)], -1).reshape(-1, 3)
    i, j = np.arange(n_major)[:, None], np.arange(n_minor)[None, :]
    a, b = i * n_minor + j, (i + 1) % n_major * n_minor + j
    c, d = (i + 1) % n_major * n_minor + (j + 1) % n_minor, i * n_minor + (j + 1) % n_minor
    f = np.concatenate([np.stack([a, d, c], -1).reshape(-1, 3),
                        np.stack([a, c, b], -1).reshape(-1, 3)]) + 1
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in p]
    lines += [f"vn {x:.6f} {y:.6f} {z:.6f}" for x, y, z in n]
    lines += [f"f {x}//{x} {y}//{y} {z}//{z}" for x, y, z in f]
    path.write_text("\n".join(lines) + "\n")


def scene_dict(obj: Path, depth: int, flat: bool) -> dict:
    return {
        "type": "scene", "integrator": {"type": "path", "max_depth": depth},
        "sensor": {"type": "perspective", "fov": 40,
                   "to_world": T().look_at(origin=[0, 0.3, 4], target=[0, 0, 0], up=[0, 1, 0]),
                   "film": {"type": "hdrfilm", "width": 32, "height": 32,
                            "rfilter": {"type": "box"}}},
        "torus": {"type": "obj", "filename": str(obj), "face_normals": flat,
                  "to_world": T().rotate([1, 0, 0], 60).scale(0.6),
                  "bsdf": {"type": "diffuse", "reflectance": {"type": "rgb",
                                                              "value": [0.8, 0.4, 0.1]}}},
        "light": {"type": "point", "position": [1.2, 1.8, 2.0],
                  "intensity": {"type": "rgb", "value": [5.0, 5.0, 5.0]}},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flat", action="store_true")
    ap.add_argument("--depth", type=int, default=3)
    a = ap.parse_args()
    obj = Path(tempfile.mkdtemp()) / "torus.obj"
    torus_obj(obj)
    scene = lg.load_dict(scene_dict(obj, a.depth, a.flat))
    params = lg.traverse(scene)
    key = "sensor.to_world"
    base = params[key]

    def at(x):
        return T().translate([x, 0.0, 0.0]) @ base

    def assign(x):
        params[key] = at(x)
        params.update()
    fd = np.mean([lg.central_difference_image(scene, assign, 5e-3, spp=16384, seed=s)
                  for s in range(4)], axis=0)
    theta = lg.Float(0.0)
    dr.enable_grad(theta)
    params[key] = at(theta)
    params.update()
    terms = {t: np.mean([np.array(lg.derivative_image(scene, theta, spp=2048, seed=s,
                                                      params=params, terms=[t]))
                         for s in (1, 2)], axis=0) for t in TERM_NAMES}
    print(f"block relative L1 against FD: {lg.block_relative_l1(sum(terms.values()), fd):.3f}")
    params[key] = base
    params.update()

    # The part of the FD that the interior does not explain, sample by sample.
    integ, sensor = scene.integrator, scene.sensors[0]

    def lanes(x, forward=False):
        theta = lg.Float(x)
        dr.enable_grad(theta)
        params[key] = at(theta)
        params.update()
        with integ.derivative_estimator(scene, sensor):
            with dr.suspend_grad():
                rng, pixel, _, _, _ = integ._camera_rays(scene, sensor, 7, 0, 1024)
                pos = integ._last_film_pos
            with dr.resume_grad(when=forward):
                L = pathgeo.trace(integ, scene, rng, sensor, pos,
                                  "forward" if forward else "primal", edges=False)
                s = L[0] + L[1] + L[2]
                if forward:
                    dr.set_grad(theta, 1.0)
                    dr.forward_to(s)
                    s = dr.grad(s)
        return np.array(s, dtype=np.float64), np.array(pixel)
    eps = 2e-3
    (lp, pix), (lm, _), (ad, _) = lanes(eps), lanes(-eps), lanes(0.0, forward=True)
    part = np.zeros(32 * 32)
    np.add.at(part, pix, ((lp - lm) / (2 * eps) - ad) / 1024)
    blocks = lambda img: img.reshape(4, 8, 4, 8).mean(axis=(1, 3))[1:3, 1:3]  # noqa: E731
    np.set_printoptions(precision=3, suppress=True)
    print("FD minus interior (the boundary terms' share), central blocks:\n",
          blocks(part.reshape(32, 32)))
    for t in TERM_NAMES[1:]:
        print(f"{t} term:\n", blocks(terms[t].sum(-1)))


if __name__ == "__main__":
    main()
