"""The rough dielectric: microfacet reflection and transmission (Walter et al. 2007)."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..core.fresnel import fresnel_dielectric, reflect_about, refract
from ..scene.schema import Param, register
from ..textures.constant import as_texture, texture_parameters
from ._common import FreezableSampling, full_bool, mask, safe, width, where_prefix
from .base import BSDF, BSDFSample
from .dielectric import IOR_PARAMS, EtaMixin, relative_eta
from .roughconductor import ROUGHNESS_PARAMS, RoughnessMixin


@register
class RoughDielectric(FreezableSampling, RoughnessMixin, EtaMixin, BSDF):
    """A rough interface between two dielectrics (Walter et al. 2007, eqs. 20-21).

    Let ``η' = η_wo / η_wi`` be the relative index crossed by a refraction
    (``η`` from outside, ``1/η`` from inside). Reflection uses the half vector
    ``h = (wi + wo)/|wi + wo|``, refraction the generalised half vector
    ``h ∝ -(wi + η' wo)``, both oriented to ``h_z > 0``. With ``F = F(wi·h)``:

        reflection:  f cos θ_o = R F D(h) G / (4 |cos θ_i|)
        refraction:  f cos θ_o = T (1 - F) D(h) G |wi·h| |wo·h| / (|cos θ_i| (wi·h + η' wo·h)²)

    The refraction term is the radiance-transport form: Walter's BTDF times
    ``(η_wi/η_wo)²`` (see the smooth ``dielectric``), which cancels its ``η'²``.
    ``R``/``T`` are ``specular_reflectance``/``specular_transmittance``.

    Sampling: a microfacet normal from the visible normals of ``±wi`` (with
    ``sample_visible``, the default) or from ``D(h) h_z``, then reflection with
    probability ``F`` and refraction otherwise; ``pdf = F p(h) / (4 |wo·h|)`` or
    ``(1-F) p(h) η'² |wo·h| / (wi·h + η' wo·h)²``. ``BSDFSample.eta`` = ``η'`` for
    refraction. Keys ``eta``, ``alpha.value`` (or ``alpha_u``/``alpha_v``),
    ``specular_reflectance.value``, ``specular_transmittance.value``.

    Known limitation of the model's derivatives: the refraction term is
    discontinuous where the generalised half vector crosses the horizon
    (``D`` is cut at ``h_z = 0``); that set moves with ``eta`` (and ``alpha``
    does not move it), and its boundary term is not part of the AD derivative.
    """

    PLUGIN = ("bsdf", "roughdielectric")
    glossy = True
    PARAMS = {
        **ROUGHNESS_PARAMS,
        **IOR_PARAMS,
        "specular_reflectance": Param("texture", default=1.0, min=0.0),
        "specular_transmittance": Param("texture", default=1.0, min=0.0),
    }

    def __init__(self, distribution: str = "beckmann", alpha: Any = None, alpha_u: Any = None,
                 alpha_v: Any = None, sample_visible: bool = True, int_ior: Any = "bk7",
                 ext_ior: Any = "air", specular_reflectance: Any = 1.0,
                 specular_transmittance: Any = 1.0, id: str | None = None) -> None:
        super().__init__(id)
        self._where = where_prefix("roughdielectric", id)
        self._init_roughness(distribution, alpha, alpha_u, alpha_v, sample_visible, self._where)
        self.eta = relative_eta(int_ior, ext_ior, self._where)
        self.specular_reflectance = as_texture(
            specular_reflectance, f"{self._where}: 'specular_reflectance'")
        self.specular_transmittance = as_texture(
            specular_transmittance, f"{self._where}: 'specular_transmittance'")

    def _sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        n = width(sample1, sample2, si.wi)
        wi = si.wi
        ci = wi[2]
        active = mask(active, n) & (ci != 0)
        distr = self._distr(si, active)
        # Sample for the mirrored direction on the upper side; D is point-symmetric.
        wi_up = dr.mulsign(wi, ci)
        m, pdf_m = distr.sample(wi_up, sample2)
        wi_m = dr.dot(wi, m)
        f, cos_t, eta_it, eta_ti = fresnel_dielectric(wi_m, self.eta)
        sel_r = sample1 <= f
        wo = dr.select(sel_r, reflect_about(wi, m), refract(wi, cos_t, eta_ti, m))
        wo_m = dr.dot(wo, m)
        co = wo[2]
        same_side = ci * co > 0
        ok = active & (pdf_m > 0) & (co != 0) & dr.select(sel_r, same_side, ~same_side)
        ok &= dr.select(sel_r, True, cos_t != 0)          # no refraction under TIR
        # weight = f cos / pdf = D G |wo·h| / (|cos θ_i| p(h))       (reflection)
        #                      = D G |wi·h| / (|cos θ_i| p(h) η'²)   (refraction)
        g = distr.G(wi, wo, m)
        ratio = distr.eval(m) * g / (dr.abs(safe(ci, ok)) * safe(pdf_m, ok))
        w_r = self.specular_reflectance.eval(si, ok & sel_r) * (ratio * dr.abs(wo_m))
        w_t = self.specular_transmittance.eval(si, ok & ~sel_r) * (
            ratio * dr.abs(wi_m) * dr.square(eta_ti))
        weight = dr.select(ok, dr.select(sel_r, w_r, w_t), 0.0)
        # pdf of wo
        den_t = wi_m + eta_it * wo_m
        ok_t = ok & (den_t != 0)
        pdf_r = f * pdf_m / (4.0 * dr.abs(safe(wo_m, ok)))
        pdf_t = (1.0 - f) * pdf_m * dr.square(eta_it) * dr.abs(wo_m) / dr.square(safe(den_t, ok_t))
        pdf = dr.select(ok, dr.select(sel_r, pdf_r, pdf_t), 0.0)
        return BSDFSample(wo=wo, pdf=pdf, weight=weight, delta=full_bool(False, n),
                          eta=dr.select(sel_r, 1.0, eta_it))

    def _eval_pdf(self, si: Any, wo: Any, active: Any, want_eval: bool, want_pdf: bool
                  ) -> tuple[Any, Any]:
        wi = si.wi
        ci, co = wi[2], wo[2]
        active = mask(active, width(si.wi, wo)) & (ci != 0) & (co != 0)
        is_r = ci * co > 0
        eta_p = dr.select(ci > 0, self.eta, dr.rcp(self.eta))      # η' = η_wo / η_wi
        hv = dr.select(is_r, wi + wo, wi + wo * eta_p)
        ok = active & (dr.squared_norm(hv) > 1e-12)
        h = dr.normalize(dr.select(ok, hv, bk.Array3f(0.0, 0.0, 1.0)))
        h = dr.mulsign(h, h[2])
        wi_h = dr.dot(wi, h)
        wo_h = dr.dot(wo, h)
        # Only microfacets facing both directions from their own sides contribute.
        ok &= (wi_h * ci > 0) & (wo_h * co > 0)
        distr = self._distr(si, ok)
        f = fresnel_dielectric(wi_h, self.eta)[0]
        den_t = wi_h + eta_p * wo_h
        ok_t = ok & ~is_r & (den_t != 0)
        value = pdf = None
        if want_eval:
            dg = distr.eval(h) * distr.G(wi, wo, h)
            v_r = self.specular_reflectance.eval(si, ok & is_r) * (
                f * dg / (4.0 * dr.abs(safe(ci, ok))))
            v_t = self.specular_transmittance.eval(si, ok_t) * (
                (1.0 - f) * dg * dr.abs(wi_h * wo_h)
                / (dr.abs(safe(ci, ok_t)) * dr.square(safe(den_t, ok_t))))
            value = dr.select(ok & is_r, v_r, dr.select(ok_t, v_t, 0.0))
        if want_pdf:
            pdf_m = distr.pdf(dr.mulsign(wi, ci), h)
            p_r = f * pdf_m / (4.0 * dr.abs(safe(wo_h, ok)))
            p_t = (1.0 - f) * pdf_m * dr.square(eta_p) * dr.abs(wo_h) / dr.square(safe(den_t, ok_t))
            pdf = dr.select(ok & is_r, p_r, dr.select(ok_t, p_t, 0.0))
        return value, pdf

    def albedo(self, si: Any, active: Any = True) -> Any:
        """The transmittance multiplier (glass has no diffuse colour)."""
        return self.specular_transmittance.eval(si, active)

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield "eta", self.eta, self._set_eta
        yield from self._roughness_parameters()
        yield from texture_parameters("specular_reflectance", self.specular_reflectance)
        yield from texture_parameters("specular_transmittance", self.specular_transmittance)
