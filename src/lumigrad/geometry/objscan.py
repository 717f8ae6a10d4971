"""Wavefront OBJ statements scanned by compiled array kernels (Dr.Jit, LLVM):
the fast path of :func:`lumigrad.geometry.meshio.read_obj`.

The numpy reader of ``meshio`` makes a dozen passes over the bytes and hands
the numbers to numpy's text conversion (``np.loadtxt`` / ``np.fromstring``);
on a 3 MB file that is 0.024 s against Mitsuba's 0.007 s for its C++ parser.
Here the same work runs as a few fused kernels over all bytes and all tokens
at once (both CPU cores, SIMD lanes):

1. every byte: a token starts where a byte that is neither whitespace nor
   ``/`` follows one that is (``/`` separates the indices of a face corner);
   the starts are compacted (``dr.compress``);
2. every token: the first of its line (the byte before it a newline) is the
   keyword (``v``, ``vt``, ``vn``, ``f``, ``o``/``g``, anything else
   ignored); a running count gives each token its line and its column there;
3. every number: a loop over its bytes, eight per step, reads the sign, the
   decimal digits into an exact integer ``m`` and the decimal exponent ``e``
   (fraction digits, ``e±dd``); ``m · 10^e`` is one float64 multiplication or
   division of exact operands (``m < 2^53``, ``|e| ≤ 22``), hence correctly
   rounded: the values equal numpy's. Plain decimals (digits and a point, ``m
   < 2^32``: most of a mesh file) take a pass with a few 32-bit operations
   per byte, the others (exponents, long mantissas) a state machine run on
   those tokens alone;
4. numbers are scattered into per-statement tables (row: the statement's rank
   among those of its keyword); a negative face index counts back from the
   elements defined before its line.

It takes the common layout only and says so by returning ``None``, and then
the general reader runs (which also words every error with its line): one
number count per keyword (``v`` 3-7, ``vt`` 2-3, ``vn`` 3) and one corner
layout for all faces (``k`` corners of ``a``, ``a/b``, ``a/b/c`` or ``a//c``;
indices relative or not), no line continuation, no ``#`` after a statement, no
leading whitespace, no byte-order mark, numbers of at most 15 significant
digits. Nothing is cached; kernels are compiled once per process (and kept on
disk by Dr.Jit), their sizes passed as opaque values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

#: Keyword codes of statements.
K_OTHER, K_V, K_VT, K_VN, K_F, K_GROUP = 0, 1, 2, 3, 4, 5

#: Numbers per statement that the fast path takes: (least, most) per keyword.
_COUNTS = {K_V: (3, 7), K_VT: (2, 3), K_VN: (3, 3)}

#: Smaller files are read by the numpy reader: the kernels' fixed cost (and
#: their first compilation on a machine) outweighs its passes below ~30 KB
#: (11 KB: 0.38 against 0.31 ms; 49 KB: 0.48 against 0.58 ms).
MIN_BYTES = 1 << 15

#: Significant digits that a float64 mantissa holds exactly (the general pass).
_MAX_DIGITS = 15

#: Zero words past the text that the number passes may read.
PADDING = 3


@dataclass
class ObjStatements:
    """What the scan found: ``v`` (n, 3), ``vt`` (n, 2), ``vn`` (n, 3) float32
    tables (the first numbers of each statement, rounded from the correctly
    rounded float64), ``faces`` (faces, corners, fields) uint32 indices
    (1-based, relative ones resolved), ``fields`` the corner layout
    (which of v / vt / vn each field is), ``line_kind`` the keyword code of every
    line holding a token (in file order) and the group statements' names."""

    v: np.ndarray
    vt: np.ndarray
    vn: np.ndarray
    faces: np.ndarray
    fields: tuple
    line_kind: np.ndarray
    group_names: np.ndarray


def available() -> bool:
    """Whether Dr.Jit's LLVM backend (which runs the kernels) is there."""
    try:
        import drjit as dr
        return bool(dr.has_backend(dr.JitBackend.LLVM))
    except Exception:                     # (no LLVM library: the numpy reader)
        return False


