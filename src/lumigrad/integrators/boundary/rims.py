"""Shading rims: where a smooth surface's shading normal turns away from the camera.

With interpolated (smooth) vertex normals, a triangle the camera sees from its
front may still hold points whose *shading* normal faces away from the
camera: BSDFs that, like Mitsuba's, are one-sided in the shading frame
(``wi.z > 0``) are black there, so the image of a smooth mesh has a thin dark
rim along its silhouettes. The edge of that rim is the curve

    C = { film positions s : h(s) = n_s(x(s)) · (o − x(s)) = 0 }

(``x(s)`` the point the camera ray through ``s`` hits, ``n_s`` the
interpolated normal, ``o`` the camera's centre), *inside* triangles, so the
edge terms of :mod:`.primary` never see it. When vertices (hence positions
and recomputed normals) or the camera move, ``C`` moves and the pixel
integral ``∫ h_p(s) L(s) ds`` gains

    ∫_C h_p(s) [L⁺ − L⁻] (∂h/∂θ) / |∇_s h| dℓ

(Reynolds' transport theorem with the implicit curve ``h = 0``: its normal
velocity is ``(∂h/∂θ)/|∇_s h|`` towards ``h < 0``; ``L⁺`` is the radiance on
the side ``h > 0``). Any positive rescaling of ``h`` leaves the ratio
unchanged on ``C``, so ``h = wi.z`` (normalised vectors, what the BSDFs
test) serves. On a dense mesh the rim is narrower than a pixel but lies along
half of the silhouette: without this term the derivative of a rotating
131k-triangle smooth mesh is biased by about 5 % (block relative L1).

Sampling (lines through triangles, after Crofton's formula: lines of measure
``dp dφ`` cross a curve of length ``ℓ`` ``2ℓ`` times in total): a triangle
whose normals may turn away from the camera is chosen in proportion to its
projected perimeter (the measure of the lines that meet it), then a line
uniformly among those, ``φ ~ U[0, π)`` and ``p`` uniform over the triangle's
extent along ``(cos φ, sin φ)``. On that line ``h`` is a quadratic (the film
line maps to a line on the triangle's plane, along which the unnormalised
normal and ``o − x`` are linear): its roots inside the triangle are the
crossings (all in closed form: :class:`RimTriangle`). Each crossing ``s``
contributes ``g(s) / (2 pdf(line))``. The radiances either side are the
integrator's estimates from the rim point itself, seen along the camera ray
turned just in front of and just behind the shading normal
(:func:`rim_sides_at_point`; the rasterizer's shading, which looks from the
camera, takes rays through ``s ± ε ∇h/|∇h|``), with the same random numbers.
Rims seen in planar mirrors are sampled the same way on each mirror plane's
image of the camera (:class:`.views.MirroredView`), their jump times the
mirror's reflectance. Rims seen from the path tracer's vertices are
:mod:`.vertex_rims`.
"""
from __future__ import annotations

import math
from typing import Any

import drjit as dr

from ... import backend as bk
from . import BoundarySample, BoundaryTerm, moves_geometry, smooth_shading_moves
from .sampling import DiscreteSampler
from .views import (MirroredView, camera_views, film_to_unit, in_film, mirror_reflectance,
                    pick_view, ray_into_view, view_planes)

#: Line samples per pixel of the candidate triangles' projected perimeter
#: (times the budget).
LINES_PER_PIXEL = 0.5

#: Film offset (pixels) of the rays that measure the radiance either side of a
#: rim, where the integrator cannot take them at the rim point itself
#: (:func:`rim_sides_at_point`).
EPS_PX = 1e-4

#: ``wi.z`` of the two rays that meet a rim point from either side of its
#: shading normal (the cosine of their tilt away from the tangent plane).
RIM_TILT = 1e-4


