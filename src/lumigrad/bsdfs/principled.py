"""The principled BSDF: Burley's "Disney" model with its transmission extension."""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..core import warp
from ..core.fresnel import fresnel_dielectric, refract, reflect_about
from ..core.math import luminance
from ..core.microfacet import MicrofacetDistribution
from ..scene.schema import Param, register
from ..textures.constant import ConstantTexture, as_texture, texture_parameters
from ._common import (FreezableSampling, full_bool, mask, safe, to_scalar_float, where_prefix,
                      width)
from .base import BSDF, BSDFSample

#: Scalar (texture) parameters besides ``base_color``, with their defaults.
_SCALARS = {
    "roughness": 0.5, "anisotropic": 0.0, "metallic": 0.0, "spec_trans": 0.0,
    "spec_tint": 0.0, "sheen": 0.0, "sheen_tint": 0.0, "flatness": 0.0,
    "clearcoat": 0.0, "clearcoat_gloss": 0.0,
}
_RATES = ("diffuse_reflectance_sampling_rate", "main_specular_sampling_rate",
          "clearcoat_sampling_rate")


def schlick_weight(c: Any) -> Any:
    """``(1 - c)⁵`` clamped to [0, 1]."""
    m = dr.clip(1.0 - c, 0.0, 1.0)
    return dr.square(dr.square(m)) * m


def schlick(r0: Any, cos_i: Any, eta: Any) -> Any:
    """Schlick's Fresnel ``R0 + (1 - R0)(1 - cos)⁵``, with the cosine on the
    optically denser side (the refracted angle where the ray enters a rarer
    medium), as Mitsuba's principled BSDF uses it."""
    outside = cos_i >= 0
    eta_it = dr.select(outside, eta, dr.rcp(eta))
    eta_ti = dr.rcp(eta_it)
    cos_t = dr.safe_sqrt(1.0 - (1.0 - dr.square(cos_i)) * dr.square(eta_ti))
    w = dr.select(eta_it > 1.0, schlick_weight(dr.abs(cos_i)), schlick_weight(cos_t))
    return r0 + (1.0 - r0) * w


def gtr1_eval(m: Any, alpha: Any) -> Any:
    """Burley's GTR (γ = 1) distribution of the clearcoat,
    ``D = (α² - 1) / (π ln α² (1 + (α² - 1) cos²θ))``."""
    a2 = dr.square(alpha)
    c = m[2]
    d = (a2 - 1.0) / (dr.pi * dr.log(a2) * (1.0 + (a2 - 1.0) * dr.square(c)))
    return dr.select(d * c > 1e-20, d, 0.0)


def gtr1_sample(s: Any, alpha: Any) -> Any:
    """A normal with density ``D(m) cos θ_m`` (inverse CDF of GTR1)."""
    a2 = dr.square(alpha)
    cos2 = (1.0 - dr.power(a2, 1.0 - s[1])) / (1.0 - a2)
    sin_t = dr.safe_sqrt(1.0 - cos2)
    cos_t = dr.safe_sqrt(cos2)
    phi = 2.0 * dr.pi * s[0]
    return bk.Array3f(dr.cos(phi) * sin_t, dr.sin(phi) * sin_t, cos_t)


def smith_ggx_fixed(v: Any, m: Any, alpha: float) -> Any:
    """Smith's G1 of an isotropic GGX of roughness ``alpha`` (the clearcoat's
    shadowing uses α = 0.25 whatever its gloss, as Burley's notes do)."""
    c2 = dr.square(v[2])
    t2 = dr.maximum(1.0 - c2, 0.0) / dr.maximum(c2, 1e-20)
    g = 2.0 / (1.0 + dr.sqrt(1.0 + alpha * alpha * t2))
    g = dr.select(v[2] == 1.0, 1.0, g)
    return dr.select(dr.dot(v, m) * v[2] <= 0, 0.0, g)


def _mulsign(v: Any, s: Any) -> Any:
    return dr.select(s >= 0, v, -v)


def _compatible(m: Any, wi: Any, wo: Any, cos_i: Any, reflection: bool) -> Any:
    """``wi`` (and ``wo``) on the sides of the microfacet that the macro surface
    allows: both in front of ``m`` for reflection, ``wo`` behind it for
    refraction (``m`` oriented to the side of ``wi``)."""
    mm = _mulsign(m, cos_i)
    ok = dr.dot(wi, mm) > 0
    return ok & ((dr.dot(wo, mm) > 0) if reflection else (dr.dot(wo, mm) < 0))


