"""Edge topology of triangle meshes, welded by position: where images jump.

A rendered image is discontinuous where the surface seen through a pixel
changes abruptly: at *silhouettes* (an edge whose two faces face opposite ways
from the viewpoint), at *boundary* edges of open meshes (one face), and at
*creases* whose two faces shade differently (a flat-shaded cube's edges, even
where both faces are visible). Boundary (edge) terms of the derivatives sample
points on these edges (``integrators/boundary``), and the rasterizer's
silhouette methods classify the same edges.

Welding. Many meshes store a vertex once per face that uses it (flat-shaded
cubes, OBJ files with per-face normals or texture seams): their faces share no
vertex index, so an index-based edge list would turn every geometric edge into
two boundary edges, and a boundary term would count it twice (DESIGN.md,
"Boundary terms"). Vertices are therefore welded per shape by position (equal
up to rounding: :data:`WELD_TOLERANCE`) before edges are paired; an edge
keeps the vertex indices of its first face, so
its motion is the mean motion of both faces' copies
(:meth:`EdgeTopology.moving_point`: one face's copy of a split vertex can move
alone). Boundary edges of
different shapes that coincide exactly (the walls and the floor of a Cornell
box meet in such pairs) are welded too, into one crease between the two
shapes' faces: two boundary edges there would count the one jump of the
image twice. The welded edge moves with the first shape's vertices: shapes
whose touching edges move apart need a mesh of their own edges
(:func:`weld_shapes` keeps pairs only where both endpoints coincide).

Everything here is numpy at build time (vectorized, no loop over faces); the
per-edge quantities that depend on the current vertex positions (normals,
dihedral angles, silhouettes) are computed in Dr.Jit when a term needs them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import drjit as dr
import numpy as np

from .. import backend as bk

#: Marks "no second face" (boundary and non-manifold edges).
NO_FACE = 0xFFFFFFFF


@dataclass
class EdgeArrays:
    """Per-edge data as numpy arrays (global indices into the scene buffers)."""

    v0: np.ndarray        # uint32: first vertex (index of the scene's position buffer)
    v1: np.ndarray        # uint32: second vertex
    f0: np.ndarray        # uint32: first face (global triangle index)
    f1: np.ndarray        # uint32: second face, NO_FACE on boundary/non-manifold edges
    o0: np.ndarray        # uint32: vertex of f0 opposite the edge
    o1: np.ndarray        # uint32: vertex of f1 opposite the edge (= o0 if no f1)
    flip1: np.ndarray     # bool: f1 runs along the edge in f0's direction (inconsistent winding)
    smooth: np.ndarray    # bool: shading continuous across the edge (see below)
    shape: np.ndarray     # uint32: shape index
    u0: np.ndarray        # uint32: f1's own vertex at v0's position (v0 if no f1)
    u1: np.ndarray        # uint32: f1's own vertex at v1's position (v1 if no f1)

    def __len__(self) -> int:
        return int(self.v0.shape[0])


#: Vertices of one shape closer than this fraction of its bounding box's
#: largest side (per coordinate, on a grid centred on 0) are welded: copies of a
#: vertex computed twice (the seam of a sphere from ``cos``/``sin``: 0 and
#: -2.4e-16) differ by rounding. Unwelded, a seam is two boundary edges, each a
#: silhouette from everywhere: where the seam runs along the silhouette seen
#: from a point light, a 4k-face sphere's shadow line was counted twice (its
#: shadow's derivative 16 % too large in the block holding it).
WELD_TOLERANCE = 1e-6


def weld_by_position(positions: np.ndarray, tolerance: float = WELD_TOLERANCE) -> np.ndarray:
    """Index of a representative for every vertex: equal positions (up to
    ``tolerance`` times the largest side of their bounding box), equal index."""
    p = np.ascontiguousarray(positions, dtype=np.float32).reshape(-1, 3)
    extent = float(np.max(p.max(axis=0) - p.min(axis=0))) if p.size else 0.0
    if tolerance > 0 and extent > 0 and np.isfinite(extent):
        key = np.rint(p.astype(np.float64) / (tolerance * extent)).astype(np.int64)
    else:
        # Exact equality of the float bits (+0 and -0 made equal first).
        key = (p + np.float32(0.0)).view(np.uint32).reshape(-1, 3)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return first[inverse.ravel()].astype(np.int64)


def mesh_edges(positions: np.ndarray, faces: np.ndarray, smooth_shading: bool = False,
               vertex_offset: int = 0, face_offset: int = 0,
               shape_index: int = 0) -> EdgeArrays:
    """Edges of one mesh, welded by position.

    ``smooth`` is True for an interior edge of a smoothly shaded mesh (vertex
    normals) whose two faces use the *same* vertex indices along it: normals,
    texture coordinates and everything else interpolated over the faces are
    then continuous across the edge, so it can only matter as a silhouette.
    Edges where vertices were split (seams), of flat-shaded meshes, boundary
    and non-manifold edges are not smooth. Non-manifold edges (three or more
    faces) are kept as boundary edges of their first face.
    """
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    weld = weld_by_position(positions)
    wf = weld[f]
    nf = f.shape[0]
    # Half-edges k -> k+1 of every face; the opposite vertex is k+2.
    a = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    b = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    opp = np.concatenate([f[:, 2], f[:, 0], f[:, 1]])
    wa = np.concatenate([wf[:, 0], wf[:, 1], wf[:, 2]])
    wb = np.concatenate([wf[:, 1], wf[:, 2], wf[:, 0]])
    face = np.tile(np.arange(nf, dtype=np.int64), 3)
    lo, hi = np.minimum(wa, wb), np.maximum(wa, wb)
    keep = lo != hi                      # edges of zero length (collapsed faces)
    a, b, opp, face, lo, hi = a[keep], b[keep], opp[keep], face[keep], lo[keep], hi[keep]
    order = np.lexsort((face, hi, lo))
    a, b, opp, face, lo, hi = a[order], b[order], opp[order], face[order], lo[order], hi[order]
    start = np.ones(lo.shape[0], dtype=bool)
    start[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    first = np.flatnonzero(start)
    count = np.diff(np.append(first, lo.shape[0]))
    pair = count == 2
    second = np.where(pair, first + 1, first)
    v0, v1 = a[first], b[first]
    f0, o0 = face[first], opp[first]
    f1 = np.where(pair, face[second], -1)
    o1 = np.where(pair, opp[second], o0)
    # Same vertex indices along the edge in both faces (in either order)?
    shared = pair & (((a[second] == v0) & (b[second] == v1)) | ((a[second] == v1) & (b[second] == v0)))
    smooth = shared & bool(smooth_shading)
    flip1 = pair & (weld[a[second]] == weld[v0])
    # f1's own copies of the endpoints (split vertices: other indices, same
    # positions), in the edge's order.
    u0 = np.where(pair, np.where(flip1, a[second], b[second]), v0)
    u1 = np.where(pair, np.where(flip1, b[second], a[second]), v1)
    u32 = lambda x: x.astype(np.uint32)  # noqa: E731
    return EdgeArrays(
        v0=u32(v0 + vertex_offset), v1=u32(v1 + vertex_offset),
        f0=u32(f0 + face_offset),
        f1=np.where(f1 >= 0, f1 + face_offset, NO_FACE).astype(np.uint32),
        o0=u32(o0 + vertex_offset), o1=u32(o1 + vertex_offset), flip1=flip1,
        smooth=smooth, shape=np.full(v0.shape[0], shape_index, np.uint32),
        u0=u32(u0 + vertex_offset), u1=u32(u1 + vertex_offset))


def concat_edges(parts: Sequence[EdgeArrays]) -> EdgeArrays:
    return EdgeArrays(*[np.concatenate([getattr(p, f) for p in parts])
                        for f in EdgeArrays.__dataclass_fields__])


def weld_shapes(edges: EdgeArrays, positions: np.ndarray) -> EdgeArrays:
    """Weld boundary edges of different shapes whose endpoints coincide (up
    to rounding, as within shapes; in pairs; a position shared by three or
    more boundary edges is left alone): the first edge of a pair gets the
    other's face as ``f1`` (a crease, never smooth), the other is dropped."""
    bnd = np.flatnonzero(edges.f1 == NO_FACE)
    if bnd.size < 2:
        return edges
    # Endpoints welded by position, as within shapes: equal ids, equal points.
    p = np.asarray(positions, dtype=np.float32).reshape(-1, 3)
    ids = weld_by_position(p[np.concatenate([edges.v0[bnd], edges.v1[bnd]])])
    w0, w1 = ids[:bnd.size], ids[bnd.size:]
    key = np.stack([np.minimum(w0, w1), np.maximum(w0, w1)], axis=1)
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    pairs = counts[inverse] == 2
    if not pairs.any():
        return edges
    cand = np.flatnonzero(pairs)
    order = cand[np.argsort(inverse[cand], kind="stable")]
    a, b = bnd[order[0::2]], bnd[order[1::2]]          # the two edges of each pair
    different = edges.shape[a] != edges.shape[b]
    a, b = a[different], b[different]
    if a.size == 0:
        return edges
    out = EdgeArrays(*[getattr(edges, f).copy() for f in EdgeArrays.__dataclass_fields__])
    out.f1[a] = edges.f0[b]
    out.o1[a] = edges.o0[b]
    # f1 runs along the edge in f0's direction where b starts where a starts.
    start = np.empty(len(edges), dtype=np.int64)
    start[bnd] = w0
    out.flip1[a] = start[b] == start[a]
    same = out.flip1[a]
    out.u0[a] = np.where(same, edges.v0[b], edges.v1[b])
    out.u1[a] = np.where(same, edges.v1[b], edges.v0[b])
    out.smooth[a] = False
    keep = np.ones(len(edges), dtype=bool)
    keep[b] = False
    return EdgeArrays(*[getattr(out, f)[keep] for f in EdgeArrays.__dataclass_fields__])


