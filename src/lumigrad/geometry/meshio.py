"""Reading and writing triangle meshes: Wavefront OBJ, Stanford PLY and
Mitsuba's ``serialized`` format.

Readers return a :class:`~lumigrad.geometry.primitives.MeshData`
``(positions, faces)`` with ``.normals`` / ``.uvs`` (``None`` when the file has
none), ``.colors`` (PLY and serialized vertex colours, else ``None``; read, not
rendered), ``.face_groups`` (one int per triangle), ``.group_names`` (OBJ
``o``/``g`` groups; one group for the other formats) and, for OBJ,
``.vertex_groups``. Polygons are
fan-triangulated: ``(i0, i1, ..., ik)`` becomes ``(i0, ij, ij+1)`` for
``j = 1 .. k-1``. Degenerate triangles are kept (the renderer copes with them);
an empty mesh is an error.

Texture coordinates are returned as stored in the file; flipping ``v -> 1 - v``
(Mitsuba's ``flip_tex_coords``) is the shape plugin's job.

Errors name the file and, where one exists, the line: a missing file raises
``FileNotFoundError``, anything wrong with the content :class:`MeshFileError`
(a ``ValueError``).

Parsing is array work throughout (no Python loop over lines, faces or rows).
OBJ files of the common layout (and 32 KB or more) are scanned by compiled
kernels (:mod:`.objscan`, Dr.Jit); the others, and every file with a mistake,
by numpy: text files are cut into lines by searching the bytes for newlines,
lines are classified by their first bytes, the numbers of one kind are parsed
in one call on their joined text, and the per-line token counts (from
whitespace transitions) check the structure. Only when a vectorised parse
fails does a line-by-line scan run, to name the first bad line. Binary PLY
rows of varying length are located by pointer doubling. Nothing is cached.

Sources: OBJ after Wavefront's "Object Files (.obj)" appendix (``v``/``vt``/
``vn``/``f``, ``o``/``g``, relative indices, ``\\`` line continuation), read
with Mitsuba 3's conventions (one vertex per distinct ``(v, vt, vn)``, ``v``
flipped by the shape); PLY after Greg Turk's "The PLY Polygon File Format";
``serialized`` after the format description in Mitsuba 3's plugin
documentation (shape ``serialized``).
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from typing import Optional, Union

import numpy as np

from .primitives import MeshData

__all__ = ["MeshFileError", "read_obj", "read_ply", "read_serialized", "write_obj",
           "write_ply", "write_serialized", "read_mesh", "serialized_shape_count",
           "vertex_normals", "fan_triangulate"]

PathLike = Union[str, "os.PathLike[str]"]


class MeshFileError(ValueError):
    """Malformed or inconsistent mesh file (the message names the file and line)."""


# --------------------------------------------------------------------------- helpers
def _readable(path: PathLike) -> str:
    """``path`` as a string, checked: a missing file or a directory is an error."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"mesh file {path!r} does not exist")
    if os.path.isdir(path):
        raise MeshFileError(f"mesh file {path!r} is a directory")
    return path


def _read_bytes(path: PathLike) -> bytes:
    path = _readable(path)
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as e:
        raise MeshFileError(f"mesh file {path!r} cannot be read: {e}") from e