@register
class Principled(FreezableSampling, BSDF):
    """Burley's principled BSDF as Mitsuba 3 defines it (docs of
    ``principled``; B. Burley, "Physically Based Shading at Disney", SIGGRAPH
    2012 course, and "Extending the Disney BRDF to a BSDF with Integrated
    Subsurface Scattering", 2015). With ``brdf = (1 - metallic)(1 - spec_trans)``
    and ``bsdf = (1 - metallic) spec_trans``, the value (times ``|cos θ_o|``)
    is the sum of

    * **main specular** (anisotropic GGX, ``α = max(0.001, roughness² / a)``,
      ``max(0.001, roughness² a)`` with ``a = √(1 - 0.9 anisotropic)``):
      ``F D G / (4 |cos θ_i|)``, the Fresnel term blending the exact dielectric
      ``F(η)`` (weight ``(1-metallic)(1-spec_tint)``), Schlick with ``R0 =
      base_color`` (``metallic``) and Schlick with the luminance-normalised
      tint ``R0 = c_tint ((η-1)/(η+1))²`` (``(1-metallic) spec_tint``); from
      inside only ``bsdf · F(η)``;
    * **transmission** (``spec_trans``): Walter et al.'s rough dielectric with
      the same GGX, tinted by ``√base_color``, weighted by ``bsdf``;
    * **clearcoat**: ``clearcoat/4 · F_Schlick(0.04) D_GTR1 G |cos θ_o|`` with
      ``α = lerp(0.1, 0.001, clearcoat_gloss)`` and G of GGX with α = 0.25;
    * **diffuse** ``brdf · base_color/π · lerp(f_d + f_retro, f_ss, flatness)``
      with Burley's ``f_d = (1 - F_i/2)(1 - F_o/2)``, retro-reflection ``R_r =
      2 roughness cos²θ_d``, ``f_retro = R_r (F_o + F_i + F_o F_i (R_r - 1))``
      and the Hanrahan-Krueger-like "fake subsurface" ``f_ss``;
    * **sheen**: ``sheen (1-metallic) F_d lerp(1, c_tint, sheen_tint)``.

    Sampling picks the lobes in proportion to the sampling rates and the
    weights above (Fresnel-weighted between the two specular lobes) and
    reports the mixture's pdf; weights are ``f / pdf``. ``eta`` and
    ``specular`` (``η = 2 / (1 - √(0.08 specular)) - 1``) are exclusive.
    Every texture parameter is differentiable (keys ``<name>.value``), as is
    ``eta`` or ``specular`` (whichever was given). A lobe whose weight
    parameter is a constant 0 without gradients is skipped at trace time.
    """

    PLUGIN = ("bsdf", "principled")
    glossy = True
    PARAMS = {
        "base_color": Param("texture", default=0.5, doc="colour of the material"),
        **{name: Param("texture", default=d, min=0.0, max=1.0, doc=f"{name} (0..1)")
           for name, d in _SCALARS.items()},
        "eta": Param("float", default=None, min_exclusive=0.0,
                     doc="relative index of refraction (exclusive with 'specular')"),
        "specular": Param("float", default=None, min=0.0, max=1.0,
                          doc="Fresnel reflectance control, maps to eta (default 0.5)"),
        **{name: Param("float", default=1.0, min=0.0, doc="relative sampling rate")
           for name in _RATES},
    }

    def __init__(self, base_color: Any = 0.5, eta: Any = None, specular: Any = None,
                 diffuse_reflectance_sampling_rate: float = 1.0,
                 main_specular_sampling_rate: float = 1.0, clearcoat_sampling_rate: float = 1.0,
                 id: str | None = None, **scalars: Any) -> None:
        super().__init__(id)
        self._where = w = where_prefix("principled", id)
        unknown = set(scalars) - set(_SCALARS)
        if unknown:
            raise TypeError(f"{w}: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.base_color = as_texture(base_color, f"{w}: 'base_color'")
        # (attributes, not a dict: ``detached_clone`` snapshots nested textures)
        for name, d in _SCALARS.items():
            setattr(self, name, as_texture(scalars.get(name, d), f"{w}: {name!r}"))
        # Mitsuba turns lobes on where a parameter is given (and not 0): this
        # also decides the small adjustments of eta/specular below.
        self._given_spec_trans = "spec_trans" in scalars and not self._zero("spec_trans")
        # Anisotropic highlights are oriented by ∂p/∂u (the scene then provides it)
        self.needs_tangents = "anisotropic" in scalars and not self._zero("anisotropic")
        if eta is not None and specular is not None:
            raise ValueError(f"{w}: give either 'eta' or 'specular', not both (each sets the "
                             "index of refraction)")
        self.uses_eta = eta is not None
        if self.uses_eta:
            self._set_eta(eta)
        else:
            self._set_specular(0.5 if specular is None else specular)
        rates = (diffuse_reflectance_sampling_rate, main_specular_sampling_rate,
                 clearcoat_sampling_rate)
        for name, r in zip(_RATES, rates):
            if not (float(r) >= 0.0 and math.isfinite(float(r))):
                raise ValueError(f"{w}: {name!r} must be a finite number >= 0, got {r!r}")
        self.rate_diffuse, self.rate_spec, self.rate_cc = (float(r) for r in rates)

    # -- parameters ---------------------------------------------------------------------
    @property
    def tex(self) -> dict:
        return {name: getattr(self, name) for name in _SCALARS}

    def _set_eta(self, value: Any) -> None:
        e = to_scalar_float(value, f"{self._where}: 'eta'", positive=True)
        if self._given_spec_trans and float(dr.detach(e)[0]) == 1.0:
            e = to_scalar_float(1.001, "eta")   # eta = 1 is not plausible for transmission
        self.eta_param = e

    def _set_specular(self, value: Any) -> None:
        s = to_scalar_float(value, f"{self._where}: 'specular'")
        v = float(dr.detach(s)[0])
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{self._where}: 'specular' must lie in [0, 1], got {v}")
        if self._given_spec_trans and v == 0.0:
            s = to_scalar_float(1e-3, "specular")   # (eta = 1) neither
        self.eta_param = s

    def _eta(self) -> Any:
        if self.uses_eta:
            return self.eta_param
        return 2.0 / (1.0 - dr.sqrt(0.08 * self.eta_param)) - 1.0

    def _zero(self, name: str) -> bool:
        """A constant 0 that carries no gradient (decided at trace time)."""
        tex = self.tex[name]
        if not isinstance(tex, ConstantTexture):
            return False
        with dr.resume_grad():     # (grad_enabled reads False while suspended)
            if dr.grad_enabled(tex.value):
                return False
        return bool(dr.all(dr.detach(tex.value) == 0, axis=None))

    def _s(self, name: str, si: Any, active: Any) -> Any:
        return self.tex[name].eval_1(si, active)

    def _lobe_params(self, si: Any, active: Any) -> dict:
        p = {name: (None if self._zero(name) else self._s(name, si, active))
             for name in _SCALARS}
        p["roughness"] = self._s("roughness", si, active)
        metal = p["metallic"] if p["metallic"] is not None else 0.0
        st = p["spec_trans"] if p["spec_trans"] is not None else 0.0
        p["brdf"] = (1.0 - metal) * (1.0 - st)
        p["bsdf"] = (1.0 - metal) * st
        p["metal"] = metal
        aniso = p["anisotropic"]
        r2 = dr.square(p["roughness"])
        if aniso is None:
            ax = ay = dr.maximum(0.001, r2)
        else:
            aspect = dr.sqrt(1.0 - 0.9 * aniso)
            ax, ay = dr.maximum(0.001, r2 / aspect), dr.maximum(0.001, r2 * aspect)
        p["dist"] = MicrofacetDistribution("ggx", ax, ay)
        p["eta"] = self._eta()
        return p

    def _probs(self, p: dict, F: Any, front: Any) -> tuple[Any, Any, Any, Any]:
        """Probabilities of the diffuse, clearcoat, transmission and specular lobes."""
        bsdf = p["bsdf"]
        p_sr = dr.select(front, self.rate_spec * (1.0 - bsdf * (1.0 - F)), F)
        if p["spec_trans"] is not None:
            p_st = dr.select(front, self.rate_spec * bsdf * (1.0 - F), 1.0 - F)
        else:
            p_st = dr.zeros_like(F)
        if p["clearcoat"] is not None:
            p_cc = dr.select(front, 0.25 * p["clearcoat"] * self.rate_cc, 0.0)
        else:
            p_cc = dr.zeros_like(F)
        p_d = dr.select(front, p["brdf"] * self.rate_diffuse, 0.0)
        tot = p_sr + p_st + p_cc + p_d
        inv = dr.select(tot > 0, dr.rcp(dr.select(tot > 0, tot, 1.0)), 0.0)
        return p_d * inv, p_cc * inv, p_st * inv, p_sr * inv

    # -- evaluation -----------------------------------------------------------------------
    def _eval_pdf(self, si: Any, wo: Any, active: Any, want_eval: bool,
                  want_pdf: bool) -> tuple[Any, Any]:
        n = width(si.wi, wo)
        wi = si.wi
        ci, co = wi[2], wo[2]
        active = mask(active, n) & (ci != 0)
        p = self._lobe_params(si, active)
        eta = p["eta"]
        dist = p["dist"]
        reflect = ci * co > 0
        refract = ci * co < 0
        front = ci > 0
        eta_path = dr.select(front, eta, dr.rcp(eta))
        wh = wi + wo * dr.select(reflect, 1.0, eta_path)
        wh = wh / dr.maximum(dr.norm(wh), 1e-20)
        wh = _mulsign(wh, wh[2])
        dot_i, dot_o = dr.dot(wi, wh), dr.dot(wo, wh)
        F = fresnel_dielectric(dot_i, eta)[0]
        comp_r = _compatible(wh, wi, wo, ci, True)
        comp_t = _compatible(wh, wi, wo, ci, False)
        has_st = p["spec_trans"] is not None
        has_cc = p["clearcoat"] is not None
        cc_alpha = (0.1 + (0.001 - 0.1) * self._s("clearcoat_gloss", si, active)) if has_cc \
            else None

        value = None
        if want_eval:
            base = self.base_color.eval(si, active)
            metal, brdf, bsdf = p["metal"], p["brdf"], p["bsdf"]
            D = dist.eval(wh)
            G = dist.G(wi, wo, wh)
            value = dr.zeros(bk.Array3f, n)
            # main specular reflection
            spec_t = p["spec_tint"]
            f_schlick = dr.zeros(bk.Array3f, n)
            if p["metallic"] is not None:
                f_schlick += metal * schlick(base, dot_i, eta)
            if spec_t is not None:
                lum = luminance(base)
                c_tint = dr.select(lum > 0, base / dr.select(lum > 0, lum, 1.0), 1.0)
                eta_it = dr.select(dot_i >= 0, eta, dr.rcp(eta))
                r0 = c_tint * dr.square((eta_it - 1.0) / (eta_it + 1.0))
                f_schlick += (1.0 - metal) * spec_t * schlick(r0, dot_i, eta)
            tint = spec_t if spec_t is not None else 0.0
            f_front = (1.0 - metal) * (1.0 - tint) * F + f_schlick
            f_p = dr.select(front, f_front, bsdf * F)
            ok = active & reflect & comp_r & (F > 0)
            value += dr.select(ok, f_p * D * G / (4.0 * dr.abs(safe(ci, ok))), 0.0)
            # transmission (radiance: scaled by 1/η_path²)
            if has_st:
                ok = active & (bsdf > 0) & refract & comp_t & (F < 1)
                den = ci * dr.square(dot_i + eta_path * dot_o)
                t = dr.abs((1.0 - F) * D * G * dot_i * dot_o / safe(den, ok & (den != 0)))
                value += dr.select(ok, dr.sqrt(base) * (bsdf * t), 0.0)
            # clearcoat
            if has_cc:
                cc = p["clearcoat"]
                ok = active & (cc > 0) & reflect & comp_r & front
                f_cc = schlick(0.04, dot_i, eta)
                g_cc = smith_ggx_fixed(wi, wh, 0.25) * smith_ggx_fixed(wo, wh, 0.25)
                value += dr.select(ok, (0.25 * cc) * f_cc * gtr1_eval(wh, cc_alpha) * g_cc
                                   * dr.abs(co), 0.0)
            # diffuse, retro-reflection, fake subsurface
            ok_d = active & (brdf > 0) & reflect & front
            fo, fi = schlick_weight(dr.abs(co)), schlick_weight(dr.abs(ci))
            f_diff = (1.0 - 0.5 * fi) * (1.0 - 0.5 * fo)
            cos_d = dr.dot(wh, wo)
            rr = 2.0 * p["roughness"] * dr.square(cos_d)
            f_lobe = f_diff + rr * (fo + fi + fo * fi * (rr - 1.0))
            if p["flatness"] is not None:
                fss90 = 0.5 * rr
                fss = (1.0 + (fss90 - 1.0) * fo) * (1.0 + (fss90 - 1.0) * fi)
                s_sum = dr.abs(co) + dr.abs(ci)
                f_ss = 1.25 * (fss * (dr.rcp(dr.select(s_sum > 0, s_sum, 1.0)) - 0.5) + 0.5)
                f_lobe = f_lobe + (f_ss - f_lobe) * p["flatness"]
            value += dr.select(ok_d, base * (brdf * dr.abs(co) * dr.inv_pi * f_lobe), 0.0)
            # sheen
            if p["sheen"] is not None:
                sheen = p["sheen"]
                ok = active & (sheen > 0) & reflect & (1.0 - metal > 0) & front
                c_sheen = dr.ones(bk.Array3f, n)
                if p["sheen_tint"] is not None:
                    lum = luminance(base)
                    c_tint = dr.select(lum > 0, base / dr.select(lum > 0, lum, 1.0), 1.0)
                    c_sheen = 1.0 + (c_tint - 1.0) * p["sheen_tint"]
                value += dr.select(ok, c_sheen * (sheen * (1.0 - metal)
                                                  * schlick_weight(dr.abs(cos_d)) * dr.abs(co)),
                                   0.0)
            value = dr.select(active, value, 0.0)

        pdf = None
        if want_pdf:
            p_d, p_cc, p_st, p_sr = self._probs(p, F, front)
            if has_st:
                dwh = dr.abs(dr.select(reflect, dr.rcp(4.0 * dot_o),
                                       dr.square(eta_path) * dot_o
                                       / dr.square(dot_i + eta_path * dot_o)))
            else:
                dwh = dr.abs(dr.rcp(4.0 * dot_o))
            dwh = dr.select(dr.isfinite(dwh), dwh, 0.0)
            wi_up = _mulsign(wi, ci)
            d_pdf = dist.pdf(wi_up, wh)
            pdf = dr.zeros(bk.Float, n)
            pdf += dr.select(comp_r & reflect, p_sr * d_pdf * dwh, 0.0)
            pdf += dr.select(reflect, p_d * warp.square_to_cosine_hemisphere_pdf(wo), 0.0)
            if has_st:
                pdf += dr.select(comp_t & refract, p_st * d_pdf * dwh, 0.0)
            if has_cc:
                pdf += dr.select(comp_r & reflect,
                                 p_cc * dr.select(wh[2] < 0, 0.0, wh[2] * gtr1_eval(wh, cc_alpha))
                                 * dwh, 0.0)
            pdf = dr.select(active, pdf, 0.0)
        return value, pdf

    def _sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        n = width(sample1, sample2, si.wi)
        wi = si.wi
        ci = wi[2]
        active = mask(active, n) & (ci != 0)
        p = self._lobe_params(si, active)
        eta = p["eta"]
        front = ci > 0
        m, _ = p["dist"].sample(_mulsign(wi, ci), sample2)
        F, cos_t, eta_it, eta_ti = fresnel_dielectric(dr.dot(wi, m), eta)
        active &= front | (p["bsdf"] > 0)
        p_d, p_cc, p_st, _ = self._probs(p, F, front)
        pick_d = sample1 < p_d
        pick_cc = ~pick_d & (sample1 < p_d + p_cc)
        pick_st = ~pick_d & ~pick_cc & (sample1 < p_d + p_cc + p_st)
        # (otherwise: the specular reflection lobe)
        wo_sr = reflect_about(wi, m)
        wo_st = refract(wi, cos_t, eta_ti, m)
        wo_d = warp.square_to_cosine_hemisphere(sample2)
        if p["clearcoat"] is not None:
            alpha = 0.1 + (0.001 - 0.1) * self._s("clearcoat_gloss", si, active)
            m_cc = gtr1_sample(sample2, alpha)
            wo_cc = reflect_about(wi, m_cc)
        else:
            m_cc, wo_cc = m, wo_sr
        wo = dr.select(pick_d, wo_d, dr.select(pick_cc, wo_cc, dr.select(pick_st, wo_st, wo_sr)))
        co = wo[2]
        ok = dr.select(pick_d, ci * co > 0,
                       dr.select(pick_cc, _compatible(m_cc, wi, wo, ci, True) & (ci * co > 0),
                                 dr.select(pick_st,
                                           _compatible(m, wi, wo, ci, False) & (ci * co < 0),
                                           _compatible(m, wi, wo, ci, True) & (ci * co > 0))))
        active &= ok
        value, pdf = self._eval_pdf(si, wo, active, True, True)
        active &= pdf > 0
        weight = dr.select(active, value / safe(pdf, active), 0.0)
        return BSDFSample(wo=wo, pdf=dr.select(active, pdf, 0.0), weight=weight,
                          delta=full_bool(False, n),
                          eta=dr.select(active & pick_st, eta_it, 1.0))

    def lobe_roughness(self) -> float:
        """The main specular lobe's ``α = roughness²``."""
        return max(0.001, self.tex["roughness"].mean() ** 2)

    def albedo(self, si: Any, active: Any = True) -> Any:
        return self.base_color.eval(si, active)

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield from texture_parameters("base_color", self.base_color)
        for name in _SCALARS:
            yield from texture_parameters(name, self.tex[name])
        if self.uses_eta:
            yield "eta", self.eta_param, self._set_eta
        else:
            yield "specular", self.eta_param, self._set_specular

    def __repr__(self) -> str:
        return f"Principled(base_color={self.base_color!r})"
