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
line maps to a line on the triangle's plane, along which the barycentrics,
hence the unnormalised normal and ``o − x``, are linear): its roots inside the
triangle are the crossings, solved in barycentrics (:func:`rim_crossing`,
:class:`RimTriangle`), and the normal velocity is the material point's
motion plus the curve's slide across the triangle, mapped to the film
(:func:`curve_frame`, :func:`curve_velocity`): on the film both are
ill-conditioned on faces seen edge-on. Each crossing ``s`` contributes
``g(s) / (2 pdf(line))``. The radiances either side are the
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
from ...geometry.edges import apex_range, toward_apex
from . import BoundarySample, PrimaryPart, moves_geometry, per_sample, smooth_shading_moves
from .sampling import DiscreteSampler
from .views import (MirroredView, camera_views, detach_apex, film_to_unit,
                    in_film, mirror_reflectance, pick_view, ray_into_view, reflect_point,
                    triangle_slack, view_planes)

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


class ShadingRims(PrimaryPart):
    """Part of the ``primary`` term (budget ``sppe``): see the module docstring."""

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
            apex = detach_apex(view.apex())
            shape = dr.gather(bk.UInt32, scene.prim_shape, face)
            smooth = dr.gather(bk.Bool, scene.shape_smooth, shape)
            cand = smooth & self._sign_change(p, nrm, apex)
            if moving_only:
                cand &= dr.gather(bk.Bool, rim_motion_by_shape(scene), shape)
            s, front = zip(*[view.project(q) for q in p])
            cand &= front[0] & front[1] & front[2]
            w, h = sensor.resolution
            lo = [dr.minimum(dr.minimum(s[0][k], s[1][k]), s[2][k]) for k in range(2)]
            hi = [dr.maximum(dr.maximum(s[0][k], s[1][k]), s[2][k]) for k in range(2)]
            slack = triangle_slack(view, p)
            if slack is not None:    # (a thin lens: any lens point's image)
                lo, hi = [v - slack for v in lo], [v + slack for v in hi]
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

    def _sign_change(self, p: list, nrm: list, apex: tuple) -> Any:
        """Triangles where ``h`` may change sign: ``h`` is a quadratic form
        ``Σ b_i b_j a_ij`` in the barycentrics with ``a_ij = n_i · (o − p_j)``
        (``o − p_j``: :func:`toward_apex`): one sign for all nine coefficients
        rules a sign change out."""
        pos_any = dr.zeros(bk.Bool, dr.width(p[0]))
        neg_any = dr.zeros(bk.Bool, dr.width(p[0]))
        for i in range(3):
            for j in range(3):
                lo, hi = apex_range(apex, nrm[i], p[j])
                pos_any |= hi > 0
                neg_any |= lo < 0
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
            s_c, found, width, both, x_c, b_c = rim_crossing(tri, s, rng)
            active = found & (pmf > 0)
            active &= in_film(sensor, s_c)
            # The camera must see the triangle there (nothing nearer than its
            # plane), through the mirror where it looks into one; the ray aims
            # at the crossing itself (see rim_crossing).
            oc, _, tc = sensor.sample_ray(film_to_unit(sensor, s_c))
            dc = dr.normalize(reflect_point(x_c, a_m, n_m) - oc)
            active, o_in, d_in, t_in, si_m, through = ray_into_view(scene, oc, dc, tc, a_m, n_m,
                                                                    active)
            t_plane = scene.compute_interaction(o_in, d_in, prim, active).t
            t_hit, prim_hit, _, _, hit = scene.ray_intersect_preliminary(o_in, d_in, t_in, active)
            active &= ~hit | (prim_hit == prim) | (t_hit >= t_plane * (1.0 - 1e-5))
            nu, raise_h, defined = curve_frame(tri, b_c)
            active &= defined
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
                      * dr.select(both, 2.0, 1.0) * per_sample(total))
            weight = dr.select(active, weight, 0.0)
            jump = [(lp - lm) * r for lp, lm, r in zip(L_plus, L_minus, reflectance)]
            s_c = dr.detach(s_c)
        # Attached: the curve's normal velocity on the film (camera, mirror,
        # triangle and normals all carry the parameters' derivatives).
        a_att, n_att = view_planes(scene, views, k, attached=True)
        tri_att = RimTriangle(scene, MirroredView(sensor, a_att, n_att), prim, active,
                              attached=True, light=l_att)
        velocity = curve_velocity(tri_att, b_c, nu, raise_h, active)
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
    triangle. Returns ``(point, found, width, both, x, bary)``: ``1 / pdf(line)
    = π · width``, halved per Crofton (lines cross a curve twice on average)
    and doubled where ``both`` crossings existed and one was picked; ``x`` and
    ``bary`` the crossing on the triangle (world, barycentrics), where rays
    aim and velocities are taken (:func:`curve_frame`): its film position
    rounds to ~1e-5 px, wider than such faces.

    The crossings are solved on the triangle, not on the film: the line's
    chord ends on two of its sides (film parameters turned into the sides'
    own by perspective-correct interpolation), and along the chord the
    barycentrics are linear, so ``h`` (:class:`RimTriangle`) is a quadratic
    whose coefficients do not depend on how thin the triangle looks. Solved on the
    film, the faces seen edge-on along a dense mesh's silhouette (film widths
    under 1e-4 px, float32 film coordinates ~1.5e-5 px apart) never gave a
    crossing: the 65k-face sphere's rims along its silhouette came out ~7 %
    short, its silhouette's derivative 4 % (``BENCHMARKS.md``)."""
    n = dr.width(s[0][0])
    zero = dr.zeros(bk.Float, n)
    phi = rng.next_float32() * dr.pi
    nl = bk.Array2f(dr.cos(phi), dr.sin(phi))
    q = [dr.dot(nl, si) for si in s]
    q_lo = dr.minimum(dr.minimum(q[0], q[1]), q[2])
    q_hi = dr.maximum(dr.maximum(q[0], q[1]), q[2])
    width = q_hi - q_lo
    p_l = dr.lerp(q_lo, q_hi, rng.next_float32())
    o, w_apex = tri.apex
    # Each vertex's depth along its film direction (``p − o = z D(s)``): film
    # positions interpolate linearly in ``1/z``, points of the side in ``1``
    # (an orthographic view: film positions are affine in the points, z = 1).
    depth = []
    for si, pi in zip(s, tri.p):
        if not w_apex:
            depth.append(dr.ones(bk.Float, n))
            continue
        d = tri._direction(bk.Array3f(si[0], si[1], 1.0))
        depth.append(dr.dot(pi - o, d) / dr.maximum(dr.squared_norm(d), 1e-30))
    # Where the line crosses the triangle's sides: barycentrics ``b_a``, ``b_b``.
    b_a, b_b = [zero] * 3, [zero] * 3
    found_a = dr.zeros(bk.Bool, n)
    for i, j in ((0, 1), (1, 2), (2, 0)):
        crosses = ((q[i] - p_l) * (q[j] - p_l) <= 0) & (q[i] != q[j])
        tau = dr.clip((p_l - q[i]) / dr.select(q[i] != q[j], q[j] - q[i], 1.0), 0.0, 1.0)
        den = (1.0 - tau) * depth[j] + tau * depth[i]
        sigma = dr.select(den != 0, tau * depth[i] / dr.select(den != 0, den, 1.0), tau)
        c = [zero] * 3
        c[i], c[j] = 1.0 - sigma, sigma
        second = crosses & found_a
        first = crosses & ~found_a
        b_b = [dr.select(second, ck, bk_) for ck, bk_ in zip(c, b_b)]
        b_a = [dr.select(first, ck, ak) for ck, ak in zip(c, b_a)]
        found_a |= crosses
    found = found_a & (width > 0)
    delta = [bb - ba for ba, bb in zip(b_a, b_b)]
    c0, c1, c2 = tri.along(b_a, delta)         # h(b_a + μ δ) = c0 + c1 μ + c2 μ²
    r1, r2 = _quadratic_roots(c2, c1, c0)
    ok1 = (r1 > 0) & (r1 < 1)
    ok2 = (r2 > 0) & (r2 < 1) & (r2 != r1)
    both = ok1 & ok2
    pick2 = dr.select(both, rng.next_float32() < 0.5, ok2)
    found &= ok1 | ok2
    mu = dr.select(found, dr.select(pick2, r2, r1), 0.5)
    bary = [dr.fma(dl, mu, ba) for ba, dl in zip(b_a, delta)]
    x = tri.point(bary)
    point, _ = tri.sensor.project(x)
    return point, found, width, both, x, bary


