"""Path replay from per-vertex records: the reverse pass without re-shading.

Path replay backpropagation (Vicini, Speierer & Jakob 2021, "Path Replay
Backpropagation", ACM TOG 40(4)) runs a primal pass that computes each sample's
radiance ``L``, then *replays* the path: at vertex *k* it back-propagates
``δL · Lo_k`` with

    Lo_k = β_k · (Le_k(θ) + NEE_k(θ)) + L_after_k · f_k(θ) / detach(f_k)

(see ``path.py``), where ``L_after_k = L − Σ_{j≤k} contrib_j``. A plain replay
traces and shades every vertex again. When the scene's geometry and camera
carry no gradients, every *direction and position* of the path is a constant
of the derivative, and only the factors that depend on grad-enabled material
or emitter parameters must be recomputed (attached). The primal pass then
writes, per vertex, the few detached values those factors need (shading-frame
directions, texture coordinates, throughput, the MIS-weighted light-sample
weight, the collected radiance) into per-lane local memory, and the replay
reads them back: no ray, no triangle, no light or BSDF sampling, only the
attached BSDF/emitter evaluations and their adjoints.

The record lives in the same kernel as the primal pass (like the hit tape):
``words`` 32-bit words per vertex and lane, constant in the number of samples,
so peak memory stays independent of the path length. Its size per lane is
capped (``RECORD_MAX_WORDS``): vertices beyond it, on long or unbounded paths,
are replayed by shading again from a checkpoint of the loop state. Geometry or
camera gradients (which move directions, positions and visibility) use the
replay that shades every vertex again (``PathIntegrator.sample``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import drjit as dr

from .. import backend as bk
from ..bsdfs._common import any_nested
from ..core.interaction import SurfaceInteraction
from ..core.math import hmax

#: Largest record per lane (32-bit words), per backend: the record holds
#: ``RECORD_MAX_WORDS // words`` vertices at most, and longer paths replay the
#: rest by shading again. On the CPU the record is per SIMD packet on a worker's
#: stack (16 lanes × 8 KiB at most); a GPU reserves local memory for every
#: resident thread (~270k on an H100: 1 KiB each is ~0.3 GB), hence less there.
RECORD_MAX_WORDS = {"llvm": 2048, "cuda": 256}


def record_capacity(layout: "RecordLayout") -> int:
    """How many vertices a record of ``layout`` may hold on the active backend."""
    limit = RECORD_MAX_WORDS
    if isinstance(limit, dict):
        limit = limit[bk.variant()]
    return int(limit) // layout.words


#: Up to this many grad-carrying BSDFs get their attached factors as inline
#: code (each evaluated on every lane); more take one dispatch.
INLINE_ATTACHED = 2

# Flags of a hit-tape word besides the triangle index (see ``path.py``).
TAPE_OCCLUDED = 0x80000000     # the vertex's shadow ray was blocked
TAPE_DELTA = 0x40000000        # the sampled BSDF lobe is a Dirac delta
TAPE_CONTINUED = 0x20000000    # the path continues after the vertex (before roulette)
TAPE_PRIM = 0x1FFFFFFF         # triangle index bits (all ones: no hit)


def _grad_enabled(value: Any) -> bool:
    value = getattr(value, "matrix", value)          # a Transform4f's matrix
    return isinstance(value, dr.ArrayBase) and dr.grad_enabled(value)


def carries_gradients(plugin: Any) -> bool:
    """Whether some parameter of a plugin has gradients enabled (now, at trace time)."""
    return any(_grad_enabled(v) for _, v, _ in plugin.parameters())


@dataclass
class RecordLayout:
    """Which detached values a vertex record holds (name: number of floats).

    ``bsdf``: some BSDF parameter carries gradients (record the directions and
    texture coordinates its attached evaluation needs); ``emitter``: some
    emitter parameter does (record what re-evaluating emission and re-sampling
    the light needs). The throughput β and the detached contribution are
    always recorded.
    """

    bsdf: bool
    emitter: bool
    has_environment: bool

    def __post_init__(self) -> None:
        sizes = {"beta": 3, "contrib": 3}
        if self.bsdf or self.emitter:
            sizes.update(wi=3, uv=2)
        if self.bsdf:
            sizes.update(wo_nee=3, wo=3)
            if not self.emitter:
                sizes["nee_weight"] = 3    # w_em · w_nee (0 if occluded)
        if self.emitter:
            sizes.update(nee_scale=1, f_nee=3, w_mis=1, p=3)
            if self.has_environment:
                sizes["d"] = 3
        self.sizes = sizes
        self.words = sum(sizes.values())

    _TYPES = {1: "Float", 2: "Array2f", 3: "Array3f"}

    def alloc(self, depth: int) -> dict:
        """One local array per field, indexed by the vertex: every access of a
        vertex then uses the same index, whose uniformity over the SIMD lanes
        (tested at each access) the compiler checks once."""
        return {name: dr.alloc_local(getattr(bk, self._TYPES[size]), depth)
                for name, size in self.sizes.items()}

    def write(self, record: dict, slot: Any, values: dict, active: Any) -> None:
        """Store ``values[name]`` for every recorded field at vertex ``slot``."""
        for name, size in self.sizes.items():
            record[name].write(getattr(bk, self._TYPES[size])(values[name]), slot, active)

    def read(self, record: dict, slot: Any, active: Any) -> dict:
        return {name: local.read(slot, active) for name, local in record.items()}


def plan_record(scene: Any, sensor: Any) -> Optional[RecordLayout]:
    """The record for replaying paths of ``scene`` seen from ``sensor`` under
    the gradients enabled now, or None when the replay must shade again:
    geometry, the camera or where lights are (their sampled directions) carry
    gradients, or not one vertex fits in ``RECORD_MAX_WORDS``."""
    if sensor is not None and carries_gradients(sensor):
        return None
    if any(carries_gradients(shape) for shape in scene.shapes):
        return None        # vertex positions, normals, texture coordinates, transforms
    if any_nested(scene.bsdfs, "needs_tangents"):
        return None        # bumpmap/normalmap read ∂p/∂u, ∂p/∂v, which the record lacks
    # Lights that are not shapes: does the direction or distance they are
    # sampled at depend on a parameter (a point light's position, ...)?
    others = scene.emitters[len(scene.area_emitters):]
    if others:
        p = bk.Array3f(0.25, 0.5, 0.75)
        s = bk.Array2f(0.3, 0.6)
        for e in others:
            ds = e.sample_direction(p, s, bk.Bool(True))
            if dr.grad_enabled(ds.d) or dr.grad_enabled(ds.dist) or dr.grad_enabled(ds.pdf):
                return None
    layout = RecordLayout(bsdf=any(carries_gradients(b) for b in scene.bsdfs),
                          emitter=any(carries_gradients(e) for e in scene.emitters),
                          has_environment=scene.environment is not None)
    return layout if record_capacity(layout) >= 1 else None


def attached_bsdf_terms(bsdf: Any, si: Any, wo_nee: Any, wo: Any, delta: Any,
                        s1: Any, s2: Any, act_nee: Any, act: Any) -> tuple:
    """The BSDF factors of a vertex that carry derivatives: the NEE value
    ``f(wi, wo_nee)`` and ``ratio = f / detach(f)`` along the sampled direction
    ``wo`` (1 in the primal, ``df / f`` in derivatives); for a delta lobe the
    ratio of its (attached) sample weight to its value."""
    f_nee = bsdf.eval(si, wo_nee, act_nee)
    w_att = bsdf.sample(si, s1, s2, act & delta).weight if bsdf.has_delta else None
    return f_nee, bsdf_ratio(bsdf.eval(si, wo, act & ~delta), delta, w_att)


def bsdf_ratio(f_att: Any, delta: Any, w_att: Any = None) -> Any:
    """``x / detach(x)`` (1 in the primal, ``dx / x`` in derivatives; 1 where
    ``x`` is 0) of the BSDF value ``f_att`` along the sampled direction, or
    where ``delta`` (a delta lobe, which has no value) of its attached sample
    weight ``w_att``."""
    def ratio(x: Any) -> Any:
        x_det = dr.detach(x)
        return dr.select(x_det > 0, x / dr.maximum(x_det, 1e-30), 1.0)

    if w_att is None:
        return ratio(f_att)
    return dr.select(delta, ratio(w_att), ratio(f_att))


def _bsdf_factors(bsdfs: list, idx: Any, si: Any, wo_nee: Any, wo: Any, delta: Any,
                  s1: Any, s2: Any, act_nee: Any, act: Any, f_nee: Any) -> tuple:
    """``(f_nee, ratio)`` with the attached values of the grad-carrying BSDFs
    (others keep the given ``f_nee`` and a unit ratio)."""
    n = dr.width(idx)
    ratio = dr.ones(bk.Array3f, n)
    which = [i for i, b in enumerate(bsdfs) if carries_gradients(b)]
    args = (si, wo_nee, wo, delta, s1, s2)
    if len(which) <= INLINE_ATTACHED:
        for i in which:
            here = idx == i
            f_i, r_i = attached_bsdf_terms(bsdfs[i], *args, act_nee & here, act & here)
            f_nee = dr.select(here, f_i, f_nee)
            ratio = dr.select(here, r_i, ratio)
        return f_nee, ratio
    # Many: one dispatch over the grad-carrying BSDFs (slot 0: all others).
    slot = dr.zeros(bk.UInt32, n)
    for k, i in enumerate(which):
        slot = dr.select(idx == i, k + 1, slot)

    def others(si, wo_nee, wo, delta, s1, s2, act_nee, act, f_nee):
        return f_nee, dr.ones(bk.Array3f, dr.width(s1))

    def attached(b):
        return lambda *a: attached_bsdf_terms(b, *a[:8])

    funcs = [others] + [attached(bsdfs[i]) for i in which]
    return dr.switch(slot, funcs, *args, act_nee, act, f_nee)


def vertex_samples(rng: Any) -> tuple:
    """The random numbers a path vertex draws, in order: light choice, light
    point (2), BSDF lobe, BSDF direction (2). (Russian roulette draws one more
    after them.) The primal pass and every replay draw through this function."""
    s_em1 = rng.next_float32()
    s_em2 = bk.Array2f(rng.next_float32(), rng.next_float32())
    s_b1 = rng.next_float32()
    s_b2 = bk.Array2f(rng.next_float32(), rng.next_float32())
    return s_em1, s_em2, s_b1, s_b2


def replay_recorded(scene: Any, layout: RecordLayout, hits: Any, record: Any, vertices: Any,
                    rng: Any, delta_L: Any, L_primal: Any) -> Any:
    """Back-propagate ``δL · Lo_k`` at every recorded vertex (see the module docstring).

    ``hits``/``record``: the per-lane tape and record the primal pass wrote
    (same kernel); ``vertices``: how many vertices to replay per lane; ``rng``:
    the generator of the primal pass, at its initial state (it is replayed only
    where a light sample or a delta lobe's weight must be recomputed).
    Returns the radiance the paths collect after those vertices."""
    n = dr.width(vertices)
    bsdfs = scene.bsdfs
    n_faces = dr.opaque(bk.UInt32, scene._n_faces)
    need_rng = layout.emitter or any(carries_gradients(b) and b.has_delta for b in bsdfs)
    state = dict(depth=dr.zeros(bk.UInt32, n), L_rem=bk.Array3f(dr.detach(L_primal)),
                 hits=hits, record=record)
    if need_rng:
        state["rng"] = rng
    delta_L = bk.Array3f(dr.detach(delta_L))

    def cond(st: dict) -> Any:
        return st["depth"] < vertices

    def body(st: dict) -> tuple:
        depth = st["depth"]
        act = depth < vertices
        if need_rng:
            s_em1, s_em2, s_b1, s_b2 = vertex_samples(st["rng"])
            st["rng"].next_float32()                   # Russian roulette's number
        else:
            s_em1 = s_b1 = dr.zeros(bk.Float, n)
            s_em2 = s_b2 = dr.zeros(bk.Array2f, n)
        word = st["hits"].read(depth, act)
        rec = layout.read(st["record"], depth, act)
        prim = word & TAPE_PRIM
        hit = act & (prim < n_faces)
        prim = dr.select(hit, prim, 0)
        beta = rec["beta"]
        L_rem_next = st["L_rem"] - rec["contrib"]
        with dr.resume_grad():
            Lo = dr.zeros(bk.Array3f, n)
            si = None
            if layout.bsdf or layout.emitter:
                # What BSDFs, textures and emitters read of a hit (detached here).
                si = SurfaceInteraction(t=None, p=rec.get("p"), n=None, sh_n=None,
                                        uv=rec["uv"], wi=rec["wi"], prim=prim, shape=None,
                                        valid=hit)
            if layout.emitter:
                Le = scene.eval_area_emitter(si, hit)
                if layout.has_environment:
                    Le = Le + scene.eval_environment(rec["d"], act & ~hit)
                Lo += beta * rec["w_mis"] * Le
                act_nee = hit & (rec["nee_scale"] > 0)
                _, _, _, w_em, _ = scene.sample_emitter_direction(rec["p"], s_em1, s_em2, act_nee)
                nee_weight = w_em * rec["nee_scale"]
                f_nee = rec["f_nee"]
            else:
                act_nee = hit & (hmax(rec["nee_weight"]) > 0) if layout.bsdf else hit & False
                nee_weight = rec.get("nee_weight")
                f_nee = dr.zeros(bk.Array3f, n)
            if layout.bsdf:
                idx = dr.gather(bk.UInt32, scene.prim_bsdf, prim, hit)
                delta = (word & TAPE_DELTA) != 0
                f_nee, ratio = _bsdf_factors(bsdfs, idx, si, rec["wo_nee"], rec["wo"], delta,
                                             s_b1, s_b2, act_nee, hit, f_nee)
                continued = hit & ((word & TAPE_CONTINUED) != 0)
                Lo += dr.select(continued, L_rem_next * ratio, 0.0)
            if layout.bsdf or layout.emitter:
                Lo += dr.select(act_nee, beta * f_nee * nee_weight, 0.0)
                dr.backward_from(delta_L * Lo, flags=dr.ADFlag.Default | dr.ADFlag.AllowNoGrad)
        out = dict(depth=depth + 1, L_rem=L_rem_next, hits=st["hits"], record=st["record"])
        if need_rng:
            out["rng"] = st["rng"]
        return (out,)

    (final,) = dr.while_loop((state,), cond, body, label="lumigrad.replay_recorded")
    return final["L_rem"]


__all__ = ["RecordLayout", "plan_record", "record_capacity", "replay_recorded", "vertex_samples",
           "attached_bsdf_terms", "bsdf_ratio", "carries_gradients", "RECORD_MAX_WORDS",
           "TAPE_OCCLUDED", "TAPE_DELTA", "TAPE_CONTINUED", "TAPE_PRIM"]
