"""Geometry, light-position and camera derivatives where no edge moves, and
derivatives on degenerate geometry / grazing angles (no NaN, no inf).

``open_floor``: a camera looking straight down at a large diffuse floor lit by a
point light, with nothing else in the scene. No silhouette or shadow edge is
visible, so the derivative with respect to the floor's vertices, its
``to_world``, the light's position or the camera is entirely the interior
(shading) part — which lumigrad computes — and must match finite differences
with common random numbers to O(ε²), exactly as for colours.
"""
from __future__ import annotations

import drjit as dr
import numpy as np
import pytest

import lumigrad as lg
from lumigrad.geometry.meshio import write_obj

from .conftest import flat, grad_leaves

RES = 16
T = lg.Transform4f

pytestmark = pytest.mark.filterwarnings("ignore:derivatives with respect to")


@pytest.fixture(scope="module")
def open_floor():
    return lg.load_dict({
        "type": "scene",
        "integrator": {"type": "direct"},
        "sensor": {"type": "perspective", "fov": 40,
                   "to_world": T().look_at(origin=[0, 2, 0.01], target=[0, 0, 0],
                                           up=[0, 0, -1]),
                   "film": {"type": "hdrfilm", "width": RES, "height": RES,
                            "rfilter": {"type": "box"}}},
        "matte": {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.5, 0.4, 0.3]}},
        "floor": {"type": "rectangle", "to_world": T().rotate([1, 0, 0], -90).scale(3.0),
                  "bsdf": {"type": "ref", "id": "matte"}},
        "lamp": {"type": "point", "position": [0.3, 1.0, 0.2],
                 "intensity": {"type": "rgb", "value": [2.0, 2.0, 2.0]}},
    })


def _assert_agrees(rep: lg.GradientReport, min_scale: float = 0.01) -> None:
    assert rep.finite, str(rep)
    assert rep.scale > min_scale, str(rep)
    assert max(rep.forward_vs_fd) < 2e-3, str(rep)
    # Forward and reverse compute the same per-sample derivatives and differ only by
    # float32 summation order: the worst case for N = 3 * RES^2 * spp ~ 3000 terms
    # is about N * 2^-24 ~ 2e-4 (cancelling terms for the tilt), typically far less.
    assert rep.reverse_vs_forward < 1e-4, str(rep)
    assert rep.reverse_vs_fd < 2e-3, str(rep)


@pytest.mark.parametrize("direction", [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
def test_point_light_position(open_floor, direction):
    """Moving the light changes the direction *and* the distance to it at every
    shading point (cos θ / r²): both parts must be differentiated."""
    rep = lg.check_gradient(open_floor, "lamp.position", spp=4, direction=direction, eps=0.01)
    _assert_agrees(rep)


def _floor_vertices(scene) -> np.ndarray:
    return np.array(lg.traverse(scene)["floor.vertex_positions"], dtype=np.float64).reshape(-1, 3)


@pytest.mark.parametrize("motion", ["lift", "tilt"])
def test_vertex_positions_interior(open_floor, motion):
    """Lift the floor (hit points slide along the camera rays, r and cos θ at the
    light change) or tilt it about z (normals change too)."""
    v = _floor_vertices(open_floor)
    if motion == "lift":
        d = np.zeros_like(v)
        d[:, 1] = 1.0
    else:
        d = v @ np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]).T
    rep = lg.check_gradient(open_floor, "floor.vertex_positions", spp=4,
                            direction=d.ravel(), eps=0.01)
    _assert_agrees(rep)


def test_to_world_translation_interior(open_floor):
    """``floor.to_world`` (a Transform4f key): lift by a translation.
    The direction is given as a row-major 4x4 matrix (translation in [1, 3])."""
    m = np.zeros((4, 4))
    m[1, 3] = 1.0
    rep = lg.check_gradient(open_floor, "floor.to_world", spp=4, direction=m.ravel(), eps=0.01)
    _assert_agrees(rep)


def test_to_world_rotation_latent_angle(open_floor):
    """PSDR style: a rotation about z by angle P left-multiplied onto the floor's
    to_world; forward and reverse derivative w.r.t. P against finite differences."""
    params = lg.traverse(open_floor)
    base = params["floor.to_world"]

    def image_at(angle) -> lg.TensorXf:
        params["floor.to_world"] = T(lg.rotation_matrix_rad([0, 0, 1], angle)) @ base
        params.update()
        return lg.render(open_floor, params, spp=4, seed=2, seed_grad=2)

    try:
        eps = 0.01
        fd = (np.array(image_at(eps), dtype=np.float64) -
              np.array(image_at(-eps), dtype=np.float64)) / (2 * eps)
        P = lg.Float(0.0)
        dr.enable_grad(P)
        image = image_at(P)
        dr.forward(P)
        fwd = np.array(dr.grad(image), dtype=np.float64)
        P2 = lg.Float(0.0)
        dr.enable_grad(P2)
        image = image_at(P2)
        dr.backward(dr.sum(image, axis=None))
        rev = float(dr.grad(P2)[0])
    finally:
        params["floor.to_world"] = base
        params.update()
    assert np.abs(fd).max() > 0.01
    assert np.abs(fwd - fd).max() < 2e-3 * np.abs(fd).max()
    assert rev == pytest.approx(fwd.sum(), rel=1e-4)


