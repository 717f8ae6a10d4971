"""``TriangleMesh``: the geometry stage of the rasterization pipeline.

Vertex positions are stored as in the scene's :class:`~lumigrad.geometry.mesh.Mesh`
(a flat ``Float`` ``[x0, y0, z0, x1, ...]`` in world space) so that a mesh made
with :meth:`TriangleMesh.from_shape` *shares* the scene shape's array: it reads
``shape.world_positions()`` every time it is asked for positions, so a gradient
of a rasterized image reaches ``<shape>.vertex_positions`` and ``<shape>.to_world``
through ordinary AD, and an update of the scene parameters is seen at once.

Meshes come from scene shapes, OBJ/PLY files (:mod:`lumigrad.geometry.meshio`)
or the generators of :mod:`lumigrad.geometry.primitives` (:meth:`TriangleMesh.example`),
and go back to OBJ/PLY with :meth:`write_obj` / :meth:`write_ply`.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

import drjit as dr
import numpy as np

from .. import backend as bk

#: names accepted by :meth:`TriangleMesh.example`
EXAMPLE_MESHES = ("icosphere", "uv_sphere", "torus", "cube", "plane")


class TriangleMesh:
    """Vertices (differentiable) and triangles (constant) of one triangle mesh.

    Args:
        vertices: (N, 3) numpy array, flat ``Float`` (3N) or ``Array3f`` (N lanes).
        faces: (F, 3) integer array of vertex indices (counter-clockwise seen from
            the front).
        uvs: optional (N, 2) texture coordinates.
        normals: optional (N, 3) per-vertex normals (the pipeline estimates its own
            with :class:`~lumigrad.raster.stages.NormalsEstimator`).
        name: for messages.
        vertex_groups, triangle_groups: optional group index per vertex / per
            triangle (OBJ ``o``/``g`` groups, see :meth:`from_file`; the course's
            fields of these names), used by :class:`~lumigrad.raster.rigid.RigidMeshTransform`
            and group-coloured silhouettes.
        group_names: optional name per group.
    """

    def __init__(self, vertices: Any, faces: Any, uvs: Any = None, normals: Any = None,
                 name: str = "mesh", vertex_groups: Any = None, triangle_groups: Any = None,
                 group_names: Optional[Sequence[str]] = None) -> None:
        self.name = name
        self._shapes: Optional[list] = None  # live source(s) when built from scene shapes
        f = np.asarray(faces)
        if f.size == 0:
            raise ValueError(f"TriangleMesh {name!r}: no faces")
        if not np.issubdtype(f.dtype, np.integer):
            raise ValueError(f"TriangleMesh {name!r}: faces must be integers, got {f.dtype}")
        if f.size % 3:
            raise ValueError(f"TriangleMesh {name!r}: faces must have 3 indices each "
                             f"(got {f.size} indices)")
        f = f.reshape(-1, 3)
        self.vertex_positions = vertices  # validates, sets n_vertices
        n = self.n_vertices
        if f.min() < 0 or f.max() >= n:
            bad = int(np.argmax((f < 0).any(1) | (f >= n).any(1)))
            raise ValueError(f"TriangleMesh {name!r}: face {bad} = {f[bad].tolist()} refers to "
                             f"vertices outside [0, {n - 1}]")
        self._faces_np = np.ascontiguousarray(f.astype(np.uint32))
        self.triangle_vertex_ids = bk.UInt32(self._faces_np.ravel().copy())
        self.n_triangles = int(f.shape[0])
        self.uvs = None
        if uvs is not None:
            uv = np.asarray(uvs, dtype=np.float32).reshape(-1, 2)
            if uv.shape[0] != n:
                raise ValueError(f"TriangleMesh {name!r}: {uv.shape[0]} uvs for {n} vertices")
            self.uvs = bk.Array2f(uv[:, 0].copy(), uv[:, 1].copy())
        self.normals = None
        if normals is not None:
            nn = np.asarray(normals, dtype=np.float32).reshape(-1, 3)
            if nn.shape[0] != n:
                raise ValueError(f"TriangleMesh {name!r}: {nn.shape[0]} normals for {n} vertices")
            self.normals = bk.Array3f(nn[:, 0].copy(), nn[:, 1].copy(), nn[:, 2].copy())
        self.triangle_shape_ids: Optional[np.ndarray] = None
        self.vertex_groups = _groups(vertex_groups, n, "vertex_groups", name)
        self.triangle_groups = _groups(triangle_groups, self.n_triangles, "triangle_groups", name)
        if self.triangle_groups is not None and self.vertex_groups is None:
            self.vertex_groups = vertex_groups_from_faces(self._faces_np, self.triangle_groups, n)
        self.group_names = None if group_names is None else [str(g) for g in group_names]
        self._neighbors: Optional[np.ndarray] = None
        self._edges: Optional[np.ndarray] = None

    # -- vertices -------------------------------------------------------------
    @property
    def vertex_positions(self) -> Any:
        """Flat world-space positions ``Float`` (3N), attached (live for scene shapes)."""
        if self._shapes is not None:
            parts = [s.world_positions() for s in self._shapes]
            return parts[0] if len(parts) == 1 else dr.concat(parts)
        return self._positions

    @vertex_positions.setter
    def vertex_positions(self, v: Any) -> None:
        if self._shapes is not None:
            if len(self._shapes) != 1:
                raise ValueError(f"TriangleMesh {self.name!r} merges several scene shapes: set "
                                 "each shape's vertex_positions instead")
            self._shapes[0].vertex_positions = _flat_positions(v, self.name)
            return
        flat = _flat_positions(v, self.name)
        n = dr.width(flat) // 3
        if hasattr(self, "n_vertices") and n != self.n_vertices:
            raise ValueError(f"TriangleMesh {self.name!r}: {n} vertices given, the mesh has "
                             f"{self.n_vertices}")
        self.n_vertices = n
        self._positions = flat

    @property
    def vertices(self) -> Any:
        """Positions as ``Array3f`` with one lane per vertex (attached)."""
        return dr.unravel(bk.Array3f, self.vertex_positions)

    @vertices.setter
    def vertices(self, v: Any) -> None:
        self.vertex_positions = v

    def positions_numpy(self) -> np.ndarray:
        return np.array(dr.detach(self.vertex_positions), dtype=np.float32).reshape(-1, 3)

    def faces_numpy(self) -> np.ndarray:
        return self._faces_np

    def gather_triangles(self, tri: Any, active: Any = True) -> tuple[Any, Any, Any]:
        """World positions (attached) of the corners of triangles ``tri`` (``UInt32``)."""
        pos = self.vertex_positions
        out = []
        for k in range(3):
            vid = dr.gather(bk.UInt32, self.triangle_vertex_ids, tri * 3 + k, active)
            out.append(dr.gather(bk.Array3f, pos, vid, active))
        return out[0], out[1], out[2]

    # -- topology (load-time numpy) ---------------------------------------------
    def edge_neighbors(self) -> np.ndarray:
        """(F, 3) int64: the triangle across local edge ``k`` (corners ``k -> k+1``),
        or -1 on a boundary (or a non-manifold edge beyond its first two faces)."""
        if self._neighbors is None:
            f = self._faces_np.astype(np.int64)
            F = len(f)
            a = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
            b = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
            key = np.minimum(a, b) * (self.n_vertices + 1) + np.maximum(a, b)
            slot = np.arange(3 * F)  # slot = k * F + face
            order = np.argsort(key, kind="stable")
            ks = key[order]
            nb = np.full(3 * F, -1, dtype=np.int64)
            # consecutive equal keys in sorted order are the faces sharing an edge;
            # pair each run's first two entries
            same = ks[1:] == ks[:-1]
            run_start = np.ones(len(ks), dtype=bool)
            run_start[1:] = ~same
            first = np.flatnonzero(run_start[:-1] & same)
            i0, i1 = order[first], order[first + 1]
            nb[i0] = slot[i1] % F
            nb[i1] = slot[i0] % F
            self._neighbors = nb.reshape(3, F).T.copy()
        return self._neighbors

    def edges(self) -> np.ndarray:
        """(E, 2) unique undirected edges (vertex index pairs)."""
        if self._edges is None:
            f = self._faces_np.astype(np.int64)
            e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
            self._edges = np.unique(np.sort(e, axis=1), axis=0)
        return self._edges

    def edge_length_loss(self, target: Optional[float] = None) -> Any:
        """Edge-length regulariser (differentiable in the vertices).

        ``mean_e (|e| - L)^2`` over the unique edges, with ``L = target``, or
        with ``L`` the (attached) mean edge length when ``target`` is ``None``:
        then it penalises the *variance* of the edge lengths, which keeps the
        triangles even while the shape grows or shrinks (the form used in the
        course's shape optimisation and, with ``L = 0``, PyTorch3D's
        ``mesh_edge_loss``).
        """
        e = self.edges()
        pos = self.vertex_positions
        a = dr.gather(bk.Array3f, pos, bk.UInt32(e[:, 0].astype(np.uint32)))
        b = dr.gather(bk.Array3f, pos, bk.UInt32(e[:, 1].astype(np.uint32)))
        length = dr.norm(a - b)
        ref = dr.mean(length) if target is None else float(target)
        return dr.mean(dr.square(length - ref))

    # -- constructors -----------------------------------------------------------
    @classmethod
    def from_shape(cls, shape: Any) -> "TriangleMesh":
        """Share a scene shape's (:class:`~lumigrad.geometry.mesh.Mesh`) vertex array."""
        return cls.from_shapes([shape])

    @classmethod
    def from_shapes(cls, shapes: Sequence[Any], name: str = "scene") -> "TriangleMesh":
        """One mesh over several scene shapes (triangle ids follow the shape order;
        ``triangle_shape_ids`` says which shape each triangle came from)."""
        shapes = list(shapes)
        if not shapes:
            raise ValueError("TriangleMesh.from_shapes: no shapes given")
        faces, uvs, offset, shape_ids = [], [], 0, []
        any_uv = any(getattr(s, "vertex_texcoords", None) is not None for s in shapes)
        for i, s in enumerate(shapes):
            if not hasattr(s, "world_positions") or not hasattr(s, "faces"):
                raise ValueError(f"TriangleMesh.from_shapes: shape {i} ({type(s).__name__}) is "
                                 "not a lumigrad mesh (needs world_positions() and faces)")
            f = np.array(s.faces, dtype=np.int64).reshape(-1, 3)
            nv = dr.width(s.vertex_positions) // 3
            faces.append(f + offset)
            shape_ids.append(np.full(len(f), i, dtype=np.uint32))
            if any_uv:
                t = getattr(s, "vertex_texcoords", None)
                uvs.append(np.zeros((nv, 2), np.float32) if t is None
                           else np.array(t, dtype=np.float32).reshape(-1, 2))
            offset += nv
        first = shapes[0].world_positions()
        m = cls(first if len(shapes) == 1 else dr.concat([s.world_positions() for s in shapes]),
                np.concatenate(faces), uvs=np.concatenate(uvs) if any_uv else None,
                name=name if len(shapes) > 1 else (getattr(shapes[0], "id", None) or name))
        m._shapes = shapes
        m.triangle_shape_ids = np.concatenate(shape_ids)
        # one group per scene shape
        m.triangle_groups = m.triangle_shape_ids.astype(np.int64)
        m.vertex_groups = vertex_groups_from_faces(m._faces_np, m.triangle_groups, m.n_vertices)
        m.group_names = [getattr(s, "id", None) or f"shape_{i}" for i, s in enumerate(shapes)]
        return m

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "TriangleMesh":
        """Read an OBJ or PLY file. OBJ ``o``/``g`` statements give the triangle
        groups (numbered by first use, names in :attr:`group_names`); a vertex
        belongs to the group of the first triangle that uses it."""
        from ..geometry import meshio
        data = meshio.read_mesh(path)
        return cls(data[0], data[1], uvs=getattr(data, "uvs", None),
                   normals=getattr(data, "normals", None), name=os.path.basename(os.fspath(path)),
                   triangle_groups=getattr(data, "face_groups", None),
                   vertex_groups=getattr(data, "vertex_groups", None),
                   group_names=getattr(data, "group_names", None))

    @classmethod
    def example(cls, name: str = "icosphere", **kwargs: Any) -> "TriangleMesh":
        """A generated mesh: ``icosphere`` (``subdivisions``, ``radius``), ``uv_sphere``
        (``n_theta``, ``n_phi``, ``radius``), ``torus`` (``R``, ``r``, ``n_major``,
        ``n_minor``), ``cube``, ``plane`` (the square [-1, 1]^2 at z = 0, normal +Z)."""
        from ..geometry import primitives as prim
        gens = {"icosphere": prim.icosphere, "uv_sphere": prim.uv_sphere, "torus": prim.torus,
                "cube": prim.cube, "plane": prim.rectangle, "rectangle": prim.rectangle}
        if name not in gens:
            raise ValueError(f"TriangleMesh.example: unknown mesh {name!r}; choose one of "
                             f"{', '.join(EXAMPLE_MESHES)}")
        data = gens[name](**kwargs)
        return cls(data[0], data[1], uvs=getattr(data, "uvs", None),
                   normals=getattr(data, "normals", None), name=name)

    #: the course's spelling
    get_example_mesh = example

    # -- output -------------------------------------------------------------------
    def write_obj(self, path: str | os.PathLike, normals: Any = None) -> None:
        """Write the current (detached) vertices, faces and uvs as OBJ."""
        from ..geometry import meshio
        meshio.write_obj(path, self.positions_numpy(), self._faces_np,
                         normals=_np_or_none(normals, 3), uvs=_np_or_none(self.uvs, 2))

    def write_ply(self, path: str | os.PathLike, normals: Any = None) -> None:
        """Write the current (detached) vertices, faces and uvs as binary PLY."""
        from ..geometry import meshio
        meshio.write_ply(path, self.positions_numpy(), self._faces_np,
                         normals=_np_or_none(normals, 3), uvs=_np_or_none(self.uvs, 2))

    def __repr__(self) -> str:
        return (f"TriangleMesh({self.name!r}, vertices={self.n_vertices}, "
                f"triangles={self.n_triangles})")