class ShadingRims(BoundaryTerm):
    """Part of the ``primary`` term (budget ``sppe``): see the module docstring."""

    name = "primary"
    budget = "sppe"
    default_share = 0.5
    #: distinguishes its random numbers from the edge part's
    seed_salt = 0x52

    def needed(self, scene: Any, sensor: Any, integrator: Any) -> bool:
        return smooth_shading_moves(scene, sensor, integrator, normals=True)

    def sample_count(self, scene: Any, sensor: Any, integrator: Any, budget: float) -> int:
        total = sum(sampler.total for _, sampler in self.distribution(scene, sensor))
        return int(math.ceil(budget * total * LINES_PER_PIXEL))

    def _distribution(self, scene: Any, sensor: Any) -> list:
        """Per view, ``(mirror, sampler)``: the camera itself (``mirror`` None)
        and, where the scene has planar mirrors, the camera as each mirror
        plane shows the scene (``mirror``: one of its triangles): rims seen in
        a mirror move on the film as its reflection of them moves."""
        return [(mirror, self._view_distribution(scene, sensor, view))
                for mirror, view in camera_views(scene, sensor, self.through_mirrors)]

    def _view_distribution(self, scene: Any, sensor: Any, view: Any) -> DiscreteSampler:
        """Triangles of smooth shapes whose shading normals may face away
        from ``view``'s apex somewhere (``h`` is a quadratic form ``Σ b_i b_j a_ij``
        in the barycentrics with ``a_ij = n_i · (o − p_j)``: one sign for all
        nine coefficients rules a sign change out), weighted by their
        projected perimeter; triangles reaching behind the camera or outside
        the film are left out."""
        moving_only = not moves_geometry(scene, sensor)["sensor"] and not self._all_triangles()
        with dr.suspend_grad():
            n_faces = scene._n_faces
            face = dr.arange(bk.UInt32, n_faces)
            idx = [dr.gather(bk.UInt32, scene.faces, 3 * face + k) for k in range(3)]
            pos = dr.detach(scene.positions)
            p = [dr.gather(bk.Array3f, pos, i) for i in idx]
            nrm = [dr.gather(bk.Array3f, dr.detach(scene.normals), i) for i in idx]
            o = dr.detach(view.position())
            shape = dr.gather(bk.UInt32, scene.prim_shape, face)
            smooth = dr.gather(bk.Bool, scene.shape_smooth, shape)
            cand = smooth & self._sign_change(p, nrm, o)
            if moving_only:
                cand &= dr.gather(bk.Bool, rim_motion_by_shape(scene), shape)
            s, front = zip(*[view.project(q) for q in p])
            cand &= front[0] & front[1] & front[2]
            w, h = sensor.resolution
            lo = [dr.minimum(dr.minimum(s[0][k], s[1][k]), s[2][k]) for k in range(2)]
            hi = [dr.maximum(dr.maximum(s[0][k], s[1][k]), s[2][k]) for k in range(2)]
            cand &= (hi[0] > 0) & (lo[0] < w) & (hi[1] > 0) & (lo[1] < h)
            perimeter = dr.norm(s[1] - s[0]) + dr.norm(s[2] - s[1]) + dr.norm(s[0] - s[2])
            weight = dr.select(cand, perimeter, 0.0)
            dr.eval(weight)
        return DiscreteSampler(weight)

    #: Rims seen in planar mirrors are sampled too (False: the rasterizer's
    #: terms, whose scenes have none).
    through_mirrors = True

    def _all_triangles(self) -> bool:
        """Whether the curves move on triangles that do not move themselves (e.g.
        terminators of a turning light); rims move only with their triangles or
        the camera."""
        return False

    def _sign_change(self, p: list, nrm: list, o: Any) -> Any:
        """Triangles where ``h`` may change sign: ``h`` is a quadratic form
        ``Σ b_i b_j a_ij`` in the barycentrics with ``a_ij = n_i · (o − p_j)``: one
        sign for all nine coefficients rules a sign change out."""
        pos_any = dr.zeros(bk.Bool, dr.width(p[0]))
        neg_any = dr.zeros(bk.Bool, dr.width(p[0]))
        for i in range(3):
            for j in range(3):
                a = dr.dot(nrm[i], o - p[j])
                pos_any |= a > 0
                neg_any |= a < 0
        return pos_any & neg_any

    def _direction(self, integrator: Any, rng: Any, n: int) -> tuple:
        """``(l, l_attached, 1/probability)``: a fixed direction whose terminator
        curve ``n_s · l = 0`` is sampled instead of the rim (``l = None``: the rim,
        ``n_s · (o − x) = 0``); see subclasses."""
        return None, None, 1.0

    def sample(self, scene: Any, sensor: Any, integrator: Any, rng: Any,
               total: int) -> BoundarySample:
        n = dr.width(rng.state)
        views = [(m, smp) for m, smp in self.distribution(scene, sensor) if not smp.empty]
        zero = dr.zeros(bk.Float, n)
        if not views:
            return BoundarySample(bk.Array2f(zero, zero), [zero] * integrator.channels,
                                  dr.zeros(bk.Bool, n))
        l_dir, l_att, inv_p_dir = self._direction(integrator, rng, n)
        with dr.suspend_grad():
            k, prim, pmf = pick_view(views, rng, n)
            a_m, n_m = view_planes(scene, views, k, attached=False)
            view = MirroredView(sensor, a_m, n_m)
            tri = RimTriangle(scene, view, prim, pmf > 0, light=l_dir)
            s = [view.project(q)[0] for q in tri.p]
            s_c, found, width, both = rim_crossing(tri, s, rng)
            active = found & (pmf > 0)
            active &= in_film(sensor, s_c)
            # The camera must see the triangle there (nothing nearer than its
            # plane), through the mirror where it looks into one.
            oc, dc, tc = sensor.sample_ray(film_to_unit(sensor, s_c))
            active, o_in, d_in, t_in, si_m, through = ray_into_view(scene, oc, dc, tc, a_m, n_m,
                                                                    active)
            t_plane = scene.compute_interaction(o_in, d_in, prim, active).t
            t_hit, prim_hit, _, _, hit = scene.ray_intersect_preliminary(o_in, d_in, t_in, active)
            active &= ~hit | (prim_hit == prim) | (t_hit >= t_plane * (1.0 - 1e-5))
            g = tri.gradient(s_c)
            g_len = dr.norm(g)
            active &= g_len > 0
            nu = g / dr.maximum(g_len, 1e-30)          # towards h > 0
            extra = {}
            if l_dir is None and getattr(integrator, "rim_sides_at_point", False):
                bary, (o_p, d_p, t_p), (o_m, d_m, t_m) = rim_sides_at_point(
                    scene, o_in, d_in, prim, active)
                extra = dict(first_bary=bary)
            else:
                active &= ~through       # (film offsets would see the mirror, not the rim)
                o_p, d_p, t_p = sensor.sample_ray(film_to_unit(sensor, s_c + EPS_PX * nu))
                o_m, d_m, t_m = sensor.sample_ray(film_to_unit(sensor, s_c - EPS_PX * nu))
            L_plus, L_minus = integrator.radiance_pair(scene, rng, (o_p, d_p, t_p),
                                                       (o_m, d_m, t_m), active,
                                                       first_prims=(prim, prim), **extra)
            reflectance = dr.select(through, mirror_reflectance(scene, si_m, active & through),
                                    1.0)
            # 1/pdf of the line (π · width / P(triangle)), halved (Crofton),
            # doubled where one of two crossings was picked.
            weight = (dr.pi * width / dr.maximum(pmf, 1e-30) * 0.5 * inv_p_dir
                      * dr.select(both, 2.0, 1.0) / dr.maximum(g_len, 1e-30) * (1.0 / total))
            weight = dr.select(active, weight, 0.0)
            jump = [(lp - lm) * r for lp, lm, r in zip(L_plus, L_minus, reflectance)]
            s_c = dr.detach(s_c)
        # Attached: h at the fixed film position (camera, mirror, triangle and
        # normals all carry the parameters' derivatives).
        a_att, n_att = view_planes(scene, views, k, attached=True)
        h_att = RimTriangle(scene, MirroredView(sensor, a_att, n_att), prim, active,
                            attached=True, light=l_att).value(s_c)
        velocity = h_att - dr.detach(h_att)
        value = [dr.detach(j * weight) * velocity for j in jump]
        return BoundarySample(s_c, value, active)

