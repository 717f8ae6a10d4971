"""Learnable rigid transforms: :class:`RigidTransform` (a position and a 6-D
rotation) for the camera, and :class:`RigidMeshTransform` for a vertex group.

Rotation parameterisation (Zhou, Barnes, Lu, Yang, Li 2019, "On the Continuity
of Rotation Representations in Neural Networks", supplement B, eqs. 15-16):
two 3-vectors ``a1, a2`` (6 numbers) map to the rotation whose columns are

    b1 = N(a1),   b2 = N(a2 - (b1 . a2) b1),   b3 = b1 x b2,

with ``N(v) = v / |v|`` (Gram-Schmidt). The map is continuous and surjective
onto SO(3), unlike Euler angles or quaternions restricted to a hemisphere, so
gradient descent on ``(a1, a2)`` has no singularities or wrap-arounds; any
non-degenerate ``(a1, a2)`` is valid (no constraint to maintain). Identity:
``a1 = (1, 0, 0)``, ``a2 = (0, 1, 0)``.

Both are Dr.Jit values: enable gradients on :attr:`RigidTransform.position`
and :attr:`RigidTransform.rotation` (an ``Array3f`` with 2 lanes: ``a1``,
``a2``) and every derivative follows by AD.
"""
from __future__ import annotations

from typing import Any, Optional

import drjit as dr
import numpy as np

from .. import backend as bk
from .buffers import as_array3f
from .mesh import TriangleMesh


def rotation_from_6d(a1: Any, a2: Any) -> tuple[Any, Any, Any]:
    """Columns ``(b1, b2, b3)`` of the rotation of Zhou et al. (2019) (attached)."""
    b1 = dr.normalize(a1)
    b2 = dr.normalize(a2 - b1 * dr.dot(b1, a2))
    return b1, b2, dr.cross(b1, b2)


class RigidTransform:
    """A rotation ``R`` (6-D parameters) and a position ``p``.

    As a camera pose (:meth:`lumigrad.raster.Camera.use_rigid_transform`), ``R``'s
    columns are the camera's left, up and viewing axes in world space and ``p``
    is the eye: world -> camera is ``R^T (x - p)``. As an object motion
    (:class:`RigidMeshTransform`), ``x -> R (x - c) + c + p`` about a pivot ``c``.

    Args:
        position: 3-vector (default 0).
        rotation: (2, 3) array ``[a1, a2]`` or an ``Array3f`` with 2 lanes
            (default: the identity).
    """

    def __init__(self, position: Any = (0.0, 0.0, 0.0), rotation: Any = None) -> None:
        self.position = position
        self.rotation = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)) if rotation is None else rotation

    @property
    def position(self) -> Any:
        return self._position

    @position.setter
    def position(self, v: Any) -> None:
        self._position = as_array3f(v, "RigidTransform position")

    @property
    def rotation(self) -> Any:
        """The 6-D rotation parameters as an ``Array3f`` with 2 lanes (``a1``, ``a2``)."""
        return self._rotation

    @rotation.setter
    def rotation(self, v: Any) -> None:
        if isinstance(v, dr.ArrayBase):
            a = bk.Array3f(v)
            if dr.width(a) != 2:
                raise ValueError(f"RigidTransform rotation: expected an Array3f with 2 lanes "
                                 f"(a1, a2), got {dr.width(a)}")
            self._rotation = a
            return
        a = np.asarray(v, dtype=np.float64)
        if a.shape != (2, 3) or not np.all(np.isfinite(a)):
            raise ValueError(f"RigidTransform rotation: expected a finite (2, 3) array "
                             f"[a1, a2], got shape {a.shape}")
        if np.linalg.norm(np.cross(a[0], a[1])) < 1e-8 * max(np.linalg.norm(a[0]) *
                                                              np.linalg.norm(a[1]), 1e-30):
            raise ValueError("RigidTransform rotation: a1 and a2 must not be parallel or zero")
        self._rotation = bk.Array3f(*[a[:, c].astype(np.float32).copy() for c in range(3)])

    def columns(self) -> tuple[Any, Any, Any]:
        """``(b1, b2, b3)``: the rotation's columns (one-lane ``Array3f``, attached)."""
        rot = self.rotation
        a1 = dr.gather(bk.Array3f, rot, bk.UInt32(0))
        a2 = dr.gather(bk.Array3f, rot, bk.UInt32(1))
        return rotation_from_6d(a1, a2)

    def matrix(self) -> np.ndarray:
        """The rotation as a detached 3 x 3 numpy array (columns b1, b2, b3)."""
        return np.stack([np.array(dr.detach(b), dtype=np.float64).reshape(3)
                         for b in self.columns()], axis=1)

    @classmethod
    def look_at(cls, position: Any, target: Any, up: Any) -> "RigidTransform":
        """The camera pose of ``look_at(position, target, up)`` (the raster cameras'
        convention: columns left = up x forward, up, forward)."""
        o = np.asarray(position, dtype=np.float64).reshape(3)
        f = np.asarray(target, dtype=np.float64).reshape(3) - o
        if np.linalg.norm(f) < 1e-12:
            raise ValueError("RigidTransform.look_at: position and target coincide")
        f /= np.linalg.norm(f)
        left = np.cross(np.asarray(up, dtype=np.float64).reshape(3), f)
        if np.linalg.norm(left) < 1e-7:
            raise ValueError("RigidTransform.look_at: 'up' is parallel to the viewing direction")
        left /= np.linalg.norm(left)
        return cls(o, np.stack([left, np.cross(f, left)]))

    def apply(self, points: Any, pivot: Any = None) -> Any:
        """``R (x - c) + c + p`` for ``Array3f`` points ``x`` (``c``: pivot, default 0)."""
        b1, b2, b3 = self.columns()
        n = dr.width(points)
        # one gather per parameter use (see buffers.broadcast)
        idx = dr.zeros(bk.UInt32, n)
        b1, b2, b3, p = (dr.gather(bk.Array3f, v, idx) for v in (b1, b2, b3, self.position))
        x = points if pivot is None else points - pivot
        y = b1 * x[0] + b2 * x[1] + b3 * x[2] + p
        return y if pivot is None else y + pivot

    def normalize_(self) -> None:
        """Re-orthonormalise the parameters in place (``a1, a2 <- b1, b2``; the
        rotation is unchanged): keeps them well conditioned during optimisation,
        as the course's update step does."""
        b1, b2, _ = self.columns()
        self.rotation = bk.Array3f(*[dr.detach(dr.concat([b1[c], b2[c]])) for c in range(3)])

    def forward(self) -> None:
        """Nothing to precompute (kept for the stage pattern)."""

    def __repr__(self) -> str:
        p = np.array(dr.detach(self.position)).reshape(-1).round(4).tolist()
        return f"RigidTransform(position={p})"