def _statement(raw: bytes, keyword: bytes, last: bool = False) -> Optional[bytes]:
    """The first (``last``: the last) line of ``raw`` whose keyword is
    ``keyword``; None where there is none. (Vertices come first in mesh files,
    faces last: either search ends after a few bytes.)"""
    k, key = len(keyword), b"\n" + keyword

    def starts(at: int) -> bool:       # (not a longer keyword: "vt" for "v")
        return raw[at:at + k] == keyword and raw[at + k:at + k + 1] in (b" ", b"\t")
    if last:
        at = raw.rfind(key)
        while at >= 0 and not starts(at + 1):
            at = raw.rfind(key, 0, at)
        at = at + 1 if at >= 0 else (0 if starts(0) else -1)
    else:
        at = 0
        while at >= 0 and not starts(at):
            at = raw.find(key, at)
            at = at + 1 if at >= 0 else -1
    if at < 0:
        return None
    end = raw.find(b"\n", at)
    return raw[at:end if end >= 0 else len(raw)]


def _corner_layout(line: Optional[bytes]) -> Optional[tuple]:
    """``(corners, fields)`` of a face statement's text (``fields``: indices
    into (v, vt, vn) per corner field), or None where it is not ``a``,
    ``a/b``, ``a/b/c`` or ``a//c``."""
    words = line.split()[1:] if line else []
    if len(words) < 3:
        return None
    w = words[0]
    if b"//" in w:
        return (len(words), (0, 2)) if w.count(b"/") == 2 else None
    fields = {0: (0,), 1: (0, 1), 2: (0, 1, 2)}.get(w.count(b"/"))
    return None if fields is None else (len(words), fields)


def _fits(line: Optional[bytes]) -> bool:
    """Whether the numbers of statement ``line`` have at most ``_MAX_DIGITS``
    significant digits (files are written with one format: one that writes
    more, ``%.17g`` say, goes to the general reader at once)."""
    for word in (line or b"").split()[1:]:
        mantissa = word.lstrip(b"+-").split(b"e")[0].split(b"E")[0].replace(b".", b"")
        if len(mantissa.lstrip(b"0")) > _MAX_DIGITS:
            return False
    return True


