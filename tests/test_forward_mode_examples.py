"""The forward-mode examples run end to end (tiny images) and produce what they claim."""
from __future__ import annotations

import numpy as np

from .conftest import load_example





def test_forward_derivative_image_example(tmp_path, capsys):
    out = load_example("forward_derivative_image").main(
        ["--res", "16", "--spp", "4", "--output", str(tmp_path)])
    g, gt = out["grad_image"], out["grad_theta"]
    assert g.shape == (16, 16, 3) and np.isfinite(g).all() and np.isfinite(gt).all()
    # the green wall is on the right: that is where the derivative is
    assert g[:, 8:].sum() > 2 * abs(g[:, :8].sum()) > 0
    # d/dθ of (0.2, 0.5, 0.8)θ is about (0.2, 0.5, 0.8) times the per-channel
    # derivative (same derivative samples; only inter-reflections off the green
    # wall itself make dI/dρ depend on ρ: blue goes from 0.08 to 0.4, +10 %)
    ratio = gt.sum(axis=(0, 1)) / g.sum(axis=(0, 1))
    np.testing.assert_allclose(ratio, [0.2, 0.5, 0.8], rtol=0.2)
    for name in ("image.png", "grad_image.png", "grad_image.exr", "grad_theta.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert "Remapping colors within range" in capsys.readouterr().out


def test_psdr_rotation_derivative_example(tmp_path, capsys):
    out = load_example("psdr_rotation_derivative").main(
        ["--res", "32", "--spp", "32", "--output", str(tmp_path)])
    d = out["image_deriv"]
    assert d.shape == (32, 32, 3) and np.isfinite(d).all() and np.abs(d).max() > 1e-3
    # The boundary terms carry most of this derivative: with them the image
    # agrees with finite differences (noisy at this size), without them it is
    # almost all wrong.
    assert out["error_interior"] > 0.8
    assert out["error"] < 0.3
    g = out["vertex_grad"]
    assert g.shape == (24, 3) and np.isfinite(g).all() and np.abs(g).max() > 0
    # reverse mode equals forward mode along u (same samples)
    assert abs(out["grad_dot_u"] - out["forward_dot_u"]) <= 1e-4 * abs(out["forward_dot_u"])
    assert np.sign(out["grad_dot_u"]) == np.sign(out["fd_dot_u"])
    text = capsys.readouterr().out
    assert "finite differences" in text
    for name in ("image.png", "image_deriv.png", "image_deriv.exr",
                 "interior_boundary_total_fd.png"):
        assert (tmp_path / name).stat().st_size > 0, name
