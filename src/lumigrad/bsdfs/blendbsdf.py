"""The blend of two BSDFs: ``(1 - w) f_0 + w f_1``."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr

from ..scene.schema import Param, register
from ..textures.constant import as_texture, texture_parameters
from ._common import detached_clone, mask, safe, where_prefix, width
from .base import BSDF, BSDFSample


@register
class BlendBSDF(BSDF):
    """A linear blend of two BSDFs (Mitsuba 3 docs, ``blendbsdf``): with
    ``w = weight(uv)`` in [0, 1],

        f = (1 - w) f_0 + w f_1,   pdf = (1 - ŵ) pdf_0 + ŵ pdf_1,

    ``ŵ`` being the detached ``w`` (or a frozen snapshot, ``frozen_sampling``).
    ``sample`` picks ``bsdf_i`` (``bsdf_1`` with probability ``p_1 = ŵ``,
    re-using ``sample1`` rescaled) and samples it: ``(wo, pdf_i, weight_i)``.
    Like Mitsuba 3.9.1 it then reports

        pdf    = p_i pdf_i + p_j pdf_j(wo),
        weight = (w_i weight_i pdf_i + w_j f_j(wo)) / pdf

    (``j`` the other BSDF, ``w_0 = 1 - w``, ``w_1 = w``). For a smooth lobe
    ``weight_i pdf_i = f_i(wo)``: the mixture's ``f / pdf`` at ``wo``, with the
    density the direction was drawn with (which MIS needs). For a delta lobe
    ``pdf_i`` is a discrete probability and the other lobe's terms are added
    anyway: when the other BSDF is smooth this is not an unbiased estimate of
    the blend (e.g. 40 % mirror over a diffuse base: the mean weight is
    1.5 % low), but it is what Mitsuba renders, and lumigrad reproduces it so
    that images match (``tests/test_bsdfs_extra.py`` checks both facts).
    Where the other BSDF is delta-only too, the weight is ``weight_i w_i/p_i``
    (1 times the lobe's weight in value; its derivative carries ``dw``). Keys: ``weight.value`` (or the texture's), ``bsdf_0.*``,
    ``bsdf_1.*`` as Mitsuba names them.
    """

    PLUGIN = ("bsdf", "blendbsdf")
    PARAMS = {
        "weight": Param("texture", default=0.5, min=0.0, max=1.0,
                        doc="blend weight: 0 gives the first BSDF, 1 the second"),
        "bsdf_0": Param("object", category="bsdf", required=True, doc="first nested BSDF"),
        "bsdf_1": Param("object", category="bsdf", required=True, doc="second nested BSDF"),
    }

    def __init__(self, bsdf_0: BSDF, bsdf_1: BSDF, weight: Any = 0.5,
                 id: str | None = None) -> None:
        super().__init__(id)
        where = where_prefix("blendbsdf", id)
        for name, b in (("bsdf_0", bsdf_0), ("bsdf_1", bsdf_1)):
            if not isinstance(b, BSDF):
                raise TypeError(f"{where}: '{name}' must be a BSDF plugin, got "
                                f"{type(b).__name__}")
        self.bsdf_0, self.bsdf_1 = bsdf_0, bsdf_1
        self.weight = as_texture(weight, f"{where}: 'weight'")
        self.has_delta = bsdf_0.has_delta or bsdf_1.has_delta
        self.delta_only = bsdf_0.delta_only and bsdf_1.delta_only
        self.glossy = bsdf_0.glossy or bsdf_1.glossy
        self._frozen_weight: Any = None

    def _w(self, si: Any, active: Any) -> Any:
        return dr.clip(self.weight.eval_1(si, active), 0.0, 1.0)

    def _w_sampling(self, si: Any, active: Any) -> Any:
        src = self._frozen_weight
        w = self.weight.eval_1(si, active) if src is None else src.eval_1(si, active)
        return dr.clip(dr.detach(w), 0.0, 1.0)

    def sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        n = width(sample1, sample2, si.wi)
        active = mask(active, n)
        w = self._w(si, active)
        p = self._w_sampling(si, active)
        pick1 = sample1 < p
        s1_0 = (sample1 - p) / safe(1.0 - p, p < 1)
        s1_1 = sample1 / safe(p, p > 0)
        b0 = self.bsdf_0.sample(si, s1_0, sample2, active & ~pick1)
        b1 = self.bsdf_1.sample(si, s1_1, sample2, active & pick1)
        bs = BSDFSample(*[dr.select(pick1, getattr(b1, k), getattr(b0, k))
                          for k in ("wo", "pdf", "weight", "delta", "eta")])
        # The other lobe's value and density at the sampled direction (0 for a
        # delta lobe), and the blend factor and probability of each side.
        ok = active & (bs.pdf > 0)
        f_0, pdf_0 = self.bsdf_0.eval_pdf(si, bs.wo, ok & pick1)
        f_1, pdf_1 = self.bsdf_1.eval_pdf(si, bs.wo, ok & ~pick1)
        f_other = dr.select(pick1, f_0 * (1.0 - w), f_1 * w)
        pdf_other = dr.select(pick1, pdf_0 * (1.0 - p), pdf_1 * p)
        w_i = dr.select(pick1, w, 1.0 - w)
        p_i = dr.select(pick1, p, 1.0 - p)
        pdf = p_i * bs.pdf + pdf_other
        value = bs.weight * (w_i * bs.pdf) + f_other
        ok &= pdf > 0
        bs.weight = dr.select(ok, value / safe(pdf, ok), 0.0)
        bs.pdf = dr.select(ok, pdf, 0.0)
        return bs

    def eval(self, si: Any, wo: Any, active: Any = True) -> Any:
        w = self._w(si, active)
        return (self.bsdf_0.eval(si, wo, active) * (1.0 - w)
                + self.bsdf_1.eval(si, wo, active) * w)

    def pdf(self, si: Any, wo: Any, active: Any = True) -> Any:
        p = self._w_sampling(si, active)
        return self.bsdf_0.pdf(si, wo, active) * (1.0 - p) + self.bsdf_1.pdf(si, wo, active) * p

    def eval_pdf(self, si: Any, wo: Any, active: Any = True) -> tuple[Any, Any]:
        return self.eval(si, wo, active), self.pdf(si, wo, active)

    def lobe_roughness(self) -> float:
        return min(self.bsdf_0.lobe_roughness(), self.bsdf_1.lobe_roughness())

    def albedo(self, si: Any, active: Any = True) -> Any:
        w = self._w(si, active)
        return self.bsdf_0.albedo(si, active) * (1.0 - w) + self.bsdf_1.albedo(si, active) * w

    def freeze_sampling(self) -> None:
        self._frozen_weight = detached_clone(self.weight)
        self.bsdf_0.freeze_sampling()
        self.bsdf_1.freeze_sampling()

    def unfreeze_sampling(self) -> None:
        self._frozen_weight = None
        self.bsdf_0.unfreeze_sampling()
        self.bsdf_1.unfreeze_sampling()

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield from texture_parameters("weight", self.weight)
        for prefix, b in (("bsdf_0", self.bsdf_0), ("bsdf_1", self.bsdf_1)):
            for key, value, setter in b.parameters():
                yield f"{prefix}.{key}", value, setter

    def __repr__(self) -> str:
        return f"BlendBSDF(weight={self.weight!r}, {self.bsdf_0!r}, {self.bsdf_1!r})"