class RigidMeshTransform:
    """A stage that moves the vertices of one vertex group (or all) rigidly.

    ``transformed_mesh`` shares the input mesh's triangles; its positions are
    ``R (x - c) + c + p`` for the vertices of ``vertex_group`` (all when
    ``None``) and ``x`` for the others, recomputed (attached) by ``forward()``.
    Chain several (one per group) by passing one's ``transformed_mesh`` to the
    next.

    Args:
        mesh: the input :class:`TriangleMesh` (its ``vertex_groups`` when a group
            is given).
        vertex_group: group index, or ``None`` for the whole mesh.
        pivot: rotation centre ``c``; ``'centroid'`` (default) for the centroid of the
            moved vertices at construction, ``None`` for the origin, or a 3-vector.
        rigid_transform: a :class:`RigidTransform` to use (a new identity otherwise).
    """

    def __init__(self, mesh: TriangleMesh, vertex_group: Optional[int] = None,
                 pivot: Any = "centroid", rigid_transform: Optional[RigidTransform] = None) -> None:
        if not isinstance(mesh, TriangleMesh):
            raise TypeError(f"RigidMeshTransform: mesh must be a TriangleMesh, got "
                            f"{type(mesh).__name__}")
        self.mesh = mesh
        self.vertex_group = vertex_group
        n = mesh.n_vertices
        if vertex_group is None:
            sel = np.ones(n, dtype=bool)
        else:
            if mesh.vertex_groups is None:
                raise ValueError(f"RigidMeshTransform: mesh {mesh.name!r} has no vertex groups")
            groups = np.asarray(mesh.vertex_groups)
            if not 0 <= int(vertex_group) <= int(groups.max()):
                raise ValueError(f"RigidMeshTransform: vertex group {vertex_group} out of range "
                                 f"(0..{int(groups.max())}) for mesh {mesh.name!r}")
            sel = groups == int(vertex_group)
        self._sel_np = sel
        self._selected = bk.Bool(sel.copy())
        if isinstance(pivot, str):
            if pivot != "centroid":
                raise ValueError(f"RigidMeshTransform: pivot must be 'centroid', None or a "
                                 f"3-vector, got {pivot!r}")
            c = mesh.positions_numpy()[sel].astype(np.float64).mean(axis=0)
            self.pivot: Any = as_array3f(c, "pivot")
        else:
            self.pivot = None if pivot is None else as_array3f(pivot, "pivot")
        self.rigid_transform = rigid_transform or RigidTransform()
        self.transformed_mesh = TriangleMesh(
            mesh.positions_numpy(), mesh.faces_numpy(),
            uvs=None if mesh.uvs is None else np.stack([np.array(mesh.uvs[i])
                                                        for i in range(2)], 1),
            name=mesh.name + "_moved", vertex_groups=mesh.vertex_groups,
            triangle_groups=mesh.triangle_groups, group_names=mesh.group_names)

    def forward(self) -> None:
        x = self.mesh.vertices
        pivot = None
        if self.pivot is not None:
            pivot = dr.gather(bk.Array3f, self.pivot, dr.zeros(bk.UInt32, dr.width(x)))
        y = self.rigid_transform.apply(x, pivot)
        self.transformed_mesh.vertex_positions = dr.select(self._selected, y, x)

    @property
    def output_mesh(self) -> TriangleMesh:
        return self.transformed_mesh
