"""Tests of OBJ/PLY reading and writing (lumigrad.geometry.meshio)."""
import struct

import numpy as np
import pytest

from lumigrad.geometry import meshio, primitives


def _same_triangles(v1, f1, v2, f2, atol=1e-6):
    """The two meshes have the same triangles as position triples (order kept)."""
    np.testing.assert_allclose(v1[f1], v2[f2], atol=atol)


def test_obj_round_trip_all_attributes(tmp_path):
    m = primitives.uv_sphere(6, 8)
    path = tmp_path / "s.obj"
    meshio.write_obj(path, m.positions, m.faces, m.normals, m.uvs)
    r = meshio.read_obj(path)
    # one vt/vn per vertex and all vertices used: order and values preserved
    np.testing.assert_allclose(r.positions, m.positions, atol=1e-6)
    np.testing.assert_array_equal(r.faces, m.faces)
    np.testing.assert_allclose(r.normals, m.normals, atol=1e-6)
    np.testing.assert_allclose(r.uvs, m.uvs, atol=1e-6)


@pytest.mark.parametrize("with_n,with_uv", [(False, False), (True, False), (False, True)])
def test_obj_round_trip_partial(tmp_path, with_n, with_uv):
    m = primitives.cube()
    path = tmp_path / "c.obj"
    meshio.write_obj(path, m.positions, m.faces, m.normals if with_n else None,
                     m.uvs if with_uv else None)
    r = meshio.read_obj(path)
    _same_triangles(r.positions, r.faces, m.positions, m.faces)
    assert (r.normals is not None) == with_n and (r.uvs is not None) == with_uv


OBJ_QUADS = """# a unit square as one quad and a pentagon, with every corner syntax
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0   # comment after data
vt 0 0
vt 1 0
vt 1 1
vt 0 1
vn 0 0 1
o thing
g group
s off
usemtl whatever
f 1/1/1 2/2/1 3/3/1 4/4/1
v 2 0 0
v 3 0 0
v 3 1 0
v 2.5 2 0
v 2 1 0
f -5/1/1 -4/2/1 -3/3/1 -2/4/1 \\
  -1/1/1
"""


def test_obj_polygons_negative_indices_and_reindexing(tmp_path):
    path = tmp_path / "q.obj"
    path.write_text(OBJ_QUADS)
    r = meshio.read_obj(path)
    assert r.faces.shape == (2 + 3, 3)
    tri = r.positions[r.faces]
    # fan triangulation of the quad: (0,1,2), (0,2,3)
    np.testing.assert_allclose(tri[0], [[0, 0, 0], [1, 0, 0], [1, 1, 0]])
    np.testing.assert_allclose(tri[1], [[0, 0, 0], [1, 1, 0], [0, 1, 0]])
    # the pentagon uses vertices 5..9 (negative indices counted from that line)
    np.testing.assert_allclose(tri[2], [[2, 0, 0], [3, 0, 0], [3, 1, 0]])
    np.testing.assert_allclose(tri[4], [[2, 0, 0], [2.5, 2, 0], [2, 1, 0]])
    # vertex 1 is used with vt 1 in both faces: it is one output vertex; vertex 9
    # (pentagon corner 5) has vt 1 too: all distinct (v, vt, vn) -> 9 vertices
    assert len(r.positions) == 9
    np.testing.assert_allclose(r.uvs[r.faces[4, 1]], [0, 1])
    assert np.all(r.normals[:, 2] == 1)


def test_obj_distinct_combinations_split_vertices(tmp_path):
    path = tmp_path / "split.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nvt 0 0\nvt 1 1\n"
                    "f 1/1 2/1 3/1\nf 2/2 4/2 3/2\nf 1/1 2/1 3/1\n")
    r = meshio.read_obj(path)
    # v2, v3 appear with vt1 and vt2 -> 2 extra vertices; v1, v4 once -> 6 total
    assert len(r.positions) == 6 and r.normals is None
    assert r.faces.shape == (3, 3)
    np.testing.assert_array_equal(r.faces[0], r.faces[2])
    np.testing.assert_allclose(r.uvs[r.faces[1]], [[1, 1]] * 3)


