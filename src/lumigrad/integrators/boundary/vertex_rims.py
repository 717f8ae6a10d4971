"""Shading rims seen from path vertices (the path tracer's indirect term).

:mod:`.rims` handles the rims the camera sees: curves *inside* triangles of
smooth meshes where the interpolated shading normal turns away from the viewer
and one-sided BSDFs go black. A path vertex ``x`` sees such rims too (a smooth
torus reflecting itself): in the directions ``ω`` at ``x``, the radiance
``L(ω)`` arriving from triangle ``T`` jumps on the curve

    H(ω) = n_s(y(ω)) · (x − y(ω)) = 0          (y(ω): where ω meets T)

and the vertex's integral ``∫ f(ω) L(ω) dω`` gains the boundary term

    ∫_C J(u) [F⁺ − F⁻] (∂H/∂θ) / |∇_u H| dℓ_u,   F = β f(ω) L(ω)

(Reynolds' transport theorem, as in :mod:`.rims`), written in the coordinates
``u`` of a *virtual pinhole* at ``x``'s spawned ray origin (:class:`VertexView`;
rims are met at grazing angles, where the rays' 1e-4 offset off the surface
moves the hit point across them): the plane at unit
distance along a direction ``f`` (to ``T``'s centroid), with basis ``e1, e2``,
all fixed in ``x``'s local shading frame, which is what the interior estimator
holds fixed (``pathgeo.py``); ``D(u) = f + u₀ e1 + u₁ e2`` and ``J(u) =
|D(u)|⁻³`` turns ``du`` into solid angle. ``H`` in those coordinates is the
quadratic form of :class:`.rims.RimTriangle` with the vertex as the camera.

Sampling (one rim sample per vertex that takes boundary samples): a smooth
triangle by resampled importance sampling (``CANDIDATES`` triangles drawn by
area, one kept in proportion to ``p̂ = [H changes sign on T] · perimeter / r``,
Talbot et al. 2005), then a line across its image on the virtual film
(Crofton's formula, as :mod:`.rims`), whose crossings of ``H = 0`` are the
roots of a quadratic. The radiances either side are path estimates along
``D(u ± ε ∇H)`` forced to hit ``T``, with the same random numbers.
"""
from __future__ import annotations

from typing import Any, Optional

import drjit as dr

from ... import backend as bk
from ...core.frame import coordinate_system
from .rims import RimTriangle, curve_frame, curve_velocity, rim_crossing, rim_sides_at_point
from .sampling import DiscreteSampler, Reservoir

#: Triangles drawn per rim sample (resampled importance sampling). On a
#: 5k-triangle smooth bunny seen from its floor, 16 instead of 4 found a rim
#: in twice as many samples and halved the term's variance (lane by lane, three
#: seeds) for 15 % more time of the whole derivative; 64 found few more.
CANDIDATES = 16

#: Offset of the two side rays, as a share of the triangle's width on the
#: virtual film.
EPS_SHARE = 1e-4


def smooth_triangle_sampler(scene: Any) -> DiscreteSampler:
    """Triangles of smooth (vertex-normal) shapes, by area (detached); empty
    where no shape is smooth."""
    if not scene.has_normals:
        return DiscreteSampler(dr.zeros(bk.Float, 1))
    with dr.suspend_grad():
        face = dr.arange(bk.UInt32, scene._n_faces)
        pos = dr.detach(scene.positions)
        p = [dr.gather(bk.Array3f, pos, dr.gather(bk.UInt32, scene.faces, 3 * face + k))
             for k in range(3)]
        area = 0.5 * dr.norm(dr.cross(p[1] - p[0], p[2] - p[0]))
        shape = dr.gather(bk.UInt32, scene.prim_shape, face)
        smooth = dr.gather(bk.Bool, scene.shape_smooth, shape)
        return DiscreteSampler(dr.select(smooth, area, 0.0))


