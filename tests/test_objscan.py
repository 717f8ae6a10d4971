"""The compiled OBJ scan (geometry/objscan.py) against the general numpy reader:
the same meshes, value for value, on every layout it takes, and the general
reader wherever it declines."""
import numpy as np
import pytest

from lumigrad.geometry import meshio, objscan

pytestmark = pytest.mark.skipif(not objscan.available(), reason="no Dr.Jit LLVM backend")

@pytest.fixture(autouse=True)
def scan_small_files(monkeypatch):
    """(The reader scans files of MIN_BYTES and more; these are small.)"""
    monkeypatch.setattr(objscan, "MIN_BYTES", 0)


FIELDS = ("positions", "faces", "normals", "uvs", "face_groups", "vertex_groups")


def general(path):
    """read_obj with the scan switched off."""
    scan = objscan.scan_words
    objscan.scan_words = lambda words, size: None
    try:
        return meshio.read_obj(path)
    finally:
        objscan.scan_words = scan


def assert_same(a, b):
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and x.shape == y.shape, name
            np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.group_names == b.group_names


def write(tmp_path, text, name="m.obj", newline="\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode())
    return path


QUAD = """v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 0.5 0.5 1
vt 0 0
vt 1 0
vt 1 1
vt 0 1
vn 0 0 1
vn 0 1 0
"""

TAKEN = {
    "positions only": QUAD + "f 1 2 3\nf 1 3 4\n",
    "a/b": QUAD + "f 1/1 2/2 3/3\nf 1/1 3/3 4/4\n",
    "a/b/c": QUAD + "f 1/1/1 2/2/1 3/3/1\nf 1/1/2 3/3/2 4/4/2\n",
    "a//c": QUAD + "f 1//1 2//1 3//2\nf 1//1 3//2 4//2\n",
    "quads": QUAD + "f 1/1 2/2 3/3 4/4\nf 4/4 3/3 5/1 1/2\n",
    "relative": QUAD + "f -5/-4/-2 -4/-3/-2 -3/-2/-1\nf -5/-4/-1 -3/-2/-1 -2/-1/-1\n",
    "groups": QUAD + "o first\nf 1 2 3\ng  second part \r\nf 1 3 4\ng\nf 2 3 5\no first\nf 3 4 5\n",
    "comments and blank lines": "# head\n\n" + QUAD + "# faces\n\nf 1 2 3\n\n\nf 1 3 4",
    "other statements": "mtllib a.mtl\n" + QUAD + "usemtl m\ns 1\nvp 0.5\nl 1 2\nf 1 2 3\n",
    "number forms": ("v +1 -0.5 .25\nv 1. 2E1 -3e-2\nv 1.5e+2 0.000001 -7\n"
                     "v 12345678901234 1e22 1e-22\nf 1 2 3\nf 2 3 4\n"),
    "colours and w": "v 0 0 0 1 0 0\nv 1 0 0 0 1 0\nv 0 1 0 0 0 1\nf 1 2 3\n",
    "vt with w": "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0 0\nvt 1 0 0\nvt 0 1 0\nf 1/3 2/2 3/1\n",
    "tabs": "v\t0 0\t0\nv 1\t0 0\nv 0 1 0\nf\t1 2\t3\n",
    "seams (one position, two texture coordinates)":
        QUAD + "f 1/1 2/2 3/3\nf 1/4 3/3 4/4\nf 3/1 4/2 5/3\n",
    "unused vertices": QUAD + "f 2 3 5\n",
    "no final newline": QUAD + "f 1 2 3",
}


@pytest.mark.parametrize("name", list(TAKEN))
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_scan_takes_common_layouts_and_matches_the_general_reader(tmp_path, name, newline):
    path = write(tmp_path, TAKEN[name], newline=newline)
    assert objscan.scan(path.read_bytes()) is not None, "the scan should take this file"
    fast = meshio.read_obj(path)
    assert_same(fast, general(path))
    assert_same(fast, meshio.read_obj(path))


DECLINED = {
    "comment after a statement": QUAD + "f 1 2 3 # tri\n",
    "line continuation": QUAD + "f 1 2 \\\n 3\n",
    "leading whitespace": QUAD + "  f 1 2 3\n",
    "byte-order mark": "\ufeff" + QUAD + "f 1 2 3\n",
    "mixed polygon sizes": QUAD + "f 1 2 3\nf 1 2 3 4\n",
    "mixed corner syntax": QUAD + "f 1/1 2/2 3/3\nf 1 3 4\n",
    "varying v sizes": "v 0 0 0\nv 1 0 0 1\nv 0 1 0\nf 1 2 3\n",
    "long mantissa": "v 0.12345678901234567 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n",
    "large exponent": "v 1e30 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n",
    "comment in a group name": QUAD + "g name # note\nf 1 2 3\n",
}


@pytest.mark.parametrize("name", list(DECLINED))
def test_scan_declines_and_the_general_reader_reads(tmp_path, name):
    path = write(tmp_path, DECLINED[name])
    assert objscan.scan(path.read_bytes()) is None
    assert_same(meshio.read_obj(path), general(path))


@pytest.mark.parametrize("text,message", [
    (QUAD + "f 1 2 9\n", ":12: face refers to vertex 9"),
    (QUAD + "f 1 2 -9\n", ":12: face refers to vertex -9"),
    (QUAD + "f 1 2 x\n", ":12: malformed face vertex"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 nope\nf 1 2 3\n", ":4:"),
])
def test_mistakes_are_worded_by_the_general_reader(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(meshio.MeshFileError, match=message):
        meshio.read_obj(path)


@pytest.mark.parametrize("fmt", ["%.6f", "%.9g", "%.17g", "%.8e", "%g"])
def test_random_meshes_in_many_number_formats(tmp_path, fmt):
    """Values correctly rounded (numpy's), whichever pass of the scan reads
    them; 17 significant digits are beyond its exact arithmetic (declined)."""
    rng = np.random.default_rng(len(fmt))
    p = rng.normal(size=(300, 3)) * 10.0 ** rng.integers(-6, 4, size=(300, 1))
    uv = rng.random((300, 2))
    n = rng.normal(size=(300, 3))
    f = rng.integers(1, 301, size=(500, 3))
    lines = ["v " + " ".join(fmt % x for x in row) for row in p]
    lines += ["vt " + " ".join(fmt % x for x in row) for row in uv]
    lines += ["vn " + " ".join(fmt % x for x in row) for row in n]
    lines += [f"f {a}/{b}/{c} {b}/{c}/{a} {c}/{a}/{b}" for a, b, c in f]
    path = write(tmp_path, "\n".join(lines) + "\n")
    raw = path.read_bytes()
    st = objscan.scan(raw)
    assert (st is None) == (fmt == "%.17g")
    if st is not None:
        expected = np.array([[float(x) for x in ln.split()[1:]] for ln in lines[:300]],
                            dtype=np.float64).astype(np.float32)
        np.testing.assert_array_equal(st.v, expected)
    assert_same(meshio.read_obj(path), general(path))


def test_reader_scans_files_of_min_bytes_and_more(tmp_path, monkeypatch):
    monkeypatch.setattr(objscan, "MIN_BYTES", 1 << 15)
    calls = []
    scan = objscan.scan_words
    monkeypatch.setattr(objscan, "scan_words", lambda w, n: calls.append(n) or scan(w, n))
    small = write(tmp_path, QUAD + "f 1 2 3\n", "small.obj")
    big = write(tmp_path, QUAD + "f 1 2 3\n" * 6000, "big.obj")
    meshio.read_obj(small)
    assert calls == []
    assert len(meshio.read_obj(big).faces) == 6000 and calls == [big.stat().st_size]
