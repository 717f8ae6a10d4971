"""The emitter interface used by the integrators.

Two families:

* ``AreaEmitter`` is attached to a mesh (``shape.emitter``); the scene samples
  points on emissive triangles itself. The emitter provides
  ``eval(si, active) -> Color3f``: radiance leaving the surface towards
  ``si.wi``; one-sided: zero unless ``cos θ_i > 0`` (front face, as Mitsuba).
  It reads only ``si.wi`` and ``si.uv`` (and the scene ``si.prim``): the reverse
  pass replays emitter derivatives from records of these (integrators/replay.py).
* Every other emitter implements direct-illumination sampling from a reference
  point and (for infinite emitters) lookup by direction:

  - ``sample_direction(p, sample2, active) -> DirectionSample``
  - ``eval_direction(d, active) -> Color3f``: radiance arriving from world
    direction ``-d``... precisely: radiance seen along a ray escaping the scene
    in direction ``d`` (zero for delta emitters)
  - ``pdf_direction(p, d, active) -> Float``: solid-angle pdf of
    ``sample_direction`` choosing ``d`` (zero for delta emitters)
  - ``is_delta``: point and directional lights (no MIS, not hit by rays)
  - ``is_infinite``: constant, envmap and directional (seen by escaping rays or
    at infinite distance)
  - ``set_scene_bounds(center, radius)`` called by the scene before rendering
    (the directional emitter needs it for its power; infinite emitters for
    shadow ray lengths)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator


@dataclass
class DirectionSample:
    d: Any       # Array3f: unit world direction from the reference point to the emitter
    dist: Any    # Float: distance to the emitter point (inf for infinite emitters)
    pdf: Any     # Float: solid-angle density (1 for delta emitters)
    weight: Any  # Color3f: incident radiance / pdf (for delta: intensity / dist²)
    delta: Any   # Bool


class Emitter:
    is_delta: bool = False
    is_infinite: bool = False
    is_area: bool = False

    def __init__(self, id: str | None = None) -> None:
        self.id = id

    def set_scene_bounds(self, center: Any, radius: float) -> None:
        pass

    def sample_direction(self, p: Any, sample2: Any, active: Any) -> DirectionSample:
        raise NotImplementedError

    def eval_direction(self, d: Any, active: Any) -> Any:
        raise NotImplementedError

    def pdf_direction(self, p: Any, d: Any, active: Any) -> Any:
        raise NotImplementedError

    def eval(self, si: Any, active: Any) -> Any:
        raise NotImplementedError

    def direction_point(self, d: Any) -> Any:
        """Environments: the emitter's own coordinates (``Array2f``, detached)
        of the world direction ``d``: its *material point*, which moves with
        the emitter as an area light's point moves with its shape."""
        raise NotImplementedError

    def sample_at(self, p: Any, point: Any, active: Any) -> DirectionSample:
        """Environments: the sample of :meth:`sample_direction` at the
        coordinates ``point`` (:meth:`direction_point`), attached to the
        emitter's parameters."""
        raise NotImplementedError

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        return iter(())


class DeltaEmitter(Emitter):
    """Lights from a point or a single direction (point, spot, projector,
    directional): reached only by sampling them, never by a ray, so they have no
    radiance along rays and no solid-angle density."""

    is_delta = True

    def eval_direction(self, d: Any, active: Any = True) -> Any:
        return _zeros3(d)

    def pdf_direction(self, p: Any, d: Any, active: Any = True) -> Any:
        import drjit as dr

        from .. import backend as bk
        from ._util import lane_count
        return dr.zeros(bk.Float, lane_count(p, d))

    def eval(self, si: Any, active: Any = True) -> Any:
        return _zeros3(si.p)

    @staticmethod
    def delta_sample(d: Any, dist: Any, weight: Any, ok: Any) -> DirectionSample:
        """The sample of a delta light: direction ``d`` and distance ``dist`` (inf
        for a direction), ``weight`` (intensity / dist² or irradiance), density 1;
        all zero where not ``ok``."""
        import drjit as dr

        from .. import backend as bk
        n = dr.width(ok)
        return DirectionSample(d=d, dist=dr.select(ok, dist, 0.0),
                               pdf=dr.select(ok, bk.Float(1.0), 0.0),
                               weight=dr.select(ok, weight, 0.0),
                               delta=dr.full(bk.Bool, True, n))


def _zeros3(x: Any) -> Any:
    import drjit as dr

    from .. import backend as bk
    from ._util import lane_count
    return dr.zeros(bk.Array3f, lane_count(x))
