"""Mesh file formats beyond the basics of test_meshio.py: Mitsuba's serialized
format (checked with a writer written here from the format's documentation),
OBJ groups and the syntax corners of the vectorised OBJ/PLY parsers (checked
against small line-by-line reference parsers written here)."""
import struct
import zlib

import numpy as np
import pytest

from lumigrad.geometry import meshio


# --------------------------------------------------------------------------- serialized
def _ser_shape(pos, tri, normals=None, uvs=None, colors=None, name="", double=False,
               face_normals=False, version=4):
    """One shape record as the Mitsuba docs describe it: uint16 0x041C, uint16
    version, then a zlib stream: uint32 flags, [name NUL], uint64 nv, uint64 nt,
    positions, [normals], [uvs], [colours], uint32 triangles."""
    flags = 0x2000 if double else 0x1000
    flags |= (0x1 if normals is not None else 0) | (0x2 if uvs is not None else 0)
    flags |= (0x8 if colors is not None else 0) | (0x10 if face_normals else 0)
    fmt = "d" if double else "f"
    body = struct.pack("<I", flags)
    if version == 4:
        body += name.encode() + b"\x00"
    body += struct.pack("<QQ", len(pos), len(tri))
    for arr in (pos, normals, uvs, colors):
        if arr is not None:
            flat = [float(x) for row in arr for x in row]
            body += struct.pack(f"<{len(flat)}{fmt}", *flat)
    flat = [int(i) for row in tri for i in row]
    body += struct.pack(f"<{len(flat)}I", *flat)
    return struct.pack("<HH", 0x041C, version) + zlib.compress(body)


def _ser_file(records, version=4):
    """Concatenated records and the end-of-file dictionary of their offsets."""
    out, offsets = b"", []
    for r in records:
        offsets.append(len(out))
        out += r
    w = "Q" if version == 4 else "I"
    return out + struct.pack(f"<{len(offsets)}{w}I", *offsets, len(offsets))


TET_P = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
TET_F = [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]
QUAD_P = [[0, 0, 0], [2, 0, 0], [2, 3, 0], [0, 3, 0]]
QUAD_F = [[0, 1, 2], [0, 2, 3]]


def test_serialized_shapes_attributes_and_precisions(tmp_path):
    n = [[0, 0, 1]] * 4
    uv = [[0, 0], [1, 0], [1, 1], [0, 1]]
    col = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]]
    path = tmp_path / "m.serialized"
    path.write_bytes(_ser_file([
        _ser_shape(TET_P, TET_F, name="tet"),
        _ser_shape(QUAD_P, QUAD_F, normals=n, uvs=uv, colors=col, name="quad", double=True),
        _ser_shape(QUAD_P, QUAD_F, uvs=uv, face_normals=True, name="flat"),
    ]))
    assert meshio.serialized_shape_count(path) == 3
    a = meshio.read_serialized(path)
    np.testing.assert_array_equal(a.positions, TET_P)
    np.testing.assert_array_equal(a.faces, TET_F)
    assert a.name == "tet" and a.normals is None and a.uvs is None and a.colors is None
    assert not a.face_normals and a.group_names == ["tet"]
    b = meshio.read_serialized(path, 1)
    np.testing.assert_array_equal(b.positions, QUAD_P)
    np.testing.assert_array_equal(b.faces, QUAD_F)
    np.testing.assert_array_equal(b.normals, n)
    np.testing.assert_array_equal(b.uvs, uv)            # as stored: no v flip
    np.testing.assert_allclose(b.colors, col)
    c = meshio.read_serialized(path, 2)
    assert c.name == "flat" and c.face_normals and c.normals is None
    # read_mesh picks the format by extension (first shape)
    np.testing.assert_array_equal(meshio.read_mesh(path).faces, TET_F)


def test_serialized_version3(tmp_path):
    """Version 3: no name, 32-bit offsets in the dictionary."""
    path = tmp_path / "v3.serialized"
    path.write_bytes(_ser_file([_ser_shape(TET_P, TET_F, version=3),
                                _ser_shape(QUAD_P, QUAD_F, version=3)], version=3))
    b = meshio.read_serialized(path, 1)
    np.testing.assert_array_equal(b.positions, QUAD_P)
    assert b.name == ""