class RimTriangle:
    """The curve's function on triangle ``prim`` in its barycentrics ``b``:
    with ``x = Σ b_i p_i`` and the interpolated normal ``Σ b_i n_i``,

        h(b) = (Σ b_i n_i) · (o − x) = bᵀ A b,   a_ij = n_i · (o − p_j)

    (``o`` the view's apex: ``h`` has the sign of ``sh_n · wi``, what the BSDFs
    test; ``o − x`` is :func:`~lumigrad.geometry.edges.toward_apex`, for an
    orthographic view the direction towards it and ``h`` linear), or with
    ``light`` (a direction ``l``) the terminator ``h(b) = Σ b_i n_i · l``.
    Positive rescalings of ``h`` change neither the curve ``h = 0``
    nor its velocity. ``view``: the camera, its image in a mirror
    (:class:`.views.MirroredView`) or a path vertex's virtual pinhole
    (:class:`.vertex_rims.VertexView`); ``attached``: positions, normals and
    the apex carry the parameters' derivatives."""

    def __init__(self, scene: Any, view: Any, prim: Any, active: Any,
                 attached: bool = False, light: Any = None) -> None:
        self.light = light
        idx = [dr.gather(bk.UInt32, scene.faces, 3 * prim + k, active) for k in range(3)]
        pos = scene.positions if attached else dr.detach(scene.positions)
        nrm = scene.normals if attached else dr.detach(scene.normals)
        self.sensor, self.attached = view, attached
        self.p = [dr.gather(bk.Array3f, pos, i, active) for i in idx]
        self.n = [dr.gather(bk.Array3f, nrm, i, active) for i in idx]
        self.apex = view.apex() if attached else detach_apex(view.apex())
        if light is None:
            self.a = [[dr.dot(self.n[i], toward_apex(self.apex, self.p[j])) for j in range(3)]
                      for i in range(3)]
        else:
            self.g = [dr.dot(nv, light) for nv in self.n]

    def _direction(self, u: Any) -> Any:
        d = self.sensor.film_direction(u)
        return d if self.attached else dr.detach(d)

    def point(self, b: list) -> Any:
        """The world point of barycentrics ``b``."""
        return self.p[0] * b[0] + self.p[1] * b[1] + self.p[2] * b[2]

    def value(self, b: list) -> Any:
        if self.light is not None:
            return sum(gi * bi for gi, bi in zip(self.g, b))
        return sum(self.a[i][j] * b[i] * b[j] for i in range(3) for j in range(3))

    def gradient(self, b: list) -> list:
        """``∂h/∂b_i`` (unconstrained)."""
        if self.light is not None:
            return list(self.g)
        return [sum((self.a[i][j] + self.a[j][i]) * b[j] for j in range(3)) for i in range(3)]

    def along(self, b: list, e: list) -> tuple:
        """Coefficients ``(c0, c1, c2)`` of ``h(b + μ e) = c0 + c1 μ + c2 μ²``."""
        if self.light is not None:
            return self.value(b), self.value(e), dr.zeros(bk.Float, dr.width(b[0]))
        g = self.gradient(b)
        return self.value(b), sum(gi * ei for gi, ei in zip(g, e)), self.value(e)


