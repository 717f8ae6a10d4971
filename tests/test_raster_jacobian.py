"""Jacobian images of the raster pipeline (the course's lesson 5 experiment).

A Blinn-Phong shaded sphere under one white directional light; the Jacobian
images with respect to the x and y components of the light direction by
forward mode, per-pixel reverse mode (the course's loop) and batched reverse
mode agree to float precision, and match central finite differences away from
the pixels where the shading is not smooth (``n.l = 0``, where the diffuse
term and the gated specular term have kinks).
"""
from __future__ import annotations

import drjit as dr
import numpy as np
import pytest

import lumigrad  # noqa: F401
from lumigrad import backend as bk
from lumigrad.raster import (ImageLoss, LaneDependenceError, PerspectiveCamera, Pipeline,
                             finite_difference_image, jacobian_image)

RES = 16


def sphere_pipeline(direction=(0.0, 0.0, -1.0), **kw) -> Pipeline:
    # the course's first set-up: a white light travelling along the view direction
    pipe = Pipeline(RES, mesh="icosphere", mesh_kwargs={"subdivisions": 3},
                    camera=PerspectiveCamera(position=(0.0, 0.0, 3.0), fov=45), **kw)
    pipe.light_array.set_light_direction(0, direction)
    return pipe


def smooth_mask(pipe: Pipeline, margin: float = 0.05) -> np.ndarray:
    """Covered pixels whose n.l is away from 0 (where the shading has kinks)."""
    pipe.forward()
    ids = pipe.rasterizer.triangle_id_buffer.numpy()[..., 0]
    n = pipe.normals_interpolator.attribute_buffer.numpy()
    d = np.array(dr.detach(pipe.light_array.light_direction(0))).reshape(-1)
    l = -d / np.linalg.norm(d)  # noqa: E741
    return (ids >= 0) & (np.abs(n @ l) > margin)


@pytest.mark.parametrize("direction", [(0.0, 0.0, -1.0), (1.0, -1.0, -1.0)])
@pytest.mark.parametrize("axis", [0, 1])
def test_light_direction_jacobian_forward_reverse_fd(direction, axis):
    pipe = sphere_pipeline(direction)
    fn = pipe.render_fn("light.0.direction", axis)
    j_fwd = jacobian_image(fn, fn.value, mode="forward")
    j_rev = jacobian_image(fn, fn.value, mode="reverse_pixel")
    j_bat = jacobian_image(fn, fn.value, mode="reverse_batched")
    assert j_fwd.shape == (RES, RES)
    rng = float(np.abs(j_fwd).max())
    assert rng > 0.05  # a real signal
    assert np.abs(j_fwd - j_rev).max() <= 1e-5 * rng
    assert np.abs(j_fwd - j_bat).max() <= 1e-5 * rng
    fd = finite_difference_image(fn, fn.value, eps=1e-3)
    m = smooth_mask(pipe)
    assert m.sum() > 0.5 * (pipe.rasterizer.triangle_id_buffer.numpy() >= 0).sum()
    assert np.abs(j_fwd - fd)[m].max() <= 2e-3 * rng + 1e-4
    # background pixels do not depend on the light
    ids = pipe.rasterizer.triangle_id_buffer.numpy()[..., 0]
    assert np.all(j_fwd[ids < 0] == 0) and np.all(j_rev[ids < 0] == 0)
    # the parameter is back to its value
    assert abs(float(dr.detach(pipe.light_array.light_direction(0))[axis][0]) -
               direction[axis]) < 1e-7


