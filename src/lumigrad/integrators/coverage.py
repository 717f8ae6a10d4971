"""Alpha (coverage) of a radiance image, for films with an alpha channel
(``hdrfilm`` ``pixel_format`` ``rgba``, ``luminance_alpha``, ``xyza``).

Mitsuba 3.9.1 stores, per pixel, the fraction of camera samples whose path is
"valid". Measured on its ``path`` and ``direct`` integrators:

* a camera ray hitting a surface counts, unless ``hide_emitters`` is set and
  the surface is an area emitter;
* a camera ray escaping the scene counts for ``path`` (and ``prb`` ...) when an
  environment emitter is there and ``hide_emitters`` is not set; never for
  ``direct``.

This integrator estimates that fraction with its own camera samples (an
independent estimate of the same pixel filter); it is an internal helper, not a
scene plugin, and carries no derivatives (alpha does not depend on continuous
parameters except at silhouettes).
"""
from __future__ import annotations

from typing import Any

import drjit as dr

from .. import backend as bk
from .base import SamplingIntegrator

_INVALID = 0xFFFFFFFF


class CoverageIntegrator(SamplingIntegrator):
    """Per-sample validity (0 or 1) of the camera paths of ``integrator``."""

    channels = 1

    def __init__(self, integrator: Any) -> None:
        super().__init__(None)
        self.hide_emitters = bool(getattr(integrator, "hide_emitters", False))
        from .path import DirectIntegrator
        self.escaped_count = not isinstance(integrator, DirectIntegrator)

    def sample(self, scene: Any, rng: Any, o: Any, d: Any, tmax: Any, active: Any,
               mode: str = "primal", delta_L: Any = None, L_primal: Any = None,
               camera: Any = None, first_prim: Any = None) -> Any:
        _, prim, _, _, hit = scene.ray_intersect_preliminary(o, d, tmax, active)
        valid = active & hit
        if self.hide_emitters and scene.area_emitters:
            em = dr.gather(bk.UInt32, scene.prim_emitter, prim, valid)
            valid &= em == _INVALID
        if self.escaped_count and not self.hide_emitters and scene.environment is not None:
            valid |= active & ~hit
        return [dr.select(valid, bk.Float(1.0), bk.Float(0.0))]
