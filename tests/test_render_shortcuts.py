"""The shortcuts that plain renders of the path tracer take
(``PathIntegrator.plain_shortcuts``, integrators/path.py) leave every sample's
value unchanged: packets skip shading and emission no lane needs, no shadow ray
is traced where the sample weighs nothing, and the last segment of a bounded
path finds its emission by testing the light's triangles and one any-hit query
instead of a closest hit. So the image with them equals, sample for sample, the
image of the code the derivative passes run (``plain_shortcuts = False``), for
both ray-tracing cores: the same random numbers give the same values up to
float rounding."""
from __future__ import annotations

import numpy as np
import pytest

import lumigrad as lg
from lumigrad.geometry.accel import mitsuba_available

CORES = ["builtin"] + (["mitsuba"] if mitsuba_available() else [])


def _cbox_direct() -> dict:
    # direct: every second vertex is a last segment; the light is a two-triangle quad
    # that the boxes hide from parts of the room, and one side of it faces away.
    d = lg.cornell_box_dict(res=16)
    d["integrator"] = {"type": "direct"}
    return d


def _lamp(sky: bool) -> dict:
    # path of depth 3 (third segments are last segments), with or without an
    # environment (rays of a last segment that hit no lamp must find out whether
    # they escape), a large lamp that the ball and a plate just below it partly hide, rough
    # plastic (Beckmann sampling) and diffuse.
    d = lg.cornell_box_dict(res=16)
    scene = {
        "type": "scene",
        "integrator": {"type": "path", "max_depth": 3},
        "sensor": d["sensor"],
        "sky": {"type": "constant", "radiance": {"type": "rgb", "value": [0.3, 0.4, 0.6]}},
        "lamp": {"type": "rectangle",
                 "to_world": lg.Transform4f().translate([0.3, 0.9, 0.0])
                 .rotate([1, 0, 0], 90).scale(0.8),
                 "emitter": {"type": "area",
                             "radiance": {"type": "rgb", "value": [8.0, 7.0, 6.0]}}},
        "shade": {"type": "rectangle",      # an occluder just below the lamp
                  "to_world": lg.Transform4f().translate([0.5, 0.75, 0.1])
                  .rotate([1, 0, 0], 90).scale(0.3),
                  "bsdf": {"type": "diffuse"}},
        "ball": {"type": "sphere", "center": [0.2, 0.0, 0.0], "radius": 0.4,
                 "bsdf": {"type": "roughplastic", "alpha": 0.25}},
        "floor": {"type": "rectangle",
                  "to_world": lg.Transform4f().translate([0, -0.5, 0])
                  .rotate([1, 0, 0], -90).scale(3.0),
                  "bsdf": {"type": "diffuse"}},
    }
    if not sky:
        del scene["sky"]
    return scene


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("make", [_cbox_direct, lambda: _lamp(True), lambda: _lamp(False)],
                         ids=["cbox_direct", "lamp_sky", "lamp"])
def test_plain_shortcuts_leave_the_image_unchanged(make, core):
    scene = lg.load_dict(make())
    scene.set_accelerator(core)
    fast = np.array(lg.render(scene, spp=8, seed=3))
    scene.integrator.plain_shortcuts = False
    plain = np.array(lg.render(scene, spp=8, seed=3))
    assert plain.mean() > 1e-3                     # something is lit
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-6)


#: (scene, parameter) cases of the derivative tests, shared by both modes; the last
#: one differs (forward: a light's radiance, reverse: a floor's albedo).
_DERIVATIVE_CASES = [
    (_cbox_direct, "light.emitter.radiance.value"),
    (_cbox_direct, "white.reflectance.value"),
    (lambda: _lamp(True), "ball.bsdf.alpha"),
    (lambda: _lamp(True), "sky.radiance.value"),
]
_DERIVATIVE_IDS = ["cbox_light", "cbox_white", "lamp_sky_alpha", "lamp_sky_sky"]


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("make,key", _DERIVATIVE_CASES + [
    (lambda: _lamp(False), "lamp.emitter.radiance.value")],
    ids=_DERIVATIVE_IDS + ["lamp_radiance"])
def test_forward_mode_shortcuts_leave_the_derivative_unchanged(make, key, core):
    # Forward-mode passes take the emission-only last segment.
    scene = lg.load_dict(make())
    scene.set_accelerator(core)
    fast = np.array(lg.derivative_image(scene, key, spp=8, seed=3))
    scene.integrator.plain_shortcuts = False
    plain = np.array(lg.derivative_image(scene, key, spp=8, seed=3))
    assert np.abs(plain).max() > 1e-4                 # the parameter matters here
    np.testing.assert_allclose(fast, plain, rtol=1e-4, atol=1e-6 * np.abs(plain).max())


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("make,key", _DERIVATIVE_CASES + [
    (lambda: _lamp(False), "floor.bsdf.reflectance.value")],
    ids=_DERIVATIVE_IDS + ["lamp_floor"])
def test_reverse_mode_shortcuts_leave_the_gradient_unchanged(make, key, core):
    # The recording pass takes the last segment (a stand-in triangle for surfaces
    # that do not emit); the replay reads it back.
    import drjit as dr
    scene = lg.load_dict(make())
    scene.set_accelerator(core)
    params = lg.traverse(scene)
    target = lg.TensorXf(np.full((16, 16, 3), 0.2, np.float32))

    def gradient() -> np.ndarray:
        value = params[key]
        dr.enable_grad(value)
        params.update()
        dr.backward(lg.l2(lg.render(scene, params, spp=8, seed=3), target))
        g = np.array(dr.grad(value))
        dr.disable_grad(value)
        params.update()
        return g

    fast = gradient()
    scene.integrator.plain_shortcuts = False
    plain = gradient()
    assert np.abs(plain).max() > 1e-6                 # the parameter matters here
    np.testing.assert_allclose(fast, plain, rtol=1e-4, atol=1e-6 * np.abs(plain).max())
