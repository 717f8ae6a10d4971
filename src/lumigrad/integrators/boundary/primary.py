"""Primary visibility: edges seen directly by the camera.

A pixel is ``I_p = ∫ h_p(s) L(s) ds`` over film positions ``s`` (pixels),
``h_p`` the pixel's normalised reconstruction filter and ``L(s)`` the radiance
along the camera ray through ``s``. ``L`` jumps where that ray grazes an
edge: a silhouette seen from the camera (its two faces face opposite ways),
a boundary edge of an open mesh, or a crease whose faces shade differently
(flat shading, texture or material seams: these jump even where both faces
are visible). Such an edge projects to a segment ``s(t)`` of the film, and
the boundary term of ``dI_p/dθ`` is

    ∫ h_p(s(t)) [L_right − L_left] (ds/dt × ∂s/∂θ) dt

(edge sampling, Li et al. 2018, "Differentiable Monte Carlo Ray Tracing
through Edge Sampling", ACM TOG 37(6)): ``ds/dt × ∂s/∂θ`` (2-D cross product)
is the normal velocity of the projected edge times its length element, and
``L_right − L_left`` the jump from its left to its right side (left: ``ds/dt``
turned by +90°). ``s = project(y(t))`` is computed attached to the vertices
and to the camera (``sensor.project``), so the one expression covers moving
vertices and transforms as well as camera translation, rotation and field of
view; the film position of the interior estimator's camera rays is fixed, as
the formula requires.

Sampling: edges are classified per render from the camera position (boundary,
silhouette, or non-smooth crease), clipped to the view frustum (widened by
the filter's radius), and one is chosen in proportion to its projected length,
then a point uniformly in its clipped parameter range. ``L_left``/``L_right``
are the integrator's own radiance estimates along camera rays through film
points ``EPS_PX`` pixels either side of the edge, with the same random
numbers on both sides (their difference then has little noise where the two
sides see similar light, e.g. at creases). Edges hidden behind other surfaces
give two equal radiances and nothing else.
"""
from __future__ import annotations

import math
from typing import Any

import drjit as dr

from ... import backend as bk
from ...core.math import hmax
from ...geometry.edges import EdgeGeometry, safe_normalize
from . import BoundarySample, PrimaryPart, moves_geometry, per_sample, view_key
from .sampling import DiscreteSampler, clip_to_frustum, cross2, perp
from .views import (detach_apex, in_film, mirror_plane, reflect_apex, reflect_point,
                    reflect_vector, widened_length)

#: Samples per film pixel (times the budget) of edges seen in planar mirrors.
MIRROR_PIXELS = 0.5

#: Film offset (pixels) of the two rays that measure the radiance on either
#: side of an edge. It must be small against the distance between edges on
#: the film: near the silhouette of a dense smooth mesh, faces are seen edge-on
#: and several edges project within 1e-3 pixel of each other (a "fan"); rays
#: wider than the fan measure the silhouette's jump once per edge. It is
#: raised where the scene's coordinates make float32 rays coarser:
#: ``RAY_ULPS`` units in the last place of the ray origin's and the edge
#: point's coordinates, seen at the edge point's distance. It is lowered (to
#: ``SLIVER_SHARE`` of the width) where a face of the edge projects to a
#: sliver narrower than the offset: a dense smooth mesh seen small (a 5k-face
#: sphere 7 pixels across: its silhouette's faces are 1e-4 pixel wide, and
#: the offset of 1e-4 made the term depend on the resolution, 20 % off at 32²).
EPS_PX = 1e-4
RAY_ULPS = 2.0
MIRROR_EPS_PX = 5e-3
SLIVER_SHARE = 1e-3

#: Smooth faces beside a silhouette or crease: their side's radiance is
#: taken at the edge point (:func:`_edge_point_on_face`); False: along the
#: film-offset ray (comparisons).
FACE_SIDE_AT_EDGE = True