def test_rerender_path_and_rgb_channels():
    pipe = sphere_pipeline((1.0, -1.0, -1.0))
    pipe.light_array.set_light_color(0, (1.0, 0.5, 0.25))
    fn = pipe.render_fn("light.0.direction", 1)
    rgb = jacobian_image(fn, fn.value, mode="forward", channels="rgb")
    grey = jacobian_image(fn, fn.value, mode="forward")
    assert rgb.shape == (RES, RES, 3)
    assert np.allclose(rgb.sum(-1), grey, atol=1e-6)
    # the colour scales each channel's derivative
    cov = np.abs(rgb[..., 0]) > 1e-3
    assert np.allclose(rgb[..., 1][cov], 0.5 * rgb[..., 0][cov], rtol=1e-4, atol=1e-6)
    rgb_b = jacobian_image(fn, fn.value, mode="reverse_batched", channels="rgb")
    assert np.abs(rgb - rgb_b).max() <= 1e-5 * np.abs(rgb).max()
    # the course's loop (render again for every pixel), on a few pixels
    pix = np.array([5 * RES + 5, 8 * RES + 8, 10 * RES + 3, 0])
    j = jacobian_image(fn, fn.value, mode="reverse_pixel", rerender=True, pixels=pix)
    assert np.abs(j.ravel()[pix] - grey.ravel()[pix]).max() <= 1e-5 * np.abs(grey).max()
    assert np.isnan(j.ravel()[1])


