"""The ``path`` (alias ``prb``) and ``direct`` integrators.

Unidirectional path tracing with next-event estimation, combined with BSDF
sampling by multiple importance sampling (power heuristic; Veach 1997, PhD
thesis, ch. 9), and Russian roulette (Arvo & Kirk 1990) after ``rr_depth``
bounces. Semantics follow Mitsuba 3: ``max_depth`` counts path segments
(1: emitters seen directly, 2: direct illumination, -1: unbounded),
``hide_emitters`` hides emitters seen directly by the camera.

Differentiation (see ``base.py``): at path vertex *k* with detached throughput
β_k, the estimator's dependence on the scene parameters θ is captured by the
*local* term

    Lo_k = β_k · (Le_k(θ) + NEE_k(θ)) + L_after_k · f_k(θ) / detach(f_k)

where ``f_k`` is the BSDF value (times cosine) in the sampled direction and
``L_after_k`` the radiance this sample collects after vertex *k* (known from
the primal pass). Sampling decisions (directions, pdfs, Russian roulette) are
detached, so forward mode (tangents through the loop) and reverse mode (path
replay: ``dr.backward_from(δL · Lo_k)`` at every vertex) compute the same
per-sample derivative — that of the same estimator. Memory is constant in the
path length in both modes.

Speed (``PathIntegrator.plain_shortcuts``): plain renders skip, packet by packet,
shading and emission that no lane needs, trace no shadow ray for a light sample that
weighs nothing, and find the emission at the last vertex of a bounded path (every
second vertex of ``direct``) with the lights' triangles and one any-hit query
instead of a closest hit; every sample keeps its value (tests/test_render_shortcuts.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import drjit as dr

from .. import backend as bk
from ..scene.schema import Param, register
from ..core.math import hmax
from ..scene.scene import INVALID
from .base import BUDGET_PARAMS, SamplingIntegrator, mis_weight, shadow_segment
from .replay import (TAPE_CONTINUED, TAPE_DELTA, TAPE_OCCLUDED, TAPE_PRIM, RecordLayout,
                     bsdf_ratio, plan_record, record_capacity, replay_recorded,
                     vertex_samples)

#: Plain renders find the emission at the last vertex of a bounded path (every
#: second vertex of ``direct``) without a closest-hit query when the area lights
#: have at most this many triangles in all (``_last_segment``).
LAST_SEGMENT_MAX_EMITTER_TRIANGLES = 16

#: "No forced first triangle" (``_sample_standard(first_prim=...)``).
TAPE_PRIM_NONE = 0xFFFFFFFF

#: Longest per-lane hit tape of the reverse pass (words of local memory): paths
#: with ``max_depth`` up to this record every vertex; longer or unbounded ones
#: record their first ``TAPE_MAX_DEPTH`` vertices and re-trace the rays of the
#: rest (rare: Russian roulette ends nearly every path before).
TAPE_MAX_DEPTH = 64


@dataclass
class Tape:
    """Per-lane memory of the reverse pass (``PathIntegrator.make_tape``).

    ``hits``: one word per vertex, the triangle hit and flags (``replay.TAPE_*``);
    ``record``: with a ``layout``, the detached per-vertex values of
    ``replay.replay_recorded``. Set by the primal pass: ``vertices``, how many
    vertices each lane's path has, and (paths may outgrow the tape)
    ``checkpoint``, the loop state at the first vertex beyond it, from which
    the replay of the recorded part continues by shading again.
    """

    hits: Any
    layout: Optional[RecordLayout] = None
    record: Any = None
    vertices: Any = None
    checkpoint: Optional[dict] = None

    def __len__(self) -> int:
        return len(self.hits)


def _bsdf_step(bsdf: Any, differentiable: bool) -> Any:
    """One dispatch per vertex: NEE evaluation and BSDF sampling of one material."""

    def step(si: Any, wo_nee: Any, s1: Any, s2: Any, act_nee: Any, act: Any) -> tuple:
        f_nee, pdf_nee = bsdf.eval_pdf(si, wo_nee, act_nee)
        bs = bsdf.sample(si, s1, s2, act)
        wo = dr.detach(bs.wo)
        weight = dr.detach(bs.weight)
        if differentiable:
            # Attached BSDF value along the (detached) sampled direction, divided
            # by its detached value: 1 in the primal, d f / f in derivatives.
            ratio = bsdf_ratio(bsdf.eval(si, wo, act & ~bs.delta), bs.delta, bs.weight)
        else:
            ratio = dr.ones(bk.Array3f, dr.width(s1))
        return (f_nee, dr.detach(pdf_nee), wo, dr.detach(bs.pdf), weight, bk.Bool(bs.delta),
                dr.detach(bk.Float(bs.eta)), ratio)

    return step


def _at_material_point(scene: Any, si: Any, prim: Any, bary: Any, d: Any, use: Any) -> Any:
    """``si`` where ``use`` is False; elsewhere the point of triangle ``prim`` at
    barycentrics ``bary``, seen along direction ``d`` (a grazing ray's own hit
    point is too imprecise where a boundary term needs the very point)."""
    from dataclasses import replace
    mp = scene.material_interaction(prim, bary, use)
    mp.wi = mp.to_local(-d)
    fields = [f for f in ("p", "n", "sh_n", "uv", "wi", "bary", "dp_du", "dp_dv")
              if getattr(si, f) is not None and getattr(mp, f) is not None]
    return replace(si, **{f: dr.select(use, getattr(mp, f), getattr(si, f)) for f in fields})


@register
class PathIntegrator(SamplingIntegrator):
    """Path tracer with next-event estimation, MIS and Russian roulette."""

    PLUGIN = ("integrator", ("path", "prb", "prb_basic"))
    PARAMS = {
        "max_depth": Param("int", -1, min=-1),
        "rr_depth": Param("int", 5, min=1),
        "hide_emitters": Param("bool", False),
        **BUDGET_PARAMS,
    }

    def __init__(self, max_depth: int = -1, rr_depth: int = 5, hide_emitters: bool = False,
                 id: Optional[str] = None, **budgets: Any) -> None:
        super().__init__(id, **budgets)
        if max_depth == 0 or max_depth < -1:
            raise ValueError(f"max_depth must be -1 (unbounded) or >= 1, got {max_depth}")
        self.max_depth = int(max_depth)
        self.rr_depth = int(rr_depth)
        self.hide_emitters = bool(hide_emitters)

    #: Combine emitter hits of BSDF-sampled rays with next-event estimation by
    #: MIS (True), or count emitters only through next-event estimation (and
    #: after delta bounces). The derivative passes turn MIS off while shadows
    #: move (see ``SamplingIntegrator.derivative_estimator``).
    emitter_mis = True
    #: Plain renders (no tape) take shortcuts that leave every sample's value
    #: unchanged: symbolic conditionals that SIMD packets skip when no lane needs
    #: shading or emission, the emission-only last segment of bounded paths
    #: (``_last_segment``), and no shadow ray where the sample weighs nothing.
    #: Forward-mode passes and the reverse mode's recording pass take the last
    #: segment too (conditionals with attached values fail in the render's isolated
    #: AD scope, and a zero value, e.g. of a black albedo, can have a nonzero
    #: derivative). False: no shortcut.
    plain_shortcuts = True
    #: Derivative passes use the estimator of ``pathgeo.py`` (set by
    #: ``SamplingIntegrator.derivative_estimator`` while geometry, the camera
    #: or lights carry gradients).
    pathspace = False
    #: ``radiance(first_bary=...)`` is supported (``SamplingIntegrator``)
    rim_sides_at_point = True

    def _edges_with_interior(self, scene: Any, sensor: Any, terms: Optional[tuple],
                             spp: int) -> float:
        """Probability with which the interior's paths also take the indirect
        boundary samples (``boundary/indirect.py``): they ride along the
        interior's paths when both parts are wanted (one loop; Dr.Jit 1.5 cannot
        propagate tangents through two such loops at once)."""
        from .boundary import indirect
        if terms is not None and "indirect" not in terms:
            return 0.0
        if not indirect.IndirectEdges().needed(scene, sensor, self):
            return 0.0
        budget = self.sppie if self.sppie is not None else spp
        return min(1.0, budget / max(spp, 1))

    def _interior_forward(self, scene: Any, sensor: Any, rng: Any, o: Any, d: Any, tmax: Any,
                          film_pos: Any, terms: Optional[tuple] = None, spp: int = 1) -> Any:
        if not self.pathspace:
            return super()._interior_forward(scene, sensor, rng, o, d, tmax, film_pos)
        from . import pathgeo
        p = self._edges_with_interior(scene, sensor, terms, spp)
        return pathgeo.trace(self, scene, rng, sensor, film_pos, "forward", interior=True,
                             edges=p > 0, edge_prob=p)

    def _interior_backward(self, scene: Any, sensor: Any, g: Any, seed: int, i: int,
                           spp_pass: int, spp: int, terms: Optional[tuple] = None) -> None:
        if not self.pathspace:
            return super()._interior_backward(scene, sensor, g, seed, i, spp_pass, spp)
        from . import pathgeo
        p = self._edges_with_interior(scene, sensor, terms, spp)
        with dr.suspend_grad():
            rng, pixel, _, _, _ = self._camera_rays(scene, sensor, seed, i, spp_pass)
            pos = self._last_film_pos
            record = pathgeo.trace(self, scene, rng, sensor, pos, "record", interior=True,
                                   edges=p > 0, edge_prob=p)
        delta_L = bk.Array3f(*[dr.gather(bk.Float, g, pixel * self.channels + c)
                               for c in range(3)]) * (1.0 / spp)
        pathgeo.replay(self, scene, record, sensor, pos, delta_L)
        dr.eval()

    # Upper bound used for the loop when max_depth is unbounded (rays escape or
    # Russian roulette ends every path long before this).
    _UNBOUNDED = 1 << 30

    def make_tape(self, scene: Any, sensor: Any, n: int) -> Optional[Tape]:
        """Per-lane memory for path replay (see ``sample``): a hit tape of
        ``max_depth`` words, at most ``TAPE_MAX_DEPTH`` (None if that is 0:
        replay by re-tracing), and when the gradients enabled now allow it
        (``replay.plan_record``), a record of each vertex's detached values."""
        if self.pathspace:
            return None
        bounded = 0 < self.max_depth <= TAPE_MAX_DEPTH
        size = self.max_depth if bounded else TAPE_MAX_DEPTH
        if size <= 0 or scene._n_faces >= TAPE_PRIM:
            return None
        layout = plan_record(scene, sensor)
        if layout is not None:
            size = min(size, record_capacity(layout))
        tape = Tape(hits=dr.alloc_local(bk.UInt32, size))
        if layout is not None:
            tape.layout, tape.record = layout, layout.alloc(size)
        return tape

    def radiance(self, scene: Any, rng: Any, o: Any, d: Any, tmax: Any, active: Any,
                 resume: Optional[dict] = None, first_prim: Any = None,
                 first_bary: Any = None) -> list:
        n = dr.width(active)
        tmax = bk.Float(tmax) + dr.zeros(bk.Float, n)
        full = None
        if resume is not None:
            full = dict(
                depth=bk.UInt32(resume["depth"]) + dr.zeros(bk.UInt32, n),
                prev_p=bk.Array3f(resume["prev_p"]),
                prev_pdf=bk.Float(resume["prev_pdf"]) + dr.zeros(bk.Float, n),
                prev_delta=bk.Bool(resume.get("prev_delta", False)) | dr.zeros(bk.Bool, n))
        with dr.suspend_grad():
            L = self._sample_standard(scene, rng, o, d, tmax, active, mode="primal", resume=full,
                                      first_prim=first_prim, first_bary=first_bary)
        return [L[c] for c in range(3)]

    # Loop state a path needs to go on from a vertex (besides the ray and the
    # generator): saved by the primal pass where a path outgrows the record.
    _RESUME_STATE = ("depth", "beta", "eta", "prev_p", "prev_pdf", "prev_delta")

    def _replay_from_record(self, scene: Any, tape: Tape, rng: Any, delta_L: Any,
                            L_primal: Any) -> None:
        """Reverse pass from the vertex record; vertices beyond it (paths longer
        than the tape) are replayed by shading again, from the checkpoint."""
        cap = len(tape)
        L_rem = replay_recorded(scene, tape.layout, tape.hits, tape.record,
                                dr.minimum(tape.vertices, cap), rng, delta_L, L_primal)
        ck = tape.checkpoint
        if ck is not None:
            rng_on = type(rng)(rng)
            rng_on.state, rng_on.inc = ck["rng_state"], ck["rng_inc"]
            self._sample_standard(scene, rng_on, ck["o"], ck["d"], ck["tmax"], tape.vertices > cap,
                        mode="backward", delta_L=delta_L, L_primal=L_rem,
                        resume={k: ck[k] for k in self._RESUME_STATE})

    def sample(self, scene: Any, rng: Any, o: Any, d: Any, tmax: Any, active: Any,
               mode: str = "primal", delta_L: Any = None, L_primal: Any = None,
               camera: Any = None, tape: Any = None, resume: Optional[dict] = None,
               first_prim: Any = None) -> Any:
        """Radiance along camera rays, or their derivatives (see
        :meth:`_sample_standard`; while geometry, the camera or lights carry
        gradients the derivative passes use ``pathgeo.py`` instead)."""
        return self._sample_standard(scene, rng, o, d, tmax, active, mode, delta_L, L_primal,
                                     camera, tape, resume, first_prim)

    @staticmethod
    def _emitter_triangles(scene: Any) -> Optional[list]:
        """Global indices of the area lights' triangles, or None when there are
        more than LAST_SEGMENT_MAX_EMITTER_TRIANGLES."""
        prims = [off + i for off, count, *_ in scene._area_tables for i in range(count)]
        return prims if len(prims) <= LAST_SEGMENT_MAX_EMITTER_TRIANGLES else None

    @staticmethod
    def _last_segment(scene: Any, prims: list, o: Any, d: Any, tmax: Any, act: Any,
                      n: int) -> tuple:
        """``(prim, hit, escaped)`` of the rays of a path's last segment, whose hit
        serves only to find emission: the nearest area-light triangle along the
        ray (each tested, their vertices are scalar kernel inputs), then one any-hit
        query for an occluder before it (a margin of 1e-4 of its distance, as
        shadow rays) or, with an environment light, before infinity for rays that
        hit no light. ``hit``: the light triangle ``prim`` is the first hit;
        ``escaped``: nothing is hit. Elsewhere the first hit is a surface that does
        not emit, which is all the path needs to know there: the same estimate as
        a closest-hit query, with an any-hit query for a few rays instead."""
        from ..geometry.bvh import _triangle_test
        t_em = bk.Float(tmax) + dr.zeros(bk.Float, n)
        prim = dr.full(bk.UInt32, INVALID, n)
        for k in prims:
            _, (p0, p1, p2) = scene._triangle(bk.UInt32(k), True)
            e1, e2 = p1 - p0, p2 - p0
            rec = [p0[0], p0[1], p0[2], e1[0], e1[1], e1[2], e2[0], e2[1], e2[2]]
            h, t, _, _ = _triangle_test(o, d, rec, t_em)
            h &= act
            t_em = dr.select(h, t, t_em)
            prim = dr.select(h, k, prim)
        on_light = prim != INVALID
        if scene.environment is not None:
            test = act
            seg = dr.select(on_light, t_em * (1.0 - 1e-4), dr.inf)
        else:
            test = act & on_light
            seg = t_em * (1.0 - 1e-4)
        occluded = scene.ray_test(o, d, seg, test)
        hit = act & on_light & ~occluded
        escaped = act & ~on_light & ~occluded
        if scene.environment is None:
            escaped = escaped & False
        return prim, hit, escaped

    @staticmethod
    def _emission_skipping(scene: Any, si: Any, ray_d: Any, prev_p: Any, prev_d: Any,
                           act: Any, n: int, escaped: Any = None) -> tuple:
        """``(Le, Le_env, pdf_area, pdf_env)`` of a vertex, as ``Scene.eval_area_emitter``,
        ``eval_environment``, ``pdf_area_emitter``, ``pdf_environment`` give them, each
        pair computed in a symbolic conditional on the lanes it concerns (zeros
        elsewhere, as those functions give there); ``escaped``: the rays that
        left the scene, where not ``act & ~si.valid``. The default values enter as
        arguments: literals made in a branch fail LLVM's verifier (Dr.Jit 1.5)."""
        z3, z = dr.zeros(bk.Array3f, n), dr.zeros(bk.Float, n)
        Le, pdf_area, Le_env, pdf_env = z3, z, z3, z
        if scene.area_emitters:
            on_area = act & si.valid & (scene.emitter_index(si, act) != INVALID)
            Le, pdf_area = dr.if_stmt(
                (on_area, z3, z), on_area,
                lambda m, a, b: (scene.eval_area_emitter(si, m),
                                 scene.pdf_area_emitter(prev_p, si, m)),
                lambda m, a, b: (a, b), label="lumigrad.path.area_emission")
        if scene.environment is not None:
            on_env = act & ~si.valid if escaped is None else escaped
            Le_env, pdf_env = dr.if_stmt(
                (on_env, z3, z), on_env,
                lambda m, a, b: (scene.eval_environment(ray_d, m),
                                 scene.pdf_environment(prev_p, prev_d, m)),
                lambda m, a, b: (a, b), label="lumigrad.path.environment")
        return Le, Le_env, pdf_area, pdf_env

    def _sample_standard(self, scene: Any, rng: Any, o: Any, d: Any, tmax: Any, active: Any,
                         mode: str = "primal", delta_L: Any = None, L_primal: Any = None,
                         camera: Any = None, tape: Any = None,
                         resume: Optional[dict] = None, first_prim: Any = None,
                         first_bary: Any = None) -> Any:
        """Radiance along each ray (``mode='primal'``/``'forward'``), or path
        replay (``'backward'``). With a ``tape`` (``make_tape``), the primal mode
        records each vertex's hit triangle and shadow-ray outcome and returns
        ``(L, tape)``; the backward mode then reads them back instead of tracing
        rays again, so the replay costs only the shading (the two loops must run
        in one kernel: the tape is per-lane local memory, constant in size).
        ``resume``: loop state (``_RESUME_STATE``) of paths that start at a later
        vertex (the ray ``o, d`` leaves it). ``first_prim``: the triangle the
        first ray hits, given; ``first_bary``: also the point of it, given by its
        barycentrics (the ray then only sets the direction it is seen from; a
        negative first coordinate: the ray's own hit point).
        """
        if mode == "backward" and tape is not None and tape.layout is not None:
            return self._replay_from_record(scene, tape, rng, delta_L, L_primal)
        diff = mode != "primal"
        record = tape is not None and mode == "primal"
        replay = tape is not None and mode == "backward"
        layout = tape.layout if record else None
        # Vertices beyond the tape (only when it is shorter than max_depth) are
        # neither recorded nor read: the replay traces their rays again.
        tape_len = len(tape) if tape is not None else 0
        overflow = tape is not None and not (0 < self.max_depth <= tape_len)
        backward = mode == "backward"
        n = dr.width(active)
        max_depth = self.max_depth if self.max_depth > 0 else self._UNBOUNDED
        max_depth_o = dr.opaque(bk.UInt32, max_depth)
        rr_depth_o = dr.opaque(bk.UInt32, self.rr_depth)
        hide = self.hide_emitters
        emitter_mis = self.emitter_mis
        bsdfs = scene.bsdfs
        steps = [_bsdf_step(b, diff) for b in bsdfs]
        any_smooth = any(not getattr(b, "delta_only", False) for b in bsdfs)
        has_emitters = len(scene.emitters) > 0
        # Plain renders skip the shading of packets where no path goes on (see body).
        skip_idle = self.plain_shortcuts and not diff and tape is None
        # They and forward-mode passes find the emission at a bounded path's last
        # vertex by cheaper queries (a detached choice of the triangle hit).
        # The reverse mode's recording pass too: there a ray of a last segment that
        # hits a surface that does not emit is recorded as a hit of triangle
        # ``stand_in`` (one that does not emit): the replay then finds no emission
        # there either, and the vertex weighs nothing else.
        last_prims, stand_in = None, None
        if self.plain_shortcuts and ((tape is None and mode in ("primal", "forward")) or record) \
                and 1 < self.max_depth < self._UNBOUNDED and has_emitters:
            last_prims = self._emitter_triangles(scene)
            if record and last_prims is not None:
                stand_in = next((k for k in range(len(last_prims) + 1)
                                 if k not in last_prims and k < scene._n_faces), None)
                last_prims = last_prims if stand_in is not None else None

        o = dr.detach(o)
        d = dr.detach(d)
        tmax = dr.detach(tmax)
        # Camera parameters with gradients: the primary ray is regenerated inside
        # the loop, attached to them (the loop state itself stays detached in
        # reverse mode), so the first hit slides over its triangle as they change.
        sensor, film_pos = camera if camera is not None else (None, None)
        camera_grad = diff and sensor is not None and (
            dr.grad_enabled(sensor.to_world.matrix) or dr.grad_enabled(sensor.x_fov))
        if backward:
            L_rem = bk.Array3f(dr.detach(L_primal))
            delta_L = bk.Array3f(dr.detach(delta_L))
        else:
            L_rem = dr.zeros(bk.Array3f, n)
            delta_L = dr.zeros(bk.Array3f, n)

        state = dict(
            depth=dr.zeros(bk.UInt32, n),
            # Opaque: with no emitter every contribution is a literal zero, and a
            # literal loop variable would be folded differently on re-recording.
            L=dr.opaque(bk.Array3f, 0.0, n),
            beta=dr.ones(bk.Array3f, n),
            eta=dr.ones(bk.Float, n),
            o=o, d=d, tmax=tmax,
            prev_p=bk.Array3f(o),
            prev_pdf=dr.ones(bk.Float, n),
            prev_delta=dr.full(bk.Bool, True, n),
            active=bk.Bool(active),
            rng=rng,
            L_rem=L_rem,
        )
        if resume is not None:
            state.update(resume)
        if first_prim is not None:
            # The triangle the first ray hits, given (boundary terms: the face
            # beside an edge, which a ray that close to the edge may miss).
            state["forced"] = bk.UInt32(first_prim) + dr.zeros(bk.UInt32, n)
            if first_bary is not None:
                state["forced_bary"] = bk.Array2f(first_bary) + dr.zeros(bk.Array2f, n)
        if tape is not None:
            state["tape"] = tape.hits
        if layout is not None:
            state["record"] = tape.record
            if overflow:
                keep = ("o", "d", "tmax") + self._RESUME_STATE
                state["checkpoint"] = dict({k: state[k] for k in keep},
                                           rng_state=rng.state, rng_inc=rng.inc)
        # (Tape words are range-checked before use as triangle indices.)
        n_faces = dr.opaque(bk.UInt32, scene._n_faces) if replay else None

        def cond(st: dict) -> Any:
            return st["active"]

        def body(st: dict) -> dict:
            act = st["active"]
            depth = st["depth"]
            beta = st["beta"]
            rng = st["rng"]
            if "checkpoint" in st:
                # The first vertex beyond the record: keep the state it starts from.
                at = act & (depth == tape_len)
                now = dict({k: st[k] for k in st["checkpoint"] if k in st},
                           rng_state=rng.state, rng_inc=rng.inc)
                checkpoint = {k: dr.select(at, now[k], v) for k, v in st["checkpoint"].items()}
            with dr.resume_grad(when=diff):
                ray_o, ray_d = st["o"], st["d"]
                if camera_grad:
                    o_cam, d_cam, _ = sensor.sample_ray(film_pos)
                    ray_o = dr.select(depth == 0, o_cam, ray_o)
                    ray_d = dr.select(depth == 0, d_cam, ray_d)
                # Rays whose first triangle is given are not traced.
                traced = act & (st["forced"] == TAPE_PRIM_NONE) if "forced" in st else act
                if replay:
                    on_tape = depth < tape_len if overflow else act
                    slot = dr.minimum(depth, tape_len - 1) if overflow else depth
                    word = st["tape"].read(slot, act & on_tape)
                    prim = word & TAPE_PRIM
                    hit = act & (prim < n_faces)
                    if overflow:
                        _, prim_r, _, _, hit_r = scene.ray_intersect_preliminary(
                            ray_o, ray_d, st["tmax"], act & ~on_tape, coherent=depth == 0)
                        prim = dr.select(on_tape, prim, prim_r)
                        hit = act & dr.select(on_tape, hit, hit_r)
                elif last_prims is not None:
                    # The last segment of a bounded path: emission only (see
                    # _last_segment), in a conditional that other depths skip.
                    last = act & (depth > 0) & (depth + 1 >= max_depth_o)
                    _, prim, _, _, hit = scene.ray_intersect_preliminary(
                        ray_o, ray_d, st["tmax"], traced & ~last, coherent=depth == 0)
                    z_u, z_b = dr.zeros(bk.UInt32, n), dr.zeros(bk.Bool, n)
                    with dr.suspend_grad():
                        prim_l, hit_l, esc_l = dr.if_stmt(
                            (last, z_u, z_b, z_b), last,
                            lambda m, a, b, c: self._last_segment(
                                scene, last_prims, dr.detach(ray_o), dr.detach(ray_d),
                                dr.detach(st["tmax"]), m, n),
                            lambda m, a, b, c: (a, b, c), label="lumigrad.path.last_segment")
                    if stand_in is not None:
                        other = last & ~hit_l & ~esc_l
                        prim_l = dr.select(other, stand_in, prim_l)
                        hit_l = hit_l | other
                    prim = dr.select(last, prim_l, prim)
                    hit = dr.select(last, hit_l, hit & traced)
                    escaped = dr.select(last, esc_l, act & ~hit)
                else:
                    _, prim, _, _, hit = scene.ray_intersect_preliminary(
                        ray_o, ray_d, st["tmax"], traced, coherent=depth == 0)
                    hit = hit & traced
                if "forced" in st:
                    use = act & (st["forced"] != TAPE_PRIM_NONE)
                    prim = dr.select(use, st["forced"], prim)
                    hit = hit | use
                    if last_prims is not None:
                        escaped = escaped & ~use
                si = scene.compute_interaction(ray_o, ray_d, prim, hit)
                if "forced_bary" in st:
                    si = _at_material_point(scene, si, prim, st["forced_bary"], ray_d,
                                            act & (st["forced"] != TAPE_PRIM_NONE)
                                            & (st["forced_bary"][0] >= 0))

                # --- emission found by the previous BSDF sample (or the camera)
                first = depth == 0
                if skip_idle and has_emitters:
                    # As the shading below: emitters are evaluated in symbolic
                    # conditionals, skipped by packets where no lane hit an area
                    # light (or none left the scene).
                    Le, Le_env, pdf_area, pdf_env = self._emission_skipping(
                        scene, si, ray_d, st["prev_p"], st["d"], act, n,
                        escaped if last_prims is not None else None)
                else:
                    Le = scene.eval_area_emitter(si, act)
                    Le_env = scene.eval_environment(
                        ray_d, escaped if last_prims is not None else act & ~si.valid)
                    if has_emitters:
                        pdf_area = scene.pdf_area_emitter(st["prev_p"], si, act)
                        pdf_env = scene.pdf_environment(st["prev_p"], st["d"], act)
                if has_emitters:
                    pdf_em = dr.select(si.valid, pdf_area, pdf_env)
                    w_mis = dr.select(st["prev_delta"], 1.0, mis_weight(st["prev_pdf"], pdf_em)
                                      if emitter_mis else 0.0)
                else:
                    w_mis = dr.ones(bk.Float, n)
                if hide:
                    w_mis = dr.select(first, 0.0, w_mis)
                emitted = beta * (Le + Le_env) * w_mis

                # --- vertex continuation
                act_next = act & si.valid & (depth + 1 < max_depth_o)
                bsdf_idx = dr.gather(bk.UInt32, scene.prim_bsdf, si.prim, act_next)

                s_em1, s_em2, s_b1, s_b2 = vertex_samples(rng)

                def shade(act_next: Any) -> tuple:
                    # Next-event estimation and BSDF sampling at the vertex.
                    act_nee = act_next if (any_smooth and has_emitters) else act_next & False
                    if has_emitters:
                        d_em, dist_em, pdf_em_s, w_em, delta_em = scene.sample_emitter_direction(
                            si.p, s_em1, s_em2, act_nee)
                        act_nee = act_nee & (pdf_em_s > 0)
                        # Attached: the direction to the light moves with the shading
                        # point and with the emitter (position/geometry derivatives).
                        wo_nee = si.to_local(d_em)
                    else:
                        wo_nee = bk.Array3f(0, 0, 1)
                        w_em = dr.zeros(bk.Array3f, n)
                        pdf_em_s = dr.zeros(bk.Float, n)
                        delta_em = dr.full(bk.Bool, False, n)
                        dist_em = dr.zeros(bk.Float, n)
                        d_em = bk.Array3f(0, 0, 1)

                    if len(steps) == 1:
                        out = steps[0](si, wo_nee, s_b1, s_b2, act_nee, act_next)
                    else:
                        out = dr.switch(bsdf_idx, steps, si, wo_nee, s_b1, s_b2, act_nee, act_next)
                    f_nee, pdf_b_nee, wo, pdf_b, weight_b, delta_b, eta_b, ratio = out

                    # --- next-event estimation (shadow ray)
                    if has_emitters:
                        origin, d_shadow, dist_shadow = shadow_segment(si, d_em, dist_em)
                        if replay:
                            occluded = (word & TAPE_OCCLUDED) != 0
                            if overflow:
                                occluded = dr.select(on_tape, occluded, scene.ray_test(
                                    origin, d_shadow, dist_shadow, act_nee & ~on_tape))
                        else:
                            test = act_nee
                            if skip_idle:
                                # No shadow ray where the sample contributes nothing
                                # anyway (the light below the surface's hemisphere, a
                                # black emitter sample): Mitsuba traces these. (Not
                                # in derivative passes: a zero value, e.g. of a black
                                # albedo, may have a nonzero derivative.)
                                c_nee = f_nee * w_em
                                test = act_nee & ((c_nee[0] != 0) | (c_nee[1] != 0)
                                                  | (c_nee[2] != 0))
                            occluded = scene.ray_test(origin, d_shadow, dist_shadow, test)
                    else:
                        occluded = dr.zeros(bk.Bool, n)
                    if has_emitters:
                        vis = act_nee & ~occluded
                        w_nee = dr.select(delta_em, 1.0, mis_weight(pdf_em_s, pdf_b_nee)
                                          if emitter_mis else 1.0)
                        nee = dr.select(vis, beta * f_nee * w_em * w_nee, 0.0)
                    else:
                        vis = dr.zeros(bk.Bool, n)
                        w_nee = dr.zeros(bk.Float, n)
                        nee = dr.zeros(bk.Array3f, n)
                    return (f_nee, pdf_b_nee, wo, pdf_b, weight_b, delta_b, eta_b, ratio,
                            occluded, vis, w_nee, nee, wo_nee, w_em)

                if skip_idle:
                    # A symbolic conditional: Dr.Jit's LLVM backend branches over it
                    # for packets where no lane goes on (the last vertex of a path,
                    # e.g. every second vertex of `direct`; rays that all left the
                    # scene), as Mitsuba's BSDF and emitter calls are skipped there.
                    # The idle values are made outside the branch: a literal made in
                    # a branch and returned by it fails LLVM's verifier ("Instruction
                    # does not dominate all uses", Dr.Jit 1.5).
                    z3, z, f = dr.zeros(bk.Array3f, n), dr.zeros(bk.Float, n), dr.zeros(bk.Bool, n)
                    idle = (z3, z, bk.Array3f(0, 0, 1), z, z3, f, dr.ones(bk.Float, n),
                            dr.ones(bk.Array3f, n), f, f, z, z3, bk.Array3f(0, 0, 1), z3)
                    out = dr.if_stmt((act_next, idle), act_next, lambda a, _: shade(a),
                                     lambda _, idle: idle, label="lumigrad.path.shade")
                else:
                    out = shade(act_next)
                (f_nee, pdf_b_nee, wo, pdf_b, weight_b, delta_b, eta_b, ratio,
                 occluded, vis, w_nee, nee, wo_nee, w_em) = out

                contrib = emitted + nee
                L = st["L"] + dr.detach(contrib) if backward else st["L"] + contrib

                # --- BSDF sampling: the next ray
                wo_world = si.to_world(wo)
                # (Reverse mode keeps the loop state detached: derivatives leave
                # through dr.backward_from below, not through the loop.)
                beta_next = beta * weight_b * (dr.detach(ratio) if backward else ratio)
                valid_b = act_next & (hmax(weight_b) > 0) & (pdf_b > 0)

                if record:
                    flag = lambda cond, bit: dr.select(cond, bk.UInt32(bit), bk.UInt32(0))
                    word = (dr.select(hit, prim, bk.UInt32(TAPE_PRIM))
                            | flag(occluded, TAPE_OCCLUDED) | flag(delta_b, TAPE_DELTA)
                            | flag(valid_b, TAPE_CONTINUED))
                    slot = dr.minimum(depth, tape_len - 1) if overflow else depth
                    on_tape = act & (depth < tape_len) if overflow else act
                    st["tape"].write(word, slot, on_tape)
                if layout is not None:
                    layout.write(st["record"], slot, dict(
                        beta=beta, contrib=contrib, wi=si.wi, uv=si.uv, wo_nee=wo_nee, wo=wo,
                        nee_weight=dr.select(vis, w_em * w_nee, 0.0),
                        nee_scale=dr.select(vis, w_nee, 0.0), f_nee=f_nee, w_mis=w_mis,
                        p=si.p, d=st["d"]), on_tape)

                if backward:
                    # Radiance collected after this vertex, then the local term.
                    L_rem_next = st["L_rem"] - dr.detach(contrib)
                    Lo = contrib + dr.select(valid_b, L_rem_next * ratio, 0.0)
                    dr.backward_from(delta_L * Lo)
                else:
                    L_rem_next = st["L_rem"]

            beta_next = dr.select(valid_b, beta_next, 0.0)
            eta = st["eta"] * dr.select(valid_b, eta_b, 1.0)

            # --- Russian roulette (detached decision)
            depth_next = depth + 1
            rr_active = depth_next >= rr_depth_o
            q = dr.minimum(hmax(dr.detach(beta_next)) * dr.square(eta), 0.95)
            s_rr = rng.next_float32()
            survive = ~rr_active | (s_rr < q)
            beta_next = dr.select(rr_active, beta_next * dr.rcp(dr.maximum(dr.detach(q), 1e-8)),
                                  beta_next)
            act_new = valid_b & survive

            next_o = si.spawn_origin(wo_world)
            out = dict(
                depth=dr.select(act, depth_next, depth),
                L=dr.select(act, L, st["L"]),
                beta=dr.select(act_new, beta_next, dr.zeros(bk.Array3f, n)),
                eta=eta,
                o=dr.select(act_new, dr.detach(next_o), st["o"]),
                d=dr.select(act_new, dr.detach(wo_world), st["d"]),
                tmax=dr.select(act_new, dr.inf, st["tmax"]),
                prev_p=dr.select(act_new, dr.detach(si.p), st["prev_p"]),
                prev_pdf=dr.select(act_new, pdf_b, st["prev_pdf"]),
                prev_delta=dr.select(act_new, delta_b, st["prev_delta"]),
                active=act_new,
                rng=rng,
                L_rem=dr.select(act, L_rem_next, st["L_rem"]),
            )
            if tape is not None:
                out["tape"] = st["tape"]
            if "forced" in st:
                out["forced"] = dr.full(bk.UInt32, TAPE_PRIM_NONE, n)
            if "forced_bary" in st:
                out["forced_bary"] = st["forced_bary"]
            if layout is not None:
                out["record"] = st["record"]
            if "checkpoint" in st:
                out["checkpoint"] = checkpoint
            if backward:
                out = {k: (v if k in ("rng", "tape", "record", "checkpoint") else dr.detach(v))
                       for k, v in out.items()}
            return (out,)

        (final,) = dr.while_loop((state,), cond, body, label="lumigrad.path")
        # Hand the advanced generator back to the caller (several estimates may
        # be chained on one stream, e.g. by the direct integrator).
        rng.state, rng.inc = final["rng"].state, final["rng"].inc
        if record:
            tape.hits, tape.vertices = final["tape"], final["depth"]
            if layout is not None:
                tape.record = final["record"]
                tape.checkpoint = final.get("checkpoint")
            return final["L"], tape
        return final["L"]


