"""Shared part of ``bumpmap`` and ``normalmap``: a nested BSDF evaluated in a
perturbed shading frame (not a plugin)."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..scene.schema import Param
from ._common import detached_clone, mask, width
from .base import BSDF, BSDFSample


def normalize(v: Any) -> Any:
    n = dr.norm(v)
    return v / dr.maximum(n, 1e-20)


def local_tangent_frame(si: Any) -> tuple[Any, Any, Any, Any]:
    """``∂p/∂u``, ``∂p/∂v`` in the shading frame of ``si`` (normal = +Z), and
    Mitsuba's tangent frame ``(s, t)``: ``s`` is ``∂p/∂u`` made orthogonal to
    the shading normal (Gram-Schmidt), ``t = n × s`` — the frame in which a
    normal map's tangent-space vectors are given."""
    if si.dp_du is None or si.sh_n is None:
        raise RuntimeError("bumpmap/normalmap need the surface tangents dp_du/dp_dv of the "
                           "interaction (computed by Scene when a BSDF sets needs_tangents)")
    dpdu = si.to_local(si.dp_du)
    dpdv = si.to_local(si.dp_dv)
    s = normalize(bk.Array3f(dpdu[0], dpdu[1], 0.0))
    t = bk.Array3f(-s[1], s[0], 0.0)          # ẑ × s
    return dpdu, dpdv, s, t


def shadow_terminator(n: Any, wo: Any) -> Any:
    """Microfacet-based shadowing of a perturbed normal ``n`` (Conty Estevez,
    Lecocq & Stein 2019, "A Microfacet-Based Shadowing Function to Solve the
    Bump Terminator Problem", Ray Tracing Gems ch. 12): the perturbation is
    read as a GGX surface of roughness ``α² = min(tan²θ_n / 8, 1)`` and the
    response scaled by its Smith masking ``2 / (1 + √(1 + α² tan²θ_o))``,
    both angles measured from the original shading normal (+Z)."""
    def tan2(z: Any) -> Any:
        z2 = dr.square(z)
        return dr.maximum(1.0 - z2, 0.0) / dr.maximum(z2, 1e-20)
    alpha2 = dr.minimum(0.125 * tan2(n[2]), 1.0)
    return 2.0 / (1.0 + dr.sqrt(1.0 + alpha2 * tan2(wo[2])))


#: The options both plugins share (Mitsuba 3.7+ names and defaults).
PERTURB_PARAMS = {
    "flip_invalid_normals": Param("bool", default=True,
                                  doc="mirror the tilt of normals facing away from wi"),
    "use_shadowing_function": Param("bool", default=True,
                                    doc="bump-terminator shadowing (Conty Estevez et al. 2019)"),
}