class VertexView:
    """A virtual pinhole at vertex ``si`` (the interface of a sensor that
    :class:`.rims.RimTriangle` uses): film coordinates ``u`` on the plane at
    unit distance along ``f_loc``, directions ``D(u) = f + u₀ e1 + u₁ e2`` in
    the vertex's local shading frame. ``si`` attached: positions and frame
    carry the parameters' derivatives; the local basis is fixed."""

    def __init__(self, si: Any, basis: tuple, target: Any) -> None:
        self.si = si
        self.f, self.e1, self.e2 = basis
        # The apex is where the vertex's rays start (spawn_origin, off the
        # surface): rims are met at grazing angles, where that offset moves
        # the hit point across them.
        self.origin = si.spawn_origin(target - si.p)

    @staticmethod
    def basis(si: Any, target: Any) -> tuple:
        """A local basis looking from the vertex at ``target``, detached (the
        same for the sample and its attached term)."""
        f = dr.detach(si.to_local(dr.normalize(target - si.p)))
        e1, e2 = coordinate_system(f)
        return f, e1, e2

    def apex(self) -> tuple:
        return self.origin, 1.0

    def point_ahead(self) -> Any:
        return self.origin + self.film_direction(bk.Array3f(0.0, 0.0, 1.0))

    def local_direction(self, u: Any) -> Any:
        return self.f * u[2] + self.e1 * u[0] + self.e2 * u[1]

    def film_direction(self, u: Any) -> Any:
        return self.si.to_world(self.local_direction(u))

    def direction_at(self, u: Any) -> Any:
        """The unit world direction through film point ``u`` (an Array2f)."""
        return self.si.to_world(dr.normalize(self.local_direction(bk.Array3f(u[0], u[1], 1.0))))

    def project(self, q: Any) -> tuple:
        v = self.si.to_local(q - self.origin)
        z = dr.dot(v, self.f)
        inv = dr.rcp(dr.select(z > 0, z, 1.0))
        return bk.Array2f(dr.dot(v, self.e1) * inv, dr.dot(v, self.e2) * inv), z > 0

    def project_differential(self, q: Any, dq: Any) -> Any:
        """Film displacement of a small world displacement ``dq`` at ``q``."""
        v = self.si.to_local(q - self.origin)
        dv = self.si.to_local(dq)
        z = dr.dot(v, self.f)
        inv = dr.rcp(dr.select(z > 0, z, 1.0))
        dz = dr.dot(dv, self.f)
        return bk.Array2f((dr.dot(dv, self.e1) - dr.dot(v, self.e1) * inv * dz) * inv,
                          (dr.dot(dv, self.e2) - dr.dot(v, self.e2) * inv * dz) * inv)


def _centroid(scene: Any, prim: Any, active: Any) -> tuple:
    """The vertices (detached) of triangles ``prim`` and their centroid."""
    p = [dr.gather(bk.Array3f, dr.detach(scene.positions),
                   dr.gather(bk.UInt32, scene.faces, 3 * prim + k, active), active)
         for k in range(3)]
    return p, (p[0] + p[1] + p[2]) * (1.0 / 3.0)


