"""The ``perspective`` pinhole camera (Mitsuba 3's conventions).

The camera looks along its local +Z axis; ``to_world`` places it in the world
(usually built with a ``lookat``). Image right is local −X and image up local
+Y, which is what ``Transform4f.looking_at`` produces for an unmirrored view.

A film position ``(sx, sy)`` in [0,1]² (x to the right, y downwards) maps to
the local direction ``((1 − 2 sx) tan(x_fov/2), (1 − 2 sy) tan(x_fov/2) H/W, 1)``.

Field of view: ``fov`` (degrees) along ``fov_axis`` (``x``, ``y``, ``diagonal``,
``smaller``, ``larger`` side); without ``fov``, ``focal_length`` (default
``50mm``) gives ``2 atan(43.27 mm / 2f)`` along the image *diagonal*, the 35 mm
film convention Mitsuba 3 uses (so the default ``x_fov`` of a 3:2 film is
``2 atan(36 / 100) = 39.6°``).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Optional

import drjit as dr

from .. import backend as bk
from ..geometry.transform import Transform4f
from ..scene.schema import Param, register
from .film import HDRFilm
from .sampler import IndependentSampler


def x_fov_from(fov: float, fov_axis: str, width: int, height: int) -> float:
    """Horizontal field of view (degrees) from ``fov`` measured along ``fov_axis``."""
    aspect = width / height
    axis = fov_axis
    if axis == "smaller":
        axis = "y" if aspect > 1 else "x"
    elif axis == "larger":
        axis = "x" if aspect > 1 else "y"
    t = math.tan(math.radians(fov) / 2)
    if axis == "x":
        return fov
    if axis == "y":
        return math.degrees(2 * math.atan(t * aspect))
    if axis == "diagonal":
        return math.degrees(2 * math.atan(t * width / math.hypot(width, height)))
    raise ValueError(f"fov_axis must be one of x, y, diagonal, smaller, larger; got {fov_axis!r}")


#: Parameters every sensor plugin accepts (Mitsuba's projective cameras).
COMMON_SENSOR_PARAMS = {
    "near_clip": Param("float", 0.01, min_exclusive=0.0),
    "far_clip": Param("float", 10000.0, min_exclusive=0.0),
    "to_world": Param("transform", None),
    "film": Param("object", category="film"),
    "sampler": Param("object", category="sampler"),
    "shutter_open": Param("float", 0.0, min=0.0, ignored="lumigrad renders static "
                          "scenes (no motion blur), so the shutter interval has no effect"),
    "shutter_close": Param("float", 0.0, min=0.0, ignored="lumigrad renders static "
                           "scenes (no motion blur), so the shutter interval has no effect"),
}

#: ... and those of cameras with a field of view (perspective, thinlens).
FOV_PARAMS = {
    "fov": Param("float", None, min_exclusive=0.0, max_exclusive=180.0),
    "fov_axis": Param("string", "x", choices=("x", "y", "diagonal", "smaller", "larger")),
    "focal_length": Param("string", None),
}


def film_bounds(film: Any, principal_point: tuple, margin: float) -> tuple:
    """``(x_lo, x_hi, y_lo, y_hi)``: the camera-space coordinates (in units of
    the film's half-width: ``tan(x_fov/2)`` on the plane at distance 1 of a
    perspective camera, the view's half-width of an orthographic one) of the
    film positions within ``margin`` pixels of the film, for ``sample_ray``'s
    map ``q_x = 1 − 2 (s_x + pp_x)``, ``q_y = (1 − 2 (s_y + pp_y)) H / W``."""
    w, h = film.width, film.height
    ppx, ppy = principal_point
    mx, my = margin / w, margin / h
    return (-1 - 2 * mx - 2 * ppx, 1 + 2 * mx - 2 * ppx,
            (-1 - 2 * my - 2 * ppy) * h / w, (1 + 2 * my - 2 * ppy) * h / w)


def pinhole_pixel_size(x_fov: Any, width: int, dist: Any) -> Any:
    """World size of a pixel at distance ``dist`` from a pinhole of horizontal
    field of view ``x_fov`` (degrees) and ``width`` pixels (detached)."""
    tan_x = dr.tan(dr.deg2rad(dr.detach(x_fov)) * 0.5)
    return dist * (2.0 * tan_x * dr.opaque(bk.Float, 1.0 / width))


def check_clip(near_clip: float, far_clip: float, id: Optional[str]) -> None:
    if not (0.0 < near_clip < far_clip):
        raise ValueError(f"sensor {id!r}: need 0 < near_clip < far_clip, got "
                         f"near_clip={near_clip}, far_clip={far_clip}")


def resolve_x_fov(fov: Optional[float], fov_axis: str, focal_length: Optional[str],
                  film: Any, id: Optional[str]) -> float:
    """The horizontal field of view (degrees) of ``fov``/``fov_axis`` or, without a
    ``fov``, of ``focal_length`` (default 50mm): Mitsuba 3 turns a focal length (35 mm
    film: 36 x 24 mm) into a field of view along the image *diagonal*, whatever
    fov_axis says. It describes the whole film, also when a crop window is rendered."""
    if fov is None:
        fov = PerspectiveSensor._fov_from_focal_length(focal_length or "50mm")
        fov_axis = "diagonal"
    elif focal_length is not None:
        raise ValueError(f"sensor {id!r}: give either 'fov' or 'focal_length', not both")
    if not (0.0 < float(fov) < 180.0):
        raise ValueError(f"sensor {id!r}: fov must be in (0, 180) degrees, got {fov}")
    w, h = getattr(film, "full_size", (film.width, film.height))
    x_fov = x_fov_from(float(fov), fov_axis, w, h)
    if not (0.0 < x_fov < 180.0):
        raise ValueError(f"sensor {id!r}: the horizontal field of view {x_fov:.3f}° "
                         "implied by fov/fov_axis is outside (0, 180)")
    return x_fov


@register
class PerspectiveSensor:
    """A pinhole camera with a field of view and near/far clip planes."""

    PLUGIN = ("sensor", "perspective")
    PARAMS = {
        **FOV_PARAMS,
        **COMMON_SENSOR_PARAMS,
        "principal_point_offset_x": Param("float", 0.0),
        "principal_point_offset_y": Param("float", 0.0),
        "focus_distance": Param("float", None, min_exclusive=0.0, ignored="a pinhole camera "
                                "is in focus at every distance (Mitsuba reads it for every "
                                "projective camera; only 'thinlens' uses it)"),
    }

    def __init__(self, fov: Optional[float] = None, fov_axis: str = "x",
                 focal_length: Optional[str] = None, near_clip: float = 0.01,
                 far_clip: float = 10000.0, to_world: Optional[Transform4f] = None,
                 film: Optional[HDRFilm] = None, sampler: Optional[IndependentSampler] = None,
                 principal_point_offset_x: float = 0.0, principal_point_offset_y: float = 0.0,
                 id: Optional[str] = None) -> None:
        self.id = id
        self.film = film if film is not None else HDRFilm()
        self.sampler = sampler if sampler is not None else IndependentSampler()
        check_clip(near_clip, far_clip, id)
        x_fov = resolve_x_fov(fov, fov_axis, focal_length, self.film, id)
        self.x_fov = bk.Float(x_fov)
        self.near_clip = float(near_clip)
        self.far_clip = float(far_clip)
        self.to_world = to_world if to_world is not None else Transform4f()
        self.principal_point = (float(principal_point_offset_x), float(principal_point_offset_y))
        if getattr(self.film, "cropped", False):
            # A crop window is the same camera with a smaller film (film.crop_camera).
            t, self.principal_point = self.film.crop_camera(
                math.tan(math.radians(x_fov) / 2), self.principal_point)
            self.x_fov = bk.Float(math.degrees(2 * math.atan(t)))

    @staticmethod
    def _fov_from_focal_length(text: str) -> float:
        # 35 mm film equivalent: the angle subtended by the frame's diagonal
        # (36 x 24 mm, 43.27 mm) at distance f, applied along the image diagonal.
        try:
            f = float(str(text).strip().removesuffix("mm"))
        except ValueError as e:
            raise ValueError(f"focal_length must look like '50mm', got {text!r}") from e
        if f <= 0:
            raise ValueError(f"focal_length must be positive, got {text!r}")
        return math.degrees(2 * math.atan(math.hypot(36, 24) / (2 * f)))

    @property
    def resolution(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.film.width, self.film.height

    def sample_ray(self, film_pos: Any) -> tuple[Any, Any, Any]:
        """World-space ray ``(origin, unit direction, max distance)`` through
        ``film_pos`` in [0,1]², clipped to the near and far planes.

        Differentiable in ``to_world`` and ``x_fov``.
        """
        w, h = self.film.width, self.film.height
        tan_x = dr.tan(dr.deg2rad(self.x_fov) * 0.5)
        sx = film_pos[0] + self.principal_point[0]
        sy = film_pos[1] + self.principal_point[1]
        # (opaque scalars: the kernel does not depend on the film size or clip planes)
        aspect = dr.opaque(bk.Float, h / w)
        d_local = bk.Array3f((1.0 - 2.0 * sx) * tan_x, (1.0 - 2.0 * sy) * tan_x * aspect, 1.0)
        d_local = dr.normalize(d_local)
        m = self.to_world.matrix
        o = bk.Array3f(m[0, 3], m[1, 3], m[2, 3])
        d = dr.normalize(self.to_world.transform_vector(d_local))
        # Start at the near plane (measured along the optical axis, as Mitsuba).
        inv_z = dr.rcp(dr.detach(d_local[2]))
        near = dr.opaque(bk.Float, self.near_clip)
        far = dr.opaque(bk.Float, self.far_clip)
        o = o + d * (near * inv_z)
        return o, d, (far - near) * inv_z

    def film_direction(self, u: Any) -> Any:
        """World direction (not normalised) of the ray through film pixel
        position ``(u_x / u_z, u_y / u_z)``, times ``u_z``: a *linear* function
        of the homogeneous film coordinates ``u`` (``sample_ray`` normalises
        it). Differentiable in ``to_world`` and ``x_fov``."""
        w, h = self.film.width, self.film.height
        tan_x = dr.tan(dr.deg2rad(self.x_fov) * 0.5)
        tan_y = tan_x * dr.opaque(bk.Float, h / w)
        ppx, ppy = self.principal_point
        d_local = bk.Array3f(
            tan_x * (u[2] * (1.0 - 2.0 * ppx) - u[0] * dr.opaque(bk.Float, 2.0 / w)),
            tan_y * (u[2] * (1.0 - 2.0 * ppy) - u[1] * dr.opaque(bk.Float, 2.0 / h)),
            u[2])
        return self.to_world.transform_vector(d_local)

    # -- projection (boundary terms splat onto the film through these) ---------
    def _focal(self) -> tuple[Any, Any]:
        """``tan(x_fov / 2)`` and the focal length in pixels ``W / (2 tan)``."""
        tan_x = dr.tan(dr.deg2rad(self.x_fov) * 0.5)
        return tan_x, dr.opaque(bk.Float, self.film.width * 0.5) / tan_x

    def to_local(self, p: Any) -> Any:
        """World point ``p`` in camera coordinates (looking along +Z)."""
        return self.to_world.inverse_transform().transform_affine_point(p)

    def project(self, p: Any) -> tuple[Any, Any]:
        """Film position of world point ``p`` in *pixels* (x right, y down; pixel
        ``(i, j)`` covers ``[i, i+1) x [j, j+1)``) and whether ``p`` lies in front
        of the near plane. The inverse of :meth:`sample_ray` (times the film
        size); differentiable in ``p``, ``to_world`` and ``x_fov``."""
        q = self.to_local(p)
        _, f = self._focal()
        w, h = self.film.width, self.film.height
        inv_z = dr.rcp(q[2])
        sx = dr.opaque(bk.Float, w * (0.5 - self.principal_point[0])) - f * q[0] * inv_z
        sy = dr.opaque(bk.Float, h * (0.5 - self.principal_point[1])) - f * q[1] * inv_z
        return bk.Array2f(sx, sy), q[2] > dr.opaque(bk.Float, self.near_clip)

    def project_differential(self, p: Any, dp: Any) -> Any:
        """Film displacement (pixels) of a small world displacement ``dp`` at ``p``:
        the Jacobian of :meth:`project` applied to ``dp``."""
        inv = self.to_world.inverse_transform()
        q = inv.transform_affine_point(p)
        dq = inv.transform_vector(dp)
        _, f = self._focal()
        inv_z = dr.rcp(q[2])
        return bk.Array2f(-f * (dq[0] - q[0] * dq[2] * inv_z) * inv_z,
                          -f * (dq[1] - q[1] * dq[2] * inv_z) * inv_z)

    def film_density(self, p: Any, n: Any) -> Any:
        """Film area (pixels²) per unit surface area at ``p`` (normal ``n``):
        ``|ds/dA| = f² |cos θ_p| / (r² cos³ ψ)``, ψ the angle of the ray to the
        optical axis, ``f`` the focal length in pixels."""
        m = self.to_world.matrix
        o = bk.Array3f(m[0, 3], m[1, 3], m[2, 3])
        axis = dr.normalize(bk.Array3f(m[0, 2], m[1, 2], m[2, 2]))
        v = p - o
        r2 = dr.squared_norm(v)
        r = dr.sqrt(r2)
        cos_p = dr.abs(dr.dot(n, v)) / r
        cos_psi = dr.dot(axis, v) / r
        _, f = self._focal()
        return dr.square(f) * cos_p / (r2 * cos_psi * dr.square(cos_psi))

    def position(self) -> Any:
        """The camera's centre of projection (world)."""
        m = self.to_world.matrix
        return bk.Array3f(m[0, 3], m[1, 3], m[2, 3])

    def apex(self) -> tuple[Any, float]:
        """The centre of projection as a homogeneous point ``(a, w)``: here the
        position and ``w = 1`` (an orthographic camera's is at infinity,
        ``w = 0``; see ``integrators/boundary/views.py``, ``toward_apex``)."""
        return self.position(), 1.0

    def point_ahead(self) -> Any:
        """A world point in front of the camera (on its principal ray)."""
        return self.position() + self.film_direction(bk.Array3f(0.0, 0.0, 1.0))

    def pixel_size(self, dist: Any) -> Any:
        """World size of a pixel at distance ``dist`` from the camera (detached)."""
        return pinhole_pixel_size(self.x_fov, self.film.width, dist)

    def frustum_halfspaces(self, margin: float) -> list:
        """The view frustum (widened by ``margin`` pixels) as half-spaces of
        camera coordinates ``q``: ``(c_x, c_y, c_z, c_0)`` with ``c · q + c_0 ≥ 0``
        inside (the near plane and four planes through the apex)."""
        tan_x = dr.tan(dr.deg2rad(dr.detach(self.x_fov)) * 0.5)
        x_lo, x_hi, y_lo, y_hi = self.frustum_bounds(margin)
        return [(0.0, 0.0, 1.0, -self.near_clip),
                (1.0, 0.0, -tan_x * x_lo, 0.0), (-1.0, 0.0, tan_x * x_hi, 0.0),
                (0.0, 1.0, -tan_x * y_lo, 0.0), (0.0, -1.0, tan_x * y_hi, 0.0)]

    def frustum_bounds(self, margin: float) -> tuple[float, float, float, float]:
        """Bounds of ``q_x / q_z`` and ``q_y / q_z`` (camera coordinates) of the
        points that project within ``margin`` pixels of the film, in units of
        ``tan(x_fov / 2)``: ``(x_lo, x_hi, y_lo, y_hi)``."""
        return film_bounds(self.film, self.principal_point, margin)

    def parameters(self) -> Iterator[tuple[str, Any, Optional[Callable[[Any], None]]]]:
        yield "to_world", self.to_world, lambda v: setattr(self, "to_world", v)
        yield "x_fov", self.x_fov, lambda v: setattr(self, "x_fov", v)
        yield "near_clip", self.near_clip, None
        yield "far_clip", self.far_clip, None
