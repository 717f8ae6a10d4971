"""Forward-mode derivative image of the Cornell box against Mitsuba 3.9.1's.

``tests/data/reference/cbox_256_d_green_reflectance`` (a copy of
``../shared/reference/``'s) is the derivative of the
256² image with respect to ``green.reflectance.value`` with every channel
seeded with 1 (4096 spp). As for the primal image, tolerances come from our
own Monte Carlo noise (per-pixel variance over K independent derivative
images; pixels are independent estimates), see test_render_reference.py.
"""
from __future__ import annotations

import numpy as np
import pytest

import lumigrad as lg

from .conftest import REFERENCE, SCENES

K = 4
SPP = 16
BLOCK = 16


def _blocks(a: np.ndarray) -> np.ndarray:
    h, w, c = a.shape
    return a.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, c).mean(axis=(1, 3))


@pytest.fixture(scope="module")
def derivative_images() -> list[np.ndarray]:
    scene = lg.load_file(SCENES / "cbox.xml")
    return [np.array(lg.derivative_image(scene, "green.reflectance.value", spp=SPP,
                                         seed=200 + k)) for k in range(K)]


def test_green_reflectance_derivative_matches_mitsuba(derivative_images: list) -> None:
    ref = np.load(REFERENCE / "cbox_256_d_green_reflectance.npy")
    stack = np.stack(derivative_images)
    assert np.isfinite(stack).all()
    mean = _blocks(stack.mean(0))
    sigma = np.sqrt(_blocks(stack.var(0, ddof=1)) / (K * BLOCK * BLOCK))
    ref_b = _blocks(ref)
    z = (mean - ref_b) / (sigma + 1e-4 * np.abs(ref_b).max() + 1e-6)
    worst = np.unravel_index(np.abs(z).argmax(), z.shape)
    assert np.abs(z).max() < 6.0, f"worst block z-score {z[worst]:.2f} at {worst}"
    assert abs(z.mean()) < 1.0 and z.std() < 1.5, (z.mean(), z.std())
    # The bulk of the signal (the green wall itself) within 2 %.
    total_ours, total_ref = stack.mean(0).sum(axis=(0, 1)), ref.sum(axis=(0, 1))
    assert np.all(np.abs(total_ours / total_ref - 1.0) < 0.02), (total_ours, total_ref)
