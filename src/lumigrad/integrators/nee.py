"""Next-event estimation in the derivative estimators (``pathgeo.py``).

Emitter points are *material points* of the emitters (they move with them)
with detached densities: whichever way a point was drawn, its contribution
estimates the same integral over the emitters' surfaces, whose boundary terms
(shadow lines, ``boundary/shadow.py`` and ``pathgeo.shadow_sample``) do not
depend on how the interior was sampled. (Emitters *hit* by the path's own
BSDF-sampled rays would be another parameterisation, with boundary terms of
their own: they are not counted; ``SamplingIntegrator.derivative_estimator``.)

At a vertex whose BSDF has a glossy lobe (``BSDF.glossy``) the derivative of
next-event estimation is far noisier than its value: the lobe about the mirror
direction ``r`` moves as the surface turns or slides, and ``∂f`` is large and
of opposite signs on either side of ``r`` (a lobe moving inside a uniform
light changes nothing, but is estimated point by point). There:

* a second point is drawn by the BSDF (the first hit of a BSDF-sampled ray,
  where that is an area emitter or the environment; lobes not near diffuse,
  :data:`MIS_ALPHA`), and the two are weighed by the balance heuristic (Veach
  1997, multi-sample MIS with one sample per technique);
* each point gets an *antithetic partner* (:func:`antithetic_partner`; Zhang
  et al. 2021, "Antithetic Sampling for Monte Carlo Differentiable
  Rendering", ACM TOG 40(4)): the emitter point in the direction ``ω`` turned
  by π about ``r``, where the lobe's derivative has the opposite sign.

A rough conductor ball (α 0.05) over a floor, path depth 3, 1024 spp, seed
against seed (8×8 blocks, 12 seeds): 0.50 with emitter sampling alone, 0.31
with partners, 0.17 with the BSDF's point, 0.15 with both; about 5 % more
time (``BENCHMARKS.md``).
"""
from __future__ import annotations

from typing import Any, Optional

import drjit as dr
import numpy as np

from .. import backend as bk

#: Glossy vertices draw emitter points by the BSDF too and pair every point
#: with its antithetic partner (False: emitter sampling alone, comparisons).
GLOSSY_NEE = True

#: Lobes at least this rough (``BSDF.lobe_roughness``: near diffuse) draw no
#: point by the BSDF (partners only). The balance heuristic costs little where
#: the BSDF's rays miss the lights: seed against seed at 1024 spp, a rough
#: plastic ball (α 0.3) under two small lights, a point light and a sky 0.149
#: (emitters alone), 0.164 (partners), 0.127 (MIS + partners); a rough
#: conductor cube (α 0.3) 0.269 / 0.236 / 0.226. (A one-sample mixture, half
#: the points drawn by the BSDF, had made the first 0.182.)
MIS_ALPHA = 1.0

_INVALID = 0xFFFFFFFF


class GlossyTables:
    """Per BSDF: whether its emitter points get partners (``glossy``) and
    whether a second point is drawn by the BSDF (``mis``)."""

    def __init__(self, scene: Any) -> None:
        glossy = [bool(b.glossy) for b in scene.bsdfs]
        mis = [g and b.lobe_roughness() < MIS_ALPHA for g, b in zip(glossy, scene.bsdfs)]
        self.glossy = bk.from_numpy(bk.Bool, np.array(glossy))
        self.mis = bk.from_numpy(bk.Bool, np.array(mis))


def glossy_tables(scene: Any) -> Optional[GlossyTables]:
    """:class:`GlossyTables`, or None where no BSDF is glossy or no emitter
    could be found by a ray (area lights, environments)."""
    if not GLOSSY_NEE or not any(b.glossy for b in scene.bsdfs):
        return None
    if not scene.area_emitters and scene.environment is None:
        return None
    return GlossyTables(scene)


def sample_emitter(scene: Any, si: Any, s_em: Any, on: Any) -> tuple:
    """The emitters' own sample at ``si`` (attached): direction, distance,
    weight ``Le G / p``, density ``p`` (solid angle, with the emitter's
    selection)."""
    d, dist, pdf, w, _ = scene.sample_emitter_direction(si.p, s_em[0],
                                                        bk.Array2f(s_em[1], s_em[2]), on)
    return d, dist, w, pdf


def unoccluded(scene: Any, si: Any, d: Any, dist: Any, on: Any) -> Any:
    """True where the emitter sample is unoccluded (as the standard loop tests it)."""
    from .base import shadow_segment
    origin, d_shadow, dist_shadow = shadow_segment(si, d, dist)
    return on & ~scene.ray_test(origin, d_shadow, dist_shadow, on)


