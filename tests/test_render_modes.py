"""Render modes with exact answers: ``max_depth = 1``, ``hide_emitters``, the
``aov`` integrator on a known plane, and rendering from a second sensor.

Where the answer is a function of the camera ray (what it hits first), the
film is sampled at the pixel centres by a box filter of radius 1e-4 pixels and
the expected image is computed in numpy by intersecting the centre rays with
the scene's rectangles; pixels whose classification changes within 1e-3
pixels of the centre are left out (a sample there may land on either side).
"""
from __future__ import annotations

import numpy as np
import pytest

import lumigrad as lg

from .test_render_support import A_ENC, Z_MAX, camera_rays, diffuse, enclosure_scene, look_at, \
    mean_z, pixel_centres, rgb, sensor_dict

TINY_BOX = {"type": "box", "radius": 1e-4}
W, H = 32, 24
CAM, TARGET, UP, FOV = (0.0, -4.0, 2.0), (0.0, 0.0, 0.5), (0.0, 0.0, 1.0), 50.0
ENV = 0.25
LE = np.array([2.0, 3.0, 4.0])


def _rect_front() -> lg.Transform4f:
    """Emitter facing the camera (its +Z towards -y, up)."""
    return look_at((-0.8, 0.0, 0.8), (-0.8, -1.0, 1.0), (0, 0, 1)).scale([0.5, 0.4, 1.0])


def _rect_back() -> lg.Transform4f:
    """Emitter facing away from the camera: one-sided, so black from here."""
    return look_at((0.8, 0.0, 0.8), (0.8, 1.0, 1.0), (0, 0, 1)).scale([0.5, 0.4, 1.0])


def _floor() -> lg.Transform4f:
    return lg.Transform4f().scale([3.0, 3.0, 1.0])


def _scene(integrator: dict, sensors: dict | None = None) -> lg.Scene:
    d = {
        "type": "scene",
        "floor": {"type": "rectangle", "to_world": _floor(), "bsdf": diffuse(0.5)},
        "front": {"type": "rectangle", "to_world": _rect_front(),
                  "emitter": {"type": "area", "radiance": rgb(LE.tolist())}},
        "back": {"type": "rectangle", "to_world": _rect_back(),
                 "emitter": {"type": "area", "radiance": rgb(LE.tolist())}},
        "lamp": {"type": "point", "position": [0.0, -1.0, 2.0], "intensity": 5.0},
        "env": {"type": "constant", "radiance": rgb(ENV)},
        "integrator": integrator,
    }
    d.update(sensors or {"sensor": sensor_dict(CAM, TARGET, UP, fov=FOV, width=W, height=H,
                                                 rfilter=TINY_BOX)})
    return lg.load_dict(d)


