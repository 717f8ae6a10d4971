"""PyTorch interop through ``dr.wrap`` (skipped when torch is not installed)."""
from __future__ import annotations

import drjit as dr
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lumigrad as lg  # noqa: E402

from .conftest import load_example

KEY = "red.reflectance.value"




def test_torch_gradient_matches_drjit_chain_rule():
    """torch: x -> sigmoid(x) -> render -> mean; the gradient torch receives is
    lumigrad's reverse-mode gradient times sigmoid'(x) (same samples)."""
    example = load_example("torch_interop")
    scene = lg.cornell_box(res=16, spp=4, max_depth=3)
    params = lg.traverse(scene)
    render_with_colour = example.make_renderer(scene, params, spp=4)
    x = torch.tensor([0.3, -0.2, 0.1], requires_grad=True)
    image = render_with_colour(torch.sigmoid(x), 3)
    assert isinstance(image, torch.Tensor) and tuple(image.shape) == (16, 16, 3)
    assert image.requires_grad
    w = torch.from_numpy(np.random.default_rng(0).uniform(0, 1, (16, 16, 3)).astype(np.float32))
    (image * w).sum().backward()
    g_torch = x.grad.numpy().astype(np.float64)

    s = 1.0 / (1.0 + np.exp(-np.array([0.3, -0.2, 0.1])))
    params = lg.traverse(scene)
    c = lg.Color3f(*[float(v) for v in s])
    dr.enable_grad(c)
    params[KEY] = c
    params.update()
    img = lg.render(scene, params, spp=4, seed=3)
    np.testing.assert_allclose(np.array(img), image.detach().numpy(), rtol=1e-5, atol=1e-6)
    dr.backward(dr.sum(img * lg.TensorXf(w.numpy()), axis=None))
    g_dr = np.array(dr.grad(c), dtype=np.float64).ravel() * s * (1 - s)
    assert np.abs(g_dr).max() > 1e-3
    np.testing.assert_allclose(g_torch, g_dr, rtol=1e-4)


def test_torch_interop_example_recovers_the_colour(tmp_path):
    example = load_example("torch_interop")
    out = example.main(["--res", "16", "--spp", "4", "--iterations", "30",
                        "--output", str(tmp_path), "--quiet"])
    errors = out["errors"]
    assert np.isfinite(out["losses"]).all()
    assert errors[0] > 0.9
    assert errors[-1] < errors[0] / 20, errors
    np.testing.assert_allclose(out["final"], out["truth"], atol=0.2)
    for name in ("losses.png", "parameter_error.png", "result.png"):
        assert (tmp_path / name).stat().st_size > 0
