"""Tests of the numpy mesh generators in lumigrad.geometry.primitives."""
import numpy as np
import pytest

from lumigrad.geometry import primitives as P


def _geo(v, f):
    v = v.astype(np.float64)
    g = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    return g, 0.5 * np.linalg.norm(g, axis=1)


def _closed_volume(v, f):
    """Divergence theorem: V = sum over faces of det(v0, v1, v2) / 6."""
    v = v.astype(np.float64)
    return np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6.0


def _is_closed_manifold(f):
    """Every directed edge appears once and its reverse once (consistent winding)."""
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).astype(np.int64)
    key = e[:, 0] * (f.max() + 1) + e[:, 1]
    rkey = e[:, 1] * (f.max() + 1) + e[:, 0]
    return len(np.unique(key)) == len(key) and np.array_equal(np.sort(key), np.sort(rkey))


def test_meshdata_unpacks_as_pair():
    m = P.icosphere(1)
    v, f = m
    assert v.shape == (42, 3) and f.shape == (80, 3)
    assert v.dtype == np.float32 and f.dtype == np.uint32
    assert m.positions is v and m.faces is f
    assert m.normals.shape == v.shape and m.uvs is None


@pytest.mark.parametrize("k", [0, 1, 3])
def test_icosphere(k):
    m = P.icosphere(k, radius=2.0)
    v, f = m
    assert len(v) == 10 * 4 ** k + 2 and len(f) == 20 * 4 ** k
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 2.0, rtol=1e-6)
    g, a = _geo(v, f)
    centroid = v[f].mean(1)
    assert np.all(np.einsum("ij,ij->i", g, centroid) > 0), "faces must wind outward"
    assert _is_closed_manifold(f)
    # volume approaches 4/3 pi r^3 from below
    vol = _closed_volume(v, f)
    assert 0 < vol < 4 / 3 * np.pi * 8
    if k == 3:
        assert vol > 0.97 * 4 / 3 * np.pi * 8


def test_uv_sphere():
    nt, nphi = 16, 32
    m = P.uv_sphere(nt, nphi, radius=0.5)
    v, f = m
    assert len(f) == 2 * nphi * (nt - 1)
    assert len(v) == (nt + 1) * (nphi + 1) - 2
    assert len(np.unique(f)) == len(v), "every vertex is used"
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 0.5, rtol=1e-6)
    np.testing.assert_allclose(m.normals, v / 0.5, atol=1e-6)
    g, a = _geo(v, f)
    assert a.min() > 0, "no degenerate triangles at the poles"
    assert np.all(np.einsum("ij,ij->i", g, v[f].mean(1)) > 0)
    # Mitsuba's uv: u = phi / 2pi, v = theta / pi (checked away from the seam/poles)
    inner = (m.uvs[:, 0] > 0) & (m.uvs[:, 0] < 1) & (m.uvs[:, 1] > 0) & (m.uvs[:, 1] < 1)
    p = v[inner].astype(np.float64) / 0.5
    phi = np.mod(np.arctan2(p[:, 1], p[:, 0]), 2 * np.pi)
    np.testing.assert_allclose(m.uvs[inner, 0], phi / (2 * np.pi), atol=1e-5)
    np.testing.assert_allclose(m.uvs[inner, 1], np.arccos(np.clip(p[:, 2], -1, 1)) / np.pi, atol=1e-4)
    # error bound: face centroids are no further from the sphere than the bound
    c = v[f].astype(np.float64).mean(1)
    gap = 0.5 - np.linalg.norm(c, axis=1)
    bound = 0.5 * P.sphere_tessellation_error(nt, nphi)
    assert gap.max() <= bound and gap.max() > 0.2 * bound


def test_torus():
    R, r = 1.0, 0.3
    m = P.torus(R, r, 48, 24)
    v, f = m
    g, a = _geo(v, f)
    assert np.all(np.einsum("ij,ij->i", g, m.normals[f].mean(1)) > 0)
    vol = _closed_volume(v, f)
    np.testing.assert_allclose(vol, 2 * np.pi ** 2 * R * r * r, rtol=0.02)
    with pytest.raises(ValueError, match="minor radius"):
        P.torus(1.0, 1.5)


def test_cube():
    m = P.cube()
    v, f = m
    assert v.shape == (24, 3) and f.shape == (12, 3)
    assert np.all(np.abs(v) == 1)
    g, a = _geo(v, f)
    np.testing.assert_allclose(a, 2.0)
    n = m.normals[f[:, 0]]
    np.testing.assert_allclose(g / np.linalg.norm(g, axis=1, keepdims=True), n, atol=1e-7)
    # each face's 4 vertices all lie on the face plane given by its normal
    assert np.all(np.einsum("ij,ij->i", v, m.normals) == 1)
    np.testing.assert_allclose(_closed_volume(v, f), 8.0)
    assert m.uvs.min() == 0 and m.uvs.max() == 1
    # per face, the uvs cover the 4 corners of [0,1]^2
    for k in range(6):
        corners = {tuple(x) for x in m.uvs[4 * k:4 * k + 4]}
        assert corners == {(0, 0), (1, 0), (1, 1), (0, 1)}


def test_rectangle():
    m = P.rectangle()
    v, f = m
    g, a = _geo(v, f)
    assert np.all(g[:, 2] > 0) and np.all(g[:, :2] == 0)
    np.testing.assert_allclose(a.sum(), 4.0)
    np.testing.assert_allclose(m.uvs, (v[:, :2] + 1) / 2)


def test_disk():
    n = 64
    m = P.disk(n)
    v, f = m
    g, a = _geo(v, f)
    assert np.all(g[:, 2] > 0)
    np.testing.assert_allclose(a.sum(), 0.5 * n * np.sin(2 * np.pi / n), rtol=1e-6)
    # rim vertices (phi = 0 twice), then one centre vertex per triangle (own uv v)
    assert np.all(np.linalg.norm(v[:n + 1], axis=1) == pytest.approx(1.0, abs=1e-6))
    assert np.all(v[n + 1:] == 0) and len(v) == 2 * n + 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="subdivisions"):
        P.icosphere(-1)
    with pytest.raises(ValueError, match="radius"):
        P.uv_sphere(8, 8, radius=0)
    with pytest.raises(ValueError, match="n_segments"):
        P.disk(2)