def words_of(raw: bytes) -> np.ndarray:
    """``raw`` as the zero-padded 32-bit words :func:`scan_words` reads."""
    padded = np.zeros(len(raw) // 4 + PADDING, dtype=np.uint32)
    padded.view(np.uint8)[:len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return padded


def scan(raw: bytes) -> Optional[ObjStatements]:
    """The statements of OBJ text ``raw``, or None where the general reader
    must run (see the module docstring)."""
    return scan_words(words_of(raw), len(raw))


#: Bytes at either end of a file searched for its first vertex and last face.
_WINDOW = 1 << 16


def scan_words(padded: np.ndarray, n: int) -> Optional[ObjStatements]:
    """:func:`scan` of the ``n`` bytes held by ``padded`` (32-bit words,
    ``PADDING`` zero words past the text: ``meshio`` reads files into such a
    buffer, sparing a copy)."""
    text = padded.view(np.uint8)[:n]
    head = text[:_WINDOW].tobytes()
    first_v = _statement(head, b"v")
    if first_v is None and n > _WINDOW:
        first_v = _statement(text.tobytes(), b"v")
    # (The last face from a window: a line cut at its start is no statement.)
    tail = text[max(0, n - _WINDOW):].tobytes()
    last_f = _statement(tail if n <= _WINDOW else b"\n" + tail[tail.find(b"\n") + 1:],
                        b"f", last=True)
    if last_f is None and n > _WINDOW:
        last_f = _statement(text.tobytes(), b"f", last=True)
    if n == 0 or head.startswith(b"\xef\xbb\xbf") or not _fits(first_v):
        return None
    layout = _corner_layout(last_f)
    if layout is None or not available():
        return None
    corners, fields = layout
    width = corners * len(fields)
    import drjit as dr
    from drjit.llvm import Bool, Float32, Float64, UInt32

    words = UInt32(padded)

    def byte(i: UInt32, active: Bool = True) -> UInt32:
        """Byte ``i`` of the text (a newline where ``active`` is False, 0
        past the end)."""
        w = dr.gather(UInt32, words, i >> 2, active)
        return dr.select(active, (w >> ((i & 3) << 3)) & 0xFF, 10)

    # 1. Token starts; and, to be found among them, what this scan does not
    # take: a backslash (line continuation) and a line that starts with
    # whitespace (its first token would not be its keyword).
    i = dr.arange(UInt32, n)
    c, c_before = byte(i), byte(i - 1, i > 0)
    odd = (c == 92) | ((c_before == 10) & ((c == 32) | (c == 9)))
    pos = dr.compress(_separator(c_before) & ~_separator(c) | odd)
    tokens = dr.width(pos)
    if tokens == 0:
        return None
    # 2. Keywords, lines, columns.
    before = byte(pos - 1, pos > 0)
    first = before == 10
    c0, c1, c2 = byte(pos), byte(pos + 1), byte(pos + 2)
    kind = dr.select((c0 == 118) & (c1 <= 32), K_V, K_OTHER)
    kind = dr.select((c0 == 118) & (c1 == 116) & (c2 <= 32), K_VT, kind)
    kind = dr.select((c0 == 118) & (c1 == 110) & (c2 <= 32), K_VN, kind)
    kind = dr.select((c0 == 102) & (c1 <= 32), K_F, kind)
    kind = dr.select(((c0 == 111) | (c0 == 103)) & (c1 <= 32), K_GROUP, kind)
    kind = dr.select(first, UInt32(kind), K_OTHER)
    line = dr.cumsum(UInt32(first)) - 1
    line_first = dr.compress(first)                 # each line's first token
    lines = dr.width(line_first)
    line_kind = dr.gather(UInt32, kind, line_first)
    col = dr.arange(UInt32, tokens) - dr.gather(UInt32, line_first, line) - 1
    tkind = dr.gather(UInt32, line_kind, line)
    number = ~first & (tkind >= K_V) & (tkind <= K_F)
    # Numbers per line: up to the next line's first token.
    following = dr.arange(UInt32, lines) + 1
    more = following < dr.opaque(UInt32, lines)
    count = dr.select(more, dr.gather(UInt32, line_first, following, more),
                      dr.opaque(UInt32, tokens)) - line_first - 1

    # 3. Numbers: plain decimals in one cheap pass, the rest (exponents,
    # more than 9 digits) in a second one on those tokens alone.
    c = byte(pos)
    declined = (c == 92) | (c == 32) | (c == 9)      # (step 1's odd bytes)
    negative = c == 45
    start = UInt32(dr.select(number & (negative | (c == 43)), 1, 0))
    m, frac, length, hard, dotted = _plain(words, pos, start, number)
    nd = length - start - UInt32(dotted)
    value = Float64(m) / dr.gather(Float64, Float64(_POWERS), frac)
    ok = nd > 0
    dr.eval(value, nd, ok, length, hard, line_kind, count, col, tkind, number, first)
    rest = dr.compress(number & hard)
    if dr.width(rest):
        v2, length2, nd2, ok2 = _general(words, dr.gather(UInt32, pos, rest),
                                         dr.gather(UInt32, start, rest))
        for target, new in ((value, v2), (length, length2), (nd, nd2), (ok, ok2)):
            dr.scatter(target, new, rest)
    value = dr.select(negative, -value, value)
    # A face index: a non-zero integer written with digits alone (negative:
    # relative to the elements defined so far, resolved below).
    ok &= (tkind != K_F) | ((nd + start == length) & (value != 0) & (c != 43))

    # 4. The layout: one count of numbers per keyword, the faces' corners.
    kinds, counts = line_kind.numpy(), count.numpy()
    for k, (lo, hi) in _COUNTS.items():
        cnt = counts[kinds == k]
        if len(cnt) and (cnt.min() != cnt.max() or not lo <= cnt[0] <= hi):
            return None
    face_lines = np.flatnonzero(kinds == K_F)
    cnt = counts[face_lines]
    if len(cnt) == 0 or cnt.min() != width or cnt.max() != width:
        return None
    # Every face token in its place: the first field of a corner after
    # whitespace, the others after '/' (after '//' for the normal of a//c).
    # (col mod fields without an integer division: SIMD units have none)
    per_corner = dr.opaque(Float64, len(fields))
    sub = col - UInt32(dr.floor((Float64(col) + 0.5) / per_corner)) * UInt32(per_corner)
    after_slash = before == 47
    double = after_slash & (byte(pos - 2, pos > 1) == 47)
    want_double = (sub == 1) if fields == (0, 2) else dr.zeros(Bool, tokens)
    misplaced = (tkind == K_F) & ~first & ((after_slash != (sub > 0)) | (double != want_double))

    # 5. Tables: row = the statement's rank among those of its keyword.
    rank = dr.zeros(UInt32, lines)
    defined = {}                   # v, vt, vn statements before each line
    for k in (K_V, K_VT, K_VN, K_F):
        is_k = line_kind == k
        before_k = dr.prefix_sum(UInt32(is_k))
        rank = dr.select(is_k, before_k, rank)
        defined[k] = before_k
    row = dr.gather(UInt32, rank, line)
    # Relative face indices (-1: the latest element defined before the line).
    so_far = dr.zeros(UInt32, tokens)
    relative = (tkind == K_F) & negative
    for f, k in enumerate(fields):
        at = relative & (sub == f)
        so_far = dr.select(at, dr.gather(UInt32, defined[(K_V, K_VT, K_VN)[k]], line, at),
                           so_far)
    index = dr.select(relative, Float64(so_far) + value + 1.0, value)
    bad = (number & ~ok) | declined | misplaced | (relative & (index < 1.0))
    tables = []
    for k, w in ((K_V, 3), (K_VT, 2), (K_VN, 3), (K_F, width)):
        rows = int(np.count_nonzero(kinds == k))
        # (float32: the mesh's precision; of the correctly rounded float64,
        # as numpy's reader gives it)
        out = dr.zeros(UInt32 if k == K_F else Float32, rows * w)
        if rows:
            dr.scatter(out, UInt32(index) if k == K_F else Float32(value),
                       row * dr.opaque(UInt32, w) + col,
                       number & (tkind == k) & (col < dr.opaque(UInt32, w)))
        tables.append(out)
    firsts = dr.gather(UInt32, pos, line_first)     # each line's first byte
    dr.eval(bad, firsts, *tables)
    if bool(dr.any(bad)):
        return None
    names = _group_names(text, firsts.numpy().astype(np.int64), kinds)
    if names is None:
        return None
    v, vt, vn, f = (t.numpy() for t in tables)
    return ObjStatements(v.reshape(-1, 3), vt.reshape(-1, 2), vn.reshape(-1, 3),
                         f.reshape(len(face_lines), corners, len(fields)),
                         fields, kinds, names)


#: Exact powers of ten in float64.
_POWERS = [10.0 ** k for k in range(23)]

#: Largest mantissa that one more digit cannot push past 2^32.
_PLAIN_LIMIT = 429496729

#: No position.
_NONE = 0xFFFFFFFF


def _eight(words, p):
    """Bytes ``p .. p+7`` of the text as two little-endian words (from three
    aligned ones: vector gathers of single bytes are scalar loads)."""
    import drjit as dr
    from drjit.llvm import UInt32
    q, shift = p >> 2, (p & 3) << 3
    w0, w1, w2 = (dr.gather(UInt32, words, q + k) for k in range(3))
    aligned = shift == 0
    back = (32 - shift) & 31
    return (dr.select(aligned, w0, (w0 >> shift) | (w1 << back)),
            dr.select(aligned, w1, (w1 >> shift) | (w2 << back)))


def _chars(words, pos, j):
    """The eight bytes from ``pos + j`` on, one array each."""
    lo, hi = _eight(words, pos + j)
    return [((lo if k < 4 else hi) >> (8 * (k % 4))) & 0xFF for k in range(8)]


def _separator(c):
    return (c <= 32) | (c == 47)


def _plain(words, pos, start, active) -> tuple:
    """Tokens of digits with at most one '.' and a mantissa below 2^32 (read
    from ``pos + start`` on): ``(mantissa, digits after the point, length,
    hard, whether it has a point)``, ``hard`` where a token is anything else
    (for :func:`_general`). 32-bit arithmetic and few operations per byte:
    most numbers of a mesh file."""
    import drjit as dr
    from drjit.llvm import Bool, UInt32

    def body(j, m, point, length, hard, done):
        for k, c in enumerate(_chars(words, pos, j)):
            act = ~done
            end = _separator(c)
            d = c - 48
            digit = d < 10                          # (unsigned: '0'..'9' only)
            dot = act & (c == 46)
            hard = (hard | (act & digit & (m >= _PLAIN_LIMIT))
                    | (act & ~(end | digit | (c == 46))) | (dot & (point != _NONE)))
            m = dr.select(act & digit, m * 10 + d, m)
            point = dr.select(dot, j + k, point)
            length = dr.select(act & end, j + k, length)
            done = done | end
        return j + 8, m, point, length, hard, done

    n = dr.width(pos)
    z = dr.zeros(UInt32, n)
    _, m, point, length, hard, _ = dr.while_loop(
        (UInt32(start), z, dr.full(UInt32, _NONE, n), dr.zeros(UInt32, n),
         dr.zeros(Bool, n), ~active), lambda *s: ~s[-1], body, label="lumigrad.objscan.plain")
    dotted = point != _NONE
    return m, dr.select(dotted, length - point - 1, 0), length, hard, dotted


def _general(words, pos, start) -> tuple:
    """Numbers ``[sign] digits [. digits] [e [sign] digits]`` (the sign read
    already: ``start``) by a state machine over their bytes: ``(|value|,
    length, digits, ok)``. ``m · 10^e`` is one float64 operation on exact
    operands (``m < 2^53``, ``|e| ≤ 22``), correctly rounded; others are not
    ``ok`` (the general reader)."""
    import drjit as dr
    from drjit.llvm import Bool, Float64, UInt32

    def body(j, length, m, nd, frac, expo, ed, eneg, state, ok):
        # state: 0 the digits before '.', 1 after it, 2 right after 'e' (a
        # sign may follow), 3 the exponent's digits, 4 done.
        for k, c in enumerate(_chars(words, pos, j)):
            act = state < 4
            end = _separator(c)
            d = c - 48
            digit = d < 10
            in_m = act & (state < 2) & digit
            m = dr.select(in_m, dr.fma(m, 10.0, Float64(d)), m)
            nd = nd + UInt32(in_m)
            frac = frac + UInt32(in_m & (state == 1))
            in_e = act & (state >= 2) & digit
            expo = dr.select(in_e, dr.minimum(expo * 10 + d, 1000), expo)
            ed = ed + UInt32(in_e)
            dot, e = c == 46, (c | 32) == 101
            sign = (c == 45) | (c == 43)
            # (No in-place operators: the state's arrays share storage.)
            ok = ok & (~act | end | digit | (sign & (state == 2)) | (dot & (state == 0))
                       | (e & (state < 2) & (nd > 0)))
            ok = ok & (~(act & end) | ((nd > 0) & ((state < 2) | (ed > 0))))
            eneg = eneg | (act & (state == 2) & (c == 45))
            length = dr.select(act & end, j + k, length)
            new = dr.select(dot, 1, state)
            new = dr.select(e, 2, new)
            new = dr.select((state >= 2) & ~e, 3, new)
            state = dr.select(act, dr.select(end, 4, UInt32(new)), state)
        return j + 8, length, m, nd, frac, expo, ed, eneg, state, ok

    n = dr.width(pos)
    z = dr.zeros(UInt32, n)
    _, length, m, nd, frac, expo, _, eneg, _, ok = dr.while_loop(
        (UInt32(start), z, dr.zeros(Float64, n), z, z, z, z, dr.zeros(Bool, n), z,
         dr.full(Bool, True, n)), lambda *s: s[-2] < 4, body,
        label="lumigrad.objscan.general")
    scale = dr.select(eneg, -Float64(expo), Float64(expo)) - Float64(frac)
    ok &= (m < 2.0 ** 53) & (dr.abs(scale) <= 22)
    p10 = dr.gather(Float64, Float64(_POWERS), UInt32(dr.abs(scale)), ok)
    return dr.select(scale >= 0, m * p10, m / p10), length, nd, ok


def _group_names(text: np.ndarray, firsts: np.ndarray, kinds: np.ndarray) -> Optional[np.ndarray]:
    """The text after the keyword of each ``o``/``g`` line (``text``: the
    file's bytes; ``firsts``: each line's first byte), unstripped; None where
    one holds a comment (the general reader cuts it)."""
    groups = np.flatnonzero(kinds == K_GROUP)
    if len(groups) == 0:
        return np.zeros(0, dtype=str)
    # From after the keyword to the next line's first token (what lies between
    # is the line's end and blank lines, stripped with the name).
    n = len(text)
    at = firsts[groups] + 1
    ends = np.append(firsts, n)[groups + 1]
    # (One joined text, split once: the statements are not looped over.)
    lens = ends - at
    offs = np.cumsum(lens + 1) - (lens + 1)
    joined = text[np.minimum(np.repeat(at - offs, lens + 1)
                             + np.arange(int(lens.sum()) + len(lens)), n - 1)]
    if (joined == 35).any():
        return None
    joined[(joined == 10) | (joined == 13)] = 32      # (the line's end: stripped)
    joined[offs + lens] = 10
    return np.array(joined.tobytes().decode("utf-8", "replace").split("\n")[:len(groups)],
                    dtype=str)
