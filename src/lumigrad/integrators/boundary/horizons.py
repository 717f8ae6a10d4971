"""Smooth edges seen by the camera: the surface's own horizon under smooth shading.

With interpolated (smooth) vertex normals the shading of a mesh is continuous
across its edges, but the light reaching a point is not: directions below the
plane of the face the point lies on are blocked by the surface itself (a shadow
ray or a bounce leaves into the mesh), while the shading normal may still face
them (the "shadow terminator" of coarse smooth meshes). Across an edge whose
faces have normals ``n0`` and ``n1`` the radiance towards the camera therefore
jumps by the light arriving through the lune between the two planes,

    J = L0 − L1 = ∫_{S²} f(wi, ω) L(ω) ([ω·n0 > 0] − [ω·n1 > 0]) dω

(``f`` the BSDF at the edge point, cosine included, the same on both faces:
the shading is continuous), and the edge's image moves with the mesh: a
boundary term of the pixel integral exactly as a crease's (``primary.py``),

    ∫ h_p(s(t)) [L_right − L_left] (ds/dt × ∂s/∂θ) dt.

Flat shading has no such jump (``f`` vanishes where the lit side ends), nor
has a silhouette's hidden face. Without this term, PSDR's bunny (5k faces,
smooth) translated under an area light was off by 0.04 (block relative L1)
beyond its noise, and a coarse smooth sphere under a directional light by 0.08.

Sampling: candidate edges (smooth, interior, both faces turned to the camera,
moving) in proportion to their projected length times ``δ²``, ``δ`` the angle
between their faces' normals (the lune spans ``4 δ`` of solid angle, and the
shading normal sees it within ``~δ`` of grazing: the jump is ``O(δ²)``, and a
pixel crosses ``O(1/δ)`` edges, so the term vanishes like ``δ`` on refined
meshes), a point uniformly on the edge; then a direction uniformly in the
lune (``z`` uniform along the edge, the angle about it uniform over either
wedge) and the radiance arriving along it (the integrator's estimate, its
emission counted), plus, for delta lights (a point or directional light lies
in the lune or not), the emitter sample of next-event estimation where it falls
in the lune. Edges seen in planar mirrors are sampled the same way on each
mirror plane's image of the camera (:class:`.views.MirroredView`), their jump
times the mirror's reflectance (a coarse smooth ball under a directional light
seen only in a mirror: 1.05 without, 0.15 with, the noise of that budget).
Budget: a share of ``sppe``.
"""
from __future__ import annotations

import math
from typing import Any

import drjit as dr

from ... import backend as bk
from ...core.math import hmax
from ...geometry.edges import apex_range, safe_normalize
from . import (BoundarySample, BoundaryTerm, PrimaryPart, moves_geometry, per_sample,
               smooth_shading_moves)
from .primary import FLAT_ANGLE, film_length, occluded
from .sampling import DiscreteSampler, cross2
from .views import (MirroredView, camera_views, detach_apex, film_to_unit,
                    in_film, mirror_reflectance, pick_view, ray_into_view, reflect_point,
                    reflect_vector, triangle_slack, view_planes)

#: "No triangle" for a forced first hit (``radiance(first_prim=...)``).
NO_HIT = 0xFFFFFFFF

#: Samples per pixel of projected edge length per squared radian between the
#: faces' normals (times the budget).
SAMPLES_PER_RADIAN2 = 4.0

#: Samples per pixel of projected area per unit of ``sin α``, the largest angle
#: between a triangle's vertex normals and its plane's normal (times the budget).
SAMPLES_PER_DEVIATION = 2.0


