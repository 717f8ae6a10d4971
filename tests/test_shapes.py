"""Tests of the shape plugins (lumigrad.geometry.shapes)."""
import math

import drjit as dr
import numpy as np
import pytest

from lumigrad.geometry import meshio, primitives, shapes
from lumigrad.geometry.transform import Transform4f


def normals(mesh):
    return np.array(dr.detach(mesh.vertex_normals)).reshape(-1, 3)


def uvs(mesh):
    return np.array(mesh.vertex_texcoords).reshape(-1, 2)


def geo_normals(mesh):
    v = mesh.positions_numpy().astype(np.float64)
    f = mesh.faces_numpy()
    return np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])


def affine(T):
    return T.numpy()


@pytest.fixture
def torus_obj(tmp_path):
    m = primitives.torus(1.0, 0.4, 12, 8)
    path = tmp_path / "t.obj"
    meshio.write_obj(path, m.positions, m.faces, m.normals, m.uvs)
    return str(path), m


def test_obj_to_world_is_baked(torus_obj):
    path, m = torus_obj
    T = Transform4f().translate([1, 2, 3]).rotate([1, 1, 0], 40).scale([1, 3, 0.5])
    s = shapes.ObjShape(path, to_world=T, id="t")
    M = affine(T)
    p = m.positions.astype(np.float64)
    np.testing.assert_allclose(s.positions_numpy(), p @ M[:3, :3].T + M[:3, 3], atol=1e-5)
    assert s.to_world.is_identity()
    # normals: inverse transpose, unit length, still orthogonal to the surface
    n_ref = m.normals @ np.linalg.inv(M[:3, :3])
    n_ref /= np.linalg.norm(n_ref, axis=1, keepdims=True)
    np.testing.assert_allclose(normals(s), n_ref, atol=1e-5)
    g = geo_normals(s)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    avg = normals(s)[s.faces_numpy()].mean(1)
    assert np.all(np.einsum("ij,ij->i", g, avg) > 0.5), "winding and normals stay consistent"
    # OBJ texture coordinates are flipped v -> 1 - v by default (Mitsuba)
    np.testing.assert_allclose(uvs(s), np.stack([m.uvs[:, 0], 1 - m.uvs[:, 1]], 1), atol=1e-6)
    s2 = shapes.ObjShape(path, flip_tex_coords=False)
    np.testing.assert_allclose(uvs(s2), m.uvs, atol=1e-6)


def test_flip_normals_and_face_normals(torus_obj):
    path, m = torus_obj
    a = shapes.ObjShape(path)
    b = shapes.ObjShape(path, flip_normals=True)
    np.testing.assert_allclose(geo_normals(b), -geo_normals(a), atol=1e-6)
    np.testing.assert_allclose(normals(b), -normals(a), atol=1e-6)
    c = shapes.ObjShape(path, face_normals=True)
    assert c.vertex_normals is None and c.face_normals


def test_mesh_without_normals_gets_smooth_normals(tmp_path):
    m = primitives.icosphere(2)
    path = tmp_path / "ico.ply"
    meshio.write_ply(path, m.positions, m.faces)
    s = shapes.PlyShape(str(path))
    assert not s.face_normals
    np.testing.assert_allclose(normals(s), m.normals, atol=1.5e-2)


def test_ply_keeps_tex_coords_by_default(tmp_path):
    m = primitives.rectangle()
    path = tmp_path / "r.ply"
    meshio.write_ply(path, m.positions, m.faces, uvs=m.uvs)
    np.testing.assert_allclose(uvs(shapes.PlyShape(str(path))), m.uvs)
    np.testing.assert_allclose(uvs(shapes.PlyShape(str(path), flip_tex_coords=True))[:, 1],
                               1 - m.uvs[:, 1])


def test_rectangle_and_cube():
    T = Transform4f().translate([0, 1, 0]).rotate([1, 0, 0], 90)
    r = shapes.RectangleShape(to_world=T)
    M = affine(T)
    p = primitives.rectangle().positions.astype(float)
    np.testing.assert_allclose(r.positions_numpy(), p @ M[:3, :3].T + M[:3, 3], atol=1e-6)
    g = geo_normals(r)
    np.testing.assert_allclose(g / np.linalg.norm(g, axis=1, keepdims=True),
                               [[0, -1, 0]] * 2, atol=1e-6)  # +Z rotated about X by 90
    assert r.face_count == 2 and r.surface_area() == pytest.approx(4.0)
    np.testing.assert_allclose(uvs(r), (p[:, :2] + 1) / 2)
    c = shapes.CubeShape(to_world=Transform4f().scale(0.5))
    assert c.vertex_count == 24 and c.face_count == 12
    assert c.surface_area() == pytest.approx(6.0, rel=1e-6)
    assert np.abs(c.positions_numpy()).max() == pytest.approx(0.5)
    f = shapes.RectangleShape(flip_normals=True)
    assert np.all(geo_normals(f)[:, 2] < 0)


def test_sphere_tessellation_and_error_bound():
    s = shapes.SphereShape(center=(1, 2, 3), radius=0.5,
                           to_world=Transform4f().translate([0, 0, 1]))
    c = np.array([1, 2, 4.0])
    p = s.positions_numpy().astype(np.float64)
    assert 20_000 <= s.face_count <= 80_000
    np.testing.assert_allclose(np.linalg.norm(p - c, axis=1), 0.5, rtol=1e-6)
    np.testing.assert_allclose(normals(s), (p - c) / 0.5, atol=1e-5)
    # documented bound on the distance of the triangles to the true sphere
    bound = primitives.sphere_tessellation_error(shapes.SPHERE_BANDS, shapes.SPHERE_SEGMENTS)
    assert bound < 2e-4
    cent = p[s.faces_numpy()].mean(1)
    gap = 0.5 - np.linalg.norm(cent - c, axis=1)
    assert 0 < gap.max() <= 0.5 * bound
    assert s.surface_area() == pytest.approx(4 * math.pi * 0.25, rel=2 * bound)
    g = geo_normals(s)
    assert np.all(np.einsum("ij,ij->i", g, cent - c) > 0), "outward winding"


def test_disk():
    d = shapes.DiskShape(to_world=Transform4f().scale([2, 2, 1]))
    assert d.surface_area() == pytest.approx(4 * math.pi, rel=1e-4)
    assert np.all(geo_normals(d)[:, 2] > 0)


def test_errors(tmp_path):
    (tmp_path / "e.obj").write_text("v 0 0 0\nv 1 0 0\n")
    with pytest.raises(ValueError, match="e.obj: the mesh is empty"):
        shapes.ObjShape(str(tmp_path / "e.obj"))
    with pytest.raises(ValueError, match="to_world is singular"):
        shapes.RectangleShape(to_world=Transform4f().scale([1, 0, 1]), id="flat")
    with pytest.raises(ValueError, match="radius"):
        shapes.SphereShape(radius=-1.0)
