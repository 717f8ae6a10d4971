"""Cameras of the rasterization pipeline.

Conventions are those of the path tracer's sensors (Mitsuba's), so that the
rasterizer and the ray tracer see the same image of the same world:

* the camera frame is built by ``look_at(position, target, up)``: local +Z
  looks from ``position`` to ``target``, local +X = ``cross(up, forward)``
  ("left"), local +Y = ``cross(forward, left)`` (up);
* image right is local -X and image up is local +Y;
* raster coordinates ``(x, y)`` are in pixels, x to the right, y downwards,
  pixel ``(px, py)`` has its centre at ``(px + 0.5, py + 0.5)``.

A perspective camera maps the camera-space point ``(xc, yc, zc)`` to

    x = W/2 * (1 - xc / (zc tx)),   y = H/2 * (1 - yc / (zc ty)),

with ``tx = tan(x_fov / 2)`` and ``ty = tx * H / W``: exactly the inverse of the
ray-generation rule ``d = ((1 - 2 sx) tx, (1 - 2 sy) ty, 1)`` with
``sx = x / W``, ``sy = y / H``. The rasterizer never divides by ``zc``: it uses
the *homogeneous* raster coordinates ``(u, v, w) = (x w, y w, w)``, ``w = zc``
(2-D homogeneous rasterization, Olano & Greer 1997), which stay linear in the
vertex positions for points behind the camera too.

An orthographic camera maps ``x = W/2 (1 - xc / hx)``, ``y = H/2 (1 - yc / hy)``
with ``hx = extent / 2``, ``hy = hx H / W`` and ``w = 1``; depth is ``zc``.

Every pose and lens parameter (``position``, ``target``, ``up``, ``fov`` /
``extent``, ``near``, ``far``) is a Dr.Jit value that may be grad-enabled; the
camera transform is rebuilt from them on every ``forward()``. ``near``/``far``
only clip (a discontinuous operation), so their derivatives reach the image
only through :meth:`Camera.ndc_depth`.
"""
from __future__ import annotations

from typing import Any, Optional

import drjit as dr
import numpy as np

from .. import backend as bk
from .buffers import as_array3f, as_float, broadcast