class EdgeTopology:
    """The welded edges of every shape of a scene, as Dr.Jit arrays.

    Built once per scene topology (faces); positions are read from the scene's
    (attached) position buffer whenever edge geometry is needed, so the edges
    follow every geometry update and carry its derivatives.
    """

    def __init__(self, scene: Any) -> None:
        parts = []
        for i, shape in enumerate(scene.shapes):
            parts.append(mesh_edges(shape.positions_numpy(), shape.faces_numpy(),
                                    smooth_shading=shape.vertex_normals is not None,
                                    vertex_offset=int(scene.vertex_offsets[i]),
                                    face_offset=int(scene.face_offsets[i]), shape_index=i))
        self.np = weld_shapes(concat_edges(parts), scene._positions_np)
        self.count = len(self.np)
        to = lambda tp, x: bk.from_numpy(tp, x)  # noqa: E731
        self.v0, self.v1 = to(bk.UInt32, self.np.v0), to(bk.UInt32, self.np.v1)
        self.f0, self.f1 = to(bk.UInt32, self.np.f0), to(bk.UInt32, self.np.f1)
        self.o0, self.o1 = to(bk.UInt32, self.np.o0), to(bk.UInt32, self.np.o1)
        self.boundary = to(bk.Bool, self.np.f1 == NO_FACE)
        self.smooth = to(bk.Bool, self.np.smooth)
        self.flip1 = to(bk.Bool, self.np.flip1)
        self.shape = to(bk.UInt32, self.np.shape)
        self.u0, self.u1 = to(bk.UInt32, self.np.u0), to(bk.UInt32, self.np.u1)
        self.faces_key = (scene.faces_np.shape, hash(scene.faces_np.tobytes()))

    def geometry(self, positions: Any, index: Optional[Any] = None,
                 active: Any = True) -> "EdgeGeometry":
        """Endpoints and opposite vertices of the edges ``index`` (all if None),
        gathered from ``positions`` (attached if it is)."""
        if index is None:
            index = dr.arange(bk.UInt32, self.count)
        g = lambda arr: dr.gather(bk.UInt32, arr, index, active)  # noqa: E731
        p = lambda i: dr.gather(bk.Array3f, positions, i, active)  # noqa: E731
        f1 = g(self.f1)
        return EdgeGeometry(p0=p(g(self.v0)), p1=p(g(self.v1)), q0=p(g(self.o0)),
                            q1=p(g(self.o1)), boundary=f1 == NO_FACE,
                            flip1=dr.gather(bk.Bool, self.flip1, index, active),
                            smooth=dr.gather(bk.Bool, self.smooth, index, active),
                            f0=g(self.f0), f1=f1, index=index)

    def moving_point(self, positions: Any, index: Any, t: Any, share: Any = None,
                     active: Any = True) -> Any:
        """The point at parameter ``t`` of edges ``index``, attached, moving
        with both faces' copies of the edge.

        Meshes that split vertices per face (Mitsuba's ``cube``, flat-shaded
        OBJ files) hold two copies of each welded edge, equal in value; when
        one face's copy moves alone (``vertex_positions`` of one corner of one
        face) the two separate, and the image is not differentiable there:
        one way the moving face overlaps the other or extends the outline
        they make together, the other way it retreats behind it. Central
        finite differences average the two one-sided derivatives, which is the
        *mean* of the copies' motions (the outline of two faces is their
        envelope: ``(max(v0, v1) + min(v0, v1)) / 2``). ``share`` (detached)
        is the weight of face ``f1``'s copy where another rule applies (a
        face hidden by a surface the edge rests on, ``primary.py``); by
        default ½ on edges with two faces, 0 on boundary edges."""
        g = lambda arr: dr.gather(bk.UInt32, arr, index, active)  # noqa: E731
        p = lambda i: dr.gather(bk.Array3f, positions, i, active)  # noqa: E731
        p0, p1, u0, u1 = p(g(self.v0)), p(g(self.v1)), p(g(self.u0)), p(g(self.u1))
        y0 = dr.fma(p1 - p0, t, p0)
        y1 = dr.fma(u1 - u0, t, u0)
        if share is None:
            share = dr.select(g(self.f1) == NO_FACE, 0.0, 0.5)
        return y0 + (y1 - y0) * share


