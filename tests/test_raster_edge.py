"""Exact silhouette derivatives of the rasterizer (``discontinuity='edge'``,
raster/edge_sampling.py: the path tracer's primary-edge and shading-rim estimators
on the pipeline's shading).

Reference: central finite differences (step 2e-2) of a 32×32-supersampled render
(1024 samples per pixel: the box-filtered pixel integral that the sampled image
estimates). Supersampling quantises edge motion: with 16×16 samples the
differences of the torus seen by a rising camera change by 0.07-0.15 between steps
1e-2, 2e-2 and 5e-3; with 32×32 samples and the larger step the reference is good
to ~0.03. The derivative (4×4 samples, 256 edge samples per pixel of silhouette)
must be within 0.05 of it in 8×8-block relative L1; without the boundary terms the
error is 0.7-1.0.
"""
from __future__ import annotations

import warnings

import drjit as dr
import numpy as np
import pytest

import lumigrad as lg
from lumigrad.raster.camera import OrthographicCamera
from lumigrad.raster.pipeline import Pipeline

RES = 64
EPS = 2e-2


def _block_rel(a: np.ndarray, b: np.ndarray, k: int = 8) -> float:
    def block(x: np.ndarray) -> np.ndarray:
        h, w = x.shape[:2]
        return x.reshape(h // k, k, w // k, k, -1).mean(axis=(1, 3))
    return float(np.abs(block(a) - block(b)).sum() / np.abs(block(b)).sum())


def _pipeline(spp: int, discontinuity, shading: str, mesh: str = "icosphere", **kw) -> Pipeline:
    return Pipeline(RES, mesh=mesh, samples_per_pixel=spp, discontinuity=discontinuity,
                    shading=shading, background=(0.1, 0.2, 0.3), **kw)


def _motion(key: str, pipe: Pipeline):
    """``set(x)``: the parameter ``key`` moved by ``x`` (Python float or grad-enabled Float)."""
    params = pipe.parameters()
    v0 = params[key]
    if key == "mesh.vertex_positions":
        base = np.array(v0)
        comp = np.arange(base.size) % 3
        scale = np.where(comp == 0, 0.5, np.where(comp == 1, 0.1, 0.0)).astype(np.float32)
        return lambda x: params.__setitem__(key, lg.Float(base) * (1.0 + x * lg.Float(scale)))
    if key == "camera.fov":
        return lambda x: params.__setitem__(key, lg.Float(45.0) + 20.0 * x)
    if key == "camera.extent":
        return lambda x: params.__setitem__(key, lg.Float(2.8) + 1.0 * x)
    direction = {"camera.position": (0.0, 0.6, 0.0), "mesh.group.all.position": (0.3, 0.2, 0.0),
                 "camera.rigid.position": (0.3, -0.2, 0.1)}[key]
    b = np.array(dr.detach(v0)).reshape(-1)[:3]
    return lambda x: params.__setitem__(key, lg.Array3f(*[float(b[i]) + direction[i] * x
                                                          for i in range(3)]))


def _derivative(pipe: Pipeline, key: str) -> np.ndarray:
    theta = lg.Float(0.0)
    dr.enable_grad(theta)
    _motion(key, pipe)(theta)
    img = pipe.forward()
    dr.forward(theta)
    return np.array(dr.grad(img))


def _finite_difference(key: str, shading: str, mesh: str, **kw) -> np.ndarray:
    ref = _pipeline(1024, None, shading, mesh, **kw)
    move = _motion(key, ref)
    move(EPS)
    a = np.array(ref.forward())
    move(-EPS)
    b = np.array(ref.forward())
    return (a - b) / (2 * EPS)


CASES = [
    ("blinn_phong", "icosphere", "camera.fov", {}),
    ("blinn_phong", "icosphere", "mesh.vertex_positions", {}),
    ("blinn_phong", "torus", "camera.position", {}),
    ("silhouette", "icosphere", "mesh.vertex_positions", {}),
    ("blinn_phong", "torus", "mesh.group.all.position", {"rigid_mesh_groups": "all"}),
    ("silhouette", "torus", "camera.rigid.position", {"rigid_camera": True}),
]


@pytest.mark.parametrize("shading, mesh, key, kw", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_edge_derivatives_match_finite_differences(shading, mesh, key, kw):
    fd = _finite_difference(key, shading, mesh, **kw)
    assert np.abs(fd).sum() > 10.0        # a derivative worth checking
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # interior only: it warns, on purpose
        interior = _derivative(_pipeline(16, None, shading, mesh, **kw), key)
    edge = _derivative(_pipeline(16, "edge", shading, mesh, edge_samples=256, **kw), key)
    err = _block_rel(edge, fd)
    assert err < 0.05, f"edge-sampled derivative off by {err:.3f}"
    assert _block_rel(interior, fd) > 0.3 or shading == "blinn_phong" and key == "camera.position"


def test_reverse_mode_equals_forward_mode():
    """⟨∇L, u⟩ of a weighted image sum by dr.backward equals the forward derivative
    along u (same edge samples: the stage's seed is reset)."""
    pipe = _pipeline(4, "edge", "blinn_phong", "torus", edge_samples=64)
    weights = np.random.default_rng(1).uniform(0.0, 1.0, (RES, RES, 3)).astype(np.float32)
    w = lg.TensorXf(weights)
    move = _motion("camera.fov", pipe)

    pipe.discontinuity_stage.seed = 7
    fwd = _derivative(pipe, "camera.fov")
    forward_value = float((fwd * weights).sum())

    theta = lg.Float(0.0)
    dr.enable_grad(theta)
    move(theta)
    pipe.discontinuity_stage.seed = 7
    img = pipe.forward()
    dr.backward(dr.sum(img.array * w.array))
    reverse_value = float(dr.grad(theta)[0])
    assert abs(forward_value) > 1.0
    assert reverse_value == pytest.approx(forward_value, rel=1e-4)


def test_edge_term_is_zero_in_value():
    """The term adds nothing to the image's value, also while it is active (a
    camera parameter carries a gradient, so edge samples are drawn)."""
    b = np.array(_pipeline(4, None, "blinn_phong").forward())
    pipe = _pipeline(4, "edge", "blinn_phong")
    fov = lg.Float(45.0)
    dr.enable_grad(fov)
    pipe.camera.fov = fov
    a = pipe.forward()
    assert dr.grad_enabled(a)
    np.testing.assert_allclose(np.array(dr.detach(a)), b, atol=1e-6)


ORTHO_CASES = [
    ("silhouette", "icosphere", "mesh.vertex_positions"),
    ("blinn_phong", "torus", "camera.position"),
    ("blinn_phong", "icosphere", "camera.extent"),
]


@pytest.mark.parametrize("shading, mesh, key", ORTHO_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in ORTHO_CASES])
def test_orthographic_camera(shading, mesh, key):
    """The same with an orthographic camera (the path tracer's terms with the
    apex at infinity; its extent is the sensor transform's scale): 0.019,
    0.021 and 0.027, where the interior alone is off by 1.0, 0.45 and 0.78."""
    def camera() -> OrthographicCamera:
        return OrthographicCamera(position=(0.4, 0.5, 3.0), extent=2.8)
    fd = _finite_difference(key, shading, mesh, camera=camera())
    assert np.abs(fd).sum() > 10.0
    edge = _derivative(_pipeline(16, "edge", shading, mesh, edge_samples=256, camera=camera()),
                       key)
    err = _block_rel(edge, fd)
    assert err < 0.05, f"edge-sampled derivative off by {err:.3f}"