def test_serialized_writer_round_trip(tmp_path):
    """lumigrad's own writer against the reader (and the test writer's layout)."""
    rng = np.random.default_rng(1)
    p = rng.normal(size=(30, 3))
    f = rng.integers(0, 30, size=(40, 3))
    n = rng.normal(size=(30, 3))
    uv = rng.random((30, 2))
    path = tmp_path / "w.serialized"
    meshio.write_serialized(path, p, f, n, uv, name="rnd")
    r = meshio.read_serialized(path)
    np.testing.assert_allclose(r.positions, p, rtol=1e-6)   # float32 storage
    np.testing.assert_array_equal(r.faces, f)
    np.testing.assert_allclose(r.normals, n, rtol=1e-6)
    np.testing.assert_allclose(r.uvs, uv, rtol=1e-6)
    ref = _ser_shape(p.astype(np.float32), f, normals=n.astype(np.float32),
                     uvs=uv.astype(np.float32), name="rnd")
    data = path.read_bytes()
    assert zlib.decompress(data[4:-12]) == zlib.decompress(ref[4:])


@pytest.mark.parametrize("mutate,match", [
    (lambda d: b"\x1d\x04" + d[2:], "format identifier 0x041D"),
    (lambda d: d[:2] + b"\x05\x00" + d[4:], "version 5"),
    (lambda d: d[:4] + d[4:40], "truncated|corrupt"),
    (lambda d: d[:4] + b"\x00" * 20, "corrupt"),
])
def test_serialized_errors(tmp_path, mutate, match):
    path = tmp_path / "bad.serialized"
    path.write_bytes(mutate(_ser_file([_ser_shape(TET_P, TET_F, name="tet")])))
    with pytest.raises(meshio.MeshFileError, match=match) as e:
        meshio.read_serialized(path)
    assert "bad.serialized" in str(e.value)


def test_serialized_index_errors(tmp_path):
    path = tmp_path / "i.serialized"
    path.write_bytes(_ser_file([_ser_shape(TET_P, [[0, 1, 4]])]))
    with pytest.raises(meshio.MeshFileError, match=r"i.serialized \(shape 0\): triangle 0 "
                       r"refers to vertex \[0, 1, 4\], but the shape has 4 vertices"):
        meshio.read_serialized(path)
    path.write_bytes(_ser_file([_ser_shape(TET_P, TET_F)]))
    with pytest.raises(meshio.MeshFileError, match=r"shape_index 1 is out of range: the file "
                       r"holds 1 shapes"):
        meshio.read_serialized(path, 1)
    # a dictionary that does not fit the file
    path.write_bytes(_ser_shape(TET_P, TET_F) + struct.pack("<QI", 0, 7))
    with pytest.raises(meshio.MeshFileError, match="dictionary .* corrupt"):
        meshio.read_serialized(path, 1)


def test_serialized_shape_plugin(tmp_path):
    """The ``serialized`` shape: shape_index, to_world baked, uvs as stored, the
    face-normals flag, flip_normals; XML and dict forms."""
    import lumigrad as lg
    uv = [[0, 0], [1, 0], [1, 1], [0, 1]]
    path = tmp_path / "s.serialized"
    path.write_bytes(_ser_file([_ser_shape(TET_P, TET_F, name="tet"),
                                _ser_shape(QUAD_P, QUAD_F, uvs=uv, name="quad"),
                                _ser_shape(QUAD_P, QUAD_F, face_normals=True)]))
    xml = tmp_path / "scene.xml"
    xml.write_text(f"""<scene version="3.0.0">
  <shape type="serialized" id="q">
    <string name="filename" value="{path.name}"/>
    <integer name="shape_index" value="1"/>
    <transform name="to_world"><translate x="1" y="2" z="3"/></transform>
  </shape>
</scene>""")
    m = lg.load_file(str(xml)).shapes[0]
    np.testing.assert_allclose(m.positions_numpy(), np.array(QUAD_P) + [1, 2, 3])
    np.testing.assert_allclose(np.array(m.vertex_texcoords).reshape(-1, 2), uv)
    n = np.array(m.vertex_normals).reshape(-1, 3)       # smooth normals of a flat quad
    np.testing.assert_allclose(n, [[0, 0, 1]] * 4, atol=1e-6)
    assert m.group_names == ["quad"] and list(m.face_groups) == [0, 0]
    # differentiable like every mesh: the same parameters as an obj shape
    keys = set(lg.traverse(lg.load_file(str(xml))).keys())
    assert {"q.vertex_positions", "q.vertex_normals", "q.vertex_texcoords", "q.to_world"} <= keys
    flat = lg.load_dict({"type": "scene", "s": {"type": "serialized", "filename": str(path),
                                                "shape_index": 2}}).shapes[0]
    assert flat.face_normals and flat.vertex_normals is None
    flipped = lg.load_dict({"type": "scene", "s": {"type": "serialized", "filename": str(path),
                                                   "flip_normals": True}}).shapes[0]
    np.testing.assert_array_equal(flipped.faces_numpy(), np.array(TET_F)[:, [0, 2, 1]])
    with pytest.raises(Exception, match="shape_index"):
        lg.load_dict({"type": "scene", "s": {"type": "serialized", "filename": str(path),
                                             "shape_index": -1}})