@register
class VolPathIntegrator(PathIntegrator):
    """Mitsuba's ``volpath`` without media: the path tracer. Mitsuba's volpath
    lets shadow rays through surfaces with a null lobe (``null``, ``mask``,
    ``thindielectric``) and does not count them as bounces, which ``path``
    does not model: such scenes are refused (``check_scene``) rather than
    rendered differently."""

    PLUGIN = ("integrator", "volpath")

    def check_scene(self, scene: Any) -> None:
        from ..bsdfs.null import has_null_lobe
        for b in scene.bsdfs:
            if has_null_lobe(b):
                name = type(b).PLUGIN[1]
                raise ValueError(
                    f"integrator 'volpath': bsdf '{name}'{f' (id {b.id!r})' if b.id else ''} "
                    "is not supported yet with volpath (Mitsuba's volpath passes shadow rays "
                    "through null, mask and thindielectric surfaces without counting a "
                    "bounce; lumigrad does not model that yet). Use the 'path' integrator, "
                    "which renders these BSDFs as Mitsuba's 'path' does")


@register
class DirectIntegrator(PathIntegrator):
    """Direct illumination: emitters seen directly plus one bounce of light
    (next-event estimation and BSDF sampling combined with MIS) — the path
    tracer with ``max_depth = 2`` and no Russian roulette.

    ``emitter_samples``/``bsdf_samples``: every pixel gets
    ``max(emitter_samples, bsdf_samples)`` times more camera samples, each with
    one emitter and one BSDF sample. The expected image is the same as
    Mitsuba's, which balances unequal counts in its MIS weights instead.
    """

    PLUGIN = ("integrator", "direct")
    PARAMS = {
        "emitter_samples": Param("int", 1, min=1),
        "bsdf_samples": Param("int", 1, min=1),
        "shading_samples": Param("int", None, min=1,
                                 doc="sets both emitter_samples and bsdf_samples"),
        "hide_emitters": Param("bool", False),
        **BUDGET_PARAMS,
    }

    def __init__(self, emitter_samples: int = 1, bsdf_samples: int = 1,
                 hide_emitters: bool = False, id: Optional[str] = None,
                 shading_samples: Optional[int] = None, **budgets: Any) -> None:
        if shading_samples is not None:
            # (Mitsuba: the default of both counts)
            emitter_samples = bsdf_samples = int(shading_samples)
        super().__init__(max_depth=2, rr_depth=1 << 20, hide_emitters=hide_emitters, id=id,
                         **budgets)
        self.emitter_samples = int(emitter_samples)
        self.bsdf_samples = int(bsdf_samples)

    # Several emitter/BSDF samples per camera sample are realised as more camera
    # samples (each with one of each): the same expected image and derivatives.
    def _multiplier(self) -> int:
        return max(self.emitter_samples, self.bsdf_samples)

    def render(self, scene: Any, sensor: Any, seed: int = 0, spp: int = 16, mode: str = "primal",
               progress: Any = None) -> Any:
        return super().render(scene, sensor, seed, spp * self._multiplier(), mode, progress)

    def render_forward(self, scene: Any, sensor: Any, seed: int, spp: int,
                       terms: Any = None, budget_scale: float = 1.0) -> Any:
        return super().render_forward(scene, sensor, seed, spp * self._multiplier(), terms,
                                      budget_scale)

    def render_backward(self, scene: Any, sensor: Any, grad_image: Any, seed: int,
                        spp: int, terms: Any = None) -> None:
        super().render_backward(scene, sensor, grad_image, seed, spp * self._multiplier(), terms)