#: Interior edges whose faces meet at less than this angle (radians) are flat:
#: their faces shade alike, and they matter only as silhouettes.
FLAT_ANGLE = 1e-4


def occluded(scene: Any, o: Any, d: Any, y: Any, geo: EdgeGeometry, active: Any) -> Any:
    """True where something other than the edge's own faces lies on the ray
    from ``o`` (direction ``d``) before the edge point ``y``. (A relative
    margin would let a surface just in front of the edge through: a fold of a
    bumpy silhouette hides edges by a hair, and their side rays then measure
    the visible silhouette's jump a second time.)"""
    from .shadow import touches
    dist = dr.norm(y - o)
    t, prim, _, _, hit = scene.ray_intersect_preliminary(o, d, dist * (1.0 + 1e-4), active)
    own = (prim == dr.detach(geo.f0)) | (prim == dr.detach(geo.f1))
    # A surface the edge lies on (a box resting on a floor) is met at the
    # edge point itself, not in front of it: it hides nothing.
    si = scene.compute_interaction(o, d, prim, active & hit & ~own)
    return active & hit & ~own & (t < dist * (1.0 - 1e-6)) & ~touches(si.p, si.n, y)


def geo_d_all(scene: Any, idx: Any) -> EdgeGeometry:
    return scene.edges().geometry(dr.detach(scene.positions), idx)


def side_hits(scene: Any, sensor: Any, geo: EdgeGeometry, s: Any, ds_dt: Any, o: Any,
              dist_y: Any, active: Any) -> tuple:
    """What each side of an edge's film image shows first, for the rays that
    measure the jump: ``(first_left, first_right, start_left, start_right)``.

    A side where a face of the edge lies (its third vertex projects there) is
    shown that face: of the faces on that side, the one nearer the camera
    along the ray through the edge point's side (``first_*`` = its triangle; a
    crease has one face on each side, a silhouette both on one). The other side
    shows what lies past the edge: ``first_* = NO_FACE`` and its ray starts a
    hair beyond the edge point (``start_*``, a distance along the ray)."""
    from ...geometry.edges import NO_FACE
    n = dr.width(s[0])
    none = dr.full(bk.UInt32, NO_FACE, n)
    q0, _ = sensor.project(geo.q0)
    q1, _ = sensor.project(geo.q1)
    left0 = cross2(ds_dt, q0 - s) > 0
    left1 = cross2(ds_dt, q1 - s) > 0
    has1 = ~geo.boundary
    # Where both faces lie on one side (a silhouette), the visible one is the
    # one a ray just inside that side meets first: compare the distances to
    # the two faces' planes along a ray aimed a little into the faces (both
    # planes contain the edge, so a ray through the edge cannot tell).
    n0, n1 = geo.normals()
    y = geo.p0 + (geo.p1 - geo.p0) * 0.5
    target = y + ((geo.q0 + geo.q1) * 0.5 - y) * 0.01
    a, w = detach_apex(sensor.apex())
    if w:
        d = dr.normalize(target - o)
    else:
        # (An orthographic camera: the ray along its axis through the target.)
        d = -a
        o = target - d * dist_y
    t0 = dr.dot(n0, geo.p0 - o) / dr.dot(n0, d)
    t1 = dr.dot(n1, geo.p0 - o) / dr.dot(n1, d)
    t0 = dr.select(t0 > 0, t0, dr.inf)
    t1 = dr.select(t1 > 0, t1, dr.inf)
    f1_first = has1 & (t1 < t0)

    def pick(on_side0: Any, on_side1: Any) -> Any:
        both = on_side0 & on_side1
        f = dr.select(on_side0, geo.f0, none)
        f = dr.select(on_side1 & ~on_side0, geo.f1, f)
        return dr.select(both & f1_first, geo.f1, f)

    first_l = pick(left0, has1 & left1)
    first_r = pick(~left0, has1 & ~left1)
    beyond = dist_y * (1.0 + 1e-4)
    start_l = dr.select(active & (first_l == NO_FACE), beyond, 0.0)
    start_r = dr.select(active & (first_r == NO_FACE), beyond, 0.0)
    first_l = dr.select(active, first_l, none)
    first_r = dr.select(active, first_r, none)
    return first_l, first_r, start_l, start_r