@dataclass
class EdgeGeometry:
    """Positions of a batch of edges (see :meth:`EdgeTopology.geometry`).

    Face normals follow the face winding: the edge is stored in ``f0``'s order,
    so ``n0 = (p1 - p0) x (q0 - p0)``; face ``f1`` runs along it the other way in
    a consistently oriented mesh, ``n1 = (q1 - p0) x (p1 - p0)``, and the same
    way where ``flip1`` (the normal is then negated accordingly).
    """

    p0: Any
    p1: Any
    q0: Any
    q1: Any
    boundary: Any
    flip1: Any
    smooth: Any
    f0: Any
    f1: Any
    index: Any

    def normals(self) -> tuple[Any, Any]:
        e = self.p1 - self.p0
        n0 = safe_normalize(dr.cross(e, self.q0 - self.p0))
        n1 = safe_normalize(dr.cross(self.q1 - self.p0, e))
        return n0, dr.select(self.flip1, -n1, n1)

    def dihedral(self) -> Any:
        """Angle between the two face normals (0: coplanar; π for boundary edges)."""
        n0, n1 = self.normals()
        # For nearly flat edges the float32 acos of a cosine near 1 is off by
        # ~3e-4 rad; the chord |n0 - n1| = 2 sin(angle / 2) is accurate there.
        chord = dr.norm(n0 - n1)
        angle = dr.select(chord < 0.1, chord * (1.0 + dr.square(chord) * (1.0 / 24.0)),
                          dr.acos(dr.clip(dr.dot(n0, n1), -1.0, 1.0)))
        return dr.select(self.boundary, dr.pi, angle)

    def silhouette_from(self, apex: Any) -> Any:
        """True where the edge is a silhouette seen from ``apex`` (a point, or a
        homogeneous ``(a, w)``, see :func:`toward_apex`): a boundary edge, or
        one whose faces lie on opposite sides of the viewing direction (one
        faces the apex, the other faces away)."""
        n0, n1 = self.normals()
        lo0, hi0 = apex_range(apex, n0, self.p0)
        lo1, hi1 = apex_range(apex, n1, self.p0)
        # (One faces it and the other not, for some point of a disk of apexes.)
        return self.boundary | ~(((lo0 > 0) & (lo1 > 0)) | ((hi0 < 0) & (hi1 < 0)))

    def silhouette_towards(self, direction: Any) -> Any:
        """As :meth:`silhouette_from` for an apex at infinity along ``direction``."""
        n0, n1 = self.normals()
        return self.boundary | (dr.dot(n0, direction) * dr.dot(n1, direction) <= 0)

    def front_share(self, apex: Any) -> Any:
        """1 where face ``f1`` is the one facing ``apex`` across a silhouette
        seen from it, 0 where ``f0`` is (or a boundary edge), ½ elsewhere (a
        crease: both faces face the same way): the weight of ``f1``'s copy in
        :meth:`EdgeTopology.moving_point` where only the face seen matters."""
        n0, n1 = self.normals()
        a = dr.dot(n0, toward_apex(apex, self.p0))
        b = dr.dot(n1, toward_apex(apex, self.p0))
        return dr.select(self.boundary, 0.0,
                         dr.select(a * b <= 0, dr.select(b > 0, 1.0, 0.0), 0.5))

    def face_side(self, view: Any) -> Any:
        """Unit normal ``m`` of the plane that contains the edge and the viewing
        direction ``view`` (from the viewpoint towards the edge), oriented
        towards the side where face ``f0`` lies (for a silhouette edge both
        faces lie on that side: rays passing there hit the mesh)."""
        e = self.p1 - self.p0
        m = safe_normalize(dr.cross(e, view))
        return dr.select(dr.dot(m, self.q0 - self.p0) >= 0, m, -m)