def _rect_hit(tw: lg.Transform4f, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Distance along the rays to the rectangle [-1,1]² (z=0) placed by ``tw``; inf on a miss."""
    inv = np.linalg.inv(tw.numpy())
    ol = o @ inv[:3, :3].T + inv[:3, 3]
    dl = d @ inv[:3, :3].T
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -ol[..., 2] / dl[..., 2]
    p = ol + t[..., None] * dl
    ok = (t > 0) & (np.abs(p[..., 0]) <= 1) & (np.abs(p[..., 1]) <= 1)
    return np.where(ok, t, np.inf)


def _classify(dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """Per pixel: 0 floor, 1 front emitter, 2 back emitter, 3 background."""
    sx, sy = pixel_centres(W, H)
    o, d = camera_rays(look_at(CAM, TARGET, UP).numpy(), FOV, W, H, sx + dx / W, sy + dy / H)
    t = np.stack([_rect_hit(tw, o, d) for tw in (_floor(), _rect_front(), _rect_back())]
                 + [np.full(sx.shape, 1e30)], -1)
    return t.argmin(-1)


@pytest.fixture(scope="module")
def classes() -> np.ndarray:
    c = _classify()
    stable = np.ones_like(c, dtype=bool)
    for dx, dy in [(1e-3, 1e-3), (-1e-3, 1e-3), (1e-3, -1e-3), (-1e-3, -1e-3)]:
        stable &= _classify(dx, dy) == c
    c = np.where(stable, c, -1)
    for k in range(4):
        assert (c == k).sum() > 10, f"class {k} barely visible: the test scene is wrong"
    return c


def test_max_depth_one_shows_only_emitters(classes: np.ndarray) -> None:
    """Emitters seen directly: the front of the area light, the environment; the
    lit floor and the back of the one-sided light are black; the point light is
    invisible."""
    img = np.array(lg.render(_scene({"type": "path", "max_depth": 1}), spp=2, seed=41))
    assert np.isfinite(img).all()
    np.testing.assert_array_equal(img[classes == 0], 0.0)
    np.testing.assert_array_equal(img[classes == 2], 0.0)
    np.testing.assert_allclose(img[classes == 1], np.broadcast_to(LE, img[classes == 1].shape),
                               rtol=1e-6)
    np.testing.assert_allclose(img[classes == 3], ENV, rtol=1e-6)


def test_hide_emitters_removes_exactly_the_directly_seen_emission(classes: np.ndarray) -> None:
    """With the same seed, hiding emitters changes nothing but the emission seen
    directly: the floor (lit by every emitter) is unchanged, the front of the
    light loses exactly L_e, the background becomes 0."""
    shown = np.array(lg.render(_scene({"type": "path", "max_depth": 3}), spp=4, seed=42))
    hidden = np.array(lg.render(_scene({"type": "path", "max_depth": 3,
                                        "hide_emitters": True}), spp=4, seed=42))
    assert np.isfinite(hidden).all()
    assert shown[classes == 0].mean() > 0.05  # the floor is lit
    np.testing.assert_allclose(hidden[classes == 0], shown[classes == 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hidden[classes == 2], shown[classes == 2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(shown[classes == 1] - hidden[classes == 1],
                               np.broadcast_to(LE, hidden[classes == 1].shape), rtol=1e-5)
    np.testing.assert_array_equal(hidden[classes == 3], 0.0)
    only = np.array(lg.render(_scene({"type": "path", "max_depth": 1, "hide_emitters": True}),
                              spp=2, seed=41))
    np.testing.assert_array_equal(only, 0.0)


@pytest.mark.parametrize("integrator,expected", [
    ({"type": "path", "max_depth": 3, "hide_emitters": True}, A_ENC + A_ENC ** 2),
    ({"type": "direct", "hide_emitters": True}, A_ENC),
])
def test_hide_emitters_in_the_enclosure_furnace(integrator: dict, expected: float) -> None:
    """Inside the emissive enclosure, hiding the walls seen directly removes the
    k = 0 term of Σ a^k only: a + a² at max_depth 3, a for ``direct``."""
    img = np.array(lg.render(enclosure_scene(integrator), spp=16, seed=43))[..., 0]
    assert abs(mean_z(img, expected)) < Z_MAX, img.mean()


# ---------------------------------------------------------------------------------
# AOVs on a known plane
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("near_clip", [0.01, 0.5])
def test_aov_depth_normal_position_on_a_plane(near_clip: float) -> None:
    """A tilted plane seen by a tilted camera. ``depth`` is the ray parameter t of
    the hit, measured — as in Mitsuba 3, whose camera rays start on the near
    plane — from the near plane: |hit - camera| - near_clip / cos α, α the angle
    between the pixel's ray and the optical axis. Normals are the plane's."""
    w, h, fov = 20, 16, 45.0
    plane = lg.Transform4f().translate([0.2, 0.1, -0.3]).rotate([1, 1, 0], 25.0) \
        .scale([30.0, 30.0, 1.0])
    cam = look_at((1.0, -3.0, 4.0), (0.0, 0.5, 0.0), (0, 0, 1))
    scene = lg.load_dict({
        "type": "scene",
        "plane": {"type": "rectangle", "to_world": plane},
        "sensor": {"type": "perspective", "fov": fov, "to_world": cam, "near_clip": near_clip,
                   "film": {"type": "hdrfilm", "width": w, "height": h, "rfilter": TINY_BOX}},
        "integrator": {"type": "aov", "aovs": "d:depth,n:sh_normal,g:geo_normal,p:position"},
    })
    img = np.array(lg.render(scene, spp=1, seed=44), dtype=np.float64)
    assert img.shape == (h, w, 10)
    sx, sy = pixel_centres(w, h)
    o, d = camera_rays(cam.numpy(), fov, w, h, sx, sy)
    t = _rect_hit(plane, o, d)
    assert np.isfinite(t).all()
    p = o + t[..., None] * d
    cos_a = d @ cam.numpy()[:3, 2]
    np.testing.assert_allclose(img[..., 0], t - near_clip / cos_a, rtol=2e-5)
    normal = plane.numpy()[:3, 2] / np.linalg.norm(plane.numpy()[:3, 2])
    np.testing.assert_allclose(img[..., 1:4], np.broadcast_to(normal, (h, w, 3)), atol=1e-6)
    np.testing.assert_allclose(img[..., 4:7], np.broadcast_to(normal, (h, w, 3)), atol=1e-6)
    np.testing.assert_allclose(img[..., 7:10], p, atol=2e-4)


def test_aov_back_side_hits_and_misses() -> None:
    """The back of a plane is a hit like the front (normals are not flipped towards
    the viewer); rays that miss everything give 0 in every channel."""
    scene = lg.load_dict({
        "type": "scene",
        "plane": {"type": "rectangle"},
        "sensor": sensor_dict((0, 0, -3), (0, 0, 0), (0, 1, 0), fov=10, width=8, height=8,
                              rfilter=TINY_BOX),
        "integrator": {"type": "aov", "aovs": "d:depth,n:sh_normal"},
    })
    # The camera is behind the rectangle and the centre rays hit its back.
    img = np.array(lg.render(scene, spp=1))
    sx, sy = pixel_centres(8, 8)
    _, d = camera_rays(look_at((0, 0, -3), (0, 0, 0)).numpy(), 10.0, 8, 8, sx, sy)
    np.testing.assert_allclose(img[..., 0], (3.0 - 0.01) / d[..., 2], rtol=1e-5)
    np.testing.assert_allclose(img[..., 1:], np.broadcast_to([0, 0, 1.0], (8, 8, 3)), atol=1e-6)
    scene2 = lg.load_dict({
        "type": "scene",
        "plane": {"type": "rectangle", "to_world": lg.Transform4f().translate([10.0, 0, 0])},
        "sensor": sensor_dict((0, 0, -3), (0, 0, 0), (0, 1, 0), fov=10, width=8, height=8,
                              rfilter=TINY_BOX),
        "integrator": {"type": "aov", "aovs": "d:depth,n:sh_normal"},
    })
    np.testing.assert_array_equal(np.array(lg.render(scene2, spp=1)), 0.0)


# ---------------------------------------------------------------------------------
# A second sensor
# ---------------------------------------------------------------------------------
def test_render_from_a_second_sensor() -> None:
    integ = {"type": "path", "max_depth": 3}
    s0 = sensor_dict(CAM, TARGET, UP, fov=FOV, width=W, height=H)
    s1 = sensor_dict((3.0, 2.0, 2.5), (0, 0, 0.3), UP, fov=40, width=20, height=28)
    both = _scene(integ, {"sensor": s0, "top": s1})
    assert len(both.sensors) == 2
    only1 = _scene(integ, {"top": s1})
    img1 = np.array(lg.render(both, sensor=1, spp=4, seed=45))
    assert img1.shape == (28, 20, 3)
    np.testing.assert_array_equal(img1, np.array(lg.render(only1, spp=4, seed=45)))
    # the sensor object itself works too
    np.testing.assert_array_equal(img1, np.array(lg.render(both, sensor=both.sensors[1], spp=4,
                                                           seed=45)))
    img0 = np.array(lg.render(both, sensor=0, spp=4, seed=45))
    assert img0.shape == (H, W, 3)
    assert np.isfinite(img0).all() and np.isfinite(img1).all()


# ---------------------------------------------------------------------------------
# A scene without any emitter
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("integrator", [{"type": "path", "max_depth": 3},
                                        {"type": "path", "max_depth": -1}, {"type": "direct"}])
def test_scene_without_emitters_renders_black(integrator: dict) -> None:
    """No light, no image (Mitsuba renders such scenes black, e.g. while a user
    builds a scene step by step): the path tracer must return zeros, not fail."""
    scene = lg.load_dict({
        "type": "scene",
        "plane": {"type": "rectangle", "bsdf": diffuse(0.5)},
        "sensor": sensor_dict((0, 0, 3), (0, 0, 0), fov=40, width=8, height=8),
        "integrator": integrator,
    })
    np.testing.assert_array_equal(np.array(lg.render(scene, spp=2)), 0.0)