class SmoothEdgeHorizons(PrimaryPart):
    """Part of the ``primary`` term (budget ``sppe``): see the module docstring."""

    #: distinguishes its random numbers from the other primary parts'
    seed_salt = 0x48

    def needed(self, scene: Any, sensor: Any, integrator: Any) -> bool:
        # (normals alone: the lunes do not move, the planes are the faces')
        return smooth_shading_moves(scene, sensor, integrator, normals=False)

    def sample_count(self, scene: Any, sensor: Any, integrator: Any, budget: float) -> int:
        total = sum(sampler.total for _, sampler, _, _ in self.distribution(scene, sensor))
        return int(math.ceil(budget * total * SAMPLES_PER_RADIAN2))

    #: Smooth edges seen in planar mirrors are sampled too (each mirror
    #: plane's image of the camera, ``views.MirroredView``).
    through_mirrors = True

    def _distribution(self, scene: Any, sensor: Any) -> list:
        """Per view (the camera, and each planar mirror plane's image of it):
        ``(mirror, sampler, t_lo, t_hi)``, the smooth interior edges whose two
        faces the view's apex sees from the front, weighted by the projected
        length of their part inside the frustum (as the mirror shows them)
        times the square of the normals' angle ``δ`` (the lune spans ``4 δ``
        and the shading seen through it is within ``~δ`` of grazing, so the
        jump is ``O(δ²)``), and those parts' parameter ranges."""
        from types import SimpleNamespace
        from .shadow import edge_motion_weights
        moving = None if moves_geometry(scene, sensor)["sensor"] else \
            edge_motion_weights(scene, 0.0) > 0
        out = []
        with dr.suspend_grad():
            geo = scene.edges().geometry(dr.detach(scene.positions))
            n0, n1 = geo.normals()
            angle = geo.dihedral()
            proper = (dr.squared_norm(n0) > 0.5) & (dr.squared_norm(n1) > 0.5)  # no slivers
            base = geo.smooth & ~geo.boundary & proper & (angle > FLAT_ANGLE)
            if moving is not None:
                base &= moving
            for mirror, view in camera_views(scene, sensor, self.through_mirrors):
                apex = detach_apex(view.apex())
                cand = base & (apex_range(apex, n0, geo.p0)[1] > 0) & \
                    (apex_range(apex, n1, geo.p0)[1] > 0)
                seen = geo if mirror is None else SimpleNamespace(
                    p0=reflect_point(geo.p0, view.a, view.n),
                    p1=reflect_point(geo.p1, view.a, view.n))
                length, iv = film_length(sensor, seen)
                weight = dr.select(cand & ~iv.empty, length * dr.square(angle), 0.0)
                dr.eval(weight, iv.lo, iv.hi)
                out.append((mirror, DiscreteSampler(weight), iv.lo, iv.hi))
        return out

    def sample(self, scene: Any, sensor: Any, integrator: Any, rng: Any,
               total: int) -> BoundarySample:
        n = dr.width(rng.state)
        views = [v for v in self.distribution(scene, sensor) if not v[1].empty]
        zero = dr.zeros(bk.Float, n)
        if not views:
            return BoundarySample(bk.Array2f(zero, zero), [zero] * integrator.channels,
                                  dr.zeros(bk.Bool, n))
        pairs = [(mirror, sampler) for mirror, sampler, _, _ in views]
        with dr.suspend_grad():
            # A view (the camera or a mirror's image of it), an edge, a point.
            k, idx, pmf = pick_view(pairs, rng, n)
            lo, hi = dr.zeros(bk.Float, n), dr.zeros(bk.Float, n)
            for j, (_, _, lo_j, hi_j) in enumerate(views):
                lo = dr.select(k == j, dr.gather(bk.Float, lo_j, idx), lo)
                hi = dr.select(k == j, dr.gather(bk.Float, hi_j, idx), hi)
            t = dr.lerp(lo, hi, rng.next_float32())
            pdf = pmf / dr.maximum(hi - lo, 1e-30)
            a_m, n_m = view_planes(scene, pairs, k, attached=False)
            view = MirroredView(sensor, a_m, n_m)
            geo = scene.edges().geometry(dr.detach(scene.positions), idx)
            y = dr.fma(geo.p1 - geo.p0, t, geo.p0)
            s, in_front = view.project(y)
            ds_dt = view.project_differential(y, geo.p1 - geo.p0)
            len_dt = dr.norm(ds_dt)
            valid = in_front & (len_dt > 0) & (pmf > 0) & in_film(sensor, s)
            o, d, tmax = sensor.sample_ray(film_to_unit(sensor, s))
            # Through a mirror: the camera ray must meet it first, and go on
            # from the mirror point to the edge point unobstructed.
            valid, o_in, d_in, _, si_m, through = ray_into_view(scene, o, d, tmax, a_m, n_m,
                                                               valid)
            valid &= ~occluded(scene, o_in, d_in, y, geo, valid)
            # The shading at the edge point, seen from the camera (either face:
            # the normals are interpolated from the edge's two vertices alike).
            si = scene.compute_interaction(o_in, d_in, geo.f0, valid)
            refl = dr.select(through, mirror_reflectance(scene, si_m, valid & through), 1.0)
            J = [j * r for j, r in zip(lune_jump(integrator, scene, rng, geo, y, si, valid),
                                       refl)]
            # Which face the film shows left of the edge (ds/dt turned +90°).
            q0, _ = view.project(geo.q0)
            f0_left = cross2(ds_dt, q0 - s) > 0
            jump = [dr.select(f0_left, -j, j) for j in J]       # L_right − L_left
            scale = dr.select(valid, dr.rcp(dr.maximum(pdf, 1e-30)) * per_sample(total), 0.0)
        # Zero in value, attached: the normal velocity of the edge's image (the
        # mean of its faces' copies of split vertices, as at creases), as the
        # mirror shows it.
        a_att, n_att = view_planes(scene, pairs, k, attached=True)
        y_moving = scene.edges().moving_point(scene.positions, idx, t, 0.5)
        s_att, _ = sensor.project(reflect_point(y_moving, a_att, n_att))
        velocity = cross2(ds_dt, s_att - s)
        value = [dr.detach(j * scale) * velocity for j in jump]
        return BoundarySample(s, value, valid)


