"""Reading and writing triangle meshes: Wavefront OBJ and Stanford PLY.

Readers return a :class:`~lumigrad.geometry.primitives.MeshData`
``(positions, faces)`` with ``.normals`` / ``.uvs`` (``None`` when the file has
none). Polygons are fan-triangulated: ``(i0, i1, ..., ik)`` becomes
``(i0, ij, ij+1)`` for ``j = 1 .. k-1``. Degenerate triangles are kept (the
renderer copes with them); an empty mesh is an error.

Texture coordinates are returned as stored in the file; flipping ``v -> 1 - v``
(Mitsuba's ``flip_tex_coords``) is the shape plugin's job.

Errors name the file and, where one exists, the line: a missing file raises
``FileNotFoundError``, anything wrong with the content :class:`MeshFileError`
(a ``ValueError``).

Parsing is vectorised with numpy where the format allows; the only per-item
Python work is splitting OBJ face tokens and reading rows of variable length
in PLY files that mix polygon sizes.
"""
from __future__ import annotations

import os
import re
from typing import Optional, Union

import numpy as np

from .primitives import MeshData

__all__ = ["MeshFileError", "read_obj", "read_ply", "write_obj", "write_ply",
           "read_mesh", "vertex_normals", "fan_triangulate"]

PathLike = Union[str, "os.PathLike[str]"]


class MeshFileError(ValueError):
    """Malformed or inconsistent mesh file (the message names the file and line)."""


# --------------------------------------------------------------------------- helpers
def _read_bytes(path: PathLike) -> bytes:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"mesh file {path!r} does not exist")
    if os.path.isdir(path):
        raise MeshFileError(f"mesh file {path!r} is a directory")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as e:
        raise MeshFileError(f"mesh file {path!r} cannot be read: {e}") from e


