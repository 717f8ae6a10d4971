"""The smooth dielectric (glass, water): Fresnel-weighted delta reflection and refraction."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..core.frame import reflect
from ..core.fresnel import IOR_TABLE, fresnel_dielectric, refract, resolve_ior
from ..scene.schema import Param, register
from ..textures.constant import as_texture, texture_parameters
from ._common import full_bool, mask, safe, to_scalar_float, width, where_prefix
from .base import BSDF, BSDFSample

#: ``int_ior``/``ext_ior`` accept a number or a name of the IOR table. Their
#: schema kind is ``float``; a loader may pass a string (a material name) too.
IOR_PARAMS = {
    "int_ior": Param("float_or_string", default="bk7", min_exclusive=0.0,
                     doc="interior index of refraction: a number or one of "
                     + ", ".join(sorted(IOR_TABLE))),
    "ext_ior": Param("float_or_string", default="air", min_exclusive=0.0,
                     doc="exterior index of refraction: a number or a name"),
}


def relative_eta(int_ior: Any, ext_ior: Any, where: str) -> Any:
    """``int_ior / ext_ior`` as a width-1 ``Float``, each given as a number or a name."""
    i = resolve_ior(int_ior, f"{where}: 'int_ior'")
    e = resolve_ior(ext_ior, f"{where}: 'ext_ior'")
    return bk.Float(i / e)


class EtaMixin:
    """The relative index ``eta`` stored as a width-1 ``Float`` with a checked setter."""

    _where: str

    def _set_eta(self, value: Any) -> None:
        self.eta = to_scalar_float(value, f"{self._where}: 'eta'", positive=True)


@register
class SmoothDielectric(EtaMixin, BSDF):
    """An interface between two dielectrics of relative index ``η = int_ior / ext_ior``.

    ``sample`` picks specular reflection with probability ``F`` (exact
    unpolarised Fresnel, :func:`~lumigrad.core.fresnel.fresnel_dielectric`) and
    refraction (Snell's law) otherwise, so the weights are

    * reflection: ``specular_reflectance``;
    * refraction: ``specular_transmittance · (η_wi / η_wo)²`` — radiance carried
      across the interface is scaled by the squared ratio of the indices on the
      side of ``wi`` (towards the camera) and of ``wo`` (towards the light), so
      ``L / η²`` is conserved.

    ``BSDFSample.eta`` is the relative index crossed, ``η_wo / η_wi`` (1 for
    reflection). The choice uses the detached ``F``; the weights are written
    ``R F / F̂`` and ``T (1-F) / (1-F̂) (η_wi/η_wo)²`` (``F̂`` detached) so that
    their derivative includes ``dF/dη``, the derivative of the expected value of
    the discrete choice. Both sides are handled (``cos θ_i < 0`` is inside); total
    internal reflection gives ``F = 1``. Keys: ``eta`` (differentiable),
    ``specular_reflectance.value``, ``specular_transmittance.value``.
    """

    PLUGIN = ("bsdf", "dielectric")
    PARAMS = {
        **IOR_PARAMS,
        "specular_reflectance": Param("texture", default=1.0, min=0.0,
                                      doc="multiplier of the reflected part (not physical)"),
        "specular_transmittance": Param("texture", default=1.0, min=0.0,
                                        doc="multiplier of the refracted part (not physical)"),
    }
    has_delta = True
    delta_only = True

    def __init__(self, int_ior: Any = "bk7", ext_ior: Any = "air",
                 specular_reflectance: Any = 1.0, specular_transmittance: Any = 1.0,
                 id: str | None = None) -> None:
        super().__init__(id)
        self._where = where_prefix(self.PLUGIN[1], id)
        self.eta = relative_eta(int_ior, ext_ior, self._where)
        self.specular_reflectance = as_texture(
            specular_reflectance, f"{self._where}: 'specular_reflectance'")
        self.specular_transmittance = as_texture(
            specular_transmittance, f"{self._where}: 'specular_transmittance'")

    def sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        n = width(sample1, sample2, si.wi)
        wi = si.wi
        active = mask(active, n) & (wi[2] != 0)
        f, cos_t, eta_it, eta_ti = fresnel_dielectric(wi[2], self.eta)
        # Lobe choice with the detached F; the weights F/p and (1-F)/(1-p) are 1 in
        # value but carry dF/dη, the derivative of the discrete choice's expectation.
        p = dr.detach(f)
        sel_r = sample1 <= p
        wo = dr.select(sel_r, reflect(wi), refract(wi, cos_t, eta_ti))
        pdf = dr.select(sel_r, p, 1.0 - p)
        ok_r = active & sel_r & (p > 0)
        ok_t = active & ~sel_r & (p < 1)
        w_r = self.specular_reflectance.eval(si, ok_r) * (f / safe(p, ok_r))
        w_t = self.specular_transmittance.eval(si, ok_t) * (
            (1.0 - f) / safe(1.0 - p, ok_t) * dr.square(eta_ti))
        active = ok_r | ok_t
        weight = dr.select(sel_r, w_r, w_t)
        return BSDFSample(wo=wo, pdf=dr.select(active, pdf, 0.0),
                          weight=dr.select(active, weight, 0.0), delta=full_bool(True, n),
                          eta=dr.select(sel_r, 1.0, eta_it))

    def eval(self, si: Any, wo: Any, active: Any = True) -> Any:
        return dr.zeros(bk.Array3f, width(si.wi, wo))

    def pdf(self, si: Any, wo: Any, active: Any = True) -> Any:
        return dr.zeros(bk.Float, width(si.wi, wo))

    def albedo(self, si: Any, active: Any = True) -> Any:
        """The transmittance multiplier (glass has no diffuse colour)."""
        return self.specular_transmittance.eval(si, active)

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield "eta", self.eta, self._set_eta
        yield from texture_parameters("specular_reflectance", self.specular_reflectance)
        yield from texture_parameters("specular_transmittance", self.specular_transmittance)