def lune_jump(integrator: Any, scene: Any, rng: Any, geo: Any, y: Any, si: Any,
              active: Any) -> list:
    """One-sample estimate of ``J = L0 − L1`` at edge point ``y`` (module
    docstring), per channel: a direction uniform in the lune and the radiance
    the integrator estimates along it, plus delta lights in the lune."""
    from .shadow import pass_offset
    n0, n1 = geo.normals()
    e = safe_normalize(geo.p1 - geo.p0)
    b = safe_normalize(dr.cross(e, n0))
    # Signed angle from n0 to n1 about e (no atan2 in Dr.Jit).
    phi = dr.acos(dr.clip(dr.dot(n0, n1), -1.0, 1.0))
    phi = dr.select(dr.dot(n1, b) < 0, -phi, phi)
    # The lune: the directions above one face's plane and below the other's,
    # two wedges about the edge of angle |phi| each (solid angle 2 |phi|).
    u_side, u_gamma, u_z = rng.next_float32(), rng.next_float32(), rng.next_float32()
    gamma = dr.select(u_side < 0.5, -0.5 * dr.pi, 0.5 * dr.pi) + u_gamma * phi
    z = 2.0 * u_z - 1.0
    r = dr.sqrt(dr.maximum(1.0 - z * z, 0.0))
    omega = (n0 * dr.cos(gamma) + b * dr.sin(gamma)) * r + e * z
    inv_pdf = 4.0 * dr.abs(phi)
    eps = pass_offset(y)

    def sign_and_origin(dir_: Any) -> tuple:
        above0, above1 = dr.dot(dir_, n0) > 0, dr.dot(dir_, n1) > 0
        sign = dr.select(above0, 1.0, 0.0) - dr.select(above1, 1.0, 0.0)
        n_lit = dr.select(above0, n0, n1)
        return sign, y + (n_lit + dir_) * eps
    sign, origin = sign_and_origin(omega)
    on = active & (sign != 0)
    L, _, _, _, beyond = arriving(integrator, scene, rng, origin, omega, y, on)
    if beyond is not None:
        L = L + beyond
    f = scene.eval_bsdf(si, si.to_local(omega), on)
    J = [dr.select(on, fc * Lc * (sign * inv_pdf), 0.0) for fc, Lc in zip(f, L)]
    if any(getattr(em, "is_delta", False) for em in scene.emitters):
        s1 = rng.next_float32()
        s2 = bk.Array2f(rng.next_float32(), rng.next_float32())
        d_l, dist_l, pdf_l, w_l, delta = scene.sample_emitter_direction(y, s1, s2, active)
        sign_l, origin_l = sign_and_origin(d_l)
        on_l = active & delta & (sign_l != 0) & (pdf_l > 0)
        finite = ~dr.isinf(dist_l)
        on_l &= ~scene.ray_test(origin_l, d_l, dr.select(finite, dist_l * (1.0 - 1e-4), dr.inf),
                                on_l)
        f_l = scene.eval_bsdf(si, si.to_local(d_l), on_l)
        J = [j + dr.select(on_l, fc * wc * sign_l, 0.0) for j, fc, wc in zip(J, f_l, w_l)]
    return J


