"""Derivatives of rendered images against finite differences (common random numbers).

``lumigrad.check_gradient`` renders the scene at θ ± εv and compares the central
difference with the forward-mode derivative image along v and with reverse mode
(⟨∇L, v⟩ for L = Σ w·I with random fixed weights w), all three with the *same*
samples. When the sampling of paths does not depend on θ (reflectance, emitted
radiance, light intensity, an environment map's global scale, texels of a
texture that is not importance-sampled), the three differentiate the same
per-sample estimator and agree to float precision (FD up to O(ε²)), so the
tolerances below are tight: any missing or wrong term shows.

When sampling does depend on θ (a rough conductor's ``alpha``: the sampled
microfacet normal moves with α), ``check_gradient`` freezes the sampling at θ
so the comparison stays exact; the renderer's own estimator (directions held
fixed, a different but unbiased estimator) is additionally tested in
expectation over independent seeds against plain finite differences of the
image, which also exposes any bias of the primal image that depends on θ.

Scenes: 16×16, a few samples per pixel; each builds its own few kernels.
"""
from __future__ import annotations

import drjit as dr
import numpy as np
import pytest

import lumigrad as lg

from .conftest import SCENES, flat, grad_leaves

RES = 16
T = lg.Transform4f


def _camera(origin=(0.0, 1.6, 3.2), target=(0.0, 0.0, 0.0)) -> dict:
    return {"type": "perspective", "fov": 45.0,
            "to_world": T().look_at(origin=list(origin), target=list(target), up=[0, 1, 0]),
            "film": {"type": "hdrfilm", "width": RES, "height": RES,
                     "rfilter": {"type": "box"}},
            "sampler": {"type": "independent", "sample_count": 4}}


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("gradient_assets")
    rng = np.random.default_rng(3)
    tex = rng.uniform(0.2, 0.9, size=(4, 4, 3)).astype(np.float32)
    lg.write_image(d / "tex.exr", tex)
    y = np.linspace(0.0, 1.0, 8)[:, None, None]
    env = (0.1 + 0.8 * (1.0 - y) * rng.uniform(0.5, 1.0, size=(8, 16, 3))).astype(np.float32)
    lg.write_image(d / "env.exr", env)
    return {"tex": d / "tex.exr", "env": d / "env.exr"}


@pytest.fixture(scope="module")
def matte_scene(assets):
    """Textured diffuse floor, a diffuse box, a rectangular area light; path
    tracer with 3 segments (interreflection, no Russian roulette)."""
    return lg.load_dict({
        "type": "scene",
        "integrator": {"type": "path", "max_depth": 3},
        "sensor": _camera(),
        "floor-mat": {"type": "diffuse",
                      "reflectance": {"type": "bitmap", "filename": str(assets["tex"]),
                                      "filter_type": "nearest"}},
        "matte": {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.7, 0.5, 0.3]}},
        "floor": {"type": "rectangle", "to_world": T().rotate([1, 0, 0], -90).scale(1.5),
                  "bsdf": {"type": "ref", "id": "floor-mat"}},
        "box": {"type": "cube",
                "to_world": T().translate([0.2, 0.3, 0.0]).rotate([0, 1, 0], 30).scale(0.3),
                "bsdf": {"type": "ref", "id": "matte"}},
        "light": {"type": "rectangle",
                  "to_world": T().translate([-0.4, 1.6, 0.6]).rotate([1, 0, 0], 90).scale(0.5),
                  "emitter": {"type": "area",
                              "radiance": {"type": "rgb", "value": [6.0, 5.0, 4.0]}}},
    })


def _metal_dict(area_light: bool) -> dict:
    d = {
        "type": "scene",
        "integrator": {"type": "direct"},
        "sensor": _camera(origin=(0.0, 1.0, 2.5)),
        "metal": {"type": "roughconductor", "alpha": 0.25, "distribution": "ggx"},
        "floor": {"type": "rectangle", "to_world": T().rotate([1, 0, 0], -90).scale(1.5),
                  "bsdf": {"type": "ref", "id": "metal"}},
    }
    if area_light:
        d["light"] = {"type": "rectangle",
                      "to_world": T().translate([0.0, 1.0, -0.8]).rotate([1, 0, 0], 90)
                                     .scale(0.4),
                      "emitter": {"type": "area",
                                  "radiance": {"type": "rgb", "value": [6.0, 5.0, 4.0]}}}
    else:
        d["lamp"] = {"type": "point", "position": [0.0, 0.8, -0.6],
                     "intensity": {"type": "rgb", "value": [3.0, 2.5, 2.0]}}
    return d


