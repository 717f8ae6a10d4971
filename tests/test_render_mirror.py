"""A perfect mirror shows the mirror image of the scene.

A camera looks at a mirror plane (``conductor`` with the default material: the
ideal mirror η = 0, k = 1, whose Fresnel reflectance |(cos θ - i)/(cos θ + i)|² is
exactly 1) that reflects an emitter with a checkerboard radiance texture.
Reflecting the emitter through the mirror plane and removing the mirror must
give the same image: every camera ray meets the reflected emitter at the mirror
image of the point its reflected ray meets, with the same uv. With the same seed
the two renders use the same random numbers (the film samples), so they agree
sample for sample, up to float rounding (which can flip a sample sitting on a
checker edge: a handful of pixels).
"""
from __future__ import annotations

import numpy as np
import pytest

import lumigrad as lg

from .test_render_support import look_at, rgb, sensor_dict

CENTER = np.array([0.0, 2.0, 2.0])
FRONT = np.array([0.0, -1.0, -1.0]) / np.sqrt(2.0)   # the emitter faces the mirror's centre
MIRROR_Z = np.diag([1.0, 1.0, -1.0, 1.0])
RES = 32


def _emitter(to_world: lg.Transform4f, flip: bool) -> dict:
    return {"type": "rectangle", "to_world": to_world, "flip_normals": flip,
            "emitter": {"type": "area", "radiance": {
                "type": "checkerboard", "color0": rgb([3.0, 2.0, 1.0]),
                "color1": rgb([0.25, 0.5, 0.75]),
                "to_uv": lg.Transform4f().scale([1.5, 1.5, 1.0])}}}


def _emitter_to_world() -> lg.Transform4f:
    return look_at(CENTER, CENTER + FRONT, (1, 0, 0)).scale([1.2, 0.9, 1.0])


def _sensor() -> dict:
    return sensor_dict((0, -2, 2), (0, 0, 0), (0, 0, 1), fov=40, width=RES, height=RES)


def _mirror_scene(max_depth: int = 3, reflectance: float = 1.0) -> lg.Scene:
    return lg.load_dict({
        "type": "scene",
        "mirror": {"type": "rectangle", "to_world": lg.Transform4f().scale([4.0, 4.0, 1.0]),
                   "bsdf": {"type": "conductor", "specular_reflectance": reflectance}},
        "emitter_shape": _emitter(_emitter_to_world(), flip=False),
        "sensor": _sensor(),
        "integrator": {"type": "path", "max_depth": max_depth},
    })


def _reflected_scene() -> lg.Scene:
    # The reflected emitter: a rectangle under a mirroring to_world keeps emitting
    # towards its transformed normal (Mitsuba's analytic rectangle transforms the
    # normal; lumigrad reverses the meshed winding to match), i.e. towards the camera.
    tw = lg.Transform4f(lg.Matrix4f(MIRROR_Z @ _emitter_to_world().numpy()))
    return lg.load_dict({
        "type": "scene",
        "emitter_shape": _emitter(tw, flip=False),
        "sensor": _sensor(),
        "integrator": {"type": "path", "max_depth": 3},
    })


@pytest.fixture(scope="module")
def direct_image() -> np.ndarray:
    img = np.array(lg.render(_reflected_scene(), spp=4, seed=11))
    # The reference must actually show the pattern: both checker colours, and background.
    flat = img.reshape(-1, 3)
    assert np.isclose(flat, [3.0, 2.0, 1.0], atol=1e-5).all(1).sum() > 30
    assert np.isclose(flat, [0.25, 0.5, 0.75], atol=1e-5).all(1).sum() > 30
    assert (flat == 0).all(1).sum() > 100
    return img


def _compare(img: np.ndarray, ref: np.ndarray) -> None:
    assert np.isfinite(img).all()
    diff = np.abs(img - ref).max(-1)
    # Sample-for-sample agreement, except where rounding moved a sample across an edge
    # of the pattern or the emitter (a sample changes a 4-spp pixel by >= 1/4 of a step).
    assert np.mean(diff > 1e-4 * ref.max()) < 0.03, np.mean(diff > 1e-4 * ref.max())
    assert abs(img.mean() / ref.mean() - 1) < 5e-3


def test_mirror_shows_the_reflected_emitter(direct_image: np.ndarray) -> None:
    img = np.array(lg.render(_mirror_scene(), spp=4, seed=11))
    _compare(img, direct_image)


def test_mirror_specular_reflectance_scales_the_image(direct_image: np.ndarray) -> None:
    img = np.array(lg.render(_mirror_scene(reflectance=0.5), spp=4, seed=11))
    _compare(img, 0.5 * direct_image)


def test_mirror_with_max_depth_one_shows_nothing() -> None:
    """max_depth 1 sees emitters directly only, and the emitter is out of view."""
    img = np.array(lg.render(_mirror_scene(max_depth=1), spp=2, seed=11))
    np.testing.assert_array_equal(img, 0.0)
