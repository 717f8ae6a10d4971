"""The ``orthographic`` camera (Mitsuba 3's plugin): parallel rays.

Rays start on the camera's near plane and travel along its local +Z axis. The
film covers local ``x`` in [-1, 1] (image right is -X) and ``y`` in
``[-H/W, H/W]`` (image up is +Y); ``to_world`` (usually a ``lookat`` times a
``scale``) places and sizes the view, as in Mitsuba. A film position ``(s_x,
s_y)`` in [0,1]² gives the ray

    o = to_world · (1 − 2 s_x, (1 − 2 s_y) H / W, near_clip),
    d = normalize(to_world · (0, 0, 1)),   t_max = (far_clip − near_clip) |to_world · e_z|

(values checked against Mitsuba 3.9.1's ``sample_ray``). A film crop window
renders the matching part of that view.

Differentiable in ``to_world`` for derivatives that need no boundary terms;
geometry derivatives raise a clear error (see ``sensors/_nonpinhole.py``).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Optional

import drjit as dr

from .. import backend as bk
from ..geometry.transform import Transform4f
from ..scene.schema import register
from ._nonpinhole import NonPinholeSensor
from .film import HDRFilm
from .perspective import COMMON_SENSOR_PARAMS, check_clip
from .sampler import IndependentSampler


@register
class OrthographicSensor(NonPinholeSensor):
    """An orthographic camera (see the module docstring)."""

    PLUGIN = ("sensor", "orthographic")
    PARAMS = {
        **COMMON_SENSOR_PARAMS,
    }

    #: no field of view: None, so that code asking whether the sensor's fov
    #: carries gradients gets "no"
    x_fov = None

    def __init__(self, near_clip: float = 0.01, far_clip: float = 10000.0,
                 to_world: Optional[Transform4f] = None, film: Optional[HDRFilm] = None,
                 sampler: Optional[IndependentSampler] = None, id: Optional[str] = None) -> None:
        self.id = id
        self.film = film if film is not None else HDRFilm()
        self.sampler = sampler if sampler is not None else IndependentSampler()
        check_clip(near_clip, far_clip, id)
        self.near_clip = float(near_clip)
        self.far_clip = float(far_clip)
        self.to_world = to_world if to_world is not None else Transform4f()
        self._scale, self._pp = self._film_window(1.0)

    def sample_ray(self, film_pos: Any) -> tuple[Any, Any, Any]:
        """World-space ray ``(origin, unit direction, max distance)`` through
        ``film_pos`` in [0,1]²; differentiable in ``to_world``."""
        x, y = self._local_film_xy(film_pos, dr.opaque(bk.Float, self._scale))
        near = dr.opaque(bk.Float, self.near_clip)
        o = self.to_world.transform_affine_point(bk.Array3f(x, y, near))
        axis = self.to_world.transform_vector(bk.Array3f(0.0, 0.0, 1.0))
        length = dr.norm(axis)
        d = axis / length
        tmax = (dr.opaque(bk.Float, self.far_clip) - near) * length
        n = dr.width(film_pos[0])
        return o, d + dr.zeros(bk.Array3f, n), tmax + dr.zeros(bk.Float, n)

    def parameters(self) -> Iterator[tuple[str, Any, Optional[Callable[[Any], None]]]]:
        yield "to_world", self.to_world, lambda v: setattr(self, "to_world", v)
        yield "near_clip", self.near_clip, None
        yield "far_clip", self.far_clip, None
