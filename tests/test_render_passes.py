"""Seeds and multi-pass rendering.

High sample counts are split into passes of at most ``MAX_LANES`` samples
(``lumigrad.integrators.base``); here ``MAX_LANES`` is made tiny so a small
render needs several passes. Every pass must draw fresh random numbers and the
passes must be weighted by their sample counts, so a split render is another
unbiased estimate of the same image with the same noise level as a one-pass
render of the same spp. The scene is the enclosure furnace (every pixel's
expectation is 1 + a + a² at max_depth 3), so both means can also be checked
against the truth.

Statistics: with ``n`` pixels, the difference of two images' pixel means has
standard error ``sqrt(s1²/n + s2²/n)``; the ratio of two sample variances of
``n`` near-Gaussian values has standard deviation about ``sqrt(4/n)``
(0.083 for 576 pixels), so a pass that repeated another's random numbers
(variance ratio 2) is far outside ``1 ± 4·0.083``.
"""
from __future__ import annotations

import numpy as np
import pytest

import lumigrad as lg
import lumigrad.integrators.base as base

from .test_render_support import A_ENC, Z_MAX, enclosure_scene, mean_z, series, two_sample_z

RES = 24
EXPECTED = series(A_ENC, 3)


@pytest.fixture(scope="module")
def scene() -> lg.Scene:
    return enclosure_scene({"type": "path", "max_depth": 3}, res=RES)


def _render(scene: lg.Scene, spp: int, seed: int) -> tuple[np.ndarray, int]:
    """(grey image, number of passes) from the scene's integrator."""
    calls: list[tuple[int, int]] = []
    img = scene.integrator.render(scene, scene.sensors[0], seed, spp,
                                  progress=lambda i, n: calls.append((i, n)))
    img = np.array(img)[..., 0]
    assert np.isfinite(img).all()
    return img, calls[-1][1]


def _variance_ratio_ok(a: np.ndarray, b: np.ndarray) -> bool:
    r = a.var(ddof=1) / b.var(ddof=1)
    return abs(r - 1.0) < Z_MAX * np.sqrt(4.0 / a.size)


def test_same_seed_reproduces_and_seeds_change_the_noise(scene: lg.Scene) -> None:
    a = np.array(lg.render(scene, spp=4, seed=5))
    b = np.array(lg.render(scene, spp=4, seed=5))
    c = np.array(lg.render(scene, spp=4, seed=6))
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.95  # (almost) every pixel's noise changed
    # ... into independent noise: var(a - c) = var(a) + var(c) (correlated noise: less)
    a0, c0 = a[..., 0].ravel(), c[..., 0].ravel()
    r = (a0 - c0).var(ddof=1) / (a0.var(ddof=1) + c0.var(ddof=1))
    assert abs(r - 1.0) < Z_MAX * np.sqrt(4.0 / a0.size), r


@pytest.mark.parametrize("spp,max_lanes_spp,n_passes", [(8, 4, 2), (7, 3, 3), (2, 1, 2)])
def test_split_render_matches_single_pass(scene: lg.Scene, monkeypatch: pytest.MonkeyPatch,
                                          spp: int, max_lanes_spp: int, n_passes: int) -> None:
    one, n1 = _render(scene, spp, seed=31)
    assert n1 == 1
    monkeypatch.setattr(base, "MAX_LANES", RES * RES * max_lanes_spp)
    split, n2 = _render(scene, spp, seed=31)
    assert n2 == n_passes
    # the split render is reproducible too
    np.testing.assert_array_equal(_render(scene, spp, seed=31)[0], split)
    # same expectation: each other and the truth
    assert abs(two_sample_z(split, one)) < Z_MAX
    assert abs(mean_z(split, EXPECTED)) < Z_MAX, split.mean()
    assert abs(mean_z(one, EXPECTED)) < Z_MAX, one.mean()
    # same noise level: the passes used independent samples, weighted by their counts
    assert _variance_ratio_ok(split, one), split.var() / one.var()


def test_split_render_through_public_render(scene: lg.Scene,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``lumigrad.render`` splits too (spp 6 in passes of 2) and stays unbiased."""
    monkeypatch.setattr(base, "MAX_LANES", RES * RES * 2)
    img = np.array(lg.render(scene, spp=6, seed=32))[..., 0]
    assert abs(mean_z(img, EXPECTED)) < Z_MAX
    monkeypatch.setattr(base, "MAX_LANES", 1 << 23)
    ref = np.array(lg.render(scene, spp=6, seed=32))[..., 0]
    assert _variance_ratio_ok(img, ref)