def _pick_triangle(scene: Any, sampler: DiscreteSampler, si: Any, rng: Any, active: Any,
                   static: Any, moving_shapes: Any) -> tuple:
    """A smooth triangle whose rim ``x`` may see (RIS, see the module
    docstring): ``(prim, p)`` with ``p`` the effective probability (0: none)."""
    x = si.p
    n = dr.width(x[0])
    reservoir = Reservoir(n)
    pos, nrm = dr.detach(scene.positions), dr.detach(scene.normals)
    for _ in range(CANDIDATES):
        prim, pmf = sampler.sample(rng.next_float32())
        idx = [dr.gather(bk.UInt32, scene.faces, 3 * prim + k, active) for k in range(3)]
        p = [dr.gather(bk.Array3f, pos, i, active) for i in idx]
        nv = [dr.gather(bk.Array3f, nrm, i, active) for i in idx]
        pos_any = dr.zeros(bk.Bool, n)
        neg_any = dr.zeros(bk.Bool, n)
        for i in range(3):
            for j in range(3):
                a = dr.dot(nv[i], x - p[j])
                pos_any |= a > 0
                neg_any |= a < 0
        shape = dr.gather(bk.UInt32, scene.prim_shape, prim, active)
        relevant = ~static | dr.gather(bk.Bool, moving_shapes, shape, active)
        ok = active & (pmf > 0) & pos_any & neg_any & relevant & (prim != si.prim)
        r = dr.norm((p[0] + p[1] + p[2]) * (1.0 / 3.0) - x)
        perimeter = dr.norm(p[1] - p[0]) + dr.norm(p[2] - p[1]) + dr.norm(p[0] - p[2])
        reservoir.offer(prim, dr.select(ok, perimeter / dr.maximum(r, 1e-20), 0.0), pmf,
                        rng.next_float32())
    return reservoir.result()


#: Random lines across the chosen triangle per rim sample (:func:`_crossing`).
LINES = 2


def _select(mask: Any, a: Any, b: Any) -> Any:
    """``dr.select`` through lists (barycentrics are lists of Floats)."""
    if isinstance(a, (list, tuple)):
        return type(a)(dr.select(mask, x, y) for x, y in zip(a, b))
    return dr.select(mask, a, b)


def _crossing(tri: Any, s: list, rng: Any, lines: Optional[int] = None) -> tuple:
    """:func:`.rims.rim_crossing` with ``lines`` (default :data:`LINES`)
    candidate lines, one that crosses the rim kept: generalized resampled
    importance sampling (Lin et al. 2022) whose target is whether a line
    crosses at all (one that does not contributes nothing), so the kept line
    weighs the mean of the crossing lines' ``1/pdf``. On a path-traced smooth
    bunny 65 % of single lines found no crossing (``BENCHMARKS.md``).
    Returns rim_crossing's values and that weight (``1/pdf`` of the line:
    ``π · width``, halved per Crofton, doubled where one of two crossings was
    picked)."""
    lines = LINES if lines is None else lines
    n = dr.width(s[0][0])
    reservoir = Reservoir(n)
    kept = None
    for _ in range(lines):
        out = rim_crossing(tri, s, rng)
        _, found, width, both = out[:4]
        w = dr.select(found, dr.pi * width * 0.5 * dr.select(both, 2.0, 1.0), 0.0)
        # (target = the line's density where it crosses: each crossing line is
        # kept with probability proportional to its own 1/pdf over the sum)
        take = reservoir.offer(dr.zeros(bk.UInt32, n), dr.select(w > 0, 1.0, 0.0),
                               dr.select(w > 0, 1.0 / dr.maximum(w, 1e-30), 0.0),
                               rng.next_float32())
        kept = out if kept is None else tuple(_select(take, a, b) for a, b in zip(out, kept))
    _, p = reservoir.result()
    u, found, width, both, x_c, b_c = kept
    found = found & (p > 0)
    return u, found, width, both, x_c, b_c, dr.select(found, 1.0 / dr.maximum(p, 1e-30), 0.0)


