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

Differentiable in ``to_world``; geometry derivatives (shapes, lights or the
camera moving) get the boundary terms of ``integrators/boundary`` through the
projection interface below, the camera's centre of projection at infinity
(``apex() = (u, 0)``, ``u`` the direction towards the camera).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Optional

import drjit as dr

from .. import backend as bk
from ..geometry.transform import Transform4f
from ..scene.schema import register
from ._nonpinhole import NonPinholeSensor, film_density_by_jacobian
from .film import HDRFilm
from .perspective import COMMON_SENSOR_PARAMS, check_clip, film_bounds
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

    # -- projection (the boundary terms of geometry derivatives) ---------------
    # The interface of the perspective camera (``sensors/perspective.py``) with
    # the apex at infinity: a world point's film position is an affine
    # function of it, silhouettes are seen along the camera's axis.

    def _pixels_per_unit(self) -> Any:
        """Film pixels per camera-space unit (``W / (2 · scale)``, both axes)."""
        return dr.opaque(bk.Float, self.film.width * 0.5 / self._scale)

    def _axis(self) -> Any:
        """The unit viewing direction (world), attached to ``to_world``."""
        return dr.normalize(self.to_world.transform_vector(bk.Array3f(0.0, 0.0, 1.0)))

    def to_local(self, p: Any) -> Any:
        """World point ``p`` in camera coordinates (looking along +Z)."""
        return self.to_world.inverse_transform().transform_affine_point(p)

    def project(self, p: Any) -> tuple[Any, Any]:
        """Film position of world point ``p`` in pixels (as the perspective
        camera's) and whether ``p`` lies in front of the near plane: ``s =
        W (½ − pp) − (W / 2 scale) q`` for camera coordinates ``q``; the inverse
        of :meth:`sample_ray`, differentiable in ``p`` and ``to_world``."""
        q = self.to_local(p)
        f = self._pixels_per_unit()
        w, h = self.film.width, self.film.height
        ppx, ppy = self._pp
        sx = dr.opaque(bk.Float, w * (0.5 - ppx)) - f * q[0]
        sy = dr.opaque(bk.Float, h * (0.5 - ppy)) - f * q[1]
        return bk.Array2f(sx, sy), q[2] > dr.opaque(bk.Float, self.near_clip)

    def project_differential(self, p: Any, dp: Any) -> Any:
        """Film displacement (pixels) of a small world displacement ``dp``."""
        dq = self.to_world.inverse_transform().transform_vector(dp)
        f = self._pixels_per_unit()
        return bk.Array2f(-f * dq[0], -f * dq[1])

    def film_density(self, p: Any, n: Any) -> Any:
        """Film area (pixels²) per unit surface area at ``p`` (normal ``n``)."""
        return film_density_by_jacobian(self, p, n)

    def apex(self) -> tuple[Any, float]:
        """The centre of projection at infinity: ``(u, 0)`` with ``u`` the unit
        direction towards the camera (see ``sensors/perspective.py``)."""
        return -self._axis(), 0.0

    def point_ahead(self) -> Any:
        """A world point in front of the camera (on its central ray)."""
        return self.to_world.transform_affine_point(bk.Array3f(0.0, 0.0, self.near_clip + 1.0))

    def pixel_size(self, dist: Any) -> Any:
        """World size of a pixel (the same at every distance; detached)."""
        x_axis = dr.detach(self.to_world.transform_vector(bk.Array3f(1.0, 0.0, 0.0)))
        return dr.norm(x_axis) * dr.rcp(dr.detach(self._pixels_per_unit()))

    def frustum_halfspaces(self, margin: float) -> list:
        """The view volume (widened by ``margin`` pixels) as half-spaces of
        camera coordinates (see ``PerspectiveSensor.frustum_halfspaces``): the
        near plane and four planes parallel to the axis."""
        x_lo, x_hi, y_lo, y_hi = (b * self._scale for b in film_bounds(self.film, self._pp,
                                                                     margin))
        return [(0.0, 0.0, 1.0, -self.near_clip), (1.0, 0.0, 0.0, -x_lo), (-1.0, 0.0, 0.0, x_hi),
                (0.0, 1.0, 0.0, -y_lo), (0.0, -1.0, 0.0, y_hi)]

    def parameters(self) -> Iterator[tuple[str, Any, Optional[Callable[[Any], None]]]]:
        yield "to_world", self.to_world, lambda v: setattr(self, "to_world", v)
        yield "near_clip", self.near_clip, None
        yield "far_clip", self.far_clip, None
