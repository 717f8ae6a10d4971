"""The TinyDiffRast course's remaining stages: two depth layers, the occlusion
estimator, the layered splat and occlusion antialiasing built on them, and
group-coloured silhouettes.

Scenes are axis-aligned quads seen by an orthographic camera whose raster
coordinates are world coordinates shifted (``x = n/2 + X``, ``y = n/2 - Y``), so
every expected value below follows by hand from the stage's rule.
"""
from __future__ import annotations

import math

import drjit as dr
import numpy as np
import pytest

import lumigrad  # noqa: F401
from lumigrad import backend as bk
from lumigrad.raster import (BACKGROUND, LayeredSplat, OcclusionAntialias, OcclusionEstimator,
                             OrthographicCamera, PerspectiveCamera, Pipeline, SilhouetteShader,
                             TriangleMesh, TriangleRasterizer)

N = 16


def cam() -> OrthographicCamera:
    return OrthographicCamera(position=(0.0, 0.0, 3.0), target=(0.0, 0.0, 0.0), extent=float(N))


def quads(rects, depths) -> TriangleMesh:
    """Axis-aligned quads given in raster coordinates (x0, y0, x1, y1) at world z
    ``3 - depth``; triangle group = quad index."""
    v, f = [], []
    for i, ((x0, y0, x1, y1), d) in enumerate(zip(rects, depths)):
        z = 3.0 - d
        corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        v += [(x - N / 2, N / 2 - y, z) for x, y in corners]
        f += [(4 * i, 4 * i + 1, 4 * i + 2), (4 * i, 4 * i + 2, 4 * i + 3)]
    return TriangleMesh(np.array(v, np.float32), np.array(f),
                        triangle_groups=np.repeat(np.arange(len(rects)), 2))


def front_and_back() -> TriangleRasterizer:
    """A front quad over columns 0..7 (depth 2) before a back quad over everything
    (depth 3)."""
    mesh = quads([(-2, -2, 8, 18), (-2, -2, 18, 18)], [2.0, 3.0])
    r = TriangleRasterizer(N, cam(), mesh, depth_layers=2)
    r.forward()
    return r


