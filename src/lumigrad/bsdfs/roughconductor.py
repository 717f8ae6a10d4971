"""The rough conductor: a microfacet BRDF with conductor Fresnel."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr
import numpy as np

from .. import backend as bk
from ..core.fresnel import fresnel_conductor, reflect_about
from ..core.microfacet import DISTRIBUTIONS, MicrofacetDistribution, check_distribution
from ..scene.schema import Param, register
from ..textures.constant import as_texture, texture_parameters
from ._common import FreezableSampling, full_bool, full_float, mask, safe, width, where_prefix
from .base import BSDF, BSDFSample
from .conductor import CONDUCTOR_PARAMS, conductor_parameters, conductor_textures

#: Roughness parameters shared by the rough BSDFs (``alpha`` default 0.1).
ROUGHNESS_PARAMS = {
    "distribution": Param("string", default="beckmann", choices=DISTRIBUTIONS,
                          doc="microfacet distribution"),
    "alpha": Param("texture", default=None, min=0.0,
                   doc="isotropic roughness (GGX/Beckmann α; default 0.1)"),
    "alpha_u": Param("texture", default=None, min=0.0,
                     doc="anisotropic roughness along the tangent"),
    "alpha_v": Param("texture", default=None, min=0.0,
                     doc="anisotropic roughness along the bitangent"),
    "sample_visible": Param("bool", default=True,
                            doc="sample the distribution of visible normals"),
}


class RoughnessMixin:
    """Roughness textures and the per-call microfacet distribution."""

    def _init_roughness(self, distribution: str, alpha: Any, alpha_u: Any, alpha_v: Any,
                        sample_visible: bool, where: str) -> None:
        self.distribution = check_distribution(distribution, f"{where}: 'distribution'")
        self.sample_visible = bool(sample_visible)
        if alpha_u is not None or alpha_v is not None:
            if alpha is not None:
                raise ValueError(f"{where}: give either 'alpha' or 'alpha_u'/'alpha_v', not both")
            if alpha_u is None or alpha_v is None:
                raise ValueError(f"{where}: 'alpha_u' and 'alpha_v' must be given together")
            self.alpha_u = as_texture(alpha_u, f"{where}: 'alpha_u'")
            self.alpha_v = as_texture(alpha_v, f"{where}: 'alpha_v'")
            self.anisotropic = True
            # alpha_u runs along dp/du, as in Mitsuba: the scene computes the tangents
            self.needs_tangents = True
        else:
            self.alpha_u = as_texture(0.1 if alpha is None else alpha, f"{where}: 'alpha'")
            self.alpha_v = self.alpha_u
            self.anisotropic = False
        for t in {id(self.alpha_u): self.alpha_u, id(self.alpha_v): self.alpha_v}.values():
            if t.is_constant() and t.mean() < 0:
                raise ValueError(f"{where}: roughness must be non-negative, got {t.mean()}")

    def _distr(self, si: Any, active: Any) -> MicrofacetDistribution:
        au = self.alpha_u.eval_1(si, active)
        av = self.alpha_v.eval_1(si, active) if self.anisotropic else au
        return MicrofacetDistribution(self.distribution, au, av, self.sample_visible)

    def lobe_roughness(self) -> float:
        return float(np.sqrt(max(self.alpha_u.mean(), 0.0) * max(self.alpha_v.mean(), 0.0)))

    def _roughness_parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        if self.anisotropic:
            yield from texture_parameters("alpha_u", self.alpha_u)
            yield from texture_parameters("alpha_v", self.alpha_v)
        else:
            yield from texture_parameters("alpha", self.alpha_u)


@register
class RoughConductor(FreezableSampling, RoughnessMixin, BSDF):
    """Microfacet reflection from a rough metal (Walter et al. 2007):

        f(wi, wo) cos θ_o = R F(wi·h; η + ik) D(h) G(wi, wo, h) / (4 cos θ_i),
        h = (wi + wo) / |wi + wo|,

    with ``R = specular_reflectance``, Beckmann (default, as in Mitsuba 3) or GGX ``D`` and
    Smith's separable ``G``. Sampling draws a microfacet normal (visible normals:
    Heitz 2018 for GGX, Heitz & d'Eon 2014 for Beckmann) and reflects ``wi``
    about it: ``pdf(wo) = pdf(h) / (4 wo·h)``.
    Single scattering only: energy is lost at high roughness (about 10% of the
    albedo of a white GGX surface at α = 0.5 and normal incidence, more at
    grazing angles and larger α).
    """

    PLUGIN = ("bsdf", "roughconductor")
    glossy = True
    PARAMS = {**ROUGHNESS_PARAMS, **CONDUCTOR_PARAMS}

    def __init__(self, distribution: str = "beckmann", alpha: Any = None, alpha_u: Any = None,
                 alpha_v: Any = None, sample_visible: bool = True, material: str = "none",
                 eta: Any = None, k: Any = None, specular_reflectance: Any = 1.0,
                 id: str | None = None) -> None:
        super().__init__(id)
        where = where_prefix("roughconductor", id)
        self._init_roughness(distribution, alpha, alpha_u, alpha_v, sample_visible, where)
        self.material = material
        self.eta, self.k = conductor_textures(material, eta, k, where)
        self.specular_reflectance = as_texture(specular_reflectance,
                                               f"{where}: 'specular_reflectance'")

    def _fresnel(self, si: Any, cos_theta: Any, active: Any) -> Any:
        f = fresnel_conductor(cos_theta, self.eta.eval(si, active), self.k.eval(si, active))
        return self.specular_reflectance.eval(si, active) * f

    def _sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        n = width(sample1, sample2, si.wi)
        wi = si.wi
        ci = wi[2]
        active = mask(active, n) & (ci > 0)
        distr = self._distr(si, active)
        m, pdf_m = distr.sample(wi, sample2)
        wo = reflect_about(wi, m)
        wo_m = dr.dot(wo, m)
        ok = active & (wo[2] > 0) & (pdf_m > 0) & (wo_m > 0)
        # weight = f cos / pdf = F D G (wo·h) / (cos θ_i pdf(h))  (= F G1(wo) for visible sampling)
        ratio = distr.eval(m) * distr.G(wi, wo, m) * wo_m / (safe(ci, ok) * safe(pdf_m, ok))
        weight = dr.select(ok, self._fresnel(si, dr.dot(wi, m), ok) * ratio, 0.0)
        pdf = dr.select(ok, pdf_m / (4.0 * safe(wo_m, ok)), 0.0)
        return BSDFSample(wo=wo, pdf=pdf, weight=weight, delta=full_bool(False, n),
                          eta=full_float(1.0, n))

    def _eval_pdf(self, si: Any, wo: Any, active: Any, want_eval: bool, want_pdf: bool
                  ) -> tuple[Any, Any]:
        wi = si.wi
        ci, co = wi[2], wo[2]
        ok = mask(active, width(si.wi, wo)) & (ci > 0) & (co > 0)
        # Replace wi + wo before normalising where it may vanish (keeps AD finite).
        h = dr.normalize(dr.select(ok, wi + wo, bk.Array3f(0.0, 0.0, 1.0)))
        distr = self._distr(si, ok)
        value = pdf = None
        if want_eval:
            v = self._fresnel(si, dr.dot(wi, h), ok) * (
                distr.eval(h) * distr.G(wi, wo, h) / (4.0 * safe(ci, ok)))
            value = dr.select(ok, v, 0.0)
        if want_pdf:
            wo_h = dr.dot(wo, h)
            ok_p = ok & (wo_h > 0)
            pdf = dr.select(ok_p, distr.pdf(wi, h) / (4.0 * safe(wo_h, ok_p)), 0.0)
        return value, pdf

    def albedo(self, si: Any, active: Any = True) -> Any:
        """Normal-incidence reflectance times ``specular_reflectance``."""
        return self._fresnel(si, 1.0, active)

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield from self._roughness_parameters()
        yield from conductor_parameters(self)