def fan_triangulate(counts: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate polygons given as per-polygon vertex ``counts`` and the
    concatenated ``indices``. Returns ``(triangles (T, 3), polygon_of_triangle (T,))``.
    Every count must be >= 3 (checked by the callers, which know the line)."""
    counts = np.asarray(counts, dtype=np.int64)
    indices = np.asarray(indices)
    start = np.cumsum(counts) - counts
    if np.all(counts == 3):
        return indices.reshape(-1, 3), np.arange(len(counts))
    ntri = counts - 2
    poly = np.repeat(np.arange(len(counts)), ntri)
    # j = 1 .. count-2 within each polygon
    j = np.arange(int(ntri.sum())) - np.repeat(np.cumsum(ntri) - ntri, ntri) + 1
    o = start[poly]
    tri = np.stack([indices[o], indices[o + j], indices[o + j + 1]], axis=1)
    return tri, poly


def vertex_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Smooth per-vertex normals: the angle-weighted sum of the incident face
    normals (Thürmer & Wüthrich 1998, "Computing vertex normals from polygonal
    facets"), normalised. This is the weighting Mitsuba uses when a mesh file has
    no normals. Vertices touched only by degenerate faces get (0, 0, 1)."""
    p = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    v0, v1, v2 = p[f[:, 0]], p[f[:, 1]], p[f[:, 2]]
    n = np.cross(v1 - v0, v2 - v0)
    ln = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.divide(n, ln, out=np.zeros_like(n), where=ln > 0)
    acc = np.zeros_like(p)
    for k in range(3):
        a = p[f[:, (k + 1) % 3]] - p[f[:, k]]
        b = p[f[:, (k + 2) % 3]] - p[f[:, k]]
        la = np.linalg.norm(a, axis=1)
        lb = np.linalg.norm(b, axis=1)
        cosang = np.einsum("ij,ij->i", a, b) / np.maximum(la * lb, 1e-300)
        ang = np.arccos(np.clip(cosang, -1.0, 1.0))
        np.add.at(acc, f[:, k], n * ang[:, None])
    la = np.linalg.norm(acc, axis=1, keepdims=True)
    out = np.divide(acc, la, out=np.zeros_like(acc), where=la > 0)
    out[la[:, 0] == 0] = (0.0, 0.0, 1.0)
    return out.astype(np.float32)


def _finish(path: str, positions: np.ndarray, faces: np.ndarray,
            normals: Optional[np.ndarray], uvs: Optional[np.ndarray]) -> MeshData:
    if len(positions) == 0 or len(faces) == 0:
        raise MeshFileError(f"{path}: the mesh is empty ({len(positions)} vertices, "
                            f"{len(faces)} faces)")
    if not np.all(np.isfinite(positions)):
        bad = int(np.argmax(~np.all(np.isfinite(positions), axis=1)))
        raise MeshFileError(f"{path}: vertex {bad} has a non-finite position {positions[bad].tolist()}")
    return MeshData(positions, faces, normals=normals, uvs=uvs)


# --------------------------------------------------------------------------- OBJ
def _parse_floats(path: str, rows: list[str], linenos: list[int], what: str,
                  lo: int, hi: int, take: int) -> np.ndarray:
    """Parse OBJ rows of ``lo..hi`` numbers each into an (n, take) array; the
    first bad row is reported with its line number."""
    if not rows:
        return np.zeros((0, take))
    split = [r.split() for r in rows]
    lens = np.fromiter((len(s) for s in split), dtype=np.int64, count=len(split))
    bad = np.nonzero((lens < lo) | (lens > hi))[0]
    if len(bad):
        i = int(bad[0])
        raise MeshFileError(f"{path}:{linenos[i]}: '{what}' needs {lo} to {hi} numbers, "
                            f"got {int(lens[i])}: {rows[i].strip()!r}")
    if lo == hi == take:
        flat = [t for s in split for t in s]
        try:
            return np.array(flat, dtype=np.float64).reshape(-1, take)
        except ValueError:
            pass  # fall through to the row-by-row parse that finds the bad line
    out = np.zeros((len(split), take))
    for i, s in enumerate(split):
        try:
            vals = [float(t) for t in s[:take]]
        except ValueError:
            raise MeshFileError(f"{path}:{linenos[i]}: '{what}' has a value that is not a "
                                f"number: {rows[i].strip()!r}") from None
        out[i, :len(vals)] = vals
    return out


_OBJ_ROW = {k: re.compile(rf"^[ \t]*{k}[ \t]+([^\n#]*)", re.M) for k in ("v", "vt", "vn", "f")}
_OBJ_TRIANGLE = re.compile(r"^[ \t]*f[ \t]+[^\s#]+[ \t]+[^\s#]+[ \t]+[^\s#]+[ \t\r]*(?:#|$)", re.M)


def _obj_fast(text: str):
    """Vectorised OBJ parse of the common case: ``v`` rows of 3 numbers, ``vn``
    of 3, ``vt`` of 2, faces whose corners all use one syntax, no negative
    indices, no line continuations. Returns ``None`` when the file is anything
    else (or malformed); the line-by-line parser then handles it and reports
    errors with line numbers."""
    if "\\\n" in text or "\\\r" in text:
        return None
    try:
        arrays = []
        for key, k in (("v", 3), ("vt", 2), ("vn", 3)):
            rows = _OBJ_ROW[key].findall(text)
            vals = " ".join(rows).split()
            if len(vals) != k * len(rows):
                return None
            arrays.append(np.array(vals, dtype=np.float64).reshape(-1, k))
        frows = _OBJ_ROW["f"].findall(text)
        if not frows:
            return None
        if len(_OBJ_TRIANGLE.findall(text)) == len(frows):
            counts = np.full(len(frows), 3, dtype=np.int64)  # all triangles: skip per-row work
        else:
            counts = np.fromiter((len(r.split()) for r in frows), dtype=np.int64,
                                 count=len(frows))
        if counts.min() < 3:
            return None
        joined = " ".join(frows)
        corners = joined.split()
        slashes = corners[0].count("/")
        if any(c.count("/") != slashes for c in corners):
            return None
        doubles = joined.count("//")
        if doubles not in (0, len(corners)) or "-" in joined:
            return None
        nfield = slashes + 1 - (doubles > 0)
        fields = np.array(joined.replace("//", " ").replace("/", " ").split(),
                          dtype=np.int64)
        if len(fields) != nfield * len(corners):
            return None
    except ValueError:
        return None
    fields = fields.reshape(len(corners), nfield)
    idx = np.zeros((len(corners), 3), dtype=np.int64)
    present = np.zeros((len(corners), 3), dtype=bool)
    cols = {0: [0], 1: [0, 1], 2: [0, 1, 2]}[slashes] if not doubles else [0, 2]
    for j, c in enumerate(cols):
        idx[:, c] = fields[:, j] - 1
        present[:, c] = True
    return arrays[0], arrays[1], arrays[2], counts, idx, present


def _obj_slow(path: str, text: str):
    """Line-by-line OBJ parse for anything :func:`_obj_fast` declines; raises
    :class:`MeshFileError` naming the line of the first problem."""
    lines = text.splitlines()
    # Join lines continued with a trailing backslash (keep the first line number).
    joined: list[str] = []
    nos: list[int] = []
    buf, start = "", None
    for i, ln in enumerate(lines, 1):
        if start is None:
            start = i
        if ln.endswith("\\"):
            buf += ln[:-1] + " "
            continue
        joined.append(buf + ln)
        nos.append(start)
        buf, start = "", None
    if start is not None:
        joined.append(buf)
        nos.append(start)

    rows: dict[str, tuple[list[str], list[int]]] = {k: ([], []) for k in ("v", "vt", "vn", "f")}
    # For relative (negative) indices: how many v/vt/vn exist before each face.
    counts_at_face: list[tuple[int, int, int]] = []
    nv = nvt = nvn = 0
    for ln, no in zip(joined, nos):
        t = ln.split(None, 1)
        if not t or t[0] not in rows:
            continue  # blank, comment, or a statement we ignore (o, g, s, usemtl, ...)
        head = t[0]
        if head == "v":
            nv += 1
        elif head == "vt":
            nvt += 1
        elif head == "vn":
            nvn += 1
        else:
            counts_at_face.append((nv, nvt, nvn))
        r = rows[head]
        r[0].append(t[1].split("#", 1)[0] if len(t) > 1 else "")
        r[1].append(no)

    v = _parse_floats(path, *rows["v"], "v", 3, 7, 3)  # x y z [w] or x y z r g b [a]
    vt = _parse_floats(path, *rows["vt"], "vt", 1, 3, 2)
    vn = _parse_floats(path, *rows["vn"], "vn", 3, 3, 3)
    frows, flines = rows["f"]
    if not frows:
        raise MeshFileError(f"{path}: the mesh is empty (no 'f' statements)")

    corners: list[str] = []
    counts = np.empty(len(frows), dtype=np.int64)
    for i, r in enumerate(frows):
        toks = r.split()
        if len(toks) < 3:
            raise MeshFileError(f"{path}:{flines[i]}: a face needs at least 3 vertices, "
                                f"got {len(toks)}: 'f {r.strip()}'")
        counts[i] = len(toks)
        corners.extend(toks)
    face_of_corner = np.repeat(np.arange(len(frows)), counts)

    # Split every corner "a/b/c" into three integers.
    idx = np.zeros((len(corners), 3), dtype=np.int64)
    present = np.zeros((len(corners), 3), dtype=bool)
    present[:, 0] = True
    k = 0
    try:
        for k, c in enumerate(corners):
            parts = c.split("/")
            if len(parts) > 3 or parts[0] == "":
                raise ValueError
            idx[k, 0] = int(parts[0])
            if len(parts) > 1 and parts[1]:
                idx[k, 1] = int(parts[1])
                present[k, 1] = True
            if len(parts) > 2 and parts[2]:
                idx[k, 2] = int(parts[2])
                present[k, 2] = True
    except ValueError:
        f = int(face_of_corner[k])
        raise MeshFileError(f"{path}:{flines[f]}: malformed face vertex {corners[k]!r} "
                            f"(expected a, a/b, a//c or a/b/c with integers)") from None

    before = np.asarray(counts_at_face, dtype=np.int64)[face_of_corner]  # (C, 3)
    sizes = np.array([len(v), len(vt), len(vn)])
    # negative: relative to the number defined so far; positive: 1-based
    absidx = np.where(idx < 0, before + idx, idx - 1)
    bad = present & ((absidx < 0) | (absidx >= sizes))
    if bad.any():
        k = int(np.argmax(bad.any(axis=1)))
        col = int(np.argmax(bad[k]))
        name = ("vertex", "texture coordinate", "normal")[col]
        f = int(face_of_corner[k])
        if idx[k, col] < 0:
            have = f"only {int(before[k, col])} are defined before this line"
        else:
            have = f"the file defines {int(sizes[col])} (OBJ indices start at 1)"
        raise MeshFileError(f"{path}:{flines[f]}: face refers to {name} {int(idx[k, col])}, "
                            f"but {have}")
    return v, vt, vn, counts, absidx, present


def read_obj(path: PathLike) -> MeshData:
    """Read a Wavefront OBJ file (``v``, ``vt``, ``vn``, ``f``; other statements
    are ignored).

    Face corners may be ``a``, ``a/b``, ``a//c`` or ``a/b/c``; negative indices
    count back from the latest element defined so far. Each distinct
    ``(v, vt, vn)`` combination becomes one output vertex; output vertices are
    ordered by (v, vt, vn) index, so a file whose vertices each appear with one
    combination keeps its vertex order (unreferenced vertices are dropped).
    Corners without ``vt`` get uv (0, 0); if any corner lacks ``vn``, the mesh
    gets no normals at all.

    The common case (one corner syntax, no negative indices) is parsed with
    regular expressions and numpy; anything else, and every error, goes
    through a line-by-line parser that reports the file and line.
    """
    path = os.fspath(path)
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    parsed = _obj_fast(text)
    if parsed is not None:
        v, vt, vn, counts, absidx, present = parsed
        sizes = np.array([len(v), len(vt), len(vn)])
        if np.any(present & ((absidx < 0) | (absidx >= sizes))):
            parsed = None  # out of range: let the slow parser name the line
    if parsed is None:
        v, vt, vn, counts, absidx, present = _obj_slow(path, text)
        sizes = np.array([len(v), len(vt), len(vn)])

    has_uv = bool(present[:, 1].any())
    has_n = bool(present[:, 2].all())
    key = np.where(present, absidx, -1) + 1  # 0 = absent
    if not has_n:
        key[:, 2] = 0
    if not has_uv:
        key[:, 1] = 0
    # Unique (v, vt, vn) combinations; a packed int64 key is much faster than axis=0.
    m1, m2 = int(sizes[1]) + 1, int(sizes[2]) + 1
    if (int(sizes[0]) + 1) * m1 * m2 < 2 ** 62:
        packed = (key[:, 0] * m1 + key[:, 1]) * m2 + key[:, 2]
        uniq, inv = np.unique(packed, return_inverse=True)
        ukey = np.stack([uniq // (m1 * m2), (uniq // m2) % m1, uniq % m2], axis=1)
    else:
        ukey, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)

    positions = v[ukey[:, 0] - 1]
    uvs = None
    if has_uv:
        uvs = np.where((ukey[:, 1] > 0)[:, None], vt[np.maximum(ukey[:, 1] - 1, 0)], 0.0)
    normals = vn[ukey[:, 2] - 1] if has_n else None
    faces, _ = fan_triangulate(counts, inv)
    return _finish(path, positions, faces, normals, uvs)


def write_obj(path: PathLike, positions: np.ndarray, faces: np.ndarray,
              normals: Optional[np.ndarray] = None, uvs: Optional[np.ndarray] = None) -> None:
    """Write a triangle mesh as OBJ (``v``, optional ``vt`` / ``vn``, ``f a/b/c``),
    with one ``vt``/``vn`` per vertex so indices coincide."""
    p, f, n, uv = _check_arrays(positions, faces, normals, uvs)
    path = os.fspath(path)
    with open(path, "w") as fh:
        fh.write(f"# written by lumigrad: {len(p)} vertices, {len(f)} triangles\n")
        np.savetxt(fh, p, fmt="v %.9g %.9g %.9g")
        if uv is not None:
            np.savetxt(fh, uv, fmt="vt %.9g %.9g")
        if n is not None:
            np.savetxt(fh, n, fmt="vn %.9g %.9g %.9g")
        f1 = f.astype(np.int64) + 1
        if uv is not None and n is not None:
            np.savetxt(fh, np.repeat(f1, 3, axis=1), fmt="f %d/%d/%d %d/%d/%d %d/%d/%d")
        elif uv is not None:
            np.savetxt(fh, np.repeat(f1, 2, axis=1), fmt="f %d/%d %d/%d %d/%d")
        elif n is not None:
            np.savetxt(fh, np.repeat(f1, 2, axis=1), fmt="f %d//%d %d//%d %d//%d")
        else:
            np.savetxt(fh, f1, fmt="f %d %d %d")


def _check_arrays(positions, faces, normals, uvs):
    p = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces)
    if f.size == 0 or len(p) == 0:
        raise ValueError("cannot write an empty mesh")
    if not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"faces must be integers, got {f.dtype}")
    f = f.reshape(-1, 3).astype(np.int64)
    if f.min() < 0 or f.max() >= len(p):
        raise ValueError(f"faces refer to vertices outside [0, {len(p) - 1}]")
    n = None if normals is None else np.asarray(normals, dtype=np.float64).reshape(-1, 3)
    uv = None if uvs is None else np.asarray(uvs, dtype=np.float64).reshape(-1, 2)
    for name, a in (("normals", n), ("uvs", uv)):
        if a is not None and len(a) != len(p):
            raise ValueError(f"{len(a)} {name} for {len(p)} vertices")
    return p, f, n, uv


