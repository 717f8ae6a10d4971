"""lumigrad.viz: derivative figures, colour maps, loss curves, panels."""
from __future__ import annotations

import matplotlib
import numpy as np
import pytest

import lumigrad
from lumigrad import io, viz


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def test_derivative_figure_three_symmetric_panels():
    rng = np.random.default_rng(1)
    g = rng.normal(size=(12, 16, 3)).astype(np.float32)
    g[3, 4, 1] = -9.5  # the largest magnitude, in the green channel
    fig = viz.derivative_figure(lumigrad.TensorXf(g), title="d image / d param")
    axes = _image_axes(fig)
    assert len(axes) == 3
    assert [ax.get_title() for ax in axes] == ["R gradients", "G gradients", "B gradients"]
    for ax in axes:
        lo, hi = ax.images[0].get_clim()
        assert lo == pytest.approx(-9.5) and hi == pytest.approx(9.5)
    # A colour bar is present (an extra axes without images).
    assert len(fig.axes) == 4
    assert fig.get_suptitle() == "d image / d param"
    np.testing.assert_allclose(axes[2].images[0].get_array(), g[:, :, 2])


def test_derivative_figure_options():
    g = np.linspace(-1, 2, 20, dtype=np.float32).reshape(4, 5)
    fig = viz.derivative_figure(g)
    axes = _image_axes(fig)
    assert len(axes) == 1 and axes[0].images[0].get_clim() == pytest.approx((-2.0, 2.0))
    rgb = np.zeros((4, 5, 3), np.float32)
    fig = viz.derivative_figure(rgb, vlim=0.25, channels="G", cmap="RdBu")
    axes = _image_axes(fig)
    assert len(axes) == 1 and axes[0].get_title() == "G gradients"
    assert axes[0].images[0].get_clim() == pytest.approx((-0.25, 0.25))
    assert axes[0].images[0].get_cmap().name == "RdBu"
    # An all-zero derivative image still gives a valid (tiny, symmetric) range.
    lo, hi = _image_axes(viz.derivative_figure(rgb))[0].images[0].get_clim()
    assert lo == -hi and hi > 0
    with pytest.raises(ValueError, match="channel"):
        viz.derivative_figure(rgb, channels="A")
    with pytest.raises(ValueError):
        viz.derivative_figure(rgb, vlim=-1.0)


def test_diverging_rgb_maps_zero_to_the_centre():
    x = np.array([[-2.0, 0.0, 1.0, 4.0, np.nan]], np.float32)
    c = viz.diverging_rgb(x, 2.0)
    cmap = matplotlib.colormaps["coolwarm"]
    assert c.shape == (1, 5, 3) and c.min() >= 0 and c.max() <= 1
    np.testing.assert_allclose(c[0, 0], cmap(0.0)[:3], atol=1e-6)
    np.testing.assert_allclose(c[0, 1], cmap(0.5)[:3], atol=1e-6)
    np.testing.assert_allclose(c[0, 2], cmap(0.75)[:3], atol=1e-6)
    np.testing.assert_allclose(c[0, 3], cmap(1.0)[:3], atol=1e-6)  # saturates
    np.testing.assert_allclose(c[0, 4], cmap(0.5)[:3], atol=1e-6)  # NaN -> zero colour


def test_files_are_written(tmp_path):
    g = np.random.default_rng(2).normal(size=(8, 8, 3))
    out = viz.save_derivative_image(g, tmp_path / "figs" / "d.png")
    img = io.read_image(out)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 100
    viz.plot_losses([1.0, 0.3, 0.1, 0.05], tmp_path / "loss.png", title="loss")
    assert io.read_image(tmp_path / "loss.png").shape[0] > 50
    fig = viz.side_by_side([np.full((6, 6, 3), 0.5), np.zeros((6, 6))], ["before", "after"],
                           tmp_path / "cmp.png")
    assert [ax.get_title() for ax in fig.axes] == ["before", "after"]
    # Panels are tonemapped like write_image's PNG output.
    np.testing.assert_allclose(fig.axes[0].images[0].get_array()[0, 0],
                               io.linear_to_srgb(0.5), atol=1e-6)
    assert (tmp_path / "cmp.png").stat().st_size > 0
    with pytest.raises(ValueError):
        viz.side_by_side([np.zeros((2, 2))], ["a", "b"])
