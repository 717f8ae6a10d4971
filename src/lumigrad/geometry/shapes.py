"""Shape plugins: ``obj``, ``ply``, ``serialized``, ``rectangle``, ``cube``, ``sphere``,
``disk``.

Every shape is a :class:`~lumigrad.geometry.mesh.Mesh`. As in Mitsuba 3, the
``to_world`` given in the scene is *baked* into the stored vertex positions
(points: ``p' = M p`` with the homogeneous divide; normals: ``n' = M^{-T} n``,
renormalised), and ``Mesh.to_world`` starts as the identity, to be
left-multiplied by the user later.

``flip_normals`` reverses the winding (swaps the 2nd and 3rd index of every
face) and negates the vertex normals, so geometric and shading normals both
point to the other side.

A mirroring ``to_world`` (negative determinant) reverses the winding of the
baked triangles. As in Mitsuba 3, ``rectangle``, ``disk`` and ``cube`` keep
their front side (their normals transform with ``M^{-T}``), so their winding is
reversed back; a mesh file without normals gets its smooth normals from the
world-space winding (so it turns around, as in Mitsuba); a mirrored ``sphere``
faces inwards, winding and normals (as Mitsuba 3.9.1's: a mirrored diffuse
sphere is black from outside).

Mitsuba's sphere and disk are analytic; here they are tessellated finely enough
that renders agree within Monte Carlo noise at 512²:

* ``sphere``: a :func:`~lumigrad.geometry.primitives.uv_sphere` of
  ``SPHERE_BANDS`` x ``SPHERE_SEGMENTS`` (128 x 256: 65,024 triangles) with
  smooth vertex normals (the exact sphere normals) and Mitsuba's uvs. Every
  vertex is on the sphere; the largest distance from a triangle to the true
  surface is ``1 - cos(sqrt(dθ² + dφ²)/2) ≈ 1.5e-4`` of the radius (see
  :func:`~lumigrad.geometry.primitives.sphere_tessellation_error`): 0.03
  pixels for a sphere 400 pixels across. The area is smaller than ``4πr²`` by
  a relative 1e-4.
* ``disk``: a fan of ``DISK_SEGMENTS`` = 512 triangles; the rim is at most
  ``1 - cos(π/512) ≈ 1.9e-5`` (relative to the radius) inside the circle.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from ..scene.schema import Param, register
from . import meshio, primitives
from .mesh import Mesh
from .transform import Transform4f

__all__ = ["ObjShape", "PlyShape", "SerializedShape", "RectangleShape", "CubeShape",
           "SphereShape", "DiskShape", "bake_transform", "SPHERE_BANDS", "SPHERE_SEGMENTS", "DISK_SEGMENTS"]

SPHERE_BANDS = 128
SPHERE_SEGMENTS = 256
DISK_SEGMENTS = 512

#: parameters every shape accepts (Mitsuba's common shape parameters)
COMMON_PARAMS = {
    "to_world": Param("transform", None, doc="object-to-world transform, baked into the "
                      "vertex positions at load", aliases=("toWorld",)),
    "flip_normals": Param("bool", False, doc="reverse the winding and the normals",
                          aliases=("flipNormals",)),
    "bsdf": Param("object", None, category="bsdf", doc="the surface material"),
    "emitter": Param("object", None, category="emitter",
                     doc="an area emitter attached to this shape"),
    "silhouette_sampling_weight": Param(
        "float", 1.0, min=0.0, ignored="how often Mitsuba's projective integrators sample "
        "this shape's silhouette; it changes no image, and lumigrad's boundary terms have "
        "their own sample budgets"),
}

_MESH_FILE_PARAMS = {
    "filename": Param("string", None, required=True, doc="path of the mesh file"),
    "face_normals": Param("bool", False, doc="ignore vertex normals and shade with the "
                          "geometric normal of each triangle", aliases=("faceNormals",)),
}


def bake_transform(positions: np.ndarray, normals: Optional[np.ndarray],
                   to_world: Optional[Transform4f], where: str
                   ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Apply ``to_world`` to points (with the homogeneous divide) and normals
    (inverse transpose of the linear part, renormalised), in float64."""
    p = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    n = None if normals is None else np.asarray(normals, dtype=np.float64).reshape(-1, 3)
    if to_world is None:
        return p, n
    m = to_world.numpy() if isinstance(to_world, Transform4f) else np.asarray(to_world, float)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise ValueError(f"{where}: to_world must be a finite 4x4 transform")
    lin = m[:3, :3]
    if abs(np.linalg.det(lin)) < 1e-30:
        raise ValueError(f"{where}: to_world is singular (e.g. a zero scale), so the shape "
                         "would collapse")
    ph = p @ m[:3, :3].T + m[:3, 3]
    w = p @ m[3, :3] + m[3, 3]
    if not np.allclose(w, 1.0):
        if np.any(np.abs(w) < 1e-12):
            raise ValueError(f"{where}: to_world maps a vertex to infinity")
        ph = ph / w[:, None]
    if n is not None:
        n = n @ np.linalg.inv(lin)  # rows: (M^{-T} n)^T = n^T M^{-1}
        ln = np.linalg.norm(n, axis=1, keepdims=True)
        n = np.divide(n, ln, out=np.zeros_like(n), where=ln > 0)
    return ph, n