# --------------------------------------------------------------------------- PLY
_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_UV_NAMES = (("u", "v"), ("s", "t"), ("texture_u", "texture_v"),
             ("texture_s", "texture_t"))


class _Element:
    def __init__(self, name: str, count: int, line: int) -> None:
        self.name = name
        self.count = count
        self.line = line
        # (name, dtype) for scalars, (name, count dtype, item dtype) for lists
        self.props: list[tuple] = []

    @property
    def has_list(self) -> bool:
        return any(len(p) == 3 for p in self.props)


def _parse_ply_header(path: str, raw: bytes) -> tuple[str, list[_Element], int, int]:
    end = raw.find(b"end_header")
    if not raw.startswith(b"ply") or end < 0:
        raise MeshFileError(f"{path}: not a PLY file (expected 'ply' ... 'end_header')")
    nl = raw.find(b"\n", end)
    body = len(raw) if nl < 0 else nl + 1
    header = raw[:end].decode("ascii", errors="replace").splitlines()
    fmt = None
    elements: list[_Element] = []
    for no, ln in enumerate(header, 1):
        t = ln.split()
        if not t or t[0] in ("ply", "comment", "obj_info"):
            continue
        if t[0] == "format":
            if len(t) < 2 or t[1] not in ("ascii", "binary_little_endian", "binary_big_endian"):
                raise MeshFileError(f"{path}:{no}: unknown PLY format {ln.strip()!r} (expected "
                                    "ascii, binary_little_endian or binary_big_endian)")
            fmt = t[1]
        elif t[0] == "element":
            if len(t) != 3 or not t[2].isdigit():
                raise MeshFileError(f"{path}:{no}: malformed element line {ln.strip()!r}")
            elements.append(_Element(t[1], int(t[2]), no))
        elif t[0] == "property":
            if not elements:
                raise MeshFileError(f"{path}:{no}: property before any element")
            if len(t) == 5 and t[1] == "list":
                if t[2] not in _PLY_TYPES or t[3] not in _PLY_TYPES:
                    raise MeshFileError(f"{path}:{no}: unknown PLY type in {ln.strip()!r}; "
                                        f"known: {', '.join(sorted(_PLY_TYPES))}")
                elements[-1].props.append((t[4], _PLY_TYPES[t[2]], _PLY_TYPES[t[3]]))
            elif len(t) == 3:
                if t[1] not in _PLY_TYPES:
                    raise MeshFileError(f"{path}:{no}: unknown PLY type {t[1]!r}; "
                                        f"known: {', '.join(sorted(_PLY_TYPES))}")
                elements[-1].props.append((t[2], _PLY_TYPES[t[1]]))
            else:
                raise MeshFileError(f"{path}:{no}: malformed property line {ln.strip()!r}")
        else:
            raise MeshFileError(f"{path}:{no}: unexpected PLY header line {ln.strip()!r}")
    if fmt is None:
        raise MeshFileError(f"{path}: PLY header has no 'format' line")
    return fmt, elements, body, len(header) + 1