def mirror_direction(si: Any) -> Any:
    """The mirror direction of ``si.wi`` about the shading normal (local)."""
    return bk.Array3f(-si.wi[0], -si.wi[1], si.wi[2])


def first_emitter_hit(scene: Any, si: Any, d: Any, on: Any) -> tuple:
    """``(found, prim, bary)``: the emitter point the ray from ``si`` along
    the world direction ``d`` finds first (detached): a triangle of an area
    emitter and barycentrics, or, where it escapes into an environment,
    ``prim = INVALID`` and the environment's coordinates of ``d``
    (``Scene.emitter_direction_at`` reads both)."""
    with dr.suspend_grad():
        _, prim, u, v, hit = scene.ray_intersect_preliminary(si.spawn_origin(d), d, dr.inf, on)
        emits = dr.gather(bk.UInt32, scene.prim_emitter, prim, on & hit) != _INVALID
        found, bary = on & hit & emits, bk.Array2f(u, v)
        if scene.environment is not None:
            escaped = on & ~hit
            found |= escaped
            prim = dr.select(escaped, _INVALID, prim)
            bary = dr.select(escaped, scene.environment.direction_point(d), bary)
        return found, prim, bary


def antithetic_partner(scene: Any, si: Any, d: Any, on: Any) -> tuple:
    """The antithetic partner of the emitter point in the world direction
    ``d`` from ``si`` (both detached; ``on``: where it has one to look for):
    ``(found, prim, bary)``, the emissive point first hit in the direction
    ``M ω = 2 (ω·r) r − ω`` (``ω`` turned by π about the mirror direction
    ``r``).

    ``M`` preserves solid angle, is an involution and maps a lobe about ``r``
    onto itself, so ``∂f(ω) ≈ −∂f(Mω)``. The densities differ (emitter
    sampling is not symmetric about ``r``), so a technique of density ``p``
    combines the pair as

        (g(ω) + g(Mω)) / (p(ω) + p(Mω)),

    unbiased for ``∫ g`` over the set ``D₁`` where ``M`` maps unoccluded,
    front-facing emitter points onto such points (``M`` is a bijection of
    ``D₁``, and the means of ``g(ω)/(p(ω)+p(Mω))`` over ``p`` and of the same
    at ``Mω`` add up to ``∫_{D₁} g``); elsewhere the point stands alone
    (``g/p``). ``D₁`` and the densities are those at the current parameters
    (detached) and both points are material points of the emitters."""
    with dr.suspend_grad():
        r = mirror_direction(si)
        w = si.to_local(dr.detach(d))
        return first_emitter_hit(scene, si, si.to_world(2.0 * dr.dot(w, r) * r - w), on)


class EmitterSamples:
    """Next-event estimation's points at a vertex: the emitters' sample ``e``
    and, at glossy vertices, the BSDF's ``b`` and the partners ``e2``, ``b2``
    (in the order ``e, e2, b, b2``). Per point: ``found`` (it contributes: unoccluded,
    front-facing), ``wo`` (local, attached), ``w`` (``Le G / p_e`` attached),
    ``pdf`` (``p_e``, detached), ``prim``/``bary`` (where found by a ray)."""

    def __init__(self, found: tuple, wo: tuple, w: tuple, pdf: tuple, prim: tuple,
                 bary: tuple, mis: Any, findable: Any) -> None:
        self.found, self.wo, self.w, self.pdf = found, wo, w, pdf
        self.prim, self.bary, self.mis, self.findable = prim, bary, mis, findable

    def coefficients(self, pb: tuple) -> tuple:
        """The detached factors ``a`` of the points' contributions ``β f w a``
        from the BSDF's densities ``pb`` of their directions: with the
        balance heuristic's weights ``w_t(z) = p_t(z) / (p_e(z) + p_b(z))``
        (``p_b = 0`` where no point is drawn by the BSDF) and each technique's
        pair ``(z, z')`` combined as in :func:`antithetic_partner`,
        ``a(z) = w_t(z) p_e(z) / (p_t(z) + p_t(z'))``."""
        f = self.found
        pe = [dr.select(f[k], self.pdf[k], 0.0) for k in range(4)]
        # (The BSDF's rays find no delta lights.)
        pb = [dr.select(f[k] & self.mis & (self.findable if k == 0 else True), pb[k], 0.0)
              for k in range(4)]
        mis_w = [dr.rcp(dr.maximum(pe[k] + pb[k], 1e-30)) for k in range(4)]
        denom_e = dr.rcp(dr.maximum(pe[0] + pe[1], 1e-30))
        denom_b = dr.rcp(dr.maximum(pb[2] + pb[3], 1e-30))
        return (pe[0] * mis_w[0] * pe[0] * denom_e, pe[1] * mis_w[1] * pe[1] * denom_e,
                pb[2] * mis_w[2] * pe[2] * denom_b, pb[3] * mis_w[3] * pe[3] * denom_b)


