"""Direct visibility: shadow edges of next-event estimation, seen by the camera.

With next-event estimation a pixel of a surface the camera sees is

    I_p = ∫∫ h_p(s) f(a(s), ω_c, ω_z) L_e(z) G(a, z) V(a(s), z) dA(z) ds

over film positions ``s`` (``a(s)`` the surface point seen there) and emitter
points ``z`` (a point light: one point; a directional light or an environment
map: directions). The visibility ``V`` jumps where the segment ``a z`` grazes
an edge that is a silhouette seen from ``z``: for a fixed ``z`` that is a curve
on the film, the shadow line cast by the edge. Its boundary term is

    ∫ dA(z) ∫ h_p(s(t)) [F_right − F_left] (ds/dt × ∂s/∂θ) dt

with ``F = f L_e G V`` on either side of the curve and ``s(t)`` the film
position of ``a(t)``, the point where the ray from ``z`` through the edge point
``y(t)`` meets the receiving surface. The emitter point is held fixed on its
surface (as the interior next-event estimator holds it), the film position of
the camera ray too, so ``∂s/∂θ`` is computed by intersecting that ray with the
attached receiving triangle and projecting it with the attached camera: edge,
light, receiver and camera may all move.

Sampling follows path-space boundary sampling (Zhang et al. 2020,
"Path-Space Differentiable Rendering", ACM TOG 39(4), and PSDR's ``sppse``):
an edge point ``y`` and an emitter sample from it (the scene's next-event
sampling), so that every sample lies on a shadow line unless the edge is no
silhouette from ``z`` or something blocks ``y z``. The emitter point is drawn
first (area lights by area: it does not depend on ``y``), then an edge that
is a silhouette seen from it (:class:`ShadowEdgeChoice`: per emitter, the
edges that can be one, drawn shape by shape and resampled by the silhouette
test; without such tables, all edges in proportion to length times the
fraction ``α/π`` of directions from which an edge of dihedral angle ``α`` is
a silhouette, boundary edges fully), then a point of it uniformly. The
ray from ``z`` through ``y`` (offset to the side of the edge away from its
faces) finds the receiver ``a``; the camera must see ``a``
(:func:`.views.connect_to_camera`). Using ``y``'s emitter sample for ``a``
changes only the measure: ``L_e G / pdf_A(z) = weight_y (r_yz / r_az)²``.
"""
from __future__ import annotations

from typing import Any

import drjit as dr
import numpy as np

from ... import backend as bk
from ...core.math import hmax
from . import BoundarySample, BoundaryTerm, moves_geometry, per_sample
from .sampling import DiscreteSampler, Reservoir, cross2
from .views import (MIRROR_FRACTION, connect_through_mirror, connect_to_camera, mirror_plane,
                    reflect_point, reflect_vector)

#: Offset of rays that pass an edge, relative to the scene's coordinate scale
#: (like the spawn offsets of ``SurfaceInteraction.spawn_origin``).
PASS_EPS = 1e-5


#: Relative sampling weight of the edges of shapes that do not move, where
#: they matter only through other things that move (receivers, apexes).
STATIC_EDGE_WEIGHT = 0.25


def silhouette_weights(scene: Any, sensor: Any = None) -> DiscreteSampler:
    """Edges in proportion to ``length · α/π`` (α the angle between the face
    normals; boundary edges ``α = π``): the probability that an edge is a
    silhouette seen from a random direction. Zero for flat edges. Edges of
    shapes that do not move weigh ``STATIC_EDGE_WEIGHT`` times less while
    only shapes move (a static edge then matters only where it shadows a
    moving receiver or is seen from a moving point), fully when lights or the
    camera move."""
    if sensor is not None:
        m = moves_geometry(scene, sensor)
        static = 1.0 if (m["lights"] or m["sensor"]) else STATIC_EDGE_WEIGHT
        motion = edge_motion_weights(scene, static)
    with dr.suspend_grad():
        geo = scene.edges().geometry(dr.detach(scene.positions))
        length = dr.norm(geo.p1 - geo.p0)
        weight = length * geo.dihedral() * (1.0 / dr.pi)
        if sensor is not None:
            weight = weight * motion
        dr.eval(weight)
    return DiscreteSampler(weight)