def _resting_surface(scene: Any, geo: EdgeGeometry, y: Any, pass_ray: tuple, first: Any,
                     own_hit: Any, active: Any) -> tuple:
    """``(rests, normal)``: where the surface that the passing side of a
    silhouette sees first touches the edge point ``y`` (a box on a floor: the
    edge rests on it), and that surface's normal. ``first``: the passing ray's
    first triangle where known (:func:`_pass_start`); where the ray met the
    edge's own faces first (``own_hit``: it starts past the edge), it is
    traced again from there."""
    from ...geometry.edges import NO_FACE
    from .shadow import touches
    o, d, start = pass_ray
    o = o + d * start
    _, prim_again, _, _, hit = scene.ray_intersect_preliminary(o, d, dr.inf, active & own_hit)
    prim = dr.select(own_hit, dr.select(hit, prim_again, NO_FACE), first)
    on = active & (prim != NO_FACE) & (prim != geo.f0) & (prim != geo.f1)
    si = scene.compute_interaction(o, d, prim, on)
    rests = on & touches(si.p, si.n, y)
    return rests, dr.select(rests, si.n, 0.0)


def _face1_shares(geo: EdgeGeometry, apex: Any, silhouette: Any, rests: Any) -> tuple:
    """How an edge moves where one face's copy of split vertices moves alone
    (``vertex_positions`` of one corner of one face of Mitsuba's ``cube``):
    the weights of face ``f1``'s copy in
    :meth:`~lumigrad.geometry.edges.EdgeTopology.moving_point` for the
    radiance of the face side and for that of the side that passes the edge.

    The image is not differentiable there, and central differences average
    the two one-sided derivatives. At a silhouette, the face seen (``F``)
    extends or retreats; the face turned away (``B``) extends beyond the
    outline, seen from behind (black for one-sided materials), or retreats
    behind ``F``: so ``F``'s radiance moves with ``F``'s copy and what the
    passing side sees with the mean of both copies (exact for one-sided
    materials: ``v_F L_F − ½ (v_F + v_B) L_pass``). Where the edge rests on a
    surface seen past it (a box on a floor), ``B`` lies behind that surface
    wherever it moves: both with ``F``'s copy. At creases (both faces seen)
    and through mirrors: the mean of both copies for both."""
    mean = dr.select(geo.boundary, 0.0, 0.5)
    face = dr.select(silhouette, geo.front_share(apex), mean)
    return face, dr.select(rests, face, mean)


def _contact_displacements(geo: EdgeGeometry, share_face: Any, delta: Any, n_s: Any) -> tuple:
    """Where a silhouette edge rests on a surface (normal ``n_s``), split the
    edge point's displacement ``delta`` (attached, zero in value) into
    ``(sliding, lifting, clipped)``: the part along the surface (the contact
    line slides with it), the part off the surface (the edge itself moves;
    one way a gap opens under it, the other way the surface cuts the face),
    and how far that part moves the line where the surface cuts the face
    seen (``F``): ``(n_F · δ_n) / (n_F · τ) τ`` with ``τ`` the direction in the
    surface across the line. (A vertical face moved straight up or down:
    the cut stays where it is.)"""
    n0, n1 = geo.normals()
    n_f = dr.select(share_face > 0.5, n1, n0)
    lifting = n_s * dr.dot(n_s, delta)
    sliding = delta - lifting
    # (safe_normalize: an edge along the normal, touching with one end, must
    # not put a NaN into the reverse pass through the branch not taken.)
    tau = safe_normalize(dr.cross(n_s, geo.p1 - geo.p0))
    across = dr.dot(n_f, tau)
    # (A face nearly parallel to the surface: its cut runs off; bounded.)
    across = dr.select(dr.abs(across) > 0.05, across, dr.select(across < 0, -0.05, 0.05))
    clipped = tau * (dr.dot(n_f, lifting) / across)
    return sliding, lifting, clipped