def emitter_samples(scene: Any, si: Any, s_em: Any, s_bsdf: Any, on: Any, bsdf_idx: Any,
                    tables: Optional[GlossyTables], samplers: list) -> EmitterSamples:
    """The points of next-event estimation at ``si`` (:class:`EmitterSamples`):
    ``s_em`` the emitters' three uniform numbers, ``s_bsdf`` the BSDF's (at
    glossy vertices), ``tables`` :func:`glossy_tables` (None: the emitters'
    sample alone), ``samplers`` per BSDF :func:`bsdf_direction`."""
    n = dr.width(on)
    zb, zu, z2 = dr.zeros(bk.Bool, n), dr.zeros(bk.UInt32, n), dr.zeros(bk.Array2f, n)
    if len(scene.emitters) == 0:
        z1, z3, up = dr.zeros(bk.Float, n), dr.zeros(bk.Array3f, n), bk.Array3f(0, 0, 1)
        return EmitterSamples((zb,) * 4, (up,) * 4, (z3,) * 4, (z1,) * 4, (zu,) * 4,
                              (z2,) * 4, zb, zb)
    d, dist, w, pdf = sample_emitter(scene, si, s_em, on)
    found_e = unoccluded(scene, si, d, dist, on & (pdf > 0))
    if tables is None:
        return EmitterSamples((found_e, zb, zb, zb), (si.to_local(d),) * 4, (w,) * 4,
                              (dr.detach(pdf),) * 4, (zu,) * 4, (z2,) * 4, zb, zb)
    with dr.suspend_grad():
        si_d = si.detached()
        glossy = on & dr.gather(bk.Bool, tables.glossy, bsdf_idx, on)
        mis = glossy & dr.gather(bk.Bool, tables.mis, bsdf_idx, glossy)
        args = (si_d, s_bsdf[0], bk.Array2f(s_bsdf[1], s_bsdf[2]), mis)
        wo_b = samplers[0](*args) if len(samplers) == 1 else dr.switch(bsdf_idx, samplers, *args)
        d_b = si_d.to_world(wo_b)
        ray_b = first_emitter_hit(scene, si_d, d_b, mis & (dr.squared_norm(wo_b) > 0))
        # Partners of points that rays find (area lights, environments; not
        # lights at a point or in one direction).
        k = scene.select_emitter(s_em[0])
        findable = k < len(scene.area_emitters)
        if scene.environment is not None:
            findable |= k == scene.emitters.index(scene.environment)
        ray_e2 = antithetic_partner(scene, si_d, d, glossy & found_e & findable)
    points = [(found_e, d, w, pdf, zu, z2)]
    for found, prim, bary in (ray_e2, ray_b):
        d_k, _, pdf_k, w_k = scene.emitter_direction_at(si.p, prim, bary, found)
        points.append((found & (pdf_k > 0), d_k, w_k, pdf_k, prim, bary))
    with dr.suspend_grad():
        ray_b2 = antithetic_partner(scene, si_d, points[2][1], points[2][0])
    d_k, _, pdf_k, w_k = scene.emitter_direction_at(si.p, ray_b2[1], ray_b2[2], ray_b2[0])
    points.append((ray_b2[0] & (pdf_k > 0), d_k, w_k, pdf_k, ray_b2[1], ray_b2[2]))
    found, d, w, pdf, prim, bary = zip(*points)
    return EmitterSamples(found, tuple(si.to_local(x) for x in d), w,
                          tuple(dr.detach(p) for p in pdf), prim, bary, mis, findable)


def bsdf_direction(bsdf: Any) -> Any:
    """A direction sampled from a glossy BSDF (detached, local; zero where it
    is none or a delta lobe's, whose density ``pdf()`` does not count)."""
    def sample(si: Any, s1: Any, s2: Any, act: Any) -> Any:
        if not bsdf.glossy:
            return dr.zeros(bk.Array3f, dr.width(act))
        bs = bsdf.sample(si, s1, s2, act)
        ok = act & ~bk.Bool(bs.delta) & (dr.detach(bs.pdf) > 0)
        return dr.select(ok, dr.detach(bs.wo), 0.0)
    return sample


def nee_value(beta: Any, f: tuple, w: tuple, a: tuple, found: tuple) -> Any:
    """Next-event estimation's contribution ``β Σ f w a`` over the points found
    (the first ``len(a)`` of them: one where no vertex is glossy)."""
    value = dr.select(found[0], f[0] * w[0] * a[0], 0.0)
    for k in range(1, len(a)):
        value += dr.select(found[k], f[k] * w[k] * a[k], 0.0)
    return beta * value