def _mirrors(to_world: Any) -> bool:
    """Whether the linear part of ``to_world`` has a negative determinant."""
    m = to_world.numpy() if isinstance(to_world, Transform4f) else np.asarray(to_world, float)
    return bool(np.linalg.det(np.asarray(m, dtype=np.float64)[:3, :3]) < 0)


def _flip(faces: np.ndarray, normals: Optional[np.ndarray]):
    f = np.asarray(faces).reshape(-1, 3)[:, [0, 2, 1]]
    return f, (None if normals is None else -normals)


class _BaseShape(Mesh):
    """Common construction: transform, optional flip, hand over to Mesh."""

    def _build(self, positions: np.ndarray, faces: np.ndarray, normals: Optional[np.ndarray],
               uvs: Optional[np.ndarray], to_world: Optional[Transform4f], flip_normals: bool,
               face_normals: bool, bsdf: Any, emitter: Any, id: Optional[str],
               source: str, keep_front: bool = False, normals_from_winding: bool = False,
               inside_out: bool = False) -> None:
        where = f"shape {id!r}" + (f" ({source})" if source else "")
        p, n = bake_transform(positions, normals, to_world, where)
        f = np.asarray(faces)
        if keep_front and to_world is not None and _mirrors(to_world):
            # Mitsuba's analytic rectangle/disk (and its cube) transform their normal
            # with M^{-T}, so a mirroring to_world keeps the front side they had; the
            # triangle winding of the baked vertices is reversed by the mirror, so
            # reverse it back (the vertex normals, baked with M^{-T}, are right).
            f = np.asarray(f).reshape(-1, 3)[:, [0, 2, 1]]
        if inside_out and to_world is not None and _mirrors(to_world) and n is not None:
            # Mitsuba 3's sphere under a mirroring to_world faces its centre (a mirrored
            # diffuse sphere renders black from outside in Mitsuba 3.9.1): the baked
            # winding already points inwards, turn the shading normals with it.
            n = -n
        if normals_from_winding and not face_normals:
            # Mitsuba computes missing vertex normals after applying to_world, so
            # they follow the (possibly mirrored) winding.
            n = meshio.vertex_normals(p, np.asarray(f).reshape(-1, 3))
        if flip_normals:
            f, n = _flip(f, n)
        Mesh.__init__(self, p.astype(np.float32), f, vertex_normals=None if face_normals else n,
                      vertex_texcoords=uvs, bsdf=bsdf, emitter=emitter, id=id,
                      face_normals=face_normals, source=source)
        self.flip_normals = bool(flip_normals)


