"""Rasterizer, cameras, meshes and per-sample stages of ``lumigrad.raster``.

Coverage, ids, barycentrics and depths are checked against a brute-force
numpy ray caster (Möller–Trumbore in float64) through the same pixel rays.
"""
from __future__ import annotations

import warnings

import drjit as dr
import numpy as np
import pytest

import lumigrad  # noqa: F401  (binds the variant)
from lumigrad import backend as bk
from lumigrad.raster import (BACKGROUND, NormalsEstimator, OrthographicCamera,
                             PerspectiveCamera, Pipeline, SilhouetteGradientWarning,
                             TriangleAttributeInterpolator, TriangleMesh, TriangleRasterizer)


def brute_force(o: np.ndarray, d: np.ndarray, P: np.ndarray, F: np.ndarray,
                near_depth: float = 0.0, view_dir: np.ndarray | None = None):
    """Closest hit per ray: (triangle id or -1, t, b1, b2) in float64.
    Hits whose depth along ``view_dir`` is below ``near_depth`` are ignored."""
    o = o.astype(np.float64)
    d = d.astype(np.float64)
    P = P.astype(np.float64)
    best = np.full(len(d), np.inf)
    bid = np.full(len(d), -1)
    bu = np.zeros(len(d))
    bv = np.zeros(len(d))
    for f in range(len(F)):
        p0, p1, p2 = P[F[f, 0]], P[F[f, 1]], P[F[f, 2]]
        e1, e2 = p1 - p0, p2 - p0
        pv = np.cross(d, e2)
        det = pv @ e1
        with np.errstate(divide="ignore", invalid="ignore"):
            tv = o - p0
            u = (tv * pv).sum(1) / det
            qv = np.cross(tv, e1)
            v = (d * qv).sum(1) / det
            t = qv @ e2 / det
        depth = t * (d @ view_dir) if view_dir is not None else t
        hit = (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0) & (t < best) & (depth >= near_depth)
        best[hit], bid[hit], bu[hit], bv[hit] = t[hit], f, u[hit], v[hit]
    return bid, best, bu, bv


def rays_np(cam, w: int, h: int):
    o, d = cam.primary_rays(w, h)
    return (np.stack([np.array(o[i]) for i in range(3)], 1),
            np.stack([np.array(d[i]) for i in range(3)], 1))


def test_ids_barycentrics_depth_match_ray_casting():
    mesh = TriangleMesh.example("icosphere", subdivisions=2)
    cam = PerspectiveCamera(position=(0.4, 0.6, 2.8), target=(0.1, 0.0, 0.0), fov=50)
    W, H = 40, 32  # non-square: checks the aspect convention
    r = TriangleRasterizer((W, H), cam, mesh)
    r.forward()
    ids = r.triangle_id_buffer.numpy()[..., 0]
    assert ids.shape == (H, W)
    o, d = rays_np(cam, W, H)
    bid, t, u, v = brute_force(o, d, mesh.positions_numpy(), mesh.faces_numpy())
    assert (bid.reshape(H, W) == ids).mean() >= 0.999
    assert (ids == BACKGROUND).any() and (ids >= 0).mean() > 0.3
    # chunks of candidate pairs that split triangles' boxes give the same result
    small = TriangleRasterizer((W, H), cam, mesh, chunk=97)
    small.forward()
    assert small.stats["launches"] > 10
    assert np.array_equal(small.triangle_id_buffer.numpy()[..., 0], ids)
    same = (bid.reshape(H, W) == ids) & (ids >= 0)
    bary = r.barycentric_buffer.numpy()
    ref = np.stack([1 - u - v, u, v], 1).reshape(H, W, 3)
    assert np.abs(bary[same] - ref[same]).max() < 1e-4
    assert np.all(bary[ids < 0] == 0)
    # depth along the viewing axis = t * (d . forward) for these unnormalised d
    fwd = np.array(dr.detach(cam.forward_direction)).reshape(-1)
    depth = r.depth_buffer.numpy()[..., 0]
    ref_depth = (t * (d @ fwd)).reshape(H, W)
    assert np.allclose(depth[same], ref_depth[same], rtol=1e-5)