def _ply_binary_element(path: str, el: _Element, raw: bytes, pos: int, bo: str):
    """Read one binary element. Returns (dict name -> array, list values
    (counts, flat) for the first list property or None, new position)."""
    if not el.has_list:
        dt = np.dtype([(p[0], bo + p[1]) for p in el.props])
        need = dt.itemsize * el.count
        if pos + need > len(raw):
            raise MeshFileError(f"{path}: file ends inside element '{el.name}' "
                                f"({el.count} rows of {dt.itemsize} bytes expected)")
        a = np.frombuffer(raw, dtype=dt, count=el.count, offset=pos)
        return {p[0]: a[p[0]] for p in el.props}, None, pos + need
    # Fast path: guess that every row has the same list lengths as the first
    # one (all triangles, or all quads), read the element as one structured
    # array, and verify the guess.
    first_counts = []
    off = pos
    try:
        for p in el.props:
            if len(p) == 3:
                c = int(np.frombuffer(raw, bo + p[1], 1, off)[0]) if el.count else 0
                first_counts.append(c)
                off += np.dtype(p[1]).itemsize + c * np.dtype(p[2]).itemsize
            else:
                off += np.dtype(p[1]).itemsize
    except ValueError:
        raise MeshFileError(f"{path}: file ends inside element '{el.name}'") from None
    if all(c > 0 for c in first_counts):
        fields, counts_iter = [], iter(first_counts)
        for p in el.props:
            if len(p) == 3:
                fields += [(p[0] + "__n", bo + p[1]), (p[0], bo + p[2], (next(counts_iter),))]
            else:
                fields.append((p[0], bo + p[1]))
        dt = np.dtype(fields)
        if pos + dt.itemsize * el.count <= len(raw):
            a = np.frombuffer(raw, dtype=dt, count=el.count, offset=pos)
            lists_p = [p for p in el.props if len(p) == 3]
            if all(np.all(a[p[0] + "__n"] == c) for p, c in zip(lists_p, first_counts)):
                out = {p[0]: a[p[0]] for p in el.props if len(p) == 2}
                p0, c0 = lists_p[0], first_counts[0]
                lists = (np.full(el.count, c0, dtype=np.int64), a[p0[0]].reshape(-1))
                return out, lists, pos + dt.itemsize * el.count
    # Slow path: rows of varying length, walked one by one.
    scalars: dict[str, list] = {p[0]: [] for p in el.props if len(p) == 2}
    counts: list[int] = []
    flat_parts: list[np.ndarray] = []
    first_list = next(p[0] for p in el.props if len(p) == 3)
    for row in range(el.count):
        for p in el.props:
            try:
                if len(p) == 2:
                    scalars[p[0]].append(np.frombuffer(raw, bo + p[1], 1, pos)[0])
                    pos += np.dtype(p[1]).itemsize
                else:
                    c = int(np.frombuffer(raw, bo + p[1], 1, pos)[0])
                    pos += np.dtype(p[1]).itemsize
                    vals = np.frombuffer(raw, bo + p[2], c, pos)
                    pos += c * np.dtype(p[2]).itemsize
                    if p[0] == first_list:
                        counts.append(c)
                        flat_parts.append(vals)
            except ValueError:
                raise MeshFileError(f"{path}: file ends inside row {row} of element "
                                    f"'{el.name}'") from None
    flat = np.concatenate(flat_parts) if flat_parts else np.zeros(0, dtype=np.int64)
    return ({k: np.asarray(v) for k, v in scalars.items()},
            (np.asarray(counts, dtype=np.int64), flat), pos)


