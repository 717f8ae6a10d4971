"""Forward mode as in Mitsuba's tutorial, latent variables, ``seed_grad``/``spp_grad``,
and the boundary-term warning for geometry and camera parameters.

Scenes: the built-in Cornell box at 16×16 with ``max_depth=4`` (below the
Russian-roulette depth, so path lengths do not depend on the parameters and
finite differences with common random numbers are exact up to O(ε²)).
"""
from __future__ import annotations

import warnings

import drjit as dr
import numpy as np
import pytest

import lumigrad as lg
from lumigrad.integrators.base import grad_seed

RES = 16
KEY = "green.reflectance.value"


@pytest.fixture()
def cbox():
    return lg.cornell_box(res=RES, spp=4, max_depth=4)


def _render_np(scene, params, **kw) -> np.ndarray:
    return np.array(lg.render(scene, params, **kw), dtype=np.float64)


def _fd_colour(scene, key, colour_of, theta, eps, seed, spp) -> np.ndarray:
    """Central difference of the image in θ where ``params[key] = colour_of(θ)``."""
    params = lg.traverse(scene)
    out = []
    for t in (theta + eps, theta - eps):
        params[key] = colour_of(t)
        params.update()
        out.append(_render_np(scene, params, spp=spp, seed=seed))
    return (out[0] - out[1]) / (2 * eps)


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def test_mitsuba_tutorial_workflow(cbox):
    """params = traverse(scene); dr.enable_grad(params[key]); params.update();
    image = render(...); dr.forward(params[key]); dr.grad(image)."""
    params = lg.traverse(cbox)
    c0 = np.array(params[KEY], dtype=np.float64).ravel()
    dr.enable_grad(params[KEY])
    params.update()
    image = lg.render(cbox, params, spp=4, seed=3, seed_grad=3)
    dr.forward(params[KEY])
    grad = np.array(dr.grad(image), dtype=np.float64)
    assert grad.shape == (RES, RES, 3) and np.isfinite(grad).all()
    # dr.forward seeds every channel with 1: the FD direction is (1, 1, 1)
    fd = _fd_colour(cbox, KEY, lambda t: lg.Color3f(*[float(x) for x in c0 + t]), 0.0, 0.01,
                    seed=3, spp=4)
    assert np.abs(fd).max() > 0.05
    assert _rel_err(grad, fd) < 1e-3
    # the green wall is to the right: its derivative dominates the right half
    assert grad[:, RES // 2:, 1].sum() > 5 * abs(grad[:, : RES // 2, 1].sum())


def test_latent_variable_workflow(cbox):
    """theta -> Color3f(0.2θ, 0.5θ, 0.8θ): dr.forward(theta, ClearEdges) before
    rendering, then dr.forward_to(image) (the tutorial's second part)."""
    params = lg.traverse(cbox)
    theta = lg.Float(0.5)
    dr.enable_grad(theta)
    params[KEY] = lg.Color3f(0.2 * theta, 0.5 * theta, 0.8 * theta)
    params.update()
    dr.forward(theta, dr.ADFlag.ClearEdges)
    image = lg.render(cbox, params, spp=4, seed=5, seed_grad=5)
    dr.forward_to(image)
    grad = np.array(dr.grad(image), dtype=np.float64)
    assert np.isfinite(grad).all()

    fd = _fd_colour(cbox, KEY, lambda t: lg.Color3f(0.2 * t, 0.5 * t, 0.8 * t), 0.5, 0.01,
                    seed=5, spp=4)
    assert np.abs(fd).max() > 0.05
    assert _rel_err(grad, fd) < 1e-3
    # chain rule: the same as the derivative along (0.2, 0.5, 0.8) at θ = 0.5
    params[KEY] = lg.Color3f(0.1, 0.25, 0.4)
    params.update()
    along = np.array(lg.derivative_image(cbox, KEY, spp=4, seed=5,
                                         direction=lg.Color3f(0.2, 0.5, 0.8)))
    assert _rel_err(along, grad) < 1e-4


def test_latent_variable_reverse_mode(cbox):
    """The same latent variable in reverse mode: dL/dθ = <dL/dI, dI/dθ>."""
    params = lg.traverse(cbox)
    theta = lg.Float(0.5)
    dr.enable_grad(theta)
    params[KEY] = lg.Color3f(0.2 * theta, 0.5 * theta, 0.8 * theta)
    params.update()
    w = np.random.default_rng(2).uniform(0, 1, (RES, RES, 3)).astype(np.float32)
    image = lg.render(cbox, params, spp=4, seed=5, seed_grad=5)
    dr.backward(dr.sum(image * lg.TensorXf(w), axis=None))
    g = float(dr.grad(theta)[0])
    fd = _fd_colour(cbox, KEY, lambda t: lg.Color3f(0.2 * t, 0.5 * t, 0.8 * t), 0.5, 0.01,
                    seed=5, spp=4)
    expected = float((fd * w).sum())
    assert abs(expected) > 0.1
    assert g == pytest.approx(expected, rel=1e-3)


def test_seed_grad_defaults_to_its_own_samples(cbox):
    """By default the derivative pass uses ``grad_seed(seed)`` (not ``seed``)."""
    assert grad_seed(7) != 7 and grad_seed(7) == grad_seed(7) and grad_seed(8) != grad_seed(7)

    def fwd(**kw) -> np.ndarray:
        params = lg.traverse(cbox)
        dr.enable_grad(params[KEY])
        params.update()
        image = lg.render(cbox, params, **kw)
        dr.forward(params[KEY])
        out = np.array(dr.grad(image), dtype=np.float64)
        dr.disable_grad(params[KEY])
        return out

    default = fwd(spp=4, seed=7)
    explicit = fwd(spp=4, seed=7, seed_grad=grad_seed(7))
    same = fwd(spp=4, seed=7, seed_grad=7)
    np.testing.assert_array_equal(default, explicit)
    # different samples: a visibly different (noisy) estimate of the same thing
    assert _rel_err(default, same) > 0.05
    # ... of the same expected value (sums over the image agree to noise level)
    assert abs(default.sum() / same.sum() - 1.0) < 0.15


def test_derivative_pass_uses_spp_grad_and_seed_grad_only(cbox):
    """The derivative of a linear functional does not depend on the primal's
    samples: render(spp=1, seed=0, spp_grad=8, seed_grad=9) gives the same
    derivative image (forward) and gradient (reverse) as spp=8, seed=9."""
    def both(**kw):
        params = lg.traverse(cbox)
        dr.enable_grad(params[KEY])
        params.update()
        image = lg.render(cbox, params, **kw)
        dr.forward(params[KEY])
        fwd = np.array(dr.grad(image), dtype=np.float64)
        params = lg.traverse(cbox)
        leaf = lg.Color3f(dr.detach(params[KEY]))
        dr.enable_grad(leaf)
        params[KEY] = leaf
        params.update()
        image = lg.render(cbox, params, **kw)
        dr.backward(dr.sum(image, axis=None))
        rev = np.array(dr.grad(leaf), dtype=np.float64).ravel()
        params[KEY] = lg.Color3f(dr.detach(leaf))
        params.update()
        return fwd, rev

    f1, r1 = both(spp=1, seed=0, spp_grad=8, seed_grad=9)
    f2, r2 = both(spp=8, seed=9, seed_grad=9)
    f3, r3 = both(spp=8, seed=9, spp_grad=4, seed_grad=9)
    np.testing.assert_allclose(f1, f2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(r1, r2, rtol=1e-5)
    assert _rel_err(f3, f2) > 0.01  # spp_grad really changes the derivative pass
    # reverse mode sums the forward image (linear loss, same samples)
    np.testing.assert_allclose(r2, f2.sum(axis=(0, 1)) / 1.0, rtol=1e-3)


@pytest.mark.parametrize("key", ["small-box.vertex_positions", "small-box.to_world",
                                 "Mesh[7].to_world", "sensor.to_world", "sensor.x_fov"])
def test_geometry_and_camera_gradients_are_complete_without_warning(cbox, key):
    """Every boundary term these need is there: no warning."""
    params = lg.traverse(cbox)
    value = params[key]
    raw = value.matrix if isinstance(value, lg.Transform4f) else value
    dr.enable_grad(raw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            lg.render(cbox, params, spp=1, seed=0)
    finally:
        dr.disable_grad(raw)


def test_switched_off_boundary_term_warns():
    scene = lg.load_dict(lg.cornell_box_dict(res=8) | {"integrator": {"type": "path", "sppe": 0}})
    params = lg.traverse(scene)
    raw = params["small-box.vertex_positions"]
    dr.enable_grad(raw)
    try:
        with pytest.warns(UserWarning, match=r"primary boundary term is off \(sppe=0\)"):
            lg.render(scene, params, spp=1, seed=0)
    finally:
        dr.disable_grad(raw)


def test_shading_parameters_do_not_warn(cbox):
    params = lg.traverse(cbox)
    dr.enable_grad(params[KEY])
    dr.enable_grad(params["light.emitter.radiance.value"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lg.render(cbox, params, spp=1, seed=0)


def test_enable_grad_on_a_transform_parameter(cbox):
    """``dr.enable_grad(params['<shape>.to_world'])`` as written in Mitsuba code
    must either enable gradients or fail loudly (never silently do nothing)."""
    params = lg.traverse(cbox)
    try:
        dr.enable_grad(params["small-box.to_world"])
    except TypeError:
        return  # loud failure is acceptable
    assert "small-box.to_world" in params.grad_enabled_items()


@pytest.mark.filterwarnings("ignore:derivatives with respect to")
@pytest.mark.parametrize("key", ["small-box.vertex_positions", "small-box.to_world",
                                 "sensor.to_world", "sensor.x_fov"])
def test_geometry_and_camera_derivatives_run_and_are_finite(cbox, key):
    """The interior part is computed (forward and reverse) and is finite."""
    params = lg.traverse(cbox)
    value = params[key]
    raw = value.matrix if isinstance(value, lg.Transform4f) else value
    dr.enable_grad(raw)
    image = lg.render(cbox, params, spp=2, seed=0, seed_grad=0)
    dr.forward(raw)
    grad = np.array(dr.grad(image))
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0
    image = lg.render(cbox, params, spp=2, seed=0, seed_grad=0)
    dr.backward(dr.sum(image, axis=None))
    g = np.array(dr.ravel(dr.grad(raw)))
    assert np.isfinite(g).all() and np.abs(g).max() > 0
    dr.disable_grad(raw)
