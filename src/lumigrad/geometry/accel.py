"""Ray-tracing cores behind one interface: the built-in BVH, or Embree/OptiX through Mitsuba.

Every integrator asks the scene two questions about a batch of rays (o, d, tmax):

* **closest hit** ``ray_intersect(o, d, tmax, active, coherent=False) -> (t, prim, u, v, hit)``:
  ``prim`` indexes the scene's concatenated triangle buffer, the hit point is
  ``(1-u-v) p0 + u p1 + v p2``; a miss gives ``t = inf``, ``prim = 0xFFFFFFFF``,
  ``u = v = 0``, ``hit = False``;
* **any hit** ``ray_test(o, d, tmax, active) -> Bool`` for ``t`` in ``(0, tmax)``.

``coherent`` (a Python bool or a per-lane ``Bool``) marks rays that travel together,
such as camera rays: Embree then traces them as packets (a primary-ray kernel ran
1.8x faster); the built-in BVH ignores it. Neither query is differentiated: the scene re-intersects the returned triangle with its
attached vertices (DESIGN.md, "Differentiation principles"), so a core only has to
agree on *which* triangle is hit, and every core gives the same gradients.

Cores (:data:`BACKENDS`):

``builtin``
    lumigrad's own BVH (:mod:`lumigrad.geometry.bvh`), no extra dependency; refit
    after vertex motion, rebuilt when the refit tree's SAH cost has doubled.
    Scenes of at most ``BVH.unroll_max_triangles`` triangles get a traversal
    unrolled into the kernel, which no external tracer beats (no call, no memory).
``mitsuba``
    Mitsuba 3's ``Scene`` used as a ray tracer inside lumigrad's kernels: one
    ``mi.Mesh`` over the same buffers, queried with ``ray_intersect_preliminary``
    / ``ray_test`` (Embree on the CPU, OptiX on CUDA). Installed with the
    optional extra ``lumigrad[accel]``. Its triangle index equals lumigrad's
    because the mesh is built from the same face buffer.

Choice (:func:`choose_backend`): an explicit argument, else the environment
variable ``LUMIGRAD_ACCEL`` (``auto``/``builtin``/``mitsuba``), else ``auto``:
Mitsuba where it is importable and the scene is larger than the unrolled
small-scene limit, the built-in BVH otherwise. The choice is logged at debug level
(logger ``lumigrad.accel``) and reported by ``lumigrad render --verbose``.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional

import drjit as dr
import numpy as np

from .. import backend as bk
from .bvh import BVH

log = logging.getLogger("lumigrad.accel")

#: Names accepted by :func:`choose_backend` (``auto`` picks one of the others).
BACKENDS = ("builtin", "mitsuba")
_INVALID = 0xFFFFFFFF


def mitsuba_available() -> bool:
    """True when Mitsuba 3 can be imported (the ``accel`` extra is installed)."""
    try:
        import mitsuba  # noqa: F401
    except Exception:  # ImportError, or a broken binary install
        return False
    return True


def choose_backend(kind: Optional[str], triangle_count: int) -> str:
    """The ray-tracing core for a scene of ``triangle_count`` triangles.

    ``kind``: ``None`` (read ``LUMIGRAD_ACCEL``, default ``auto``), ``'auto'``,
    ``'builtin'`` or ``'mitsuba'``. Asking for ``mitsuba`` without Mitsuba
    installed is an error, not a silent fallback.
    """
    requested = kind if kind is not None else os.environ.get("LUMIGRAD_ACCEL", "auto")
    requested = requested.strip().lower()
    if requested not in BACKENDS + ("auto",):
        source = "accel argument" if kind is not None else "LUMIGRAD_ACCEL"
        raise ValueError(f"{source}: unknown ray-tracing backend {requested!r}; "
                         f"expected one of 'auto', {', '.join(repr(b) for b in BACKENDS)}")
    if requested == "mitsuba" and not mitsuba_available():
        raise RuntimeError("ray-tracing backend 'mitsuba' requested but Mitsuba 3 is not "
                           "installed: pip install 'lumigrad[accel]' (or use 'builtin')")
    if requested != "auto":
        return requested
    if triangle_count <= BVH.unroll_max_triangles or not mitsuba_available():
        return "builtin"
    return "mitsuba"


class BuiltinAccelerator:
    """lumigrad's BVH with the refit-or-rebuild policy for moving geometry."""

    name = "builtin"

    def __init__(self, positions: np.ndarray, faces: np.ndarray) -> None:
        self.faces = faces
        self.bvh = BVH.build(positions, faces)
        self._cost = self.bvh.sah_cost()

    def update(self, positions: np.ndarray) -> None:
        """Follow moved vertices (same triangles): refit, and rebuild once the
        refit tree's SAH cost has doubled (large motions loosen the boxes)."""
        self.bvh.refit(positions)
        if self.bvh.sah_cost() > 2.0 * self._cost:
            self.bvh = BVH.build(positions, self.faces)
            self._cost = self.bvh.sah_cost()

    def ray_intersect(self, o: Any, d: Any, tmax: Any, active: Any,
                      coherent: Any = False) -> tuple:
        return self.bvh.ray_intersect(o, d, tmax, active)

    def ray_test(self, o: Any, d: Any, tmax: Any, active: Any) -> Any:
        return self.bvh.ray_test(o, d, tmax, active)