def test_backface_culling_keeps_closed_mesh_image_and_removes_inside_view():
    mesh = TriangleMesh.example("icosphere", subdivisions=2)
    cam = PerspectiveCamera(position=(0.0, 0.3, 3.0))
    a = TriangleRasterizer(24, cam, mesh)
    b = TriangleRasterizer(24, cam, mesh, cull_backfaces=True)
    a.forward()
    b.forward()
    assert np.array_equal(a.triangle_id_buffer.numpy(), b.triangle_id_buffer.numpy())
    assert b.stats["candidate_pairs"] < a.stats["candidate_pairs"]
    # from inside the sphere only back faces are visible
    cam_in = PerspectiveCamera(position=(0.0, 0.0, 0.2), target=(0.0, 0.0, -1.0), fov=60)
    inside = TriangleRasterizer(16, cam_in, mesh, cull_backfaces=True)
    inside.forward()
    assert (inside.triangle_id_buffer.numpy() == BACKGROUND).all()
    TriangleRasterizer(16, cam_in, mesh).forward()  # without culling: covered
    full = TriangleRasterizer(16, cam_in, mesh)
    full.forward()
    assert (full.triangle_id_buffer.numpy() >= 0).all()


def ground_plane() -> TriangleMesh:
    """A 40 x 40 ground quad at y = 0 around the origin (it extends behind the camera)."""
    v = np.array([[-20, 0, -20], [20, 0, -20], [20, 0, 20], [-20, 0, 20]], np.float32)
    f = np.array([[0, 2, 1], [0, 3, 2]], np.uint32)
    return TriangleMesh(v, f, name="ground")