# --------------------------------------------------------------------------- OBJ
def _reference_obj(text):
    """Plain line-by-line OBJ reading (the semantics documented in meshio):
    returns the triangles as (position, uv, normal) corner triples and the group
    name of each triangle."""
    v, vt, vn, tris, groups = [], [], [], [], []
    group = "default"
    text = text.replace("\\\r\n", " ").replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        head, *rest = line.split()
        if head == "v":
            v.append([float(x) for x in rest[:3]])
        elif head == "vt":
            vt.append([float(x) for x in (rest + ["0"])[:2]])
        elif head == "vn":
            vn.append([float(x) for x in rest])
        elif head in ("o", "g"):
            group = " ".join(rest) or "default"
        elif head == "f":
            corners = []
            for c in rest:
                parts = (c.split("/") + ["", ""])[:3]
                out = []
                for k, (s, table) in enumerate(zip(parts, (v, vt, vn))):
                    if s == "":
                        out.append(None)
                        continue
                    i = int(s)
                    out.append(table[i - 1] if i > 0 else table[len(table) + i])
                corners.append(out)
            for j in range(1, len(corners) - 1):
                tris.append([corners[0], corners[j], corners[j + 1]])
                groups.append(group)
    return tris, groups


MIXED_OBJ = (
    "# header comment\r\n"
    "mtllib nothing.mtl\r\n"
    "v 0 0 0\r\n"
    "v 1 0 0 1.0\r\n"                 # w
    "  v 1 1 0 0.5 0.5 0.5\r\n"       # colours, leading blanks
    "v\t0 1 0\r\n"
    "vt 0.25\r\n"                     # one number: v = 0
    "vt 0.5 0.75 0\r\n"
    "vn 0 0 1\r\n"
    "vn 0 0 -1 # trailing comment\r\n"
    "o first\r\n"
    "f 1/1/1 2/2/1 3/1/1 4/2/1\r\n"    # quad
    "g second part\r\n"
    "f -4/-2/-1 -2/-1/-1 \\\r\n"
    "   -3/-2/-1\r\n"                  # continued line, negative indices
    "v 2 0 0\r\n"
    "v 2 1 0\r\n"
    "vn 1 0 0\r\n"
    "g\r\n"                            # nameless group: default
    "f 2//3 5//3 6//3 3//3 4//3\r\n"   # pentagon
    "o first\r\n"
    "f 1/1/1 3/2/2 4/1/2\r\n"          # back in the first group
)