@pytest.mark.parametrize("text,line,match", [
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", 4, "vertex 4, but the file defines 3"),
    ("v 0 0 0\nv 1 0 0\nf 1 2 -3\nv 0 1 0\n", 3, "vertex -3, but only 2 are defined before"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1/2 2/2 3/2\n", 4, "texture coordinate 2"),
    ("v 0 0 0\nv 1 0\nv 0 1 0\nf 1 2 3\n", 2, "'v' needs 3"),
    ("v 0 0 0\nv 1 0 x\nv 0 1 0\nf 1 2 3\n", 2, "not a number"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", 4, "at least 3 vertices"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\n\nf 1 2 a\n", 5, "malformed face vertex 'a'"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 0\n", 4, "vertex 0"),
])
def test_obj_errors_name_file_and_line(tmp_path, text, line, match):
    path = tmp_path / "bad.obj"
    path.write_text(text)
    with pytest.raises(meshio.MeshFileError, match=match) as e:
        meshio.read_obj(path)
    assert f"bad.obj:{line}:" in str(e.value)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.obj"):
        meshio.read_obj(tmp_path / "nope.obj")
    with pytest.raises(FileNotFoundError, match="nope.ply"):
        meshio.read_ply(tmp_path / "nope.ply")
    (tmp_path / "empty.obj").write_text("# nothing\nv 0 0 0\n")
    with pytest.raises(meshio.MeshFileError, match="empty"):
        meshio.read_obj(tmp_path / "empty.obj")
    with pytest.raises(meshio.MeshFileError, match="extension"):
        meshio.read_mesh(tmp_path / "x.stl")


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian", "ascii"])
def test_ply_round_trip(tmp_path, fmt):
    m = primitives.torus(1.0, 0.3, 8, 6)
    path = tmp_path / "t.ply"
    meshio.write_ply(path, m.positions, m.faces, m.normals, m.uvs, format=fmt)
    r = meshio.read_ply(path)
    np.testing.assert_allclose(r.positions, m.positions, atol=1e-6)
    np.testing.assert_array_equal(r.faces, m.faces)
    np.testing.assert_allclose(r.normals, m.normals, atol=1e-6)
    np.testing.assert_allclose(r.uvs, m.uvs, atol=1e-6)
    # without attributes
    meshio.write_ply(path, m.positions, m.faces, format=fmt)
    r = meshio.read_ply(path)
    assert r.normals is None and r.uvs is None


def _quad_ply(bo, st_names=("s", "t"), extra_element=True):
    """Binary PLY with a quad and a triangle (list lengths differ), uchar list
    counts, uint indices, an extra double property and an extra element."""
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0, 0]], dtype=np.float64)
    hdr = ["ply", f"format {'binary_little_endian' if bo == '<' else 'binary_big_endian'} 1.0",
           "comment test", "element vertex 5", "property float x", "property float y",
           "property float z", "property double quality",
           f"property float {st_names[0]}", f"property float {st_names[1]}"]
    hdr += ["element face 2", "property list uchar uint vertex_indices", "property int flags"]
    if extra_element:
        hdr += ["element edge 1", "property int vertex1", "property int vertex2"]
    hdr += ["end_header"]
    out = ("\n".join(hdr) + "\n").encode()
    for i, p in enumerate(v):
        out += struct.pack(bo + "fffdff", *p, 0.5, p[0] / 2, p[1])
    out += struct.pack(bo + "B4Ii", 4, 0, 1, 2, 3, 7)
    out += struct.pack(bo + "B3Ii", 3, 1, 4, 2, 9)
    if extra_element:
        out += struct.pack(bo + "ii", 0, 1)
    return out, v


@pytest.mark.parametrize("bo", ["<", ">"])
def test_ply_binary_mixed_polygons(tmp_path, bo):
    data, v = _quad_ply(bo)
    path = tmp_path / "q.ply"
    path.write_bytes(data)
    r = meshio.read_ply(path)
    np.testing.assert_array_equal(r.faces, [[0, 1, 2], [0, 2, 3], [1, 4, 2]])
    np.testing.assert_allclose(r.positions, v)
    np.testing.assert_allclose(r.uvs, np.stack([v[:, 0] / 2, v[:, 1]], 1))


def test_ply_texture_uv_names(tmp_path):
    data, v = _quad_ply("<", ("texture_u", "texture_v"), extra_element=False)
    path = tmp_path / "q.ply"
    path.write_bytes(data)
    r = meshio.read_ply(path)
    np.testing.assert_allclose(r.uvs[:, 1], v[:, 1])


ASCII_PLY = """ply
format ascii 1.0
comment quads
element vertex 4
property float x
property float y
property float z
property float nx
property float ny
property float nz
element face 1
property list uchar int vertex_indices
end_header
0 0 0 0 0 1
1 0 0 0 0 1
1 1 0 0 0 1
0 1 0 0 0 1
4 0 1 2 {last}
"""