def _sliver_width(sensor: Any, geo: EdgeGeometry, s: Any, n_left: Any) -> Any:
    """Film distance (pixels) from the edge's image (through ``s``, unit normal
    ``n_left``) to the image of its faces' third vertices: the width of the
    narrower face as the camera sees it (inf for a face behind the camera)."""
    widths = []
    for q, present in ((geo.q0, True), (geo.q1, ~geo.boundary)):
        sq, front = sensor.project(q)
        widths.append(dr.select(present & front, dr.abs(dr.dot(n_left, sq - s)), dr.inf))
    return dr.minimum(widths[0], widths[1])


def _pass_start(scene: Any, geo: EdgeGeometry, o: Any, d: Any, tmax: Any, beyond: Any,
                first: Any) -> tuple:
    """``(start, first)`` of a side ray that passes an edge (``beyond > 0``):
    it starts at 0 unless its first hit is one of the edge's own faces
    (rounding), then at ``beyond``; where it starts at 0 and hits, that hit is
    its first triangle (the radiance estimate need not trace the ray again).
    Other rays keep ``first``."""
    passing = beyond > 0
    _, prim, _, _, hit = scene.ray_intersect_preliminary(o, d, tmax, passing)
    own = (prim == dr.detach(geo.f0)) | (prim == dr.detach(geo.f1))
    return (dr.select(passing & hit & own, beyond, 0.0),
            dr.select(passing & hit & ~own, prim, first))


def film_length(sensor: Any, geo: EdgeGeometry) -> tuple:
    """``(length, interval)``: the film length (pixels) of the part of each
    edge inside the view frustum (widened by the filter's radius), and that
    part's parameter interval (``clip_to_frustum``)."""
    iv = clip_to_frustum(sensor, geo.p0, geo.p1, sensor.film.rfilter.radius)
    e = geo.p1 - geo.p0
    a, b = geo.p0 + iv.lo * e, geo.p0 + iv.hi * e
    s0, _ = sensor.project(a)
    s1, _ = sensor.project(b)
    return widened_length(sensor, a, b, dr.norm(s1 - s0)), iv


def _edge_point_on_face(scene: Any, geo: EdgeGeometry, y: Any, face: Any, active: Any) -> Any:
    """Barycentrics of edge point ``y`` on ``face`` (:func:`_bary_on_face`)
    where ``face`` is smooth-shaded; ``(-1, -1)`` elsewhere and where not
    ``active`` (the side ray's own hit). A smooth face side's radiance is taken
    at the edge point itself, not where a ray offset on the film meets the
    face: on a face seen edge-on that is far from the edge, past a shading rim
    hundredths of a pixel wide, which the rim term counts where the rim ends,
    so both must see it (:func:`.rims.rim_sides_at_point`; the PSDR bunny's
    back rotating: its silhouette's jump counted twice, a crop of it 0.11 ->
    0.013). Flat faces and edges resting on a surface keep the offset: flat
    shading is continuous up to the edge, and a point on an edge that rests on
    a floor is a poor start for paths (rays leaving it slip under the floor:
    a resting box, path traced, 0.17 at the edge point)."""
    active = active & dr.gather(bk.Bool, scene.shape_smooth,
                                dr.gather(bk.UInt32, scene.prim_shape, face, active), active)
    return dr.select(active, _bary_on_face(scene, geo, y, face, active),
                     bk.Array2f(-1.0, -1.0))