#: Per-emitter distributions are kept while ``emitters × edges`` stays below this.
MAX_EMITTER_TABLE = 1 << 24

#: Relative weight of a boundary edge whose shadow falls into the void: the ray
#: from the emitter through its midpoint meets nothing beyond it (the border of
#: a floor or a wall seen from a light in front of it).
VOID_EDGE_WEIGHT = 0.05

#: The per-emitter candidate lists draw a shape first (half in proportion to
#: the sum of its edges' weights, half to their number:
#: ``CandidateLists.DEFENSIVE``), then one of its edges uniformly; False: an
#: edge uniformly (comparisons).
#: A box rotating beside a 65k-face ball (path 5, in a room): the camera's
#: shadow term's variance 1.1e-4 → 7.7e-7, the shadow lines seen from path
#: vertices 6× less; single meshes within noise (BENCHMARKS.md).
GROUP_BY_SHAPE = True


def _void_weights(scene: Any, geo: Any, apex: Any, finite: bool) -> Any:
    """Per edge: ``VOID_EDGE_WEIGHT`` for boundary edges whose shadow, cast
    from ``apex`` (a point, or for ``finite=False`` the direction towards an
    emitter at infinity), meets no surface beyond the edge's midpoint; 1
    otherwise. Boundary edges are silhouettes from everywhere, and long ones
    took most samples of the resampling (its target is the edge's length)
    while their shadows fell nowhere: on a dense sphere in front of a wall
    only one sample in 200 found a shadow line. (A weight, not a cut: an
    edge whose shadow falls beside the ray through its midpoint keeps its
    term.)"""
    mid = geo.p0 + (geo.p1 - geo.p0) * 0.5
    d = dr.normalize(mid - apex) if finite else -apex
    o = mid + d * pass_offset(mid)
    hit = scene.ray_intersect_preliminary(o, d, dr.inf, geo.boundary)[4]
    return dr.select(geo.boundary & ~hit, VOID_EDGE_WEIGHT, 1.0)