def _mitsuba_parameters(variant: Any, obj: Any) -> dict:
    """``name -> (handle, type)`` of the parameters ``obj`` exposes, from Mitsuba's
    C++ traversal (what ``mi.traverse`` wraps; that wrapper and ``mi.load_dict``
    read Mitsuba's global variant, and setting it re-imports Mitsuba's Python
    integrators: 0.13 s at every switch)."""

    class Collect(variant.TraversalCallback):
        def __init__(self) -> None:
            variant.TraversalCallback.__init__(self)
            self.found: dict = {}

        def put(self, name: str, value: Any, flags: Any, cpptype: Any = None) -> None:
            self.found[name] = (value, cpptype)

    cb = Collect()
    obj.traverse(cb)
    return cb.found


class MitsubaAccelerator:
    """Embree (CPU) or OptiX (CUDA) through a Mitsuba 3 ``Scene`` holding one mesh.

    The Mitsuba variant follows lumigrad's (``llvm_ad_rgb`` / ``cuda_ad_rgb``), so
    its arrays *are* lumigrad's (same Dr.Jit types) and its queries trace inside
    lumigrad's symbolic loops without copies. Everything goes through the variant
    module (``mitsuba.llvm_ad_rgb``) and Mitsuba's C++ traversal: Mitsuba's global
    variant, which the user may have set for their own work, is never read nor
    changed.
    """

    name = "mitsuba"

    def __init__(self, positions: np.ndarray, faces: np.ndarray) -> None:
        import mitsuba

        self.mi = getattr(mitsuba, "cuda_ad_rgb" if bk.variant() == "cuda" else "llvm_ad_rgb")
        self.faces = faces
        self._mesh = self.mi.Mesh("lumigrad_accel", int(positions.shape[0]),
                                  int(faces.shape[0]), has_vertex_normals=False,
                                  has_vertex_texcoords=False)
        self._buffers = _mitsuba_parameters(self.mi, self._mesh)
        self._set("vertex_positions", bk.from_numpy(bk.Float, positions.astype(np.float32)))
        self._set("faces", bk.from_numpy(bk.UInt32, faces.astype(np.uint32)))
        self._mesh.parameters_changed(["vertex_positions", "faces"])
        props = mitsuba.Properties("scene")
        props["mesh"] = self._mesh
        self.scene = self.mi.Scene(props)        # builds Embree's / OptiX's structure

    def _set(self, name: str, value: Any) -> None:
        handle, cpptype = self._buffers[name]
        self.mi.set_property(handle, cpptype, value)

    def update(self, positions: np.ndarray) -> None:
        """Moved vertices: Mitsuba rebuilds its Embree/OptiX structure."""
        self._set("vertex_positions", bk.from_numpy(bk.Float, positions.astype(np.float32)))
        self._mesh.parameters_changed(["vertex_positions"])
        self.scene.parameters_changed(["mesh.vertex_positions"])
        dr.eval()

    def _ray(self, o: Any, d: Any, tmax: Any) -> Any:
        mi = self.mi
        # Ray3f(o, d, x) reads x as the ray's *time*; the (ray, maxt) form sets maxt.
        return mi.Ray3f(mi.Ray3f(mi.Point3f(o), mi.Vector3f(d)), tmax)

    def ray_intersect(self, o: Any, d: Any, tmax: Any, active: Any,
                      coherent: Any = False) -> tuple:
        pi = self.scene.ray_intersect_preliminary(self._ray(o, d, tmax),
                                                  coherent=bk.Bool(coherent),
                                                  active=bk.Bool(active))
        hit = bk.Bool(pi.is_valid()) & active
        zero = bk.Float(0.0)
        return (dr.select(hit, bk.Float(pi.t), bk.Float(dr.inf)),
                dr.select(hit, bk.UInt32(pi.prim_index), bk.UInt32(_INVALID)),
                dr.select(hit, bk.Float(pi.prim_uv.x), zero),
                dr.select(hit, bk.Float(pi.prim_uv.y), zero), hit)

    def ray_test(self, o: Any, d: Any, tmax: Any, active: Any) -> Any:
        return bk.Bool(self.scene.ray_test(self._ray(o, d, tmax), active=bk.Bool(active))) & active


def build_accelerator(positions: np.ndarray, faces: np.ndarray,
                      kind: Optional[str] = None) -> Any:
    """A ray-tracing core over ``faces`` (F, 3) of ``positions`` (N, 3) (see the module
    docstring for ``kind``)."""
    name = choose_backend(kind, int(faces.shape[0]))
    cls = MitsubaAccelerator if name == "mitsuba" else BuiltinAccelerator
    accel = cls(positions, faces)
    log.debug("ray tracing: %s backend for %d triangles", name, faces.shape[0])
    return accel
