"""The smooth conductor (a Fresnel-weighted perfect mirror)."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..core.frame import reflect
from ..core.fresnel import CONDUCTOR_TABLE, conductor_ior, fresnel_conductor
from ..scene.schema import Param, register
from ..textures.constant import as_texture, texture_parameters
from ._common import full_bool, full_float, mask, width, where_prefix
from .base import BSDF, BSDFSample

#: Parameters shared by ``conductor`` and ``roughconductor``.
CONDUCTOR_PARAMS = {
    "material": Param("string", default="none",
                      doc="named complex IOR preset: " + ", ".join(CONDUCTOR_TABLE)
                      + " ('none': ideal mirror)"),
    "eta": Param("texture", default=None, min=0.0,
                 doc="real part of the relative complex index (default: from 'material')"),
    "k": Param("texture", default=None, min=0.0,
               doc="imaginary part (absorption) of the index (default: from 'material')"),
    "specular_reflectance": Param("texture", default=1.0, min=0.0,
                                  doc="multiplier of the reflectance (not physical)"),
}


def conductor_textures(material: str, eta: Any, k: Any, where: str) -> tuple[Any, Any]:
    """The ``(eta, k)`` textures of a conductor from a preset name and/or explicit values.

    ``material='none'`` (Mitsuba's default) is the ideal mirror ``eta = 0, k = 1``
    unless ``eta``/``k`` are given; a named preset may not be combined with them.
    """
    name = "none" if material is None else str(material)
    if name.strip().lower() != "none":
        if eta is not None or k is not None:
            raise ValueError(f"{where}: give either 'material' ({name!r}) or 'eta'/'k', not both")
        e, kk = conductor_ior(name, f"{where}: 'material'")
        return as_texture(e, f"{where}: 'eta'"), as_texture(kk, f"{where}: 'k'")
    return (as_texture(0.0 if eta is None else eta, f"{where}: 'eta'"),
            as_texture(1.0 if k is None else k, f"{where}: 'k'"))


def conductor_parameters(bsdf: Any) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
    yield from texture_parameters("eta", bsdf.eta)
    yield from texture_parameters("k", bsdf.k)
    yield from texture_parameters("specular_reflectance", bsdf.specular_reflectance)


@register
class SmoothConductor(BSDF):
    """A perfectly smooth metal: a delta reflection weighted by the exact conductor
    Fresnel term ``F(cos θ_i; η + i k)`` (see :func:`~lumigrad.core.fresnel.fresnel_conductor`)
    times ``specular_reflectance``. One-sided (zero for ``cos θ_i <= 0``).
    """

    PLUGIN = ("bsdf", "conductor")
    PARAMS = dict(CONDUCTOR_PARAMS)
    has_delta = True
    delta_only = True

    def __init__(self, material: str = "none", eta: Any = None, k: Any = None,
                 specular_reflectance: Any = 1.0, id: str | None = None) -> None:
        super().__init__(id)
        where = where_prefix("conductor", id)
        self.material = material
        self.eta, self.k = conductor_textures(material, eta, k, where)
        self.specular_reflectance = as_texture(specular_reflectance,
                                               f"{where}: 'specular_reflectance'")

    def sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        n = width(sample1, sample2, si.wi)
        ok = mask(active, n) & (si.wi[2] > 0)
        f = fresnel_conductor(si.wi[2], self.eta.eval(si, ok), self.k.eval(si, ok))
        weight = dr.select(ok, self.specular_reflectance.eval(si, ok) * f, 0.0)
        return BSDFSample(wo=reflect(si.wi), pdf=dr.select(ok, 1.0, 0.0), weight=weight,
                          delta=full_bool(True, n), eta=full_float(1.0, n))

    def eval(self, si: Any, wo: Any, active: Any = True) -> Any:
        return dr.zeros(bk.Array3f, width(si.wi, wo))

    def pdf(self, si: Any, wo: Any, active: Any = True) -> Any:
        return dr.zeros(bk.Float, width(si.wi, wo))

    def albedo(self, si: Any, active: Any = True) -> Any:
        """Normal-incidence reflectance times ``specular_reflectance``."""
        f0 = fresnel_conductor(1.0, self.eta.eval(si, active), self.k.eval(si, active))
        return self.specular_reflectance.eval(si, active) * f0

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield from conductor_parameters(self)