@pytest.fixture(scope="module")
def metal_point_scene():
    """Rough conductor floor lit by a point light (direct illumination)."""
    return lg.load_dict(_metal_dict(area_light=False))


@pytest.fixture(scope="module")
def env_scene(assets):
    """A diffuse ball on a diffuse floor under an environment map."""
    return lg.load_dict({
        "type": "scene",
        "integrator": {"type": "path", "max_depth": 3},
        "sensor": _camera(origin=(0.0, 0.8, 3.0), target=(0.0, 0.3, 0.0)),
        "matte": {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.6, 0.6, 0.6]}},
        "floor": {"type": "rectangle", "to_world": T().rotate([1, 0, 0], -90).scale(1.2),
                  "bsdf": {"type": "ref", "id": "matte"}},
        "ball": {"type": "sphere", "center": [0, 0.4, 0], "radius": 0.4,
                 "bsdf": {"type": "ref", "id": "matte"}},
        "sky": {"type": "envmap", "filename": str(assets["env"]), "scale": 1.5},
    })


def _assert_exact(rep: lg.GradientReport, min_scale: float) -> None:
    """Common random numbers: forward = reverse to float precision, FD to O(ε²)."""
    assert rep.finite, str(rep)
    assert rep.scale > min_scale, f"derivative too small to test anything:\n{rep}"
    assert max(rep.forward_vs_fd) < 1e-3, str(rep)
    assert max(rep.forward_vs_fd_pixel) < 5e-3, str(rep)
    assert rep.reverse_vs_forward < 1e-5, str(rep)
    assert rep.reverse_vs_fd < 1e-3, str(rep)
    assert rep.ok(), str(rep)


@pytest.mark.parametrize("scene_name, key, min_scale", [
    ("matte_scene", "matte.reflectance.value", 0.05),        # diffuse reflectance
    ("matte_scene", "light.emitter.radiance.value", 0.01),   # area-light radiance
    ("matte_scene", "floor-mat.reflectance.data", 0.01),     # bitmap texels (random v)
    ("metal_point_scene", "lamp.intensity.value", 0.05),     # point-light intensity
    ("metal_point_scene", "metal.alpha.value", 0.5),         # GGX roughness, point light
    ("env_scene", "sky.scale", 0.1),                         # envmap scale
    ("env_scene", "matte.reflectance.value", 0.05),          # reflectance under an envmap
])
def test_check_gradient_agrees_with_finite_differences(request, scene_name, key, min_scale):
    scene = request.getfixturevalue(scene_name)
    before = np.array(dr.ravel(dr.detach(lg.traverse(scene)[key]))
                      if not dr.is_tensor_v(lg.traverse(scene)[key])
                      else lg.traverse(scene)[key].array)
    rep = lg.check_gradient(scene, key, spp=4, seed=7)
    _assert_exact(rep, min_scale)
    # the check leaves the scene as it was
    after = lg.traverse(scene)[key]
    after = np.array(dr.ravel(after) if not dr.is_tensor_v(after) else after.array)
    np.testing.assert_array_equal(after, before)


def test_bitmap_texels_reverse_mode_per_texel(matte_scene):
    """∂L/∂texel from one reverse pass against a central difference of the same
    loss for individual texels (same samples), L = Σ w·I."""
    key = "floor-mat.reflectance.data"
    params = lg.traverse(matte_scene)
    data0 = np.array(params[key], dtype=np.float32)
    w = lg.TensorXf(np.random.default_rng(5).uniform(0.0, 1.0, (RES, RES, 3))
                    .astype(np.float32))

    def loss_at(data: np.ndarray) -> float:
        params[key] = lg.TensorXf(data)
        params.update()
        img = lg.render(matte_scene, params, spp=4, seed=11)
        return float(np.sum(np.array(img, dtype=np.float64) * np.array(w)))

    try:
        leaf = lg.TensorXf(data0)
        dr.enable_grad(leaf)
        params[key] = leaf
        params.update()
        img = lg.render(matte_scene, params, spp=4, seed=11, seed_grad=11)
        dr.backward(dr.sum(img * w, axis=None))
        grad = np.array(dr.grad(leaf), dtype=np.float64)
        assert grad.shape == data0.shape and np.isfinite(grad).all()
        flat = np.abs(grad).ravel()
        # the largest entries, and one the camera cannot see (should be ~0)
        picks = list(np.argsort(flat)[-4:]) + [int(np.argmin(flat))]
        eps = 0.02
        for i in picks:
            e = np.zeros(data0.size, np.float32)
            e[i] = eps
            e = e.reshape(data0.shape)
            fd = (loss_at(data0 + e) - loss_at(data0 - e)) / (2 * eps)
            assert abs(fd - grad.ravel()[i]) <= 1e-3 * flat.max() + 1e-6, (i, fd, grad.ravel()[i])
        assert flat.max() > 0.1
    finally:
        params[key] = lg.TensorXf(data0)
        params.update()


