"""The thin dielectric: a thin slab of glass (a window pane, a soap bubble)."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..core.frame import reflect
from ..core.fresnel import fresnel_dielectric
from ..scene.schema import Param, register
from ..textures.constant import as_texture, texture_parameters
from ._common import full_bool, full_float, mask, safe, width, where_prefix
from .base import BSDF, BSDFSample
from .dielectric import IOR_PARAMS, EtaMixin, relative_eta


def thin_slab_reflectance(cos_theta_i: Any, eta: Any) -> Any:
    """Reflectance of a thin parallel slab of relative index ``eta``, summed over
    all internal reflections.

    With ``R = F(|cos θ_i|, η)`` the reflectance of one interface (equal on
    both interfaces of a parallel slab: the angle inside is the same) and
    ``T = 1 - R``, light reflected ``2k + 1`` times inside leaves on the front
    with ``T R^(2k+1) T``, so

        R' = R + T² R Σ_k R^(2k) = R + T² R / (1 - R²) = 2R / (1 + R),

    and the slab transmits ``T' = 1 - R' = (1 - R) / (1 + R)`` straight
    through (the two refractions cancel). Mitsuba 3 docs, ``thindielectric``.
    """
    f = fresnel_dielectric(dr.abs(cos_theta_i), eta)[0]
    return 2.0 * f / (1.0 + f)


@register
class ThinDielectric(EtaMixin, BSDF):
    """A thin dielectric slab: delta reflection with probability ``R'`` (see
    :func:`thin_slab_reflectance`) and delta transmission ``wo = -wi`` (no
    refraction: the ray leaves the slab parallel to where it entered) with
    ``1 - R'``. No radiance scaling (the ray ends on the side it started from
    in index). Both sides behave alike.

    As in ``dielectric`` the lobe choice uses the detached ``R'`` and the
    weights are ``ρ_r R'/R̂'`` and ``ρ_t (1-R')/(1-R̂')``, so their derivative
    includes ``dR'/dη`` (while sampling is frozen, ``R̂'`` is that of the
    frozen ``η``: finite differences with common random numbers then see a
    continuous estimate). Keys: ``eta`` (differentiable),
    ``specular_reflectance.value``, ``specular_transmittance.value``.
    """

    PLUGIN = ("bsdf", "thindielectric")
    PARAMS = {
        **IOR_PARAMS,
        "specular_reflectance": Param("texture", default=1.0,
                                      doc="multiplier of the reflected part (not physical)"),
        "specular_transmittance": Param("texture", default=1.0,
                                        doc="multiplier of the transmitted part (not physical)"),
    }
    has_delta = True
    delta_only = True
    #: the transmission is a straight pass-through (Mitsuba flags it "null")
    null_lobe = True

    def __init__(self, int_ior: Any = "bk7", ext_ior: Any = "air",
                 specular_reflectance: Any = 1.0, specular_transmittance: Any = 1.0,
                 id: str | None = None) -> None:
        super().__init__(id)
        self._where = where_prefix("thindielectric", id)
        self.eta = relative_eta(int_ior, ext_ior, self._where)
        self.specular_reflectance = as_texture(
            specular_reflectance, f"{self._where}: 'specular_reflectance'")
        self.specular_transmittance = as_texture(
            specular_transmittance, f"{self._where}: 'specular_transmittance'")

    def sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        n = width(sample1, sample2, si.wi)
        wi = si.wi
        active = mask(active, n) & (wi[2] != 0)
        r = thin_slab_reflectance(wi[2], self.eta)
        # The choice: detached R', or R' of a frozen η (``frozen_sampling``).
        p = dr.detach(r) if self._frozen_eta is None else \
            thin_slab_reflectance(wi[2], self._frozen_eta)
        sel_r = sample1 <= p
        wo = dr.select(sel_r, reflect(wi), -wi)
        ok_r = active & sel_r & (p > 0)
        ok_t = active & ~sel_r & (p < 1)
        w_r = self.specular_reflectance.eval(si, ok_r) * (r / safe(p, ok_r))
        w_t = self.specular_transmittance.eval(si, ok_t) * ((1.0 - r) / safe(1.0 - p, ok_t))
        ok = ok_r | ok_t
        return BSDFSample(wo=wo, pdf=dr.select(ok, dr.select(sel_r, p, 1.0 - p), 0.0),
                          weight=dr.select(ok, dr.select(sel_r, w_r, w_t), 0.0),
                          delta=full_bool(True, n), eta=full_float(1.0, n))

    _frozen_eta: Any = None

    def freeze_sampling(self) -> None:
        self._frozen_eta = bk.Float(dr.detach(self.eta))

    def unfreeze_sampling(self) -> None:
        self._frozen_eta = None

    def eval(self, si: Any, wo: Any, active: Any = True) -> Any:
        return dr.zeros(bk.Array3f, width(si.wi, wo))

    def pdf(self, si: Any, wo: Any, active: Any = True) -> Any:
        return dr.zeros(bk.Float, width(si.wi, wo))

    def albedo(self, si: Any, active: Any = True) -> Any:
        """The transmittance multiplier (a pane has no diffuse colour)."""
        return self.specular_transmittance.eval(si, active)

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield "eta", self.eta, self._set_eta
        yield from texture_parameters("specular_reflectance", self.specular_reflectance)
        yield from texture_parameters("specular_transmittance", self.specular_transmittance)

    def __repr__(self) -> str:
        return f"ThinDielectric(eta={float(dr.detach(self.eta)[0]):.4g})"