def _bary_on_face(scene: Any, geo: EdgeGeometry, y: Any, face: Any, active: Any) -> Any:
    """Barycentrics of edge point ``y`` on ``face``, one of the edge's two, by a
    ray along the face's normal (well conditioned, unlike a grazing one)."""
    n0, n1 = geo.normals()
    n_face = dr.select(face == geo.f1, n1, n0)
    return scene.compute_interaction(y + n_face, -n_face, face, active).bary


def _mirror_face_at_edge(integrator: Any, scene: Any, sensor: Any, rng: Any, geo: EdgeGeometry,
                         apex: Any, y: Any, si_m: Any, org: Any, s: Any, ds_dt: Any,
                         active: Any, L_left: list, L_right: list) -> tuple:
    """A silhouette seen in a planar mirror: its face side's radiance taken
    at the edge point itself (the face seen from the camera's mirror image,
    looked at from the mirror point, times the mirror's reflectance), not
    along a camera ray offset on the film (``MIRROR_EPS_PX``: those cannot
    force their first hit): on a smooth mesh the face side lies in a shading
    rim hundredths of a pixel wide, which the rim term counts where the rim
    ends, so both must see it (:func:`.rims.rim_sides_at_point`)."""
    from .views import mirror_reflectance, reflect_point
    share = geo.front_share(apex)                  # 1: f1 faces the apex, ½: a crease
    on = active & ~geo.boundary & (share != 0.5)   # a silhouette, not a crease
    front1 = share > 0.5
    face = dr.select(front1, geo.f1, geo.f0)
    q_face = dr.select(front1, geo.q1, geo.q0)
    a_m, n_m = si_m.p, si_m.n
    q_film, _ = sensor.project(reflect_point(q_face, a_m, n_m))
    face_left = cross2(ds_dt, q_film - s) > 0
    d_in = dr.normalize(y - org)
    L_face = integrator.radiance(scene, rng, y - d_in, d_in, dr.inf, on,
                                 dict(depth=1, prev_p=si_m.p, prev_pdf=0.0, prev_delta=True),
                                 first_prim=face, first_bary=_bary_on_face(scene, geo, y, face, on))
    refl = mirror_reflectance(scene, si_m, on)
    L_face = [lf * r for lf, r in zip(L_face, refl)]
    L_left = [dr.select(on & face_left, lf, l) for lf, l in zip(L_face, L_left)]
    L_right = [dr.select(on & ~face_left, lf, r) for lf, r in zip(L_face, L_right)]
    return L_left, L_right


def candidate_edges(geo: EdgeGeometry, apex: Any) -> Any:
    """Edges that may be discontinuities seen from ``apex``: boundary edges,
    silhouettes, and creases (unless the shading is smooth across them)."""
    crease = ~geo.smooth & (geo.dihedral() > FLAT_ANGLE)
    return geo.boundary | geo.silhouette_from(apex) | crease