def test_roughness_with_area_light_in_expectation():
    """α changes the sampled directions, so forward mode (directions held
    fixed) and finite differences of the renderer's images (directions move
    with α) agree in expectation only: compare means over independent seeds.
    (This caught shadow rays that ended inside the emitter at oblique angles:
    a primal bias that depended on α through the MIS weights.)"""
    scene = lg.load_dict(_metal_dict(area_light=True))
    key = "metal.alpha.value"
    params = lg.traverse(scene)
    a0 = float(np.array(params[key]).ravel()[0])
    spp, eps, n = 32, 0.02, 6

    def render_at(alpha: float, seed: int) -> np.ndarray:
        params[key] = lg.Color3f(alpha)
        params.update()
        return np.array(lg.render(scene, params, spp=spp, seed=seed), dtype=np.float64)

    fd, fw = [], []
    for s in range(n):
        fd.append(((render_at(a0 + eps, 100 + s) - render_at(a0 - eps, 100 + s)) /
                   (2 * eps)).sum(axis=(0, 1)))
    render_at(a0, 0)
    for s in range(n):
        fw.append(np.array(lg.derivative_image(scene, key, spp=spp, seed=200 + s))
                  .sum(axis=(0, 1)))
    fd, fw = np.array(fd), np.array(fw)
    assert np.isfinite(fw).all()
    m_fd, m_fw = fd.mean(0), fw.mean(0)
    se = np.sqrt(fd.var(0, ddof=1) / n + fw.var(0, ddof=1) / n)
    assert np.all(np.abs(m_fw) > 5 * se), (m_fw, se)          # a real signal
    assert np.all(np.abs(m_fw - m_fd) < 4 * se + 1e-3 * np.abs(m_fd)), (m_fd, m_fw, se)
    # check_gradient (sampling frozen at α): exact agreement of all three
    _assert_exact(lg.check_gradient(scene, key, spp=4, seed=3), 0.5)


def test_reverse_equals_forward_along_random_directions(matte_scene):
    """⟨∇L, v⟩ (one reverse pass) equals the forward-mode derivative of L along
    v, for a non-linear loss L = l2(I, target) and several parameters at once;
    both derivative passes use the same samples (``seed_grad``)."""
    keys = ["matte.reflectance.value", "light.emitter.radiance.value",
            "floor-mat.reflectance.data"]
    params = lg.traverse(matte_scene)
    originals = {k: params[k] for k in keys}
    target = lg.TensorXf(np.random.default_rng(0).uniform(0, 0.3, (RES, RES, 3))
                         .astype(np.float32))

    try:
        lv = grad_leaves(params, keys)
        image = lg.render(matte_scene, params, spp=4, seed=21, seed_grad=22)
        dr.backward(lg.l2(image, target))
        grads = {k: flat(dr.grad(lv[k])) for k in keys}
        gen = np.random.default_rng(1)
        for _ in range(3):
            v = {k: gen.standard_normal(grads[k].size) for k in keys}
            lv = grad_leaves(params, keys)
            for k in keys:
                t = v[k].astype(np.float32)
                dr.set_grad(lv[k], lg.TensorXf(t.reshape(lv[k].shape)) if dr.is_tensor_v(lv[k])
                            else dr.unravel(type(lv[k]), lg.Float(t)))
            image = lg.render(matte_scene, params, spp=4, seed=21, seed_grad=22)
            loss = lg.l2(image, target)
            dr.forward_to(loss)
            fwd = float(dr.grad(loss).array[0])
            rev = sum(float(grads[k] @ v[k]) for k in keys)
            assert abs(fwd) > 1e-4
            assert rev == pytest.approx(fwd, rel=1e-4, abs=1e-7)
    finally:
        for k in keys:
            params[k] = type(originals[k])(dr.detach(originals[k]))
        params.update()



