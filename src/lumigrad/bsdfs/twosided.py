"""The two-sided adapter: the same material on both sides of a surface."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..scene.schema import Param, register
from ._common import where_prefix
from .base import BSDF, BSDFSample


def _flip_z(v: Any, flip: Any) -> Any:
    return bk.Array3f(v[0], v[1], dr.select(flip, -v[2], v[2]))


@register
class TwoSided(BSDF):
    """Make a one-sided BSDF two-sided: where ``cos θ_i < 0`` the nested BSDF is
    evaluated in the mirrored frame (the z components of ``wi`` and ``wo``
    negated), so the back face looks like the front. Keys are the nested BSDF's
    under ``brdf_0.`` (as Mitsuba names them).
    """

    PLUGIN = ("bsdf", "twosided")
    PARAMS = {
        "bsdf": Param("object", category="bsdf", required=True, doc="the nested BSDF"),
    }

    def __init__(self, bsdf: BSDF, id: str | None = None) -> None:
        super().__init__(id)
        if not isinstance(bsdf, BSDF):
            raise TypeError(f"{where_prefix('twosided', id)}: 'bsdf' must be a BSDF plugin, "
                            f"got {type(bsdf).__name__}")
        if isinstance(bsdf, TwoSided):
            bsdf = bsdf.nested
        self.nested = bsdf
        self.has_delta = bsdf.has_delta
        self.delta_only = bsdf.delta_only

    @staticmethod
    def _front(si: Any) -> tuple[Any, Any]:
        flip = si.wi[2] < 0
        return dataclasses.replace(si, wi=_flip_z(si.wi, flip)), flip

    def sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        si2, flip = self._front(si)
        bs = self.nested.sample(si2, sample1, sample2, active)
        bs.wo = _flip_z(bs.wo, flip)
        return bs

    def eval(self, si: Any, wo: Any, active: Any = True) -> Any:
        si2, flip = self._front(si)
        return self.nested.eval(si2, _flip_z(wo, flip), active)

    def pdf(self, si: Any, wo: Any, active: Any = True) -> Any:
        si2, flip = self._front(si)
        return self.nested.pdf(si2, _flip_z(wo, flip), active)

    def eval_pdf(self, si: Any, wo: Any, active: Any = True) -> tuple[Any, Any]:
        si2, flip = self._front(si)
        return self.nested.eval_pdf(si2, _flip_z(wo, flip), active)

    def albedo(self, si: Any, active: Any = True) -> Any:
        return self.nested.albedo(si, active)

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        for key, value, setter in self.nested.parameters():
            yield f"brdf_0.{key}", value, setter
