"""Furnace tests: scenes whose radiance is known in closed form.

1. **Convex furnace**: a diffuse sphere of albedo ``a`` inside a ``constant``
   environment of radiance 1. Every direction leaving a convex surface escapes,
   so the incident radiance on the sphere is 1 over its whole hemisphere and
   the outgoing radiance is ``a`` (∫ a/π cos θ dω = a) — for every
   ``max_depth >= 2``, since a convex object never sees itself. With
   ``max_depth = 1`` only emitters are visible: 0 on the sphere, 1 off it.
   With ``a = 1`` this is the classic white furnace: radiance 1 everywhere.

2. **Enclosure furnace**: the camera inside a closed cube whose inward faces are
   diffuse (albedo ``a``) *and* emit radiance 1. Irradiance inside a closed
   enclosure of uniform radiance ``L`` is ``π L`` for any shape, so each bounce
   multiplies by ``a`` and the radiance with ``max_depth = d`` is the geometric
   series ``Σ_{k=0}^{d-1} a^k`` (1, 1 + a, ...); unbounded (Russian roulette
   must keep it unbiased) it is ``1 / (1 - a)``; the ``direct`` integrator gives
   ``1 + a``. This exercises next-event estimation of area lights, BSDF
   sampling, their MIS combination, depth counting and Russian roulette.

Tolerances: each pixel is an independent estimate with the same expectation,
so the mean over pixels has standard error ``s / sqrt(n)``; we require
``|z| < 4`` (see ``test_render_support``).
"""
from __future__ import annotations

import numpy as np
import pytest

import lumigrad as lg

from .test_render_support import A_ENC, Z_MAX, diffuse, enclosure_scene, look_at, mean_z, \
    rgb, sensor_dict, series, sphere_coverage

RES = 32
FOV = 30.0
CAM = (0.0, 0.0, 5.0)


def _sphere_scene(a: float, integrator: dict) -> lg.Scene:
    return lg.load_dict({
        "type": "scene",
        "sphere": {"type": "sphere", "bsdf": diffuse([a, a, a])},
        "env": {"type": "constant", "radiance": rgb(1.0)},
        "sensor": sensor_dict(CAM, (0, 0, 0), fov=FOV, width=RES, height=RES),
        "integrator": integrator,
    })


@pytest.fixture(scope="module")
def coverage() -> np.ndarray:
    """Fraction of each pixel covered by the unit sphere (analytic, 8×8 rays)."""
    cov = sphere_coverage(look_at(CAM, (0, 0, 0)).numpy(), FOV, RES, RES, (0, 0, 0), 1.0)
    # The tessellated sphere lies inside the true one by ~1.5e-4 of its radius:
    # shrink "fully covered" by one pixel so silhouette pixels are never counted.
    inner = cov == 1.0
    inner[1:-1, 1:-1] &= inner[:-2, 1:-1] & inner[2:, 1:-1] & inner[1:-1, :-2] & inner[1:-1, 2:]
    assert inner.sum() > 100 and (cov == 0).sum() > 300
    return np.where(inner, 1.0, np.where(cov == 0.0, 0.0, 0.5))


def _check_grey(img: np.ndarray) -> np.ndarray:
    """The scenes are grey: all channels are the same estimate."""
    assert np.isfinite(img).all()
    np.testing.assert_array_equal(img[..., 0], img[..., 1])
    np.testing.assert_array_equal(img[..., 0], img[..., 2])
    return img[..., 0]


def test_white_furnace_unbounded_depth(coverage: np.ndarray) -> None:
    """Albedo 1, max_depth -1: radiance 1 everywhere, on, off and across the silhouette."""
    img = _check_grey(np.array(lg.render(_sphere_scene(1.0, {"type": "path", "max_depth": -1}),
                                         spp=16, seed=1)))
    np.testing.assert_allclose(img[coverage == 0], 1.0, rtol=1e-6)
    on = img[coverage == 1]
    assert abs(mean_z(on, 1.0)) < Z_MAX, (on.mean(), on.std())
    # Silhouette pixels mix sphere and background samples: still 1 in expectation.
    assert abs(mean_z(img[coverage == 0.5], 1.0)) < Z_MAX
    assert abs(mean_z(img, 1.0)) < Z_MAX


@pytest.mark.parametrize("max_depth", [1, 2, 3, -1])
def test_convex_furnace_albedo(coverage: np.ndarray, max_depth: int) -> None:
    """Albedo 0.6: 0 on the sphere with max_depth 1 (emitters only), else 0.6 at every depth."""
    a = 0.6
    img = _check_grey(np.array(lg.render(
        _sphere_scene(a, {"type": "path", "max_depth": max_depth}), spp=16, seed=2)))
    np.testing.assert_allclose(img[coverage == 0], 1.0, rtol=1e-6)
    on = img[coverage == 1]
    if max_depth == 1:
        np.testing.assert_array_equal(on, 0.0)
    else:
        assert abs(mean_z(on, a)) < Z_MAX, (on.mean(), on.std(ddof=1) / np.sqrt(on.size))


def test_convex_furnace_direct_integrator(coverage: np.ndarray) -> None:
    a = 0.6
    img = _check_grey(np.array(lg.render(_sphere_scene(a, {"type": "direct"}), spp=16, seed=3)))
    np.testing.assert_allclose(img[coverage == 0], 1.0, rtol=1e-6)
    assert abs(mean_z(img[coverage == 1], a)) < Z_MAX


# ---------------------------------------------------------------------------------
# Enclosure furnace (scene: test_render_support.enclosure_scene)
# ---------------------------------------------------------------------------------
def test_enclosure_emitters_only_is_exact() -> None:
    """max_depth 1: the camera sees the emitting walls only: exactly 1, no noise."""
    img = _check_grey(np.array(lg.render(enclosure_scene({"type": "path", "max_depth": 1}),
                                         spp=4)))
    np.testing.assert_allclose(img, 1.0, rtol=1e-6)


@pytest.mark.parametrize("max_depth,rr_depth", [(2, 5), (3, 5), (5, 5), (5, 1), (-1, 5),
                                                (-1, 1)])
def test_enclosure_geometric_series(max_depth: int, rr_depth: int) -> None:
    """Radiance Σ_{k<d} a^k at max_depth d; 1/(1-a) unbounded, with Russian roulette
    from bounce ``rr_depth`` (rr_depth 1: roulette at every bounce)."""
    scene = enclosure_scene({"type": "path", "max_depth": max_depth, "rr_depth": rr_depth})
    img = _check_grey(np.array(lg.render(scene, spp=16, seed=4)))
    expected = series(A_ENC, max_depth)
    z = mean_z(img, expected)
    assert abs(z) < Z_MAX, (img.mean(), expected, z)
    # and the noise is small enough for the test to mean something
    assert img.std(ddof=1) / np.sqrt(img.size) < 0.01 * expected


def test_enclosure_direct_integrator() -> None:
    """``direct``: emitters seen directly plus one bounce = 1 + a."""
    img = _check_grey(np.array(lg.render(enclosure_scene({"type": "direct"}), spp=16, seed=5)))
    assert abs(mean_z(img, 1.0 + A_ENC)) < Z_MAX, img.mean()


def test_enclosure_albedo_zero_is_exact() -> None:
    """A black enclosure: only the directly seen emission, at any depth, without noise."""
    img = _check_grey(np.array(lg.render(
        enclosure_scene({"type": "path", "max_depth": -1}, a=0.0), spp=4, seed=6)))
    np.testing.assert_allclose(img, 1.0, rtol=1e-6)
