"""The :class:`Scene`: flat, differentiable buffers that the integrators read.

Plugins (meshes, BSDFs, emitters, sensors) keep their own parameters; the scene
concatenates all meshes into one triangle buffer, builds the BVH over it, and
tabulates what emitter sampling needs. :meth:`Scene.update` recomputes those
buffers from the plugins' current values *differentiably* (so gradients reach
whatever the user assigned to a parameter) and rebuilds the BVH when geometry
moved.

Ray intersection is not differentiated: the BVH returns a triangle id, and
:meth:`Scene.compute_interaction` re-intersects the same (detached) ray with
that triangle's *attached* vertices, so the hit point slides along the ray as
the geometry moves (DESIGN.md, "Differentiation principles").
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import drjit as dr
import numpy as np

from .. import backend as bk
from ..core.frame import Frame
from ..core.interaction import SurfaceInteraction, triangle_tangents
from ..core.warp import square_to_uniform_triangle
from ..geometry.accel import build_accelerator
from ..bsdfs._common import any_nested

INVALID = 0xFFFFFFFF
_LINEAR_CDF_SEARCH = 8     # emitters with at most this many triangles: linear CDF search


class Scene:
    """A loaded scene: shapes, emitters, sensors and the default integrator."""

    def __init__(self, shapes: Sequence[Any], emitters: Sequence[Any] = (),
                 sensors: Sequence[Any] = (), integrator: Any = None,
                 ids: Optional[dict] = None, accel: Optional[str] = None) -> None:
        if len(shapes) == 0:
            raise ValueError("a scene needs at least one shape")
        self.shapes = list(shapes)
        self.sensors = list(sensors)
        self.integrator = integrator
        self.ids = dict(ids or {})

        # BSDF table (by identity, in first-use order) and per-shape indices.
        self.bsdfs: list[Any] = []
        for s in self.shapes:
            if s.bsdf is None:
                # Mitsuba's default material: grey diffuse, black on emitters (as the
                # loaders do: light falling on a lamp without a BSDF is not reflected)
                from ..bsdfs.diffuse import Diffuse
                s.bsdf = Diffuse(0.0 if s.emitter is not None else 0.5)
            if not any(s.bsdf is b for b in self.bsdfs):
                self.bsdfs.append(s.bsdf)
        self.shape_bsdf = [next(i for i, b in enumerate(self.bsdfs) if b is s.bsdf)
                           for s in self.shapes]

        # Emitters: area emitters first (one per emissive shape), then the others.
        self.area_emitters = []
        self.shape_area_emitter = []
        for s in self.shapes:
            if s.emitter is not None:
                s.emitter.shape = s
                self.shape_area_emitter.append(len(self.area_emitters))
                self.area_emitters.append(s.emitter)
            else:
                self.shape_area_emitter.append(INVALID)
        others = [e for e in emitters if not getattr(e, "is_area", False)]
        self.emitters = self.area_emitters + others
        envs = [e for e in others if e.is_infinite and not e.is_delta]
        if len(envs) > 1:
            raise ValueError("a scene may hold at most one environment emitter "
                             f"(constant/envmap); found {len(envs)}")
        self.environment = envs[0] if envs else None
        self._positions_np: Optional[np.ndarray] = None
        #: requested ray-tracing core ('auto', 'builtin', 'mitsuba'; None: LUMIGRAD_ACCEL)
        self.accel_kind = accel
        self.accel: Any = None    # a geometry.accel core, built by update()
        self._edges: Any = None
        self.faces_np: Optional[np.ndarray] = None
        self.update()
        self.make_parameters_opaque()

    def set_accelerator(self, kind: Optional[str]) -> None:
        """Switch the ray-tracing core: ``'auto'``, ``'builtin'``, ``'mitsuba'`` or
        ``None`` (``LUMIGRAD_ACCEL``); see :mod:`lumigrad.geometry.accel`. Images and
        gradients do not depend on the core (up to ties on shared edges)."""
        self.accel_kind = kind
        self.accel = build_accelerator(self._positions_np, self.faces_np, kind)

    @property
    def accel_name(self) -> str:
        """The ray-tracing core in use (``'builtin'`` or ``'mitsuba'``)."""
        return self.accel.name

    def plugins(self) -> list:
        """Every plugin object of the scene (shapes, BSDFs, emitters, sensors)."""
        out: list = list(self.shapes) + list(self.bsdfs) + list(self.emitters) + list(self.sensors)
        return out

    def make_parameters_opaque(self) -> None:
        """Evaluate every parameter value so kernels take them as inputs, not
        constants: changing a value (an optimizer step) then reuses the compiled
        kernels instead of recompiling them."""
        for obj in self.plugins():
            for _, value, _ in obj.parameters():
                make_opaque(value)

    # ------------------------------------------------------------------
    # buffers
    # ------------------------------------------------------------------
    def update(self) -> None:
        """Recompute the flat buffers from the plugins (differentiably)."""
        shapes = self.shapes
        counts_v = [s.vertex_count for s in shapes]
        counts_f = [s.face_count for s in shapes]
        self.vertex_offsets = np.concatenate([[0], np.cumsum(counts_v)]).astype(np.int64)
        self.face_offsets = np.concatenate([[0], np.cumsum(counts_f)]).astype(np.int64)
        n_faces = int(self.face_offsets[-1])

        self._attached_buffers()
        faces_np = np.concatenate([s.faces_numpy().astype(np.int64) + off
                                   for s, off in zip(shapes, self.vertex_offsets[:-1])])
        if self.faces_np is None or not np.array_equal(self.faces_np, faces_np):
            self._edges = None          # the edge topology follows the faces
        self.faces_np = faces_np.astype(np.uint32)
        self.faces = bk.from_numpy(bk.UInt32, self.faces_np)
        self.prim_shape_np = np.repeat(np.arange(len(shapes), dtype=np.uint32), counts_f)
        self.prim_shape = bk.from_numpy(bk.UInt32, self.prim_shape_np)

        self.shape_smooth = bk.Bool(np.array([s.vertex_normals is not None for s in shapes]))

        # Per-shape material and area-emitter indices, gathered per triangle.
        self.prim_bsdf = dr.gather(bk.UInt32, bk.from_numpy(bk.UInt32, np.array(self.shape_bsdf, np.uint32)),
                                   self.prim_shape)
        self.prim_emitter = dr.gather(
            bk.UInt32, bk.from_numpy(bk.UInt32, np.array(self.shape_area_emitter, np.uint32)), self.prim_shape)

        # Acceleration structure over detached positions; rebuilt when geometry moved.
        pos_np = np.array(dr.detach(self.positions), dtype=np.float32).reshape(-1, 3)
        if not np.all(np.isfinite(pos_np)):
            bad = int(np.argmax(~np.isfinite(pos_np).all(1)))
            shape_i = int(np.searchsorted(self.vertex_offsets, bad, side="right") - 1)
            raise ValueError(f"shape {shapes[shape_i].id!r}: vertex positions contain NaN or "
                             "inf after the update")
        topology_changed = self.accel is None or self._positions_np is None or \
            self._positions_np.shape != pos_np.shape or \
            self.accel.faces.shape != self.faces_np.shape or \
            not np.array_equal(self.accel.faces, self.faces_np)
        if topology_changed:
            self.accel = build_accelerator(pos_np, self.faces_np, self.accel_kind)
        elif not np.array_equal(self._positions_np, pos_np):
            self.accel.update(pos_np)
        self._positions_np = pos_np

        # Scene bounds, for infinite emitters.
        lo, hi = pos_np.min(0), pos_np.max(0)
        self.bbox = (lo, hi)
        center = 0.5 * (lo + hi)
        radius = float(np.linalg.norm(hi - lo) * 0.5) or 1.0
        self.bsphere = (center, radius)
        for e in self.emitters:
            e.set_scene_bounds(bk.Array3f(*center.tolist()), radius)

        # Area-emitter sampling tables (triangle CDF per emissive shape).
        self._area_tables = []
        f = faces_np
        for e in self.area_emitters:
            si = next(i for i, s in enumerate(shapes) if s is e.shape)
            lo_f, hi_f = int(self.face_offsets[si]), int(self.face_offsets[si + 1])
            ff = f[lo_f:hi_f]
            p = pos_np.astype(np.float64)
            area = 0.5 * np.linalg.norm(np.cross(p[ff[:, 1]] - p[ff[:, 0]],
                                                 p[ff[:, 2]] - p[ff[:, 0]]), axis=1)
            total = float(area.sum())
            if total <= 0:
                raise ValueError(f"emissive shape {e.shape.id!r} has zero surface area")
            cdf = np.concatenate([[0.0], np.cumsum(area)]) / total
            # (The total area is opaque: moving the emitter must not recompile.)
            self._area_tables.append((lo_f, hi_f - lo_f,
                                      bk.from_numpy(bk.Float, cdf.astype(np.float32)),
                                      dr.opaque(bk.Float, total), total))
        # Emitter selection: probability proportional to each sampling_weight.
        w_sel = np.array([float(getattr(e, "sampling_weight", 1.0)) for e in self.emitters]
                         or [1.0], np.float64)
        if not np.all(np.isfinite(w_sel)) or w_sel.min() < 0 or w_sel.sum() <= 0:
            raise ValueError("emitter sampling weights must be non-negative and not all zero")
        prob = w_sel / w_sel.sum()
        self._emitter_prob = bk.from_numpy(bk.Float, prob.astype(np.float32))
        self._emitter_cdf = bk.from_numpy(
            bk.Float, np.concatenate([[0.0], np.cumsum(prob)]).astype(np.float32))
        self._env_prob = float(prob[self.emitters.index(self.environment)]) \
            if self.environment is not None else 0.0
        self._area_totals = bk.from_numpy(
            bk.Float, np.array([t[4] for t in self._area_tables] or [1.0], np.float32))
        self._n_faces = n_faces
        dr.make_opaque(self.positions, self.faces, self.prim_shape, self.prim_bsdf,
                       self.prim_emitter, self.shape_smooth)
        if self.has_normals:
            dr.make_opaque(self.normals)
        if self.has_texcoords:
            dr.make_opaque(self.texcoords)

    def _attached_buffers(self) -> None:
        """The flat vertex buffers that carry derivatives: positions, and the
        optional normals and texture coordinates (padded with zeros for
        shapes that lack them)."""
        shapes = self.shapes
        self.positions = dr.concat([s.world_positions() for s in shapes]) \
            if len(shapes) > 1 else shapes[0].world_positions()
        self.has_normals = any(s.vertex_normals is not None for s in shapes)
        if self.has_normals:
            parts = [s.world_normals() if s.vertex_normals is not None
                     else dr.zeros(bk.Float, 3 * s.vertex_count) for s in shapes]
            self.normals = dr.concat(parts) if len(parts) > 1 else parts[0]
        self.has_texcoords = any(s.vertex_texcoords is not None for s in shapes)
        if self.has_texcoords:
            parts = [s.vertex_texcoords if s.vertex_texcoords is not None
                     else dr.zeros(bk.Float, 2 * s.vertex_count) for s in shapes]
            self.texcoords = dr.concat(parts) if len(parts) > 1 else parts[0]

    def refresh_attached(self) -> None:
        """Recompute only the buffers that carry derivatives (positions,
        normals, texture coordinates), for callers that replaced parameters by
        grad-enabled copies of the *same values* (``render.swap_in_leaves``
        and its undoing): the acceleration structure, emitter tables and
        bounds stay valid. (:meth:`update` costs ~5 ms more on a
        131k-triangle mesh, twice per derivative image.)"""
        self._attached_buffers()
        dr.make_opaque(self.positions)
        if self.has_normals:
            dr.make_opaque(self.normals)
        if self.has_texcoords:
            dr.make_opaque(self.texcoords)

    def edges(self) -> Any:
        """The scene's welded edge topology (``geometry/edges.py``), built on
        first use and again when the faces change."""
        if self._edges is None:
            from ..geometry.edges import EdgeTopology
            self._edges = EdgeTopology(self)
        return self._edges

    def mirror_views(self) -> Any:
        """The scene's planar mirror triangles (``integrators/boundary/views.py``),
        built with the edge topology."""
        if self._edges is None or getattr(self, "_mirrors", None) is None \
                or self._mirrors_key is not self._edges:
            from ..integrators.boundary.views import MirrorViews
            self._mirrors = MirrorViews(self)
            self._mirrors_key = self.edges()
        return self._mirrors

    @property
    def sensor(self) -> Any:
        return self.sensors[0]

    def bbox_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        return self.bbox

    # ------------------------------------------------------------------
    # ray queries
    # ------------------------------------------------------------------
    def ray_intersect_preliminary(self, o: Any, d: Any, tmax: Any, active: Any,
                                  coherent: Any = False) -> tuple:
        """(t, prim, u, v, hit) of the closest hit; not differentiable. ``coherent``:
        a hint (bool or per-lane Bool) that the rays travel together (camera rays)."""
        return self.accel.ray_intersect(dr.detach(o), dr.detach(d), dr.detach(tmax), active,
                                        coherent)

    def ray_test(self, o: Any, d: Any, tmax: Any, active: Any) -> Any:
        """True where the segment ``o + t d``, t in (0, tmax), hits anything."""
        return self.accel.ray_test(dr.detach(o), dr.detach(d), dr.detach(tmax), active)

    def ray_intersect(self, o: Any, d: Any, tmax: Any, active: Any,
                      coherent: Any = False) -> SurfaceInteraction:
        _, prim, _, _, hit = self.ray_intersect_preliminary(o, d, tmax, active, coherent)
        return self.compute_interaction(o, d, prim, hit & active)

    def _triangle(self, prim: Any, active: Any) -> tuple:
        idx = [dr.gather(bk.UInt32, self.faces, prim * 3 + k, active) for k in range(3)]
        pts = [dr.gather(bk.Array3f, self.positions, i, active) for i in idx]
        return idx, pts

    def compute_interaction(self, o: Any, d: Any, prim: Any, hit: Any) -> SurfaceInteraction:
        """Differentiable surface interaction of ray (o, d) with triangle ``prim``.

        Re-solves the Möller–Trumbore system (Möller & Trumbore 1997, "Fast,
        Minimum Storage Ray-Triangle Intersection") with attached vertices, so
        t, the barycentrics and thus the position, normals and uv are
        differentiable in the geometry while the ray stays fixed.
        """
        prim = dr.select(hit, prim, 0)
        (i0, i1, i2), (p0, p1, p2) = self._triangle(prim, hit)
        e1, e2 = p1 - p0, p2 - p0
        pvec = dr.cross(d, e2)
        det = dr.dot(e1, pvec)
        inv_det = dr.select(dr.abs(det) > 1e-20, dr.rcp(det), 0.0)
        tvec = o - p0
        u = dr.dot(tvec, pvec) * inv_det
        qvec = dr.cross(tvec, e1)
        v = dr.dot(d, qvec) * inv_det
        t = dr.dot(e2, qvec) * inv_det
        p = dr.fma(d, t, o)
        si = self._surface(prim, (i0, i1, i2), (p0, p1, p2), u, v, p, hit)
        si.wi = si.to_local(-d)
        si.t = dr.select(hit, t, dr.inf)
        return si

    def material_interaction(self, prim: Any, bary: Any, active: Any) -> SurfaceInteraction:
        """The surface point of triangle ``prim`` at fixed barycentrics ``bary``
        (a *material* point: it moves with the triangle's attached vertices),
        with ``wi`` unset (+Z) and ``t = 0``."""
        prim = dr.select(active, prim, 0)
        idx, pts = self._triangle(prim, active)
        u, v = bary[0], bary[1]
        p = pts[0] * (1.0 - u - v) + pts[1] * u + pts[2] * v
        return self._surface(prim, idx, pts, u, v, p, active)

    def _surface(self, prim: Any, idx: tuple, pts: tuple, u: Any, v: Any, p: Any,
                 hit: Any) -> SurfaceInteraction:
        """Normals and texture coordinates at barycentrics ``(u, v)`` of a triangle."""
        (i0, i1, i2), (p0, p1, p2) = idx, pts
        n_geo = dr.cross(p1 - p0, p2 - p0)
        n_len = dr.norm(n_geo)
        n = dr.select(n_len > 0, n_geo / dr.maximum(n_len, 1e-30), bk.Array3f(0, 0, 1))
        b0 = 1.0 - u - v
        sh_n = n
        shape = dr.gather(bk.UInt32, self.prim_shape, prim, hit)
        if self.has_normals:
            smooth = dr.gather(bk.Bool, self.shape_smooth, shape, hit)
            n0, n1, n2 = [dr.gather(bk.Array3f, self.normals, i, hit & smooth)
                          for i in (i0, i1, i2)]
            ns = n0 * b0 + n1 * u + n2 * v
            ns_len = dr.norm(ns)
            sh_n = dr.select(smooth & (ns_len > 1e-12), ns / dr.maximum(ns_len, 1e-30), n)
        if self.has_texcoords:
            t0, t1, t2 = [dr.gather(bk.Array2f, self.texcoords, i, hit) for i in (i0, i1, i2)]
            uv = t0 * b0 + t1 * u + t2 * v
        else:
            uv = bk.Array2f(u, v)
        n_pts = dr.width(p)
        tangents = {}
        if any_nested(self.bsdfs, "needs_tangents"):     # bumpmap, normalmap (trace time)
            duv = (t1 - t0, t2 - t0) if self.has_texcoords else (bk.Array2f(1, 0),
                                                                 bk.Array2f(0, 1))
            tangents = dict(zip(("dp_du", "dp_dv"),
                                triangle_tangents(p1 - p0, p2 - p0, *duv, n)))
        return SurfaceInteraction(t=dr.zeros(bk.Float, n_pts), p=p, n=n, sh_n=sh_n, uv=uv,
                                  wi=bk.Array3f(0, 0, 1), prim=prim, shape=shape,
                                  valid=bk.Bool(hit), bary=bk.Array2f(u, v), **tangents)

    def eval_bsdf(self, si: SurfaceInteraction, wo: Any, active: Any) -> Any:
        """``f(si.wi, wo) |cos θ_o|`` of the BSDF of the triangle hit (``wo`` local)."""
        bsdfs = self.bsdfs
        if len(bsdfs) == 1:
            return bsdfs[0].eval(si, wo, active)
        idx = dr.gather(bk.UInt32, self.prim_bsdf, si.prim, active)
        return dr.switch(idx, [b.eval for b in bsdfs], si, wo, active)

    def bsdf_delta_only(self, prim: Any, active: Any) -> Any:
        """True where the triangle's BSDF has only delta lobes (mirrors, glass)."""
        table = bk.from_numpy(bk.Bool, np.array([bool(getattr(b, "delta_only", False))
                                                for b in self.bsdfs]))
        return dr.gather(bk.Bool, table, dr.gather(bk.UInt32, self.prim_bsdf, prim, active),
                         active)

    # ------------------------------------------------------------------
    # emitters
    # ------------------------------------------------------------------
    def emitter_index(self, si: SurfaceInteraction, active: Any) -> Any:
        return dr.gather(bk.UInt32, self.prim_emitter, si.prim, active & si.valid)

    def eval_area_emitter(self, si: SurfaceInteraction, active: Any) -> Any:
        """Radiance emitted by the surface at ``si`` towards ``si.wi`` (zero if not emissive)."""
        if not self.area_emitters:
            return dr.zeros(bk.Array3f, dr.width(si.p))
        idx = self.emitter_index(si, active)
        is_em = active & si.valid & (idx != INVALID)
        if len(self.area_emitters) == 1:
            return dr.select(is_em, self.area_emitters[0].eval(si, is_em), 0.0)
        value = dr.switch(dr.select(is_em, idx, 0), [e.eval for e in self.area_emitters],
                          si, is_em)
        return dr.select(is_em, value, 0.0)

    def eval_environment(self, d: Any, active: Any) -> Any:
        if self.environment is None:
            return dr.zeros(bk.Array3f, dr.width(d))
        return self.environment.eval_direction(d, active)

    def _area_sample(self, k: int, p_ref: Any, s2: Any, active: Any) -> tuple:
        """Sample a point on area emitter ``k`` uniformly by area; return a direction sample."""
        off, count, cdf, total, _ = self._area_tables[k]
        u = s2[0]
        if count <= _LINEAR_CDF_SEARCH:
            # A few triangles (a quad light): count the CDF entries below u, with the
            # entries as scalar kernel inputs, instead of a nested search loop.
            local = dr.zeros(bk.UInt32, dr.width(u))
            for j in range(1, count):
                local += dr.select(dr.gather(bk.Float, cdf, bk.UInt32(j)) <= u, 1, 0)
        else:
            local = dr.binary_search(0, count, lambda i: dr.gather(bk.Float, cdf, i + 1) <= u)
            local = dr.minimum(local, count - 1)
        c0 = dr.gather(bk.Float, cdf, local)
        c1 = dr.gather(bk.Float, cdf, local + 1)
        u_re = dr.clip((u - c0) / dr.maximum(c1 - c0, 1e-12), 0.0, 1.0 - 1e-7)
        b = square_to_uniform_triangle(bk.Array2f(u_re, s2[1]))
        return self._area_point(k, p_ref, local + off, b, active)

    def _area_point(self, k: int, p_ref: Any, prim: Any, b: Any, active: Any) -> tuple:
        """The direction sample of area emitter ``k`` at barycentrics ``b`` of its
        triangle ``prim`` (a material point: attached to the emitter's vertices)."""
        total = self._area_tables[k][3]
        (i0, i1, i2), (p0, p1, p2) = self._triangle(prim, active)
        p = p0 * (1.0 - b[0] - b[1]) + p1 * b[0] + p2 * b[1]
        n_geo = dr.cross(p1 - p0, p2 - p0)
        area2 = dr.norm(n_geo)
        n = n_geo / dr.maximum(area2, 1e-30)
        # pdf (area measure) = P(triangle) / area(triangle): detached choice, attached
        # area, so that the area-change Jacobian is part of the estimator.
        tri_area = 0.5 * area2
        pdf_area = dr.detach(tri_area) / total / dr.maximum(tri_area, 1e-30)
        dvec = p - p_ref
        dist2 = dr.squared_norm(dvec)
        dist = dr.sqrt(dist2)
        d = dvec / dr.maximum(dist, 1e-30)
        cos_l = -dr.dot(n, d)
        uv = bk.Array2f(b[0], b[1])
        if self.has_texcoords:
            t0, t1, t2 = [dr.gather(bk.Array2f, self.texcoords, i, active) for i in (i0, i1, i2)]
            uv = t0 * (1.0 - b[0] - b[1]) + t1 * b[0] + t2 * b[1]
        shape = dr.gather(bk.UInt32, self.prim_shape, prim, active)
        si_l = SurfaceInteraction(t=dist, p=p, n=n, sh_n=n, uv=uv, wi=Frame(n).to_local(-d),
                                  prim=prim, shape=shape, valid=active)
        radiance = self.area_emitters[k].eval(si_l, active)
        ok = active & (cos_l > 1e-7) & (dist > 1e-7)
        pdf = dr.select(ok, pdf_area * dist2 / dr.maximum(cos_l, 1e-12), 0.0)
        weight = dr.select(ok, radiance / dr.maximum(pdf, 1e-30), 0.0)
        return d, dist, pdf, weight

    def sample_emitter_direction(self, p_ref: Any, s1: Any, s2: Any, active: Any) -> tuple:
        """Sample a direction towards an emitter from ``p_ref``.

        Picks an emitter with ``s1``, with probability proportional to its
        ``sampling_weight`` (uniformly by default, as Mitsuba), then samples it
        with ``s2``. Returns ``(d, dist, pdf, weight, delta)``: unit direction,
        distance (inf for emitters at infinity), solid-angle pdf including the
        selection probability (just the selection probability for delta
        emitters), the weight radiance/pdf, and whether the emitter is a delta
        light. Visibility is *not* tested here.
        """
        n = len(self.emitters)
        if n == 0:
            z = dr.zeros(bk.Float, dr.width(s1))
            return (dr.zeros(bk.Array3f, dr.width(s1)), z, z, dr.zeros(bk.Array3f, dr.width(s1)),
                    dr.full(bk.Bool, False, dr.width(s1)))
        idx = self.select_emitter(s1)
        funcs = []
        for k, e in enumerate(self.emitters):
            if k < len(self.area_emitters):
                def f(p, s, act, k=k):
                    d, dist, pdf, w = self._area_sample(k, p, s, act)
                    return d, dist, pdf, w, dr.full(bk.Bool, False, dr.width(p))
            else:
                def f(p, s, act, e=e):
                    ds = e.sample_direction(p, s, act)
                    return (ds.d, ds.dist, ds.pdf, ds.weight,
                            dr.full(bk.Bool, bool(e.is_delta), dr.width(p)) & act)
            funcs.append(f)
        if n == 1:
            d, dist, pdf, w, delta = funcs[0](p_ref, s2, active)
        else:
            d, dist, pdf, w, delta = dr.switch(idx, funcs, p_ref, s2, active)
        p_sel = dr.gather(bk.Float, self._emitter_prob, idx)
        pdf = pdf * p_sel
        w = w * dr.rcp(p_sel)
        return d, dist, pdf, w, delta

    def emitter_direction_at(self, p_ref: Any, prim: Any, bary: Any, active: Any) -> tuple:
        """The sample of ``sample_emitter_direction`` from ``p_ref`` that lies at
        barycentrics ``bary`` of the emissive triangle ``prim`` (found by a ray,
        say), or where ``prim`` is ``INVALID`` at the environment's coordinates
        ``bary`` (``Emitter.direction_point``): ``(d, dist, pdf, weight)`` as
        that function returns them, the point a material point of the emitter;
        zero where ``prim`` emits not."""
        n = dr.width(prim)
        env = active & (prim == INVALID) & (self.environment is not None)
        idx = dr.gather(bk.UInt32, self.prim_emitter, prim, active & ~env)
        if self.environment is not None:
            idx = dr.select(env, self.emitters.index(self.environment), idx)
        active = active & (idx != INVALID)
        out = (dr.zeros(bk.Array3f, n), dr.zeros(bk.Float, n), dr.zeros(bk.Float, n),
               dr.zeros(bk.Array3f, n))
        # (A masked copy per emitter, not dr.switch: a symbolic call here stops
        # derivatives from crossing the isolated AD scopes of forward passes,
        # as in emitter_position.)
        for k in range(len(self.area_emitters)):
            here = active & (idx == k)
            value = self._area_point(k, p_ref, prim, bary, here)
            out = tuple(dr.select(here, v, o) for v, o in zip(value, out))
        if self.environment is not None:
            ds = self.environment.sample_at(p_ref, bary, env)
            out = tuple(dr.select(env, v, o) for v, o in
                        zip((ds.d, ds.dist, ds.pdf, ds.weight), out))
        d, dist, pdf, w = out
        p_sel = dr.gather(bk.Float, self._emitter_prob, dr.select(active, idx, 0), active)
        return d, dist, pdf * p_sel, w * dr.rcp(dr.maximum(p_sel, 1e-30))

    def select_emitter(self, s1: Any) -> Any:
        """Index of the emitter that ``sample_emitter_direction`` picks with ``s1``."""
        n = len(self.emitters)
        if n <= 1:
            return dr.zeros(bk.UInt32, dr.width(s1))
        cdf = self._emitter_cdf
        idx = dr.binary_search(0, n - 1, lambda i: dr.gather(bk.Float, cdf, i + 1) <= s1)
        return dr.minimum(bk.UInt32(idx), n - 1)

    def emitter_position(self, p_ref: Any, s1: Any, s2: Any, active: Any) -> tuple:
        """Where the emitter sample of ``sample_emitter_direction(p_ref, s1, s2)``
        lies, attached to the emitters' parameters and computed without a
        symbolic call (so that derivatives can be propagated from isolated AD
        scopes): ``(point, direction, finite)`` — the emitter point (its
        material point for area lights, the position of a point light) or, for
        emitters at infinity, the unit direction towards them."""
        idx = self.select_emitter(s1)
        n = dr.width(s1)
        point = dr.zeros(bk.Array3f, n)
        direction = dr.zeros(bk.Array3f, n)
        finite = dr.zeros(bk.Bool, n)
        for k, e in enumerate(self.emitters):
            here = active & (idx == k)
            if k < len(self.area_emitters):
                d, dist, _, _ = self._area_sample(k, p_ref, s2, here)
                ds_finite = dr.full(bk.Bool, True, n)
            else:
                ds = e.sample_direction(p_ref, s2, here)
                d, dist, ds_finite = ds.d, ds.dist, ~dr.isinf(ds.dist)
            point = dr.select(here, p_ref + d * dr.select(ds_finite, dist, 0.0), point)
            direction = dr.select(here, d, direction)
            finite = dr.select(here, ds_finite, finite)
        return point, direction, finite

    def pdf_area_emitter(self, p_ref: Any, si: SurfaceInteraction, active: Any) -> Any:
        """Solid-angle pdf with which ``sample_emitter_direction`` from ``p_ref``
        would have produced the emissive hit ``si`` (for MIS)."""
        if not self.area_emitters:
            return dr.zeros(bk.Float, dr.width(si.t))
        idx = self.emitter_index(si, active)
        is_em = active & si.valid & (idx != INVALID)
        total = dr.gather(bk.Float, self._area_totals, dr.select(is_em, idx, 0), is_em)
        dist2 = dr.squared_norm(si.p - p_ref)
        cos_l = dr.abs(si.wi[2])
        p_sel = dr.gather(bk.Float, self._emitter_prob, dr.select(is_em, idx, 0), is_em)
        pdf = dist2 / dr.maximum(cos_l * total, 1e-30) * p_sel
        return dr.detach(dr.select(is_em & (cos_l > 1e-7), pdf, 0.0))

    def pdf_environment(self, p_ref: Any, d: Any, active: Any) -> Any:
        if self.environment is None:
            return dr.zeros(bk.Float, dr.width(d))
        p_sel = self._env_prob
        return dr.detach(self.environment.pdf_direction(p_ref, d, active)) * p_sel

    def __repr__(self) -> str:
        return (f"Scene(shapes={len(self.shapes)}, triangles={self._n_faces}, "
                f"bsdfs={len(self.bsdfs)}, emitters={len(self.emitters)}, "
                f"sensors={len(self.sensors)})")


def make_opaque(value: Any) -> None:
    """``dr.make_opaque`` for parameter values (Transform4f included)."""
    from ..geometry.transform import Transform4f
    if isinstance(value, Transform4f):
        dr.make_opaque(value.matrix, value.inverse)
    elif isinstance(value, dr.ArrayBase):
        dr.make_opaque(value)


