"""The null BSDF: a surface that light passes through unchanged."""
from __future__ import annotations

from typing import Any

import drjit as dr

from .. import backend as bk
from ..scene.schema import register
from ._common import any_nested, full_bool, full_float, mask, width
from .base import BSDF, BSDFSample


def pass_through(si: Any, n: int, active: Any) -> BSDFSample:
    """The null lobe: ``wo = -wi`` with probability and weight 1, no index change."""
    return BSDFSample(wo=-si.wi, pdf=dr.select(active, 1.0, 0.0),
                      weight=dr.select(active, dr.ones(bk.Array3f, n), 0.0),
                      delta=full_bool(True, n), eta=full_float(1.0, n))


def has_null_lobe(bsdf: Any) -> bool:
    """Whether a BSDF (or one nested in it) passes light straight through
    (``null``, ``mask``, ``thindielectric``'s transmission): Mitsuba's
    ``volpath`` treats such lobes as index-matched interfaces, which
    lumigrad's path tracer does not model yet."""
    return any_nested(bsdf, "null_lobe")


@register
class Null(BSDF):
    """A surface without optical effect (Mitsuba 3 docs, ``null``): the ray
    goes on in the same direction, ``wo = -wi``, weight 1; ``eval`` and
    ``pdf`` are 0 (the lobe is a Dirac delta).

    Depth counting follows Mitsuba 3's ``path``/``prb``/``direct`` integrators:
    the pass-through is a (delta) bounce that counts towards ``max_depth``,
    and shadow rays are blocked by the surface (those integrators test
    visibility against every shape). Mitsuba's ``volpath``, which treats null
    surfaces as index-matched interfaces (shadow rays pass, no depth is
    counted), is different: lumigrad's ``volpath`` refuses such scenes (see
    :func:`has_null_lobe`).
    """

    PLUGIN = ("bsdf", "null")
    PARAMS: dict = {}
    has_delta = True
    delta_only = True
    null_lobe = True

    def sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        n = width(sample1, sample2, si.wi)
        return pass_through(si, n, mask(active, n))

    def eval(self, si: Any, wo: Any, active: Any = True) -> Any:
        return dr.zeros(bk.Array3f, width(si.wi, wo))

    def pdf(self, si: Any, wo: Any, active: Any = True) -> Any:
        return dr.zeros(bk.Float, width(si.wi, wo))

    def albedo(self, si: Any, active: Any = True) -> Any:
        return dr.zeros(bk.Array3f, width(si.wi))

    def __repr__(self) -> str:
        return "Null()"