def test_obj_mixed_syntax_against_reference(tmp_path):
    path = tmp_path / "mixed.obj"
    path.write_bytes(MIXED_OBJ.encode())
    r = meshio.read_obj(path)
    tris, groups = _reference_obj(MIXED_OBJ)
    assert len(r.faces) == len(tris) == 2 + 1 + 3 + 1
    np.testing.assert_allclose(r.positions[r.faces], [[c[0] for c in t] for t in tris])
    np.testing.assert_allclose(r.normals[r.faces], [[c[2] for c in t] for t in tris])
    want_uv = [[c[1] if c[1] is not None else [0, 0] for c in t] for t in tris]
    np.testing.assert_allclose(r.uvs[r.faces], want_uv)
    assert r.group_names == ["first", "second part", "default"]
    np.testing.assert_array_equal([r.group_names[g] for g in r.face_groups], groups)
    # a vertex's group is that of the first triangle using it
    want = {}
    for tri, g in zip(r.faces.tolist(), r.face_groups.tolist()):
        for i in tri:
            want.setdefault(i, g)
    np.testing.assert_array_equal(r.vertex_groups, [want[i] for i in range(len(r.positions))])


def _random_obj(rng, n_v=40, n_f=60):
    """Random OBJ text with every corner syntax, polygon sizes 3..6, negative
    indices, groups, comments and blank lines."""
    lines = []
    counts = {"v": 0, "vt": 0, "vn": 0}
    for _ in range(n_v):
        lines.append("v " + " ".join(f"{x:.5f}" for x in rng.normal(size=3)))
        lines.append("vt " + " ".join(f"{x:.5f}" for x in rng.random(2)))
        lines.append("vn " + " ".join(f"{x:.5f}" for x in rng.normal(size=3)))
        for k in counts:
            counts[k] += 1
    syntax = int(rng.integers(0, 4))
    for i in range(n_f):
        if rng.random() < 0.1:
            lines.append(f"{'og'[int(rng.integers(0, 2))]} grp{int(rng.integers(0, 4))}")
        if rng.random() < 0.1:
            lines.append("")
            lines.append("# a comment")
        k = int(rng.integers(3, 7))
        ids = rng.choice(n_v, size=k, replace=False)
        corners = []
        for a in ids:
            neg = rng.random() < 0.3
            idx = [str(a - n_v if neg else a + 1)] * 3
            corners.append({0: idx[0], 1: f"{idx[0]}/{idx[1]}", 2: f"{idx[0]}//{idx[2]}",
                            3: "/".join(idx)}[syntax])
        lines.append("f " + " ".join(corners))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(4))
def test_obj_random_files_against_reference(tmp_path, seed):
    text = _random_obj(np.random.default_rng(seed))
    path = tmp_path / "r.obj"
    path.write_text(text)
    r = meshio.read_obj(path)
    tris, groups = _reference_obj(text)
    np.testing.assert_allclose(r.positions[r.faces], [[c[0] for c in t] for t in tris],
                               atol=1e-6)
    if tris[0][0][1] is not None:
        np.testing.assert_allclose(r.uvs[r.faces], [[c[1] for c in t] for t in tris], atol=1e-6)
    else:
        assert r.uvs is None
    if tris[0][0][2] is not None:
        np.testing.assert_allclose(r.normals[r.faces], [[c[2] for c in t] for t in tris],
                                   atol=1e-6)
    else:
        assert r.normals is None
    np.testing.assert_array_equal([r.group_names[g] for g in r.face_groups], groups)
    # every distinct (v, vt, vn) is one vertex: no two output vertices are equal
    attrs = [a for a in (r.positions, r.uvs, r.normals) if a is not None]
    assert len(np.unique(np.concatenate(attrs, axis=1), axis=0)) == len(r.positions)


def test_obj_byte_order_mark(tmp_path):
    """A UTF-8 byte-order mark before the first statement does not hide it."""
    path = tmp_path / "bom.obj"
    path.write_bytes(b"\xef\xbb\xbfv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    np.testing.assert_array_equal(meshio.read_obj(path).positions, [[0, 0, 0], [1, 0, 0],
                                                                    [0, 1, 0]])


