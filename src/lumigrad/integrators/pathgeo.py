"""Path tracing derivatives while geometry, the camera or lights move.

Differentiating a rendering splits into an *interior* term (the estimator
differentiated with its random samples held fixed) and *boundary* terms
(``boundary/``): both must hold the same variables fixed, or their sum is
wrong. This module is the interior estimator of path tracing for geometry,
camera and light derivatives, plus the boundary terms at path vertices after
the first. Its variables are those of the usual unidirectional path tracer:

* the camera ray through a fixed film position (attached to the camera);
* at every vertex the BSDF-sampled direction *in the local shading frame*
  (the world direction turns with the surface, the ray starts at the attached
  vertex), so the next vertex slides along an attached ray: moving a vertex
  moves the next ones (the *chain*; a moving object's indirect light,
  parallax included, and moving mirrors' reflections are accounted for);
* except that a vertex reached by a non-delta bounce is *held*
  (:func:`held_vertex`): its barycentrics move by the share ``α(t)`` of their
  slide, ``t`` its distance from the vertex before (1 near, 0 far: a smooth
  velocity field on the surface, Reynolds' transport theorem). Far from the
  vertex before it stays at its material point (the path-space form, Zhang et
  al. 2020), still on a static shape, moving with a moving one: the chain
  ends there, whose velocities grow by ``1/|cos θ|`` at every grazing hit and
  made deep vertices, and moving glossy objects seen from static vertices,
  heavy-tailed; near it, where the
  area form's ``∂ log(cos θ' / r²)`` has unbounded variance (contacts,
  corners), it slides. The segment's factor gains the field's divergence
  (:func:`segment_ratio`) and the boundary terms at the vertex before measure
  the discontinuities' motion relative to the field (:func:`edge_term`): a
  static edge seen from a static vertex then counts too where a side of it is
  held on a moving shape (the part of that shape it hides changes).
  Cornell box, depth 8, 64 spp: the indirect term's noise 4.0 → 2.1, the
  interior's 0.7 → 1.2 (16 seeds), the derivative 1.2× the time; a rough
  plastic ball moving over a floor: block error 0.126 → 0.025 at equal
  samples (``BENCHMARKS.md``);
* emitter samples of next-event estimation at fixed *material* points of the
  emitter (moving with it).

Emitters are counted by next-event estimation alone (and after delta
bounces): each technique of a MIS combination of emitter hits would need its
own boundary terms (``SamplingIntegrator.derivative_estimator``). At glossy
vertices a second emitter point is drawn by the BSDF (MIS over material
points: the same integral) and each point is paired antithetically about the
mirror direction (``nee.py``): a rough conductor ball (α = 0.05) over a floor,
path depth 3, 1024 spp, seed against seed 0.50 → 0.15 (``BENCHMARKS.md``).

Boundary terms at a vertex ``x`` (``x`` seen by the camera or later; the camera
itself is the apex of ``boundary/primary.py`` and ``boundary/shadow.py``) live
in the space of local directions at ``x`` (Li et al. 2018, "Differentiable
Monte Carlo Ray Tracing through Edge Sampling", ACM TOG 37(6)): a curve of
directions ``ω(t)`` where the integrand ``f(ω) L(ω)`` jumps, with the term

    ∫ [F⁻ − F⁺] (n · ∂ω/∂θ) |dω/dt| dt

(``n`` the curve's unit normal in local coordinates, ``F⁻``/``F⁺`` the
integrand on either side). Two kinds are sampled at a non-delta vertex:

* *edges seen from x* (silhouettes and creases): ``ω(t)`` points at an edge
  point ``y(t)``, ``|dω/dt| = |y'(t) × ω| / r``; the jump is
  ``f (L_pass − L_face)`` with radiance estimates just either side of the edge;
* *shadow lines* of next-event estimation at the next vertex: an edge point and
  an emitter sample cast a point ``x*`` of a shadow line (PSDR-style, Zhang et
  al. 2020), and ``ω(t)`` points at ``x*(t)``; the jump is the next-event
  contribution there, lit on one side, zero on the other.

Each path takes them at *one* of its vertices, chosen in proportion to the
throughput there by weighted reservoir sampling in the loop (Chao 1982; the
sample is weighted by ``Σ w / w``), and after the loop: each sample runs two
nested radiance estimates, and inside the loop SIMD packets ran them at every
depth where any lane took one. Cornell box, path depth 8, 64 spp: 13.9x the
render for block error 0.116 (every vertex) against 6.2x for 0.164 (one
vertex), error² × time 0.024 against 0.022 (``BENCHMARKS.md``).

Forward mode carries the attached chain in the loop state; the chosen vertex
leaves the loop as the tangents of carriers (``unit · value``, ``unit`` a leaf
of tangent 1), and its boundary samples are a second forward step: reading the
loop's detached outputs instead put a primal copy of the loop into the kernel
beside the derivative loop. In that step the edge samples' nested radiance
estimates run on the lanes that need them only (:func:`compacted_pair`);
Cornell box, 64 spp: 0.81 → 0.70 s for the same samples. Reverse mode keeps
memory constant in the number of samples: a first pass writes each vertex's
detached values to per-lane local memory (capped, ``RECORD_WORDS``), and a
second loop in the same kernel walks the path *backwards*, back-propagating at
vertex ``k`` the local terms plus the adjoint of the ray that leaves it; the
gradient of the fresh leaf standing for the ray that reached ``k`` is the
adjoint handed to vertex ``k - 1`` (reverse-mode chain rule along the path).
Vertices beyond the record keep their values but not their derivatives.
"""
from __future__ import annotations

from typing import Any, Optional

import drjit as dr

from .. import backend as bk
from ..core.math import hmax
from ..geometry.edges import safe_normalize
from . import nee
from .replay import vertex_samples

#: Largest per-lane record of the reverse pass (32-bit words), per backend
#: (as ``replay.RECORD_MAX_WORDS``): vertices beyond it keep their values but
#: lose their derivatives (rare: Russian roulette ends paths long before).
RECORD_WORDS = {"llvm": 2048, "cuda": 512}

# Per-vertex flags of the record.
F_HIT = 1            # the ray hit a surface (else it escaped)
F_DELTA = 2          # the BSDF sample at this vertex is a delta lobe
F_VIS = 4            # next-event estimation found the emitter unoccluded
F_PREV_DELTA = 8     # the vertex before was delta (or the camera): emission counts
F_CONT = 16          # the path goes on from this vertex
F_EDGE = 32          # an edge sample (seen from the vertex) contributes
F_SHADOW = 64        # a shadow line sample contributes
F_RIM = 128          # a shading-rim sample contributes (boundary/vertex_rims.py)
F_MAT = 256          # the vertex is held (held_vertex, STATIC_MATERIAL_POINTS)
F_ANTI = 512         # the emitter sample's antithetic partner (nee.py) contributes
F_BNEE = 1024        # next-event estimation's point drawn by the BSDF (nee.py) contributes
F_BANTI = 2048       # ... and its partner

#: (name, type, components) of the record's fields.
FIELDS = (("prim", "UInt32", 1), ("flags", "UInt32", 1), ("wo", "Array3f", 3),
          ("s_em", "Array3f", 3), ("beta", "Array3f", 3), ("ray_o", "Array3f", 3),
          ("ray_d", "Array3f", 3),
          ("a_edge", "UInt32", 1), ("a_t", "Float", 1), ("a_c", "Array3f", 3),
          ("a_n", "Array3f", 3), ("a_cp", "Array3f", 3), ("a_pp", "Array3f", 3),
          ("a_cf", "Array3f", 3), ("a_ppr", "UInt32", 1),
          ("b_edge", "UInt32", 1), ("b_t", "Float", 1), ("b_s", "Array3f", 3),
          ("b_prim", "UInt32", 1), ("b_c", "Array3f", 3), ("b_n", "Array3f", 3),
          ("b_h", "Float", 1),
          ("r_prim", "UInt32", 1), ("r_b", "Array2f", 2), ("r_c", "Array3f", 3),
          ("r_h", "Float", 1))
#: ... and in scenes with glossy BSDFs (``nee.EmitterSamples``): where the
#: emitter sample's partner (``n_``), the point drawn by the BSDF (``m_``) and
#: its partner (``o_``) lie, and the four points' factors (``n_a``, ``o_a``).
GLOSSY_FIELDS = (("n_prim", "UInt32", 1), ("n_bary", "Array2f", 2), ("m_prim", "UInt32", 1),
                 ("m_bary", "Array2f", 2), ("o_prim", "UInt32", 1), ("o_bary", "Array2f", 2),
                 ("n_a", "Array2f", 2), ("o_a", "Array2f", 2))
TYPES = {name: tp for name, tp, _ in FIELDS + GLOSSY_FIELDS}


def record_fields(tables: Any) -> tuple:
    """The record's fields where ``nee.glossy_tables`` returned ``tables``."""
    return FIELDS + (GLOSSY_FIELDS if tables is not None else ())