def _flat_positions(v: Any, name: str) -> Any:
    if isinstance(v, dr.ArrayBase):
        if dr.depth_v(v) == 1:
            if dr.width(v) % 3:
                raise ValueError(f"TriangleMesh {name!r}: flat positions need 3 floats per "
                                 f"vertex, got {dr.width(v)}")
            return bk.Float(v)
        if len(v) != 3:
            raise ValueError(f"TriangleMesh {name!r}: positions must be 3-vectors")
        return dr.ravel(bk.Array3f(v))
    a = np.asarray(v, dtype=np.float32)
    if a.size == 0 or a.size % 3:
        raise ValueError(f"TriangleMesh {name!r}: positions must have shape (N, 3), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"TriangleMesh {name!r}: positions contain NaN or inf")
    return bk.Float(np.ascontiguousarray(a.reshape(-1)).copy())


def _groups(g: Any, n: int, what: str, name: str) -> Optional[np.ndarray]:
    if g is None:
        return None
    a = np.asarray(g)
    if a.shape != (n,) or not np.issubdtype(a.dtype, np.integer) or (n and a.min() < 0):
        raise ValueError(f"TriangleMesh {name!r}: {what} must be {n} non-negative integers, "
                         f"got shape {a.shape} ({a.dtype})")
    return a.astype(np.int64).copy()


def vertex_groups_from_faces(faces: np.ndarray, triangle_groups: np.ndarray,
                             n_vertices: int) -> np.ndarray:
    """Group of each vertex: that of the first triangle using it (0 if unused)."""
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    F = len(f)
    first = np.full(n_vertices, F, dtype=np.int64)
    np.minimum.at(first, f.ravel(), np.repeat(np.arange(F), 3))
    groups = np.append(np.asarray(triangle_groups, dtype=np.int64), 0)
    return groups[first]


def _np_or_none(v: Any, c: int) -> Optional[np.ndarray]:
    if v is None:
        return None
    if isinstance(v, dr.ArrayBase):
        if dr.depth_v(v) == 1:
            return np.array(dr.detach(v), dtype=np.float32).reshape(-1, c)
        return np.stack([np.array(dr.detach(v[i]), dtype=np.float32) for i in range(c)], 1)
    return np.asarray(v, dtype=np.float32).reshape(-1, c)