@pytest.mark.parametrize("text,line,match", [
    ("v 0 0 0\r\nv 1 0 0\r\nv 0 1 0\r\nf 1 2 \\\r\n 4\r\nf 1 2 3\r\n", 4, "vertex 4"),
    ("v 0 0 0\nv 1 0 0\nf 1 2 \\\n  3\nv 0 1 0\nv 1 e 0\n", 6, "not a number"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1/1/1/1 2 3\n", 5, "malformed face vertex '1/1/1/1'"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf /1 2 3\n", 5, "malformed face vertex '/1'"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvn 0 0 1\nf 1//1 2//1 3//2\n", 5, "normal 2"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvn 0 1\nf 1 2 3\n", 4, "'vn' needs 3"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3.5\n", 4, "malformed face vertex '3.5'"),
])
def test_obj_error_lines_after_vectorised_parse(tmp_path, text, line, match):
    path = tmp_path / "bad.obj"
    path.write_bytes(text.encode())
    with pytest.raises(meshio.MeshFileError, match=match) as e:
        meshio.read_obj(path)
    assert f"bad.obj:{line}:" in str(e.value)


def test_obj_groups_on_the_shape(tmp_path):
    import lumigrad as lg
    path = tmp_path / "g.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0.25\n"
                    "f 1 2 3\no lid\nf 1/1 3/1 4/1\n")
    m = lg.load_dict({"type": "scene", "m": {"type": "obj", "filename": str(path)}}).shapes[0]
    assert m.group_names == ["default", "lid"]
    np.testing.assert_array_equal(m.face_groups, [0, 1])
    # the lid's corners carry a vt, so they are vertices of their own (uv v = 1 - 0.25)
    lid = np.array(m.vertex_texcoords).reshape(-1, 2)[:, 1] == 0.75
    assert lid.sum() == 3 and len(lid) == 6
    np.testing.assert_array_equal(m.vertex_groups, np.where(lid, 1, 0))
    # the obj shape flips v (Mitsuba's flip_tex_coords default), meshio does not
    assert meshio.read_obj(path).uvs[:, 1].max() == pytest.approx(0.25)
    assert np.array(m.vertex_texcoords).reshape(-1, 2)[:, 1].max() == pytest.approx(1.0)


# --------------------------------------------------------------------------- PLY
def _ply_mixed(bo, counts, rng, n_v=12):
    """Binary PLY whose face rows vary in length: a float list before the index
    list and a scalar after it; returns bytes and the expected polygons."""
    fmt = "binary_little_endian" if bo == "<" else "binary_big_endian"
    hdr = ("ply\nformat %s 1.0\nelement vertex %d\nproperty float x\nproperty float y\n"
           "property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
           "element face %d\nproperty list uchar float texcoord\n"
           "property list uchar int vertex_indices\nproperty short flags\nend_header\n"
           % (fmt, n_v, len(counts)))
    pos = rng.normal(size=(n_v, 3)).astype(np.float32)
    col = rng.integers(0, 256, size=(n_v, 3))
    out = hdr.encode()
    for p, c in zip(pos, col):
        out += struct.pack(bo + "fffBBB", *p, *c)
    polys = []
    for k in counts:
        ids = [int(i) for i in rng.choice(n_v, size=k, replace=False)]
        polys.append(ids)
        tc = [0.5] * (2 * k if rng.random() < 0.5 else 0)
        out += struct.pack(bo + f"B{len(tc)}f", len(tc), *tc)
        out += struct.pack(bo + f"B{k}ih", k, *ids, 7)
    return out, pos, col, polys


def _fan(polys):
    return [[p[0], p[j], p[j + 1]] for p in polys for j in range(1, len(p) - 1)]


@pytest.mark.parametrize("bo", ["<", ">"])
def test_ply_binary_rows_of_varying_length(tmp_path, bo):
    rng = np.random.default_rng(3)
    counts = rng.integers(3, 7, size=200)
    data, pos, col, polys = _ply_mixed(bo, counts, rng)
    path = tmp_path / "m.ply"
    path.write_bytes(data)
    r = meshio.read_ply(path)
    np.testing.assert_array_equal(r.positions, pos)
    np.testing.assert_array_equal(r.faces, _fan(polys))
    np.testing.assert_allclose(r.colors, col / 255.0)
    # cut inside the last rows: the error says where
    path.write_bytes(data[:-5])
    with pytest.raises(meshio.MeshFileError, match=r"m.ply: file ends inside row 199 of "
                       r"element 'face'"):
        meshio.read_ply(path)


