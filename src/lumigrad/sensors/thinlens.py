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
``focus_distance``; geometry derivatives (and those of the lens parameters:
defocus moves every edge's image) get the boundary terms of
``integrators/boundary``, each sample seeing the scene through a lens point of
its own (:class:`LensPinhole`, an off-axis pinhole), their sampling tables
through every lens point at once (:class:`LensHull`).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Optional

import drjit as dr

from .. import backend as bk
from ..geometry.transform import Transform4f
from ..scene.schema import Param, register
from ._nonpinhole import NonPinholeSensor, film_density_by_jacobian
from .film import HDRFilm
from .perspective import (COMMON_SENSOR_PARAMS, FOV_PARAMS, check_clip, film_bounds,
                          pinhole_pixel_size, resolve_x_fov)
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

    # -- boundary terms: the lens as pinholes -----------------------------------
    # The boundary terms of geometry derivatives see the lens through
    # :meth:`lens_view` (per sample) and :meth:`lens_hull` (their tables), not
    # through this class's (refused) pinhole projection.
    def lens_view(self, u: Any) -> "LensPinhole":
        """The camera seen through lens samples ``u`` (per lane, [0,1]²)."""
        return LensPinhole(self, u)

    def view_through(self, film_pos: Any) -> "LensPinhole":
        """The pinhole that the camera ray through ``film_pos`` sees through
        (its own lens point, :func:`lens_sample`): the edge samples' MIS weights
        at the camera vertex measure film densities with it."""
        return LensPinhole(self, lens_sample(film_pos))

    def lens_hull(self) -> "LensHull":
        """Every lens point at once, for the boundary terms' tables."""
        hull = getattr(self, "_hull", None)
        if hull is None:
            hull = self._hull = LensHull(self)
        return hull

    def parameters(self) -> Iterator[tuple[str, Any, Optional[Callable[[Any], None]]]]:
        yield "to_world", self.to_world, lambda v: setattr(self, "to_world", v)
        yield "x_fov", self.x_fov, lambda v: setattr(self, "x_fov", v)
        yield "aperture_radius", self.aperture_radius, \
            lambda v: setattr(self, "aperture_radius", v)
        yield "focus_distance", self.focus_distance, lambda v: setattr(self, "focus_distance", v)
        yield "near_clip", self.near_clip, None
        yield "far_clip", self.far_clip, None


class _LensPart:
    """What :class:`LensPinhole` and :class:`LensHull` forward from their lens."""

    def __init__(self, lens: ThinLensSensor) -> None:
        self.lens, self.film, self.sampler = lens, lens.film, lens.sampler
        self.near_clip, self.far_clip = lens.near_clip, lens.far_clip

    # (the thin lens's parameters: moves_geometry reads these)
    @property
    def to_world(self) -> Any:
        return self.lens.to_world

    @property
    def x_fov(self) -> Any:
        return self.lens.x_fov

    @property
    def resolution(self) -> tuple[int, int]:
        return self.lens.resolution


class LensPinhole(_LensPart):
    """The thin-lens camera seen through one lens point per lane: an off-axis
    pinhole with the interface of ``PerspectiveSensor`` that the boundary
    terms use (``integrators/boundary/__init__.py``, ``_iterate``).

    Lens point ``a = R · disk(u)`` (camera coordinates, ``z = 0``), focus
    distance ``F``: the ray through film position ``q`` (``sample_ray``'s
    camera-space direction ``(q_x, q_y, 1)``) goes from ``a`` through ``F q``,
    so a point ``P`` (camera coordinates) is seen at

        q = a / F + (P − a) / P_z,

    differentiable in ``P``, the camera's transform, its field of view, ``R``
    and ``F`` (defocus moves the edges' images). The terms' sampling tables
    come from :class:`LensHull` (``distribution_view``)."""

    def __init__(self, lens: ThinLensSensor, u: Any) -> None:
        super().__init__(lens)
        self.lens_u = u
        self.principal_point = lens._pp
        self.disk = square_to_disk_concentric(u)
        self.distribution_view = lens.lens_hull()

    def _a(self) -> Any:
        """The lens point (camera coordinates)."""
        r = self.lens.aperture_radius
        return bk.Array3f(r * self.disk[0], r * self.disk[1], 0.0)

    def sample_ray(self, film_pos: Any) -> tuple[Any, Any, Any]:
        return self.lens.ray_through(film_pos, self.lens_u)

    def to_local(self, p: Any) -> Any:
        return self.lens.to_world.inverse_transform().transform_affine_point(p)

    def _tan(self) -> Any:
        return dr.tan(dr.deg2rad(self.lens.x_fov) * 0.5)

    def project(self, p: Any) -> tuple[Any, Any]:
        """Film position (pixels) of world point ``p`` through the lens point,
        and whether ``p`` lies in front of the near plane."""
        P = self.to_local(p)
        a, fd = self._a(), self.lens.focus_distance
        inv_z = dr.rcp(P[2])
        q = (a[0] / fd + (P[0] - a[0]) * inv_z, a[1] / fd + (P[1] - a[1]) * inv_z)
        return _film_of(self.lens, q, self._tan()), P[2] > dr.opaque(bk.Float, self.near_clip)

    def project_differential(self, p: Any, dp: Any) -> Any:
        inv = self.lens.to_world.inverse_transform()
        P, dP = inv.transform_affine_point(p), inv.transform_vector(dp)
        a = self._a()
        inv_z = dr.rcp(P[2])
        f = dr.opaque(bk.Float, self.film.width * 0.5) / self._tan()
        return bk.Array2f(-f * (dP[0] - (P[0] - a[0]) * dP[2] * inv_z) * inv_z,
                          -f * (dP[1] - (P[1] - a[1]) * dP[2] * inv_z) * inv_z)

    def film_density(self, p: Any, n: Any) -> Any:
        return film_density_by_jacobian(self, p, n)

    def position(self) -> Any:
        return self.lens.to_world.transform_affine_point(self._a())

    def apex(self) -> tuple[Any, float]:
        return self.position(), 1.0

    def film_direction(self, u: Any) -> Any:
        """World direction of the ray through film pixel ``(u_x / u_z, u_y / u_z)``
        times ``u_z`` (linear in ``u``, as ``PerspectiveSensor.film_direction``)."""
        w, h = self.film.width, self.film.height
        tan_x = self._tan()
        tan_y = tan_x * dr.opaque(bk.Float, h / w)
        ppx, ppy = self.principal_point
        a, fd = self._a(), self.lens.focus_distance
        d_local = bk.Array3f(
            fd * tan_x * (u[2] * (1.0 - 2.0 * ppx) - u[0] * dr.opaque(bk.Float, 2.0 / w))
            - a[0] * u[2],
            fd * tan_y * (u[2] * (1.0 - 2.0 * ppy) - u[1] * dr.opaque(bk.Float, 2.0 / h))
            - a[1] * u[2],
            fd * u[2])
        return self.lens.to_world.transform_vector(d_local)

    def point_ahead(self) -> Any:
        return self.position() + self.film_direction(bk.Array3f(0.0, 0.0, 1.0))

    def pixel_size(self, dist: Any) -> Any:
        return pinhole_pixel_size(self.lens.x_fov, self.film.width, dist)


def _film_of(lens: ThinLensSensor, q: tuple, tan_x: Any) -> Any:
    """Pixels of camera-space direction ``(q_x, q_y, 1)`` (``sample_ray``'s map
    inverted: ``q_x = (1 − 2 (s_x + pp_x)) tan``, ``q_y`` the same times H/W)."""
    w, h = lens.film.width, lens.film.height
    f = dr.opaque(bk.Float, w * 0.5) / tan_x
    ppx, ppy = lens._pp
    return bk.Array2f(dr.opaque(bk.Float, w * (0.5 - ppx)) - f * q[0],
                      dr.opaque(bk.Float, h * (0.5 - ppy)) - f * q[1])


class LensHull(_LensPart):
    """Every lens point of a thin lens at once (detached), for the tables the
    boundary terms sample from (``BoundaryTerm.distribution``): they must give
    every edge or face that some lens point sees a chance. Its apex is the
    lens disk (:class:`~lumigrad.geometry.edges.DiskApex`: edges and faces are
    classified by the range of ``n · (A − p)`` over it), its frustum what some
    lens point sees (:meth:`clip_to_frustum`), and its projection the
    centre's, with :meth:`film_slack` the farthest a point's image moves over
    the lens."""

    def _tan(self) -> Any:
        return dr.tan(dr.deg2rad(dr.detach(self.lens.x_fov)) * 0.5)

    def to_local(self, p: Any) -> Any:
        return dr.detach(self.lens.to_world.inverse_transform().transform_affine_point(p))

    def project(self, p: Any) -> tuple[Any, Any]:
        """The image through the lens's centre (pixels), in front of the near plane."""
        P = self.to_local(p)
        inv_z = dr.rcp(P[2])
        return (_film_of(self.lens, (P[0] * inv_z, P[1] * inv_z), self._tan()),
                P[2] > dr.opaque(bk.Float, self.near_clip))

    def film_slack(self, p: Any) -> Any:
        """How far (pixels) the image of ``p`` moves between the lens's centre
        and its rim: ``f R |1/F − 1/P_z|``."""
        P = self.to_local(p)
        f = dr.opaque(bk.Float, self.film.width * 0.5) / self._tan()
        r, fd = dr.detach(self.lens.aperture_radius), dr.detach(self.lens.focus_distance)
        return f * r * dr.abs(dr.rcp(fd) - dr.rcp(P[2]))

    def apex(self) -> tuple:
        from ..geometry.edges import DiskApex
        m = self.lens.to_world
        r = dr.detach(self.lens.aperture_radius)
        return DiskApex(dr.detach(m.transform_affine_point(bk.Array3f(0.0, 0.0, 0.0))),
                        dr.detach(m.transform_vector(bk.Array3f(r, 0.0, 0.0))),
                        dr.detach(m.transform_vector(bk.Array3f(0.0, r, 0.0)))), 1.0

    def clip_to_frustum(self, p0: Any, p1: Any, margin: float) -> Any:
        """Parameter range of the segment ``p0 -> p1`` seen through some lens
        point (a superset: the lens's bounding square, the hull of the parts
        before and behind the plane in focus). Through lens point ``a`` a point
        ``P`` is in view along x where ``L + a k ≥ 0`` and ``H − a k ≥ 0``
        (``L = P_x − lo P_z``, ``H = hi P_z − P_x``, ``k = P_z / F − 1``); some
        ``a`` in ``[−R, R]`` satisfies both iff ``L + R |k| ≥ 0`` and ``H + R
        |k| ≥ 0`` (``L + H ≥ 0`` always): linear on either side of ``P_z = F``."""
        from ..integrators.boundary.sampling import clip_to_halfspaces
        t = self._tan()
        x_lo, x_hi, y_lo, y_hi = film_bounds(self.film, self.lens._pp, margin)
        bounds = ((t * x_lo, t * x_hi), (t * y_lo, t * y_hi))
        r, fd = dr.detach(self.lens.aperture_radius), dr.detach(self.lens.focus_distance)
        q0, q1 = self.to_local(p0), self.to_local(p1)
        parts = []
        for sign in (-1.0, 1.0):       # in front of the plane in focus (|k| = −k), behind it
            # R |k| = sign (R / F) P_z − sign R
            planes = [(0.0, 0.0, 1.0, -self.near_clip), (0.0, 0.0, sign, -sign * fd)]
            for axis, (lo_b, hi_b) in enumerate(bounds):
                c = [0.0, 0.0]
                c[axis] = 1.0
                planes.append((c[0], c[1], sign * r / fd - lo_b, -sign * r))
                planes.append((-c[0], -c[1], hi_b + sign * r / fd, -sign * r))
            parts.append(clip_to_halfspaces(q0, q1, planes))
        a, b = parts
        out = a
        out.lo = dr.select(a.empty, b.lo, dr.select(b.empty, a.lo, dr.minimum(a.lo, b.lo)))
        out.hi = dr.select(a.empty, b.hi, dr.select(b.empty, a.hi, dr.maximum(a.hi, b.hi)))
        return out