def toward_apex(apex: Any, p: Any) -> Any:
    """The direction from ``p`` towards a view's centre of projection (not
    normalised): ``apex − p`` for a point; for a homogeneous apex ``(a, w)``
    (``sensor.apex()``), ``a − p`` where ``w = 1`` and ``a`` where ``w = 0``
    (an apex at infinity: an orthographic camera, ``a`` the unit direction
    towards it, the same from every point)."""
    if isinstance(apex, tuple):
        a, w = apex
        return a - p if w else a
    return apex - p


class DiskApex:
    """The centres of projection of a thin lens: the disk ``c + x e1 + y e2``,
    ``x² + y² ≤ 1`` (world; ``e1``, ``e2`` the lens's axes times its radius).
    Tables built for every lens point at once (the boundary terms' sampling
    distributions) classify edges and faces by :func:`apex_range`."""

    def __init__(self, c: Any, e1: Any, e2: Any) -> None:
        self.c, self.e1, self.e2 = c, e1, e2


def apex_range(apex: Any, n: Any, p: Any) -> tuple:
    """``(lo, hi)`` of ``n · (A − p)`` over the apexes ``A`` of ``apex`` (a
    point, a homogeneous ``(a, w)`` or ``(DiskApex, 1)``): ``lo = hi`` for a
    single apex; the disk's extremes for a lens."""
    if isinstance(apex, tuple) and isinstance(apex[0], DiskApex):
        disk = apex[0]
        mid = dr.dot(n, disk.c - p)
        half = dr.sqrt(dr.square(dr.dot(n, disk.e1)) + dr.square(dr.dot(n, disk.e2)))
        return mid - half, mid + half
    v = dr.dot(n, toward_apex(apex, p))
    return v, v


def safe_normalize(v: Any) -> Any:
    """``v / |v|``, and 0 for a zero vector (degenerate faces) instead of NaN."""
    n = dr.norm(v)
    return v * dr.select(n > 0, dr.rcp(dr.maximum(n, 1e-30)), 0.0)