def shadow_edge_sampler(scene: Any, sensor: Any) -> Any:
    """Edges that can cast shadows of each emitter: ``(lists, records)`` with
    a :class:`CandidateLists` of one row per emitter and the edges'
    :func:`silhouette_records` (weight: length times motion), or None where a
    single distribution must do.

    An edge is a silhouette seen from an emitter point when that point lies
    on different sides of its two faces' planes. For an area light, the edges
    kept are those whose faces' planes do not both clear the light's bounding
    sphere on the same side (every point of the light sees them as a
    silhouette or might); for a point light the exact silhouettes; for a
    directional light the silhouettes towards its direction; environment maps
    keep the silhouette likelihood ``α/π``. Among the candidates, edges weigh
    their length (times the motion weight of :func:`silhouette_weights`, and
    :func:`_void_weights` for boundary edges whose shadows meet nothing). On
    a dense smooth mesh this keeps the few edges near the silhouette seen from
    the light instead of sampling all of them. Each list is grouped by shape
    (:data:`GROUP_BY_SHAPE`): a shape is drawn by its edges' total weight
    (mixed with their number), then an edge of it uniformly, so that the
    dozen edges of a box are not drowned among a dense mesh's thousands
    beside it."""
    from .sampling import CandidateLists
    edges = scene.edges()
    if not scene.emitters or len(scene.emitters) * edges.count > MAX_EMITTER_TABLE:
        return None
    m = moves_geometry(scene, sensor)
    static = 1.0 if (m["lights"] or m["sensor"]) else STATIC_EDGE_WEIGHT
    motion = edge_motion_weights(scene, static)
    rows = []
    with dr.suspend_grad():
        geo = edges.geometry(dr.detach(scene.positions))
        length = dr.norm(geo.p1 - geo.p0)
        n0, n1 = geo.normals()
        likely = length * geo.dihedral() * (1.0 / dr.pi) * motion
        for k, e in enumerate(scene.emitters):
            if k < len(scene.area_emitters):
                off, count = scene._area_tables[k][0], scene._area_tables[k][1]
                tri = scene.faces_np[off:off + count].astype(np.int64).ravel()
                pts = scene._positions_np[tri]
                lo, hi = pts.min(0), pts.max(0)
                # (Opaque: the light moves in an optimisation; literals recompile.)
                c = bk.Array3f(*[dr.opaque(bk.Float, v) for v in (0.5 * (lo + hi)).tolist()])
                r = dr.opaque(bk.Float, float(0.5 * np.linalg.norm(hi - lo)))
                a = dr.dot(n0, c - geo.p0)
                b = dr.dot(n1, c - geo.p0)
                # Both planes cleared on the same side by the whole sphere: never a silhouette.
                never = ((a > r) & (b > r)) | ((a < -r) & (b < -r))
                rows.append(dr.select(geo.boundary | ~never,
                                      length * motion * _void_weights(scene, geo, c, True), 0.0))
            elif getattr(e, "is_delta", False) and not getattr(e, "is_infinite", False):
                pos = e.sample_direction(bk.Array3f(0.0, 0.0, 0.0), bk.Array2f(0.5, 0.5),
                                         bk.Bool(True))
                c = bk.Array3f(dr.detach(pos.d) * dr.detach(pos.dist))
                rows.append(dr.select(geo.silhouette_from(c),
                                      length * motion * _void_weights(scene, geo, c, True), 0.0))
            elif getattr(e, "is_delta", False):
                ds = e.sample_direction(bk.Array3f(0.0, 0.0, 0.0), bk.Array2f(0.5, 0.5),
                                        bk.Bool(True))
                to_light = dr.detach(ds.d)
                rows.append(dr.select(geo.silhouette_towards(to_light),
                                      length * motion * _void_weights(scene, geo, to_light, False),
                                      0.0))
            else:
                rows.append(dr.select(likely > 0, length * motion, 0.0))
        for row in rows:
            dr.eval(row)
        lists = CandidateLists(rows, edges.np.shape if GROUP_BY_SHAPE else None)
        records = lists.in_list_order(silhouette_records(geo, length * motion), 16)
        # The resampling target of each slot: its row's weight (edges whose
        # shadows fall into the void weigh less).
        items = np.array(lists.items)
        ends = np.cumsum(lists.counts_np)
        target = np.concatenate([np.array(row)[items[end - count:end]] for row, count, end
                                 in zip(rows, lists.counts_np, ends)] or [np.zeros(0)])
        if target.size:
            dr.scatter(records, bk.from_numpy(bk.Float, target.astype(np.float32)),
                       dr.arange(bk.UInt32, target.size) * 16 + 8)
            dr.eval(records)
    return lists, records


#: Candidate edges per shadow sample (resampled importance sampling).
RESAMPLE_CANDIDATES = 8


def silhouette_records(geo: Any, weight: Any) -> Any:
    """Per edge, one 16-float record (a cache line, read with one packet
    gather) for the silhouette test of resampling: the planes of its two faces
    ``(n0, n0·p0, n1, n1·p0)`` — for a boundary edge the second is the first
    flipped, so that every point sees it as a silhouette —, its weight and its
    index (the bits of a UInt32)."""
    n0, n1 = geo.normals()
    n1 = dr.select(geo.boundary, -n0, n1)
    d0, d1 = dr.dot(n0, geo.p0), dr.dot(n1, geo.p0)
    count = dr.width(weight)
    rec = dr.zeros(bk.Float, 16 * count)
    zero = dr.zeros(bk.Float, count)
    index = dr.reinterpret_array(bk.Float, dr.arange(bk.UInt32, count))
    dr.scatter(rec, bk.module.ArrayXf([n0[0], n0[1], n0[2], d0, n1[0], n1[1], n1[2], d1,
                                       bk.Float(weight), index, zero, zero, zero, zero, zero,
                                       zero]), dr.arange(bk.UInt32, count))
    dr.eval(rec)
    return rec