def curve_frame(tri: RimTriangle, bary: list) -> tuple:
    """Where the curve ``h = 0`` of ``tri`` passes its point of barycentrics
    ``bary`` (detached): the film's unit normal to it towards ``h > 0``, the
    world displacement that raises ``h`` by one across the triangle (``Σ ḃ_i
    p_i`` with ``ḃ = ∇h / |∇h|²``, ``∇`` within the plane ``Σ b = 1``), and
    whether both are defined. Taken on the triangle and mapped to the film by
    the projection's Jacobian: ``h`` as a function of film positions is
    ill-conditioned on faces seen edge-on (barycentrics change by 1 across
    1e-5 px)."""
    with dr.suspend_grad():
        g = tri.gradient(bary)
        mean = (g[0] + g[1] + g[2]) * (1.0 / 3.0)
        gp = [gi - mean for gi in g]
        gp2 = sum(gi * gi for gi in gp)
        e1, e2 = tri.p[1] - tri.p[0], tri.p[2] - tri.p[0]

        def world(v: list) -> Any:          # Σ v_i p_i for Σ v_i = 0
            return e1 * v[1] + e2 * v[2]
        x = tri.point(bary)
        along = tri.sensor.project_differential(x, world([g[1] - g[2], g[2] - g[0],
                                                           g[0] - g[1]]))
        uphill = tri.sensor.project_differential(x, world(gp))
        length = dr.norm(along)
        nu = bk.Array2f(-along[1], along[0]) / dr.maximum(length, 1e-30)
        nu = dr.select(dr.dot(nu, uphill) < 0, -nu, nu)
        return nu, world(gp) / dr.maximum(gp2, 1e-30), (length > 0) & (gp2 > 0)


def curve_velocity(tri_att: RimTriangle, bary: list, nu: Any, raise_h: Any,
                   active: Any, share: Any = None) -> Any:
    """The film velocity of the curve ``h = 0`` at its point of barycentrics
    ``bary``, normal to it towards ``h < 0`` (attached, zero in value):
    ``tri_att`` the triangle and view with the parameters' derivatives,
    ``nu`` and ``raise_h`` from :func:`curve_frame`. The curve point moves
    as the material point under it (``Σ b_i ṗ_i``, seen by the moving view)
    plus its slide across the triangle, ``−ḣ`` times ``raise_h``.
    ``share`` (per lane): relative to that part of the flow of the triangle's
    material points (static, or moving with the triangle) seen by the moving
    view (the next vertex of a path held there, ``pathgeo.held_vertex``): that
    part of the projection's change of the material point is taken off."""
    h = tri_att.value(bary)
    x_moving = tri_att.point(bary) - raise_h * (h - dr.detach(h))
    # Lanes without a sample project a point in front of the view instead of
    # the origin (which may be its apex: inf, then NaN in reverse mode).
    ahead = tri_att.sensor.point_ahead()
    x_moving = dr.select(active, x_moving, dr.detach(ahead))
    s_moving, _ = tri_att.sensor.project(x_moving)
    s_flow = dr.detach(s_moving)
    if share is not None:
        # (the material point: it moves with a moving triangle)
        s_fixed, _ = tri_att.sensor.project(dr.select(active, tri_att.point(bary),
                                                      dr.detach(ahead)))
        s_flow = s_flow + (s_fixed - dr.detach(s_fixed)) * share
    return -dr.dot(nu, s_moving - s_flow)


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