def _ply_ascii_element(path: str, el: _Element, lines: list[str], li: int, line0: int):
    """Read one ASCII element (one row per line). Returns (scalars, lists,
    new line index, line numbers of the rows)."""
    rows = lines[li:li + el.count]
    if len(rows) < el.count:
        raise MeshFileError(f"{path}: file ends inside element '{el.name}' "
                            f"({el.count} rows expected, {len(rows)} found)")
    rowlines = np.arange(li, li + el.count) + line0
    if not el.has_list:
        k = len(el.props)
        toks = [r.split() for r in rows]
        lens = np.fromiter((len(t) for t in toks), dtype=np.int64, count=len(toks))
        bad = np.nonzero(lens != k)[0]
        if len(bad):
            i = int(bad[0])
            raise MeshFileError(f"{path}:{rowlines[i]}: element '{el.name}' row has "
                                f"{int(lens[i])} values, expected {k}")
        try:
            a = np.array([t for r in toks for t in r], dtype=np.float64).reshape(-1, k)
        except ValueError:
            for i, r in enumerate(toks):
                try:
                    [float(t) for t in r]
                except ValueError:
                    raise MeshFileError(f"{path}:{rowlines[i]}: element '{el.name}' row has a "
                                        f"value that is not a number: {rows[i].strip()!r}") from None
            raise
        return {p[0]: a[:, j] for j, p in enumerate(el.props)}, None, li + el.count, rowlines
    scalars: dict[str, list] = {p[0]: [] for p in el.props if len(p) == 2}
    counts: list[int] = []
    flat: list[float] = []
    first_list = next(p[0] for p in el.props if len(p) == 3)
    for i, r in enumerate(rows):
        t = r.split()
        try:
            j = 0
            for p in el.props:
                if len(p) == 2:
                    scalars[p[0]].append(float(t[j]))
                    j += 1
                else:
                    c = int(t[j])
                    vals = t[j + 1:j + 1 + c]
                    if len(vals) != c or c < 0:
                        raise IndexError
                    if p[0] == first_list:
                        counts.append(c)
                        flat.extend(float(x) for x in vals)
                    j += 1 + c
            if j != len(t):
                raise IndexError
        except (ValueError, IndexError):
            raise MeshFileError(f"{path}:{rowlines[i]}: malformed row of element "
                                f"'{el.name}': {r.strip()!r}") from None
    return ({k: np.asarray(v) for k, v in scalars.items()},
            (np.asarray(counts, dtype=np.int64), np.asarray(flat)), li + el.count, rowlines)