def arriving(integrator: Any, scene: Any, rng: Any, origin: Any, omega: Any, x: Any,
             active: Any) -> tuple:
    """The light arriving at ``x`` along ``-omega`` from a ray leaving ``origin``:
    ``(L_emitted, hit, prim, bary, L_beyond)``: the emission of what the ray
    meets first (an area light, or the environment where it escapes), that
    first triangle, and the integrator's estimate of the light it scatters
    towards ``x`` (paths longer than direct light only; else None)."""
    _, prim, _, _, hit = scene.ray_intersect_preliminary(origin, omega, dr.inf, active)
    si = scene.compute_interaction(origin, omega, prim, active & hit)
    L_e = scene.eval_area_emitter(si, active & hit) + scene.eval_environment(omega, active & ~hit)
    depth = integrator.max_depth
    beyond = None
    if depth < 0 or depth > 2:
        resume = dict(depth=1, prev_p=x, prev_pdf=0.0, prev_delta=False)
        beyond = bk.Array3f(*integrator.radiance(scene, rng, origin, omega, dr.inf, active & hit,
                                                 resume, first_prim=dr.select(hit, prim, NO_HIT)))
    return L_e, hit, prim, si.bary, beyond


class SurfaceHorizons(BoundaryTerm):
    """The horizon of the points the camera sees, as their faces turn: part of
    the ``shadow`` term (budget ``sppse``).

    At a point ``x`` of a face with normal ``n`` (turned towards the camera),
    light from directions below the face's plane is blocked by the surface
    itself (or, on an open mesh, comes from the other side), so the integral
    of the light reaching ``x`` over directions has a boundary, the great circle
    ``h(ω) = ω · n = 0``, that moves when the face turns or ``x`` slides over it
    (smooth shading: the shading normal sees past it). With the interior
    estimator's variables held fixed (a material point of an area light, a
    direction of an environment, a direction of the local shading frame for the
    light arriving indirectly),

        ∂/∂θ ∫ g(ω) dω ⊃ ∮_{h=0} f(wi, ω) [L_above(ω) − L_below(ω)] (∂h/∂θ) dφ

    (``|∇_ω h| = 1`` on the circle). Sampled at points the camera sees: a
    triangle in proportion to its projected area times ``sin α`` (``α`` the
    largest angle between its vertex normals and its plane's normal, which
    bounds the term), a film position uniformly on its image (the camera must
    see the triangle there), ``φ`` uniform; ``L_above``/``L_below`` along rays
    leaving ``x`` a hair above and below the plane: the emission they meet
    first (whose ``∂h`` holds the emitter point fixed) and, for paths longer
    than direct light,
    the radiance estimated beyond it (whose ``∂h`` holds the local direction
    fixed). Delta lights have no such term (a point light crossing a face's
    horizon switches the face at once). Camera vertices only: path vertices
    deeper than the camera's get none (a limit of ``pathgeo``); points seen in
    a planar mirror do (each mirror plane's image of the camera, the jump
    times the mirror's reflectance).

    Without it, a coarse smooth sphere turning under an even sky was off by
    0.15 (block relative L1) against finite differences, PSDR's bunny under
    its environment, rotated, by 0.12 (0.017 and 0.043 with it)."""

    name = "shadow"
    budget = "sppse"
    default_share = 0.25
    seed_salt = 0x4A

    def needed(self, scene: Any, sensor: Any, integrator: Any) -> bool:
        return (any(not getattr(em, "is_delta", False) for em in scene.emitters)
                and smooth_shading_moves(scene, sensor, integrator, normals=True))

    def sample_count(self, scene: Any, sensor: Any, integrator: Any, budget: float) -> int:
        total = sum(sampler.total for _, sampler in self.distribution(scene, sensor))
        return int(math.ceil(budget * total * SAMPLES_PER_DEVIATION))

    def _distribution(self, scene: Any, sensor: Any) -> list:
        """Per view, ``(mirror, sampler)``: the camera itself (``mirror`` None)
        and each planar mirror's image of it (``views.MirroredView``)."""
        return [(mirror, self._view_distribution(scene, view))
                for mirror, view in camera_views(scene, sensor)]

    def _view_distribution(self, scene: Any, view: Any) -> DiscreteSampler:
        """Triangles of smooth shapes in front of ``view``, weighted by their
        projected area times the sine of the largest angle between their
        vertex normals and their plane's normal (the term is bounded by it: on
        the horizon circle ``ω · n_s ≤ sin α``; a dense smooth mesh weighs
        little)."""
        with dr.suspend_grad():
            face = dr.arange(bk.UInt32, scene._n_faces)
            idx = [dr.gather(bk.UInt32, scene.faces, 3 * face + k) for k in range(3)]
            p = [dr.gather(bk.Array3f, dr.detach(scene.positions), i) for i in idx]
            nv = [dr.gather(bk.Array3f, dr.detach(scene.normals), i) for i in idx]
            n_f = safe_normalize(dr.cross(p[1] - p[0], p[2] - p[0]))
            sin_a = dr.maximum(dr.maximum(dr.norm(dr.cross(nv[0], n_f)),
                                          dr.norm(dr.cross(nv[1], n_f))),
                               dr.norm(dr.cross(nv[2], n_f)))
            shape = dr.gather(bk.UInt32, scene.prim_shape, face)
            smooth = dr.gather(bk.Bool, scene.shape_smooth, shape)
            q, front = zip(*[view.project(x) for x in p])
            area = 0.5 * dr.abs(cross2(q[1] - q[0], q[2] - q[0]))
            w, h = view.resolution
            r = float(view.film.rfilter.radius)
            lo = [dr.minimum(dr.minimum(q[0][k], q[1][k]), q[2][k]) for k in range(2)]
            hi = [dr.maximum(dr.maximum(q[0][k], q[1][k]), q[2][k]) for k in range(2)]
            slack = triangle_slack(view, p)
            if slack is not None:    # (a thin lens: any lens point's image)
                lo, hi = [v - slack for v in lo], [v + slack for v in hi]
                area = area + slack * (dr.norm(q[1] - q[0]) + dr.norm(q[2] - q[1])
                                       + dr.norm(q[0] - q[2]))
            cand = smooth & front[0] & front[1] & front[2]
            cand &= (hi[0] > -r) & (lo[0] < w + r) & (hi[1] > -r) & (lo[1] < h + r)
            weight = dr.select(cand & dr.isfinite(area), area * sin_a, 0.0)
            dr.eval(weight)
        return DiscreteSampler(weight)

    def sample(self, scene: Any, sensor: Any, integrator: Any, rng: Any,
               total: int) -> BoundarySample:
        from ...core.frame import coordinate_system
        from .shadow import pass_offset
        n = dr.width(rng.state)
        views = [(m, smp) for m, smp in self.distribution(scene, sensor) if not smp.empty]
        zero = dr.zeros(bk.Float, n)
        if not views:
            return BoundarySample(bk.Array2f(zero, zero), [zero] * integrator.channels,
                                  dr.zeros(bk.Bool, n))
        with dr.suspend_grad():
            # A view (the camera or a mirror's image of it), a triangle, then a
            # film position uniformly on its image.
            k, prim, pmf = pick_view(views, rng, n)
            a_m, n_m = view_planes(scene, views, k, attached=False)
            view = MirroredView(sensor, a_m, n_m)
            q = [view.project(x)[0] for x in scene._triangle(prim, pmf > 0)[1]]
            area = 0.5 * dr.abs(cross2(q[1] - q[0], q[2] - q[0]))
            su = dr.sqrt(rng.next_float32())
            b1, b2 = 1.0 - su, rng.next_float32() * su
            s = q[0] + (q[1] - q[0]) * b1 + (q[2] - q[0]) * b2
            o, d, tmax = sensor.sample_ray(film_to_unit(sensor, s))
            valid, o_in, d_in, t_in, si_m, through = ray_into_view(scene, o, d, tmax, a_m, n_m,
                                                                   (pmf > 0) & (area > 0))
            _, prim_hit, _, _, hit = scene.ray_intersect_preliminary(o_in, d_in, t_in, valid)
            valid &= hit & (prim_hit == prim)
            si = scene.compute_interaction(o_in, d_in, prim, valid)
            facing = dr.select(dr.dot(si.n, d_in) < 0, 1.0, -1.0)
            n_f = si.n * facing
            t0, t1 = coordinate_system(n_f)
            phi = rng.next_float32() * (2.0 * dr.pi)
            omega = t0 * dr.cos(phi) + t1 * dr.sin(phi)
            f = scene.eval_bsdf(si, si.to_local(omega), valid)
            valid &= (f[0] != 0) | (f[1] != 0) | (f[2] != 0)
            eps = pass_offset(si.p)
            sides = [si.p + n_f * eps, si.p - n_f * eps]      # above, below
            L_e, hits, L_b = [], [], []
            for origin in sides:
                L, hit_e, prim_e, bary_e, beyond = arriving(integrator, scene, rng, origin,
                                                             omega, si.p, valid)
                L_e.append(L)
                hits.append((prim_e, hit_e, bary_e))
                L_b.append(beyond)
            f = f * dr.select(through, mirror_reflectance(scene, si_m, valid & through), 1.0)
            # 1/pdf: the circle's 2π, the film position's area / P(triangle)
            scale = dr.select(valid, (2.0 * dr.pi) * area / dr.maximum(pmf, 1e-30)
                              * per_sample(total), 0.0)
            C_e = f * (L_e[0] - L_e[1]) * scale
            # the area light the horizon meets (above, else below; neither: an
            # environment, whose direction is what stays fixed)
            (pa, ha, ba), (pb, hb, bb) = hits
            em_above = ha & (hmax(L_e[0]) > 0)
            em_below = hb & (hmax(L_e[1]) > 0)
            prim_y = dr.select(em_above, pa, pb)
            bary_y = dr.select(em_above, ba, bb)
            on_emitter = em_above | em_below
            indirect = L_b[0] is not None
            if indirect:
                C_b = f * (L_b[0] - L_b[1]) * scale
            omega_loc = si.to_local(omega)
        # Attached: the point seen through the fixed film position (in the
        # mirror: along the camera ray reflected at the mirror point), its
        # face's normal and shading frame; the emitter point met.
        o_a, d_a, _ = sensor.sample_ray(film_to_unit(sensor, s))
        si_ma = scene.compute_interaction(o_a, d_a, si_m.prim, valid & through)
        o_a = dr.select(through, si_ma.p, o_a)
        d_a = dr.select(through, reflect_vector(d_a, si_ma.n), d_a)
        si_a = scene.compute_interaction(o_a, d_a, prim, valid)
        n_a = si_a.n * facing
        y = scene.material_interaction(prim_y, bary_y, valid & on_emitter).p
        w_e = dr.select(on_emitter, safe_normalize(y - si_a.p), omega)
        h_e = dr.dot(w_e, n_a)
        value = C_e * (h_e - dr.detach(h_e))
        if indirect:
            h_b = dr.dot(si_a.to_world(omega_loc), n_a)
            value = value + C_b * (h_b - dr.detach(h_b))
        value = [dr.select(valid, value[c], 0.0) for c in range(integrator.channels)]
        return BoundarySample(s, value, valid)


