"""The two-sided adapter: a material on both sides of a surface."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator, Optional

import drjit as dr

from .. import backend as bk
from ._common import mask, where_prefix, width
from .base import BSDF, BSDFSample
from ..scene.schema import Param, register


def _flip_z(v: Any, flip: Any) -> Any:
    return bk.Array3f(v[0], v[1], dr.select(flip, -v[2], v[2]))


@register
class TwoSided(BSDF):
    """Make one-sided BSDFs two-sided. Where ``cos θ_i < 0`` the BSDF is evaluated
    in the mirrored frame (the z components of ``wi`` and ``wo`` negated), so the
    back face looks like a front face. With one nested BSDF both sides use it;
    with two (Mitsuba's form: two unnamed nested ``<bsdf>``), the first is the
    front and the second (``bsdf_back``) the back. Keys are the nested BSDFs'
    under ``brdf_0.`` and ``brdf_1.``, as Mitsuba names them.
    """

    PLUGIN = ("bsdf", "twosided")
    PARAMS = {
        "bsdf": Param("object", category="bsdf", required=True, doc="front (and back) BSDF"),
        "bsdf_back": Param("object", category="bsdf", default=None,
                           doc="optional different BSDF for the back side"),
    }

    def __init__(self, bsdf: BSDF, bsdf_back: Optional[BSDF] = None,
                 id: Optional[str] = None) -> None:
        super().__init__(id)
        where = where_prefix("twosided", id)
        for name, b in (("bsdf", bsdf), ("bsdf_back", bsdf_back)):
            if b is not None and not isinstance(b, BSDF):
                raise TypeError(f"{where}: '{name}' must be a BSDF plugin, got "
                                f"{type(b).__name__}")
        if isinstance(bsdf, TwoSided) or isinstance(bsdf_back, TwoSided):
            raise ValueError(f"{where}: a twosided BSDF cannot nest another twosided BSDF")
        self.nested = bsdf
        self.back = bsdf_back
        parts = [bsdf] + ([bsdf_back] if bsdf_back is not None else [])
        self.has_delta = any(b.has_delta for b in parts)
        self.delta_only = all(b.delta_only for b in parts)
        self.glossy = any(b.glossy for b in parts)

    @staticmethod
    def _front(si: Any) -> tuple[Any, Any]:
        flip = si.wi[2] < 0
        return dataclasses.replace(si, wi=_flip_z(si.wi, flip)), flip

    def sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        si2, flip = self._front(si)
        if self.back is None:
            bs = self.nested.sample(si2, sample1, sample2, active)
        else:
            act = mask(active, width(sample1, sample2, si.wi))
            a = self.nested.sample(si2, sample1, sample2, act & ~flip)
            b = self.back.sample(si2, sample1, sample2, act & flip)
            bs = BSDFSample(*[dr.select(flip, getattr(b, f.name), getattr(a, f.name))
                              for f in dataclasses.fields(BSDFSample)])
        bs.wo = _flip_z(bs.wo, flip)
        return bs

    def _both(self, method: str, si: Any, wo: Any, active: Any) -> Any:
        si2, flip = self._front(si)
        wo2 = _flip_z(wo, flip)
        if self.back is None:
            return getattr(self.nested, method)(si2, wo2, active)
        act = mask(active, width(si.wi, wo))
        a = getattr(self.nested, method)(si2, wo2, act & ~flip)
        b = getattr(self.back, method)(si2, wo2, act & flip)
        if isinstance(a, tuple):
            return tuple(dr.select(flip, y, x) for x, y in zip(a, b))
        return dr.select(flip, b, a)

    def eval(self, si: Any, wo: Any, active: Any = True) -> Any:
        return self._both("eval", si, wo, active)

    def pdf(self, si: Any, wo: Any, active: Any = True) -> Any:
        return self._both("pdf", si, wo, active)

    def eval_pdf(self, si: Any, wo: Any, active: Any = True) -> tuple[Any, Any]:
        return self._both("eval_pdf", si, wo, active)

    def lobe_roughness(self) -> float:
        return min(b.lobe_roughness() for b in (self.nested, self.back) if b is not None)

    def albedo(self, si: Any, active: Any = True) -> Any:
        if self.back is None:
            return self.nested.albedo(si, active)
        return dr.select(si.wi[2] < 0, self.back.albedo(si, active),
                         self.nested.albedo(si, active))

    def freeze_sampling(self) -> None:
        for b in (self.nested, self.back):
            if b is not None:
                b.freeze_sampling()

    def unfreeze_sampling(self) -> None:
        for b in (self.nested, self.back):
            if b is not None:
                b.unfreeze_sampling()

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        for key, value, setter in self.nested.parameters():
            yield f"brdf_0.{key}", value, setter
        if self.back is not None:
            for key, value, setter in self.back.parameters():
                yield f"brdf_1.{key}", value, setter