def _read_words(path: PathLike) -> tuple[np.ndarray, int]:
    """The file as 32-bit words, zero-padded (what :func:`.objscan.scan_words`
    reads: no copy of the text), and its size."""
    from .objscan import PADDING
    path = _readable(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            words = np.zeros(size // 4 + PADDING, dtype=np.uint32)
            return words, fh.readinto(memoryview(words.view(np.uint8))[:size])
    except OSError as e:
        raise MeshFileError(f"mesh file {path!r} cannot be read: {e}") from e


def fan_triangulate(counts: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangulate polygons given as per-polygon vertex ``counts`` and the
    concatenated ``indices``. Returns ``(triangles (T, 3), polygon_of_triangle (T,))``.
    Every count must be >= 3 (checked by the callers, which know the line)."""
    counts = np.asarray(counts, dtype=np.int64)
    indices = np.asarray(indices)
    if np.all(counts == 3):
        return indices.reshape(-1, 3), np.arange(len(counts))
    if len(counts) and np.all(counts == counts[0]):
        # One polygon size (quads, say): the fans by column, no gathers.
        k = int(counts[0])
        q = indices.reshape(-1, k)
        tri = np.empty((len(q), k - 2, 3), dtype=indices.dtype)
        tri[:, :, 0] = q[:, :1]
        tri[:, :, 1] = q[:, 1:-1]
        tri[:, :, 2] = q[:, 2:]
        return tri.reshape(-1, 3), np.repeat(np.arange(len(q)), k - 2)
    start = np.cumsum(counts) - counts
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
    v = p[f]                                            # (F, 3 corners, 3)
    e1 = v[:, 1] - v[:, 0]
    e2 = v[:, 2] - v[:, 0]
    # cross product and norms written out: np.cross / np.linalg.norm are slower
    n = np.stack([e1[:, 1] * e2[:, 2] - e1[:, 2] * e2[:, 1],
                  e1[:, 2] * e2[:, 0] - e1[:, 0] * e2[:, 2],
                  e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]], axis=1)
    ln = np.sqrt(np.einsum("fj,fj->f", n, n))[:, None]
    n = np.divide(n, ln, out=np.zeros_like(n), where=ln > 0)
    # interior angle at every corner k, between the edges to corners k+1 and k+2
    a = np.roll(v, -1, axis=1) - v
    b = np.roll(v, -2, axis=1) - v
    lab = np.sqrt(np.einsum("fkj,fkj->fk", a, a) * np.einsum("fkj,fkj->fk", b, b))
    cosang = np.einsum("fkj,fkj->fk", a, b) / np.maximum(lab, 1e-300)
    ang = np.arccos(np.clip(cosang, -1.0, 1.0))         # (F, 3)
    # scatter-add by bincount (faster than np.add.at)
    idx = f.reshape(-1)
    acc = np.stack([np.bincount(idx, weights=(ang * n[:, c:c + 1]).reshape(-1),
                                minlength=len(p)) for c in range(3)], axis=1)
    la = np.sqrt(np.einsum("vj,vj->v", acc, acc))[:, None]
    out = np.divide(acc, la, out=np.zeros_like(acc), where=la > 0)
    out[la[:, 0] == 0] = (0.0, 0.0, 1.0)
    return out.astype(np.float32)


def _finish(path: str, positions: np.ndarray, faces: np.ndarray,
            normals: Optional[np.ndarray], uvs: Optional[np.ndarray], **extra) -> MeshData:
    """Check and wrap the arrays; ``extra`` becomes attributes of the result
    (``face_groups``, ``group_names``, ``colors``, ...)."""
    if len(positions) == 0 or len(faces) == 0:
        raise MeshFileError(f"{path}: the mesh is empty ({len(positions)} vertices, "
                            f"{len(faces)} faces)")
    with np.errstate(over="ignore"):
        m = MeshData(positions, faces, normals=normals, uvs=uvs)
    finite = np.all(np.isfinite(m.positions), axis=1)     # after the cast to float32
    if not finite.all():
        bad = int(np.argmin(finite))
        raise MeshFileError(f"{path}: vertex {bad} has a non-finite position "
                            f"{np.asarray(positions)[bad].tolist()} (in float32)")
    m.colors = None
    for k, val in extra.items():
        setattr(m, k, val)
    return m


# --------------------------------------------------------------------------- text
class _Text:
    """A text file cut into lines by numpy: ``starts[i]:ends[i]`` is line ``i``
    (without its newline). Per-line work is array work; no Python loop runs over
    lines except to word an error message.

    ``continuation``: a backslash at the end of a line joins the next line to it
    (OBJ); the bytes ``\\``, ``\\r``, ``\\n`` become spaces, so byte offsets and
    original line numbers (:meth:`lineno`) stay known."""

    def __init__(self, raw: bytes, continuation: bool = False) -> None:
        n = len(raw)
        # padding: reading bytes 1 and 2 of any line never leaves the buffer
        buf = np.frombuffer(raw + b"\n\n\n", dtype=np.uint8)
        self._orig_nl = None
        if continuation and b"\\" in raw:
            bs = np.flatnonzero(buf[:n] == 92)
            lf = bs[buf[bs + 1] == 10]
            crlf = bs[(buf[bs + 1] == 13) & (buf[bs + 2] == 10)]
            if len(lf) or len(crlf):
                self._orig_nl = np.flatnonzero(buf[:n] == 10)
                buf = buf.copy()
                for off, sel in ((0, lf), (1, lf), (0, crlf), (1, crlf), (2, crlf)):
                    buf[sel + off] = 32
        if raw.startswith(b"\xef\xbb\xbf"):                # a UTF-8 byte-order mark
            buf = buf.copy()
            buf[:3] = 32
        self.buf = buf
        self.size = n
        nl = np.flatnonzero(buf[:n] == 10)
        if n and buf[n - 1] != 10:
            nl = np.append(nl, n)          # last line without a newline
        self.starts = np.concatenate([[0], nl[:-1] + 1]).astype(np.int64)[:len(nl)]
        self.ends = nl.astype(np.int64)

    def lineno(self, i: int) -> int:
        """1-based line number in the file of line ``i``."""
        if self._orig_nl is None:
            return int(i) + 1
        return int(np.searchsorted(self._orig_nl, self.starts[i])) + 1

    def text(self, i: int) -> str:
        return bytes(self.buf[self.starts[i]:self.ends[i]]).decode("utf-8", "replace").strip()

    def strip_comments(self) -> None:
        """End every line at its first ``#``."""
        hashes = np.flatnonzero(self.buf[:self.size] == 35)
        if len(hashes):
            line = np.searchsorted(self.ends, hashes)       # first line ending at or after it
            line, first = np.unique(line, return_index=True)
            self.ends[line] = np.minimum(self.ends[line], hashes[first])

    def skip_leading_space(self) -> None:
        s, e = self.starts, self.ends
        lead = ((self.buf[s] == 32) | (self.buf[s] == 9)) & (s < e)
        if lead.any():
            nonspace = np.append(np.flatnonzero(self.buf > 32), len(self.buf))
            j = np.searchsorted(nonspace, s[lead])
            s[lead] = np.minimum(nonspace[j], e[lead])

    def gather(self, lines: np.ndarray, skip: int):
        """The text of ``lines`` (each without its first ``skip`` bytes), one per row,
        ended by ``\\n``: returns ``(bytes array, row offsets, row lengths)``."""
        s = self.starts[lines] + skip
        e = self.ends[lines]
        lens = np.maximum(e - s, 0)
        if lines[-1] - lines[0] + 1 == len(lines) and np.all(self.buf[e] == 10):
            # one block of consecutive whole lines (the usual layout): copy the
            # block and blank the keywords instead of gathering byte by byte
            a = int(self.starts[lines[0]])
            out = self.buf[a:int(e[-1]) + 1].copy()
            for j in range(skip):                    # keyword bytes, not lines
                out[s - skip - a + j] = 32
            return out, s - a, lens
        offs = np.cumsum(lens + 1) - (lens + 1)
        total = int(offs[-1] + lens[-1] + 1)
        src = np.repeat(s - offs, lens + 1) + np.arange(total)
        out = self.buf[src]
        out[offs + lens] = 10
        return out, offs, lens


def _token_starts(b: np.ndarray) -> np.ndarray:
    """Mask of the first byte of every whitespace-separated token."""
    sp = b <= 32
    st = ~sp
    st[1:] &= sp[:-1]
    return st


def _running_count(mask: np.ndarray) -> np.ndarray:
    """``c[i]`` = number of set entries of ``mask[:i]`` (``len(mask) + 1`` values;
    int32 where it fits: half the memory traffic of int64 on big files)."""
    c = np.zeros(len(mask) + 1, dtype=np.int32 if len(mask) < 2 ** 31 else np.int64)
    np.cumsum(mask, out=c[1:])
    return c


def _row_counts(mask: np.ndarray, offs: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Number of set entries of ``mask`` in each row ``offs[i] : offs[i] + lens[i]``."""
    c = _running_count(mask)
    return (c[offs + lens] - c[offs]).astype(np.int64)


def _parse_numbers(data: bytes, dtype) -> Optional[np.ndarray]:
    """All whitespace-separated numbers of ``data`` (``None`` if one is not a number)."""
    try:
        return np.fromstring(data, dtype=dtype, sep=" ")
    except ValueError:
        return None


def _parse_table(data: bytes, rows: int, cols: int) -> Optional[np.ndarray]:
    """``data`` (``rows`` lines of ``cols`` numbers each, as counted by
    :func:`_token_starts`) as a float64 ``(rows, cols)`` table, or ``None`` if
    ``np.loadtxt`` rejects it or splits it otherwise (the caller then parses it
    with :func:`_parse_numbers`, which also words the errors). ``loadtxt``'s C
    reader is ~1.4x faster than ``np.fromstring`` on such rows; both round
    correctly, so the values are the same."""
    try:
        table = np.loadtxt(io.BytesIO(data), dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        return None
    return table if table.shape == (rows, cols) else None


def _first_bad_token(rows: list[str], conv) -> tuple[int, str]:
    """Index of the first row holding a token ``conv`` rejects (error path only)."""
    for i, r in enumerate(rows):
        for tok in r.split():
            try:
                conv(tok)
            except ValueError:
                return i, tok
    return -1, ""


# --------------------------------------------------------------------------- OBJ
def _obj_floats(path: str, t: _Text, lines: np.ndarray, skip: int, what: str,
                lo: int, hi: int, take: int) -> np.ndarray:
    """The numbers of OBJ statements ``lines`` (``lo..hi`` per line, the first
    ``take`` kept, missing ones 0) as an ``(n, take)`` array."""
    if len(lines) == 0:
        return np.zeros((0, take))
    out, offs, lens = t.gather(lines, skip)
    k = _row_counts(_token_starts(out), offs, lens)
    bad = np.flatnonzero((k < lo) | (k > hi))
    if len(bad):
        i = int(bad[0])
        raise MeshFileError(f"{path}:{t.lineno(lines[i])}: '{what}' needs {lo} to {hi} numbers, "
                            f"got {int(k[i])}: {t.text(lines[i])!r}")
    data = out.tobytes()
    if np.all(k == k[0]) and k[0] >= take:
        table = _parse_table(data, len(lines), int(k[0]))
        if table is not None:
            return table[:, :take]
    vals = _parse_numbers(data, np.float64)
    if vals is None or len(vals) != int(k.sum()):
        rows = out.tobytes().decode("utf-8", "replace").split("\n")
        i, tok = _first_bad_token(rows, float)
        where = f"{path}:{t.lineno(lines[i])}" if i >= 0 else path
        raise MeshFileError(f"{where}: '{what}' has a value that is not a number ({tok!r}): "
                            f"{t.text(lines[max(i, 0)])!r}")
    if np.all(k == take):
        return vals.reshape(-1, take)
    first = np.cumsum(k) - k
    res = np.zeros((len(k), take))
    for j in range(take):                      # columns, not lines
        has = k > j
        res[has, j] = vals[first[has] + j]
    return res


_CORNER_HELP = "expected a, a/b, a//c or a/b/c with integers"


def _obj_faces(path: str, t: _Text, lines: np.ndarray):
    """Parse the ``f`` statements ``lines``. Returns ``(counts, idx, present,
    face_of_corner)``: corners per face, ``(C, 3)`` raw (v, vt, vn) indices as
    written (1-based or negative), which of the three each corner gives, and
    the face of each corner."""
    out, offs, lens = t.gather(lines, 1)
    st = _token_starts(out)
    c0 = _running_count(st)
    cst = c0[1:]                                       # corners up to each byte
    counts = (c0[offs + lens] - c0[offs]).astype(np.int64)
    small = np.flatnonzero(counts < 3)
    if len(small):
        i = int(small[0])
        raise MeshFileError(f"{path}:{t.lineno(lines[i])}: a face needs at least 3 vertices, "
                            f"got {int(counts[i])}: {t.text(lines[i])!r}")
    tokpos = np.flatnonzero(st)                        # first byte of each corner
    ncorner = len(tokpos)
    face_of_corner = np.repeat(np.arange(len(lines)), counts)

    def malformed(c: int) -> MeshFileError:
        f = int(face_of_corner[c])
        tok = bytes(out[tokpos[c]:]).split(None, 1)[0].decode("utf-8", "replace")
        return MeshFileError(f"{path}:{t.lineno(lines[f])}: malformed face vertex {tok!r} "
                             f"({_CORNER_HELP})")

    # Corner syntax from its slashes: "a" (0), "a/b" (1), "a//c" or "a/b/c" (2);
    # an empty field is a slash followed by a slash or by the corner's end.
    sl = np.flatnonzero(out == 47)
    if len(sl):
        corner_of_slash = cst[sl].astype(np.int64) - 1
        nslash = np.bincount(corner_of_slash, minlength=ncorner)
        after = out[sl + 1]
        empty = (after == 47) | (after <= 32)
        nempty = np.bincount(corner_of_slash[empty], minlength=ncorner)
        double = np.zeros(ncorner, dtype=bool)
        double[corner_of_slash[after == 47]] = True
        bad = np.flatnonzero((nslash > 2) | (out[tokpos] == 47))
        if len(bad):
            raise malformed(int(bad[0]))
        numbers = out.copy()
        numbers[sl] = 32
        nsub = nslash + 1 - nempty                     # indices written per corner
    else:
        numbers, double = out, None
        nsub = np.ones(ncorner, dtype=np.int64)
    vals = _parse_numbers(numbers.tobytes(), np.int64)
    if vals is None or len(vals) != int(nsub.sum()):
        # error path: find the first corner that is not made of integers
        for c, w in enumerate(out.tobytes().decode("utf-8", "replace").split()):
            try:
                [int(x) for x in w.split("/") if x]
            except ValueError:
                raise malformed(c) from None
        raise MeshFileError(f"{path}: malformed face statements ({_CORNER_HELP})")
    idx = np.zeros((ncorner, 3), dtype=np.int64)
    present = np.zeros((ncorner, 3), dtype=bool)
    if double is None:
        idx[:, 0] = vals
        present[:, 0] = True
    elif np.all(nsub == nsub[0]) and (not double.any() or double.all()):
        k = int(nsub[0])                               # one syntax for all corners
        cols = [0, 2] if double.any() and k == 2 else list(range(k))
        idx[:, cols] = vals.reshape(-1, k)
        present[:, cols] = True
    else:
        corner = np.repeat(np.arange(ncorner), nsub)
        rank = np.arange(len(vals)) - np.repeat(np.cumsum(nsub) - nsub, nsub)
        field = rank + ((rank >= 1) & double[corner])  # "a//c": the 2nd index is vn
        idx[corner, field] = vals
        present[corner, field] = True
    return counts, idx, present, face_of_corner


def _obj_groups(names: np.ndarray, is_group: np.ndarray, face_lines: np.ndarray):
    """Group of every face: the name on the latest ``o`` or ``g`` line before it
    (``default`` before any, or for a nameless ``g``). ``names``: the text after
    the keyword of each group line (unstripped); ``is_group``: which lines are
    group lines; ``face_lines``: the faces' lines. Returns ``(group of each
    face, names)``, groups numbered by first use and only those with faces."""
    if len(names) == 0:
        return np.zeros(len(face_lines), dtype=np.int64), ["default"]
    names = np.char.strip(np.asarray(names, dtype=str))
    names = np.where(names == "", "default", names)
    stmt = (np.cumsum(is_group) - 1)[face_lines]     # latest o/g line before each face
    uniq, inv = np.unique(np.append(names, "default"), return_inverse=True)
    per_face = np.where(stmt >= 0, inv[np.maximum(stmt, 0)], inv[-1])
    used, first = np.unique(per_face, return_index=True)
    order = used[np.argsort(first)]
    remap = np.zeros(len(uniq), dtype=np.int64)
    remap[order] = np.arange(len(order))
    return remap[per_face], [str(n) for n in uniq[order]]


def _group_texts(t: _Text, is_group: np.ndarray) -> np.ndarray:
    """The text after the keyword of every ``o``/``g`` line of ``t``."""
    glines = np.flatnonzero(is_group)
    if len(glines) == 0:
        return np.zeros(0, dtype=str)
    out, _, _ = t.gather(glines, 1)
    return np.array(out.tobytes().decode("utf-8", "replace").split("\n")[:len(glines)],
                    dtype=str)


def _unique_corners(key: np.ndarray, sizes: np.ndarray, need_first: bool) -> tuple:
    """``np.unique(key, axis=0, return_index=True, return_inverse=True)`` of
    the corners' ``(v, vt, vn)`` keys (0: absent): the distinct combinations in
    sorted order, the first corner of each (None unless ``need_first``) and
    every corner's combination. Where every position comes with one
    combination (smooth meshes, or files that index all three alike), that is a
    scatter and a check, O(n): no sort (the first corners by an atomic minimum,
    :func:`_first_corners`)."""
    m1, m2 = int(sizes[1]) + 1, int(sizes[2]) + 1
    if (int(sizes[0]) + 1) * m1 * m2 >= 2 ** 62:
        ukey, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
        return ukey, first, inv.reshape(-1)
    packed = (key[:, 0] * m1 + key[:, 1]) * m2 + key[:, 2]
    combo = np.full(int(sizes[0]) + 1, -1, dtype=np.int64)
    combo[key[:, 0]] = packed
    if np.array_equal(combo[key[:, 0]], packed):
        used = combo >= 0                          # (sorted by position = by key)
        uniq = combo[used]
        inv = (np.cumsum(used) - 1)[key[:, 0]]
        first = _first_corners(inv, len(uniq)) if need_first else None
        if first is not None or not need_first:
            return (np.stack([uniq // (m1 * m2), (uniq // m2) % m1, uniq % m2], axis=1),
                    first, inv)
    # A packed int64 key is much faster than axis=0.
    uniq, first, inv = np.unique(packed, return_index=True, return_inverse=True)
    return (np.stack([uniq // (m1 * m2), (uniq // m2) % m1, uniq % m2], axis=1), first,
            inv.reshape(-1))


def _first_corners(inv: np.ndarray, count: int) -> Optional[np.ndarray]:
    """The first corner of each of ``count`` vertices (``inv``: every
    corner's vertex), by an atomic minimum (Dr.Jit, LLVM; None without it)."""
    from . import objscan
    if not objscan.available():
        return None
    import drjit as dr
    from drjit.llvm import UInt32
    first = dr.full(UInt32, 0xFFFFFFFF, count)
    dr.scatter_reduce(dr.ReduceOp.Min, first, dr.arange(UInt32, len(inv)),
                      UInt32(inv.astype(np.uint32)))
    return first.numpy().astype(np.int64)


def _obj_mesh(path: str, v: np.ndarray, vt: np.ndarray, vn: np.ndarray, counts: np.ndarray,
              key: np.ndarray, groups: np.ndarray, names: list) -> MeshData:
    """The mesh of checked OBJ statements: one vertex per distinct ``(v, vt,
    vn)`` of the corners (``key``: 1-based indices, 0 where a corner gives
    none, vt and vn zeroed where the mesh has none), polygons of ``counts``
    corners fan-triangulated, ``groups`` the group of each face."""
    sizes = np.array([len(v), len(vt), len(vn)])
    has_uv, has_n = bool(key[:, 1].any()), bool(key[:, 2].all())
    ukey, first, inv = _unique_corners(key, sizes, need_first=len(names) > 1)
    positions = v[ukey[:, 0] - 1]
    uvs = None
    if has_uv:
        uvs = np.where((ukey[:, 1] > 0)[:, None], vt[np.maximum(ukey[:, 1] - 1, 0)], 0.0)
    normals = vn[ukey[:, 2] - 1] if has_n else None
    faces, poly = fan_triangulate(counts, inv)
    # a vertex's group: that of the first face using it (`first`: its first corner)
    vertex_groups = (np.zeros(len(ukey), dtype=np.int64) if first is None
                     else groups[np.repeat(np.arange(len(counts)), counts)[first]])
    return _finish(path, positions, faces, normals, uvs, face_groups=groups[poly],
                   vertex_groups=vertex_groups, group_names=names)


def _obj_from_scan(path: str, st) -> Optional[MeshData]:
    """The mesh of what :func:`.objscan.scan` found, or None where an index is
    out of range (the general reader then words the error with its line)."""
    from .objscan import K_F, K_GROUP
    faces, corners, nfields = st.faces.shape
    sizes = (len(st.v), len(st.vt), len(st.vn))
    f = st.faces.reshape(-1, nfields)
    if any(int(f[:, i].max()) > sizes[k] for i, k in enumerate(st.fields)):
        return None
    groups, names = _obj_groups(st.group_names, st.line_kind == K_GROUP,
                                np.flatnonzero(st.line_kind == K_F))
    kv = f[:, 0]
    if all(np.array_equal(kv, f[:, i]) for i in range(1, nfields)):
        # Every corner indexes v, vt and vn alike (files written with one
        # texture coordinate and normal per vertex): the vertices are the
        # positions in use, in file order; no splitting.
        used = np.zeros(sizes[0] + 1, dtype=bool)
        used[kv] = True
        used = used[1:]
        if used.all():
            tri, keep = kv.astype(np.int64) - 1, slice(0, sizes[0])
        else:
            tri, keep = (np.cumsum(used) - 1)[kv - 1], np.flatnonzero(used)
        uvs = st.vt[keep] if 1 in st.fields else None
        normals = st.vn[keep] if 2 in st.fields else None
        count = len(st.v[keep])
        first = _first_corners(tri, count) if len(names) > 1 else None
        if len(names) == 1 or first is not None:
            tris, poly = fan_triangulate(np.full(faces, corners), tri)
            vertex_groups = (np.zeros(count, dtype=np.int64) if first is None
                             else groups[first // corners])
            return _finish(path, st.v[keep], tris, normals, uvs, face_groups=groups[poly],
                           vertex_groups=vertex_groups, group_names=names)
    key = np.zeros((faces * corners, 3), dtype=np.int64)
    key[:, list(st.fields)] = f
    return _obj_mesh(path, st.v, st.vt, st.vn, np.full(faces, corners), key, groups, names)


def read_obj(path: PathLike) -> MeshData:
    """Read a Wavefront OBJ file (``v``, ``vt``, ``vn``, ``f``, ``o``, ``g``; other
    statements are ignored).

    Face corners may be ``a``, ``a/b``, ``a//c`` or ``a/b/c``; negative indices
    count back from the latest element defined so far; polygons are
    fan-triangulated. Each distinct ``(v, vt, vn)`` combination becomes one
    output vertex; output vertices are ordered by (v, vt, vn) index, so a file
    whose vertices each appear with one combination keeps its vertex order
    (unreferenced vertices are dropped). Corners without ``vt`` get uv (0, 0);
    if any corner lacks ``vn``, the mesh gets no normals at all. Texture
    coordinates are returned as stored (the ``obj`` shape flips ``v``).

    The result also carries ``face_groups`` (int64, one per triangle),
    ``vertex_groups`` (the group of the first face using each vertex) and
    ``group_names``: a face belongs to the group named by the latest ``o`` or
    ``g`` statement before it (``"default"`` before any, or for a nameless
    ``g``); groups are numbered in order of first use.

    Files of the common layout are scanned by compiled array kernels
    (:mod:`.objscan`); the others, and any file with a mistake, by array
    operations in numpy: lines are found, classified and parsed in bulk, and
    errors name the file and line.
    """
    path = os.fspath(path)
    from . import objscan
    words, size = _read_words(path)
    statements = objscan.scan_words(words, size) if size >= objscan.MIN_BYTES else None
    if statements is not None:
        mesh = _obj_from_scan(path, statements)
        if mesh is not None:
            return mesh
    t = _Text(words.view(np.uint8)[:size].tobytes(), continuation=True)
    t.strip_comments()
    t.skip_leading_space()
    s, e, buf = t.starts, t.ends, t.buf
    b0, b1, b2 = buf[s], buf[s + 1], buf[s + 2]
    end1 = (b1 <= 32) | (s + 1 >= e)
    end2 = (b2 <= 32) | (s + 2 >= e)
    is_v = (b0 == 118) & end1
    is_vt = (b0 == 118) & (b1 == 116) & (s + 1 < e) & end2
    is_vn = (b0 == 118) & (b1 == 110) & (s + 1 < e) & end2
    is_f = (b0 == 102) & end1
    is_group = ((b0 == 111) | (b0 == 103)) & end1
    lv, lvt, lvn, lf = (np.flatnonzero(m) for m in (is_v, is_vt, is_vn, is_f))

    v = _obj_floats(path, t, lv, 1, "v", 3, 7, 3)     # x y z [w] or x y z r g b [a]
    vt = _obj_floats(path, t, lvt, 2, "vt", 1, 3, 2)
    vn = _obj_floats(path, t, lvn, 2, "vn", 3, 3, 3)
    if len(lf) == 0:
        raise MeshFileError(f"{path}: the mesh is empty (no 'f' statements)")
    counts, idx, present, face_of_corner = _obj_faces(path, t, lf)

    sizes = np.array([len(v), len(vt), len(vn)])
    neg = idx < 0
    if neg.any():
        # negative: relative to the number defined before the face's line
        before = np.stack([np.cumsum(m)[lf] for m in (is_v, is_vt, is_vn)], axis=1)
        before = before[face_of_corner]
        absidx = np.where(neg, before + idx, idx - 1)
    else:
        before = None
        absidx = idx - 1
    bad = present & ((absidx < 0) | (absidx >= sizes))
    if bad.any():
        k = int(np.argmax(bad.any(axis=1)))
        col = int(np.argmax(bad[k]))
        name = ("vertex", "texture coordinate", "normal")[col]
        if idx[k, col] < 0:
            have = f"only {int(before[k, col])} are defined before this line"
        else:
            have = f"the file defines {int(sizes[col])} (OBJ indices start at 1)"
        raise MeshFileError(f"{path}:{t.lineno(lf[face_of_corner[k]])}: face refers to {name} "
                            f"{int(idx[k, col])}, but {have}")

    key = np.where(present, absidx, -1) + 1  # 0 = absent
    if not present[:, 2].all():
        key[:, 2] = 0
    groups, names = _obj_groups(_group_texts(t, is_group), is_group, lf)
    return _obj_mesh(path, v, vt, vn, counts, key, groups, names)


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
_COLOR_NAMES = (("red", "green", "blue"), ("r", "g", "b"),
                ("diffuse_red", "diffuse_green", "diffuse_blue"))


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
    for no, ln in enumerate(header, 1):        # header lines, not data
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
            if len(t) >= 3 and t[-1] in (p[0] for p in elements[-1].props):
                raise MeshFileError(f"{path}:{no}: property {t[-1]!r} is declared twice in "
                                    f"element '{elements[-1].name}'")
            if len(t) == 5 and t[1] == "list":
                if t[2] not in _PLY_TYPES or t[3] not in _PLY_TYPES:
                    raise MeshFileError(f"{path}:{no}: unknown PLY type in {ln.strip()!r}; "
                                        f"known: {', '.join(sorted(_PLY_TYPES))}")
                if _PLY_TYPES[t[2]][0] == "f":
                    raise MeshFileError(f"{path}:{no}: a list count must be an integer type, "
                                        f"got {t[2]!r}")
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


def _ragged(values: np.ndarray, first: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``values[first[i] : first[i] + counts[i]]`` over ``i``."""
    total = int(counts.sum())
    if total == 0:
        return values[:0]
    start = np.cumsum(counts) - counts
    return values[np.repeat(first - start, counts) + np.arange(total)]


def _read_at(u8: np.ndarray, off: np.ndarray, dt: np.dtype) -> np.ndarray:
    """Values of type ``dt`` stored at the byte offsets ``off`` (any alignment)."""
    if dt.itemsize == 1:
        return u8[off].view(dt)
    return np.ascontiguousarray(u8[off[:, None] + np.arange(dt.itemsize)]).view(dt).reshape(-1)


def _binary_rows(u8: np.ndarray, starts: np.ndarray, props: list, bo: str, values: bool):
    """Run the row layout ``props`` from every byte offset in ``starts`` at once.

    Returns ``(ends, ok, scalars, lists)``: where each row ends, whether it fits
    in the file with non-negative list counts, and (``values``) the scalar
    properties and ``(counts, items)`` of the list properties."""
    n = len(u8)
    off = starts.astype(np.int64)
    ok = np.ones(len(off), dtype=bool)
    scalars: dict[str, np.ndarray] = {}
    lists: dict[str, tuple] = {}
    for p in props:
        dt = np.dtype(bo + p[1])
        if len(p) == 2:
            if values:
                scalars[p[0]] = _read_at(u8, np.clip(off, 0, n - dt.itemsize), dt)
            off = off + dt.itemsize
            continue
        it = np.dtype(bo + p[2])
        ok &= off + dt.itemsize <= n
        c = _read_at(u8, np.clip(off, 0, max(n - dt.itemsize, 0)), dt).astype(np.int64)
        off = off + dt.itemsize
        ok &= (c >= 0) & (off + c * it.itemsize <= n)
        c = np.where(ok, c, 0)
        if values:
            nb = c * it.itemsize
            raw = _ragged(u8, off, nb)
            lists[p[0]] = (c, np.ascontiguousarray(raw).view(it))
        off = off + c * it.itemsize
    ok &= off <= n
    return off, ok, scalars, lists


def _ply_binary_element(path: str, el: _Element, u8: np.ndarray, pos: int, bo: str):
    """Read one binary element starting at byte ``pos``. Returns (scalars,
    lists: name -> (counts, items), position after the element)."""
    def ends_inside(row: Optional[int] = None) -> MeshFileError:
        at = f"row {row} of " if row is not None else ""
        return MeshFileError(f"{path}: file ends inside {at}element '{el.name}' "
                             f"({el.count} rows declared in the header)")

    if not el.has_list:
        dt = np.dtype([(p[0], bo + p[1]) for p in el.props])
        need = dt.itemsize * el.count
        if pos + need > len(u8):
            raise ends_inside()
        a = np.frombuffer(u8, dtype=dt, count=el.count, offset=pos)
        return {p[0]: a[p[0]] for p in el.props}, {}, pos + need
    if el.count == 0:
        return ({p[0]: np.zeros(0) for p in el.props if len(p) == 2},
                {p[0]: (np.zeros(0, np.int64), np.zeros(0, np.int64)) for p in el.props
                 if len(p) == 3}, pos)
    # Common case: every row has the list lengths of the first row (all
    # triangles, or all quads): one structured read, then a check.
    first_end, first_ok, _, first_lists = _binary_rows(u8, np.array([pos]), el.props, bo, True)
    if not first_ok[0]:
        raise ends_inside(0)
    lens = [int(first_lists[p[0]][0][0]) for p in el.props if len(p) == 3]
    if all(c > 0 for c in lens):
        fields, it = [], iter(lens)
        for p in el.props:
            if len(p) == 3:
                fields += [(p[0] + "__n", bo + p[1]), (p[0], bo + p[2], (next(it),))]
            else:
                fields.append((p[0], bo + p[1]))
        dt = np.dtype(fields)
        if pos + dt.itemsize * el.count <= len(u8):
            a = np.frombuffer(u8, dtype=dt, count=el.count, offset=pos)
            lp = [p for p in el.props if len(p) == 3]
            if all(np.all(a[p[0] + "__n"] == c) for p, c in zip(lp, lens)):
                return ({p[0]: a[p[0]] for p in el.props if len(p) == 2},
                        {p[0]: (np.full(el.count, c, dtype=np.int64), a[p[0]].reshape(-1))
                         for p, c in zip(lp, lens)},
                        pos + dt.itemsize * el.count)
    # Rows of varying length: where a row starts depends on all earlier rows.
    # Compute "next row start" for every byte offset at once, then follow the
    # chain from `pos` by pointer doubling (log2(count) array gathers): the
    # first 2L row starts are the first L and their images under next^L.
    m = len(u8) - pos
    nxt_end, nxt_ok, _, _ = _binary_rows(u8, np.arange(pos, len(u8)), el.props, bo, False)
    dead = m + 1                                          # "ran past the file"
    itype = np.int32 if m + 2 < 2 ** 31 else np.int64   # half the memory traffic
    jump = np.empty(m + 2, dtype=itype)
    jump[:m] = np.where(nxt_ok, nxt_end - pos, dead)
    jump[m:] = dead
    chain = np.zeros(1, dtype=itype)
    while len(chain) <= el.count:
        chain = np.concatenate([chain, jump[chain][:el.count + 1 - len(chain)]])
        if len(chain) <= el.count:
            jump = jump[jump]
    broken = np.flatnonzero(chain == dead)
    if len(broken):
        raise ends_inside(int(broken[0]) - 1)
    _, _, sc, li = _binary_rows(u8, chain[:-1].astype(np.int64) + pos, el.props, bo, True)
    return sc, li, pos + int(chain[-1])


def _ply_ascii(path: str, raw: bytes, body: int, elements: list[_Element], line0: int):
    """Read all elements of an ASCII body (one row per non-blank line). Returns
    {element name: (scalars, lists, file line number of each row)}."""
    t = _Text(raw[body:])
    s, e, buf = t.starts, t.ends, t.buf
    c = _running_count(_token_starts(buf))
    k = (c[e] - c[s]).astype(np.int64)                  # tokens per line
    rows_all = np.flatnonzero(k > 0)
    out = {}
    r0 = 0
    for el in elements:                                 # elements, not rows
        rows = rows_all[r0:r0 + el.count]
        r0 += el.count
        if len(rows) < el.count:
            raise MeshFileError(f"{path}: file ends inside element '{el.name}' "
                                f"({el.count} rows expected, {len(rows)} found)")
        lines = rows + line0
        if el.count == 0:
            out[el.name] = ({p[0]: np.zeros(0) for p in el.props if len(p) == 2},
                            {p[0]: (np.zeros(0, np.int64), np.zeros(0, np.int64))
                             for p in el.props if len(p) == 3}, lines)
            continue
        kk = k[rows]
        nprop = len(el.props)
        if not el.has_list:
            bad = np.flatnonzero(kk != nprop)
            if len(bad):
                i = int(bad[0])
                raise MeshFileError(f"{path}:{lines[i]}: element '{el.name}' row has "
                                    f"{int(kk[i])} values, expected {nprop}")
        data = buf[s[rows[0]]:e[rows[-1]]].tobytes()
        # integers parse ~5x faster than floats: use them where the header allows
        integral = all(np.dtype(x).kind in "iu" for p in el.props for x in p[1:])
        if not el.has_list and not integral:
            table = _parse_table(data, len(rows), nprop)
            if table is not None:
                out[el.name] = ({p[0]: table[:, j] for j, p in enumerate(el.props)}, {}, lines)
                continue
        vals = _parse_numbers(data, np.int64 if integral else np.float64)
        if vals is None and integral:                  # e.g. "3.0" written for an int
            vals, integral = _parse_numbers(data, np.float64), False
        if vals is None or len(vals) != int(kk.sum()):
            i, tok = _first_bad_token(data.decode("ascii", "replace").split("\n"),
                                      int if integral else float)
            # map the i-th line of the slice back to its row
            i = int(np.searchsorted(rows, rows[0] + max(i, 0)))
            raise MeshFileError(f"{path}:{lines[min(i, len(rows) - 1)]}: element '{el.name}' "
                                f"row has a value that is not a number ({tok!r})")
        if not el.has_list:
            a = vals.reshape(-1, nprop)
            out[el.name] = ({p[0]: a[:, j] for j, p in enumerate(el.props)}, {}, lines)
            continue
        # Rows of varying length: walk the row layout for all rows at once.
        off = np.cumsum(kk) - kk
        end = off + kk
        ok = np.ones(len(rows), dtype=bool)
        sc, li = {}, {}
        top = len(vals) - 1
        for p in el.props:
            if len(p) == 2:
                sc[p[0]] = vals[np.minimum(off, top)]
                off = off + 1
                continue
            cnt = vals[np.minimum(off, top)]
            good = (off < end) & (cnt >= 0) & (cnt == np.round(cnt)) & (off + 1 + cnt <= end)
            ok &= good
            cnt = np.where(good, cnt, 0).astype(np.int64)
            li[p[0]] = (cnt, _ragged(vals, off + 1, cnt))
            off = off + 1 + cnt
        ok &= off == end
        if not ok.all():
            i = int(np.argmin(ok))
            raise MeshFileError(f"{path}:{lines[i]}: malformed row of element '{el.name}': "
                                f"{t.text(rows[i])!r}")
        out[el.name] = (sc, li, lines)
    return out


def read_ply(path: PathLike) -> MeshData:
    """Read a PLY file (ascii, binary little or big endian).

    Uses the ``vertex`` element's ``x y z``, optional ``nx ny nz``, texture
    coordinates (``u v``, ``s t``, ``texture_u texture_v`` or ``texture_s
    texture_t``) and colours (``red green blue``; integer types are scaled to
    [0, 1]; returned as ``.colors``, not rendered) and the ``face`` element's
    ``vertex_indices`` (or ``vertex_index``) list, whose polygons are
    fan-triangulated; other elements and properties are skipped. ASCII files
    must have one row per line (as every writer produces). Every element is
    read with array operations, rows of varying length included.
    """
    path = os.fspath(path)
    raw = _read_bytes(path)
    fmt, elements, body, header_lines = _parse_ply_header(path, raw)
    verts = faces = None
    face_lines = None
    vdtypes = {}
    if fmt == "ascii":
        parsed = _ply_ascii(path, raw, body, elements, header_lines + 1)
        if "vertex" in parsed:
            verts = parsed["vertex"][0]
        if "face" in parsed:
            faces, face_lines = parsed["face"][1], parsed["face"][2]
    else:
        bo = "<" if fmt == "binary_little_endian" else ">"
        u8 = np.frombuffer(raw, dtype=np.uint8)
        pos = body
        for el in elements:                             # elements, not rows
            sc, lists, pos = _ply_binary_element(path, el, u8, pos, bo)
            if el.name == "vertex":
                verts = sc
                vdtypes = {p[0]: p[1] for p in el.props if len(p) == 2}
            elif el.name == "face":
                faces = lists
    if verts is None or not all(k in verts for k in "xyz"):
        raise MeshFileError(f"{path}: PLY file has no 'vertex' element with x, y, z properties")
    fel = next((e for e in elements if e.name == "face"), None)
    lname = None if fel is None else next((p[0] for p in fel.props if len(p) == 3), None)
    if faces is None or lname is None:
        raise MeshFileError(f"{path}: PLY file has no 'face' element with a vertex_indices list")
    if lname not in ("vertex_indices", "vertex_index"):
        names = [p[0] for p in fel.props if len(p) == 3]
        lname = next((x for x in names if x in ("vertex_indices", "vertex_index")), None)
        if lname is None:
            raise MeshFileError(f"{path}: the 'face' element's list is {names[0]!r}, expected "
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
    colors = None
    for names in _COLOR_NAMES:
        if all(k in verts for k in names):
            colors = np.stack([verts[k] for k in names], axis=1).astype(np.float64)
            kind = vdtypes.get(names[0], "f4")
            if kind[0] in "iu":
                colors /= float(np.iinfo(np.dtype(kind)).max)
            break
    counts, flat = faces[lname]

    def where(i: int) -> str:
        return (f"{path}:{face_lines[i]}: face" if face_lines is not None
                else f"{path}: face {i}")
    small = np.flatnonzero(counts < 3)
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
    return _finish(path, positions, tri, normals, uvs, colors=colors,
                   face_groups=np.zeros(len(tri), dtype=np.int64), group_names=["default"])


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


# --------------------------------------------------------------------------- serialized
SERIALIZED_ID = 0x041C
_SER_NORMALS, _SER_TEXCOORDS, _SER_COLORS, _SER_FACE_NORMALS = 0x0001, 0x0002, 0x0008, 0x0010
_SER_SINGLE, _SER_DOUBLE = 0x1000, 0x2000


def _serialized_offsets(path: str, raw: bytes, version: int) -> np.ndarray:
    """File offsets of the shapes, from the end-of-file dictionary: ``uint64``
    offsets (``uint32`` in version 3) followed by a ``uint32`` shape count."""
    if len(raw) < 8:
        raise MeshFileError(f"{path}: serialized file too short for its end-of-file dictionary")
    count = struct.unpack_from("<I", raw, len(raw) - 4)[0]
    width = 8 if version >= 4 else 4
    table = len(raw) - 4 - width * count
    if count == 0 or table < 4:
        raise MeshFileError(f"{path}: the end-of-file dictionary of the serialized file is "
                            f"corrupt (it lists {count} shapes)")
    offs = np.frombuffer(raw, dtype="<u8" if width == 8 else "<u4", count=count, offset=table)
    if offs[0] != 0 or np.any(np.diff(offs.astype(np.int64)) <= 0) or offs[-1] >= table:
        raise MeshFileError(f"{path}: the end-of-file dictionary of the serialized file is "
                            f"corrupt (offsets {offs[:8].tolist()}...)")
    return offs.astype(np.int64)


def serialized_shape_count(path: PathLike) -> int:
    """Number of shapes in a Mitsuba ``.serialized`` file (its end-of-file dictionary)."""
    path = os.fspath(path)
    raw = _read_bytes(path)
    _check_serialized_header(path, raw, 0)
    return len(_serialized_offsets(path, raw, struct.unpack_from("<H", raw, 2)[0]))


def _check_serialized_header(path: str, raw: bytes, off: int) -> int:
    if off + 4 > len(raw):
        raise MeshFileError(f"{path}: serialized file ends before the shape header at byte {off}")
    ident, version = struct.unpack_from("<HH", raw, off)
    if ident != SERIALIZED_ID:
        raise MeshFileError(f"{path}: not a Mitsuba serialized mesh (format identifier "
                            f"0x{ident:04X} at byte {off}, expected 0x{SERIALIZED_ID:04X})")
    if version not in (3, 4):
        raise MeshFileError(f"{path}: serialized format version {version} is not supported "
                            "(3 or 4)")
    return version


def read_serialized(path: PathLike, shape_index: int = 0) -> MeshData:
    """Read shape ``shape_index`` of a Mitsuba ``.serialized`` file.

    Layout (Mitsuba 3 documentation, shape plugin ``serialized``; little
    endian): per shape ``uint16`` 0x041C, ``uint16`` version (3 or 4), then a
    zlib stream holding ``uint32`` flags (0x1 normals, 0x2 texture
    coordinates, 0x8 vertex colours, 0x10 face normals, 0x1000 single /
    0x2000 double precision), in version 4 a NUL-terminated UTF-8 name,
    ``uint64`` vertex and triangle counts, positions, [normals], [uvs],
    [colours] (``3, 3, 2, 3`` floats per vertex) and the triangles (``uint32``
    indices, ``uint64`` beyond 2^32 vertices). The file ends with the shape
    offsets (``uint64``; ``uint32`` in version 3) and a ``uint32`` shape count.

    The result carries ``name``, ``colors`` (or ``None``), ``face_normals``
    (the 0x10 flag) and one group (``face_groups`` / ``group_names``). Texture
    coordinates are returned as stored (Mitsuba does not flip them).
    """
    path = os.fspath(path)
    raw = _read_bytes(path)
    version = _check_serialized_header(path, raw, 0)
    index = int(shape_index)
    if index < 0:
        raise MeshFileError(f"{path}: shape_index must be >= 0, got {index}")
    off = 0
    if index > 0:
        offs = _serialized_offsets(path, raw, version)
        if index >= len(offs):
            raise MeshFileError(f"{path}: shape_index {index} is out of range: the file holds "
                                f"{len(offs)} shapes (0 .. {len(offs) - 1})")
        off = int(offs[index])
        version = _check_serialized_header(path, raw, off)
    where = f"{path} (shape {index})"
    dec = zlib.decompressobj()
    try:
        data = dec.decompress(memoryview(raw)[off + 4:])
    except zlib.error as e:
        raise MeshFileError(f"{where}: the compressed shape data is corrupt ({e})") from None
    if not dec.eof:
        raise MeshFileError(f"{where}: the compressed shape data is truncated")
    if len(data) < 4:
        raise MeshFileError(f"{where}: the shape data is truncated")
    flags = struct.unpack_from("<I", data, 0)[0]
    pos = 4
    name = ""
    if version >= 4:
        nul = data.find(b"\0", pos)
        if nul < 0:
            raise MeshFileError(f"{where}: the shape name is not NUL-terminated")
        name = data[pos:nul].decode("utf-8", "replace")
        pos = nul + 1
    if pos + 16 > len(data):
        raise MeshFileError(f"{where}: the shape data is truncated")
    nv, nf = struct.unpack_from("<QQ", data, pos)
    pos += 16
    real = np.dtype("<f8") if flags & _SER_DOUBLE else np.dtype("<f4")
    index_t = np.dtype("<u4") if nv <= 0xFFFFFFFF else np.dtype("<u8")
    layout = [("positions", 3, True), ("normals", 3, bool(flags & _SER_NORMALS)),
              ("uvs", 2, bool(flags & _SER_TEXCOORDS)), ("colors", 3, bool(flags & _SER_COLORS))]
    need = (pos + sum(k * nv * real.itemsize for _, k, on in layout if on)
            + 3 * nf * index_t.itemsize)
    if need > len(data):
        raise MeshFileError(f"{where}: the shape data is truncated ({len(data)} bytes, "
                            f"{need} needed for {nv} vertices and {nf} triangles)")
    arrays: dict[str, Optional[np.ndarray]] = {}
    for key, k, on in layout:
        if on:
            arrays[key] = np.frombuffer(data, dtype=real, count=k * nv, offset=pos).reshape(-1, k)
            pos += k * nv * real.itemsize
        else:
            arrays[key] = None
    faces = np.frombuffer(data, dtype=index_t, count=3 * nf, offset=pos).reshape(-1, 3)
    if nf and int(faces.max()) >= nv:
        bad = int(np.argmax((faces >= nv).any(axis=1)))
        raise MeshFileError(f"{where}: triangle {bad} refers to vertex {faces[bad].tolist()}, "
                            f"but the shape has {nv} vertices")
    return _finish(where, arrays["positions"].astype(np.float64), faces.astype(np.int64),
                   arrays["normals"], arrays["uvs"], colors=arrays["colors"], name=name,
                   face_normals=bool(flags & _SER_FACE_NORMALS),
                   face_groups=np.zeros(nf, dtype=np.int64), group_names=[name or "default"])


def write_serialized(path: PathLike, positions: np.ndarray, faces: np.ndarray,
                     normals: Optional[np.ndarray] = None, uvs: Optional[np.ndarray] = None,
                     name: str = "", double: bool = False) -> None:
    """Write one triangle mesh as a Mitsuba ``.serialized`` file (version 4,
    the layout of :func:`read_serialized`, with its end-of-file dictionary)."""
    p, f, n, uv = _check_arrays(positions, faces, normals, uvs)
    real = "<f8" if double else "<f4"
    flags = (_SER_DOUBLE if double else _SER_SINGLE) | (_SER_NORMALS if n is not None else 0) | \
        (_SER_TEXCOORDS if uv is not None else 0)
    parts = [struct.pack("<I", flags), name.encode("utf-8") + b"\0",
             struct.pack("<QQ", len(p), len(f))]
    parts += [a.astype(real).tobytes() for a in (p, n, uv) if a is not None]
    parts.append(f.astype("<u4").tobytes())
    with open(os.fspath(path), "wb") as fh:
        fh.write(struct.pack("<HH", SERIALIZED_ID, 4))
        fh.write(zlib.compress(b"".join(parts), 6))
        fh.write(struct.pack("<QI", 0, 1))


def read_mesh(path: PathLike) -> MeshData:
    """Read an ``.obj``, ``.ply`` or ``.serialized`` file (its first shape),
    chosen by extension."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext == ".obj":
        return read_obj(path)
    if ext == ".ply":
        return read_ply(path)
    if ext == ".serialized":
        return read_serialized(path)
    raise MeshFileError(f"{os.fspath(path)}: unknown mesh file extension {ext!r} "
                        "(supported: .obj, .ply, .serialized)")