class Camera:
    """Shared pose, clipping planes and camera transform of both camera types."""

    #: True for cameras whose rays share one origin (perspective)
    perspective = True

    def __init__(self, position: Any = (0.0, 0.0, 3.0), target: Any = (0.0, 0.0, 0.0),
                 up: Any = (0.0, 1.0, 0.0), near: float = 0.01, far: float = 1000.0) -> None:
        self.position = position
        self.target = target
        self.up = up
        self.near = near
        self.far = far
        self._to_world_source: Any = None  # a sensor (live to_world) or a Transform4f
        self._frame: Optional[tuple] = None
        #: a :class:`~lumigrad.raster.rigid.RigidTransform` pose, when used (it then
        #: replaces position/target/up)
        self.rigid_transform: Any = None

    def use_rigid_transform(self, rigid_transform: Any = None) -> Any:
        """Pose the camera with a learnable :class:`~lumigrad.raster.rigid.RigidTransform`
        (position + 6-D rotation, the course's camera parameters) instead of
        position/target/up; by default one equal to the current look-at pose.
        Returns it (enable gradients on its ``position`` / ``rotation``)."""
        from .rigid import RigidTransform
        if rigid_transform is None:
            rigid_transform = RigidTransform.look_at(
                np.array(dr.detach(self.position)).reshape(3),
                np.array(dr.detach(self.target)).reshape(3),
                np.array(dr.detach(self.up)).reshape(3))
        if not isinstance(rigid_transform, RigidTransform):
            raise TypeError(f"use_rigid_transform: expected a RigidTransform, got "
                            f"{type(rigid_transform).__name__}")
        if self._to_world_source is not None:
            raise ValueError("use_rigid_transform: this camera follows a scene sensor's to_world")
        self.rigid_transform = rigid_transform
        self._frame = None
        return rigid_transform

    # -- parameters (setters convert and validate; Dr.Jit values keep their AD) --
    @property
    def position(self) -> Any:
        return self._position

    @position.setter
    def position(self, v: Any) -> None:
        self._position = as_array3f(v, "camera position")

    @property
    def target(self) -> Any:
        return self._target

    @target.setter
    def target(self, v: Any) -> None:
        self._target = as_array3f(v, "camera target")

    @property
    def up(self) -> Any:
        return self._up

    @up.setter
    def up(self, v: Any) -> None:
        self._up = as_array3f(v, "camera up")

    @property
    def near(self) -> Any:
        return self._near

    @near.setter
    def near(self, v: Any) -> None:
        f = as_float(v, "camera near")
        if not isinstance(v, dr.ArrayBase) and float(v) < 0:
            raise ValueError(f"camera near: must be >= 0, got {v}")
        self._near = f

    @property
    def far(self) -> Any:
        return self._far

    @far.setter
    def far(self, v: Any) -> None:
        self._far = as_float(v, "camera far")

    def near_far(self) -> tuple[float, float]:
        """Detached (near, far) as Python floats, validated."""
        n = float(dr.detach(self.near)[0])
        f = float(dr.detach(self.far)[0])
        if self.perspective and n <= 0:
            raise ValueError(f"{type(self).__name__}: near must be > 0 for a perspective "
                             f"camera (got {n}); points at or behind the eye have no image")
        if not f > n:
            raise ValueError(f"{type(self).__name__}: far ({f}) must exceed near ({n})")
        return n, f

    # -- pose -------------------------------------------------------------------
    def forward(self) -> None:
        """Rebuild the (attached) camera frame from the current parameters."""
        src = self._to_world_source
        if src is not None:
            tw = getattr(src, "to_world", src)
            m = tw.matrix if hasattr(tw, "matrix") else bk.Matrix4f(tw)
            inv = tw.inverse if hasattr(tw, "inverse") else dr.rcp(m)
            # world->camera rows and translation, and camera->world for rays
            rows = [bk.Array3f(inv[i, 0], inv[i, 1], inv[i, 2]) for i in range(3)]
            trans = bk.Array3f(inv[0, 3], inv[1, 3], inv[2, 3])
            cols = [bk.Array3f(m[0, j], m[1, j], m[2, j]) for j in range(3)]
            origin = bk.Array3f(m[0, 3], m[1, 3], m[2, 3])
            r = np.array([[float(dr.detach(inv[i, j])[0]) for j in range(3)] for i in range(3)])
            handed = 1.0 if np.linalg.det(r) > 0 else -1.0
        elif self.rigid_transform is not None:
            # world -> camera = R^T (x - p): the rows are R's columns (left, up, forward)
            rows = list(self.rigid_transform.columns())
            o = self.rigid_transform.position
            trans = bk.Array3f(-dr.dot(rows[0], o), -dr.dot(rows[1], o), -dr.dot(rows[2], o))
            cols = rows
            origin = o
            handed = 1.0
        else:
            o, t, u = self.position, self.target, self.up
            d = t - o
            if float(dr.detach(dr.norm(d))[0]) < 1e-12:
                raise ValueError("camera: position and target coincide")
            d = dr.normalize(d)
            left = dr.cross(dr.normalize(u), d)
            if float(dr.detach(dr.norm(left))[0]) < 1e-7:
                raise ValueError("camera: 'up' is parallel to the viewing direction")
            left = dr.normalize(left)
            new_up = dr.cross(d, left)
            rows = [left, new_up, d]
            trans = bk.Array3f(-dr.dot(left, o), -dr.dot(new_up, o), -dr.dot(d, o))
            cols = rows
            origin = o
            handed = 1.0
        self._frame = (rows, trans, cols, origin, handed)

    def _frame_or_build(self) -> tuple:
        if self._frame is None:
            self.forward()
        return self._frame  # type: ignore[return-value]

    @property
    def handedness(self) -> float:
        """+1 when the world->camera map preserves orientation (it does for look-at)."""
        return self._frame_or_build()[4]

    def to_camera(self, p: Any) -> Any:
        """World point(s) ``Array3f`` -> camera space (attached)."""
        rows, trans, _, _, _ = self._frame_or_build()
        n = dr.width(p)
        rows = [broadcast(r, n) for r in rows]
        trans = broadcast(trans, n)
        return bk.Array3f(dr.dot(rows[0], p) + trans[0], dr.dot(rows[1], p) + trans[1],
                          dr.dot(rows[2], p) + trans[2])

    def camera_to_world_vector(self, v: Any) -> Any:
        _, _, cols, _, _ = self._frame_or_build()
        return cols[0] * v[0] + cols[1] * v[1] + cols[2] * v[2]

    @property
    def eye(self) -> Any:
        """World-space origin of the camera (attached)."""
        return self._frame_or_build()[3]

    @property
    def forward_direction(self) -> Any:
        """Unit viewing direction (local +Z) in world space."""
        return dr.normalize(self.camera_to_world_vector(bk.Array3f(0.0, 0.0, 1.0)))

    def direction_to_camera(self, p: Any) -> Any:
        """Unit vector from world point(s) ``p`` towards the viewer."""
        raise NotImplementedError

    def homogeneous(self, pc: Any, width: int, height: int) -> tuple[Any, Any, Any]:
        """Homogeneous raster coordinates ``(u, v, w)`` of camera-space points."""
        raise NotImplementedError

    def ndc_depth(self, z: Any) -> Any:
        """Camera-space depth -> [0, 1] between near and far (differentiable in both)."""
        return (z - self.near) / (self.far - self.near)

    def primary_rays(self, width: int, height: int, spp_side: int = 1) -> tuple[Any, Any]:
        """Detached world-space rays ``(o, d)`` through the sample positions of the
        ``(height*s, width*s)`` sample grid (rows first), ``d`` not normalised."""
        raise NotImplementedError

    @staticmethod
    def _sample_positions(width: int, height: int, s: int) -> tuple[Any, Any]:
        """Raster coordinates (pixels) of the sample grid's sample centres."""
        idx = dr.arange(bk.UInt32, width * s * height * s)
        gx = idx % (width * s)
        gy = idx // (width * s)
        return (bk.Float(gx) + 0.5) / s, (bk.Float(gy) + 0.5) / s