def test_batched_mode_refuses_pixel_mixing():
    """With the antialiasing stage a pixel depends on its neighbours' parameter copies:
    the random-seed check must catch it instead of returning wrong values."""
    pipe = sphere_pipeline((1.0, -1.0, -1.0), discontinuity="antialias")
    fn = pipe.render_fn("light.0.direction", 0)
    with pytest.raises(LaneDependenceError):
        jacobian_image(fn, fn.value, mode="reverse_batched")
    # forward and per-pixel reverse still agree (on a row through the silhouette)
    j_fwd = jacobian_image(fn, fn.value, mode="forward")
    pix = np.arange(RES) + RES * (RES // 2)
    j_rev = jacobian_image(fn, fn.value, mode="reverse_pixel", pixels=pix)
    assert np.abs(j_fwd.ravel()[pix] - j_rev.ravel()[pix]).max() <= 1e-5 * np.abs(j_fwd).max()


def test_bad_jacobian_arguments():
    pipe = sphere_pipeline()
    fn = pipe.render_fn("light.0.direction", 0)
    with pytest.raises(ValueError, match="mode"):
        jacobian_image(fn, 0.0, mode="backward")
    with pytest.raises(ValueError, match="channels"):
        jacobian_image(fn, 0.0, channels="cmyk")
    with pytest.raises(ValueError, match="component"):
        pipe.render_fn("light.0.direction")
    with pytest.raises(KeyError, match="unknown pipeline parameter"):
        pipe.render_fn("light.7.direction", 0)
    with pytest.raises(TypeError, match="TensorXf"):
        jacobian_image(lambda t: t * 2, 1.0)


def interior_mask(pipe: Pipeline, fn, value: float, eps: float) -> np.ndarray:
    """Pixels whose triangle id is the same at value - eps, value, value + eps (and
    the neighbours too): there the image is smooth in the parameter."""
    ids = []
    for v in (value - eps, value, value + eps):
        fn(bk.Float(v))
        ids.append(pipe.rasterizer.triangle_id_buffer.numpy()[..., 0].copy())
    fn.restore()
    same = (ids[0] == ids[1]) & (ids[2] == ids[1]) & (ids[1] >= 0)
    # a one-pixel margin: keep pixels whose 4 neighbours are covered too (no silhouette)
    cov = ids[1] >= 0
    inner = cov.copy()
    inner[1:] &= cov[:-1]
    inner[:-1] &= cov[1:]
    inner[:, 1:] &= cov[:, :-1]
    inner[:, :-1] &= cov[:, 1:]
    return same & inner


@pytest.mark.parametrize("key,axis", [("camera.position", 0), ("camera.target", 1),
                                       ("camera.up", 0), ("camera.fov", None),
                                       ("mesh.vertex_positions", "shift")])
def test_interior_camera_and_geometry_derivatives(key, axis):
    """Inside triangles the rasterizer's barycentrics/depths are attached to the
    vertices and the camera: forward-mode derivative images match finite
    differences wherever the triangle id does not change."""
    import warnings

    pipe = Pipeline(24, mesh="icosphere", mesh_kwargs={"subdivisions": 3},
                    camera=PerspectiveCamera(position=(0.0, 0.2, 3.0), fov=40))
    pipe.light_array.set_light_direction(0, (1.0, -1.0, -1.0))
    if axis == "shift":  # translate the whole mesh along x by theta
        base = pipe.mesh.vertex_positions

        class Shift:
            value = 0.0

            def __call__(self, theta):
                p = dr.unravel(bk.Array3f, dr.detach(base))
                pipe.mesh.vertex_positions = dr.ravel(p + bk.Array3f(theta, 0.0, 0.0))
                return pipe.forward()

            def restore(self):
                pipe.mesh.vertex_positions = base

        fn = Shift()
    else:
        fn = pipe.render_fn(key, axis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        j = jacobian_image(fn, fn.value, mode="forward")
        eps = 2e-3 if key != "camera.fov" else 0.05
        fd = finite_difference_image(fn, fn.value, eps=eps)
        m = interior_mask(pipe, fn, fn.value, eps)
    assert m.sum() > 50
    scale = np.abs(j[m]).max()
    assert scale > 1e-2
    err = np.abs(j - fd)[m]
    assert np.median(err) < 2e-3 * scale
    assert np.percentile(err, 95) < 5e-3 * scale


def test_image_loss_gradient_matches_finite_difference():
    pipe = sphere_pipeline((1.0, -1.0, -1.0))
    target = pipe.forward().numpy() * 0.5
    loss_stage = ImageLoss(pipe.output_buffer, target)
    params = pipe.parameters()
    col = bk.Array3f(0.9, 1.0, 1.1)
    dr.enable_grad(col)
    params["light.0.color"] = col
    pipe.forward()
    loss = loss_stage.forward()
    dr.backward(loss)
    g = np.array(dr.grad(col)).reshape(-1)

    def L(c):
        params["light.0.color"] = bk.Array3f(*[float(x) for x in c])
        pipe.forward()
        return float(loss_stage.forward()[0])

    eps = 1e-2
    base = np.array([0.9, 1.0, 1.1])
    for k in range(3):
        e = np.zeros(3)
        e[k] = eps
        fd = (L(base + e) - L(base - e)) / (2 * eps)
        assert abs(fd - g[k]) < 1e-3 * abs(fd) + 1e-6
    with pytest.raises(ValueError, match="shape"):
        ImageLoss(pipe.output_buffer, np.zeros((3, 3, 3))).forward()


def test_batched_mode_with_several_samples_per_pixel():
    """Per-pixel parameter copies are gathered by each sample of their pixel."""
    pipe = Pipeline(8, mesh="icosphere", mesh_kwargs={"subdivisions": 2},
                    camera=PerspectiveCamera(position=(0.0, 0.0, 3.0)), samples_per_pixel=4)
    pipe.light_array.set_light_direction(0, (1.0, -1.0, -1.0))
    fn = pipe.render_fn("light.0.color", 1)
    j_fwd = jacobian_image(fn, fn.value, mode="forward", channels="rgb")
    j_bat = jacobian_image(fn, fn.value, mode="reverse_batched", channels="rgb")
    assert j_fwd.shape == (8, 8, 3)
    assert np.abs(j_fwd[..., 1]).max() > 0.05 and np.all(j_fwd[..., 0] == 0)
    assert np.abs(j_fwd - j_bat).max() <= 1e-5 * np.abs(j_fwd).max()


def test_pipeline_backward_is_the_course_loop_step():
    """``pipeline.forward(); seed one pixel; pipeline.backward()`` as in the course."""
    pipe = sphere_pipeline((1.0, -1.0, -1.0))
    d = bk.Array3f(1.0, -1.0, -1.0)
    dr.enable_grad(d)
    pipe.light_array.set_light_direction(0, d)
    fn = pipe.render_fn("light.0.direction", 0)
    j = jacobian_image(fn, fn.value)
    pipe.light_array.set_light_direction(0, d)
    for (y, x) in ((8, 8), (5, 10)):
        dr.clear_grad(d)
        pipe.forward()
        seed = np.zeros((RES, RES, 3), np.float32)
        seed[y, x] = 1.0
        pipe.backward(seed)
        assert abs(float(dr.grad(d)[0][0]) - j[y, x]) <= 1e-5 * np.abs(j).max()


@pytest.mark.parametrize("key,component,index", [
    ("lights.directions", 0, None),   # vector form, one light
    ("lights.directions", 1, 1),      # vector form, second of two lights
    ("light.1.direction", 1, None),   # per-light form
    ("lights.colors", 2, 0),
    ("light.0.color", 0, None),
])
def test_batched_reverse_mode_for_every_light_key(key, component, index):
    """Batched reverse mode (one parameter copy per pixel) equals forward mode for
    the vector form of the light parameters as well as the per-light form; the
    vector and per-light forms of the same scalar give the same image."""
    n = 1 if index is None and key.startswith("lights.") else 2
    pipe = sphere_pipeline((1.0, -1.0, -1.0), n_lights=n)
    if n == 2:
        pipe.light_array.set_light_direction(1, (-0.5, 0.3, -1.0))
        pipe.light_array.set_light_color(1, (0.4, 0.7, 0.2))
    fn = pipe.render_fn(key, component, index=index)
    j_fwd = jacobian_image(fn, fn.value, mode="forward", channels="rgb")
    j_bat = jacobian_image(fn, fn.value, mode="reverse_batched", channels="rgb")
    rng = float(np.abs(j_fwd).max())
    assert rng > 0.05
    assert np.abs(j_fwd - j_bat).max() <= 1e-5 * rng
    # the same scalar through the other form of the key
    light = index if index is not None else (int(key.split(".")[1]) if key.startswith("light.")
                                             else 0)
    kind = "direction" if "direction" in key else "color"
    if key.startswith("lights."):
        other = pipe.render_fn(f"light.{light}.{kind}", component)
    else:
        other = pipe.render_fn(f"lights.{kind}s", component, index=light)
    j_other = jacobian_image(other, other.value, mode="reverse_batched", channels="rgb")
    assert np.abs(j_other - j_fwd).max() <= 1e-5 * rng
    # the parameters are restored
    assert np.allclose(np.array(dr.detach(pipe.light_array.light_direction(0))).ravel(),
                       [1.0, -1.0, -1.0])


def test_render_fn_lane_index_errors():
    pipe = sphere_pipeline(n_lights=2)
    with pytest.raises(ValueError, match="index"):
        pipe.render_fn("lights.directions", 0)
    with pytest.raises(ValueError, match="out of range"):
        pipe.render_fn("lights.directions", 0, index=2)


@pytest.mark.parametrize("key,component,index", [("shader.diffuse_constant", None, None),
                                                 ("group_colors", 0, 1)])
def test_batched_reverse_mode_for_shader_and_group_colour_keys(key, component, index):
    from lumigrad.raster import OrthographicCamera, TriangleMesh
    if key == "group_colors":
        v = np.array([[-6, -4, 0], [-1, -4, 0], [-1, 4, 0], [-6, 4, 0],
                      [1, -4, 0], [6, -4, 0], [6, 4, 0], [1, 4, 0]], np.float32)
        f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
        mesh = TriangleMesh(v, f, triangle_groups=np.array([0, 0, 1, 1]))
        pipe = Pipeline(RES, mesh=mesh, camera=OrthographicCamera(extent=16.0),
                        shading="silhouette", group_silhouettes=True)
    else:
        pipe = sphere_pipeline((1.0, -1.0, -1.0))
    fn = pipe.render_fn(key, component, index=index)
    j_fwd = jacobian_image(fn, fn.value, mode="forward", channels="rgb")
    j_bat = jacobian_image(fn, fn.value, mode="reverse_batched", channels="rgb")
    assert np.abs(j_fwd).max() > 0.05
    assert np.abs(j_fwd - j_bat).max() <= 1e-5 * np.abs(j_fwd).max()
    if key == "group_colors":  # d(red of group 1's pixels) = 1, nothing else
        ref = np.zeros((RES, RES, 3), np.float32)
        ref[:, 9:14, 0] = 1.0  # x in [1, 6] world = raster columns 9..13
        ref[:2] = ref[14:] = 0.0  # y in [-4, 4]: rows 4..11
        ref[2:4] = ref[12:14] = 0.0
        assert np.array_equal(j_fwd, ref)
