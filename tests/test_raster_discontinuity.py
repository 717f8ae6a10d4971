"""Silhouette gradients: analytic antialiasing (Laine et al. 2020) and
rasterize-then-splat (Cole et al. 2021).

Known answer: a sphere seen by an orthographic camera is a disk of area ``A``
pixels; translating it by ``δ`` (world units) moves it by ``s δ`` pixels
(``s = width / extent``), so the image's first moment ``M = Σ_p x_p I_p``
changes at ``dM/dδ = A s`` (divergence theorem: only the silhouette moves).
Interior (attached-barycentric) derivatives contribute nothing to a flat
silhouette image, so this checks the silhouette terms alone.
"""
from __future__ import annotations

import warnings

import drjit as dr
import numpy as np
import pytest

import lumigrad  # noqa: F401
from lumigrad import backend as bk
from lumigrad.raster import OrthographicCamera, Pipeline, TriangleMesh

N = 40
EXTENT = 2.0


def moment_derivative(method, axis: int = 0, param: str = "mesh"):
    mesh = TriangleMesh.example("icosphere", subdivisions=3, radius=0.5)
    cam = OrthographicCamera(position=(0.0, 0.0, 3.0), extent=EXTENT)
    pipe = Pipeline(N, mesh=mesh, camera=cam, shading="silhouette", discontinuity=method)
    base = dr.detach(mesh.vertex_positions)
    coord = (np.arange(N) + 0.5).astype(np.float32)
    weight = np.tile(coord, (N, 1)) if axis == 0 else np.tile(coord[:, None], (1, N))
    Wt = bk.TensorXf(weight[..., None].copy())

    def moment(theta):
        off = [0.0, 0.0, 0.0]
        off[axis] = theta
        if param == "mesh":
            p = dr.unravel(bk.Array3f, base) + bk.Array3f(*off)
            mesh.vertex_positions = dr.ravel(p)
        else:  # move the camera instead (position and target together)
            cam.position = bk.Array3f(*[-x for x in off]) + bk.Array3f(0.0, 0.0, 3.0)
            cam.target = bk.Array3f(*[-x for x in off])
        img = pipe.forward()
        return dr.sum((img * Wt).array), img

    th = bk.Float(0.0)
    dr.enable_grad(th)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        m, img = moment(th)
    dr.backward(m, flags=dr.ADFlag.Default | dr.ADFlag.AllowNoGrad)
    g = float(dr.grad(th)[0])
    area = float(dr.sum(dr.detach(img.array))[0])
    eps = 0.02  # 0.4 pixel
    fd = (float(moment(bk.Float(eps))[0][0]) - float(moment(bk.Float(-eps))[0][0])) / (2 * eps)
    # image y grows downwards while world y grows upwards
    sign = 1.0 if axis == 0 else -1.0
    return g, sign * area * N / EXTENT, fd, pipe, rec


@pytest.mark.parametrize("axis", [0, 1])
def test_antialias_silhouette_gradient_known_answer(axis):
    g, ref, fd, pipe, rec = moment_derivative("antialias", axis)
    assert not rec  # no "missing silhouettes" warning with a method on
    assert abs(g - ref) < 0.05 * abs(ref), (g, ref)
    assert abs(fd - ref) < 0.05 * abs(ref)  # the antialiased image is continuous
    assert "APPROXIMATE" in pipe.gradient_status()["geometry and camera, silhouettes"]
    # the antialiased image covers the disk's area
    img = pipe.image.numpy()
    assert abs(img.sum() - np.pi * (0.5 * N / EXTENT) ** 2) < 0.02 * img.sum()
    assert ((img > 0.01) & (img < 0.99)).sum() > 20


def test_antialias_camera_gradient_mirrors_mesh_gradient():
    g, ref, _, _, _ = moment_derivative("antialias", 0, param="camera")
    assert abs(g - ref) < 0.05 * abs(ref), (g, ref)  # camera moved by -θ: same as mesh by +θ


def test_splat_silhouette_gradient_approximate():
    g, ref, fd, pipe, rec = moment_derivative("splat", 0)
    assert not rec
    assert np.sign(g) == np.sign(ref) and abs(g - ref) < 0.25 * abs(ref), (g, ref)
    status = pipe.gradient_status()
    assert all("APPROXIMATE" in status[k] for k in status if k.startswith("geometry"))


def test_without_method_silhouette_gradient_is_missing_and_warned():
    g, ref, fd, pipe, rec = moment_derivative(None, 0)
    assert g == 0.0 and abs(fd) > 0.5 * abs(ref)
    assert any("silhouette" in str(w.message) for w in rec)


def test_splat_keeps_flat_interiors_and_blends_edges():
    mesh = TriangleMesh.example("cube")
    cam = OrthographicCamera(position=(0.0, 0.0, 5.0), extent=4.0)
    plain = Pipeline(24, mesh=mesh, camera=cam, shading="silhouette").forward().numpy()
    splat = Pipeline(24, mesh=mesh, camera=cam, shading="silhouette",
                     discontinuity="splat").forward().numpy()
    inner = np.zeros_like(plain, dtype=bool)
    inner[8:16, 8:16] = True  # well inside the square
    assert np.allclose(splat[inner], 1.0, atol=1e-5)
    assert np.allclose(splat[:3], 0.0) and np.allclose(plain[:3], 0.0)
    edge = (plain > 0.5) != (splat > 0.99)
    assert edge.any()  # the square's border is softened
    assert abs(splat.sum() - plain.sum()) < 0.05 * plain.sum()


def test_antialias_blinn_phong_light_gradient_is_exact_for_the_aa_image():
    """Shading gradients through the antialiasing stage are exact derivatives of the
    antialiased image: forward mode matches finite differences everywhere except
    at shading kinks."""
    from lumigrad.raster import PerspectiveCamera, finite_difference_image, jacobian_image

    pipe = Pipeline(N // 2, mesh="icosphere", mesh_kwargs={"subdivisions": 3},
                    camera=PerspectiveCamera(position=(0.0, 0.0, 3.0)),
                    discontinuity="antialias")
    pipe.light_array.set_light_direction(0, (0.3, -0.2, -1.0))
    fn = pipe.render_fn("light.0.direction", 0)
    j = jacobian_image(fn, fn.value)
    fd = finite_difference_image(fn, fn.value, eps=1e-3)
    assert np.abs(j - fd).max() < 5e-3 * np.abs(j).max()