def test_two_depth_layers():
    r = front_and_back()
    ids0 = r.triangle_id_buffers[0].numpy()[..., 0]
    ids1 = r.triangle_id_buffers[1].numpy()[..., 0]
    z0 = r.depth_buffers[0].numpy()[..., 0]
    z1 = r.depth_buffers[1].numpy()[..., 0]
    front = np.zeros((N, N), bool)
    front[:, :8] = True
    assert np.all((ids0 // 2 == 0) == front)                 # quad 0 in front
    assert np.all(ids1[front] // 2 == 1) and np.all(ids1[~front] == BACKGROUND)
    assert np.allclose(z0[front], 2.0) and np.allclose(z0[~front], 3.0)
    assert np.allclose(z1[front], 3.0) and np.all(z1[~front] == 0.0)
    # barycentrics of the second layer interpolate its own triangle
    b1 = r.barycentric_buffers[1].numpy()
    assert np.allclose(b1[front].sum(-1), 1.0, atol=1e-5)


def test_second_layer_of_a_sphere_is_its_far_side():
    mesh = TriangleMesh.example("icosphere", subdivisions=3)
    r = TriangleRasterizer(48, PerspectiveCamera(position=(0.2, 0.3, 3.0)), mesh, depth_layers=2)
    r.forward()
    ids0 = r.triangle_id_buffers[0].numpy()[..., 0]
    ids1 = r.triangle_id_buffers[1].numpy()[..., 0]
    front = np.array(r.front_facing)
    # a closed convex surface: every covered sample sees it twice, front then back
    assert np.array_equal(ids0 >= 0, ids1 >= 0)
    assert front[ids0[ids0 >= 0]].all() and not front[ids1[ids1 >= 0]].any()
    assert np.all(r.depth_buffers[1].numpy()[ids1 >= 0] > r.depth_buffers[0].numpy()[ids1 >= 0])


def flags(r, background=False):
    occ = OcclusionEstimator(r, background_occlusion=background)
    occ.forward()
    return (np.array(occ.is_occluder_buffer.value).reshape(N, N),
            np.array(occ.is_occluded_buffer.value).reshape(N, N))


def test_occlusion_flags_by_hand():
    # the front quad's last column (7) sees, through its second layer, the surface
    # column 8 sees: occluder; column 8's surface lies behind column 7's: occluded
    occluder, occluded = flags(front_and_back())
    exp_o = np.zeros((N, N), bool)
    exp_o[:, 7] = True
    exp_d = np.zeros((N, N), bool)
    exp_d[:, 8] = True
    assert np.array_equal(occluder, exp_o) and np.array_equal(occluded, exp_d)
    # the same with background occlusion: nothing is uncovered, nothing changes
    assert np.array_equal(flags(front_and_back(), True)[0], exp_o)

    # one quad over the background: only with background occlusion
    r = TriangleRasterizer(N, cam(), quads([(4, 4, 10, 12)], [2.0]), depth_layers=2)
    r.forward()
    o, d = flags(r)
    assert not o.any() and not d.any()
    o, d = flags(r, True)
    cov = np.zeros((N, N), bool)
    cov[4:12, 4:10] = True
    ring = np.zeros((N, N), bool)
    ring[3:13, 3:11] = True
    inner = np.zeros((N, N), bool)
    inner[5:11, 5:9] = True
    assert np.array_equal(o, cov & ~inner)
    assert np.array_equal(d, ring & ~cov)
    with pytest.raises(ValueError, match="depth_layers=2"):
        OcclusionEstimator(TriangleRasterizer(N, cam(), quads([(4, 4, 10, 12)], [2.0])))


def splat_image(**kw):
    r = front_and_back()
    red_blue = np.array([[1, 0, 0], [0, 0, 1]], np.float32)
    g = r.mesh.triangle_groups
    sh = [SilhouetteShader(r.triangle_id_buffers[l], g, red_blue) for l in (0, 1)]
    for s in sh:
        s.forward()
    st = LayeredSplat([s.output_buffer for s in sh], r, perfect_coords=True, **kw)
    st.forward()
    return st.output_buffer.numpy()


def test_layered_splat_by_hand():
    img = splat_image()
    e2, e4 = math.exp(-2.0), math.exp(-4.0)  # kernel at offsets 1 and sqrt(2), variance 1/4
    K = 1 + 4 * e2 + 4 * e4
    Nc = 1.05 / K
    red, blue = np.array([1.0, 0, 0]), np.array([0, 0, 1.0])
    # inside the front quad: 9 red splats on layer 1 (weight 1.05 > 1, normalised)
    assert np.allclose(img[8, 3], red, atol=1e-6)
    # column 8 (occluded): the front surface of column 7 lands on layer 0 with
    # weight Nc (e^-2 + 2 e^-4); layer 1 holds the back surface at full weight
    w0 = Nc * (e2 + 2 * e4)
    assert np.allclose(img[8, 8], w0 * red + (1 - w0) * blue, atol=1e-6)
    # column 7 (occluder): red from columns 6, 7 on layer 1 (partial weight), blue
    # (columns 6, 7 behind and column 8) on layer 2 at full weight
    w1 = Nc * (1 + 3 * e2 + 2 * e4)
    assert np.allclose(img[8, 7], w1 * red + (1 - w1) * blue, atol=1e-6)
    # the image's right border: 6 of the 9 splats of the back surface, over black
    assert np.allclose(img[8, 15], w1 * blue, atol=1e-6)
    # single layer mode: the second layer is ignored; column 8 gets 3 red splats
    # (column 7) and 6 blue ones (columns 8, 9), all on one layer of weight 1.05,
    # normalised
    one = splat_image(single_layer_mode=True)
    assert np.allclose(one[8, 8], ((e2 + 2 * e4) * red + (1 + 3 * e2 + 2 * e4) * blue) / K,
                       atol=1e-6)


def aa_setup(x_edge: float):
    """A white quad over black with its right edge at x_edge; returns the image
    and the derivative image w.r.t. that edge's x (forward mode)."""
    mesh = quads([(2.3, 2.3, x_edge, 13.7)], [2.0])
    pos = bk.Float(mesh.vertex_positions)
    dr.enable_grad(pos)
    mesh.vertex_positions = pos
    r = TriangleRasterizer(N, cam(), mesh, depth_layers=2)
    sh = SilhouetteShader(r.triangle_id_buffer)
    aa = OcclusionAntialias(sh.output_buffer, r)
    r.forward()
    sh.forward()
    aa.forward()
    img = aa.output_buffer.value
    seed = np.zeros(12, np.float32)
    seed[[3, 6]] = 1.0  # x of corners 1 and 2 (the right edge); world X = raster x - N/2
    dr.set_grad(pos, bk.Float(seed))
    dr.forward_to(img)
    return np.array(dr.detach(img)).reshape(N, N), np.array(dr.grad(img)).reshape(N, N)


def test_occlusion_antialias_by_hand():
    # edge at 7.8 crosses the segment from column 7's centre (7.5) to column 8's at
    # t = 0.3 <= 0.5: column 7 takes 0.5 - t = 0.2 of the black neighbour
    img, d = aa_setup(7.8)
    assert abs(img[8, 7] - 0.8) < 1e-5 and img[8, 8] == 0.0 and img[8, 6] == 1.0
    # out = 1 - (0.5 - (x_e - 7.5)): derivative 1 per pixel of edge motion
    assert abs(d[8, 7] - 1.0) < 1e-4 and d[8, 8] == 0.0
    # at 8.2, t = 0.7 > 0.5: column 8 takes t - 0.5 = 0.2 of the white one
    img, d = aa_setup(8.2)
    assert abs(img[8, 8] - 0.2) < 1e-5 and img[8, 7] == 1.0
    assert abs(d[8, 8] - 1.0) < 1e-4 and d[8, 7] == 0.0


def test_group_silhouettes_from_obj(tmp_path):
    obj = tmp_path / "two.obj"
    obj.write_text("o left\nv -6 -4 0\nv -1 -4 0\nv -1 4 0\nv -6 4 0\nf 1 2 3 4\n"
                   "o right\nv 1 -4 0\nv 6 -4 0\nv 6 4 0\nv 1 4 0\nf 5 6 7 8\n")
    mesh = TriangleMesh.from_file(obj)
    assert mesh.triangle_groups.tolist() == [0, 0, 1, 1]
    assert mesh.vertex_groups.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert mesh.group_names == ["left", "right"]
    pipe = Pipeline(N, mesh=mesh, camera=cam(), shading="silhouette", group_silhouettes=True)
    img = pipe.forward().numpy()
    # default colours: grey levels (g + 1) / G, i.e. the course's 0.5 and 1
    assert np.allclose(img[8, 4], 0.5) and np.allclose(img[8, 12], 1.0)
    assert np.all(img[8, 0] == 0) and np.all(img[8, 8] == 0)  # background, gap
    with pytest.raises(ValueError, match="triangle groups"):
        Pipeline(N, mesh="icosphere", shading="silhouette", group_silhouettes=True)


@pytest.mark.parametrize("method", ["layered_splat", "occlusion_antialias"])
def test_pipeline_options_and_silhouette_derivative(method):
    """A unit sphere seen orthographically (8 px per unit), translated along X by a
    rigid transform of the whole mesh: the image shifts by 8 px per unit, so its
    first moment ``M = sum_p x_p I_p`` changes at ``dM/dX = 8 * sum_p I_p`` (the
    area). Both course variants approximate this silhouette derivative (measured:
    layered splat 0.87, occlusion antialiasing 0.99 of it; the bound is loose
    because they are approximations, the sign and scale are what is checked)."""
    from lumigrad.raster import jacobian_image
    c = OrthographicCamera(position=(0.0, 0.0, 3.0), target=(0.0, 0.0, 0.0), extent=4.0)
    pipe = Pipeline(32, mesh="icosphere", mesh_kwargs={"subdivisions": 3}, camera=c,
                    shading="silhouette", discontinuity=method, perfect_coords=True,
                    rigid_mesh_groups="all")
    assert pipe.rasterizer.depth_layers == 2
    assert "APPROXIMATE" in pipe.gradient_status()["geometry and camera, silhouettes"]
    fn = pipe.render_fn("mesh.group.all.position", 0)
    img = fn(bk.Float(fn.value)).numpy()[..., 0]
    fn.restore()
    j = jacobian_image(fn, fn.value)
    x = np.arange(32) + 0.5
    dM = float((j * x[None, :]).sum())
    expected = 8.0 * float(img.sum())
    assert 0.8 < dM / expected < 1.2, (dM, expected)


def test_perfect_coords_are_the_sample_centres_with_the_same_derivative():
    from lumigrad.raster import splat_positions
    mesh = TriangleMesh.example("icosphere", subdivisions=2)
    pos = bk.Float(mesh.vertex_positions)
    dr.enable_grad(pos)
    mesh.vertex_positions = pos
    r = TriangleRasterizer(N, PerspectiveCamera(position=(0.2, 0.1, 3.0)), mesh)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r.forward()
    cov = np.array(r.coverage)
    p_raw = splat_positions(r, 0, False)
    p_perfect = splat_positions(r, 0, True)
    idx = np.arange(N * N)
    centres = np.stack([idx % N + 0.5, idx // N + 0.5], 1)
    got = np.array(dr.detach(p_perfect)).T
    assert np.array_equal(got[cov], centres[cov])
    # the reprojected surface points are the centres up to float rounding
    assert np.abs(np.array(dr.detach(p_raw)).T[cov] - centres[cov]).max() < 1e-3
    seed = bk.Float(np.random.default_rng(0).standard_normal(dr.width(pos)).astype(np.float32))
    dr.set_grad(pos, seed)
    dr.forward_to(p_raw, p_perfect)
    g_raw, g_perfect = np.array(dr.grad(p_raw)).T, np.array(dr.grad(p_perfect)).T
    assert np.abs(g_raw[cov]).max() > 0.1 and np.allclose(g_raw, g_perfect)