def read_ply(path: PathLike) -> MeshData:
    """Read a PLY file (ascii, binary little or big endian).

    Uses the ``vertex`` element's ``x y z``, optional ``nx ny nz`` and texture
    coordinates (``u v``, ``s t``, ``texture_u texture_v`` or ``texture_s
    texture_t``) and the ``face`` element's ``vertex_indices`` (or
    ``vertex_index``) list; other elements and properties are skipped. ASCII
    files must have one row per line (as every writer produces).
    """
    path = os.fspath(path)
    raw = _read_bytes(path)
    fmt, elements, body, header_lines = _parse_ply_header(path, raw)
    verts = faces = None
    face_lines = None
    if fmt == "ascii":
        lines = [ln for ln in raw[body:].decode("ascii", errors="replace").split("\n")]
        # keep line numbers: strip only trailing empties, rows are consecutive lines
        li = 0
        for el in elements:
            # skip blank lines between elements (tolerated)
            while li < len(lines) and not lines[li].strip() and el.count:
                li += 1
            sc, lists, li, rl = _ply_ascii_element(path, el, lines, li, header_lines + 1)
            if el.name == "vertex":
                verts = sc
            elif el.name == "face":
                faces, face_lines = lists, rl
    else:
        bo = "<" if fmt == "binary_little_endian" else ">"
        pos = body
        for el in elements:
            sc, lists, pos = _ply_binary_element(path, el, raw, pos, bo)
            if el.name == "vertex":
                verts = sc
            elif el.name == "face":
                faces = lists
    if verts is None or not all(k in verts for k in "xyz"):
        raise MeshFileError(f"{path}: PLY file has no 'vertex' element with x, y, z properties")
    if faces is None:
        raise MeshFileError(f"{path}: PLY file has no 'face' element with a vertex_indices list")
    fel = next(e for e in elements if e.name == "face")
    lname = next(p[0] for p in fel.props if len(p) == 3)
    if lname not in ("vertex_indices", "vertex_index"):
        raise MeshFileError(f"{path}: the 'face' element's list is {lname!r}, expected "
                            "'vertex_indices'")
    n = len(verts["x"])
    positions = np.stack([verts["x"], verts["y"], verts["z"]], axis=1).astype(np.float64)
    normals = None
    if all(k in verts for k in ("nx", "ny", "nz")):
        normals = np.stack([verts["nx"], verts["ny"], verts["nz"]], axis=1)
    uvs = None
    for a, b in _UV_NAMES:
        if a in verts and b in verts:
            uvs = np.stack([verts[a], verts[b]], axis=1)
            break
    counts, flat = faces
    def where(i: int) -> str:
        return (f"{path}:{face_lines[i]}: face" if face_lines is not None
                else f"{path}: face {i}")
    small = np.nonzero(counts < 3)[0]
    if len(small):
        i = int(small[0])
        raise MeshFileError(f"{where(i)} needs at least 3 vertices, got {int(counts[i])}")
    flat = np.asarray(flat)
    if flat.dtype.kind == "f":
        if np.any(flat != np.round(flat)):
            raise MeshFileError(f"{path}: face indices are not integers")
    flat = flat.astype(np.int64)
    bad = (flat < 0) | (flat >= n)
    if bad.any():
        k = int(np.argmax(bad))
        i = int(np.searchsorted(np.cumsum(counts), k, side="right"))
        raise MeshFileError(f"{where(i)} refers to vertex {int(flat[k])}, but the file "
                            f"has {n} vertices (valid: 0 .. {n - 1})")
    tri, _ = fan_triangulate(counts, flat)
    return _finish(path, positions, tri, normals, uvs)