def _taped_vs_retraced(monkeypatch, scene, keys: list, tape_len: int, expected_len: int) -> None:
    """Reverse-mode gradients of an L2 loss w.r.t. ``keys`` with the integrator's hit
    tape (``TAPE_MAX_DEPTH = tape_len``; the tape holds ``expected_len`` vertices)
    equal those of a replay that re-traces every ray (no tape)."""
    from lumigrad.integrators import path as path_mod
    params = lg.traverse(scene)
    target = lg.render(scene, spp=4, seed=5) * 0.8

    def gradients() -> list:
        for k in keys:
            dr.enable_grad(params[k])
        params.update()
        image = lg.render(scene, params, spp=4, seed=1)
        dr.backward(lg.l2(image, target))
        out = [np.array(dr.grad(params[k])) for k in keys]
        for k in keys:
            dr.disable_grad(params[k])
        params.update()
        return out

    monkeypatch.setattr(path_mod, "TAPE_MAX_DEPTH", tape_len)
    tape = scene.integrator.make_tape(scene, scene.sensor, 16)
    assert tape is not None and len(tape) == expected_len
    taped = gradients()
    monkeypatch.setattr(path_mod, "TAPE_MAX_DEPTH", 0)
    assert scene.integrator.make_tape(scene, scene.sensor, 16) is None
    retraced = gradients()
    for k, a, b in zip(keys, taped, retraced):
        assert np.all(np.isfinite(a)) and np.abs(a).max() > 0, k
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * np.abs(b).max(), err_msg=k)


@pytest.mark.filterwarnings("ignore:derivatives with respect to")
@pytest.mark.parametrize("unrolled", [False, True], ids=["stack-bvh", "unrolled-bvh"])
def test_replay_from_hit_tape_equals_replay_by_retracing(monkeypatch, unrolled):
    """The reverse pass replays paths from a per-lane tape of hits and shadow-ray
    outcomes recorded by its primal pass (no ray is traced twice). Replaying by
    tracing the same rays again must give the same gradients (with either BVH
    traversal: the Cornell box is small enough for the unrolled one, which small
    launches like this one only take when forced)."""
    from lumigrad.geometry.bvh import BVH
    monkeypatch.setattr(BVH, "unroll_min_rays", 0 if unrolled else 1 << 30)
    scene = lg.load_file(SCENES / "cbox.xml", res=RES, max_depth=6)
    assert scene.accel.bvh.unrolled(RES * RES) == unrolled
    _taped_vs_retraced(monkeypatch, scene, ["green.reflectance.value",
                                            "light.emitter.radiance.value",
                                            "floor.vertex_positions"],
                       tape_len=64, expected_len=6)


@pytest.mark.filterwarnings("ignore:derivatives with respect to")
@pytest.mark.parametrize("keys, records", [
    (["green.reflectance.value"], True),
    (["green.reflectance.value", "light.emitter.radiance.value"], True),
    (["green.reflectance.value", "floor.vertex_positions"], False),
], ids=["vertex-records", "vertex-records-emitter", "hit-tape"])
def test_replay_beyond_the_tape_retraces(monkeypatch, keys, records):
    """Unbounded paths (``max_depth`` -1) record only their first vertices on the
    tape (shortened to 2 here, so that many paths outgrow it) and replay the rest
    by shading again (from a checkpoint of the loop state when the first vertices
    replay from vertex records): the same gradients as replaying every vertex by
    re-tracing."""
    from lumigrad.integrators import path as path_mod
    scene = lg.load_file(SCENES / "cbox.xml", res=RES, max_depth=-1)
    monkeypatch.setattr(path_mod, "TAPE_MAX_DEPTH", 2)
    assert _replays_from_records(monkeypatch, scene, keys) == records
    _taped_vs_retraced(monkeypatch, scene, keys, tape_len=2, expected_len=2)