class PerspectiveCamera(Camera):
    """Pinhole camera; ``fov`` in degrees along ``fov_axis`` (``'x'``: Mitsuba's default).

    Args:
        position, target, up: pose (3-vectors or ``Array3f``; grad-enableable).
        fov: field of view in degrees, in (0, 180).
        near, far: clipping distances along the viewing axis (``0 < near < far``).
        fov_axis: ``'x'`` (horizontal) or ``'y'`` (vertical).
    """

    perspective = True

    def __init__(self, position: Any = (0.0, 0.0, 3.0), target: Any = (0.0, 0.0, 0.0),
                 up: Any = (0.0, 1.0, 0.0), fov: Any = 45.0, near: float = 0.01,
                 far: float = 1000.0, fov_axis: str = "x") -> None:
        super().__init__(position, target, up, near, far)
        self.fov = fov
        if fov_axis not in ("x", "y"):
            raise ValueError(f"PerspectiveCamera: fov_axis must be 'x' or 'y', got {fov_axis!r}")
        self.fov_axis = fov_axis

    @property
    def fov(self) -> Any:
        return self._fov

    @fov.setter
    def fov(self, v: Any) -> None:
        if not isinstance(v, dr.ArrayBase) and not 0.0 < float(v) < 180.0:
            raise ValueError(f"PerspectiveCamera: fov must be in (0, 180) degrees, got {v}")
        self._fov = as_float(v, "camera fov")

    @classmethod
    def from_sensor(cls, sensor: Any) -> "PerspectiveCamera":
        """A camera that shares a path-tracer sensor's ``to_world``, ``x_fov`` and clip
        distances (read live on every ``forward()``, so gradients reach them)."""
        cam = cls.__new__(cls)
        Camera.__init__(cam, near=float(dr.detach(bk.Float(getattr(sensor, "near_clip", 0.01)))[0]),
                        far=float(dr.detach(bk.Float(getattr(sensor, "far_clip", 1e4)))[0]))
        cam._sensor = sensor
        cam._to_world_source = sensor
        cam.fov_axis = "x"
        fov = getattr(sensor, "x_fov", None)
        if fov is None:
            raise ValueError("PerspectiveCamera.from_sensor: the sensor has no 'x_fov'")
        cam._fov = bk.Float(fov) if not isinstance(fov, dr.ArrayBase) else fov
        film = getattr(sensor, "film", None)
        cam.film_size = None
        if film is not None:
            w = getattr(film, "width", None)
            h = getattr(film, "height", None)
            if w is None and hasattr(film, "size"):
                w, h = film.size
            if w is not None:
                cam.film_size = (int(w), int(h))
        return cam

    def forward(self) -> None:
        sensor = getattr(self, "_sensor", None)
        if sensor is not None:  # live values of the sensor's parameters
            fov = getattr(sensor, "x_fov")
            self._fov = fov if isinstance(fov, dr.ArrayBase) else bk.Float(float(fov))
        super().forward()

    def tan_half(self, width: int, height: int) -> tuple[Any, Any]:
        """(tx, ty): tangents of the half field of view, horizontally and vertically."""
        t = dr.tan(dr.deg2rad(self.fov) * 0.5)
        if self.fov_axis == "x":
            return t, t * (height / width)
        return t * (width / height), t

    def homogeneous(self, pc: Any, width: int, height: int) -> tuple[Any, Any, Any]:
        tx, ty = self.tan_half(width, height)
        n = dr.width(pc)
        tx, ty = broadcast(tx, n), broadcast(ty, n)
        z = pc[2]
        u = (0.5 * width) * (z - pc[0] / tx)
        v = (0.5 * height) * (z - pc[1] / ty)
        return u, v, z

    def direction_to_camera(self, p: Any) -> Any:
        return dr.normalize(broadcast(self.eye, dr.width(p)) - p)

    def primary_rays(self, width: int, height: int, spp_side: int = 1) -> tuple[Any, Any]:
        x, y = self._sample_positions(width, height, spp_side)
        tx, ty = self.tan_half(width, height)
        tx, ty = dr.detach(tx), dr.detach(ty)
        local = bk.Array3f((1.0 - 2.0 * x / width) * tx, (1.0 - 2.0 * y / height) * ty, 1.0)
        d = dr.detach(self.camera_to_world_vector(local))
        o = dr.detach(self.eye) + bk.Array3f(dr.zeros(bk.Float, dr.width(x)))
        return o, d


