"""Watertight coverage of ``TriangleRasterizer``: fixed-point snapping with
``subpixel_bits``, exact edge functions and the top-left fill rule.

The expected values are derived by hand from the rules: a closed mesh seen from
outside covers every sample inside its outline with a front face (its winding
number there is 1), and a sample on an edge shared by two triangles belongs to
exactly one of them.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import lumigrad  # noqa: F401  (binds the variant)
from lumigrad.raster import (BACKGROUND, OrthographicCamera, PerspectiveCamera, TriangleMesh,
                             TriangleRasterizer)


def _uncovered_inside_sphere(sub: int, cull: bool, res: int = 512) -> int:
    mesh = TriangleMesh.example("icosphere", subdivisions=sub)
    cam = PerspectiveCamera(position=(0.3, 0.2, 2.8), target=(0.0, 0.0, 0.0), fov=45)
    r = TriangleRasterizer(res, cam, mesh, cull_backfaces=cull)
    r.forward()
    ids = r.triangle_id_buffer.numpy()[..., 0]
    front = np.array(r.front_facing)
    o, d = cam.primary_rays(res, res)
    O = np.stack([np.array(o[i]) for i in range(3)], 1).astype(np.float64)
    D = np.stack([np.array(d[i]) for i in range(3)], 1).astype(np.float64)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    # distance of each pixel ray from the centre; the icosphere's outline lies
    # between its inradius (> 0.99 at these subdivisions) and 1
    dist = np.linalg.norm(O - (O * D).sum(1, keepdims=True) * D, axis=1).reshape(res, res)
    inside = dist < 0.97
    assert inside.sum() > 0.3 * res * res
    # background or a back face seen through a crack
    bad = (ids == BACKGROUND) | ~front[np.maximum(ids, 0)]
    return int((bad & inside).sum())


@pytest.mark.parametrize("sub", [5, 6])  # 20480 and 81920 triangles
@pytest.mark.parametrize("cull", [True, False])
def test_closed_icosphere_has_no_cracks(sub, cull):
    assert _uncovered_inside_sphere(sub, cull) == 0


def _ortho(n: int) -> OrthographicCamera:
    """Orthographic camera on an n x n image where world (X, Y) lands on raster
    (x, y) = (n/2 + X, n/2 - Y): pixel centres are at world coordinates k + 0.5 - n/2."""
    return OrthographicCamera(position=(0.0, 0.0, 3.0), target=(0.0, 0.0, 0.0), extent=float(n))


def _coverage(tris_raster: np.ndarray, n: int = 16, bits: int | None = None) -> np.ndarray:
    """Rasterize triangles given by raster-space corners (T, 3, 2), each alone:
    (T, n, n) coverage masks."""
    out = []
    for t in tris_raster:
        v = np.zeros((3, 3), np.float32)
        v[:, 0] = t[:, 0] - n / 2
        v[:, 1] = n / 2 - t[:, 1]
        r = TriangleRasterizer(n, _ortho(n), TriangleMesh(v, np.array([[0, 1, 2]])),
                               subpixel_bits=bits)
        r.forward()
        out.append(r.triangle_id_buffer.numpy()[..., 0] >= 0)
    return np.array(out)


@pytest.mark.parametrize("a,b", [
    ((2.5, 2.5), (13.5, 13.5)),   # the diagonal through 12 pixel centres
    ((8.5, 1.5), (8.5, 14.5)),    # a vertical edge through a column of centres
    ((1.5, 6.5), (14.5, 6.5)),    # a horizontal one through a row of centres
    ((2.5, 2.5), (12.5, 7.5)),    # slope 1/2: through every other column's centre
    ((3.2, 1.9), (12.7, 13.3)),   # a general edge
])
def test_shared_edge_owned_by_exactly_one_triangle(a, b):
    a, b = np.array(a), np.array(b)
    d = b - a
    nrm = np.array([-d[1], d[0]]) / np.linalg.norm(d)
    # two triangles on either side of a-b, in both windings
    c1, c2 = (a + b) / 2 + 5.3 * nrm, (a + b) / 2 - 4.1 * nrm
    tris = np.array([[a, b, c1], [b, a, c2]])
    cov = _coverage(tris)
    count = cov.sum(0)
    assert count.max() == 1
    # every pixel centre on the open segment a-b is covered (by one of the two)
    ys, xs = np.mgrid[0:16, 0:16] + 0.5
    cross = (xs - a[0]) * d[1] - (ys - a[1]) * d[0]
    along = ((xs - a[0]) * d[0] + (ys - a[1]) * d[1]) / (d @ d)
    on_edge = (cross == 0) & (along > 0) & (along < 1)
    if np.all(np.round(a * 2) == a * 2) and np.all(np.round(b * 2) == b * 2):
        assert on_edge.sum() >= 4
    assert np.all(count[on_edge] == 1)
    # the same with the other triangle's winding reversed (back face) and culling off
    cov2 = _coverage(np.array([[a, b, c1], [a, b, c2]]))
    assert np.array_equal(cov2.sum(0), count)


def test_vertex_fan_through_a_pixel_centre_covers_once():
    centre = np.array([7.5, 8.5])
    ang = np.sort(np.random.default_rng(3).uniform(0, 2 * np.pi, 9))
    rim = centre + np.stack([np.cos(ang), np.sin(ang)], 1) * np.linspace(5, 7, 9)[:, None]
    rim = np.round(rim * 2) / 2  # corners on the half-pixel grid: edges through centres
    tris = np.array([[centre, rim[i], rim[(i + 1) % 9]] for i in range(9)])
    count = _coverage(tris).sum(0)
    assert count.max() == 1
    assert count[8, 7] == 1  # the shared vertex itself, at a pixel centre
    # pixels well inside the polygon
    ys, xs = np.mgrid[0:16, 0:16] + 0.5
    assert np.all(count[np.hypot(xs - centre[0], ys - centre[1]) < 3.0] == 1)


def test_subpixel_bits_snap_the_vertices():
    """A quad whose right edge is at x = 4.7 (and top/bottom at rows 2, 10):
    with 8 bits it snaps to 1203/256 = 4.699, right of pixel 4's centre (4.5):
    covered. With 1 bit it snaps to 9/2 = 4.5, exactly on the centre, and a right
    edge (interior to its left) does not own it: not covered. At x = 4.8 one bit
    snaps to 10/2 = 5: covered again."""
    def col4(x_right: float, bits: int) -> bool:
        q = np.array([[0.2, 2.0], [x_right, 2.0], [x_right, 10.0], [0.2, 10.0]])
        cov = _coverage(np.array([[q[0], q[1], q[2]], [q[0], q[2], q[3]]]), bits=bits)
        return bool(cov.any(0)[5, 4])

    assert col4(4.7, 8) is True
    assert col4(4.7, 1) is False
    assert col4(4.8, 1) is True
    with pytest.raises(ValueError, match="subpixel_bits"):
        TriangleRasterizer(8, _ortho(8), TriangleMesh.example("plane"), subpixel_bits=0)
    with pytest.raises(ValueError, match="fixed-point range"):
        TriangleRasterizer(70000, _ortho(8), TriangleMesh.example("plane"))


def test_near_plane_triangles_use_the_homogeneous_path():
    """A ground plane reaching behind the camera crosses the near plane: its two
    triangles take the floating-point path (counted in stats) and still cover the
    lower half of the image."""
    v = np.array([[-20, 0, -20], [20, 0, -20], [20, 0, 20], [-20, 0, 20]], np.float32)
    mesh = TriangleMesh(v, np.array([[0, 2, 1], [0, 3, 2]]))
    cam = PerspectiveCamera(position=(0.0, 1.0, 0.0), target=(0.0, 1.0, -1.0), fov=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = TriangleRasterizer(32, cam, mesh)
        r.forward()
    assert r.stats["homogeneous_triangles"] == 2
    ids = r.triangle_id_buffer.numpy()[..., 0]
    assert (ids[17:] >= 0).all() and (ids[:16] == BACKGROUND).all()


def test_barycentrics_follow_the_unsnapped_vertices():
    """Only coverage is snapped: moving a vertex by far less than the snapping
    step (1/256 pixel) changes the barycentrics of the samples it covers linearly,
    as the forward-mode derivative says (snapped barycentrics would not move)."""
    import drjit as dr
    from lumigrad import backend as bk
    tri = np.array([[2.2, 1.3], [13.6, 3.1], [5.4, 14.2]])
    v = np.zeros((3, 3), np.float32)
    v[:, 0], v[:, 1] = tri[:, 0] - 8, 8 - tri[:, 1]

    def bary(dx: float, grad: bool = False):
        pos = bk.Float(v.ravel().copy())
        pos[0] = float(v[0, 0]) + dx  # (a one-lane write: x of corner 0)
        if grad:
            dr.enable_grad(pos)
        r = TriangleRasterizer(16, _ortho(16), TriangleMesh(pos, np.array([[0, 1, 2]])))
        with warnings.catch_warnings():  # (interior derivatives are all this test needs)
            warnings.simplefilter("ignore")
            r.forward()
        b = r.barycentric_buffer.value
        if grad:
            dr.set_grad(pos, bk.Float([1.0] + [0.0] * 8))
            dr.forward_to(b)
            return np.array(dr.detach(b)).T, np.array(dr.grad(b)).T, r
        return np.array(b).T, r

    b0, db, r = bary(0.0, grad=True)
    cov = r.triangle_id_buffer.numpy().ravel() >= 0
    d = 1e-3  # a quarter of the snapping step
    b1, r1 = bary(d)
    assert np.array_equal(r1.triangle_id_buffer.numpy().ravel() >= 0, cov)
    moved = (b1 - b0)[cov] / d
    assert np.abs(db[cov]).max() > 0.01
    # float32 differences of O(1) values over 1e-3: ~1e-4 error
    assert np.abs(moved - db[cov]).max() < 2e-3