@pytest.fixture(scope="module")
def specular_scene():
    """A mirror ball and a glass ball (delta lobes) on a diffuse floor, area light."""
    return lg.load_dict({
        "type": "scene",
        "integrator": {"type": "path", "max_depth": 5},
        "sensor": _camera(),
        "floor": {"type": "rectangle", "to_world": T().rotate([1, 0, 0], -90).scale(1.5),
                  "bsdf": {"type": "diffuse", "id": "matte"}},
        "mirror": {"type": "sphere", "center": [-0.4, 0.3, 0.0], "radius": 0.3,
                   "bsdf": {"type": "conductor", "id": "chrome"}},
        "ball": {"type": "sphere", "center": [0.4, 0.3, 0.2], "radius": 0.3,
                 "bsdf": {"type": "dielectric", "id": "glass"}},
        "light": {"type": "rectangle",
                  "to_world": T().translate([-0.4, 1.6, 0.6]).rotate([1, 0, 0], 90).scale(0.5),
                  "emitter": {"type": "area",
                              "radiance": {"type": "rgb", "value": [6.0, 5.0, 4.0]}}},
    })


def _matte_floor_and_box() -> dict:
    """Scene-dict entries: a diffuse floor and box sharing the material ``matte``."""
    return {
        "matte": {"type": "diffuse", "reflectance": {"type": "rgb", "value": [0.7, 0.5, 0.3]}},
        "floor": {"type": "rectangle", "to_world": T().rotate([1, 0, 0], -90).scale(1.5),
                  "bsdf": {"type": "ref", "id": "matte"}},
        "box": {"type": "cube", "to_world": T().translate([0.2, 0.3, 0.0]).scale(0.3),
                "bsdf": {"type": "ref", "id": "matte"}},
    }


@pytest.fixture(scope="module")
def two_light_scene():
    """A diffuse floor and box under two area lights (emission is a dispatch)."""
    lights = {f"light{i}": {
        "type": "rectangle",
        "to_world": T().translate([-0.4 + 0.8 * i, 1.6, 0.6]).rotate([1, 0, 0], 90).scale(0.3),
        "emitter": {"type": "area", "radiance": {"type": "rgb", "value": [6.0 - 2 * i, 5.0, 4.0]}}}
        for i in range(2)}
    return lg.load_dict({
        "type": "scene",
        "integrator": {"type": "path", "max_depth": 3, "hide_emitters": True},
        "sensor": _camera(),
        **_matte_floor_and_box(),
        **lights,
    })


@pytest.fixture(scope="module")
def sun_sky_scene():
    """A diffuse floor and box under a directional light and a constant sky."""
    return lg.load_dict({
        "type": "scene",
        "integrator": {"type": "path", "max_depth": 3},
        "sensor": _camera(),
        **_matte_floor_and_box(),
        "sun": {"type": "directional", "direction": [0.3, -1.0, 0.2],
                "irradiance": {"type": "rgb", "value": [2.0, 2.0, 1.5]}},
        "sky": {"type": "constant", "radiance": {"type": "rgb", "value": [0.5, 0.6, 0.9]}},
    })


def _reverse_gradients(scene, keys: list) -> list:
    params = lg.traverse(scene)
    target = lg.render(scene, spp=4, seed=5) * 0.8
    for k in keys:
        dr.enable_grad(params[k])
    params.update()
    try:
        image = lg.render(scene, params, spp=4, seed=1)
        dr.backward(lg.l2(image, target))
        return [np.array(dr.grad(params[k])) for k in keys]
    finally:
        for k in keys:
            dr.disable_grad(params[k])
        params.update()


def _replays_from_records(monkeypatch, scene, keys: list) -> bool:
    """Whether the reverse pass with ``keys`` grad-enabled replays from vertex records."""
    from lumigrad.integrators import path as path_mod
    calls = []

    def spy(*args, **kwargs):
        calls.append(1)
        return replay_recorded(*args, **kwargs)

    replay_recorded = path_mod.replay_recorded
    with monkeypatch.context() as m:
        m.setattr(path_mod, "replay_recorded", spy)
        _reverse_gradients(scene, keys)
    return bool(calls)