class PrimaryEdges(PrimaryPart):

    def needed(self, scene: Any, sensor: Any, integrator: Any) -> bool:
        m = moves_geometry(scene, sensor)
        return m["shapes"] or m["sensor"]

    def sample_count(self, scene: Any, sensor: Any, integrator: Any, budget: int) -> int:
        """``budget`` samples per pixel of projected edge length (the length of
        the candidate edges on the film): each pixel an edge crosses gets about
        as many edge samples as the interior gives it. In scenes with planar
        mirrors, edges seen in them get ``budget · MIRROR_PIXELS`` samples per
        pixel of the film on top (what a mirror shows is not known before
        sampling)."""
        sampler, _, _ = self.distribution(scene, sensor)
        _seen_motion(scene, sensor, sampler.total > 0 or scene.mirror_views().count > 0)
        direct = int(math.ceil(budget * sampler.total))
        mirrored = 0
        if scene.mirror_views().count:
            w, h = sensor.resolution
            mirrored = int(math.ceil(budget * w * h * MIRROR_PIXELS))
        self._mirror_share = mirrored / max(direct + mirrored, 1)
        return direct + mirrored

    def _distribution(self, scene: Any, sensor: Any) -> tuple:
        # Edges of shapes that do not move stay where they are on the film
        # unless the camera moves: their term is zero.
        from .shadow import edge_motion_weights
        moving = None if moves_geometry(scene, sensor)["sensor"] else \
            edge_motion_weights(scene, 0.0) > 0
        with dr.suspend_grad():
            edges = scene.edges()
            geo = edges.geometry(dr.detach(scene.positions))
            apex = detach_apex(sensor.apex())
            cand = candidate_edges(geo, apex)
            if moving is not None:
                cand &= moving
            length, iv = film_length(sensor, geo)
            weight = dr.select(cand & ~iv.empty, length, 0.0)
            lo, hi = iv.lo, iv.hi
            dr.eval(weight, lo, hi)
        return DiscreteSampler(weight), lo, hi

    def sample(self, scene: Any, sensor: Any, integrator: Any, rng: Any,
               total: int) -> BoundarySample:
        n = dr.width(rng.state)
        sampler, t_lo, t_hi = self.distribution(scene, sensor)
        mirrors = scene.mirror_views()
        p_mirror = getattr(self, "_mirror_share", 0.0) if mirrors.count else 0.0
        if sampler.empty and p_mirror == 0.0:
            zero = dr.zeros(bk.Float, n)
            return BoundarySample(bk.Array2f(zero, zero), [zero] * integrator.channels,
                                  dr.zeros(bk.Bool, n))
        with dr.suspend_grad():
            # Edges the camera sees directly (projected length), or, on a
            # fraction of the lanes, edges seen in a planar mirror.
            through = rng.next_float32() < p_mirror
            u_e, u_t = rng.next_float32(), rng.next_float32()
            idx, pdf = dr.zeros(bk.UInt32, n), dr.zeros(bk.Float, n)
            t = dr.zeros(bk.Float, n)
            if not sampler.empty:
                idx, pmf = sampler.sample(u_e)
                lo = dr.gather(bk.Float, t_lo, idx)
                hi = dr.gather(bk.Float, t_hi, idx)
                t = dr.lerp(lo, hi, u_t)
                pdf = pmf / (hi - lo) * (1.0 - p_mirror)
            mirror = dr.zeros(bk.UInt32, n)
            if p_mirror > 0:
                from .shadow import silhouette_weights
                sil = silhouette_weights(scene, sensor)
                mirror, pmf_m = mirrors.sample(rng.next_float32())
                if not sil.empty:
                    idx_m, pmf_e = sil.sample(u_e)
                    idx = dr.select(through, idx_m, idx)
                    t = dr.select(through, u_t, t)
                    pdf = dr.select(through, p_mirror * pmf_m * pmf_e, pdf)
                else:
                    pdf = dr.select(through, 0.0, pdf)
        # Attached edge point and its film position (seen in the mirror: the
        # projection of its mirror image).
        geo = scene.edges().geometry(scene.positions, idx)
        y = dr.fma(geo.p1 - geo.p0, t, geo.p0)
        a_m, n_m = mirror_plane(scene, mirror, through)
        y_film = dr.select(through, reflect_point(y, a_m, n_m), y)
        s_att, in_front = sensor.project(y_film)
        with dr.suspend_grad():
            s = dr.detach(s_att)
            e = dr.detach(geo.p1 - geo.p0)
            e_film = dr.select(through, reflect_vector(e, dr.detach(n_m)), e)
            ds_dt = sensor.project_differential(dr.detach(y_film), e_film)
            len_dt = dr.norm(ds_dt)
            valid = in_front & (len_dt > 0) & (pdf > 0) & in_film(sensor, s)
            n_left = perp(ds_dt) / dr.maximum(len_dt, 1e-30)
            w, h = sensor.resolution
            inv = bk.Array2f(dr.opaque(bk.Float, 1.0 / w), dr.opaque(bk.Float, 1.0 / h))
            # The edge point must be what the camera sees there: where edges
            # overlap on the film, a hidden edge's side rays would measure the
            # jump of the visible one.
            o, d, tmax = sensor.sample_ray(s * inv)
            y_d = dr.detach(y)
            direct = valid & ~through
            valid &= ~(direct & occluded(scene, o, d, y_d, geo, direct))
            # In a mirror: the camera ray must hit the mirror first, the edge must
            # be a silhouette or crease seen from the camera's mirror image, and
            # nothing may lie between the mirror point and the edge point.
            seen = valid & through
            _, prim_c, _, _, hit = scene.ray_intersect_preliminary(o, d, tmax, seen)
            seen &= hit & (prim_c == mirror)
            apex = reflect_apex(detach_apex(sensor.apex()), dr.detach(a_m), dr.detach(n_m))
            geo_d = scene.edges().geometry(dr.detach(scene.positions), idx, seen)
            seen &= candidate_edges(geo_d, apex)
            si_m = scene.compute_interaction(o, d, prim_c, seen)
            to_y = y_d - si_m.p
            org = si_m.spawn_origin(to_y)
            seen &= ~scene.ray_test(org, dr.normalize(y_d - org),
                                    dr.norm(y_d - org) * (1.0 - 1e-3), seen)
            valid = dr.select(through, seen, valid)

            # Offset: EPS_PX, or RAY_ULPS ulps of the coordinates seen at the
            # edge point's distance, whichever is larger. (Through a mirror,
            # where the side rays' first hits cannot be forced: MIRROR_EPS_PX.)
            dist_y = dr.norm(y_d - o)
            ulp = dr.maximum(hmax(dr.abs(y_d)), hmax(dr.abs(o))) * (RAY_ULPS * 2.0 ** -23)
            geo_sides = geo_d_all(scene, idx)
            eps = dr.minimum(EPS_PX, SLIVER_SHARE * _sliver_width(sensor, geo_sides, s, n_left))
            eps = dr.maximum(eps, ulp / dr.maximum(sensor.pixel_size(dist_y), 1e-30))
            eps = dr.select(through, MIRROR_EPS_PX, eps)
            first_l, first_r, start_l, start_r = side_hits(scene, sensor, geo_sides,
                                                           s, ds_dt, o, dist_y, ~through & valid)
            o_l, d_l, t_l = sensor.sample_ray((s + eps * n_left) * inv)
            o_r, d_r, t_r = sensor.sample_ray((s - eps * n_left) * inv)
            # A side without a face of the edge sees what lies beyond it: where
            # rounding makes its ray hit the edge's own faces, it starts past
            # the edge point (not always: a surface the edge rests on, a
            # floor under a box, is met right at the edge); a side with a
            # face hits that face.
            passing_l, passing_r = start_l > 0, start_r > 0
            start_l, first_l = _pass_start(scene, geo_sides, o_l, d_l, t_l, start_l, first_l)
            start_r, first_r = _pass_start(scene, geo_sides, o_r, d_r, t_r, start_r, first_r)
            silhouette = valid & ~through & (passing_l | passing_r)
            rests, n_rest = _resting_surface(
                scene, geo_sides, y_d,
                (dr.select(passing_l, o_l, o_r), dr.select(passing_l, d_l, d_r),
                 dr.select(passing_l, start_l, start_r)),
                dr.select(passing_l, first_l, first_r),
                dr.select(passing_l, start_l, start_r) > 0, silhouette)
            share_face, share_pass = _face1_shares(geo_sides, o, silhouette, rests)
            o_l = o_l + d_l * start_l
            o_r = o_r + d_r * start_r
            at_edge = {}
            if (FACE_SIDE_AT_EDGE and getattr(integrator, "rim_sides_at_point", False)
                    and scene.has_normals):
                free = valid & ~through & ~rests
                at_edge["first_bary"] = (_edge_point_on_face(scene, geo_sides, y_d, first_l,
                                                             free & ~passing_l),
                                         _edge_point_on_face(scene, geo_sides, y_d, first_r,
                                                             free & ~passing_r))
            L_left, L_right = integrator.radiance_pair(
                scene, rng, (o_l, d_l, t_l - start_l), (o_r, d_r, t_r - start_r), valid,
                first_prims=(first_l, first_r), **at_edge)
            if getattr(integrator, "rim_sides_at_point", False) and p_mirror > 0:
                L_left, L_right = _mirror_face_at_edge(
                    integrator, scene, sensor, rng, geo_d, apex, y_d, si_m, org, s, ds_dt,
                    valid & through, L_left, L_right)
            scale = dr.select(valid, dr.rcp(dr.maximum(pdf, 1e-30)) * per_sample(total), 0.0)
        # Zero in value, attached: the normal velocity of the edge's image, as
        # the face beside it moves and as what passes it sees it move (they
        # differ only where one face's copies of split vertices move alone).
        def moving(share: Any) -> Any:
            y_moving = scene.edges().moving_point(scene.positions, idx, t, share)
            return dr.select(through, reflect_point(y_moving, a_m, n_m), y_moving)

        def velocity(y_moving: Any) -> Any:
            s_att, _ = sensor.project(y_moving)
            return cross2(ds_dt, s_att - s)
        y_face = moving(share_face)
        v_face, v_pass = velocity(y_face), velocity(moving(share_pass))
        # An edge resting on a surface (a box on a floor) moved off it or into
        # it: one way a gap opens (the face's radiance gives way to what the
        # gap shows: nothing, for a gap of zero width), the other way the
        # surface cuts the face along a line that moves otherwise; central
        # differences average the two.
        y_det = dr.detach(y_face)
        sliding, lifting, clipped = _contact_displacements(
            geo_sides, share_face, y_face - y_det, n_rest)
        # (One point per side: each projection carries the camera's own motion.)
        v_face = dr.select(rests, velocity(y_det + sliding + 0.5 * (lifting + clipped)), v_face)
        v_pass = dr.select(rests, velocity(y_det + sliding + 0.5 * clipped), v_pass)
        v_l = dr.select(passing_l, v_pass, v_face)
        v_r = dr.select(passing_r, v_pass, v_face)
        value = [dr.detach(r * scale) * v_r - dr.detach(l * scale) * v_l
                 for l, r in zip(L_left, L_right)]
        return BoundarySample(s, value, valid)