@pytest.mark.parametrize("key, direction", [
    ("sensor.x_fov", None),
    ("sensor.to_world", "translate_x"),
])
def test_camera_interior(open_floor, key, direction):
    """Zooming or moving the camera over an edge-free floor: the image changes
    smoothly (the hit points move under the pixels), the derivative is all
    interior."""
    if direction == "translate_x":
        m = np.zeros((4, 4))
        m[0, 3] = 1.0
        direction = m.ravel()
    # (x_fov is in degrees: the image changes by ~0.7 % per degree here)
    eps, min_scale = (0.1, 1e-3) if key == "sensor.x_fov" else (0.01, 0.01)
    rep = lg.check_gradient(open_floor, key, spp=4, direction=direction, eps=eps)
    _assert_agrees(rep, min_scale)


# -- degenerate geometry and grazing angles -----------------------------------------
@pytest.fixture(scope="module")
def degenerate_scene(tmp_path_factory):
    """A floor seen at a grazing angle, lit at grazing incidence, with zero-area
    triangles (coincident and collinear vertices) and slivers in view."""
    d = tmp_path_factory.mktemp("degenerate")
    v = np.array([
        [-2, 0, -2], [2, 0, -2], [2, 0, 2], [-2, 0, 2],              # floor quad
        [-0.3, 0.0, 0.0], [-0.3, 0.0, 0.0], [-0.1, 0.3, 0.0],        # two coincident
        [0.0, 0.0, 0.0], [0.1, 0.1, 0.0], [0.2, 0.2, 0.0],           # collinear
        [0.3, 0.0, 0.0], [0.6, 0.0, 0.0], [0.45, 1e-7, 1e-7],        # sliver
        [0.7, 0.0, 0.0], [0.7, 0.0, 0.0], [0.7, 0.0, 0.0],           # a point
    ], dtype=np.float64)
    f = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [7, 8, 9], [10, 11, 12], [13, 14, 15]])
    write_obj(d / "degenerate.obj", v, f)
    return lg.load_dict({
        "type": "scene",
        "integrator": {"type": "path", "max_depth": 3},
        "sensor": {"type": "perspective", "fov": 50,
                   "to_world": T().look_at(origin=[0, 0.02, 2.5], target=[0, 0.0, 0],
                                           up=[0, 1, 0]),
                   "film": {"type": "hdrfilm", "width": RES, "height": RES}},
        "matte": {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.6, 0.5, 0.4]}},
        "metal": {"type": "roughconductor", "alpha": 0.02},
        "mesh": {"type": "obj", "filename": str(d / "degenerate.obj"),
                 "bsdf": {"type": "ref", "id": "matte"}},
        "panel": {"type": "rectangle",
                  "to_world": T().translate([0.8, 0.3, -0.5]).rotate([0, 1, 0], -60).scale(0.3),
                  "bsdf": {"type": "ref", "id": "metal"}},
        # grazing light: a vertical emitter standing on the floor, facing +x
        "light": {"type": "rectangle",
                  "to_world": T().translate([-1.5, 0.25, 0.0]).rotate([0, 1, 0], 90)
                                 .scale(0.25),
                  "emitter": {"type": "area",
                              "radiance": {"type": "rgb", "value": [5.0, 5.0, 5.0]}}},
        "lamp": {"type": "point", "position": [1.0, 1e-3, 0.5],
                 "intensity": {"type": "rgb", "value": [1.0, 1.0, 1.0]}},
    })


NAN_KEYS = ["matte.reflectance.value", "metal.alpha.value", "metal.eta.value",
            "light.emitter.radiance.value", "lamp.intensity.value", "lamp.position",
            "mesh.vertex_positions", "mesh.to_world", "panel.vertex_positions",
            "light.vertex_positions"]


# Without geometry or camera keys the reverse pass replays from vertex records.
SHADING_KEYS = [k for k in NAN_KEYS if k.split(".")[-1] not in
                ("vertex_positions", "to_world", "position")]


@pytest.mark.parametrize("keys", [NAN_KEYS, SHADING_KEYS, ["sensor.to_world", "sensor.x_fov"]],
                         ids=["scene", "materials-emitters", "camera"])
def test_no_nan_or_inf_in_derivatives(degenerate_scene, keys):
    scene = degenerate_scene
    params = lg.traverse(scene)
    saved = {k: params[k] for k in keys}
    try:
        image0 = np.array(lg.render(scene, params, spp=4, seed=0))
        assert np.isfinite(image0).all() and image0.max() > 0
        target = lg.TensorXf(np.zeros_like(image0))
        # reverse mode: gradient of an L2 loss w.r.t. everything at once
        lv = grad_leaves(params, keys)
        image = lg.render(scene, params, spp=4, seed=0)
        dr.backward(lg.l2(image, target))
        for k, leaf in lv.items():
            g = flat(dr.grad(leaf))
            assert np.isfinite(g).all(), f"non-finite gradient for {k}"
        # forward mode: random tangents on everything at once
        lv = grad_leaves(params, keys)
        gen = np.random.default_rng(0)
        for k, leaf in lv.items():
            t = gen.standard_normal(flat(leaf).size).astype(np.float32)
            dr.set_grad(leaf, lg.Matrix4f(t.reshape(4, 4)) if isinstance(leaf, lg.Matrix4f)
                        else dr.unravel(type(leaf), lg.Float(t)) if dr.depth_v(leaf) > 1
                        else type(leaf)(t))
        image = lg.render(scene, params, spp=4, seed=0)
        dr.forward_to(image)
        grad = np.array(dr.grad(image))
        assert np.isfinite(grad).all()
        assert np.abs(grad).max() > 0
    finally:
        for k, v in saved.items():
            params[k] = v if isinstance(v, T) else type(v)(dr.detach(v))
        params.update()