def silhouette_resampled(scene: Any, draw: Any, records: Any, z: Any, to_l: Any, finite: Any,
                         rng: Any, candidates: int = RESAMPLE_CANDIDATES) -> tuple:
    """An edge that is a silhouette seen from the emitter point ``z`` (or from
    direction ``to_l`` where not ``finite``), by resampled importance sampling
    (Talbot et al. 2005): ``candidates`` edges from ``draw(u) -> (slot, pmf)``
    (``slot`` indexes ``records``, :func:`silhouette_records`), one chosen in
    proportion to ``p̂(e) = weight(e) · [silhouette]``. Returns
    the edge and the probability ``p`` whose inverse weights the sample,
    ``1/p = (Σ_i w_i / M) / p̂(e)`` with ``w_i = p̂(e_i) / pmf(e_i)``: an
    unbiased stand-in for ``1/pdf`` (edges that are no silhouette from ``z``
    contribute nothing). Zero where no candidate is one."""
    n = dr.width(rng.state)
    reservoir = Reservoir(n)
    for _ in range(candidates):
        slot, pmf = draw(rng.next_float32())
        r = dr.gather(bk.module.ArrayXf, records, slot, shape=(16, n))
        idx = dr.reinterpret_array(bk.UInt32, r[9])
        # Signed distances of the apex to both faces' planes (for an apex at
        # infinity: the direction's components along the normals).
        w_h = dr.select(finite, 1.0, 0.0)
        apex = dr.select(finite, z, to_l)
        a = r[0] * apex[0] + r[1] * apex[1] + r[2] * apex[2] - r[3] * w_h
        b = r[4] * apex[0] + r[5] * apex[1] + r[6] * apex[2] - r[7] * w_h
        sil = (a * b <= 0) & (pmf > 0)
        reservoir.offer(idx, dr.select(sil, r[8], 0.0), pmf, rng.next_float32())
    return reservoir.result()


class ShadowEdgeChoice:
    """Edges that cast shadow lines of a given emitter point: per-emitter
    candidate lists (:func:`shadow_edge_sampler`), or the silhouette
    likelihood of all edges where no such table fits, then resampled by
    whether each candidate is a silhouette seen from the emitter point
    (:func:`silhouette_resampled`). Shared by the camera's shadow term and
    the shadow lines seen from path vertices (``pathgeo.shadow_sample``)."""

    def __init__(self, scene: Any, sensor: Any, fallback: Any = None) -> None:
        by_emitter = shadow_edge_sampler(scene, sensor)
        self.lists = self.sampler = None
        if by_emitter is not None:
            self.lists, self.records = by_emitter
            self.empty = False
        else:
            self.sampler = fallback if fallback is not None else silhouette_weights(scene, sensor)
            self.empty = self.sampler.empty
            if not self.empty:
                with dr.suspend_grad():
                    geo = scene.edges().geometry(dr.detach(scene.positions))
                    self.records = silhouette_records(geo, self.sampler.weights)

    def choose(self, scene: Any, s1: Any, s2: Any, rng: Any, active: Any) -> tuple:
        """The emitter point of the sample ``(s1, s2)`` (area lights: by area,
        independent of where it is seen from) and an edge that is a silhouette
        seen from it: ``(idx, p)``, ``1/p`` the edge's weight (0 where none)."""
        row = scene.select_emitter(s1)
        # (Opaque: the bounds change as shapes move; literals would recompile.)
        center = bk.Array3f(*[dr.opaque(bk.Float, float(c)) for c in scene.bsphere[0]])
        z, to_l, finite = scene.emitter_position(center, s1, s2, active)
        if self.lists is not None:
            lists = self.lists
            draw = lambda u: lists.draw_slot(row, u)  # noqa: E731
        else:
            draw = self.sampler.sample
        idx, pmf = silhouette_resampled(scene, draw, self.records, z, to_l, finite, rng)
        return idx, dr.select(active, pmf, 0.0)


