"""Indirect visibility at the surfaces the camera sees, sampled edge first.

A pixel of a surface point ``a`` that the camera sees is (with the film
position ``s`` and ``a = a(s)``)

    I_p = ∫ h_p(s) ∫ f(a, ω_c, ω) L(a, ω) dω ds

and ``L(a, ω)`` jumps along the curves of directions ``ω`` that graze an edge
(silhouettes and creases seen from ``a``). Their boundary term, in the
variables of the interior estimator (film position and local direction fixed,
``pathgeo.py``), is

    B_p = ∫ h_p(s) ∫_0^1 ΔF (n · ∂ω/∂θ) |dω/dt| dt ds,   ΔF = f (L_pass − L_face),

``y(t) = p0 + t e`` the edge point, ``|dω/dt| = |e × ω| / r``, ``r = |y − a|``.
Starting from ``a`` (``pathgeo.edge_sample``, Li et al. 2018's secondary
edges) the estimator carries the angular velocity ``∂ω/∂θ ~ 1/r``: surface
points next to an edge (an object resting on a floor) give rare, huge samples
(heavy tails that block averages do not tame). This module samples the same
integral *edge first*, as path-space differentiable rendering does for its
boundary segments (Zhang et al. 2020, "Path-Space Differentiable Rendering",
ACM TOG 39(4), §5): an edge point ``y`` (edge by length times silhouette
likelihood, ``t`` uniform), a direction ``ω`` at ``y``, and ``a`` the first
surface behind ``y`` along ``−ω``. With ``ds = J(a) dA(a)`` (``J`` the film
density of the camera, :meth:`film_density`) and, for fixed ``t``,
``dA(a) = r² / |cos θ_a| dω``:

    B_p = ∫ dt ∫ dω  h_p(s(a)) J(a) ΔF (n · ∂ω/∂θ) r |e × ω| / |cos θ_a|

The ``1/r`` of the velocity cancels against ``r`` and the ``cos θ_a`` of
``f`` against the area measure: the samples are bounded. Directions are drawn
uniformly on the *lune* of directions for which the edge is a silhouette
(``(n0·ω)(n1·ω) ≤ 0``, two antipodal wedges of angle α, the angle between the
faces' normals; all directions for boundary edges) and, for sharp creases
(whose two faces shade differently even where both are visible), uniformly on
the sphere. The camera must see ``a`` (:func:`.views.connect_to_camera`); the
value lands at its film position through the reconstruction filter.

Far from edges the vertex-first samples are better (an edge-first sample
often finds a point the camera does not see); near them the edge-first ones
are bounded where the others blow up. Both run, at the first vertex of
camera paths, and share the integral by multiple importance sampling
(:func:`edge_first_weight`); ``pathgeo.trace`` takes the vertex-first edge
samples, and shadow-line samples, at one vertex of each path (the first or a
later one; the weights of the two techniques still add up to one at every
point, whichever vertex a path picks). Together they are the
``indirect`` term with the budget ``sppie`` (this term:
``EDGE_FIRST_SHARE · sppie`` samples per pixel).

Measured on the Cornell box (32², ``max_depth`` 3, small box translated,
against finite differences): vertex first only, 0.034 / 0.018 / 0.42 at
256 / 1024 / 4096 spp (at the last one sample put 195 into a pixel of about 0.1);
with this term, 0.034 / 0.017 / 0.019, the finite differences' own floor.
"""
from __future__ import annotations

import math
from typing import Any

import drjit as dr

from ... import backend as bk
from ...core.math import hmax
from ...emitters._util import atan2
from ...geometry.edges import safe_normalize
from . import BoundarySample, BoundaryTerm, moves_geometry, per_sample
from .views import connect_to_camera, film_to_unit