@pytest.mark.filterwarnings("ignore:derivatives with respect to")
@pytest.mark.parametrize("scene_name, keys", [
    # three grad-carrying BSDFs (one dispatch) and one (inline code)
    ("cbox", ["green.reflectance.value", "red.reflectance.value", "white.reflectance.value"]),
    ("cbox", ["green.reflectance.value", "light.emitter.radiance.value"]),
    ("matte_scene", ["floor-mat.reflectance.data", "light.emitter.radiance.value"]),
    ("metal_point_scene", ["metal.alpha.value", "lamp.intensity.value"]),
    ("env_scene", ["sky.scale", "matte.reflectance.value"]),
    ("env_scene", ["sky.data"]),
    # delta lobes: the ratio of attached to detached sample weights
    ("specular_scene", ["chrome.specular_reflectance.value", "glass.specular_transmittance.value",
                        "glass.specular_reflectance.value"]),
    ("specular_scene", ["glass.eta", "matte.reflectance.value"]),
    ("two_light_scene", ["light1.emitter.radiance.value", "matte.reflectance.value"]),
    ("sun_sky_scene", ["sun.irradiance.value", "sky.radiance.value",
                       "matte.reflectance.value"]),
])
def test_replay_from_vertex_records_equals_replay_by_shading(request, monkeypatch, scene_name,
                                                            keys):
    """With no geometry or camera gradient, the reverse pass replays each vertex
    from a record of detached values written by its primal pass (replay.py):
    no ray, no sampling, only the attached BSDF/emitter factors. The gradients
    must equal those of the replay that shades every vertex again."""
    from lumigrad.integrators import replay
    if scene_name == "cbox":
        scene = lg.load_file(SCENES / "cbox.xml", res=RES, max_depth=6)
    else:
        scene = request.getfixturevalue(scene_name)
    assert _replays_from_records(monkeypatch, scene, keys)
    recorded = _reverse_gradients(scene, keys)
    monkeypatch.setattr(replay, "RECORD_MAX_WORDS", 0)
    assert not _replays_from_records(monkeypatch, scene, keys)
    shaded = _reverse_gradients(scene, keys)
    for k, a, b in zip(keys, recorded, shaded):
        assert np.all(np.isfinite(a)) and np.abs(a).max() > 0, k
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * np.abs(b).max(), err_msg=k)


@pytest.mark.filterwarnings("ignore:derivatives with respect to")
@pytest.mark.parametrize("scene_name, keys", [
    ("cbox", ["floor.vertex_positions"]),       # geometry
    ("cbox", ["small-box.to_world"]),
    ("cbox", ["sensor.to_world"]),              # camera
    ("cbox", ["sensor.x_fov", "green.reflectance.value"]),
    ("metal_point_scene", ["lamp.position"]),   # where a light is sampled
    ("sun_sky_scene", ["sun.direction"]),
])
def test_no_vertex_records_when_directions_carry_gradients(request, monkeypatch, scene_name,
                                                          keys):
    """Geometry, camera and light-position gradients move the path's directions and
    positions: the reverse pass must then shade every vertex again."""
    if scene_name == "cbox":
        scene = lg.load_file(SCENES / "cbox.xml", res=RES, max_depth=6)
    else:
        scene = request.getfixturevalue(scene_name)
    assert not _replays_from_records(monkeypatch, scene, keys)
    other = {"cbox": "light.emitter.radiance.value", "metal_point_scene": "lamp.intensity.value",
             "sun_sky_scene": "sun.irradiance.value"}[scene_name]
    assert _replays_from_records(monkeypatch, scene, [other])


def test_record_shorter_than_bounded_paths(monkeypatch):
    """A record too small for ``max_depth`` (its size per lane is capped, more so on
    GPUs) holds the first vertices; the replay shades the rest again from the
    checkpoint: the same gradients as the replay that shades every vertex."""
    from lumigrad.integrators import replay
    scene = lg.load_file(SCENES / "cbox.xml", res=RES, max_depth=6)
    keys = ["green.reflectance.value"]
    full = _reverse_gradients(scene, keys)
    monkeypatch.setattr(replay, "RECORD_MAX_WORDS", 2 * replay.RecordLayout(True, False, False).words)
    assert _replays_from_records(monkeypatch, scene, keys)
    short = _reverse_gradients(scene, keys)
    monkeypatch.setattr(replay, "RECORD_MAX_WORDS", 0)
    shaded = _reverse_gradients(scene, keys)
    for a, b in ((full, shaded), (short, shaded)):
        np.testing.assert_allclose(a[0], b[0], rtol=1e-4, atol=1e-6 * np.abs(b[0]).max())
