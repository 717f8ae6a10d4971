"""The ``thinlens`` camera (Mitsuba 3's plugin): a perspective camera with a
finite aperture, hence depth of field.

As the perspective camera, a film position ``(s_x, s_y)`` in [0,1]² names the
camera-space direction ``q = ((1 − 2 s_x) t, (1 − 2 s_y) t H/W, 1)``, ``t =
tan(x_fov/2)``; everything on the plane ``z = focus_distance`` is in focus: the
ray goes from a point ``a`` on the lens disk of radius ``aperture_radius``
(``z = 0``) through the focal point ``focus_distance · q``. ``a`` is the
concentric map of a uniform square sample onto the disk (Shirley & Chiu 1997,
"A Low Distortion Map Between Disk and Square"). The ray starts on the near
plane (``o = a + d near / d_z``) and ends at the far plane
(``t_max = (far − near) / d_z``), values checked against Mitsuba 3.9.1's
``sample_ray``. ``focus_distance`` defaults to ``far_clip`` and the field of
view is given as for ``perspective`` (``fov``/``fov_axis`` or ``focal_length``,
50mm along the diagonal by default).

Random numbers: lumigrad's sensors map a film position to one ray, so that a
derivative pass can regenerate the camera ray of a sample from its film
position alone. The lens sample is therefore a hash of the film position's bits
(Wellons' ``lowbias32`` integer hash): film positions carry a continuous random
filter offset, so the hashed values are uniform and independent of the pixel,
and the same film position always gives the same lens point.

Differentiable in ``to_world``, ``x_fov``, ``aperture_radius`` and
``focus_distance`` where no boundary term is needed; geometry derivatives
(which need them, as do the lens parameters: defocus moves every edge) raise a
clear error (``sensors/_nonpinhole.py``).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Optional

import drjit as dr

from .. import backend as bk
from ..geometry.transform import Transform4f
from ..scene.schema import Param, register
from ._nonpinhole import NonPinholeSensor
from .film import HDRFilm
from .perspective import COMMON_SENSOR_PARAMS, FOV_PARAMS, check_clip, resolve_x_fov
from .sampler import IndependentSampler


def _hash32(x: Any) -> Any:
    """Chris Wellons' ``lowbias32`` integer hash (UInt32 -> UInt32)."""
    x = x ^ (x >> 16)
    x = x * 0x7FEB352D
    x = x ^ (x >> 15)
    x = x * 0x846CA68B
    return x ^ (x >> 16)


def lens_sample(film_pos: Any) -> Any:
    """A uniform point of [0,1)² derived from the bits of ``film_pos`` (detached)."""
    bx = dr.reinterpret_array(bk.UInt32, dr.detach(bk.Float(film_pos[0])))
    by = dr.reinterpret_array(bk.UInt32, dr.detach(bk.Float(film_pos[1])))
    h1 = _hash32(bx ^ _hash32(by + 0x9E3779B9))
    h2 = _hash32(h1 ^ 0x85EBCA6B)
    scale = 1.0 / (1 << 24)
    return bk.Array2f(bk.Float(h1 >> 8) * scale, bk.Float(h2 >> 8) * scale)


def square_to_disk_concentric(u: Any) -> tuple[Any, Any]:
    """Shirley & Chiu's concentric map of [0,1]² onto the unit disk."""
    a = 2.0 * u[0] - 1.0
    b = 2.0 * u[1] - 1.0
    use_a = dr.abs(a) > dr.abs(b)
    r = dr.select(use_a, a, b)
    safe_a = dr.select(a == 0, 1.0, a)
    safe_b = dr.select(b == 0, 1.0, b)
    phi = dr.select(use_a, (math.pi / 4) * (b / safe_a), math.pi / 2 - (math.pi / 4) * (a / safe_b))
    phi = dr.select((a == 0) & (b == 0), 0.0, phi)
    return r * dr.cos(phi), r * dr.sin(phi)