def test_ply_ascii_quad_and_errors(tmp_path):
    path = tmp_path / "a.ply"
    path.write_text(ASCII_PLY.format(last=3))
    r = meshio.read_ply(path)
    np.testing.assert_array_equal(r.faces, [[0, 1, 2], [0, 2, 3]])
    np.testing.assert_allclose(r.normals[:, 2], 1)
    path.write_text(ASCII_PLY.format(last=4))
    with pytest.raises(meshio.MeshFileError, match=r"a.ply:18: face refers to vertex 4"):
        meshio.read_ply(path)
    path.write_text(ASCII_PLY.format(last="3 5"))
    with pytest.raises(meshio.MeshFileError, match=r"a.ply:18: malformed row"):
        meshio.read_ply(path)
    path.write_text(ASCII_PLY.replace("1 1 0 0 0 1", "1 1 0 0 1"))
    with pytest.raises(meshio.MeshFileError, match=r"a.ply:16: element 'vertex' row has 5"):
        meshio.read_ply(path)
    path.write_text(ASCII_PLY.replace("ascii", "utf8"))
    with pytest.raises(meshio.MeshFileError, match=r"a.ply:2: unknown PLY format"):
        meshio.read_ply(path)


def test_ply_binary_errors(tmp_path):
    m = primitives.rectangle()
    path = tmp_path / "b.ply"
    meshio.write_ply(path, m.positions, m.faces)
    data = path.read_bytes()
    path.write_bytes(data[:-3])
    with pytest.raises(meshio.MeshFileError, match="b.ply: file ends inside"):
        meshio.read_ply(path)
    bad = np.array([[0, 1, 2], [0, 2, 3]])
    meshio.write_ply(path, np.zeros((5, 3)), bad)
    data = path.read_bytes().replace(b"element vertex 5", b"element vertex 3")
    path.write_bytes(data[:data.index(b"end_header")] + b"end_header\n" +
                     data[data.index(b"end_header") + 11 + 12 * 2:])
    with pytest.raises(meshio.MeshFileError, match=r"b.ply: face 1 refers to vertex 3"):
        meshio.read_ply(path)


def test_vertex_normals_angle_weighted():
    m = primitives.icosphere(2)
    n = meshio.vertex_normals(m.positions, m.faces)
    np.testing.assert_allclose(n, m.normals, atol=1.5e-2)
    # a cube corner shared by 3 faces (8-vertex cube): the normal is the diagonal
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    c = primitives.cube()
    # map the 24-vertex cube onto 8 shared corners
    idx = np.array([np.argmin(np.abs(v - p).sum(1)) for p in c.positions])
    n = meshio.vertex_normals(v, idx[c.faces])
    np.testing.assert_allclose(n, v / np.sqrt(3), atol=1e-6)


def _smooth_icosphere_scene(tmp_path):
    import lumigrad as lg
    m = primitives.icosphere(2)
    path = tmp_path / "ico.ply"
    meshio.write_ply(path, m.positions, m.faces)   # no normals: smooth ones are computed
    return lg.load_dict({"type": "scene", "ico": {"type": "ply", "filename": str(path)}})


def test_moving_vertices_turn_smooth_normals(tmp_path):
    """As Mitsuba: updating ``vertex_positions`` recomputes a smooth mesh's
    normals (angle-weighted, as ``meshio.vertex_normals``), attached to the
    positions; setting the normals in the same update keeps them."""
    import drjit as dr
    import lumigrad as lg
    scene = _smooth_icosphere_scene(tmp_path)
    params = lg.traverse(scene)
    key = "ico.vertex_positions"
    v0 = np.array(params[key], dtype=np.float64).reshape(-1, 3)
    rng = np.random.default_rng(0)
    v1 = v0 * np.array([1.5, 1.0, 0.7]) + 0.02 * rng.normal(size=v0.shape)
    params[key] = lg.Float(v1.astype(np.float32).ravel())
    params.update()
    mesh = scene.shapes[0]
    np.testing.assert_allclose(np.array(mesh.vertex_normals).reshape(-1, 3),
                               meshio.vertex_normals(v1, mesh.faces_numpy()), atol=2e-5)
    # derivatives of the normals against central differences
    d = rng.normal(size=v1.size)
    theta = lg.Float(0.0)
    dr.enable_grad(theta)
    params[key] = lg.Float(v1.astype(np.float32).ravel()) + theta * lg.Float(d.astype(np.float32))
    params.update()
    normals = mesh.vertex_normals
    dr.forward(theta, flags=dr.ADFlag.ClearNone)
    grad = np.array(dr.grad(normals))
    eps = 1e-3
    fd = (meshio.vertex_normals(v1 + eps * d.reshape(-1, 3), mesh.faces_numpy()).ravel()
          - meshio.vertex_normals(v1 - eps * d.reshape(-1, 3), mesh.faces_numpy()).ravel()) / (2 * eps)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, fd, atol=2e-2 * np.abs(fd).max())
    # normals given together with the positions are kept
    params[key] = lg.Float(v0.astype(np.float32).ravel())
    params["ico.vertex_normals"] = lg.Float(np.tile([0.0, 0.0, 1.0], len(v0)).astype(np.float32))
    params.update()
    np.testing.assert_allclose(np.array(mesh.vertex_normals).reshape(-1, 3)[:, 2], 1.0)


