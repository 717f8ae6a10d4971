"""Learnable rigid transforms (6-D rotations of Zhou et al. 2019): the rotation
map's properties, the camera pose, vertex-group motion, and gradients of all
six rotation and three position parameters against central finite differences."""
from __future__ import annotations

import drjit as dr
import numpy as np
import pytest

import lumigrad  # noqa: F401
from lumigrad import backend as bk
from lumigrad.raster import (PerspectiveCamera, Pipeline, RigidMeshTransform, RigidTransform,
                             TriangleMesh, TriangleRasterizer, finite_difference_image,
                             jacobian_image, rotation_from_6d)


def np_rotation(a1, a2):
    b1 = a1 / np.linalg.norm(a1)
    b2 = a2 - b1 * (b1 @ a2)
    b2 /= np.linalg.norm(b2)
    return np.stack([b1, b2, np.cross(b1, b2)], 1)


def test_rotation_from_6d_is_gram_schmidt():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 3))
    t = RigidTransform(rotation=a)
    R = t.matrix()
    assert np.allclose(R.T @ R, np.eye(3), atol=1e-6) and abs(np.linalg.det(R) - 1) < 1e-6
    assert np.allclose(R, np_rotation(a[0], a[1]), atol=1e-6)
    cols = rotation_from_6d(bk.Array3f(*map(float, a[0])), bk.Array3f(*map(float, a[1])))
    assert np.allclose(np.stack([np.array(c).ravel() for c in cols], 1), R, atol=1e-6)
    assert np.allclose(RigidTransform().matrix(), np.eye(3))
    # scaling a1, or adding a multiple of a1 to a2, leaves the rotation unchanged
    b = a.copy()
    b[0] *= 3.0
    b[1] += 2.0 * a[0]
    assert np.allclose(RigidTransform(rotation=b).matrix(), R, atol=1e-6)
    # normalize_ keeps the rotation
    t.normalize_()
    assert np.allclose(t.matrix(), R, atol=1e-6)
    with pytest.raises(ValueError, match="parallel"):
        RigidTransform(rotation=[[1, 0, 0], [2, 0, 0]])
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        RigidTransform(rotation=[1, 0, 0])


def test_rigid_camera_equals_look_at_camera():
    mesh = TriangleMesh.example("icosphere", subdivisions=2)
    kw = dict(position=(0.7, 0.4, 2.6), target=(0.1, -0.1, 0.0), up=(0.1, 1.0, 0.0), fov=40)
    a = TriangleRasterizer((24, 20), PerspectiveCamera(**kw), mesh)
    cam = PerspectiveCamera(**kw)
    rt = cam.use_rigid_transform()
    b = TriangleRasterizer((24, 20), cam, mesh)
    a.forward()
    b.forward()
    assert np.array_equal(a.triangle_id_buffer.numpy(), b.triangle_id_buffer.numpy())
    assert np.allclose(a.depth_buffer.numpy(), b.depth_buffer.numpy(), atol=1e-5)
    assert np.allclose(np.array(rt.position).ravel(), kw["position"])


def _fd_check(f, param, eps=1e-2):
    """Reverse-mode gradient of scalar ``f(param)`` vs central differences per
    component (float32 evaluation: error ~ 1e-7 |f| / eps, plus O(eps^2))."""
    x = type(param)(param)
    dr.enable_grad(x)
    y = f(x)
    dr.backward(y)
    g = np.array(dr.grad(x)).T.reshape(-1) if dr.depth_v(x) > 1 else np.array(dr.grad(x))
    base = np.array(dr.detach(x)).T.copy() if dr.depth_v(x) > 1 else np.array(dr.detach(x))
    fd = np.zeros_like(g)
    for k in range(g.size):
        vals = []
        for s in (1, -1):
            p = base.copy().reshape(-1)
            p[k] += s * eps
            p = p.reshape(base.shape)
            arg = type(param)(*[p[..., c].copy() for c in range(3)]) if dr.depth_v(x) > 1 \
                else type(param)(p)
            vals.append(float(np.array(dr.detach(f(arg)))[0]))
        fd[k] = (vals[0] - vals[1]) / (2 * eps)
    f(param)  # put the parameter back
    scale = abs(float(np.array(dr.detach(y))[0])) + 1.0
    assert np.abs(g - fd).max() <= 2e-3 * scale, (g, fd)
    assert np.abs(g).max() > 1e-2
    return g