def rim_sides_at_point(scene: Any, o: Any, d: Any, prim: Any, active: Any) -> tuple:
    """The two sides of a rim at its point ``x`` on triangle ``prim`` (where the
    camera ray ``(o, d)`` meets it): ``(bary, side_plus, side_minus)``, the
    point's barycentrics and two rays ``(o, d, tmax)`` that see ``x`` from
    directions turned by ``RIM_TILT`` either side of its shading normal's
    tangent plane (``wi.z = ±RIM_TILT``), for ``radiance(first_bary=bary)``.

    Rays offset on the film instead must land on the right side of the
    crossing and hit where they should: on the edge-on faces along a dense
    mesh's silhouette, where rims are hundredths of a pixel wide and ``wi.z``
    changes by 0.02 within float32's reach of the crossing, both side rays fell
    on one side a third of the time and the term came out a third of its size
    (PSDR's bunny under an environment, translated: block error 0.25 against
    finite differences)."""
    bary = scene.compute_interaction(o, d, prim, active).bary
    at = scene.material_interaction(prim, bary, active)
    n_s = at.sh_n
    along = dr.dot(n_s, d)
    sides = []
    for tilt in (RIM_TILT, -RIM_TILT):
        d_side = dr.normalize(d - n_s * (along + tilt))    # n_s · (-d_side) = tilt
        sides.append((at.p - d_side, d_side, dr.full(bk.Float, dr.inf, dr.width(along))))
    return bary, sides[0], sides[1]