def edge_motion_weights(scene: Any, static: float) -> Any:
    """Per edge: 1 for edges of shapes whose vertices carry derivatives now,
    ``static`` for the others."""
    import numpy as np
    with dr.resume_grad():
        moving = np.array([bool(dr.grad_enabled(s.world_positions())) for s in scene.shapes])
    table = bk.from_numpy(bk.Float, np.where(moving, 1.0, static).astype(np.float32))
    return dr.gather(bk.Float, table, scene.edges().shape)


def pass_offset(y: Any) -> Any:
    """Distance by which rays are moved off an edge point ``y``."""
    return PASS_EPS * (1.0 + hmax(dr.abs(y)))


#: A surface whose tangent plane passes within this many pass offsets of an
#: edge point touches the edge there (see :func:`touches`).
CONTACT_OFFSETS = 16.0


def touches(a: Any, n_a: Any, y: Any) -> Any:
    """True where edge point ``y`` lies in the tangent plane of surface point
    ``a`` (normal ``n_a``) up to the rays' offsets: a surface that touches the
    edge (a floor under a resting box, the wall meeting a floor in a corner).
    Such a surface hides nothing of the edge (the primary term), and seen from
    it the edge is grazing (``f ∝ cos θ_a = 0``), while a ray leaving the
    (offset) edge point meets it right away for a whole hemisphere of
    directions: edge-first samples there are artefacts of the offsets and are
    dropped by both techniques' weights (``visible.py``)."""
    return dr.abs(dr.dot(n_a, y - a)) <= CONTACT_OFFSETS * pass_offset(y)


def resting_on(scene: Any, geo: Any, prim: Any, receiver: Any, y: Any) -> Any:
    """True where edge point ``y`` rests on the receiver of its shadow, a
    surface of another shape (a pyramid's base edge on a floor): its shadow
    line runs along the contact and moves otherwise (:func:`contact_motion`).
    (Not a mesh's own faces: a smooth mesh's faces next to its terminator
    edges receive ordinary shadow lines, and on a dense mesh they lie within
    the contact tolerance of the edge.)"""
    other = (dr.gather(bk.UInt32, scene.prim_shape, prim) !=
             dr.gather(bk.UInt32, scene.edges().shape, geo.index))
    return other & touches(receiver.p, receiver.n, y)


def contact_motion(y: Any, contact: Any, n_r: Any) -> Any:
    """How the shadow line of an edge point ``y`` (attached) moves where the
    edge rests on its receiver (``contact``, receiver normal ``n_r``):
    sliding, the line stays on the contact (its shadowed side lies under the
    object), and sinking, the line where the receiver cuts the object casts
    it there too; only lifting moves it onto the receiver (a gap opens).
    Central differences average the two ways: half of the motion off the
    receiver. Pyramid on a floor lifted, direct: 0.045 -> 0.015 (dropping
    these samples) and 1.45 (counting them as free edges)."""
    n_r = dr.select(contact, n_r, 0.0)      # (no NaN from lanes not taken, in reverse)
    lift = n_r * dr.dot(n_r, y - dr.detach(y))
    return dr.select(contact, dr.detach(y) + 0.5 * lift, y)


