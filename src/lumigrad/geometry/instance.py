"""``shapegroup`` and ``instance`` (Mitsuba 3's instancing plugins), flattened;
``merge`` (its nested shapes are simply part of the scene).

A ``shapegroup`` holds shapes that are not rendered themselves; each
``instance`` places the group once more with its own ``to_world``. Mitsuba
traces instances through a two-level acceleration structure; lumigrad renders
one flat triangle buffer, so each instance contributes *copies* of the group's
meshes when the scene is assembled (memory grows with the number of instances;
fine for the few instances real scene files hold).

Each copy shares the group mesh's vertex buffers and BSDF and gets:

* the id ``<instance id>.<shape id>`` (a shape without an id is ``shape_<k>``,
  its position in the group; an instance without an id is ``instance_<k>``), so
  its parameters are ``<instance>.<shape>.vertex_positions``, ...;
* the instance's ``to_world`` as its differentiable ``Mesh.to_world`` (applied on
  top of the stored positions, see :class:`~lumigrad.geometry.mesh.Mesh`), so
  ``<instance>.<shape>.to_world`` moves that copy. A mirroring instance
  transform is baked into the positions instead (with the winding reversed, as
  Mitsuba transforms each triangle's normal with ``M^{-T}`` and keeps its front
  side); ``to_world`` then starts as the identity.

BSDFs are shared objects, so their parameters keep their usual keys.
"""
from __future__ import annotations

import copy
from typing import Any, Optional

import numpy as np

from .. import backend as bk
from ..scene.schema import Param, register
from .mesh import Mesh
from .transform import Transform4f

__all__ = ["ShapeGroup", "Instance", "MergeShape"]


@register
class ShapeGroup:
    """Shapes to be placed by ``instance`` plugins (not rendered by themselves)."""

    PLUGIN = ("shape", "shapegroup")
    PARAMS = {"shapes": Param("objects", category="shape", doc="the grouped shapes")}
    is_shapegroup = True

    def __init__(self, shapes: Optional[list] = None, id: Optional[str] = None) -> None:
        self.id = id
        self.shapes = list(shapes or [])
        if not self.shapes:
            raise ValueError(f"shapegroup {id!r} holds no shape")
        for s in self.shapes:
            if not isinstance(s, Mesh):
                raise ValueError(f"shapegroup {id!r}: a {type(s).__name__} cannot be grouped "
                                 "(only plain shapes: no shapegroup or instance)")
            if getattr(s, "emitter", None) is not None:
                raise ValueError(f"shapegroup {id!r}: shape {s.id!r} has an area emitter; "
                                 "emitters cannot be instanced (as in Mitsuba)")
        #: set by the loader when a shape without a bsdf gets the default one
        self.bsdf: Any = None


@register
class Instance:
    """One placement of a ``shapegroup`` (see the module docstring)."""

    PLUGIN = ("shape", "instance")
    PARAMS = {
        "shapegroup": Param("object", category="shape", required=True,
                            doc="the shapegroup to place (a <ref>)"),
        "to_world": Param("transform", None, doc="placement of the group"),
    }

    def __init__(self, shapegroup: Any = None, to_world: Optional[Transform4f] = None,
                 id: Optional[str] = None) -> None:
        self.id = id
        if not getattr(shapegroup, "is_shapegroup", False):
            raise ValueError(f"instance {id!r}: expected a shapegroup, got a "
                             f"{type(shapegroup).__name__}")
        self.shapegroup = shapegroup
        self.to_world = to_world if to_world is not None else Transform4f()
        #: set by the loader when a shape without a bsdf gets the default one
        self.bsdf: Any = None

    def instance_meshes(self, index: int = 0) -> list:
        """The group's meshes placed by this instance (copies sharing buffers)."""
        iid = self.id or f"instance_{index}"
        m = self.to_world.numpy()
        mirrors = np.linalg.det(m[:3, :3]) < 0
        out = []
        for k, s in enumerate(self.shapegroup.shapes):
            c = copy.copy(s)
            c.id = f"{iid}.{s.id or f'shape_{k}'}"
            if mirrors:
                # Bake, reversing the winding to keep each triangle's front side.
                p = s.positions_numpy().astype(np.float64) @ m[:3, :3].T + m[:3, 3]
                c.vertex_positions = bk.from_numpy(bk.Float, p.astype(np.float32).ravel())
                f = s.faces_numpy()[:, [0, 2, 1]]
                c.faces = bk.from_numpy(bk.UInt32, np.ascontiguousarray(f).ravel())
                if s.vertex_normals is not None:
                    n = np.array(s.vertex_normals, dtype=np.float64).reshape(-1, 3) @ \
                        np.linalg.inv(m[:3, :3])
                    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
                    c.vertex_normals = bk.from_numpy(bk.Float, n.astype(np.float32).ravel())
                c.to_world = Transform4f()
            else:
                c.to_world = Transform4f(m)
            out.append(c)
        return out


@register
class MergeShape:
    """Mitsuba 3's ``merge``: its shapes are merged into one mesh there, an
    optimisation of ray tracing that does not change the image. lumigrad keeps
    them as they are (one triangle buffer holds every shape anyway): the nested
    shapes join the scene with their own ids and parameters."""

    PLUGIN = ("shape", "merge")
    PARAMS = {"shapes": Param("objects", category="shape", doc="the shapes to merge")}

    def __init__(self, shapes: Optional[list] = None, id: Optional[str] = None) -> None:
        self.id = id
        self.shapes = list(shapes or [])
        if not self.shapes:
            raise ValueError(f"merge {id!r} holds no shape")
        for s in self.shapes:
            if not isinstance(s, Mesh):
                raise ValueError(f"merge {id!r}: a {type(s).__name__} cannot be merged "
                                 "(only plain shapes)")
        #: set by the loader when a shape without a bsdf gets the default one
        self.bsdf: Any = None

    def instance_meshes(self, index: int = 0) -> list:
        return list(self.shapes)