def camera_sees_motion(scene: Any, sensor: Any, integrator: Any) -> bool:
    """Whether the camera sees something that moves now, directly or in a
    planar mirror: the primary term (:class:`PrimaryEdges`) has edges to
    sample. False where only lights that are not shapes move, or where the
    moving shapes lie out of view (their derivative is then all shadows and
    indirect light). Kept on the scene until its vertices, the camera or the
    set of moving shapes change (the primary term leaves its answer there)."""
    term = PrimaryEdges()
    if not term.needed(scene, sensor, integrator):
        return False
    from . import table_view
    view = table_view(sensor)
    seen = _seen_motion(scene, view)
    if seen is None:
        seen = term.sample_count(scene, view, integrator, 1.0) > 0
    return seen


def _seen_motion(scene: Any, view: Any, seen: Any = None) -> Any:
    """The answer of :func:`camera_sees_motion` kept on ``scene`` for ``view``
    (the sensor's table view) as things are now: stored where ``seen`` is
    given, else read (None if not known)."""
    with dr.resume_grad():
        moving = tuple(bool(dr.grad_enabled(s.world_positions())) for s in scene.shapes)
    key = view_key(scene, view) + (moving, moves_geometry(scene, view)["sensor"])
    if seen is not None:
        scene._camera_sees_motion = (key, bool(seen))
        return bool(seen)
    cached = getattr(scene, "_camera_sees_motion", None)
    return cached[1] if cached is not None and cached[0] == key else None
