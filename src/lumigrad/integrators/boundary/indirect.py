"""Indirect visibility: boundary terms at the vertices of camera paths.

Edges seen from a surface point (silhouettes and creases in front of what a
BSDF-sampled ray would see) and shadow lines of next-event estimation at the
next vertex, sampled at one non-delta vertex (chosen by its throughput) of
each camera path; the paths follow the interior estimator's own sampling.
The estimators are written with that
estimator's variables and live beside it in ``integrators/pathgeo.py`` (see
its docstring for the formulas); this module runs them as a term of their own,
with their own sample budget (``sppie``), in forward and reverse mode.
"""
from __future__ import annotations

from typing import Any, Optional

import drjit as dr

from . import BoundaryTerm, moves_geometry


class IndirectEdges(BoundaryTerm):
    name = "indirect"
    budget = "sppie"
    camera_path = True
    #: with the interior, the samples ride along its paths (``PathIntegrator``)
    rides_with_interior = True

    def needed(self, scene: Any, sensor: Any, integrator: Any) -> bool:
        depth = getattr(integrator, "max_depth", 1)
        m = moves_geometry(scene, sensor)
        return ((m["shapes"] or m["lights"] or m["sensor"] or m["normals"])
                and hasattr(integrator, "pathspace")
                and (depth < 0 or depth >= 3))

    def trace(self, scene: Any, sensor: Any, integrator: Any, rng: Any, film_pos: Any,
              mode: str, delta: Optional[Any] = None) -> Any:
        """``mode='forward'``: per-lane sums of the attached terms (zero in
        value); ``'backward'``: back-propagate ``delta`` times them."""
        from .. import pathgeo
        if mode == "forward":
            return pathgeo.trace(integrator, scene, rng, sensor, film_pos, "forward",
                                 interior=False, edges=True)
        with dr.suspend_grad():
            record = pathgeo.trace(integrator, scene, rng, sensor, film_pos, "record",
                                   interior=False, edges=True)
        pathgeo.replay(integrator, scene, record, sensor, film_pos, delta)
        return None
