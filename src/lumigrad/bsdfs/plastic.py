"""The smooth plastic: a diffuse base under a smooth dielectric coating."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..core import warp
from ..core.frame import reflect
from ..core.fresnel import fresnel_diffuse_reflectance, fresnel_dielectric
from ..scene.schema import Param, register
from ..textures.constant import as_texture, texture_parameters
from ._common import full_float, mask, safe, to_scalar_float, width, where_prefix
from .base import BSDF, BSDFSample
from .dielectric import IOR_PARAMS, relative_eta

PLASTIC_PARAMS = {
    "int_ior": Param("float_or_string", default="polypropylene", min_exclusive=0.0,
                     doc="interior index of refraction (number or name)"),
    "ext_ior": IOR_PARAMS["ext_ior"],
    "diffuse_reflectance": Param("texture", default=0.5, min=0.0,
                                 doc="albedo ρ of the diffuse base"),
    "specular_reflectance": Param("texture", default=1.0, min=0.0,
                                  doc="multiplier of the specular reflection (not physical)"),
    "nonlinear": Param("bool", default=False,
                       doc="account for the colour shift of internal scattering: "
                           "ρ/(1 - ρ F_dr,int) instead of ρ/(1 - F_dr,int)"),
}


def diffuse_base(rho: Any, fdr_int: Any, nonlinear: bool) -> Any:
    """Base albedo with the series of internal reflections under the coating.

    Light reflected by the base (albedo ρ) is sent back down by the interface
    with the hemispherical internal reflectance ``F_dr,int``; summing the series
    gives ``ρ / (1 - ρ F_dr,int)`` (``nonlinear``) — a colour-dependent
    denominator — or, Mitsuba's default which keeps texture colours linear,
    ``ρ / (1 - F_dr,int)``.
    """
    if nonlinear:
        return rho / (1.0 - rho * fdr_int)
    return rho / (1.0 - fdr_int)


def specular_probability(f_i: Any, s_mean: float, d_mean: float) -> Any:
    """Probability of sampling the specular lobe: ``F s / (F s + (1 - F) d)``
    (``s``, ``d``: mean specular and diffuse reflectances), detached, clamped to
    [0.01, 0.99] so that both lobes stay sampled whatever the parameters become."""
    f_i = dr.detach(f_i)
    a = f_i * s_mean
    b = (1.0 - f_i) * d_mean
    den = a + b
    p = dr.select(den > 0, a / safe(den, den > 0), 0.5)
    return dr.clip(p, 0.01, 0.99)


def sampling_means(specular: Any, diffuse: Any) -> tuple[float, float]:
    """Mean specular and diffuse reflectances used by the lobe-selection heuristic.

    Taken once, at construction (as is the index of refraction the heuristic
    uses): the selection probability then does not depend on the parameters'
    current values, so a per-sample estimate is a continuous
    function of them (finite differences with common random numbers agree with
    AD), and it stays unbiased for any value the parameters take later.
    """
    return float(specular.mean()), float(diffuse.mean())


@register
class SmoothPlastic(BSDF):
    """A diffuse base (albedo ρ) under a smooth dielectric layer of index
    ``η = int_ior / ext_ior`` (in the spirit of Weidlich & Wilkie 2007, "Arbitrarily
    layered micro-facet surfaces", and Mitsuba's ``plastic``):

    * a delta specular reflection with weight ``R_s F(cos θ_i)``;
    * a diffuse lobe ``f cos θ_o = ρ' (1 - F(cos θ_i)) (1 - F(cos θ_o)) cos θ_o / (π η²)``

    where ``ρ'`` = :func:`diffuse_base` with ``F_dr,int`` the cosine-weighted
    hemispherical Fresnel reflectance seen from inside (relative index ``1/η``),
    integrated numerically at construction
    (:func:`~lumigrad.core.fresnel.fresnel_diffuse_reflectance`). The ``1/η²``
    is the radiance compression across the interface. With ``ρ = 1`` and
    ``nonlinear`` the albedo is exactly 1, because ``1 - F_dr,ext = η²(1 - F_dr,int)``.

    Sampling picks the specular lobe with :func:`specular_probability` at
    ``F(cos θ_i)`` (mean reflectances of the textures at construction, see
    :func:`sampling_means`), else cosine-weighted diffuse; the probabilities are
    detached, so the specular weight ``R_s F / p`` carries the derivative of ``F``.
    ``eval``/``pdf`` describe the diffuse lobe only. Keys
    ``diffuse_reflectance.value``, ``specular_reflectance.value``, ``eta`` (all
    differentiable, ``F_dr,int`` included).
    """

    PLUGIN = ("bsdf", "plastic")
    PARAMS = dict(PLASTIC_PARAMS)
    has_delta = True
    delta_only = False

    def __init__(self, int_ior: Any = "polypropylene", ext_ior: Any = "air",
                 diffuse_reflectance: Any = 0.5, specular_reflectance: Any = 1.0,
                 nonlinear: bool = False, id: str | None = None) -> None:
        super().__init__(id)
        self._where = where_prefix(self.PLUGIN[1], id)
        self.diffuse_reflectance = as_texture(diffuse_reflectance,
                                              f"{self._where}: 'diffuse_reflectance'")
        self.specular_reflectance = as_texture(specular_reflectance,
                                               f"{self._where}: 'specular_reflectance'")
        self.nonlinear = bool(nonlinear)
        self._means = sampling_means(self.specular_reflectance, self.diffuse_reflectance)
        self._set_eta(relative_eta(int_ior, ext_ior, self._where))
        # The lobe choice uses the index of refraction of construction (see sampling_means).
        self._eta_sampling = dr.opaque(bk.Float, float(dr.detach(self.eta)[0]))

    def _set_eta(self, value: Any) -> None:
        self.eta = to_scalar_float(value, f"{self._where}: 'eta'", positive=True)
        eta = float(dr.detach(self.eta)[0])
        # F_dr,int(η) and its derivative (central differences of the quadrature,
        # which is smooth in η; error ~1e-8).
        h = 1e-4 * eta
        f_p = fresnel_diffuse_reflectance(1.0 / (eta + h))
        f_m = fresnel_diffuse_reflectance(1.0 / (eta - h))
        self._fdr_int0 = dr.opaque(bk.Float, fresnel_diffuse_reflectance(1.0 / eta))
        self._dfdr_int = dr.opaque(bk.Float, (f_p - f_m) / (2.0 * h))

    @property
    def fdr_int(self) -> Any:
        """``F_dr,int`` at the current ``eta``, differentiable in it (first order:
        exact value, exact derivative; recomputed when ``eta`` is set)."""
        return self._fdr_int0 + self._dfdr_int * (self.eta - dr.detach(self.eta))

    def _p_spec(self, cos_theta_i: Any) -> Any:
        f = fresnel_dielectric(cos_theta_i, self._eta_sampling)[0]
        return specular_probability(f, *self._means)

    def _diffuse(self, si: Any, f_i: Any, wo: Any, ok: Any) -> Any:
        f_o = fresnel_dielectric(wo[2], self.eta)[0]
        rho = diffuse_base(self.diffuse_reflectance.eval(si, ok), self.fdr_int, self.nonlinear)
        scale = (1.0 - f_i) * (1.0 - f_o) * wo[2] * dr.inv_pi / dr.square(self.eta)
        return rho * scale

    def sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        n = width(sample1, sample2, si.wi)
        wi = si.wi
        active = mask(active, n) & (wi[2] > 0)
        f_i = fresnel_dielectric(wi[2], self.eta)[0]
        p_s = self._p_spec(wi[2])
        sel_s = sample1 < p_s
        wo_d = warp.square_to_cosine_hemisphere(sample2)
        wo = dr.select(sel_s, reflect(wi), wo_d)
        pdf_d = (1.0 - p_s) * warp.square_to_cosine_hemisphere_pdf(wo_d)
        ok_s = active & sel_s & (p_s > 0)
        ok_d = active & ~sel_s & (pdf_d > 0)
        w_s = self.specular_reflectance.eval(si, ok_s) * (f_i / safe(p_s, ok_s))
        w_d = self._diffuse(si, f_i, wo_d, ok_d) / safe(pdf_d, ok_d)
        weight = dr.select(ok_s, w_s, dr.select(ok_d, w_d, 0.0))
        pdf = dr.select(ok_s, p_s, dr.select(ok_d, pdf_d, 0.0))
        return BSDFSample(wo=wo, pdf=pdf, weight=weight, delta=bk.Bool(sel_s),
                          eta=full_float(1.0, n))

    def eval(self, si: Any, wo: Any, active: Any = True) -> Any:
        ok = mask(active, width(si.wi, wo)) & (si.wi[2] > 0) & (wo[2] > 0)
        f_i = fresnel_dielectric(si.wi[2], self.eta)[0]
        return dr.select(ok, self._diffuse(si, f_i, wo, ok), 0.0)

    def pdf(self, si: Any, wo: Any, active: Any = True) -> Any:
        ok = mask(active, width(si.wi, wo)) & (si.wi[2] > 0) & (wo[2] > 0)
        return dr.select(ok, (1.0 - self._p_spec(si.wi[2])) * wo[2] * dr.inv_pi, 0.0)

    def albedo(self, si: Any, active: Any = True) -> Any:
        return self.diffuse_reflectance.eval(si, active)

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield "eta", self.eta, self._set_eta
        yield from texture_parameters("diffuse_reflectance", self.diffuse_reflectance)
        yield from texture_parameters("specular_reflectance", self.specular_reflectance)