class ShadowEdges(BoundaryTerm):
    name = "shadow"
    budget = "sppse"
    default_share = 0.25
    #: ... where shapes move but the camera sees none of them (an occluder or
    #: an area light out of view: the derivative is shadows and indirect light
    #: only, and the primary term takes no samples). 8 seeds at 32², 512 spp,
    #: error² × time at spp/4 → spp: the PSDR tree rotated 24.6e-3 → 16.0e-3,
    #: translated 80.4e-3 → 62.4e-3, its light moved 15.4e-3 → 6.2e-3, a box
    #: seen only by its inter-reflection (path 3) 0.110e-3 → 0.031e-3, an area
    #: light turning out of view (path 3) 0.028e-3 → 0.017e-3 (BENCHMARKS.md).
    #: Not for lights that are not shapes (a point light moved: the same noise
    #: in 2.4x the time; their shadow lines have no emitter point to draw), nor
    #: where moving things are in view (no single share fits: spp/4 kept).
    unseen_share = 1.0

    def share(self, integrator: Any, scene: Any, sensor: Any) -> float:
        from .primary import camera_sees_motion
        unseen = (moves_geometry(scene, sensor)["shapes"]
                  and not camera_sees_motion(scene, sensor, integrator))
        return self.unseen_share if unseen else self.default_share

    def needed(self, scene: Any, sensor: Any, integrator: Any) -> bool:
        # (A moving camera moves shadow lines over the film too.)
        m = moves_geometry(scene, sensor)
        return ((m["shapes"] or m["lights"] or m["sensor"]) and len(scene.emitters) > 0
                and getattr(integrator, "max_depth", 1) != 1)

    def sample(self, scene: Any, sensor: Any, integrator: Any, rng: Any,
               total: int) -> BoundarySample:
        n = dr.width(rng.state)
        choice = ShadowEdgeChoice(scene, sensor)
        zero = dr.zeros(bk.Float, n)
        if choice.empty:
            return BoundarySample(bk.Array2f(zero, zero), [zero] * 3, dr.zeros(bk.Bool, n))
        edges = scene.edges()
        with dr.suspend_grad():
            # The emitter sample first (its point does not depend on the edge
            # point it is seen from), then an edge that casts its shadows.
            s1, s2 = rng.next_float32(), bk.Array2f(rng.next_float32(), rng.next_float32())
            idx, pmf = choice.choose(scene, s1, s2, rng, dr.full(bk.Bool, True, n))
            t = rng.next_float32()
            geo = edges.geometry(dr.detach(scene.positions), idx)
            e = geo.p1 - geo.p0
            y = dr.fma(e, t, geo.p0)
            # An emitter sample seen from the edge point.
            active = pmf > 0
            d_l, dist_l, pdf_l, weight_l, _ = scene.sample_emitter_direction(y, s1, s2, active)
            d_l, dist_l, weight_l = dr.detach(d_l), dr.detach(dist_l), dr.detach(weight_l)
            finite = ~dr.isinf(dist_l)
            active &= (pdf_l > 0) & (hmax(weight_l) > 0)
            # The edge must be a silhouette seen from the emitter point.
            active &= geo.silhouette_towards(d_l)
            m = geo.face_side(-d_l)              # towards the faces, normal to the plane
            y_pass = y - m * pass_offset(y)
            # Nothing between the edge and the emitter.
            t_max = dr.select(finite, dist_l * (1.0 - 1e-4), dr.inf)
            active &= ~scene.ray_test(y_pass, d_l, t_max, active)
            # The receiver: first surface beyond the edge, away from the emitter.
            _, prim_a, _, _, hit = scene.ray_intersect_preliminary(y_pass, -d_l, dr.inf, active)
            active &= hit & ~scene.bsdf_delta_only(prim_a, hit)
            si_a = scene.compute_interaction(y_pass, -d_l, prim_a, active)
            contact = active & resting_on(scene, geo, prim_a, si_a, y)
            # The camera sees the receiver directly or, on a fraction of the
            # lanes, in a planar mirror (whose image of it is what it projects).
            mirrors = scene.mirror_views()
            p_mirror = MIRROR_FRACTION if mirrors.count else 0.0
            through = rng.next_float32() < p_mirror
            mirror, pmf_m = (mirrors.sample(rng.next_float32()) if p_mirror > 0
                             else (dr.zeros(bk.UInt32, n), dr.ones(bk.Float, n)))
            cam = connect_to_camera(scene, sensor, si_a.p, prim_a, active & ~through)
            si_c, refl = cam.si, dr.ones(bk.Array3f, n)
            a_m, n_m = dr.zeros(bk.Array3f, n), bk.Array3f(0, 0, 1)
            if p_mirror > 0:
                cam_m, refl_m, to_mirror = connect_through_mirror(scene, sensor, si_a.p, prim_a,
                                                                  mirror, active & through)
                a_m, n_m = mirror_plane(scene, mirror, through)
                a_m, n_m = dr.detach(a_m), dr.detach(n_m)
                cam.pos = dr.select(through, cam_m.pos, cam.pos)
                cam.valid = dr.select(through, cam_m.valid, cam.valid)
                refl = dr.select(through, refl_m, refl)
                # The receiver seen from the mirror point.
                si_c.wi = dr.select(through, si_a.to_local(to_mirror), si_c.wi)
                si_c = _receiver_from(si_a, si_c, through)
            active &= cam.valid
            f = scene.eval_bsdf(si_c, si_c.to_local(d_l), active)
            ratio2 = dr.select(finite, dr.square(dist_l / dr.maximum(dist_l + si_a.t, 1e-30)),
                               1.0)
            view_pdf = dr.select(through, p_mirror * pmf_m, 1.0 - p_mirror)
            F = f * weight_l * ratio2 * refl / dr.maximum(view_pdf, 1e-30)
            active &= hmax(dr.abs(F)) > 0
            # Film tangent of the shadow line: the receiver point's motion as y
            # slides along the edge, projected (through the mirror: reflected).
            n_r = si_a.n
            ray = -d_l
            da_dt = e - ray * (dr.dot(n_r, e) / dr.dot(n_r, ray))
            da_dt = dr.select(finite, da_dt * ((dist_l + si_a.t) / dr.maximum(dist_l, 1e-30)), da_dt)
            lit_dir = -m + n_r * dr.dot(m, n_r)
            p_film = dr.select(through, reflect_point(si_a.p, a_m, n_m), si_a.p)
            da_dt = dr.select(through, reflect_vector(da_dt, n_m), da_dt)
            lit_dir = dr.select(through, reflect_vector(lit_dir, n_m), lit_dir)
            ds_dt = sensor.project_differential(p_film, da_dt)
            # The lit side of the line is the side away from the edge's faces (-m).
            lit_left = cross2(ds_dt, sensor.project_differential(p_film, lit_dir)) > 0
            jump = dr.select(lit_left, -F, F)           # F_right - F_left
            scale = dr.select(active, dr.rcp(dr.maximum(pmf, 1e-30)) * per_sample(total), 0.0)
        # Attached: the receiver point where the ray from the (fixed) emitter
        # point through the moving edge point meets the moving receiver.
        y_att = edges.moving_point(scene.positions, idx, t)
        y_att = contact_motion(y_att, contact, dr.detach(si_a.n))
        z_att, to_light, _ = scene.emitter_position(y, s1, s2, active)
        o_att = dr.select(finite, z_att, y_att)
        dir_att = dr.select(finite, y_att - z_att, -to_light)
        a_att = scene.compute_interaction(o_att, dir_att, prim_a, active).p
        if p_mirror > 0:
            a_mirror, n_mirror = mirror_plane(scene, mirror, active & through)
            a_att = dr.select(through, reflect_point(a_att, a_mirror, n_mirror), a_att)
        s_att, _ = sensor.project(a_att)
        velocity = cross2(ds_dt, s_att - cam.pos)
        value = [dr.detach(jump[c] * scale) * velocity for c in range(3)]
        return BoundarySample(cam.pos, value, active)


def _receiver_from(si_a: Any, si_c: Any, through: Any) -> Any:
    """The receiver's interaction: from the camera ray (direct view), or the
    one found from the edge with ``wi`` already set (seen in a mirror)."""
    out = si_a
    out.wi = si_c.wi
    for name in ("p", "n", "sh_n", "uv", "prim", "shape", "bary", "dp_du", "dp_dv"):
        if getattr(si_a, name) is not None:      # (tangents: only for some BSDFs)
            setattr(out, name, dr.select(through, getattr(si_a, name), getattr(si_c, name)))
    return out