def _lune(geo: Any) -> tuple:
    """The silhouette lune of edges ``geo``: ``(n0, n1, φ1, crease, ok)``
    with the faces' normals (``n1 = -n0`` for boundary edges), the signed
    angle φ1 from n0 to n1 about the edge, whether the edge is a sharp crease
    (sampled on the whole sphere) and whether it has a lune at all (not flat,
    not degenerate)."""
    from .primary import FLAT_ANGLE
    e_hat = safe_normalize(geo.p1 - geo.p0)
    n0, n1 = geo.normals()
    n1 = dr.select(geo.boundary, -n0, n1)
    # (not dr.atan2: docs/drjit-pitfalls.md)
    phi1 = atan2(dr.dot(n1, dr.cross(e_hat, n0)), dr.dot(n1, n0))
    width = dr.abs(phi1)
    crease = ~geo.smooth & ~geo.boundary & (width > FLAT_ANGLE)
    ok = (width > FLAT_ANGLE) & (dr.squared_norm(n0) > 0)
    return e_hat, n0, n1, phi1, crease, ok


def _direction_pdf(width: Any, crease: Any, ok: Any) -> Any:
    """Density of :func:`sample_edge_direction` on its support."""
    pdf = dr.select(crease, 1.0 / (4.0 * dr.pi), 1.0 / (4.0 * dr.maximum(width, 1e-30)))
    return dr.select(ok, pdf, 0.0)


def sample_edge_direction(geo: Any, u1: Any, u2: Any) -> tuple:
    """A direction ``ω`` at the edges ``geo`` and its density (solid angle):
    uniform on the silhouette lune for smooth and boundary edges, uniform on
    the sphere for sharp creases (``pdf = 0`` for flat edges)."""
    e_hat, n0, _, phi1, crease, ok = _lune(geo)
    width = dr.abs(phi1)
    # Where n0·ω and n1·ω differ in sign: the wedge between the planes normal
    # to n0 and n1, [π/2 + min(0, φ1), π/2 + max(0, φ1)], and its antipode.
    second = u1 >= 0.5
    u = dr.select(second, 2.0 * u1 - 1.0, 2.0 * u1)
    phi_lune = (0.5 * dr.pi + dr.minimum(phi1, 0.0) + width * u
                + dr.select(second, dr.pi, 0.0))
    phi = dr.select(crease, (2.0 * dr.pi) * u1, phi_lune)
    cos_t = 2.0 * u2 - 1.0
    sin_t = dr.safe_sqrt(1.0 - dr.square(cos_t))
    s, c = dr.sincos(phi)
    omega = (n0 * c + dr.cross(e_hat, n0) * s) * sin_t + e_hat * cos_t
    return omega, _direction_pdf(width, crease, ok)


def edge_direction_pdf(geo: Any, w: Any) -> Any:
    """Density (solid angle) with which :func:`sample_edge_direction` draws
    direction ``w`` at edges ``geo``."""
    _, n0, n1, phi1, crease, ok = _lune(geo)
    lune = dr.dot(n0, w) * dr.dot(n1, w) <= 0
    return _direction_pdf(dr.abs(phi1), crease, ok & (crease | lune))


#: Edge-first samples per vertex-first sample of the first path vertex (the
#: ratio of the two techniques' sample counts in their MIS weights). On the
#: Cornell box (128², 64 spp) 0.25 and 4 leave the indirect term's noise as it
#: is (0.091 / 0.089 of the derivative, against 0.090 at 1: the vertex-first
#: samples at later vertices and the shadow lines dominate it) and 0.25 costs
#: 0.6 s less; the heavy tails near edges stay gone (32², 4096 spp: 0.014).
EDGE_FIRST_SHARE = 0.25


