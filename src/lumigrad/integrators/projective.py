"""Mitsuba 3's projective integrators ``prb_projective`` and ``direct_projective``
under their names.

Mitsuba renders the same images with them as with ``path`` (``prb``) and
``direct``; they differ in how they estimate derivatives with respect to
geometry (projective sampling of silhouettes; Zhang et al. 2023, "Projective
Sampling for Differentiable Rendering of Geometry"). lumigrad's ``path`` and
``direct`` add their own boundary terms, so these names load as them:

* ``sppp`` (Mitsuba: primary-boundary samples per pixel) sets lumigrad's
  ``sppe``, ``sppi`` (indirect boundary) its ``sppie``;
* ``sppc`` (samples of the continuous part), ``guiding``, ``guiding_proj``,
  ``guiding_rounds`` tune Mitsuba's estimators and cannot change an image:
  accepted and ignored (lumigrad's interior uses the render's ``spp_grad``).
"""
from __future__ import annotations

from typing import Any, Optional

from ..scene.schema import Param, register
from .path import DirectIntegrator, PathIntegrator

_WHY = "tunes Mitsuba's projective derivative estimator; it changes no image"
_PROJECTIVE_PARAMS = {
    "sppp": Param("int", None, min=0, doc="primary boundary samples per pixel (lumigrad's "
                  "sppe)"),
    "sppi": Param("int", None, min=0, doc="indirect boundary samples per pixel (lumigrad's "
                  "sppie)"),
    "sppc": Param("int", None, min=0, ignored=_WHY),
    "guiding": Param("string", "octree", choices=("none", "grid", "octree"), ignored=_WHY),
    "guiding_proj": Param("bool", True, ignored=_WHY),
    "guiding_rounds": Param("int", 1, min=1, ignored=_WHY),
}


def _budgets(sppp: Optional[int], sppi: Optional[int], kwargs: dict) -> dict:
    """Mitsuba's budget names (``sppp`` primary, ``sppi`` indirect) as lumigrad's
    (``sppe``, ``sppie``) unless those are given too."""
    if sppp is not None and kwargs.get("sppe") is None:
        kwargs["sppe"] = sppp
    if sppi is not None and kwargs.get("sppie") is None:
        kwargs["sppie"] = sppi
    return kwargs


@register
class PrbProjectiveIntegrator(PathIntegrator):
    """``prb_projective``: the path tracer (see the module docstring)."""

    PLUGIN = ("integrator", "prb_projective")
    PARAMS = {**PathIntegrator.PARAMS, **_PROJECTIVE_PARAMS}

    def __init__(self, sppp: Optional[int] = None, sppi: Optional[int] = None,
                 **kwargs: Any) -> None:
        super().__init__(**_budgets(sppp, sppi, kwargs))


@register
class DirectProjectiveIntegrator(DirectIntegrator):
    """``direct_projective``: direct illumination (see the module docstring)."""

    PLUGIN = ("integrator", "direct_projective")
    PARAMS = {**DirectIntegrator.PARAMS, **_PROJECTIVE_PARAMS,
              "max_depth": Param("int", 2, min=-1, ignored="direct illumination is "
                                 "max_depth 2 by definition")}

    def __init__(self, sppp: Optional[int] = None, sppi: Optional[int] = None,
                 **kwargs: Any) -> None:
        super().__init__(**_budgets(sppp, sppi, kwargs))