class _MeshFileShape(_BaseShape):
    """Shared code of ``obj``, ``ply`` and ``serialized``.

    The file's face groups (OBJ ``o``/``g``; one group otherwise) are kept as
    ``face_groups`` (one int per triangle, in the order of the mesh's faces),
    ``vertex_groups`` (the group of the first face using each vertex) and
    ``group_names``; they do not change the render."""

    reader = staticmethod(meshio.read_mesh)

    def _read(self, filename: str) -> "meshio.MeshData":
        return self.reader(filename)

    def __init__(self, filename: str, face_normals: bool = False, flip_normals: bool = False,
                 flip_tex_coords: bool = True, to_world: Optional[Transform4f] = None,
                 bsdf: Any = None, emitter: Any = None, id: Optional[str] = None) -> None:
        filename = os.fspath(filename)
        m = self._read(filename)
        # a serialized shape may ask for face normals itself (its flag 0x10)
        face_normals = bool(face_normals) or bool(getattr(m, "face_normals", False))
        groups = getattr(m, "face_groups", None)
        self.face_groups = (np.zeros(len(m.faces), dtype=np.int64) if groups is None
                            else np.asarray(groups, dtype=np.int64))
        self.group_names = list(getattr(m, "group_names", None) or ["default"])
        vgroups = getattr(m, "vertex_groups", None)
        self.vertex_groups = (np.zeros(len(m.positions), dtype=np.int64) if vgroups is None
                              else np.asarray(vgroups, dtype=np.int64))
        normals = m.normals
        uvs = m.uvs
        if uvs is not None and flip_tex_coords:
            uvs = uvs.copy()
            uvs[:, 1] = 1.0 - uvs[:, 1]
        self.filename = filename
        # Without normals in the file, Mitsuba computes smooth (angle-weighted)
        # ones from the world-space vertices.
        self._build(m.positions, m.faces, normals, uvs, to_world, flip_normals, face_normals,
                    bsdf, emitter, id, source=filename, normals_from_winding=normals is None)


@register
class ObjShape(_MeshFileShape):
    """A Wavefront OBJ mesh (``filename``). Texture coordinates are flipped
    ``v -> 1 - v`` unless ``flip_tex_coords`` is false (Mitsuba's default)."""

    PLUGIN = ("shape", "obj")
    PARAMS = {**_MESH_FILE_PARAMS,
              "flip_tex_coords": Param("bool", True, doc="map v to 1 - v",
                                       aliases=("flipTexCoords",)),
              **COMMON_PARAMS}
    reader = staticmethod(meshio.read_obj)


@register
class PlyShape(_MeshFileShape):
    """A Stanford PLY mesh (``filename``). Texture coordinates are used as
    stored unless ``flip_tex_coords`` is true (Mitsuba 3's PLY loader does not
    flip them)."""

    PLUGIN = ("shape", "ply")
    PARAMS = {**_MESH_FILE_PARAMS,
              "flip_tex_coords": Param("bool", False, doc="map v to 1 - v",
                                       aliases=("flipTexCoords",)),
              **COMMON_PARAMS}
    reader = staticmethod(meshio.read_ply)

    def __init__(self, filename: str, face_normals: bool = False, flip_normals: bool = False,
                 flip_tex_coords: bool = False, to_world: Optional[Transform4f] = None,
                 bsdf: Any = None, emitter: Any = None, id: Optional[str] = None) -> None:
        super().__init__(filename, face_normals, flip_normals, flip_tex_coords, to_world,
                         bsdf, emitter, id)


@register
class SerializedShape(_MeshFileShape):
    """Shape ``shape_index`` of a Mitsuba ``.serialized`` file (``filename``):
    Mitsuba's zlib-compressed binary mesh format, read by
    :func:`~lumigrad.geometry.meshio.read_serialized`. Texture coordinates are
    used as stored (Mitsuba does not flip them); the file's face-normals flag
    acts as ``face_normals``."""

    PLUGIN = ("shape", "serialized")
    PARAMS = {**_MESH_FILE_PARAMS,
              "shape_index": Param("int", 0, min=0, doc="which shape of the file to load",
                                   aliases=("shapeIndex",)),
              **COMMON_PARAMS}

    def __init__(self, filename: str, shape_index: int = 0, face_normals: bool = False,
                 flip_normals: bool = False, to_world: Optional[Transform4f] = None,
                 bsdf: Any = None, emitter: Any = None, id: Optional[str] = None) -> None:
        self.shape_index = int(shape_index)
        super().__init__(filename, face_normals, flip_normals, False, to_world, bsdf,
                         emitter, id)

    def _read(self, filename: str) -> "meshio.MeshData":
        return meshio.read_serialized(filename, self.shape_index)