class OrthographicCamera(Camera):
    """Parallel projection; ``extent`` is the world-space width of the view
    (its 'field of view'), the height follows from the aspect ratio."""

    perspective = False

    def __init__(self, position: Any = (0.0, 0.0, 3.0), target: Any = (0.0, 0.0, 0.0),
                 up: Any = (0.0, 1.0, 0.0), extent: Any = 2.5, near: float = 0.0,
                 far: float = 1000.0) -> None:
        super().__init__(position, target, up, near, far)
        self.extent = extent

    @property
    def extent(self) -> Any:
        return self._extent

    @extent.setter
    def extent(self, v: Any) -> None:
        if not isinstance(v, dr.ArrayBase) and not float(v) > 0.0:
            raise ValueError(f"OrthographicCamera: extent must be > 0, got {v}")
        self._extent = as_float(v, "camera extent")

    def half_extents(self, width: int, height: int) -> tuple[Any, Any]:
        hx = self.extent * 0.5
        return hx, hx * (height / width)

    def homogeneous(self, pc: Any, width: int, height: int) -> tuple[Any, Any, Any]:
        hx, hy = self.half_extents(width, height)
        n = dr.width(pc)
        hx, hy = broadcast(hx, n), broadcast(hy, n)
        u = (0.5 * width) * (1.0 - pc[0] / hx)
        v = (0.5 * height) * (1.0 - pc[1] / hy)
        return u, v, dr.full(bk.Float, 1.0, dr.width(u))

    def direction_to_camera(self, p: Any) -> Any:
        return broadcast(-self.forward_direction, dr.width(p)) + bk.Array3f(0.0 * p[0])

    def primary_rays(self, width: int, height: int, spp_side: int = 1) -> tuple[Any, Any]:
        x, y = self._sample_positions(width, height, spp_side)
        hx, hy = self.half_extents(width, height)
        hx, hy = dr.detach(hx), dr.detach(hy)
        local = bk.Array3f((1.0 - 2.0 * x / width) * hx, (1.0 - 2.0 * y / height) * hy,
                           dr.zeros(bk.Float, dr.width(x)))
        o = dr.detach(self.eye + self.camera_to_world_vector(local))
        d = dr.detach(self.forward_direction) + bk.Array3f(dr.zeros(bk.Float, dr.width(x)))
        return o, d