def rim_crossing(tri: "RimTriangle", s: list, rng: Any) -> tuple:
    """A point of the curve ``H = 0`` of ``tri`` by a random line across its
    image ``s`` (three film points): the line's direction ``φ ~ U[0, π)`` and
    offset uniform over the triangle's extent along ``(cos φ, sin φ)``
    (Crofton's measure), then one of its crossings of the curve inside the
    triangle (roots of a quadratic). Returns ``(point, found, width, both)``:
    ``1 / pdf(line) = π · width``, halved per Crofton (lines cross a curve
    twice on average) and doubled where ``both`` crossings existed and one was
    picked."""
    n = dr.width(s[0][0])
    zero = dr.zeros(bk.Float, n)
    phi = rng.next_float32() * dr.pi
    nl = bk.Array2f(dr.cos(phi), dr.sin(phi))
    q = [dr.dot(nl, si) for si in s]
    q_lo = dr.minimum(dr.minimum(q[0], q[1]), q[2])
    q_hi = dr.maximum(dr.maximum(q[0], q[1]), q[2])
    width = q_hi - q_lo
    p_l = dr.lerp(q_lo, q_hi, rng.next_float32())
    # Where the line crosses the triangle's sides: the segment [a, b].
    a, b = bk.Array2f(zero, zero), bk.Array2f(zero, zero)
    found_a = dr.zeros(bk.Bool, n)
    for i, j in ((0, 1), (1, 2), (2, 0)):
        crosses = ((q[i] - p_l) * (q[j] - p_l) <= 0) & (q[i] != q[j])
        c = dr.lerp(s[i], s[j], (p_l - q[i]) / dr.select(q[i] != q[j], q[j] - q[i], 1.0))
        b = dr.select(crosses & found_a, c, b)
        a = dr.select(crosses & ~found_a, c, a)
        found_a |= crosses
    found = found_a & (width > 0)
    # H along the segment: a quadratic in its parameter.
    c0, c1, c2 = tri.along(a, b - a)
    r1, r2 = _quadratic_roots(c2, c1, c0)
    ok1 = (r1 > 0) & (r1 < 1)
    ok2 = (r2 > 0) & (r2 < 1) & (r2 != r1)
    both = ok1 & ok2
    pick2 = dr.select(both, rng.next_float32() < 0.5, ok2)
    found &= ok1 | ok2
    lam = dr.select(found, dr.select(pick2, r2, r1), 0.5)
    return dr.fma(b - a, lam, a), found, width, both