class PerturbedFrameBSDF(BSDF):
    """A nested BSDF seen in another shading frame, given in the local
    coordinates of ``si``.

    Subclasses give ``perturbation(si, active)``: the (unnormalised) perturbed
    normal in the local coordinates of ``si``. As Mitsuba 3 (docs of
    ``bumpmap``/``normalmap``, 3.7 and later):

    * ``flip_invalid_normals``: a normal on the other side of ``wi`` than the
      shading normal (``cos θ_i · (wi·n) ≤ 0``) has its tilt mirrored,
      ``(x, y, z) -> (-x, -y, z)`` (Schüssler et al. 2017);
    * the frame is ``n``, the tangent ``s`` of the original frame made
      orthogonal to it (Gram-Schmidt), ``t = n × s``;
    * directions are expressed in that frame and the nested BSDF evaluated
      there (its cosine factor is that of the perturbed normal); ``wo`` counts
      only on the same side of both normals (``cos θ_o · cos θ'_o > 0``);
    * ``use_shadowing_function``: values and sample weights are scaled by
      :func:`shadow_terminator` (the pdf is not).

    The "original tangent" is Mitsuba's: ``∂p/∂u`` made orthogonal to the
    shading normal (``local_tangent_frame``), in which normal maps are given.
    """

    #: the scene must provide ``si.dp_du``/``si.dp_dv`` (see ``Scene._surface``)
    needs_tangents = True

    def __init__(self, bsdf: BSDF, where: str, flip_invalid_normals: bool = True,
                 use_shadowing_function: bool = True, id: str | None = None) -> None:
        super().__init__(id)
        self.flip_invalid_normals = bool(flip_invalid_normals)
        self.use_shadowing_function = bool(use_shadowing_function)
        if not isinstance(bsdf, BSDF):
            raise TypeError(f"{where}: 'bsdf' must be a BSDF plugin, got {type(bsdf).__name__}")
        self.nested = bsdf
        self.has_delta = bsdf.has_delta
        self.delta_only = bsdf.delta_only
        self.glossy = bsdf.glossy

    def perturbation(self, si: Any, active: Any) -> tuple[Any, Any]:
        """``(n, s)``: the unnormalised perturbed normal and the original
        tangent (Mitsuba's ``s``), in the local coordinates of ``si``."""
        raise NotImplementedError

    def frame(self, si: Any, active: Any) -> tuple[Any, Any, Any]:
        """The perturbed frame ``(s, t, n)`` in the local coordinates of ``si``."""
        n, s_orig = self.perturbation(si, active)
        if self.flip_invalid_normals:
            wi = si.wi
            flip = wi[2] * dr.dot(wi, n) <= 0
            n = bk.Array3f(dr.select(flip, -n[0], n[0]), dr.select(flip, -n[1], n[1]), n[2])
        n_len = dr.norm(n)
        ok = (n_len > 1e-20) & dr.isfinite(n_len)
        n = dr.select(ok, n / dr.select(ok, n_len, 1.0), bk.Array3f(0, 0, 1))
        s = s_orig - n * dr.dot(n, s_orig)
        s_len = dr.norm(s)
        ok = s_len > 1e-12
        s = dr.select(ok, s / dr.select(ok, s_len, 1.0), dr.cross(n, s_orig))
        return s, dr.cross(n, s), n

    def _perturbed(self, si: Any, active: Any) -> tuple[Any, tuple]:
        fr = self.frame(si, active)
        return dataclasses.replace(si, wi=self._to(fr, si.wi)), fr

    @staticmethod
    def _to(fr: tuple, v: Any) -> Any:
        return bk.Array3f(dr.dot(v, fr[0]), dr.dot(v, fr[1]), dr.dot(v, fr[2]))

    def _shadow(self, fr: tuple, wo: Any) -> Any:
        return shadow_terminator(fr[2], wo) if self.use_shadowing_function else 1.0

    _frozen: Any = None

    def freeze_sampling(self) -> None:
        """Sample smooth lobes in the frame (and with the nested BSDF) of a
        detached snapshot; weights are ``eval / pdf_snapshot`` with the current
        parameters (see ``_common.FreezableSampling``)."""
        snap = detached_clone(self)
        snap._frozen = None
        self._frozen = snap

    def unfreeze_sampling(self) -> None:
        self._frozen = None

    def sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        snap = self._frozen
        bs = self._sample(si, sample1, sample2, active)
        if snap is None:
            return bs
        # smooth lobes from the snapshot; delta lobes (their direction is not a
        # sampling choice) keep the current frame
        fs = snap._sample(si, sample1, sample2, active)
        smooth = ~bk.Bool(fs.delta) & (fs.pdf > 0)
        value = self.eval(si, fs.wo, smooth)
        w = dr.select(smooth, value / dr.select(smooth, fs.pdf, 1.0), 0.0)
        return BSDFSample(wo=dr.select(fs.delta, bs.wo, fs.wo),
                          pdf=dr.select(fs.delta, bs.pdf, fs.pdf),
                          weight=dr.select(fs.delta, bs.weight, w), delta=bs.delta | fs.delta,
                          eta=dr.select(fs.delta, bs.eta, fs.eta))

    def _sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        n = width(sample1, sample2, si.wi)
        active = mask(active, n)
        si_p, fr = self._perturbed(si, active)
        bs = self.nested.sample(si_p, sample1, sample2, active)
        wo = fr[0] * bs.wo[0] + fr[1] * bs.wo[1] + fr[2] * bs.wo[2]
        ok = active & (wo[2] * bs.wo[2] > 0)
        bs.weight = dr.select(ok, bs.weight * self._shadow(fr, wo), 0.0)
        bs.wo = wo
        bs.pdf = dr.select(ok, bs.pdf, 0.0)
        return bs

    def eval_pdf(self, si: Any, wo: Any, active: Any = True) -> tuple[Any, Any]:
        active = mask(active, width(si.wi, wo))
        si_p, fr = self._perturbed(si, active)
        wo_p = self._to(fr, wo)
        ok = active & (wo[2] * wo_p[2] > 0)
        f, pdf = self.nested.eval_pdf(si_p, wo_p, ok)
        if self._frozen is not None:
            pdf = self._frozen.pdf(si, wo, active)
        return dr.select(ok, f * self._shadow(fr, wo), 0.0), dr.select(ok, pdf, 0.0)

    def eval(self, si: Any, wo: Any, active: Any = True) -> Any:
        active = mask(active, width(si.wi, wo))
        si_p, fr = self._perturbed(si, active)
        wo_p = self._to(fr, wo)
        ok = active & (wo[2] * wo_p[2] > 0)
        return dr.select(ok, self.nested.eval(si_p, wo_p, ok) * self._shadow(fr, wo), 0.0)

    def pdf(self, si: Any, wo: Any, active: Any = True) -> Any:
        if self._frozen is not None:
            return self._frozen.pdf(si, wo, active)
        active = mask(active, width(si.wi, wo))
        si_p, fr = self._perturbed(si, active)
        wo_p = self._to(fr, wo)
        ok = active & (wo[2] * wo_p[2] > 0)
        return dr.select(ok, self.nested.pdf(si_p, wo_p, ok), 0.0)

    def lobe_roughness(self) -> float:
        return self.nested.lobe_roughness()

    def albedo(self, si: Any, active: Any = True) -> Any:
        return self.nested.albedo(si, active)

    def nested_parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        for key, value, setter in self.nested.parameters():
            yield f"nested_bsdf.{key}", value, setter
