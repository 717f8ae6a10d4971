"""Inverse-square law: a point light above a diffuse plane.

A point light of intensity ``I`` (W/sr) at ``x_l`` illuminates a Lambertian
plane of albedo ρ; the radiance leaving the plane point ``x`` is

    L(x) = ρ/π · I · cos θ / r²,   cos θ = h / r,  r = |x_l - x|,

with ``h`` the light's height. Nothing else contributes (no environment, the
plane cannot see itself), so the only randomness in a pixel is where its
samples land in the pixel footprint (box filter): a pixel's expectation is the
footprint average of ``L``, and its standard error is the footprint standard
deviation over ``sqrt(spp)``, both computed here by a 16×16 sub-pixel grid.
"""
from __future__ import annotations

import numpy as np
import pytest

import lumigrad as lg

from .test_render_support import Z_MAX, camera_rays, diffuse, look_at, pixel_centres, \
    pixel_subsamples, sensor_dict

RHO = np.array([0.8, 0.5, 0.2])
INTENSITY = 3.0
CAM_H = 3.0
FOV = 60.0


def _scene(light_pos: tuple, width: int, height: int, rfilter: dict,
           integrator: dict) -> lg.Scene:
    return lg.load_dict({
        "type": "scene",
        "plane": {"type": "rectangle", "to_world": lg.Transform4f().scale([20.0, 20.0, 1.0]),
                  "bsdf": diffuse(RHO.tolist())},
        "light": {"type": "point", "position": list(light_pos), "intensity": INTENSITY},
        "sensor": sensor_dict((0, 0, CAM_H), (0, 0, 0), (0, 1, 0), fov=FOV, width=width,
                              height=height, rfilter=rfilter),
        "integrator": integrator,
    })


def _radiance(x: np.ndarray, light: np.ndarray) -> np.ndarray:
    """ρ/π · I · cosθ / r² at plane points ``x`` (..., 3), per channel."""
    v = light - x
    r2 = np.einsum("...i,...i", v, v)
    cos = light[2] / np.sqrt(r2)
    return (RHO / np.pi) * (INTENSITY * cos / r2)[..., None]


def _plane_hits(sx: np.ndarray, sy: np.ndarray, w: int, h: int) -> np.ndarray:
    o, d = camera_rays(look_at((0, 0, CAM_H), (0, 0, 0)).numpy(), FOV, w, h, sx, sy)
    t = -o[..., 2] / d[..., 2]
    return o + t[..., None] * d


@pytest.mark.parametrize("integrator", [{"type": "path", "max_depth": -1}, {"type": "direct"}])
def test_point_light_image_matches_inverse_square_law(integrator: dict) -> None:
    w, h, spp = 24, 20, 16
    light = np.array([0.4, -0.3, 0.7])
    img = np.array(lg.render(_scene(tuple(light), w, h, {"type": "box"}, integrator),
                             spp=spp, seed=7), dtype=np.float64)
    sx, sy = pixel_subsamples(w, h, 16)
    L = _radiance(_plane_hits(sx, sy, w, h), light)          # (h, w, 256, 3)
    expected = L.mean(axis=2)
    se = L.std(axis=2) / np.sqrt(spp)
    # float32 rounding of the renderer: a few ulps of the value
    tol = np.sqrt(se ** 2 + (4e-6 * expected) ** 2)
    z = (img - expected) / tol
    assert np.isfinite(img).all()
    # Every pixel within 5.5σ (about 1e-8 per pixel for a Gaussian; 1440 values)...
    worst = np.unravel_index(np.abs(z).argmax(), z.shape)
    assert np.abs(z).max() < 5.5, (worst, img[worst], expected[worst])
    # ...no systematic shift, and the spread is the predicted one: the mean of z²
    # is 1 ± sqrt(2/n) (= ±0.037); a wrong footprint or filter would change it.
    assert abs(z.mean()) < Z_MAX / np.sqrt(z.size)
    assert 0.8 < np.mean(z ** 2) < 1.2, np.mean(z ** 2)


@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_point_light_inverse_square_at_pixel_centre(offset: float) -> None:
    """Centre pixel (sampled at its centre by a tiny box filter) for heights 0.5, 1, 2:
    exactly ρ/π · I · h / (offset² + h²)^{3/2}; the ratio between heights follows."""
    w = h = 9  # odd: the centre pixel looks straight down at the origin
    values = []
    for height in (0.5, 1.0, 2.0):
        scene = _scene((offset, 0.0, height), w, h, {"type": "box", "radius": 1e-4},
                       {"type": "path", "max_depth": 2})
        img = np.array(lg.render(scene, spp=1, seed=8), dtype=np.float64)
        values.append(img[h // 2, w // 2])
        expected = RHO / np.pi * INTENSITY * height / (offset ** 2 + height ** 2) ** 1.5
        np.testing.assert_allclose(img[h // 2, w // 2], expected, rtol=1e-4)
        # and at every pixel centre
        sx, sy = pixel_centres(w, h)
        np.testing.assert_allclose(img, _radiance(_plane_hits(sx, sy, w, h),
                                                  np.array([offset, 0.0, height])), rtol=1e-3)
    if offset == 0.0:
        # inverse-square law: halving the distance quadruples the radiance
        np.testing.assert_allclose(values[0] / values[1], 4.0, rtol=1e-4)
        np.testing.assert_allclose(values[1] / values[2], 4.0, rtol=1e-4)