def record_capacity(fields: tuple = FIELDS) -> int:
    """Vertices per lane that a record of ``fields`` holds."""
    words = RECORD_WORDS[bk.variant()] if isinstance(RECORD_WORDS, dict) else RECORD_WORDS
    return max(1, int(words) // sum(c for _, _, c in fields))


def _flag(cond: Any, bit: int) -> Any:
    return dr.select(cond, bk.UInt32(bit), bk.UInt32(0))


def _sample_flags(named: dict) -> Any:
    """The record's flags of boundary samples (``_SAMPLE_FIELDS`` by name)."""
    return (_flag(named["a_ok"], F_EDGE) | _flag(named["b_ok"], F_SHADOW)
            | _flag(named["r_ok"], F_RIM))


def _has(flags: Any, bit: int) -> Any:
    return (flags & bit) != 0


def _ratio(x: Any) -> Any:
    """``x / detach(x)``: 1 in value, ``dx / x`` in derivatives (1 where x is 0)."""
    x_det = dr.detach(x)
    return dr.select(x_det > 0, x / dr.maximum(x_det, 1e-30), 1.0)


def segment_ratio(scene: Any, si: Any, wo: Any, delta: Any, active: Any, held: Any,
                  o_next: Any, d_next: Any, prim_next: Any, slide: tuple, fixed: Any) -> Any:
    """The attached factor of the segment that leaves vertex ``si`` along the
    ray ``(o_next, d_next)`` (1 in value).

    Where the next vertex slides along the ray (the direction ``wo`` fixed in
    the local frame): ``f(wo) / detach(f(wo))``. Where it is *held*
    (``held``, on triangle ``prim_next``; see :func:`held_vertex`): the
    sample's value in area form, ``f(ω) |cos θ'| / r²`` towards the held point,
    times the Jacobian of the held parameterization in barycentrics, ``J (1 +
    α (R − 1) + (A − detach(A)))`` (each over its value): ``J`` the triangle's
    area Jacobian (it changes where the mesh deforms), ``R = t² / (|cos θ'|
    J)`` the sliding point's barycentric area per solid angle (its tangent the
    divergence of the slide), ``A`` the slide share at the sliding point (its
    tangent the slide's velocity along the gradient of α). With ``α = 1`` this
    is the sliding factor again; with ``α = 0`` the material point's.
    ``held=None``: no vertex is held (paths too short for any); ``fixed``:
    :func:`static_triangles`."""
    if held is None:
        f = scene.eval_bsdf(si, dr.detach(wo), active & ~delta)
        return dr.select(delta, 1.0, _ratio(f))
    # The sliding point: where the ray meets the triangle's (attached) plane,
    # and its barycentrics b_s (attached: their tangent is the slide's).
    p0, p1, p2 = triangle_corners(scene, prim_next, held, fixed)
    e1, e2 = p1 - p0, p2 - p0
    n_raw = dr.cross(e1, e2)
    jac2 = dr.maximum(dr.squared_norm(n_raw), 1e-30)
    J = dr.sqrt(jac2)                          # the triangle's area Jacobian
    n_s = n_raw / J
    cos_d = dr.dot(n_s, d_next)
    t_s = dr.dot(n_s, p0 - o_next) / dr.select(cos_d != 0, cos_d, 1.0)
    q = dr.fma(d_next, t_s, o_next) - p0
    u_s = dr.dot(dr.cross(q, e2), n_raw) / jac2
    v_s = dr.dot(dr.cross(e1, q), n_raw) / jac2
    alpha = slide_share(dr.detach(t_s), slide)
    # Where it slides all the way the two forms agree exactly; the sliding one
    # avoids cancelling the area form's 1/cos θ' terms at grazing hits.
    held = held & (alpha < 1.0)
    # The held point: barycentrics moved by the share α of the slide's, on
    # the (moving or static) triangle.
    u_h = dr.detach(u_s) + (u_s - dr.detach(u_s)) * alpha
    v_h = dr.detach(v_s) + (v_s - dr.detach(v_s)) * alpha
    x_held = p0 + e1 * u_h + e2 * v_h
    to = x_held - o_next
    r2 = dr.maximum(dr.squared_norm(to), 1e-30)
    w = to * dr.rsqrt(r2)
    f = scene.eval_bsdf(si, dr.select(held, si.to_local(w), dr.detach(wo)), active & ~delta)
    area = f * (dr.abs(dr.dot(n_s, w)) / r2)
    # The slide's area per solid angle in barycentric measure, t² / (|cos θ'| J).
    R = _ratio(dr.square(t_s) / dr.maximum(dr.abs(cos_d) * J, 1e-30))
    # (α as a function on the surface: of the distance from the previous
    # vertex held fixed, measured on the surface as it is: the sliding
    # barycentrics on the detached triangle.)
    p0d, e1d, e2d = dr.detach(p0), dr.detach(e1), dr.detach(e2)
    A = slide_share(dr.norm(p0d + e1d * u_s + e2d * v_s - dr.detach(o_next)), slide)
    jac = _ratio(J) * (1.0 + alpha * (R - 1.0) + (A - dr.detach(A)))
    return dr.select(delta, 1.0, dr.select(held, _ratio(area) * jac, _ratio(f)))


# ---------------------------------------------------------------------------
# boundary samples at a vertex
# ---------------------------------------------------------------------------
#: Edges seen from the first vertex of camera paths are sampled both from the
#: vertex (``edge_sample``) and edge first (``boundary/visible.py``), combined
#: by multiple importance sampling; False: vertex first only (comparisons).
EDGE_FIRST_AT_CAMERA_VERTEX = True

#: Boundary samples at one vertex per path, chosen in proportion to the
#: throughput (weighted reservoir sampling) and taken after the path loop;
#: False: at every vertex, inside the loop (comparisons).
ONE_VERTEX_PER_PATH = True

#: The boundary samples' outputs (edge, shadow line, rim), in order; the
#: ``ok`` flags are not record fields.
_SAMPLE_FIELDS = ("a_ok", "a_edge", "a_t", "a_c", "a_n", "a_cp", "a_pp", "a_cf", "a_ppr",
                  "b_ok", "b_edge", "b_t", "b_s", "b_prim", "b_c", "b_n", "b_h",
                  "r_ok", "r_prim", "r_b", "r_c", "r_h")
#: Where each kind's outputs start in ``_SAMPLE_FIELDS`` (edge, shadow line, rim).
_EDGE, _SHADOW, _RIM = 0, 9, 17

#: Forward mode: the chosen vertex's values leave the path loop as tangents
#: (:func:`trace`; False: read from the loop's primal outputs, comparisons).
CARRY_TANGENTS = True

#: Forward mode: the nested radiance estimates of the edge samples at the
#: chosen vertices run on the lanes that need them only (:func:`compacted_pair`).
COMPACT_PAIRS = True

#: Vertices reached by a non-delta bounce are *held* (see :func:`held_vertex`
#: and the module docstring; on moving shapes too with ``HOLD_MOVING``): far
#: from the previous vertex at their material point (the path-space form of
#: Zhang et al. 2020), near it sliding along the ray as before, smoothly
#: between; this ends the chain of sliding vertices. False: every vertex after
#: the first slides (comparisons).
STATIC_MATERIAL_POINTS = True

#: The share α of its slide a held vertex keeps, by its distance t from the
#: previous vertex: 1 below ``SLIDE_NEAR``, 0 beyond ``SLIDE_FAR`` (fractions
#: of the scene's bounding radius), a smoothstep between. (α must be continuous
#: over the surface, or the flow would jump there and need a boundary term of
#: its own: nothing that depends on the faces' normals, which jump at every
#: edge of a mesh.)
SLIDE_NEAR, SLIDE_FAR = 0.05, 0.25

#: Vertices on *moving* shapes are held too: far from the vertex before, they
#: stay at their material point and move with their shape. Sliding along the
#: ray from a static vertex, their velocities grow like ``1/|cos θ|`` towards
#: the moving shape's rim as that vertex sees it: a rough plastic ball over a
#: floor, path 3, 2 × 2048 spp: block error 0.126 → 0.025, seed against seed
#: 0.087 → 0.021 (``BENCHMARKS.md``). False: static shapes only (comparisons).
HOLD_MOVING = True


def slide_bounds(scene: Any) -> tuple:
    """``(near, far − near)``: the distances of :data:`SLIDE_NEAR`/``FAR`` for
    ``scene`` (opaque: they follow the scene's size without recompiling)."""
    radius = float(scene.bsphere[1])
    return (dr.opaque(bk.Float, SLIDE_NEAR * radius),
            dr.opaque(bk.Float, (SLIDE_FAR - SLIDE_NEAR) * radius))


def slide_share(t: Any, slide: tuple) -> Any:
    """α(t): the share of its slide a held vertex at distance ``t`` keeps
    (:data:`SLIDE_NEAR`)."""
    near, width = slide
    x = dr.clip((t - near) / width, 0.0, 1.0)
    return 1.0 - x * x * (3.0 - 2.0 * x)


def static_triangles(scene: Any, shape_moving: Any) -> Any:
    """Per triangle of ``scene``: whether its shape does not move (a ``Bool``
    table, one gather per look-up; ``shape_moving`` per shape, from
    :func:`_motion_tables`)."""
    return ~dr.gather(bk.Bool, shape_moving, scene.prim_shape)


def _static_prims(scene: Any, fixed: Any, prim: Any, active: Any) -> Any:
    """Whether triangles ``prim`` belong to shapes that do not move (``fixed``:
    :func:`static_triangles`)."""
    return active & dr.gather(bk.Bool, fixed, prim, active)


def holds(scene: Any, fixed: Any, prim: Any, active: Any) -> Any:
    """Whether a vertex on triangles ``prim`` reached by a non-delta bounce is
    held (:func:`held_vertex`): on every shape (``HOLD_MOVING``), else on the
    static ones (``fixed``: :func:`static_triangles`)."""
    return active if HOLD_MOVING else _static_prims(scene, fixed, prim, active)


def static_edge_counts(scene: Any, fixed: Any, still: Any, hit_pass: Any, prim_pass: Any,
                       active: Any) -> Any:
    """``active`` less the edge samples that nothing moves: a static edge seen
    from a static vertex (``still``) counts only where its pass ray lands on a
    moving shape (``hit_pass`` on ``prim_pass``), whose vertex held there it
    hides part of (``HOLD_MOVING``; ``fixed``: :func:`static_triangles`)."""
    return active & (~still | (hit_pass & ~_static_prims(scene, fixed, prim_pass,
                                                         active & hit_pass)))


def _moving_prims(fixed: Any, prim: Any, active: Any) -> Any:
    """Lanes whose triangle ``prim`` moves (``fixed``: :func:`static_triangles`;
    None: all of them)."""
    return active if fixed is None else active & ~dr.gather(bk.Bool, fixed, prim, active)


def triangle_corners(scene: Any, prim: Any, active: Any, fixed: Any) -> tuple:
    """The corners of triangles ``prim``: attached where the triangle moves
    (``fixed``: :func:`static_triangles`), detached elsewhere. (Reverse mode
    scatters an attached gather's adjoint into the positions lane by lane:
    +22 % of the Cornell box's replay where static triangles took part.)"""
    with dr.suspend_grad():
        _, still = scene._triangle(prim, active)
    moving = _moving_prims(fixed, prim, active)
    _, att = scene._triangle(prim, moving)
    return tuple(dr.select(moving, a, c) for a, c in zip(att, still))


def material_point(scene: Any, prim: Any, point: Any, active: Any, fixed: Any) -> Any:
    """The material point of triangle ``prim`` under ``point`` (detached; on
    its plane): the triangle at ``point``'s barycentrics, attached, where it
    moves (``fixed``: :func:`static_triangles`); elsewhere ``point`` itself."""
    moving = _moving_prims(fixed, prim, active)
    _, (p0, p1, p2) = scene._triangle(prim, moving)
    e1, e2 = p1 - p0, p2 - p0
    e1d, e2d = dr.detach(e1), dr.detach(e2)
    n = dr.cross(e1d, e2d)
    inv = dr.rcp(dr.maximum(dr.squared_norm(n), 1e-30))
    q = dr.detach(point) - dr.detach(p0)
    u = dr.dot(dr.cross(q, e2d), n) * inv
    v = dr.dot(dr.cross(e1d, q), n) * inv
    return dr.select(moving, p0 + e1 * u + e2 * v, dr.detach(point))


def held_vertex(scene: Any, si: Any, o: Any, held: Any, slide: tuple,
                exact: Any = None) -> tuple:
    """``(si', α)``: where ``held``, the vertex ``si`` (reached by the ray from
    ``o``, sliding along it) replaced by the held one: the point of its
    triangle whose barycentrics move by the share ``α`` of the slide's
    (position, normals, texture coordinates from there), seen from ``o``.

    A parameterization of the next vertex by a smooth velocity field on the
    surface, ``α V`` (``V`` the slide's, in barycentrics; a moving triangle
    carries its material points along): the path's later vertices
    move only as much as it does, the segment's factor gains the field's
    divergence (:func:`segment_ratio`), and the boundary terms at the vertex
    before measure motion relative to it (:func:`edge_term`). ``α = 0``
    (far) holds it at its material point: the chain of sliding vertices,
    whose velocities grow by ``1/|cos θ|`` at every grazing hit, ends there;
    ``α = 1`` (near) keeps the slide, because the area form's ``∂ log(1/r²)``
    has unbounded variance for short segments (contacts, corners).
    ``held=None``: none is (``si`` and α = 1 returned). ``exact``: per
    triangle (:func:`recomputed_triangles`), whether the fields are recomputed
    at the held barycentrics (where the triangle or its vertex normals carry
    derivatives of their own, which the share must not scale; blending the
    fields' tangents is right where only the slide moves them); None: none."""
    if held is None:
        return si, 1.0
    from dataclasses import replace
    alpha = dr.select(held, slide_share(dr.detach(si.t), slide), 1.0)
    fields = ("p", "n", "sh_n", "uv", "bary", "dp_du", "dp_dv")
    # Where only the slide moves the fields, each is a function of the
    # triangle's barycentrics: moving them by the share α of their slide moves
    # each field (to first order, all a derivative sees) by that share of its own.
    out = replace(si, **{f: dr.detach(getattr(si, f))
                         + (getattr(si, f) - dr.detach(getattr(si, f))) * alpha
                         for f in fields if getattr(si, f) is not None})
    if exact is not None:
        # (Masked: only those lanes' gathers are attached.)
        redo = held & dr.gather(bk.Bool, exact, si.prim, held)
        b = si.bary
        h = scene.material_interaction(si.prim, dr.detach(b) + (b - dr.detach(b)) * alpha,
                                       redo)
        out = replace(out, **{f: dr.select(redo, getattr(h, f), getattr(out, f))
                              for f in fields if getattr(out, f) is not None})
    out.wi = dr.select(held, out.to_local(safe_normalize(o - out.p)), si.wi)
    return out, alpha


def recomputed_triangles(scene: Any) -> Optional[Any]:
    """Per triangle, whether a held vertex there has its fields recomputed
    (:func:`held_vertex`'s ``exact``): its shape moves (``HOLD_MOVING``) or
    its vertex normals carry derivatives; None where no triangle needs it."""
    import numpy as np
    with dr.resume_grad():
        redo = np.array([(HOLD_MOVING and bool(dr.grad_enabled(s.world_positions())))
                         or (s.vertex_normals is not None
                             and bool(dr.grad_enabled(s.world_normals())))
                         for s in scene.shapes])
    if not redo.any():
        return None
    return dr.gather(bk.Bool, bk.Bool(redo), scene.prim_shape)


def _flow_direction(si: Any, point: Any, share: Any) -> Any:
    """The local direction from vertex ``si`` (attached) to ``point`` (a held
    vertex's material point, attached: it moves with its triangle) as the flow
    of a held next vertex sees it: its tangent is ``share`` (1 − α: the part
    not sliding) of that of the material point."""
    w_fixed = si.to_local(safe_normalize(point - si.p))
    return dr.detach(w_fixed) + (w_fixed - dr.detach(w_fixed)) * share


#: The chosen vertex's values that leave the path loop as tangents
#: (``CARRY_TANGENTS``), and their types.
_CARRIERS = {"car_o": "Array3f", "car_d": "Array3f", "car_beta": "Array3f",
             "car_prim_lo": "Float", "car_prim_hi": "Float", "car_depth": "Float",
             "car_w": "Float", "car_static": "Float", "car_held": "Float",
             "car_wsum": "Float"}


class Deferred:
    """What :func:`trace` returns in forward mode when a second step needs the
    tangents of the first: the per-lane estimate ``L``, the values ``carried``
    whose tangents that step takes, and ``second(tangents)``, which returns
    per-lane tangents to add to ``L``'s. :func:`forward_parts` unpacks it."""

    def __init__(self, L: Any, carried: list, second: Any) -> None:
        self.L, self.carried, self.second = L, carried, second


def forward_parts(L: Any) -> tuple:
    """``(values, combine)`` for a caller that propagates ``values``' tangents
    (one ``dr.forward_to`` with others) and then wants the per-lane tangent of
    the estimate: ``combine(tangents)`` (the tangents of ``values``, in order)."""
    if not isinstance(L, Deferred):
        return [L], lambda grads: grads[0]

    def combine(grads: list) -> Any:
        # (Evaluated together: the derivative loop runs once for all of them.)
        dr.eval(*grads)
        return bk.Array3f(grads[0]) + L.second(grads[1:])
    return [L.L] + L.carried, combine


#: Candidate edges per edge sample (resampled importance sampling).
EDGE_CANDIDATES = 4


def resample_edge(scene: Any, sampler: Any, si: Any, rng: Any, active: Any, static: Any,
                  moving_edges: Any, candidates: int = EDGE_CANDIDATES) -> tuple:
    """An edge for the edge sample at vertex ``si``: ``candidates`` edges from
    ``sampler`` (length times silhouette likelihood), one kept in proportion
    to ``p̂ = c θ / r`` (θ the angle it subtends at ``x``, r its distance, c
    the larger |cosine| of its endpoints' directions to the normal at ``x``:
    the edges of x's own faces lie in its tangent plane and give nothing)
    where it is a silhouette or crease seen from ``x`` and can move relative
    to ``x`` (a static edge seen from a static vertex contributes nothing), by
    resampled importance sampling (Talbot et al. 2005). The term's integrand
    grows like ``θ / r`` near ``x`` (the angular velocity of a point at
    distance ``r``): vertices next to edges (objects resting on floors) would
    otherwise give rare, huge values. Returns the edge and ``p`` whose
    inverse weights the sample (``(Σ w_i / M) / p̂``, 0 where none fits)."""
    from .boundary.primary import FLAT_ANGLE
    from .boundary.sampling import Reservoir
    x, n_x = si.p, si.n
    pos = dr.detach(scene.positions)
    edges = scene.edges()
    reservoir = Reservoir(dr.width(x[0]))
    for _ in range(candidates):
        idx, pmf = sampler.sample(rng.next_float32())
        geo = edges.geometry(pos, idx, active)
        d0, d1 = geo.p0 - x, geo.p1 - x
        theta = dr.acos(dr.clip(dr.dot(safe_normalize(d0), safe_normalize(d1)), -1.0, 1.0))
        e = geo.p1 - geo.p0
        t = dr.clip(-dr.dot(d0, e) / dr.maximum(dr.squared_norm(e), 1e-30), 0.0, 1.0)
        r = dr.norm(dr.fma(e, t, d0))
        crease = ~geo.smooth & (geo.dihedral() > FLAT_ANGLE)
        relevant = ~static | dr.gather(bk.Bool, moving_edges, idx, active)
        ok = active & (pmf > 0) & (geo.silhouette_from(x) | crease) & relevant
        c = dr.maximum(dr.abs(dr.dot(n_x, safe_normalize(d0))),
                       dr.abs(dr.dot(n_x, safe_normalize(d1))))
        reservoir.offer(idx, dr.select(ok, c * theta / dr.maximum(r, 1e-20), 0.0), pmf,
                        rng.next_float32())
    return reservoir.result()


def edge_sample(integrator: Any, scene: Any, sampler: Any, si: Any, beta: Any, depth: Any,
                rng: Any, active: Any, static: Any, moving_edges: Any, sensor: Any,
                fixed_tris: Any, slide: tuple, compact: bool = False,
                sides_move: bool = False) -> tuple:
    """An edge point seen from vertex ``si`` (detached): ``(ok, edge, t, C, n_loc,
    C_pass, p_pass, C_face, prim_pass)`` with the term's coefficient ``C`` (its
    value is ``C · n_loc · ∂ω_loc/∂θ``) and the flow corrections of the sides
    whose next vertex is held (:func:`edge_flows`, :func:`edge_term`:
    ``C_pass``/``C_face`` the sides' shares of ``C``, zero where that side
    slides; ``p_pass`` and ``prim_pass`` the pass side's first hit);
    ``static``: lanes whose vertex does not move (see
    :func:`resample_edge`); ``fixed_tris``: :func:`static_triangles`;
    ``slide``: :func:`slide_bounds`; ``sides_move``: a side's next vertex may
    be held on a moving shape (``HOLD_MOVING``): a static edge seen from a
    static vertex then still moves relative to it (the part of that surface
    it hides changes), where its pass ray lands on a moving shape.
    At the first vertex the sample shares the integral with the edge-first
    samples of ``boundary/visible.py`` (multiple importance sampling).
    ``compact``: run the two nested radiance estimates on the lanes that need
    them only (:func:`compacted_pair`; not inside a symbolic loop)."""
    from .boundary.shadow import pass_offset
    edges = scene.edges()
    x = si.p
    idx, pmf = resample_edge(scene, sampler, si, rng, active, static & (not sides_move),
                             moving_edges)
    geo = edges.geometry(dr.detach(scene.positions), idx)
    e = geo.p1 - geo.p0
    # A point uniformly in the angle the edge subtends at x: the line
    # element's 1/r (an edge near x subtends a large angle) cancels.
    t, theta = sample_subtended(x, geo.p0, e, rng.next_float32())
    y = dr.fma(e, t, geo.p0)
    ok = active & (pmf > 0)
    m = geo.face_side(y - x)                   # plane (x, edge), towards the faces
    eps = pass_offset(y)
    origin = si.spawn_origin(y - x)
    d_pass = dr.normalize(y - m * eps - origin)
    d_face = dr.normalize(y + m * eps - origin)
    r = dr.norm(y - origin)
    # The pass ray must reach the edge unobstructed (its first hit is then the
    # first vertex of the pass side's radiance estimate: not traced again).
    t_hit, prim_pass, _, _, hit = scene.ray_intersect_preliminary(origin, d_pass, dr.inf, ok)
    ok &= ~hit | (t_hit > r * (1.0 - 1e-3))
    if sides_move:
        # (Before the nested estimates.)
        ok = static_edge_counts(scene, fixed_tris, static & ~dr.gather(bk.Bool, moving_edges,
                                                                         idx, ok),
                                hit, prim_pass, ok)
    first_pass = dr.select(hit, prim_pass, 0xFFFFFFFF)
    resume = dict(depth=depth + 1, prev_p=x, prev_pdf=0.0, prev_delta=False)
    if compact:
        # What the term needs after the estimates is evaluated with their inputs
        # (else the kernel after them would draw the edge again).
        dr.eval(idx, pmf, t, theta, y, m, ok, geo, si, beta, first_pass, origin, d_pass, d_face)
    pair = compacted_pair if compact else _pair
    L_pass, L_face = pair(integrator, scene, rng, (origin, d_pass, dr.inf),
                          (origin, d_face, dr.inf), ok, resume, (first_pass, None))
    w = dr.normalize(y - x)
    f = scene.eval_bsdf(si, si.to_local(w), ok)
    # |dω/dt| / pdf(t) = θ: the subtended angle.
    K = beta * f * (theta / dr.maximum(pmf, 1e-30))
    # An edge in the vertex's tangent plane (one of its own triangle's, or
    # one it rests against) is seen at a grazing angle: f·cos is 0 there, but
    # rounding leaves a tiny value times the huge 1/r of a vertex hit on the
    # edge itself (Cornell box, 256 spp: one such sample put 1e4 in a pixel).
    from .boundary.shadow import touches
    K = dr.select(touches(x, si.n, y), 0.0, K)
    if EDGE_FIRST_AT_CAMERA_VERTEX:
        from .boundary.visible import edge_first_weight
        w_vertex = 1.0 - edge_first_weight(sensor, geo, x, si.n, t)
        K *= dr.select(depth == 0, w_vertex, 1.0)
    C = K * (L_pass - L_face)
    ok &= hmax(dr.abs(C)) > 0
    C_pass, p_pass, C_face, prim_p = edge_flows(scene, fixed_tris, slide, idx, K * L_pass,
                                                -K * L_face, origin, d_pass, t_hit, prim_pass,
                                                hit, dr.norm(y - origin), ok)
    return (ok, idx, t, dr.select(ok, C, 0.0), dr.select(ok, si.to_local(m), 0.0),
            C_pass, p_pass, C_face, prim_p)


def edge_flows(scene: Any, fixed_tris: Any, slide: tuple, idx: Any, F_pass: Any,
               F_face: Any, origin: Any, d_pass: Any, t_pass: Any, prim_pass: Any,
               hit_pass: Any, t_face: Any, ok: Any) -> tuple:
    """The flow corrections of an edge sample (:func:`edge_term`): the sides'
    shares ``F_pass``/``F_face`` of its coefficient, times the part ``1 − α`` of
    the held parameterization's flow that does not slide (:func:`held_vertex`),
    where that side's next vertex is held (:func:`holds`; the pass side: the
    first hit of its ray from ``origin`` along ``d_pass``, at ``t_pass``, on
    ``prim_pass``; the face side: the edge's faces, at ``t_face``), else 0;
    the pass side's point and triangle (its material point moves with it).
    Sides that escape (or, without ``HOLD_MOVING``, land on moving shapes)
    slide along their rays (directions fixed in the vertex's frame): no
    correction."""
    edges = scene.edges()
    n = dr.width(ok)
    if not STATIC_MATERIAL_POINTS:
        z = dr.zeros(bk.Array3f, n)
        return z, z, z, dr.zeros(bk.UInt32, n)
    from ..geometry.edges import NO_FACE
    f0 = dr.gather(bk.UInt32, edges.f0, idx, ok)
    f1 = dr.gather(bk.UInt32, edges.f1, idx, ok)
    face_held = holds(scene, fixed_tris, f0, ok) & (
        (f1 == NO_FACE) | holds(scene, fixed_tris, f1, ok & (f1 != NO_FACE)))
    pass_held = holds(scene, fixed_tris, prim_pass, ok & hit_pass)
    t_pass = dr.select(pass_held, t_pass, 0.0)
    share_pass = dr.select(pass_held, 1.0 - slide_share(t_pass, slide), 0.0)
    share_face = dr.select(face_held, 1.0 - slide_share(t_face, slide), 0.0)
    return (F_pass * share_pass, dr.fma(d_pass, t_pass, origin), F_face * share_face,
            dr.select(pass_held, prim_pass, 0))


def _pair(integrator: Any, scene: Any, rng: Any, ray_a: tuple, ray_b: tuple, active: Any,
          resume: dict, first_prims: tuple, first_bary: Any = None) -> tuple:
    """``integrator.radiance_pair`` as ``Array3f``s."""
    extra = {} if first_bary is None else dict(first_bary=first_bary)
    return tuple(bk.Array3f(*L) for L in integrator.radiance_pair(
        scene, rng, ray_a, ray_b, active, resume, first_prims=first_prims, **extra))


def compacted_pair(integrator: Any, scene: Any, rng: Any, ray_a: tuple, ray_b: tuple,
                   active: Any, resume: dict, first_prims: tuple,
                   first_bary: Any = None) -> tuple:
    """:func:`_pair` on the ``active`` lanes only, gathered into arrays of their
    own (the same random numbers, the same results): masked SIMD lanes cost
    what active ones do, and in the Cornell box only 36 % of the edge samples
    at path vertices go on to the nested estimates. Evaluates its inputs
    (outside symbolic loops only)."""
    n = dr.width(active)
    fp_a, fp_b = first_prims
    resume = dict(resume, depth=bk.UInt32(resume["depth"]) + dr.zeros(bk.UInt32, n),
                  prev_p=bk.Array3f(resume["prev_p"]) + dr.zeros(bk.Array3f, n))
    inputs = [*ray_a, *ray_b, resume["depth"], resume["prev_p"], rng.state, rng.inc]
    inputs += [f for f in (fp_a, fp_b) if f is not None]
    bary = first_bary if isinstance(first_bary, tuple) or first_bary is None else (first_bary,)
    dr.eval(active, *inputs, *(bary or ()))
    idx = dr.compress(active)
    m = dr.width(idx)
    if m == 0:
        return dr.zeros(bk.Array3f, n), dr.zeros(bk.Array3f, n)

    def pick(v: Any) -> Any:
        return dr.gather(type(v), v, idx)
    sub = type(rng)(rng)
    sub.state, sub.inc = pick(rng.state), pick(rng.inc)
    res = dict(resume, depth=pick(resume["depth"]), prev_p=pick(resume["prev_p"]))
    firsts = tuple(None if f is None else pick(bk.UInt32(f)) for f in (fp_a, fp_b))
    if bary is not None:
        bary = tuple(pick(b) for b in bary)
        bary = bary if isinstance(first_bary, tuple) else bary[0]
    def pick_ray(ray: tuple) -> tuple:
        """(Lengths may be one value for all lanes, like ``dr.inf``.)"""
        return tuple(pick(v) if isinstance(v, dr.ArrayBase) and dr.width(v) == n else v
                     for v in ray)
    L_a, L_b = _pair(integrator, scene, sub, pick_ray(ray_a), pick_ray(ray_b),
                     dr.full(bk.Bool, True, m), res, firsts, bary)
    # Back to the full width by gathers at each active lane's rank among the
    # active ones (they fuse into the next kernel; scatters into zeroed arrays
    # cost a memset of fresh memory each: 9 × 6 ms in the Cornell box).
    dr.eval(L_a, L_b, sub.state)
    rank = dr.prefix_sum(bk.UInt32(active))
    out_a = dr.gather(bk.Array3f, L_a, rank, active)
    out_b = dr.gather(bk.Array3f, L_b, rank, active)
    rng.state = dr.select(active, dr.gather(bk.UInt64, sub.state, rank, active), rng.state)
    return out_a, out_b


def sample_subtended(x: Any, p0: Any, e: Any, u: Any) -> tuple:
    """A point of segment ``p0 + t e`` (t in [0, 1]) uniformly in the angle it
    subtends at ``x``: ``(t, θ)`` with θ that angle (the sample's density in t
    is ``|dω/dt| / θ``)."""
    d0, d1 = p0 - x, p0 + e - x
    u0 = dr.normalize(d0)
    u1 = dr.normalize(d1)
    theta = dr.acos(dr.clip(dr.dot(u0, u1), -1.0, 1.0))
    v = u1 - u0 * dr.dot(u1, u0)
    v = v * dr.rcp(dr.maximum(dr.norm(v), 1e-30))
    a = u * theta
    w = u0 * dr.cos(a) + v * dr.sin(a)
    nrm = dr.cross(d0, d1)
    den = dr.dot(dr.cross(e, w), nrm)
    t = dr.dot(dr.cross(w, d0), nrm) / dr.select(den != 0, den, 1.0)
    return dr.clip(t, 0.0, 1.0), theta


#: Candidate (emitter point, edge) pairs per shadow-line sample at a path
#: vertex (:func:`shadow_candidate`); 1: no resampling.
SHADOW_CANDIDATES = 2

#: How much less likely a candidate whose receiver fails the facing tests is
#: kept than one that passes (not 0: the tests look at the receiver under the
#: edge's midpoint, not at the point the sample ends on).
SHADOW_DEFENSIVE = 0.05


def shadow_candidate(scene: Any, choice: Any, si: Any, rng: Any, active: Any,
                     candidates: Optional[int] = None) -> tuple:
    """The emitter sample, edge, its weight's stand-in ``p`` and the receiver
    (triangle, hit) of a shadow-line sample at vertex ``si``: ``(s_l, edge,
    p, prim, hit)``. With several candidates one is kept by resampled
    importance sampling (Talbot et al. 2005; with the edge choice's own
    stand-ins as the candidates' weights: Lin et al. 2022, "Generalized
    Resampled Importance Sampling", ACM TOG 41(4)) in proportion to whether
    the vertex and the receiver under the edge's midpoint see each other from
    the front of their BSDFs, and the receiver the light: at the vertices of a
    path-traced smooth bunny only 14 % of the samples that reach that far do
    (floor points seeing the floor's own shadow in their plane, self-shadow
    lines lit from behind the shading normal; ``BENCHMARKS.md``).
    ``candidates``: default :data:`SHADOW_CANDIDATES`."""
    from .boundary.sampling import Reservoir
    from .boundary.shadow import pass_offset
    candidates = SHADOW_CANDIDATES if candidates is None else candidates
    n = dr.width(active)
    edges, pos = scene.edges(), dr.detach(scene.positions)
    reservoir = Reservoir(n)
    kept = None
    for _ in range(candidates):
        s_l = bk.Array3f(rng.next_float32(), rng.next_float32(), rng.next_float32())
        s_l2 = bk.Array2f(s_l[1], s_l[2])
        idx, p = choice.choose(scene, s_l[0], s_l2, rng, active)
        ok = active & (p > 0)
        geo = edges.geometry(pos, idx)
        y_mid = (geo.p0 + geo.p1) * 0.5
        d_mid, _, _, _, _ = scene.sample_emitter_direction(y_mid, s_l[0], s_l2, ok)
        o_mid = y_mid - geo.face_side(-d_mid) * pass_offset(y_mid)
        _, prim, _, _, hit = scene.ray_intersect_preliminary(o_mid, -d_mid, dr.inf, ok)
        if candidates == 1:
            return s_l, idx, p, prim, hit
        rcv = scene.compute_interaction(o_mid, -d_mid, prim, ok & hit)
        w = safe_normalize(rcv.p - si.p)
        rcv.wi = rcv.to_local(-w)
        facing = (ok & hit & (hmax(scene.eval_bsdf(si, si.to_local(w), ok & hit)) > 0)
                  & (hmax(scene.eval_bsdf(rcv, rcv.to_local(d_mid), ok & hit)) > 0))
        # (The target is the candidate's own density times the test: each is
        # kept in proportion to the test alone, and the kept one's weight is
        # never more than 1/SHADOW_DEFENSIVE times its own.)
        target = dr.select(ok, p * dr.select(facing, 1.0, SHADOW_DEFENSIVE), 0.0)
        take = reservoir.offer(idx, target, p, rng.next_float32())
        values = (s_l, prim, hit)
        kept = values if kept is None else tuple(dr.select(take, a, b)
                                                 for a, b in zip(values, kept))
    idx, p = reservoir.result()
    s_l, prim, hit = kept
    return s_l, idx, p, prim, hit & (p > 0)


def shadow_sample(scene: Any, choice: Any, si: Any, beta: Any, rng: Any, active: Any,
                  held: Optional[tuple] = None) -> tuple:
    """A point of a shadow line cast by an edge from an emitter sample,
    connected to vertex ``si``: ``(ok, edge, t, light sample, receiver
    triangle, C, n_loc, share)``, ``share`` the part of the flow of the
    receiver's points that does not slide where it is held (``held =
    (fixed_tris, slide)``, :func:`held_share`; else 0).

    The emitter point (or direction) is drawn first, then an edge that is a
    silhouette seen from it (``choice``, a
    :class:`~.boundary.shadow.ShadowEdgeChoice`: on a smooth mesh, a few edges
    near its terminator among thousands; drawn from all edges' silhouette
    likelihood, 99.9 % of the samples at the vertices of a path-traced bunny
    were no shadow line), the pair kept among :data:`SHADOW_CANDIDATES` by
    whether the vertex and the receiver face each other
    (:func:`shadow_candidate`); the shadow line is then
    sampled uniformly in the angle it subtends at ``si``, on the plane of the
    receiver behind the edge's midpoint: this cancels the ``1/r`` of the line
    element as seen from ``si``, which otherwise makes vertices next to a
    shadow (an object resting on a floor) produce rare, huge values."""
    from .boundary.sampling import receiver_tangent
    from .boundary.shadow import pass_offset, resting_on
    edges = scene.edges()
    s_l, idx, pmf, prim0, hit0 = shadow_candidate(scene, choice, si, rng, active)
    s_l2 = bk.Array2f(s_l[1], s_l[2])
    u_t = rng.next_float32()
    geo = edges.geometry(dr.detach(scene.positions), idx)
    e = geo.p1 - geo.p0
    x = si.p
    ok = active & (pmf > 0)
    # The emitter sample does not depend on the edge point it is drawn from
    # (area lights by area, others by direction): draw it at the midpoint.
    y_mid = geo.p0 + e * 0.5
    d_mid, dist_mid, _, _, _ = scene.sample_emitter_direction(y_mid, s_l[0], s_l2, ok)
    finite = ~dr.isinf(dist_mid)
    z = y_mid + d_mid * dr.select(finite, dist_mid, 0.0)
    to_l = d_mid                                  # for emitters at infinity
    m_mid = geo.face_side(-d_mid)
    o_mid = y_mid - m_mid * pass_offset(y_mid)
    plane = scene.compute_interaction(o_mid, -d_mid, prim0, hit0)
    a0, n0 = plane.p, plane.n
    # The edge's endpoints cast onto that plane.
    def cast(p):
        ray = dr.select(finite, p - z, -to_l)
        lam = dr.dot(n0, a0 - p) / dr.dot(n0, ray)
        return p + ray * lam, lam > 0
    q0, ok0 = cast(geo.p0)
    q1, ok1 = cast(geo.p1)
    angular = hit0 & ok0 & ok1 & dr.all(dr.isfinite(q0) & dr.isfinite(q1))
    s_q, theta_q = sample_subtended(x, q0, q1 - q0, u_t)
    q = dr.fma(q1 - q0, s_q, q0)
    # Back to the edge: where the line from the emitter through q meets it.
    line = dr.select(finite, q - z, to_l)
    nrm = dr.cross(e, line)
    base = dr.select(finite, geo.p0 - z, geo.p0 - q)
    den = dr.dot(dr.cross(e, line), nrm)
    t_ang = dr.clip(-dr.dot(dr.cross(base, line), nrm) / dr.select(den != 0, den, 1.0), 0.0, 1.0)
    t = dr.select(angular, t_ang, u_t)
    y = dr.fma(e, t, geo.p0)
    d_l, dist_l, pdf_l, w_l, _ = scene.sample_emitter_direction(y, s_l[0], s_l2, ok)
    finite = ~dr.isinf(dist_l)
    ok &= (pdf_l > 0) & (hmax(w_l) > 0) & geo.silhouette_towards(d_l)
    m = geo.face_side(-d_l)
    y_pass = y - m * pass_offset(y)
    ok &= ~scene.ray_test(y_pass, d_l, dr.select(finite, dist_l * (1.0 - 1e-4), dr.inf), ok)
    _, prim, _, _, hit = scene.ray_intersect_preliminary(y_pass, -d_l, dr.inf, ok)
    ok &= hit & ~scene.bsdf_delta_only(prim, hit)
    rcv = scene.compute_interaction(y_pass, -d_l, prim, ok)
    # A contact (see shadow.contact_motion): its shadow line moves only when the
    # edge lifts off, by half; seen from path vertices near it, that half cost
    # more noise than it removed bias (pyramid lifted, path 3, 8192 spp: 0.052
    # with it, noise 0.014; 0.046 without, noise 0.006): left out.
    ok &= ~resting_on(scene, geo, prim, rcv, y)
    to_r = rcv.p - x
    r = dr.norm(to_r)
    w = to_r / dr.maximum(r, 1e-30)
    origin = si.spawn_origin(w)
    ok &= ~scene.ray_test(origin, w, dr.norm(rcv.p - origin) * (1.0 - 1e-3), ok)
    rcv.wi = rcv.to_local(-w)
    f_r = scene.eval_bsdf(rcv, rcv.to_local(d_l), ok)
    f = scene.eval_bsdf(si, si.to_local(w), ok)
    ratio2 = dr.select(finite, dr.square(dist_l / dr.maximum(dist_l + rcv.t, 1e-30)), 1.0)
    F = beta * f * f_r * w_l * ratio2
    # The shadow line's tangent, its image in the directions from x, and the lit side.
    scale = dr.select(finite, (dist_l + rcv.t) / dr.maximum(dist_l, 1e-30), 1.0)
    tau = receiver_tangent(e, -d_l, rcv.n, scale)
    tau_perp = tau - w * dr.dot(tau, w)
    n_c = safe_normalize(dr.cross(w, tau_perp))
    lit = -m + rcv.n * dr.dot(m, rcv.n)
    lit_plus = dr.dot(n_c, lit) > 0
    jump = dr.select(lit_plus, -F, F)          # F(-n side) - F(+n side)
    # |dω/dt| at the shadow line point over the density of t.
    dw_dt = dr.norm(tau_perp) / dr.maximum(r, 1e-30)
    scale_q = dr.select(finite, dr.norm(q - z) / dr.maximum(dr.norm(y - z), 1e-30), 1.0)
    tau_q = receiver_tangent(e, -d_l, n0, scale_q)
    w_q = safe_normalize(q - x)
    dwq_dt = dr.norm(tau_q - w_q * dr.dot(tau_q, w_q)) / dr.maximum(dr.norm(q - x), 1e-30)
    pdf_t = dr.select(angular, dwq_dt / dr.maximum(theta_q, 1e-30), 1.0)
    C = jump * (dw_dt / dr.maximum(pdf_t * pmf, 1e-30))
    ok &= (pdf_t > 0) & dr.all(dr.isfinite(C)) & (hmax(dr.abs(C)) > 0)
    share = (held_share(scene, held, si, prim, rcv.p, ok) if held is not None
             else dr.zeros(bk.Float, dr.width(ok)))
    return (ok, idx, t, s_l, prim, dr.select(ok, C, 0.0), dr.select(ok, si.to_local(n_c), 0.0),
            share)


def edge_term(scene: Any, si: Any, idx: Any, t: Any, C: Any, n_loc: Any, active: Any,
              flows: Optional[tuple] = None, fixed: Any = None) -> Any:
    """Attached edge term of an edge sample,

        C · n · ω̇  −  C_pass · n · Φ̇_pass  −  C_face · n · Φ̇_face

    (``ω`` the local direction to the moving edge point). A side of the edge
    whose next vertex is held (:func:`held_vertex`) has a flow of its own in
    the directions of a moving vertex, ``Φ̇`` towards its material point
    times the part that does not slide: the boundary moves relative to it (Reynolds'
    transport theorem with a flow per side); ``flows = (C_pass, p_pass,
    C_face, prim_pass)`` from :func:`edge_flows` (that part folded into the
    shares, zero where a side needs none; ``fixed``: :func:`static_triangles`).
    Zero in value."""
    y = scene.edges().moving_point(scene.positions, idx, t, active=active)
    w = si.to_local(safe_normalize(y - si.p))
    value = dr.dot(n_loc, w - dr.detach(w)) * C
    if flows is not None and STATIC_MATERIAL_POINTS:
        # (The sides' held points move with their triangles: the face side's
        # is the edge point itself, the pass side's the material point under
        # its first hit.)
        C_pass, p_pass, C_face, prim_pass = flows
        p_pass = material_point(scene, prim_pass, p_pass, active & (hmax(dr.abs(C_pass)) > 0),
                                fixed)
        for C_side, point in ((C_pass, p_pass), (C_face, y)):
            w_flow = _flow_direction(si, point, 1.0)
            value = value - dr.dot(n_loc, w_flow - dr.detach(w_flow)) * C_side
    return dr.select(active, value, 0.0)


def shadow_term(scene: Any, si: Any, idx: Any, t: Any, s_l: Any, prim: Any, C: Any,
                n_loc: Any, active: Any, share: Any = None, fixed: Any = None) -> Any:
    """Attached shadow-line term of a shadow sample: the shadow line point is
    where the ray from the (fixed material) emitter point through the edge point
    meets the receiving triangle. Where the receiver's point is held
    (:func:`held_vertex`), the line's motion is taken relative to the part
    ``share`` of its flow that does not slide (:func:`edge_term`), both sides
    being that surface."""
    geo = scene.edges().geometry(dr.detach(scene.positions), idx, active)
    z, to_light, finite = scene.emitter_position(dr.fma(geo.p1 - geo.p0, t, geo.p0), s_l[0],
                                                 bk.Array2f(s_l[1], s_l[2]), active)
    y = scene.edges().moving_point(scene.positions, idx, t, active=active)
    o = dr.select(finite, z, y)
    d = dr.select(finite, y - z, -to_light)
    x = scene.compute_interaction(o, d, prim, active).p
    w = si.to_local(safe_normalize(x - si.p))
    w_flow = (dr.detach(w) if share is None
              else _flow_direction(si, material_point(scene, prim, x, active, fixed), share))
    return dr.select(active, C * dr.dot(n_loc, w - w_flow), 0.0)


def sample_terms(scene: Any, si: Any, samples: tuple, rims: bool, fixed: Any) -> Any:
    """The attached terms of the boundary samples ``samples`` (in the order of
    ``_SAMPLE_FIELDS``) at vertex ``si``: edge, shadow line and (``rims``) rim;
    ``fixed``: :func:`static_triangles`."""
    (a_ok, a_edge, a_t, a_c, a_n, a_cp, a_pp, a_cf, a_ppr, b_ok, b_edge, b_t, b_s, b_prim,
     b_c, b_n,
     b_h, r_ok, r_prim, r_b, r_c, r_h) = samples
    L = (edge_term(scene, si, a_edge, a_t, a_c, a_n, a_ok, (a_cp, a_pp, a_cf, a_ppr), fixed)
         + shadow_term(scene, si, b_edge, b_t, b_s, b_prim, b_c, b_n, b_ok, b_h, fixed))
    if rims:
        from .boundary.vertex_rims import rim_term
        L = L + rim_term(scene, si, r_prim, r_b, r_c, r_ok, r_h)
    return L


def held_share(scene: Any, held: tuple, si: Any, prim: Any, point: Any, active: Any) -> Any:
    """``1 − α`` where the next vertex after ``si``, at ``point`` on triangle
    ``prim``, is held (:func:`holds`; ``held = (fixed_tris, slide)``), else 0:
    the part of its flow that does not slide (:func:`held_vertex`)."""
    fixed_tris, slide = held
    on = holds(scene, fixed_tris, prim, active)
    t = dr.norm(dr.detach(point) - dr.detach(si.p))
    return dr.select(on, 1.0 - slide_share(t, slide), 0.0)


# ---------------------------------------------------------------------------
# the path loop (primal, forward, record)
# ---------------------------------------------------------------------------
def _bsdf_step(bsdf: Any) -> Any:
    """At a vertex: the BSDF at next-event estimation's points ``wos`` (with
    their detached densities where there are partners and the BSDF is glossy:
    ``nee.EmitterSamples``), and the sampled direction."""
    def step(si: Any, wos: tuple, ons: tuple, s1: Any, s2: Any, act: Any) -> tuple:
        z1, z3 = dr.zeros(bk.Float, dr.width(act)), dr.zeros(bk.Array3f, dr.width(act))
        if bsdf.glossy and len(wos) > 1:
            f, pb = zip(*(bsdf.eval_pdf(si, wo, on) for wo, on in zip(wos, ons)))
            pb = tuple(dr.detach(p) for p in pb)
        else:
            f = (bsdf.eval(si, wos[0], ons[0]),) + (z3,) * (len(wos) - 1)
            pb = (z1,) * len(wos)
        bs = bsdf.sample(si, s1, s2, act)
        return (tuple(f), pb, bs.wo, dr.detach(bs.pdf), bs.weight, bk.Bool(bs.delta),
                bk.Float(bs.eta))
    return step


def _emission(scene: Any, si: Any, hit: Any, d: Any, act: Any, counts: Any) -> Any:
    """Emission reaching the previous vertex along ``d``, where it counts."""
    Le = scene.eval_area_emitter(si, hit & counts)
    Le_env = scene.eval_environment(d, act & ~hit & counts)
    return dr.select(counts, Le + Le_env, 0.0)


def trace(integrator: Any, scene: Any, rng: Any, sensor: Any, film_pos: Any, mode: str,
          interior: bool = True, edges: bool = True, edge_prob: float = 1.0) -> Any:
    """Follow camera paths through ``film_pos``.

    ``mode='primal'``: radiance (detached); ``'forward'``: the attached estimate
    (tangents propagate through it); ``'record'``: a :class:`Record` for
    :func:`replay`. ``interior``/``edges``: include the interior contributions
    and/or the vertices' boundary samples; ``edge_prob``: the probability that a
    path takes boundary samples at its vertices (they are weighted by its
    inverse).
    """
    diff = mode == "forward"
    recording = mode == "record"
    n = dr.width(rng.state)
    max_depth = integrator.max_depth if integrator.max_depth > 0 else integrator._UNBOUNDED
    max_depth_o = dr.opaque(bk.UInt32, max_depth)
    rr_depth_o = dr.opaque(bk.UInt32, integrator.rr_depth)
    hide = integrator.hide_emitters
    tables = nee.glossy_tables(scene)
    samplers = [nee.bsdf_direction(b) for b in scene.bsdfs]
    steps = [_bsdf_step(b) for b in scene.bsdfs]
    points = 1 if tables is None else 4      # next-event estimation's points per vertex
    any_smooth = any(not getattr(b, "delta_only", False) for b in scene.bsdfs)
    has_emitters = len(scene.emitters) > 0
    from .boundary.shadow import ShadowEdgeChoice, edge_motion_weights, silhouette_weights
    from .boundary.vertex_rims import rim_sample, smooth_triangle_sampler
    sampler = silhouette_weights(scene, sensor) if edges else None
    shadow_edges = ShadowEdgeChoice(scene, sensor, sampler) if edges else None
    rim_sampler = smooth_triangle_sampler(scene) if edges else None
    rims = edges and not rim_sampler.empty
    edges = edges and not (sampler.empty and not rims)
    shape_moving, camera_moving = _motion_tables(scene, sensor)
    sides_move = HOLD_MOVING and bool(dr.any(shape_moving))
    hold, fixed_tris, slide, exact = _hold_tables(integrator, scene, shape_moving)
    held = (fixed_tris, slide) if hold else None
    if edges:
        from .boundary.rims import rim_motion_by_shape
        rims_moving = rim_motion_by_shape(scene)
        with dr.suspend_grad():
            moving_edges = edge_motion_weights(scene, 0.0) > 0
    # Boundary samples need two more segments (to the next vertex, then light).
    edge_depth = dr.opaque(bk.UInt32, max_depth - 2 if max_depth >= 2 else 0)
    fields = record_fields(tables)
    cap = record_capacity(fields) if recording else 0

    with dr.resume_grad(when=diff):
        o, d, tmax = sensor.sample_ray(film_pos)
    if not diff:
        o, d, tmax = dr.detach(o), dr.detach(d), dr.detach(tmax)
    # What the edge samples' MIS weight at the camera vertex measures the film
    # density with: the camera, or the pinhole of each path's own lens point.
    through = getattr(sensor, "view_through", None)
    camera_view = sensor if through is None or not edges else through(film_pos)
    # Boundary samples draw from a generator of their own, so that the paths
    # are the same with and without them (the parts of a derivative then add up
    # sample by sample).
    with dr.suspend_grad():
        seed_e = bk.UInt64(rng.next_uint32())
        lane = bk.UInt64(dr.arange(bk.UInt32, n))
        rng_e = bk.PCG32(size=n, initstate=seed_e, initseq=lane)
        # ... and the samples at the chosen vertex from another stream, made
        # here: a generator left by the loop is one of its (primal) outputs.
        rng_s = bk.PCG32(size=n, initstate=seed_e, initseq=lane + n)
        w_film, h_film = sensor.resolution
        period = n // (w_film * h_film) if n % (w_film * h_film) == 0 else 0
        if edges and edge_prob < 1.0 and period > 1:
            # The first k of each pixel's samples (lanes are pixel-major) take
            # boundary samples: SIMD packets of the other lanes then skip the
            # nested radiance loops entirely (random choices would leave some
            # lane of almost every packet active, and cost as much as p = 1).
            k = min(period, max(1, int(round(edge_prob * period))))
            takes = (dr.arange(bk.UInt32, n) % dr.opaque(bk.UInt32, period)) < k
            edge_weight = dr.select(takes, period / k, 0.0)
        elif edges and edge_prob < 1.0:
            # Which paths take boundary samples (decided once per path).
            takes = rng_e.next_float32() < dr.opaque(bk.Float, edge_prob)
            edge_weight = dr.select(takes, 1.0 / edge_prob, 0.0)
        else:
            takes, edge_weight = dr.full(bk.Bool, True, n), dr.ones(bk.Float, n)
    if edges:
        # The boundary samples' values where a vertex takes none (passed into
        # the conditional below: literals made inside a branch fail LLVM).
        z1, z3, zu = dr.zeros(bk.Float, n), dr.zeros(bk.Array3f, n), dr.zeros(bk.UInt32, n)
        nothing = (dr.zeros(bk.Bool, n), zu, z1, z3, z3, z3, z3, z3, zu,
                   dr.zeros(bk.Bool, n), zu, z1, z3, zu, z3, z3, z1,
                   dr.zeros(bk.Bool, n), zu, dr.zeros(bk.Array2f, n), z3, z1)
    def samples_at(si_d: Any, beta_e: Any, depth: Any, rng_e: Any, on: Any, static: Any,
                   none: tuple, compact: bool = False) -> tuple:
        """The boundary samples at vertex ``si_d`` (detached): edge, shadow
        line, rim (``_SAMPLE_FIELDS``); ``none`` where a kind has no candidates;
        ``compact``: see :func:`edge_sample`."""
        if sampler.empty:
            a, b = none[_EDGE:_SHADOW], none[_SHADOW:_RIM]
        else:
            a = edge_sample(integrator, scene, sampler, si_d, beta_e, depth, rng_e, on, static,
                            moving_edges, camera_view, fixed_tris, slide, compact, sides_move)
            b = shadow_sample(scene, shadow_edges, si_d, beta_e, rng_e, on, held)
        # (Rims: compacting their estimates measured slower, the pick of the
        # rim is what costs; their lanes are few: 4.5 % on the bunny.)
        c = rim_sample(integrator, scene, rim_sampler, si_d, beta_e, depth, rng_e, on, static,
                       rims_moving, held) if rims else none[_RIM:]
        return tuple(a) + tuple(b) + tuple(c)

    def chosen_samples(o: Any, d: Any, prim: Any, depth: Any, beta: Any, w: Any, wsum: Any,
                       static: Any, compact: bool = False) -> tuple:
        """``(ok, si, samples)``: the boundary samples at each path's chosen
        vertex (detached), reached by the ray ``(o, d)`` on triangle ``prim``,
        with throughput ``beta`` and weight ``w`` of the reservoir's ``wsum``."""
        ok = wsum > 0
        with dr.suspend_grad():
            si_s = scene.compute_interaction(o, d, prim, ok).detached()
            beta_e = beta * dr.select(ok, edge_weight * wsum / dr.maximum(w, 1e-30), 0.0)
            return ok, samples_at(si_s, beta_e, depth, rng_s, ok, static, nothing, compact)

    # Each iteration finds the next vertex's triangle at its end (whether that
    # vertex is held decides the segment's factor); the camera rays' first here.
    with dr.suspend_grad():
        _, prim0, _, _, hit0 = scene.ray_intersect_preliminary(
            dr.detach(o), dr.detach(d), dr.detach(tmax), dr.full(bk.Bool, True, n),
            coherent=True)
    state = dict(depth=dr.zeros(bk.UInt32, n), L=dr.opaque(bk.Array3f, 0.0, n),
                 beta=dr.ones(bk.Array3f, n), eta=dr.ones(bk.Float, n), o=o, d=d,
                 prim_n=prim0, hit_n=bk.Bool(hit0), mat=dr.zeros(bk.Bool, n),
                 active=dr.full(bk.Bool, True, n), rng=rng, rng_e=rng_e,
                 prev_delta=dr.full(bk.Bool, True, n))
    if edges:
        # Lanes whose vertices so far stay where they are (no moving camera,
        # no moving surface on the way): static edges give them nothing.
        state["static"] = dr.full(bk.Bool, not camera_moving, n)
        if ONE_VERTEX_PER_PATH:
            # The vertex chosen so far (weighted reservoir over the path's
            # vertices): the ray that reached it, its triangle and depth, the
            # throughput there and whether it is static; the weights' sum.
            state.update(sel_o=dr.zeros(bk.Array3f, n), sel_d=dr.zeros(bk.Array3f, n),
                         sel_wsum=dr.zeros(bk.Float, n))
    carry = diff and edges and ONE_VERTEX_PER_PATH and CARRY_TANGENTS
    if edges and ONE_VERTEX_PER_PATH and not carry:
        state.update(sel_prim=dr.zeros(bk.UInt32, n), sel_depth=dr.zeros(bk.UInt32, n),
                     sel_beta=dr.zeros(bk.Array3f, n), sel_w=dr.zeros(bk.Float, n),
                     sel_static=dr.zeros(bk.Bool, n), sel_held=dr.zeros(bk.Bool, n))
    if carry:
        # Forward mode: the chosen vertex's detached values leave the loop as
        # the *tangents* of carriers ``unit · value`` (``unit`` a leaf of
        # tangent 1), so that one loop, the derivative loop, yields them and the
        # derivatives together; reading the loop's primal outputs instead would
        # put a second, primal copy of the loop into the kernel.
        with dr.resume_grad():
            unit = bk.Float(1.0)
            dr.enable_grad(unit)
            dr.set_grad(unit, 1.0)
            state.update({k: unit * dr.zeros(getattr(bk, tp), n) for k, tp in _CARRIERS.items()})
    if recording:
        rec = {name: dr.alloc_local(getattr(bk, tp), cap) for name, tp, _ in fields}
        state["rec"] = rec
        state["L_beyond"] = dr.zeros(bk.Array3f, n)

    def cond(st: dict) -> Any:
        return st["active"]

    def body(st: dict) -> tuple:
        act, depth, rng = st["active"], st["depth"], st["rng"]
        beta = st["beta"]
        with dr.resume_grad(when=diff):
            o, d = st["o"], st["d"]
            prim, hit = st["prim_n"], st["hit_n"] & act
            si = scene.compute_interaction(o, d, prim, hit)
            si, alpha = held_vertex(scene, si, o, st["mat"] & hit if hold else None, slide,
                                    exact)
            first = depth == 0
            counts = st["prev_delta"] & ~(first & hide)
            emitted = beta * _emission(scene, si, hit, d, act, counts)
            act_next = hit & (depth + 1 < max_depth_o)
            bsdf_idx = dr.gather(bk.UInt32, scene.prim_bsdf, si.prim, act_next)
            s_em1, s_em2, s_b1, s_b2 = vertex_samples(rng)
            s_em = bk.Array3f(s_em1, s_em2[0], s_em2[1])
            act_nee = act_next if (any_smooth and has_emitters) else act_next & False
            # (Glossy vertices draw a point by the BSDF too, with numbers of
            # its own.)
            s_nb = s_em if tables is None else bk.Array3f(
                rng.next_float32(), rng.next_float32(), rng.next_float32())
            ns = nee.emitter_samples(scene, si, s_em, s_nb, act_nee, bsdf_idx, tables,
                                     samplers)
            vis = ns.found[0]
            args = (si, ns.wo[:points], ns.found[:points], s_b1, s_b2, act_next)
            out = steps[0](*args) if len(steps) == 1 else dr.switch(bsdf_idx, steps, *args)
            f_nee, pb_nee, wo, pdf_b, weight_b, delta_b, eta_b = out
            a_nee = (1.0,) if tables is None else ns.coefficients(pb_nee)
            nee_c = nee.nee_value(beta, f_nee, ns.w, a_nee, ns.found)
            contrib = emitted + nee_c if interior else dr.zeros(bk.Array3f, n)
            # Boundary samples at this vertex (not at delta vertices).
            b_act = act_next & ~delta_b & (depth < edge_depth) & takes
            L_add = contrib
            if edges:
                with dr.suspend_grad():
                    # (A vertex held at its material point, α = 0, is static
                    # whatever moved before it.)
                    still = st["mat"] & (alpha <= 0) if hold else False
                    static = ((st["static"] | still)
                              & ~dr.gather(bk.Bool, shape_moving, si.shape, hit))
            if edges and ONE_VERTEX_PER_PATH:
                with dr.suspend_grad():
                    # Weighted reservoir sampling (Chao 1982) of one vertex per
                    # path, in proportion to its throughput.
                    w_v = dr.select(b_act, hmax(dr.detach(beta)), 0.0)
                    wsum = st["sel_wsum"] + w_v
                    pick = (w_v > 0) & (st["rng_e"].next_float32() * wsum < w_v)
                with dr.resume_grad(when=diff):
                    chosen = dict(sel_o=o, sel_d=d)
                    if not carry:
                        chosen.update(sel_prim=prim, sel_depth=depth, sel_beta=dr.detach(beta),
                                      sel_w=w_v, sel_static=static,
                                      sel_held=st["mat"] & hit)
                    chosen = {k: dr.select(pick, v, st[k]) for k, v in chosen.items()}
                    chosen["sel_wsum"] = wsum
                if carry:
                    with dr.resume_grad():
                        values = dict(car_o=dr.detach(o), car_d=dr.detach(d),
                                      car_beta=dr.detach(beta),
                                      car_prim_lo=bk.Float(prim & 0xFFFF),
                                      car_prim_hi=bk.Float(prim >> 16),
                                      car_depth=bk.Float(depth), car_w=w_v,
                                      car_static=dr.select(static, 1.0, 0.0),
                                      car_held=dr.select(st["mat"] & hit, 1.0, 0.0))
                        chosen.update({k: dr.select(pick, unit * v, st[k])
                                       for k, v in values.items()})
                        chosen["car_wsum"] = unit * wsum
            elif edges:
                with dr.suspend_grad():
                    si_d = si.detached()
                    beta_e = dr.detach(beta) * edge_weight
                    rng_e = st["rng_e"]
                    def take(rng_e: Any, b_act: Any, *none: Any) -> tuple:
                        return (rng_e, b_act) + samples_at(si_d, beta_e, depth, rng_e, b_act,
                                                           static, none)

                    def skip(rng_e: Any, b_act: Any, *none: Any) -> tuple:
                        return (rng_e, b_act) + none
                    # A conditional: SIMD packets where no lane takes boundary
                    # samples skip their nested radiance loops and rays.
                    rng_e, _, *samples = dr.if_stmt(
                        (rng_e, b_act) + nothing, b_act, take, skip,
                        label="lumigrad.pathgeo.boundary_samples")
                if diff:
                    L_add = L_add + sample_terms(scene, si, tuple(samples), rims, fixed_tris)
            # The next ray: the sampled local direction, turned with the frame.
            wo_d = dr.select(delta_b, wo, dr.detach(wo))
            wo_world = si.to_world(wo_d)
            next_o = si.spawn_origin(wo_world)
            weight = dr.select(delta_b, weight_b, dr.detach(weight_b))
        valid_b = act_next & (hmax(dr.detach(weight_b)) > 0) & (pdf_b > 0)
        eta = st["eta"] * dr.select(valid_b, dr.detach(eta_b), 1.0)
        depth_next = depth + 1
        rr_active = depth_next >= rr_depth_o
        # (The segment's attached factor below is 1 in value.)
        q = dr.minimum(hmax(dr.select(valid_b, dr.detach(beta) * dr.detach(weight), 0.0))
                       * dr.square(eta), 0.95)
        survive = ~rr_active | (rng.next_float32() < q)
        # The next vertex contributes nothing unless its emission counts (after a
        # delta bounce) or it has a vertex after it (next-event estimation and
        # boundary samples need one): skip that segment's ray (for ``direct``,
        # every second ray).
        useful = delta_b | (depth_next + 1 < max_depth_o)
        act_new = valid_b & survive & useful
        # The next vertex, and whether it is held (held_vertex).
        with dr.suspend_grad():
            _, prim_n, _, _, hit_n = scene.ray_intersect_preliminary(
                dr.detach(next_o), dr.detach(wo_world), dr.inf, act_new)
            hit_n = hit_n & act_new
            mat_n = dr.zeros(bk.Bool, n)
            if hold:
                mat_n = hit_n & ~delta_b & holds(scene, fixed_tris, prim_n, hit_n)
        with dr.resume_grad(when=diff):
            f_wo = segment_ratio(scene, si, wo, delta_b, act_next, mat_n if hold else None,
                                 next_o, wo_world, prim_n, slide, fixed_tris)
        beta_next = dr.select(valid_b, beta * weight * (f_wo if diff else 1.0), 0.0)
        beta_next = dr.select(rr_active, beta_next * dr.rcp(dr.maximum(dr.detach(q), 1e-8)),
                              beta_next)
        keep = lambda new, old: dr.select(act_new, new, old)  # noqa: E731
        if not diff:
            next_o, wo_world = dr.detach(next_o), dr.detach(wo_world)
        out_st = dict(depth=dr.select(act, depth_next, depth),
                      L=dr.select(act, st["L"] + L_add, st["L"]),
                      beta=dr.select(act_new, beta_next, 0.0), eta=eta,
                      o=keep(next_o, o), d=keep(wo_world, d),
                      prim_n=prim_n, hit_n=hit_n, mat=mat_n,
                      active=act_new, rng=rng, rng_e=st["rng_e"],
                      prev_delta=keep(delta_b, st["prev_delta"]))
        if edges:
            out_st["static"] = keep(static, st["static"])
            if ONE_VERTEX_PER_PATH:
                out_st.update(chosen)
                out_st["rng_e"] = st["rng_e"]
        if recording:
            rec = st["rec"]
            on = act & (depth < cap)
            slot = dr.minimum(depth, cap - 1)
            flags = (_flag(hit, F_HIT) | _flag(delta_b, F_DELTA) | _flag(vis, F_VIS)
                     | _flag(st["prev_delta"], F_PREV_DELTA) | _flag(act_new, F_CONT)
                     | _flag(st["mat"] & hit, F_MAT) | _flag(ns.found[1], F_ANTI)
                     | _flag(ns.found[2], F_BNEE) | _flag(ns.found[3], F_BANTI))
            values = dict(prim=prim, wo=dr.select(delta_b, bk.Array3f(s_b1, s_b2[0], s_b2[1]),
                                                  dr.detach(wo)),
                          s_em=s_em, beta=dr.detach(beta), ray_o=dr.detach(o),
                          ray_d=dr.detach(d))
            if tables is not None:
                values.update(n_prim=ns.prim[1], n_bary=ns.bary[1], m_prim=ns.prim[2],
                              m_bary=ns.bary[2], o_prim=ns.prim[3], o_bary=ns.bary[3],
                              n_a=bk.Array2f(a_nee[0], a_nee[1]),
                              o_a=bk.Array2f(a_nee[2], a_nee[3]))
            if edges and ONE_VERTEX_PER_PATH:
                # (Zeros where no sample is written: garbage would reach the
                # reverse pass through dr.select's untaken branches.)
                values.update((k, v) for k, v in zip(_SAMPLE_FIELDS, nothing)
                              if not k.endswith("_ok"))
            elif edges:
                named = dict(zip(_SAMPLE_FIELDS, samples))
                flags |= _sample_flags(named)
                values.update((k, v) for k, v in named.items() if not k.endswith("_ok"))
            values["flags"] = flags
            for name, value in values.items():
                rec[name].write(getattr(bk, TYPES[name])(dr.detach(value)), slot, on)
            out_st["rec"] = rec
            out_st["L_beyond"] = st["L_beyond"] + dr.select(act & (depth >= cap),
                                                             dr.detach(contrib), 0.0)
        # (In the order of the loop's state: dr.while_loop matches them by position.)
        return ({k: out_st[k] for k in st},)

    (final,) = dr.while_loop((state,), cond, body, label="lumigrad.pathgeo")
    rng.state, rng.inc = final["rng"].state, final["rng"].inc
    L = final["L"]
    if carry:
        def at_chosen(grads: list) -> Any:
            """The boundary terms at the chosen vertices, from the tangents of
            the carriers and of the vertices' rays (a forward pass of their
            own: returns their per-lane tangents)."""
            g = dict(zip(list(_CARRIERS) + ["sel_o", "sel_d"], grads))
            prim = (bk.UInt32(dr.round(g["car_prim_lo"]))
                    | (bk.UInt32(dr.round(g["car_prim_hi"])) << 16))
            o_s, d_s = bk.Array3f(g["car_o"]), bk.Array3f(g["car_d"])
            ok, samples = chosen_samples(o_s, d_s, prim, bk.UInt32(dr.round(g["car_depth"])),
                                         bk.Array3f(g["car_beta"]), g["car_w"], g["car_wsum"],
                                         g["car_static"] > 0.5, compact=COMPACT_PAIRS)
            with dr.resume_grad():
                o_a, d_a = bk.Array3f(o_s), bk.Array3f(d_s)
                dr.enable_grad(o_a, d_a)
                dr.set_grad(o_a, bk.Array3f(g["sel_o"]))
                dr.set_grad(d_a, bk.Array3f(g["sel_d"]))
                si_a, _ = held_vertex(scene, scene.compute_interaction(o_a, d_a, prim, ok), o_a,
                                      ok & (g["car_held"] > 0.5) if hold else None, slide,
                                      exact)
                L_b = sample_terms(scene, si_a, samples, rims, fixed_tris)
                dr.forward_to(L_b, flags=dr.ADFlag.ClearInterior | dr.ADFlag.AllowNoGrad)
                return bk.Array3f(dr.detach(dr.grad(L_b)))
        return Deferred(L, [final[k] for k in _CARRIERS] + [final["sel_o"], final["sel_d"]],
                        at_chosen)
    if edges and ONE_VERTEX_PER_PATH:
        # The chosen vertex's boundary samples, after the loop: their nested
        # radiance estimates run once per path, not in every SIMD packet at
        # every depth where some lane takes them.
        depth_s = final["sel_depth"]
        ok, samples = chosen_samples(dr.detach(final["sel_o"]), dr.detach(final["sel_d"]),
                                     final["sel_prim"], depth_s, final["sel_beta"],
                                     final["sel_w"], final["sel_wsum"], final["sel_static"])
        if diff:
            with dr.resume_grad():
                si_a = scene.compute_interaction(final["sel_o"], final["sel_d"],
                                                 final["sel_prim"], ok)
                si_a, _ = held_vertex(scene, si_a, final["sel_o"],
                                      ok & final["sel_held"] if hold else None, slide, exact)
                L = L + sample_terms(scene, si_a, samples, rims, fixed_tris)
        if recording:
            rec = final["rec"]
            on = ok & (depth_s < cap)
            slot = dr.minimum(depth_s, cap - 1)
            values = dict(zip(_SAMPLE_FIELDS, samples))
            values["flags"] = rec["flags"].read(slot, on) | _sample_flags(values)
            for name, value in values.items():
                if name in TYPES:
                    rec[name].write(getattr(bk, TYPES[name])(dr.detach(value)), slot, on)
    if recording:
        return Record(final["rec"], dr.minimum(final["depth"], cap), final["L_beyond"],
                      interior, edges)
    return L


def _motion_tables(scene: Any, sensor: Any) -> tuple:
    """Per shape: whether its vertices move (a ``Bool`` table); and whether the
    camera moves."""
    import numpy as np
    from .boundary import moves_geometry
    with dr.resume_grad():
        moving = np.array([bool(dr.grad_enabled(s.world_positions())) for s in scene.shapes])
    return bk.Bool(moving), moves_geometry(scene, sensor)["sensor"]


def _hold_tables(integrator: Any, scene: Any, shape_moving: Any) -> tuple:
    """What the path loop and its replay hold vertices by (:func:`held_vertex`):
    ``(hold, fixed_tris, slide, exact)`` — whether any vertex is held (with at
    most two segments no vertex after the first is reached by a non-delta
    bounce and shaded: none is), :func:`static_triangles`,
    :func:`slide_bounds` and :func:`recomputed_triangles`."""
    hold = STATIC_MATERIAL_POINTS and not 0 < integrator.max_depth <= 2
    exact = recomputed_triangles(scene) if hold else None
    return hold, static_triangles(scene, shape_moving), slide_bounds(scene), exact


class Record:
    """What :func:`trace` wrote for the reverse pass of each lane."""

    def __init__(self, fields: dict, count: Any, L_beyond: Any, interior: bool,
                 edges: bool) -> None:
        self.fields, self.count, self.L_beyond = fields, count, L_beyond
        self.interior, self.edges = interior, edges


# ---------------------------------------------------------------------------
# the reverse pass
# ---------------------------------------------------------------------------
def replay(integrator: Any, scene: Any, record: Record, sensor: Any, film_pos: Any,
           delta_L: Any) -> None:
    """Back-propagate ``delta_L · L`` through the recorded paths, last vertex
    first (see the module docstring)."""
    n = dr.width(record.count)
    interior, edges = record.interior, record.edges
    hide = integrator.hide_emitters
    delta_L = bk.Array3f(dr.detach(delta_L))
    hold, fixed_tris, slide, exact = _hold_tables(integrator, scene,
                                                  _motion_tables(scene, sensor)[0])
    tables = nee.glossy_tables(scene)
    # (next_*: the vertex after the one replayed, held or not, and its
    # triangle: the segment's factor depends on them.)
    state = dict(k=bk.UInt32(record.count) + dr.zeros(bk.UInt32, n),
                 L_after=bk.Array3f(record.L_beyond),
                 rho_o=dr.zeros(bk.Array3f, n), rho_d=dr.zeros(bk.Array3f, n),
                 next_held=dr.zeros(bk.Bool, n), next_prim=dr.zeros(bk.UInt32, n),
                 rec=record.fields)

    def cond(st: dict) -> Any:
        return st["k"] > 0

    def body(st: dict) -> tuple:
        act = st["k"] > 0
        slot = st["k"] - 1
        rec = st["rec"]
        r = {name: rec[name].read(slot, act) for name in rec}
        flags = r["flags"]
        hit = act & _has(flags, F_HIT)
        delta = _has(flags, F_DELTA)
        cont = act & _has(flags, F_CONT)
        beta = r["beta"]
        with dr.resume_grad():
            o = bk.Array3f(r["ray_o"])
            d = bk.Array3f(r["ray_d"])
            dr.enable_grad(o, d)
            si = scene.compute_interaction(o, d, r["prim"], hit)
            held = hit & _has(flags, F_MAT)
            si, _ = held_vertex(scene, si, o, held if hold else None, slide, exact)
            counts = _has(flags, F_PREV_DELTA) & ~((slot == 0) & hide)
            emitted = beta * _emission(scene, si, hit, d, act, counts)
            s_em = r["s_em"]
            nee_on = hit & _has(flags, F_VIS)
            if len(scene.emitters) > 0:
                d_em, _, w_em, _ = nee.sample_emitter(scene, si, s_em, nee_on)
                dirs, w, found = [d_em], [w_em], [nee_on]
                if tables is not None:
                    # (nee.EmitterSamples: the partner, the BSDF's point, its
                    # partner; their detached factors as recorded.)
                    for bit, at in ((F_ANTI, "n_"), (F_BNEE, "m_"), (F_BANTI, "o_")):
                        on_k = hit & _has(flags, bit)
                        d_k, _, _, w_k = scene.emitter_direction_at(
                            si.p, r[at + "prim"], r[at + "bary"], on_k)
                        dirs, w, found = dirs + [d_k], w + [w_k], found + [on_k]
                f = [scene.eval_bsdf(si, si.to_local(d_k), on_k) for d_k, on_k in zip(dirs, found)]
                a = ((1.0,) if tables is None else
                     (r["n_a"][0], r["n_a"][1], r["o_a"][0], r["o_a"][1]))
                nee_c = nee.nee_value(beta, f, w, a, found)
            else:
                nee_c = dr.zeros(bk.Array3f, n)
            contrib = emitted + nee_c
            # The BSDF factor of the sampled direction and the ray leaving the vertex.
            stored = r["wo"]
            bsdf_idx = dr.gather(bk.UInt32, scene.prim_bsdf, si.prim, cont)

            def delta_step(bsdf: Any) -> Any:
                def f(si: Any, s: Any, act: Any) -> tuple:
                    if not getattr(bsdf, "has_delta", False):
                        z = dr.zeros(bk.Array3f, dr.width(s))
                        return z, z
                    bs = bsdf.sample(si, s[0], bk.Array2f(s[1], s[2]), act)
                    return bs.wo, bs.weight
                return f

            dsteps = [delta_step(b) for b in scene.bsdfs]
            d_args = (si, stored, cont & delta)
            wo_delta, w_delta = (dsteps[0](*d_args) if len(dsteps) == 1
                                 else dr.switch(bsdf_idx, dsteps, *d_args))
            wo = dr.select(delta, wo_delta, stored)
            wo_world = si.to_world(wo)
            next_o = si.spawn_origin(wo_world)
            ratio = dr.select(delta, _ratio(w_delta),
                              segment_ratio(scene, si, stored, delta, cont,
                                            cont & st["next_held"] if hold else None,
                                            next_o, wo_world,
                                            st["next_prim"], slide, fixed_tris))
            total = dr.select(cont, dr.dot(st["rho_o"], next_o) + dr.dot(st["rho_d"], wo_world),
                              0.0)
            local = dr.select(cont, st["L_after"] * ratio, 0.0)
            if interior:
                local = local + contrib
            if edges:
                si_b = si
                on = dict(a_ok=act & _has(flags, F_EDGE), b_ok=act & _has(flags, F_SHADOW),
                          r_ok=act & _has(flags, F_RIM))
                samples = tuple(on[k] if k in on else r[k] for k in _SAMPLE_FIELDS)
                local = local + sample_terms(scene, si_b, samples, scene.has_normals,
                                             fixed_tris)
            total = total + dr.sum(delta_L * local)
            dr.backward_from(dr.select(act, total, 0.0),
                             flags=dr.ADFlag.ClearInterior | dr.ADFlag.AllowNoGrad)
            rho_o, rho_d = dr.grad(o), dr.grad(d)
        L_after = st["L_after"] + (dr.detach(contrib) if interior else 0.0)
        out = dict(k=dr.select(act, st["k"] - 1, st["k"]),
                   L_after=dr.select(act, L_after, st["L_after"]),
                   rho_o=dr.select(act, bk.Array3f(dr.detach(rho_o)), st["rho_o"]),
                   rho_d=dr.select(act, bk.Array3f(dr.detach(rho_d)), st["rho_d"]),
                   next_held=dr.select(act, held, st["next_held"]),
                   next_prim=dr.select(act, r["prim"], st["next_prim"]),
                   rec=rec)
        return (out,)

    with dr.suspend_grad():
        (final,) = dr.while_loop((state,), cond, body, label="lumigrad.pathgeo.replay")
    # The first ray is the camera's, attached to its parameters.
    with dr.resume_grad():
        o, d, _ = sensor.sample_ray(film_pos)
        dr.backward_from(dr.dot(final["rho_o"], o) + dr.dot(final["rho_d"], d),
                         flags=dr.ADFlag.ClearInterior | dr.ADFlag.AllowNoGrad)