@register
class ThinLensSensor(NonPinholeSensor):
    """A perspective camera with a thin lens (see the module docstring)."""

    PLUGIN = ("sensor", "thinlens")
    PARAMS = {
        "aperture_radius": Param("float", None, min=0.0, required=True,
                                 doc="radius of the lens (world units)"),
        "focus_distance": Param("float", None, min_exclusive=0.0,
                                doc="distance of the plane in focus (default: far_clip)"),
        **FOV_PARAMS,
        **COMMON_SENSOR_PARAMS,
    }

    def __init__(self, aperture_radius: float = 0.0, focus_distance: Optional[float] = None,
                 fov: Optional[float] = None, fov_axis: str = "x",
                 focal_length: Optional[str] = None, near_clip: float = 0.01,
                 far_clip: float = 10000.0, to_world: Optional[Transform4f] = None,
                 film: Optional[HDRFilm] = None, sampler: Optional[IndependentSampler] = None,
                 id: Optional[str] = None) -> None:
        self.id = id
        self.film = film if film is not None else HDRFilm()
        self.sampler = sampler if sampler is not None else IndependentSampler()
        check_clip(near_clip, far_clip, id)
        x_fov = resolve_x_fov(fov, fov_axis, focal_length, self.film, id)
        # A crop window is the same camera with a smaller film (HDRFilm.crop_camera).
        t, self._pp = self._film_window(math.tan(math.radians(x_fov) / 2))
        self.x_fov = bk.Float(math.degrees(2 * math.atan(t)))
        self.near_clip = float(near_clip)
        self.far_clip = float(far_clip)
        self.aperture_radius = bk.Float(float(aperture_radius))
        self.focus_distance = bk.Float(float(far_clip if focus_distance is None
                                             else focus_distance))
        self.to_world = to_world if to_world is not None else Transform4f()

    def sample_ray(self, film_pos: Any) -> tuple[Any, Any, Any]:
        """World-space ray ``(origin, unit direction, max distance)`` through
        ``film_pos`` in [0,1]², from the lens point hashed from ``film_pos``."""
        if dr.grad_enabled(self.aperture_radius) or dr.grad_enabled(self.focus_distance):
            # Defocus moves every edge in the image: boundary terms would be needed.
            self._refuse()
        return self.ray_through(film_pos, lens_sample(film_pos))

    def ray_through(self, film_pos: Any, lens_u: Any) -> tuple[Any, Any, Any]:
        """The ray through ``film_pos`` from the lens point that the concentric
        map gives ``lens_u`` in [0,1]² (Mitsuba's ``sample_ray`` with
        ``aperture_sample = lens_u``)."""
        tan_x = dr.tan(dr.deg2rad(self.x_fov) * 0.5)
        qx, qy = self._local_film_xy(film_pos, tan_x)
        fd = self.focus_distance
        lx, ly = square_to_disk_concentric(lens_u)
        ax, ay = lx * self.aperture_radius, ly * self.aperture_radius
        d_local = dr.normalize(bk.Array3f(qx * fd - ax, qy * fd - ay, fd))
        inv_z = dr.rcp(d_local[2])
        near = dr.opaque(bk.Float, self.near_clip)
        o_local = bk.Array3f(ax, ay, 0.0) + d_local * (near * inv_z)
        o = self.to_world.transform_affine_point(o_local)
        d = dr.normalize(self.to_world.transform_vector(d_local))
        return o, d, (dr.opaque(bk.Float, self.far_clip) - near) * inv_z

    def parameters(self) -> Iterator[tuple[str, Any, Optional[Callable[[Any], None]]]]:
        yield "to_world", self.to_world, lambda v: setattr(self, "to_world", v)
        yield "x_fov", self.x_fov, lambda v: setattr(self, "x_fov", v)
        yield "aperture_radius", self.aperture_radius, \
            lambda v: setattr(self, "aperture_radius", v)
        yield "focus_distance", self.focus_distance, lambda v: setattr(self, "focus_distance", v)
        yield "near_clip", self.near_clip, None
        yield "far_clip", self.far_clip, None
