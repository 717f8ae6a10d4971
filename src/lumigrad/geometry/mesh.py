"""Triangle meshes: the only geometry lumigrad renders.

Every shape plugin (``obj``, ``ply``, ``rectangle``, ``cube``, ``sphere``,
``disk``) becomes a :class:`Mesh` at load time, so that ray tracing, the
rasterizer and boundary-edge sampling all see the same triangles.

Storage follows Mitsuba: ``vertex_positions`` is a flat ``Float`` array
``[x0, y0, z0, x1, ...]`` in *world space* (the file's ``to_world`` is baked in
at load), ``faces`` a flat ``UInt32`` array of vertex indices. ``to_world`` is a
separate differentiable :class:`Transform4f` that starts as the identity and is
applied on top of the stored positions when the scene is updated, so a user can
left-multiply a rotation onto a mesh (PSDR's workflow).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Optional

import drjit as dr
import numpy as np

from .. import backend as bk
from .transform import Transform4f


class Mesh:
    """A triangle mesh with optional per-vertex normals and texture coordinates."""

    def __init__(self, vertex_positions: np.ndarray, faces: np.ndarray,
                 vertex_normals: Optional[np.ndarray] = None,
                 vertex_texcoords: Optional[np.ndarray] = None,
                 bsdf: Any = None, emitter: Any = None, id: Optional[str] = None,
                 face_normals: bool = False, source: str = "") -> None:
        where = f"mesh {id!r}" + (f" ({source})" if source else "")
        v = np.ascontiguousarray(np.asarray(vertex_positions, dtype=np.float32).reshape(-1, 3))
        f = np.asarray(faces)
        if f.size == 0 or v.shape[0] == 0:
            raise ValueError(f"{where}: the mesh is empty (no vertices or no faces)")
        if not np.issubdtype(f.dtype, np.integer):
            raise ValueError(f"{where}: face indices must be integers, got {f.dtype}")
        f = f.reshape(-1, 3)
        if f.min() < 0 or f.max() >= v.shape[0]:
            bad = int(np.argmax((f < 0).any(1) | (f >= v.shape[0]).any(1)))
            raise ValueError(f"{where}: face {bad} refers to vertex indices {f[bad].tolist()} "
                             f"outside [0, {v.shape[0] - 1}]")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{where}: vertex positions contain NaN or inf")
        f = np.ascontiguousarray(f.astype(np.uint32))
        self.id = id
        self.source = source
        self.bsdf = bsdf
        self.emitter = emitter
        self.face_normals = bool(face_normals) or vertex_normals is None
        self.vertex_count = int(v.shape[0])
        self.face_count = int(f.shape[0])
        self.vertex_positions = bk.from_numpy(bk.Float, v)
        self.faces = bk.from_numpy(bk.UInt32, f)
        self.vertex_normals = None
        if vertex_normals is not None and not face_normals:
            n = np.asarray(vertex_normals, dtype=np.float32).reshape(-1, 3)
            if n.shape[0] != v.shape[0]:
                raise ValueError(f"{where}: {n.shape[0]} normals for {v.shape[0]} vertices")
            if not np.all(np.isfinite(n)):
                raise ValueError(f"{where}: vertex normals contain NaN or inf")
            self.vertex_normals = bk.from_numpy(bk.Float, n)
        self.vertex_texcoords = None
        if vertex_texcoords is not None:
            uv = np.asarray(vertex_texcoords, dtype=np.float32).reshape(-1, 2)
            if uv.shape[0] != v.shape[0]:
                raise ValueError(f"{where}: {uv.shape[0]} texture coordinates for "
                                 f"{v.shape[0]} vertices")
            self.vertex_texcoords = bk.from_numpy(bk.Float, uv)
        self.to_world = Transform4f()
        self.normals_follow_positions = False

    # -- accessors ---------------------------------------------------------
    def positions_numpy(self) -> np.ndarray:
        return np.array(dr.detach(self.vertex_positions), dtype=np.float32).reshape(-1, 3)

    def faces_numpy(self) -> np.ndarray:
        return np.array(self.faces, dtype=np.uint32).reshape(-1, 3)

    def world_positions(self) -> Any:
        """Flat vertex positions with ``to_world`` applied (differentiable)."""
        if self.to_world.is_identity() and not dr.grad_enabled(self.to_world.matrix):
            return self.vertex_positions
        p = dr.unravel(bk.Array3f, self.vertex_positions)
        return dr.ravel(self.to_world.transform_affine_point(p))

    def world_normals(self) -> Any:
        if self.vertex_normals is None:
            return None
        if self.to_world.is_identity() and not dr.grad_enabled(self.to_world.matrix):
            return self.vertex_normals
        n = dr.unravel(bk.Array3f, self.vertex_normals)
        return dr.ravel(dr.normalize(self.to_world.transform_normal(n)))

    def recompute_vertex_normals(self) -> None:
        """Replace the vertex normals by :meth:`computed_vertex_normals`, as
        Mitsuba does when a mesh's positions are updated: moving the vertices
        of a smooth mesh turns its shading normals too, in the image and in its
        derivatives."""
        self.vertex_normals = self.computed_vertex_normals()
        #: the normals are a function of the positions (see ``render``)
        self.normals_follow_positions = True

    def computed_vertex_normals(self, positions: Any = None) -> Any:
        """Smooth vertex normals from ``positions`` (default: the current
        ``vertex_positions``), attached to them (flat ``Float``): the
        angle-weighted sum of the incident face normals (Thürmer & Wüthrich
        1998; ``meshio.vertex_normals`` is the same on numpy). Degenerate faces
        add nothing; a vertex without any other face gets (0, 0, 1)."""
        positions = self.vertex_positions if positions is None else positions
        p = dr.unravel(bk.Array3f, positions)
        idx = [dr.gather(bk.UInt32, self.faces, 3 * dr.arange(bk.UInt32, self.face_count) + k)
               for k in range(3)]
        pts = [dr.gather(bk.Array3f, p, i) for i in idx]
        n_face = _safe_normalize(dr.cross(pts[1] - pts[0], pts[2] - pts[0]))
        acc = dr.zeros(bk.Array3f, self.vertex_count)
        for k in range(3):
            a = _safe_normalize(pts[(k + 1) % 3] - pts[k])
            b = _safe_normalize(pts[(k + 2) % 3] - pts[k])
            dr.scatter_add(acc, n_face * _unit_angle(a, b), idx[k])
        length = dr.sqrt(dr.maximum(dr.squared_norm(acc), 0.0))
        n = dr.select(length > 0, acc * dr.rcp(dr.maximum(length, 1e-30)), bk.Array3f(0, 0, 1))
        return dr.ravel(n)

    def normals_jvp(self, tangent: Any) -> Any:
        """Tangent of :meth:`computed_vertex_normals` for a tangent of the
        positions (detached; derivative passes propagate it from a normals leaf
        of its own: Dr.Jit 1.5 drops one route when a render's inputs depend on
        each other, or when reverse mode crosses this scatter-add inside a loop)."""
        with dr.isolate_grad(), dr.resume_grad():
            p = type(self.vertex_positions)(dr.detach(self.vertex_positions))
            dr.enable_grad(p)
            dr.set_grad(p, tangent)
            n = self.computed_vertex_normals(p)
            dr.forward_to(n)
            out = dr.detach(dr.grad(n))
        dr.eval(out)
        return out

    def normals_vjp(self, grad_normals: Any) -> Any:
        """Gradient of the positions from a gradient of
        :meth:`computed_vertex_normals` (see :meth:`normals_jvp`)."""
        with dr.isolate_grad(), dr.resume_grad():
            p = type(self.vertex_positions)(dr.detach(self.vertex_positions))
            dr.enable_grad(p)
            n = self.computed_vertex_normals(p)
            # (AllowNoGrad: a zero literal gradient makes the sum a constant.)
            dr.backward_from(dr.sum(n * dr.detach(grad_normals)),
                             flags=dr.ADFlag.Default | dr.ADFlag.AllowNoGrad)
            out = dr.detach(dr.grad(p))
        dr.eval(out)
        return out

    def surface_area(self) -> float:
        v = self.positions_numpy().astype(np.float64)
        f = self.faces_numpy()
        e1, e2 = v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]
        return float(0.5 * np.linalg.norm(np.cross(e1, e2), axis=1).sum())

    def parameters(self) -> Iterator[tuple[str, Any, Optional[Callable[[Any], None]]]]:
        def set_attr(name: str) -> Callable[[Any], None]:
            return lambda value: setattr(self, name, value)
        yield "vertex_positions", self.vertex_positions, set_attr("vertex_positions")
        if self.vertex_normals is not None:
            yield "vertex_normals", self.vertex_normals, set_attr("vertex_normals")
        if self.vertex_texcoords is not None:
            yield "vertex_texcoords", self.vertex_texcoords, set_attr("vertex_texcoords")
        yield "faces", self.faces, None
        yield "to_world", self.to_world, set_attr("to_world")

    def __repr__(self) -> str:
        return (f"Mesh(id={self.id!r}, vertices={self.vertex_count}, faces={self.face_count}, "
                f"bsdf={getattr(self.bsdf, 'id', None)!r}, emitter={self.emitter is not None})")


def _safe_normalize(v: Any) -> Any:
    """``v / |v|``, 0 for a zero vector, with finite derivatives there too."""
    sq = dr.squared_norm(v)
    return v * dr.select(sq > 0, dr.rsqrt(dr.maximum(sq, 1e-30)), 0.0)


def _unit_angle(a: Any, b: Any) -> Any:
    """The angle between unit vectors, accurate near 0 and π (unlike
    ``acos(a · b)``) and with finite derivatives: ``2 asin(|a - b| / 2)``, or
    its supplement from ``|a + b|`` for obtuse angles."""
    def half_chord(v: Any) -> Any:
        return dr.minimum(0.5 * dr.sqrt(dr.maximum(dr.squared_norm(v), 1e-30)), 1.0 - 1e-7)
    acute = 2.0 * dr.asin(half_chord(a - b))
    obtuse = dr.pi - 2.0 * dr.asin(half_chord(a + b))
    return dr.select(dr.dot(a, b) >= 0, acute, obtuse)