@pytest.mark.parametrize("near", [0.01, 1.5])
def test_near_plane_no_smear(near):
    """Triangles crossing the camera plane: coverage is exactly what ray casting with
    a near plane gives (the sky stays empty; nothing behind the eye projects)."""
    mesh = ground_plane()
    cam = PerspectiveCamera(position=(0.0, 1.0, 0.0), target=(0.0, 0.8, -1.0), fov=70, near=near)
    W = H = 32
    r = TriangleRasterizer((W, H), cam, mesh, chunk=300)  # each box split over launches
    r.forward()
    ids = r.triangle_id_buffer.numpy()[..., 0]
    o, d = rays_np(cam, W, H)
    fwd = np.array(dr.detach(cam.forward_direction)).reshape(-1)
    bid, t, _, _ = brute_force(o, d, mesh.positions_numpy(), mesh.faces_numpy(), near, fwd)
    cover_ref = (bid >= 0).reshape(H, W)
    assert ((ids >= 0) == cover_ref).mean() >= 0.998
    assert not (ids[: H // 4] >= 0).any()  # the upper image (sky) is empty
    if near > 1:
        assert not (ids[-2:] >= 0).all()  # the ground closest to the camera is clipped
    # the interpolated world position is the ray's hit point
    wp = TriangleAttributeInterpolator(mesh, mesh, r.triangle_id_buffer, r.barycentric_buffer)
    wp.forward()
    pos = wp.attribute_buffer.numpy().reshape(-1, 3)
    hit = (bid >= 0) & (ids.ravel() >= 0)
    ref = o + d * t[:, None]
    assert np.abs(pos[hit] - ref[hit]).max() < 1e-3


def test_triangle_behind_camera_produces_nothing():
    v = np.array([[-1, -1, 2], [1, -1, 2], [0, 1, 2]], np.float32)  # behind: camera looks -z
    mesh = TriangleMesh(v, np.array([[0, 1, 2]]))
    cam = PerspectiveCamera(position=(0, 0, 0), target=(0, 0, -1), fov=90)
    r = TriangleRasterizer(16, cam, mesh)
    r.forward()
    assert (r.triangle_id_buffer.numpy() == BACKGROUND).all()
    assert r.stats["candidate_pairs"] == 0


def test_orthographic_camera_matches_ray_casting():
    mesh = TriangleMesh.example("torus", n_major=24, n_minor=12)
    cam = OrthographicCamera(position=(0.5, 2.0, 2.0), target=(0, 0, 0), extent=3.0)
    W, H = 32, 24
    r = TriangleRasterizer((W, H), cam, mesh)
    r.forward()
    ids = r.triangle_id_buffer.numpy()[..., 0]
    o, d = rays_np(cam, W, H)
    bid, _, _, _ = brute_force(o, d, mesh.positions_numpy(), mesh.faces_numpy())
    assert (bid.reshape(H, W) == ids).mean() >= 0.999
    assert (ids >= 0).mean() > 0.2


def test_samples_per_pixel_resolve_is_box_filter():
    mesh = TriangleMesh.example("icosphere", subdivisions=1)
    cam = PerspectiveCamera(position=(0.2, 0.1, 3.0))
    fine = Pipeline((24, 16), mesh=mesh, camera=cam, shading="silhouette", samples_per_pixel=4)
    img = fine.forward().numpy()
    assert img.shape == (16, 24, 1)
    ref = Pipeline((48, 32), mesh=mesh, camera=cam, shading="silhouette").forward().numpy()
    ref = ref.reshape(16, 2, 24, 2, 1).mean(axis=(1, 3))
    assert np.allclose(img, ref, atol=1e-6)
    assert ((img > 0) & (img < 1)).any()  # antialiased edge pixels


def test_normals_estimator_matches_analytic_sphere_normals():
    errs = []
    for sub in (2, 4):
        m = TriangleMesh.example("icosphere", subdivisions=sub)
        ne = NormalsEstimator(m)
        ne.forward()
        n = ne.normals.numpy()
        p = m.positions_numpy()
        a = p / np.linalg.norm(p, axis=1, keepdims=True)
        assert np.allclose(np.linalg.norm(n, axis=1), 1, atol=1e-5)
        errs.append(np.degrees(np.arccos(np.clip((n * a).sum(1), -1, 1))).max())
    assert errs[1] < 0.2 and errs[1] < errs[0] / 3  # converges with refinement
    # the same angle-weighted rule as geometry.meshio's independent numpy version
    from lumigrad.geometry.meshio import vertex_normals
    m = TriangleMesh.example("torus", n_major=24, n_minor=12)
    ne = NormalsEstimator(m)
    ne.forward()
    assert np.abs(ne.normals.numpy() - vertex_normals(m.positions_numpy(),
                                                      m.faces_numpy())).max() < 1e-5


def test_normals_estimator_gradient_matches_finite_differences():
    m = TriangleMesh.example("icosphere", subdivisions=1)
    rng = np.random.default_rng(1)
    P0 = m.positions_numpy().ravel().astype(np.float64)
    P0 = P0 * (1 + 0.1 * rng.standard_normal(P0.shape))  # not a perfect sphere
    wts = rng.standard_normal((m.n_vertices, 3))
    ne = NormalsEstimator(m)

    def f(P):
        m.vertex_positions = bk.Float(P.astype(np.float32))
        ne.forward()
        n = ne.normals.value
        return dr.sum(sum(n[c] * bk.Float(wts[:, c].astype(np.float32)) for c in range(3)))

    x = bk.Float(P0.astype(np.float32))
    dr.enable_grad(x)
    m.vertex_positions = x
    ne.forward()
    n = ne.normals.value
    loss = dr.sum(sum(n[c] * bk.Float(wts[:, c].astype(np.float32)) for c in range(3)))
    dr.backward(loss)
    g = np.array(dr.grad(x))
    eps = 1e-3
    for i in rng.choice(len(P0), 6, replace=False):
        Pp, Pm = P0.copy(), P0.copy()
        Pp[i] += eps
        Pm[i] -= eps
        fd = (float(f(Pp)[0]) - float(f(Pm)[0])) / (2 * eps)
        assert abs(g[i] - fd) < 2e-2 * (abs(fd) + 1), (i, g[i], fd)


def test_mesh_roundtrip_obj_ply(tmp_path):
    m = TriangleMesh.example("icosphere", subdivisions=2)
    P = m.positions_numpy() * np.array([1.0, 0.7, 1.2], np.float32)  # an "optimised" shape
    m.vertex_positions = bk.Float(P.ravel().copy())
    cam = PerspectiveCamera(position=(0.3, 0.4, 3.0))
    r0 = TriangleRasterizer(24, cam, m)
    r0.forward()
    for ext in ("obj", "ply"):
        path = tmp_path / f"shape.{ext}"
        (m.write_obj if ext == "obj" else m.write_ply)(path)
        back = TriangleMesh.from_file(path)
        assert np.allclose(back.positions_numpy(), P, atol=1e-6)
        assert np.array_equal(back.faces_numpy(), m.faces_numpy())
        r = TriangleRasterizer(24, cam, back)
        r.forward()
        assert np.array_equal(r.triangle_id_buffer.numpy(), r0.triangle_id_buffer.numpy())


def test_example_meshes_and_edge_neighbors():
    for name in ("icosphere", "uv_sphere", "torus", "cube", "plane"):
        m = TriangleMesh.example(name)
        assert m.n_triangles > 0 and m.n_vertices > 0
    ico = TriangleMesh.example("icosphere", subdivisions=1)
    nb = ico.edge_neighbors()
    assert (nb >= 0).all()  # closed
    f = ico.faces_numpy()
    for t in range(ico.n_triangles):  # the neighbour shares the edge's two vertices
        for k in range(3):
            e = {int(f[t, k]), int(f[t, (k + 1) % 3])}
            assert e <= set(f[nb[t, k]].tolist())
    assert (TriangleMesh.example("plane").edge_neighbors() == -1).sum() == 4


def test_bad_inputs_raise_clear_errors():
    mesh = TriangleMesh.example("icosphere", subdivisions=0)
    cam = PerspectiveCamera()
    with pytest.raises(ValueError, match="perfect square"):
        TriangleRasterizer(8, cam, mesh, samples_per_pixel=3)
    with pytest.raises(ValueError, match="resolution"):
        TriangleRasterizer((0, 8), cam, mesh)
    with pytest.raises(ValueError, match="fov"):
        PerspectiveCamera(fov=180)
    with pytest.raises(ValueError, match="outside"):
        TriangleMesh(np.zeros((3, 3)), np.array([[0, 1, 3]]))
    with pytest.raises(ValueError, match="NaN"):
        TriangleMesh(np.full((3, 3), np.nan), np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match="unknown mesh"):
        TriangleMesh.example("dragon")
    with pytest.raises(ValueError, match="discontinuity"):
        Pipeline(8, discontinuity="magic")
    with pytest.raises(ValueError, match="near must be > 0"):
        TriangleRasterizer(8, PerspectiveCamera(near=0.0), mesh).forward()
    with pytest.raises(ValueError, match="coincide"):
        TriangleRasterizer(8, PerspectiveCamera(position=(0, 0, 0)), mesh).forward()


def test_geometry_gradients_without_method_warn():
    pipe = Pipeline(8, mesh_kwargs={"subdivisions": 0})
    x = pipe.mesh.vertex_positions
    dr.enable_grad(x)
    pipe.mesh.vertex_positions = x
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        pipe.forward()
    assert any(issubclass(w.category, SilhouetteGradientWarning) for w in rec)
    assert "MISSING" in pipe.gradient_status()["geometry and camera, silhouettes"]


def test_texture_albedo_bilinear_and_differentiable():
    """A textured square seen head-on by an orthographic camera: the albedo stage
    (TextureSampler) returns the bilinear texture lookup at the interpolated
    uvs, and texel gradients match finite differences."""
    mesh = TriangleMesh.example("plane")  # [-1, 1]^2 at z = 0, uv = (p + 1) / 2
    cam = OrthographicCamera(position=(0.0, 0.0, 2.0), extent=2.0)
    rng = np.random.default_rng(3)
    tex_np = rng.random((4, 4, 3)).astype(np.float32)
    pipe = Pipeline(8, mesh=mesh, camera=cam, texture=tex_np, ambient_constant=1.0,
                    diffuse_constant=0.0, specular_constant=0.0)
    img = pipe.forward().numpy()
    # pixel centres map to uv = (x + 0.5) / 8 (u to the right) and v = 1 - (y + 0.5) / 8
    # (image up = world +y = increasing v); texel rows follow v
    uv = pipe.uv_interpolator.attribute_buffer.numpy()
    xs = (np.arange(8) + 0.5) / 8
    assert np.allclose(uv[..., 0], xs[None, :], atol=1e-5)
    assert np.allclose(uv[..., 1], 1 - xs[:, None], atol=1e-5)

    def bilinear(u, v):
        x, y = u * 4 - 0.5, v * 4 - 0.5
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        fx, fy = x - x0, y - y0
        out = 0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                out = out + (wx * wy)[..., None] * tex_np[(y0 + dy) % 4, (x0 + dx) % 4]
        return out

    assert np.allclose(img, bilinear(uv[..., 0], uv[..., 1]), atol=1e-5)
    # texel gradients (reverse mode) vs finite differences
    params = pipe.parameters()
    t = params["texture"]
    dr.enable_grad(t)
    params["texture"] = t
    w = bk.TensorXf(rng.standard_normal((8, 8, 3)).astype(np.float32))
    loss = dr.sum((pipe.forward() * w).array)
    dr.backward(loss)
    g = np.array(dr.grad(t)).reshape(4, 4, 3)
    base = tex_np.copy()
    for (i, j, c) in ((1, 1, 0), (2, 3, 2), (0, 0, 1)):
        e = np.zeros_like(base)
        e[i, j, c] = 1e-2
        vals = []
        for sgn in (1, -1):
            params["texture"] = bk.TensorXf(base + sgn * e)
            vals.append(float(dr.sum((pipe.forward() * w).array)[0]))
        assert abs((vals[0] - vals[1]) / 2e-2 - g[i, j, c]) < 1e-3
    with pytest.raises(ValueError, match="uvs"):
        Pipeline(8, mesh="icosphere", texture=tex_np)
