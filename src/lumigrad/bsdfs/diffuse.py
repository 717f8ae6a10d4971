"""The ideal diffuse (Lambertian) BRDF."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr

from ..core import warp
from ..scene.schema import Param, register
from ..textures.constant import as_texture, texture_parameters
from ._common import full_bool, full_float, mask, width, where_prefix
from .base import BSDF, BSDFSample


@register
class Diffuse(BSDF):
    """Lambertian reflection, one-sided: ``f(wi, wo) = ρ / π`` for ``cos θ_i, cos θ_o > 0``.

    Sampling is cosine-weighted (Malley's method, ``pdf = cos θ_o / π``), so the
    sample weight is exactly ``ρ``. Key ``reflectance.value`` (or the nested
    texture's keys).
    """

    PLUGIN = ("bsdf", "diffuse")
    PARAMS = {
        "reflectance": Param("texture", default=0.5, min=0.0, doc="diffuse albedo ρ"),
    }

    def __init__(self, reflectance: Any = 0.5, id: str | None = None) -> None:
        super().__init__(id)
        self.reflectance = as_texture(reflectance, f"{where_prefix('diffuse', id)}: 'reflectance'")

    def sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        n = width(sample1, sample2, si.wi)
        active = mask(active, n)
        wo = warp.square_to_cosine_hemisphere(sample2)
        pdf = warp.square_to_cosine_hemisphere_pdf(wo)
        ok = active & (si.wi[2] > 0) & (pdf > 0)
        weight = dr.select(ok, self.reflectance.eval(si, ok), 0.0)
        return BSDFSample(wo=wo, pdf=dr.select(ok, pdf, 0.0), weight=weight,
                          delta=full_bool(False, n), eta=full_float(1.0, n))

    def eval(self, si: Any, wo: Any, active: Any = True) -> Any:
        ok = mask(active, width(si.wi, wo)) & (si.wi[2] > 0) & (wo[2] > 0)
        value = self.reflectance.eval(si, ok) * (dr.inv_pi * wo[2])
        return dr.select(ok, value, 0.0)

    def pdf(self, si: Any, wo: Any, active: Any = True) -> Any:
        ok = mask(active, width(si.wi, wo)) & (si.wi[2] > 0) & (wo[2] > 0)
        return dr.select(ok, dr.inv_pi * wo[2], 0.0)

    def albedo(self, si: Any, active: Any = True) -> Any:
        return self.reflectance.eval(si, active)

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield from texture_parameters("reflectance", self.reflectance)

    def __repr__(self) -> str:
        return f"Diffuse(reflectance={self.reflectance!r})"