def write_ply(path: PathLike, positions: np.ndarray, faces: np.ndarray,
              normals: Optional[np.ndarray] = None, uvs: Optional[np.ndarray] = None,
              format: str = "binary_little_endian") -> None:
    """Write a triangle mesh as PLY (float32 ``x y z [nx ny nz] [u v]``, faces as
    ``list uchar int vertex_indices``). ``format``: ``binary_little_endian``
    (default), ``binary_big_endian`` or ``ascii``."""
    if format not in ("binary_little_endian", "binary_big_endian", "ascii"):
        raise ValueError(f"unknown PLY format {format!r}")
    p, f, n, uv = _check_arrays(positions, faces, normals, uvs)
    names = ["x", "y", "z"] + (["nx", "ny", "nz"] if n is not None else []) + \
        (["u", "v"] if uv is not None else [])
    cols = np.concatenate([a for a in (p, n, uv) if a is not None], axis=1)
    header = ["ply", f"format {format} 1.0", "comment written by lumigrad",
              f"element vertex {len(p)}"] + [f"property float {k}" for k in names] + \
             [f"element face {len(f)}", "property list uchar int vertex_indices", "end_header"]
    with open(os.fspath(path), "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        if format == "ascii":
            np.savetxt(fh, cols, fmt="%.9g")
            np.savetxt(fh, np.concatenate([np.full((len(f), 1), 3), f], axis=1), fmt="%d")
            return
        bo = "<" if format == "binary_little_endian" else ">"
        vdt = np.dtype([(k, bo + "f4") for k in names])
        va = np.empty(len(p), dtype=vdt)
        for j, k in enumerate(names):
            va[k] = cols[:, j]
        fdt = np.dtype([("n", "u1"), ("i", bo + "i4", (3,))])
        fa = np.empty(len(f), dtype=fdt)
        fa["n"] = 3
        fa["i"] = f
        fh.write(va.tobytes())
        fh.write(fa.tobytes())


def read_mesh(path: PathLike) -> MeshData:
    """Read an ``.obj`` or ``.ply`` file, chosen by extension."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext == ".obj":
        return read_obj(path)
    if ext == ".ply":
        return read_ply(path)
    raise MeshFileError(f"{os.fspath(path)}: unknown mesh file extension {ext!r} "
                        "(supported: .obj, .ply)")