def test_ply_ascii_rows_of_varying_length(tmp_path):
    rng = np.random.default_rng(4)
    counts = rng.integers(3, 8, size=50)
    pos = rng.normal(size=(10, 3))
    polys = [[int(i) for i in rng.choice(10, size=k, replace=False)] for k in counts]
    lines = ["ply", "format ascii 1.0", "element vertex 10", "property double x",
             "property double y", "property double z", "element face %d" % len(polys),
             "property uchar flags", "property list uchar uint vertex_indices", "end_header"]
    lines += [" ".join(repr(float(x)) for x in p) for p in pos]
    lines += ["\t1 %d %s  " % (len(p), " ".join(map(str, p))) for p in polys]
    path = tmp_path / "a.ply"
    path.write_text("\r\n".join(lines) + "\r\n")
    r = meshio.read_ply(path)
    np.testing.assert_allclose(r.positions, pos, rtol=1e-7)
    np.testing.assert_array_equal(r.faces, _fan(polys))
    # a list count that overruns its row: named with its line
    lines[10 + 10 + 7] = "1 5 0 1 2"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(meshio.MeshFileError, match=r"a.ply:28: malformed row of element 'face'"):
        meshio.read_ply(path)
    lines[10 + 3] = "0.5 x 1"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(meshio.MeshFileError, match=r"a.ply:14: element 'vertex' row has a value "
                       r"that is not a number \('x'\)"):
        meshio.read_ply(path)


# --------------------------------------------------------------------------- robustness
def test_damaged_files_raise_mesh_file_errors(tmp_path):
    """Randomly damaged files (bytes changed, cut out or inserted) either load or
    raise MeshFileError naming the file: never an IndexError or the like from
    deep inside the vectorised parsers."""
    rng = np.random.default_rng(0)
    tor_p = np.array(TET_P, dtype=float) * 2
    base = tmp_path / "base.ply"
    meshio.write_ply(base, tor_p, TET_F, format="binary_big_endian")
    seeds = {".obj": MIXED_OBJ.encode(), ".ply": base.read_bytes(),
             ".serialized": _ser_file([_ser_shape(TET_P, TET_F, name="t"),
                                       _ser_shape(QUAD_P, QUAD_F)])}
    meshio.write_ply(base, tor_p, TET_F, format="ascii")
    seeds["a.ply"] = base.read_bytes()
    seeds["m.ply"] = _ply_mixed("<", rng.integers(3, 7, size=20), rng)[0]
    alphabet = b" \n\r\t/#-.0123456789eEvftgo\\x\x00\xff"
    loaded = failed = 0
    for ext, seed in seeds.items():
        for _ in range(100):
            d = bytearray(seed)
            for _ in range(int(rng.integers(1, 4))):
                i = int(rng.integers(0, len(d)))
                op = int(rng.integers(0, 3))
                if op == 0:
                    d[i] = alphabet[int(rng.integers(0, len(alphabet)))]
                elif op == 1:
                    del d[i:i + int(rng.integers(1, 8))]
                else:
                    d[i:i] = bytes([alphabet[int(rng.integers(0, len(alphabet)))]])
            path = tmp_path / ("damaged" + ext[-4:] if ext.endswith(".ply") else "damaged" + ext)
            path.write_bytes(bytes(d))
            try:
                with np.errstate(all="ignore"):
                    if ext == ".serialized":
                        meshio.read_serialized(path, int(rng.integers(0, 2)))
                    else:
                        meshio.read_mesh(path)
                loaded += 1
            except meshio.MeshFileError as e:
                assert "damaged" in str(e)
                failed += 1
    assert failed > 50 and loaded > 50        # both outcomes were exercised


def test_ply_binary_first_row_cut(tmp_path):
    """The file ends inside the index list of the only face."""
    hdr = ("ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\n"
           "property float y\nproperty float z\nelement face 1\n"
           "property list uchar int vertex_indices\nend_header\n").encode()
    path = tmp_path / "cut.ply"
    path.write_bytes(hdr + struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0)
                     + struct.pack("<B2i", 3, 0, 1))
    with pytest.raises(meshio.MeshFileError, match=r"cut.ply: file ends inside row 0 of "
                       r"element 'face'"):
        meshio.read_ply(path)