def edge_first_weight(sensor: Any, geo: Any, a: Any, n_a: Any, t: Any) -> Any:
    """Multiple importance sampling weight (balance heuristic; Veach 1997) of
    the edge-first technique for the pair (surface point ``a`` seen by the
    camera, edge point ``y(t)``); the vertex-first samples of the first path
    vertex take one minus it. In the measure ``dA(a) dt`` the two densities
    are, up to the same edge probability,

        vertex first:  n J(a) |dω/dt| / θ           (film samples, then t uniform in angle)
        edge first:    n s W H p(ω) |cos θ_a| / r²  (t uniform, ω at y, a behind y)

    (``n`` samples per pixel, ``s`` = :data:`EDGE_FIRST_SHARE`, ``W H`` pixels,
    ``J`` the camera's film density, θ the angle the edge subtends at ``a``,
    ``|dω/dt| = |e × ω| / r``). Near the edge the second grows like ``1/r²``
    and the first like ``1/r``: the edge-first technique takes over exactly
    where the integrand's ``1/r²`` makes vertex-first samples heavy-tailed."""
    e = geo.p1 - geo.p0
    y = dr.fma(e, t, geo.p0)
    to_y = y - a
    r2 = dr.squared_norm(to_y)
    r = dr.sqrt(r2)
    w = to_y / dr.maximum(r, 1e-30)
    u0 = safe_normalize(geo.p0 - a)
    u1 = safe_normalize(geo.p1 - a)
    theta = dr.acos(dr.clip(dr.dot(u0, u1), -1.0, 1.0))
    q_vertex = sensor.film_density(a, n_a) * dr.norm(dr.cross(e, w)) * r2 / dr.maximum(r * theta,
                                                                                      1e-30)
    width, height = sensor.resolution
    from .shadow import touches
    q_edge = dr.select(touches(a, n_a, y), 0.0,
                       (EDGE_FIRST_SHARE * width * height) * edge_direction_pdf(geo, w)
                       * dr.abs(dr.dot(n_a, w)))
    # (Both densities multiplied by r².)
    total = q_vertex + q_edge
    return dr.select(total > 0, q_edge / dr.maximum(total, 1e-30), 0.0)