def rim_sample(integrator: Any, scene: Any, sampler: DiscreteSampler, si: Any, beta: Any,
               depth: Any, rng: Any, active: Any, static: Any, moving_shapes: Any,
               held: Optional[tuple] = None) -> tuple:
    """A point of a shading rim seen from vertex ``si`` (detached): ``(ok,
    prim, u, C, share)`` with ``C`` the coefficient of the attached term
    (:func:`rim_term`) and ``share`` the part of the flow of the triangle's
    points that does not slide where the next vertex is held there (``held =
    (fixed_tris, slide)``, ``pathgeo.held_share``; else 0)."""
    prim, p_tri = _pick_triangle(scene, sampler, si, rng, active, static, moving_shapes)
    ok = active & (p_tri > 0)
    p, centroid = _centroid(scene, prim, ok)
    view = VertexView(si, VertexView.basis(si, centroid), centroid)
    tri = RimTriangle(scene, view, prim, ok)
    s, front = zip(*[view.project(q) for q in p])
    ok &= front[0] & front[1] & front[2]
    u, found, width, both, x_c, b_c, line_weight = _crossing(tri, list(s), rng)
    ok &= found
    nu, _, defined = curve_frame(tri, b_c)           # nu: towards h > 0
    ok &= defined
    # The vertex must see the triangle there (nothing nearer than its plane),
    # along a ray aimed at the crossing itself (see rim_crossing).
    w_c = dr.normalize(x_c - view.origin)
    origin = si.spawn_origin(w_c)
    t_plane = scene.compute_interaction(origin, w_c, prim, ok).t
    t_hit, prim_hit, _, _, hit = scene.ray_intersect_preliminary(origin, w_c, dr.inf, ok)
    ok &= (prim_hit == prim) | (hit & (t_hit >= t_plane * (1.0 - 1e-5))) | ~hit
    ok &= t_plane > 0
    resume = dict(depth=depth + 1, prev_p=si.p, prev_pdf=0.0, prev_delta=False)
    if getattr(integrator, "rim_sides_at_point", False):
        # at the rim point itself (see rims.rim_sides_at_point)
        bary, plus, minus = rim_sides_at_point(scene, origin, w_c, prim, ok)
        extra = dict(first_bary=bary)
    else:
        eps = EPS_SHARE * width

        def side(sign: float) -> tuple:
            d = view.direction_at(u + nu * (sign * eps))
            return si.spawn_origin(d), d, dr.inf
        plus, minus, extra = side(1.0), side(-1.0), {}
    L_plus, L_minus = (bk.Array3f(*L) for L in integrator.radiance_pair(
        scene, rng, plus, minus, ok, resume, first_prims=(prim, prim), **extra))
    f = scene.eval_bsdf(si, si.to_local(w_c), ok)
    jac = dr.rcp(dr.maximum(dr.squared_norm(view.local_direction(
        bk.Array3f(u[0], u[1], 1.0))), 1e-30)) ** 1.5
    weight = line_weight / dr.maximum(p_tri, 1e-30) * jac
    C = beta * f * (L_plus - L_minus) * weight
    ok &= dr.all(dr.isfinite(C))
    b12 = bk.Array2f(b_c[1], b_c[2])
    share = dr.zeros(bk.Float, dr.width(ok))
    if held is not None:
        from ..pathgeo import held_share
        share = held_share(scene, held, si, prim, x_c, ok)
    return ok, prim, dr.select(ok, b12, 0.0), dr.select(ok, C, 0.0), share


def rim_term(scene: Any, si: Any, prim: Any, b12: Any, C: Any, active: Any,
             share: Any = None) -> Any:
    """Attached term ``C · v`` of a rim sample: ``v`` the normal velocity
    (:func:`.rims.curve_velocity`) on the vertex's virtual pinhole's film of
    the rim at barycentrics ``(1 − b₁ − b₂, b₁, b₂)`` of triangle ``prim``, with
    the vertex, its frame, the triangle and its normals attached; where the
    path's next vertex is held on the triangle (``pathgeo.held_vertex``)
    relative to the part ``share`` of the flow of its points that does not
    slide."""
    _, centroid = _centroid(scene, prim, active)
    bary = [1.0 - b12[0] - b12[1], b12[0], b12[1]]
    view = VertexView(si, VertexView.basis(si, centroid), centroid)
    with dr.suspend_grad():
        nu, raise_h, defined = curve_frame(RimTriangle(scene, view, prim, active), bary)
    velocity = curve_velocity(RimTriangle(scene, view, prim, active, attached=True), bary,
                              nu, raise_h, active & defined, share)
    return dr.select(active & defined, C * velocity, 0.0)
