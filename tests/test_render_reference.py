"""The path tracer against Mitsuba 3.9.1's reference render of the Cornell box.

Tolerances come from the Monte Carlo noise of our own estimate: the image is
rendered as K independent sub-images; the spread of each pixel across them
estimates that pixel's variance, and since pixels are independent estimates
(each sample lands in exactly one pixel: filter importance sampling), a
block's standard error is σ_b = sqrt(mean(var_pixel) / (K · pixels per block)).
Every block must lie within 5σ_b of the reference (whose 4096 spp make its own
noise negligible).
"""
from __future__ import annotations

import numpy as np
import pytest

import lumigrad as lg

from .conftest import REFERENCE, SCENES

K = 4           # independent sub-images
SPP = 16        # samples per pixel of each (64 in all)
BLOCK = 16      # block size in pixels (256 pixels, 16k samples per block)


def _blocks(a: np.ndarray) -> np.ndarray:
    h, w, c = a.shape
    return a.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, c).mean(axis=(1, 3))


@pytest.fixture(scope="module")
def cbox_renders() -> list[np.ndarray]:
    scene = lg.load_file(SCENES / "cbox.xml")
    return [np.array(lg.render(scene, spp=SPP, seed=100 + k)) for k in range(K)]


def test_cbox_matches_mitsuba_reference(cbox_renders: list[np.ndarray]) -> None:
    ref = np.load(REFERENCE / "cbox_256.npy")
    stack = np.stack(cbox_renders)                            # K x H x W x 3
    mean = _blocks(stack.mean(0))
    var_px = stack.var(0, ddof=1)
    sigma = np.sqrt(_blocks(var_px) / (K * BLOCK * BLOCK))
    ref_b = _blocks(ref)
    z = (mean - ref_b) / (sigma + 1e-4 * np.abs(ref_b) + 1e-6)
    assert np.isfinite(mean).all()
    # Per block: 6σ (768 z-scores of a heavy-tailed estimator; a real bias of a
    # few percent in any block shows up far beyond that).
    worst = np.unravel_index(np.abs(z).argmax(), z.shape)
    assert np.abs(z).max() < 6.0, f"worst block z-score {z[worst]:.2f} at {worst}"
    # Globally the z-scores must look like noise: no shift, no excess spread.
    assert abs(z.mean()) < 1.0 and z.std() < 1.5, (z.mean(), z.std())
    rel = np.abs(mean - ref_b) / np.maximum(ref_b, 1e-3)
    bright = ref_b > 0.05
    assert np.median(rel[bright]) < 0.02


def test_cbox_mean_brightness_within_one_percent(cbox_renders: list[np.ndarray]) -> None:
    ref = np.load(REFERENCE / "cbox_256.npy")
    ours = np.mean(cbox_renders, axis=0).mean(axis=(0, 1))
    theirs = ref.mean(axis=(0, 1))
    assert np.all(np.abs(ours / theirs - 1.0) < 0.01), (ours, theirs)
