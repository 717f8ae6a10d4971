"""The opacity mask: a BSDF made partly transparent (leaves, fences, cut-outs)."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr

from ..scene.schema import Param, register
from ..textures.constant import as_texture, texture_parameters
from ._common import detached_clone, mask, safe, where_prefix, width
from .base import BSDF, BSDFSample
from .null import pass_through


@register
class Mask(BSDF):
    """``opacity · nested + (1 - opacity) · null`` (Mitsuba 3 docs, ``mask``).

    With ``α = opacity(uv)`` in [0, 1]: ``eval = α f_nested``, ``pdf = α
    pdf_nested``; ``sample`` picks the nested BSDF with probability ``α̂``
    (the detached ``α``, or a frozen snapshot, see ``frozen_sampling``) and
    re-uses ``sample1 / α̂`` for it, else the null lobe (``wo = -wi``, a delta
    pass-through). The weights are ``w_nested α/α̂`` and ``(1-α)/(1-α̂)``, 1 in
    value, so their derivatives carry ``dα`` (the derivative of the expected
    value of the discrete choice). The pass-through counts as a bounce and
    blocks shadow rays, as in Mitsuba's ``path`` integrator (see ``null``).
    Keys: ``opacity.value`` (or the texture's keys), ``nested_bsdf.*``.
    """

    PLUGIN = ("bsdf", "mask")
    null_lobe = True
    PARAMS = {
        "opacity": Param("texture", default=0.5, min=0.0, max=1.0,
                         doc="probability that the surface is there (1: opaque)"),
        "bsdf": Param("object", category="bsdf", required=True, doc="the opaque part's BSDF"),
    }

    def __init__(self, bsdf: BSDF, opacity: Any = 0.5, id: str | None = None) -> None:
        super().__init__(id)
        where = where_prefix("mask", id)
        if not isinstance(bsdf, BSDF):
            raise TypeError(f"{where}: 'bsdf' must be a BSDF plugin, got {type(bsdf).__name__}")
        self.nested = bsdf
        self.opacity = as_texture(opacity, f"{where}: 'opacity'")
        self.has_delta = True
        self.delta_only = bsdf.delta_only
        self.glossy = bsdf.glossy
        self._frozen_opacity: Any = None

    def _alpha(self, si: Any, active: Any) -> Any:
        return dr.clip(self.opacity.eval_1(si, active), 0.0, 1.0)

    def sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        n = width(sample1, sample2, si.wi)
        active = mask(active, n)
        alpha = self._alpha(si, active)
        src = self._frozen_opacity
        p = dr.detach(alpha) if src is None else dr.clip(src.eval_1(si, active), 0.0, 1.0)
        pick = active & (sample1 < p)
        bs = self.nested.sample(si, sample1 / safe(p, p > 0), sample2, pick)
        bs.weight = bs.weight * (alpha / safe(p, pick))
        bs.pdf = bs.pdf * p
        null = pass_through(si, n, active & ~pick & (p < 1))
        null.weight = null.weight * ((1.0 - alpha) / safe(1.0 - p, p < 1))
        null.pdf = null.pdf * (1.0 - p)
        out = BSDFSample(*[dr.select(pick, getattr(bs, k), getattr(null, k))
                           for k in ("wo", "pdf", "weight", "delta", "eta")])
        return out

    def eval(self, si: Any, wo: Any, active: Any = True) -> Any:
        return self.nested.eval(si, wo, active) * self._alpha(si, active)

    def pdf(self, si: Any, wo: Any, active: Any = True) -> Any:
        src = self._frozen_opacity or self.opacity
        p = dr.clip(dr.detach(src.eval_1(si, active)), 0.0, 1.0)
        return self.nested.pdf(si, wo, active) * p

    def eval_pdf(self, si: Any, wo: Any, active: Any = True) -> tuple[Any, Any]:
        return self.eval(si, wo, active), self.pdf(si, wo, active)

    def lobe_roughness(self) -> float:
        return self.nested.lobe_roughness()

    def albedo(self, si: Any, active: Any = True) -> Any:
        return self.nested.albedo(si, active)

    def freeze_sampling(self) -> None:
        self._frozen_opacity = detached_clone(self.opacity)
        self.nested.freeze_sampling()

    def unfreeze_sampling(self) -> None:
        self._frozen_opacity = None
        self.nested.unfreeze_sampling()

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield from texture_parameters("opacity", self.opacity)
        for key, value, setter in self.nested.parameters():
            yield f"nested_bsdf.{key}", value, setter

    def __repr__(self) -> str:
        return f"Mask(opacity={self.opacity!r}, bsdf={self.nested!r})"