def test_rigid_mesh_transform_gradients_match_finite_differences():
    mesh = TriangleMesh.example("icosphere", subdivisions=1)
    groups = (mesh.positions_numpy()[:, 0] > 0).astype(np.int64)
    mesh = TriangleMesh(mesh.positions_numpy(), mesh.faces_numpy(), vertex_groups=groups)
    st = RigidMeshTransform(mesh, vertex_group=1)
    w = bk.Array3f(*[np.random.default_rng(c).standard_normal(mesh.n_vertices)
                     .astype(np.float32) for c in range(3)])
    rt = st.rigid_transform
    rt.rotation = [[0.9, 0.2, -0.1], [0.1, 1.1, 0.3]]
    rt.position = (0.2, -0.1, 0.3)

    def loss(which):
        def f(v):
            setattr(rt, which, v)
            st.forward()
            return dr.sum(dr.sum(st.transformed_mesh.vertices * w))
        return f

    _fd_check(loss("rotation"), rt.rotation)
    _fd_check(loss("position"), rt.position)
    # vertices outside the group do not move; those inside move rigidly
    st.forward()
    out = st.transformed_mesh.positions_numpy()
    inp = mesh.positions_numpy()
    assert np.array_equal(out[groups == 0], inp[groups == 0])
    R = rt.matrix()
    c = inp[groups == 1].mean(0)
    ref = (inp[groups == 1] - c) @ R.T + c + np.array([0.2, -0.1, 0.3])
    assert np.allclose(out[groups == 1], ref, atol=1e-5)


def test_rigid_camera_gradients_match_finite_differences():
    cam = PerspectiveCamera(position=(0.5, 0.3, 2.5))
    rt = cam.use_rigid_transform()
    pts = bk.Array3f(*[np.random.default_rng(7 + c).standard_normal(20).astype(np.float32)
                       for c in range(3)])
    w = bk.Array3f(*[np.random.default_rng(9 + c).standard_normal(20).astype(np.float32)
                     for c in range(3)])

    def loss(which):
        def f(v):
            setattr(rt, which, v)
            cam.forward()
            return dr.sum(dr.sum(cam.to_camera(pts) * w))
        return f

    _fd_check(loss("rotation"), rt.rotation)
    _fd_check(loss("position"), rt.position)


@pytest.mark.parametrize("key,component,index", [("camera.rigid.position", 0, None),
                                                 ("camera.rigid.rotation", 0, 1),  # roll
                                                 ("camera.rigid.rotation", 1, 0),  # pan
                                                 ("mesh.group.0.position", 1, None)])
def test_rigid_parameters_jacobian_images(key, component, index):
    """Interior derivatives of a shaded image w.r.t. rigid-transform parameters:
    forward mode matches finite differences at pixels whose triangle does not
    change within ±eps (silhouettes excluded: no discontinuity method here)."""
    import warnings
    mesh = TriangleMesh.example("icosphere", subdivisions=3)
    mesh = TriangleMesh(mesh.positions_numpy(), mesh.faces_numpy(),
                        vertex_groups=np.zeros(mesh.n_vertices, np.int64))
    pipe = Pipeline(24, mesh=mesh, camera=PerspectiveCamera(position=(0.3, 0.2, 3.0)),
                    rigid_camera=True, rigid_mesh_groups=[0], diffuse_constant=0.8)
    index = 1 if key.endswith("rotation") else None
    fn = pipe.render_fn(key, component, index=index)
    eps = 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids = []
        for d in (eps, -eps, 0.0):
            fn(bk.Float(fn.value + d))
            ids.append(pipe.rasterizer.triangle_id_buffer.numpy()[..., 0].copy())
        fn.restore()
        j = jacobian_image(fn, fn.value)
        fd = finite_difference_image(fn, fn.value, eps=eps)
    stable = (ids[0] == ids[2]) & (ids[1] == ids[2]) & (ids[2] >= 0)
    rng = float(np.abs(j[stable]).max())
    assert rng > 1.0 and stable.sum() > 250
    err = np.abs(j - fd)[stable]
    # float32 image differences: ~1e-7 / eps = 1e-4 of the image (~1) = 1e-5 of the
    # range (~10), plus O(eps^2); a few pixels sit on shading kinks (n.l = 0, the
    # specular gate), where finite differences are meaningless: quantiles, not max
    assert np.median(err) <= 2e-4 * rng and np.quantile(err, 0.95) <= 2e-3 * rng, \
        (np.median(err), np.quantile(err, 0.95), rng)
