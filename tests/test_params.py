"""Scene parameters: Mitsuba-style keys, PSDR aliases, assignment checks, update().

Everything here runs on the built-in Cornell box (or a tiny dict scene for
texture/roughness keys). Only the "update changes the image" tests render, all
at 16×16 with the same few kernels.
"""
from __future__ import annotations

import math

import drjit as dr
import numpy as np
import pytest

import lumigrad as lg

RES = 16

# Mitsuba's Cornell box values (scenes/cbox.xml).
GREEN = [0.105421, 0.37798, 0.076425]
RADIANCE = [18.387, 13.9873, 6.75357]


@pytest.fixture()
def cbox():
    return lg.cornell_box(res=RES, spp=4, max_depth=3)


@pytest.fixture()
def textured(tmp_path):
    """A bitmap-textured diffuse floor, a rough conductor panel, a point light."""
    tex = np.linspace(0.1, 0.9, 2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    path = tmp_path / "tex.exr"
    lg.write_image(path, tex)
    T = lg.Transform4f
    return lg.load_dict({
        "type": "scene",
        "sensor": {"type": "perspective", "fov": 40,
                   "to_world": T().look_at(origin=[0, 1, 3], target=[0, 0, 0], up=[0, 1, 0]),
                   "film": {"type": "hdrfilm", "width": RES, "height": RES}},
        "floor-mat": {"type": "diffuse",
                      "reflectance": {"type": "bitmap", "filename": str(path)}},
        "metal": {"type": "roughconductor", "alpha": 0.2},
        "floor": {"type": "rectangle", "bsdf": {"type": "ref", "id": "floor-mat"}},
        "panel": {"type": "rectangle", "to_world": T().translate([0, 0, -1]),
                  "bsdf": {"type": "ref", "id": "metal"}},
        "lamp": {"type": "point", "position": [0, 1, 1]},
    }), tex


def _np(x) -> np.ndarray:
    return np.array(dr.detach(x), dtype=np.float64).ravel()


# -- keys ------------------------------------------------------------------------
def test_cornell_box_has_mitsuba_keys(cbox):
    params = lg.traverse(cbox)
    for key in ("green.reflectance.value", "red.reflectance.value", "white.reflectance.value",
                "light.emitter.radiance.value", "small-box.vertex_positions",
                "small-box.to_world", "large-box.vertex_positions", "floor.to_world",
                "sensor.to_world", "sensor.x_fov"):
        assert key in params, key
    assert len(params) == len(list(params))
    np.testing.assert_allclose(_np(params["green.reflectance.value"]), GREEN, rtol=1e-6)
    np.testing.assert_allclose(_np(params["light.emitter.radiance.value"]), RADIANCE,
                               rtol=1e-6)
    np.testing.assert_allclose(_np(params["sensor.x_fov"]), [39.3077], rtol=1e-6)


def test_vertex_positions_are_flat_world_space_and_to_world_starts_at_identity(cbox):
    params = lg.traverse(cbox)
    v = _np(params["small-box.vertex_positions"])
    assert v.size == 24 * 3  # a cube: 4 vertices per face
    v = v.reshape(-1, 3)
    # cbox.xml: translate(0.335, -0.7, 0.38) · rotate_y(-17°) · scale(0.3) of [-1, 1]^3
    half = 0.3 * (math.cos(math.radians(17)) + math.sin(math.radians(17)))
    np.testing.assert_allclose(v.min(0), [0.335 - half, -1.0, 0.38 - half], atol=1e-5)
    np.testing.assert_allclose(v.max(0), [0.335 + half, -0.4, 0.38 + half], atol=1e-5)
    tw = params["small-box.to_world"]
    assert isinstance(tw, lg.Transform4f)
    np.testing.assert_allclose(tw.numpy(), np.eye(4))


def test_psdr_aliases(cbox):
    params = lg.traverse(cbox)
    ids = [s.id for s in cbox.shapes]
    assert ids[6] == "small-box"
    assert params["Mesh[6]"] is cbox.shapes[6]
    np.testing.assert_array_equal(_np(params["Mesh[6].vertex_positions"]),
                                  _np(params["small-box.vertex_positions"]))
    assert "Mesh[6].to_world" in params and "Mesh[99].to_world" not in params
    # BSDF[i] in scene order; Emitter[0] is the area light of shape 'light'
    bsdf_ids = [b.id for b in cbox.bsdfs]
    g = bsdf_ids.index("green")
    np.testing.assert_allclose(_np(params[f"BSDF[{g}].reflectance.value"]), GREEN, rtol=1e-6)
    np.testing.assert_allclose(_np(params["Emitter[0].radiance.value"]), RADIANCE, rtol=1e-6)
    np.testing.assert_allclose(_np(params["Sensor[0].x_fov"]), [39.3077], rtol=1e-6)
    # assigning through an alias is assigning the real key
    params["Emitter[0].radiance.value"] = lg.Color3f(1, 2, 3)
    np.testing.assert_allclose(_np(params["light.emitter.radiance.value"]), [1, 2, 3])


def test_differentiable_keys(cbox):
    params = lg.traverse(cbox)
    diff = set(params.differentiable_keys())
    for key in ("green.reflectance.value", "light.emitter.radiance.value",
                "small-box.vertex_positions", "small-box.to_world", "sensor.to_world",
                "sensor.x_fov"):
        assert key in diff and params.is_differentiable(key), key
    for key in ("small-box.faces", "sensor.near_clip", "sensor.far_clip"):
        assert key in params and key not in diff and not params.is_differentiable(key), key
    assert params.is_differentiable("Mesh[6].vertex_positions")
    text = repr(params)
    assert "green.reflectance.value" in text and "small-box.faces" in text


def test_texture_and_roughness_keys(textured):
    scene, tex = textured
    params = lg.traverse(scene)
    data = params["floor-mat.reflectance.data"]
    assert dr.is_tensor_v(data) and tuple(data.shape) == (2, 3, 3)
    np.testing.assert_allclose(np.array(data), tex, rtol=1e-6)
    np.testing.assert_allclose(_np(params["metal.alpha.value"])[:1], [0.2], rtol=1e-6)
    for key in ("floor-mat.reflectance.data", "metal.alpha.value", "metal.eta.value",
                "metal.k.value", "lamp.intensity.value", "lamp.position"):
        assert params.is_differentiable(key), key
    # texture data of the wrong shape
    with pytest.raises(ValueError, match=r"floor-mat\.reflectance\.data.*shape"):
        params["floor-mat.reflectance.data"] = lg.TensorXf(np.zeros((3, 2, 3), np.float32))
    with pytest.raises(TypeError, match=r"floor-mat\.reflectance\.data"):
        params["floor-mat.reflectance.data"] = lg.Float(1.0, 2.0)
    params["floor-mat.reflectance.data"] = np.full((2, 3, 3), 0.25, np.float32)
    params.update()
    np.testing.assert_allclose(np.array(lg.traverse(scene)["floor-mat.reflectance.data"]),
                               0.25)


# -- errors ----------------------------------------------------------------------
def test_unknown_key_lists_close_matches(cbox):
    params = lg.traverse(cbox)
    with pytest.raises(KeyError, match="green.reflectance.value") as info:
        params["gren.reflectance.value"]
    assert "close matches" in str(info.value)
    with pytest.raises(KeyError, match="small-box.vertex_positions"):
        params["small-box.vertex_position"] = lg.Float(0.0)
    with pytest.raises(KeyError, match="unknown scene parameter"):
        params["Mesh[42].vertex_positions"]


@pytest.mark.parametrize("key, value, exc", [
    ("green.reflectance.value", "red", TypeError),
    ("green.reflectance.value", lg.Color3f([0.1, 0.2], [0.1, 0.2], [0.1, 0.2]), ValueError),
    ("green.reflectance.value", [float("nan"), 0.0, 0.0], ValueError),
    ("green.reflectance.value", [0.1, 0.2], (TypeError, ValueError)),
    ("green.reflectance.value", [0.1, 0.2, 0.3, 0.4], (TypeError, ValueError)),
    ("small-box.vertex_positions", lg.Float(1.0, 2.0, 3.0), ValueError),
    ("small-box.vertex_positions", np.zeros((10, 3)), (TypeError, ValueError)),
    ("small-box.to_world", 3.0, TypeError),
    ("small-box.to_world", np.eye(5), ValueError),
    ("sensor.x_fov", lg.Color3f(1, 2, 3), TypeError),
    ("sensor.x_fov", [30.0, 40.0], ValueError),
    ("sensor.x_fov", float("inf"), ValueError),
])
def test_wrong_value_raises_clear_error_naming_the_key(cbox, key, value, exc):
    params = lg.traverse(cbox)
    with pytest.raises(exc, match=key.replace(".", r"\.")):
        params[key] = value
    # the failed assignment left nothing pending
    assert params.update() == []


def test_read_only_keys(cbox):
    params = lg.traverse(cbox)
    with pytest.raises(KeyError, match="read-only"):
        params["small-box.faces"] = lg.UInt32(0, 1, 2)
    with pytest.raises(KeyError, match="read-only"):
        params["sensor.near_clip"] = 0.1


# -- keep --------------------------------------------------------------------------
def test_keep_exact_regex_and_alias(cbox):
    params = lg.traverse(cbox).keep("green.reflectance.value", r"\.to_world$")
    keys = list(params)
    assert "green.reflectance.value" in keys and "sensor.to_world" in keys
    assert "small-box.to_world" in keys and "red.reflectance.value" not in keys
    assert all(k == "green.reflectance.value" or k.endswith(".to_world") for k in keys)
    assert list(lg.traverse(cbox).keep(["Mesh[6].vertex_positions"])) == \
        ["small-box.vertex_positions"]
    with pytest.raises(KeyError, match="unknown scene parameter"):
        lg.traverse(cbox).keep("no-such-thing.value")
    # a kept mapping still updates the scene
    kept = lg.traverse(cbox).keep("red.reflectance.value")
    kept["red.reflectance.value"] = lg.Color3f(0.5, 0.5, 0.5)
    assert kept.update() == ["red.reflectance.value"]
    np.testing.assert_allclose(_np(lg.traverse(cbox)["red.reflectance.value"]), [0.5] * 3)


# -- assignment and update ---------------------------------------------------------
def test_assignment_is_pending_until_update(cbox):
    params = lg.traverse(cbox)
    params["green.reflectance.value"] = [0.1, 0.2, 0.3]
    # the mapping shows the new value, the scene still has the old one
    np.testing.assert_allclose(_np(params["green.reflectance.value"]), [0.1, 0.2, 0.3],
                               rtol=1e-6)
    np.testing.assert_allclose(_np(lg.traverse(cbox)["green.reflectance.value"]), GREEN,
                               rtol=1e-6)
    assert params.update() == ["green.reflectance.value"]
    np.testing.assert_allclose(_np(lg.traverse(cbox)["green.reflectance.value"]),
                               [0.1, 0.2, 0.3], rtol=1e-6)
    assert params.update() == []
    # update(mapping) assigns then pushes; scalars broadcast to colours
    params.update({"green.reflectance.value": 0.5})
    np.testing.assert_allclose(_np(lg.traverse(cbox)["green.reflectance.value"]), [0.5] * 3)


def test_update_changes_the_rendered_image(cbox):
    """Radiance is linear: doubling it doubles the image exactly (same samples)."""
    params = lg.traverse(cbox)
    before = np.array(lg.render(cbox, params, spp=4, seed=3), dtype=np.float64)
    params["light.emitter.radiance.value"] = 2.0 * params["light.emitter.radiance.value"]
    params.update()
    after = np.array(lg.render(cbox, params, spp=4, seed=3), dtype=np.float64)
    assert before.mean() > 0.01
    np.testing.assert_allclose(after, 2.0 * before, rtol=1e-4, atol=1e-6)
    # a black red wall removes its colour from the image
    params["red.reflectance.value"] = lg.Color3f(0.0)
    params.update()
    dark = np.array(lg.render(cbox, params, spp=4, seed=3), dtype=np.float64)
    assert dark[..., 0].sum() < after[..., 0].sum() * 0.9


def test_vertex_positions_update_moves_geometry(cbox):
    params = lg.traverse(cbox)
    before = np.array(lg.render(cbox, params, spp=4, seed=5))
    v = params["small-box.vertex_positions"]
    params["small-box.vertex_positions"] = v + lg.Float(0.0)  # same count, new array
    params.update()
    same = np.array(lg.render(cbox, params, spp=4, seed=5))
    np.testing.assert_allclose(same, before, rtol=1e-5, atol=1e-6)
    # move the box out of the room: the image changes
    p = dr.unravel(lg.Point3f, v)
    params["small-box.vertex_positions"] = dr.ravel(lg.Point3f(p.x, p.y - 10.0, p.z))
    params.update()
    moved = np.array(lg.render(cbox, params, spp=4, seed=5))
    assert np.abs(moved - before).max() > 0.05


def test_to_world_assignment(cbox):
    """``<shape>.to_world`` is applied on top of the baked vertex positions
    (PSDR: left-multiply a rotation onto ``Mesh[i].to_world``)."""
    params = lg.traverse(cbox)
    before = np.array(lg.render(cbox, params, spp=4, seed=5))
    params["small-box.to_world"] = lg.Transform4f().translate([0.0, 10.0, 0.0]) @ \
        params["small-box.to_world"]
    params.update()
    np.testing.assert_allclose(params["small-box.to_world"].numpy()[1, 3], 10.0)
    moved = np.array(lg.render(cbox, params, spp=4, seed=5))
    assert np.abs(moved - before).max() > 0.05
    # a plain 4x4 matrix (numpy) and a Matrix4f are accepted too
    params["Mesh[6].to_world"] = np.eye(4)
    params.update()
    params["Mesh[6].to_world"] = lg.rotation_matrix_rad([0, 0, 1], 0.0)
    params.update()
    back = np.array(lg.render(cbox, params, spp=4, seed=5))
    np.testing.assert_allclose(back, before, rtol=1e-4, atol=1e-5)


def test_sensor_parameters_update(cbox):
    params = lg.traverse(cbox)
    before = np.array(lg.render(cbox, params, spp=4, seed=5))
    params["sensor.x_fov"] = 20.0
    params.update()
    zoomed = np.array(lg.render(cbox, params, spp=4, seed=5))
    assert np.abs(zoomed - before).mean() > 0.01
    params["sensor.x_fov"] = 39.3077
    params.update()
    np.testing.assert_allclose(np.array(lg.render(cbox, params, spp=4, seed=5)), before,
                               rtol=1e-4, atol=1e-5)


def test_assignment_is_differentiable(cbox):
    """A parameter set from a latent variable receives gradients through
    ``update()`` and ``render`` (reverse mode): the chain rule holds exactly."""
    params = lg.traverse(cbox)
    key = "light.emitter.radiance.value"
    base = lg.Color3f(params[key])
    theta = lg.Float(1.5)
    dr.enable_grad(theta)
    params[key] = base * theta
    params.update()
    image = lg.render(cbox, params, spp=4, seed=1, seed_grad=1)
    loss = dr.sum(image, axis=None)
    dr.backward(loss)
    g_theta = float(dr.grad(theta)[0])
    # radiance is linear: d(sum I)/dθ = sum(I(θ=1.5)) / 1.5
    total = float(np.array(image, dtype=np.float64).sum())
    assert total > 1.0
    assert g_theta == pytest.approx(total / 1.5, rel=1e-4)


def test_update_from_drjit_optimizer(cbox):
    """``params.update(opt)`` with ``drjit.opt.Adam`` (a mapping of keys to values)."""
    import drjit.opt  # noqa: F401  (the submodule is not imported by ``import drjit``)

    params = lg.traverse(cbox)
    key = "red.reflectance.value"
    opt = dr.opt.Adam(lr=0.1)
    opt[key] = params[key]
    assert params.update(opt) == [key]
    assert dr.grad_enabled(params[key])
    image = lg.render(cbox, params, spp=4, seed=0)
    dr.backward(dr.mean(image[..., 0], axis=None))  # more red → larger loss
    before = _np(opt[key])
    opt.step()
    params.update(opt)
    after = _np(lg.traverse(cbox)[key])
    # Adam's first step is ±lr per component; the red channel decreases
    assert after[0] == pytest.approx(before[0] - 0.1, abs=1e-4)