class RimTriangle:
    """``h`` over the film for triangle ``prim``, up to a positive factor:
    ``H(u) = −σ Σ_i (D(u) · m_i)(n_i · D(u))``, a quadratic form in the
    homogeneous film coordinates ``u = (s, 1)``. ``D(u)`` is the camera ray's
    (unnormalised, linear in ``u``) direction, ``m_i = (p_j − o) × (p_k − o)``
    so that ``D · m_i`` are the ray's unnormalised barycentrics, ``n_i`` the
    vertex normals and ``σ`` the sign of their sum (which side of the plane
    the camera is on). ``H = h · |W| |n| |D|`` with ``h = sh_n · wi``, so both
    vanish on the same curve with the same velocity.

    With ``light`` (a direction ``l``), the curve is the terminator ``sh_n · l = 0``
    instead: ``H(u) = σ Σ_i (D(u) · m_i)(n_i · l)``, linear in ``u``."""

    def __init__(self, scene: Any, sensor: Any, prim: Any, active: Any,
                 attached: bool = False, light: Any = None) -> None:
        self.light = light
        idx = [dr.gather(bk.UInt32, scene.faces, 3 * prim + k, active) for k in range(3)]
        pos = scene.positions if attached else dr.detach(scene.positions)
        nrm = scene.normals if attached else dr.detach(scene.normals)
        self.sensor, self.attached = sensor, attached
        self.p = [dr.gather(bk.Array3f, pos, i, active) for i in idx]
        self.n = [dr.gather(bk.Array3f, nrm, i, active) for i in idx]
        o = sensor.position() if attached else dr.detach(sensor.position())
        r = [q - o for q in self.p]
        self.m = [dr.cross(r[(i + 1) % 3], r[(i + 2) % 3]) for i in range(3)]
        m_sum = self.m[0] + self.m[1] + self.m[2]
        centre = (self.p[0] + self.p[1] + self.p[2]) * (1.0 / 3.0) - o
        self.sigma = dr.detach(dr.sign(dr.dot(centre, m_sum)))

    def _direction(self, u: Any) -> Any:
        d = self.sensor.film_direction(u)
        return d if self.attached else dr.detach(d)

    def _factor(self, nv: Any, d: Any) -> Any:
        """The second factor of the form: ``n_i · D`` (rims) or ``n_i · l``."""
        return dr.dot(nv, d) if self.light is None else dr.dot(nv, self.light)

    def value(self, s: Any) -> Any:
        d = self._direction(bk.Array3f(s[0], s[1], 1.0))
        return -self.sigma * sum(dr.dot(d, m) * self._factor(nv, d)
                                 for m, nv in zip(self.m, self.n))

    def along(self, a: Any, e: Any) -> tuple:
        """Coefficients ``(c0, c1, c2)`` of ``H(a + λ e) = c0 + c1 λ + c2 λ²``."""
        d0 = self._direction(bk.Array3f(a[0], a[1], 1.0))
        d1 = self._direction(bk.Array3f(e[0], e[1], 0.0))
        c0 = c1 = c2 = 0.0
        for m, nv in zip(self.m, self.n):
            al, be = dr.dot(d0, m), dr.dot(d1, m)
            if self.light is None:
                ga, de = dr.dot(nv, d0), dr.dot(nv, d1)
            else:
                ga, de = dr.dot(nv, self.light), 0.0
            c0, c1, c2 = c0 + al * ga, c1 + al * de + be * ga, c2 + be * de
        return -self.sigma * c0, -self.sigma * c1, -self.sigma * c2

    def gradient(self, s: Any) -> Any:
        """``∇_s H`` (film pixels)."""
        d = self._direction(bk.Array3f(s[0], s[1], 1.0))
        out = []
        for k in range(2):
            dk = self._direction(bk.Array3f(1.0 if k == 0 else 0.0, 1.0 if k == 1 else 0.0,
                                            0.0))
            if self.light is None:
                terms = (dr.dot(dk, m) * dr.dot(nv, d) + dr.dot(d, m) * dr.dot(nv, dk)
                         for m, nv in zip(self.m, self.n))
            else:
                terms = (dr.dot(dk, m) * dr.dot(nv, self.light)
                         for m, nv in zip(self.m, self.n))
            out.append(-self.sigma * sum(terms))
        return bk.Array2f(out[0], out[1])


def rim_motion_by_shape(scene: Any) -> Any:
    """Per shape: whether its rims can move without the camera moving (its
    vertices or its vertex normals carry derivatives now)."""
    import numpy as np
    with dr.resume_grad():
        moving = [bool(dr.grad_enabled(s.world_positions()))
                  or (s.vertex_normals is not None and bool(dr.grad_enabled(s.world_normals())))
                  for s in scene.shapes]
    return bk.from_numpy(bk.Bool, np.array(moving))


def edge_motion_weights_by_shape(scene: Any) -> Any:
    """Per shape: 1 where its vertices carry derivatives now, else 0."""
    import numpy as np
    with dr.resume_grad():
        moving = [bool(dr.grad_enabled(s.world_positions())) for s in scene.shapes]
    return bk.from_numpy(bk.Float, np.array(moving, dtype=np.float32))


def _quadratic_roots(a: Any, b: Any, c: Any) -> tuple:
    """Real roots of ``a x² + b x + c`` (NaN where there are none), stable
    where ``a`` is small (the linear root) or ``b² ≫ 4ac``."""
    disc = b * b - 4.0 * a * c
    sq = dr.sqrt(dr.maximum(disc, 0.0))
    qv = -0.5 * (b + dr.mulsign(sq, b))
    linear = dr.abs(a) <= 1e-12 * (dr.abs(b) + dr.abs(c))
    r1 = dr.select(linear, -c / b, qv / a)
    r2 = dr.select(linear, dr.nan, c / qv)
    none = (disc < 0) & ~linear
    return dr.select(none, dr.nan, r1), dr.select(none, dr.nan, r2)