@register
class RectangleShape(_BaseShape):
    """The square [-1, 1]² at z = 0 with normal +Z and uvs ``(p + 1)/2``
    (2 triangles), placed by ``to_world``."""

    PLUGIN = ("shape", "rectangle")
    PARAMS = {**COMMON_PARAMS,
              "face_normals": Param("bool", False, ignored="a flat rectangle's vertex "
                                    "normals are its face normal")}

    def __init__(self, to_world: Optional[Transform4f] = None, flip_normals: bool = False,
                 bsdf: Any = None, emitter: Any = None, id: Optional[str] = None) -> None:
        m = primitives.rectangle()
        self._build(m.positions, m.faces, m.normals, m.uvs, to_world, flip_normals, True,
                    bsdf, emitter, id, source="rectangle",
                    keep_front=True)


@register
class CubeShape(_BaseShape):
    """The cube [-1, 1]³: 24 vertices (4 per face), 12 triangles, face normals,
    each face's uvs covering [0, 1]²."""

    PLUGIN = ("shape", "cube")
    PARAMS = {**COMMON_PARAMS,
              "face_normals": Param("bool", False, ignored="the cube is always shaded with "
                                    "its face normals (4 vertices per face)")}

    def __init__(self, to_world: Optional[Transform4f] = None, flip_normals: bool = False,
                 bsdf: Any = None, emitter: Any = None, id: Optional[str] = None) -> None:
        m = primitives.cube()
        self._build(m.positions, m.faces, m.normals, m.uvs, to_world, flip_normals, True,
                    bsdf, emitter, id, source="cube",
                    keep_front=True)


@register
class SphereShape(_BaseShape):
    """A sphere of ``radius`` about ``center``, then ``to_world``
    (``to_world · translate(center) · scale(radius)``), tessellated as described
    in the module docstring."""

    PLUGIN = ("shape", "sphere")
    PARAMS = {
        "center": Param("point", (0.0, 0.0, 0.0), doc="centre in object space"),
        "radius": Param("float", 1.0, min_exclusive=0.0, doc="radius in object space"),
        **COMMON_PARAMS,
    }

    def __init__(self, center: Any = (0.0, 0.0, 0.0), radius: float = 1.0,
                 to_world: Optional[Transform4f] = None, flip_normals: bool = False,
                 bsdf: Any = None, emitter: Any = None, id: Optional[str] = None) -> None:
        c = np.asarray(center, dtype=np.float64).reshape(-1)
        if c.size != 3 or not np.all(np.isfinite(c)):
            raise ValueError(f"sphere {id!r}: center must be 3 finite numbers, got {center!r}")
        radius = float(radius)
        if not (np.isfinite(radius) and radius > 0):
            raise ValueError(f"sphere {id!r}: radius must be positive, got {radius}")
        local = np.diag([radius, radius, radius, 1.0])
        local[:3, 3] = c
        m = primitives.uv_sphere(SPHERE_BANDS, SPHERE_SEGMENTS)
        full = local if to_world is None else (
            (to_world.numpy() if isinstance(to_world, Transform4f) else np.asarray(to_world)) @ local)
        self.center = tuple(float(x) for x in c)
        self.radius = radius
        self._build(m.positions, m.faces, m.normals, m.uvs, Transform4f(full), flip_normals,
                    False, bsdf, emitter, id, source="sphere", inside_out=True)


@register
class DiskShape(_BaseShape):
    """The unit disk at z = 0 with normal +Z (a fan of ``DISK_SEGMENTS``
    triangles), uvs ``(r, φ/2π)``, placed by ``to_world``."""

    PLUGIN = ("shape", "disk")
    PARAMS = dict(COMMON_PARAMS)

    def __init__(self, to_world: Optional[Transform4f] = None, flip_normals: bool = False,
                 bsdf: Any = None, emitter: Any = None, id: Optional[str] = None) -> None:
        m = primitives.disk(DISK_SEGMENTS)
        self._build(m.positions, m.faces, m.normals, m.uvs, to_world, flip_normals, True,
                    bsdf, emitter, id, source="disk",
                    keep_front=True)