class VisibleSurfaceEdges(BoundaryTerm):
    """Edges seen from the surfaces the camera sees (edge-first sampling)."""

    name = "indirect"
    budget = "sppie"
    default_share = 1.0
    seed_salt = 0x5E

    def sample_count(self, scene: Any, sensor: Any, integrator: Any, budget: int) -> int:
        w, h = sensor.resolution
        return int(math.ceil(budget * EDGE_FIRST_SHARE * w * h))

    def needed(self, scene: Any, sensor: Any, integrator: Any) -> bool:
        from .. import pathgeo
        from .indirect import IndirectEdges
        return (pathgeo.EDGE_FIRST_AT_CAMERA_VERTEX
                and IndirectEdges().needed(scene, sensor, integrator))

    def sample(self, scene: Any, sensor: Any, integrator: Any, rng: Any,
               total: int) -> BoundarySample:
        from ..pathgeo import (HOLD_MOVING, _motion_tables, edge_flows, edge_term, slide_bounds,
                               static_edge_counts, static_triangles)
        from .rims import edge_motion_weights_by_shape
        from .shadow import edge_motion_weights, pass_offset, silhouette_weights, touches
        n = dr.width(rng.state)
        zero = dr.zeros(bk.Float, n)
        sampler = silhouette_weights(scene, sensor)
        if sampler.empty:
            return BoundarySample(bk.Array2f(zero, zero), [zero] * 3, dr.zeros(bk.Bool, n))
        m_all = moves_geometry(scene, sensor)
        edges = scene.edges()
        with dr.suspend_grad():
            idx, pmf = sampler.sample(rng.next_float32())
            t = rng.next_float32()
            geo = edges.geometry(dr.detach(scene.positions), idx)
            e = geo.p1 - geo.p0
            y = dr.fma(e, t, geo.p0)
            omega, pdf_w = sample_edge_direction(geo, rng.next_float32(), rng.next_float32())
            ok = (pmf > 0) & (pdf_w > 0)
            # ``omega`` points from the surface point a towards the edge.
            m = geo.face_side(omega)
            eps = pass_offset(y)
            # The surface point: first hit from the edge point towards -ω. The
            # ray starts a little along -ω, not sideways: the faces of the
            # edge lie on one side of the plane (edge, ω) and the ray stays in
            # it, while a sideways offset can put the start inside a surface
            # that the edge rests on (a box on a floor) and miss the point.
            y_back = y - omega * eps
            _, prim_a, _, _, hit = scene.ray_intersect_preliminary(y_back, -omega, dr.inf, ok)
            ok &= hit & ~scene.bsdf_delta_only(prim_a, hit)
            si_a = scene.compute_interaction(y_back, -omega, prim_a, ok)
            # Static edges seen from static points under a static camera: nothing
            # moves (but see the pass side below).
            fixed_tris = static_triangles(scene, _motion_tables(scene, sensor)[0])
            still = dr.zeros(bk.Bool, n)
            if not m_all["sensor"]:
                moving = edge_motion_weights(scene, 0.0)
                still = ~((dr.gather(bk.Float, moving, idx, ok) > 0)
                          | (dr.gather(bk.Float, edge_motion_weights_by_shape(scene), si_a.shape,
                                       ok) > 0))
                if not (HOLD_MOVING and m_all["shapes"]):
                    ok &= ~still
            cam = connect_to_camera(scene, sensor, si_a.p, prim_a, ok)
            ok &= cam.valid
            si = cam.si
            ok &= ~touches(si.p, si.n, y)
            origin = si.spawn_origin(y - si.p)
            d_pass = dr.normalize(y - m * eps - origin)
            d_face = dr.normalize(y + m * eps - origin)
            # The pass ray must reach the edge (else the edge is hidden from a and
            # both sides see the same surface); its first hit is then the first
            # vertex of the pass side's estimate (not traced again).
            t_hit, prim_pass, _, _, hit_pass = scene.ray_intersect_preliminary(
                origin, d_pass, dr.inf, ok)
            ok &= ~hit_pass | (t_hit > dr.norm(y - origin) * (1.0 - 1e-3))
            # ... a static edge seen from a static point moves relative to the
            # pass side's next vertex where that is held on a moving shape (the
            # part of its surface the edge hides changes).
            ok = static_edge_counts(scene, fixed_tris, still, hit_pass, prim_pass, ok)
            first_pass = dr.select(hit_pass, prim_pass, 0xFFFFFFFF)
            resume = dict(depth=1, prev_p=si.p, prev_pdf=0.0, prev_delta=False)
            L_pass, L_face = (bk.Array3f(*L) for L in integrator.radiance_pair(
                scene, rng, (origin, d_pass, dr.inf), (origin, d_face, dr.inf), ok, resume,
                first_prims=(first_pass, None)))
            to_y = y - si.p
            r = dr.norm(to_y)
            w = to_y / dr.maximum(r, 1e-30)
            f = scene.eval_bsdf(si, si.to_local(w), ok)
            cos_a = dr.abs(dr.dot(si.n, w))
            # h_p J ΔF r |e × ω| / |cos θ_a| over the density of (edge, t, ω).
            measure = (sensor.film_density(si.p, si.n) * r * dr.norm(dr.cross(e, w))
                       / dr.maximum(cos_a * pmf * pdf_w, 1e-30))
            mis = edge_first_weight(sensor, geo, si.p, si.n, t)
            K = f * (measure * mis * per_sample(total))
            C = K * (L_pass - L_face)
            ok &= dr.all(dr.isfinite(C)) & (hmax(dr.abs(C)) > 0)
            C = dr.select(ok, C, 0.0)
            # Sides whose next vertex is held (pathgeo.held_vertex) have a
            # flow of their own.
            flows = edge_flows(scene, fixed_tris, slide_bounds(scene), idx,
                               K * L_pass, -K * L_face, origin, d_pass, t_hit, prim_pass,
                               hit_pass, dr.norm(y - origin), ok)
            n_loc = si.to_local(m)
            pos = cam.pos
        # Attached: the camera ray through the (fixed) film position meets the
        # (moving) surface; the direction to the (moving) edge point in its frame.
        o, d, _ = sensor.sample_ray(film_to_unit(sensor, pos))
        si_att = scene.compute_interaction(o, d, prim_a, ok)
        value = edge_term(scene, si_att, idx, t, C, n_loc, ok, flows, fixed_tris)
        return BoundarySample(pos, [value[0], value[1], value[2]], ok)