def test_recomputed_normals_of_degenerate_faces_are_finite(tmp_path):
    import drjit as dr
    import lumigrad as lg
    scene = _smooth_icosphere_scene(tmp_path)
    params = lg.traverse(scene)
    v = np.array(params["ico.vertex_positions"], dtype=np.float32).reshape(-1, 3)
    f = scene.shapes[0].faces_numpy()
    v[f[0, 1]] = v[f[0, 0]]                      # collapse an edge: two zero-area faces
    theta = lg.Float(0.0)
    dr.enable_grad(theta)
    params["ico.vertex_positions"] = lg.Float(v.ravel()) * (1.0 + theta)
    params.update()
    normals = scene.shapes[0].vertex_normals
    dr.forward(theta, flags=dr.ADFlag.ClearNone)
    assert np.isfinite(np.array(normals)).all() and np.isfinite(np.array(dr.grad(normals))).all()


def test_obj_numbers_parsed_exactly_on_both_paths(tmp_path):
    """``v``/``vt``/``vn`` rows of one length go through ``np.loadtxt``
    (``_parse_table``), others (or rows ``loadtxt`` splits otherwise) through
    ``np.fromstring``; both must give Python's correctly rounded ``float`` of
    every token, and the same mesh."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 3)) * 10.0 ** rng.integers(-20, 20, (50, 3))
    toks = [[f"{a:.17g}" for a in row] for row in x]
    want = np.array([[float(t) for t in row] for row in toks])
    body = "\n".join("v " + " ".join(r) for r in toks)
    table = meshio._parse_table(body.replace("v ", "  ").encode(), 50, 3)
    np.testing.assert_array_equal(table, want)                      # float64, exact
    faces = "f 1 2 3\nf 4 5 6 7\n"
    uniform = meshio.read_obj(_write(tmp_path / "u.obj", body + "\n" + faces))
    rows = ["v " + " ".join(r) for r in toks]
    # a 4th number (w) on one row: rows of two lengths, the fromstring path
    w = "\n".join([rows[0] + " 1.0"] + rows[1:])
    # a lone CR inside a row: whitespace for the reader, a line break for loadtxt
    cr = "\n".join([rows[0], rows[1].replace(" ", "\r", 2).replace("\r", " ", 1)] + rows[2:])
    assert cr.count("\r") == 1
    assert meshio._parse_table(b"1 2\r3\n4 5 6\n", 2, 3) is None      # -> fromstring
    for text in (w, cr):
        other = meshio.read_obj(_write(tmp_path / "o.obj", text + "\n" + faces))
        np.testing.assert_array_equal(other.positions, uniform.positions)
        np.testing.assert_array_equal(other.faces, uniform.faces)
    np.testing.assert_array_equal(uniform.positions, want[:7].astype(np.float32))


def _write(path, text):
    path.write_bytes(text.encode())
    return path


def test_ply_ascii_float_rows_on_both_paths(tmp_path):
    """ASCII PLY float elements: ``np.loadtxt`` rows and the ``np.fromstring``
    fallback (a lone CR) read the same values; a bad value is still named by line."""
    rows = ["0.1 0.2 0.30000000000000004 0 0 1", "1e-3 0 0 0 0 1", "1 1 0 0 0 1",
            "0 1 0 0 0 1"]
    text = ASCII_PLY.format(last=3).replace(
        "0 0 0 0 0 1\n1 0 0 0 0 1\n", rows[0] + "\n" + rows[1] + "\n")
    want = np.array([[float(x) for x in r.split()[:3]] for r in rows], dtype=np.float32)
    a = meshio.read_ply(_write(tmp_path / "a.ply", text))
    np.testing.assert_array_equal(a.positions, want)
    b = meshio.read_ply(_write(tmp_path / "b.ply", text.replace("1e-3 0", "1e-3\r0")))
    np.testing.assert_array_equal(b.positions, want)
    np.testing.assert_array_equal(b.normals, a.normals)
    with pytest.raises(meshio.MeshFileError, match=r"c.ply:16: element 'vertex' row has a "
                                                   r"value that is not a number \('x'\)"):
        meshio.read_ply(_write(tmp_path / "c.ply", text.replace("1 1 0 0 0 1", "1 1 0 0 x 1")))
