"""Environment map (``envmap``): radiance from a latitude-longitude image.

Mapping (Mitsuba 3's convention, +Y up). For a unit direction
``d = (x, y, z)`` in the emitter's local frame (``d_local = to_world⁻¹ d``):

.. math::
    u = \\frac{\\operatorname{atan2}(x, -z)}{2\\pi} \\bmod 1, \\qquad
    v = \\frac{\\theta}{\\pi}, \\quad \\theta = \\arccos y

and back: ``φ = 2πu``, ``d = (sin φ sin θ, cos θ, -cos φ sin θ)``. So the top
image row is straight up (+Y), the bottom row straight down, the left edge of
the image (u = 0) looks along -Z, the centre (u = 1/2) along +Z, and u = 1/4
along +X. (This is Mitsuba 3's ``direction_to_uv``; note there is no extra
``+1/2`` on ``u``: adding one would turn the environment by 180° about +Y
relative to Mitsuba renders.)

Texel placement, also as Mitsuba: in ``u`` the ``W`` texel centres sit at
``(i + 1/2) / W`` and the image wraps around; in ``v`` the ``H`` rows sit at
``j / (H - 1)``, so the first and last rows lie exactly on the poles. The
radiance is the bilinear interpolation of the four surrounding texels times
``scale``; it is a ``dr.gather`` on the ``TensorXf`` ``data`` (H × W × 3), hence
differentiable w.r.t. every texel and ``scale``.

Importance sampling: the bilinear patches between texel centres form an
``(H-1) × W`` grid of cells over the unit square ``(X, Y) = (u - 1/(2W), v)``.
Cell ``(r, c)`` gets the weight

.. math::
    w_{rc} = \\bar Y_{rc} \\,(\\cos\\theta_r - \\cos\\theta_{r+1}), \\qquad
    \\theta_r = \\pi r / (H - 1)

(``\\bar Y`` the mean luminance of its four corner texels; the cosine difference
is ``∫ sin θ dθ`` over the row), i.e. proportional to luminance × sin θ. A
piecewise-constant 2-D distribution (:class:`PiecewiseConstant2D`) samples
``(X, Y)`` with density ``p_uv``; the change of variables
``dω = sin θ dθ dφ = 2π² sin θ du dv`` gives the solid-angle density

.. math::
    p_\\omega(d) = \\frac{p_{uv}(u, v)}{2\\pi^2 \\sin\\theta}

and the sample weight ``L(d) / p_ω(d) = L(d) · 2π² sin θ / p_uv`` (computed in
that form so it is 0, not NaN, at the poles). See Pharr, Jakob & Humphreys,
*PBRT* 3rd ed., §14.2.4 "Infinite Area Lights".

Differences from Mitsuba: ``data`` is the image itself (H × W × 3), without
Mitsuba's duplicated wrap-around column; the sampling density is piecewise
constant rather than Mitsuba's piecewise-bilinear ``Hierarchical2D``; sampled
directions have ``dist = inf`` (the integrator's shadow rays are unbounded).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterator

import drjit as dr
import numpy as np

from .. import backend as bk
from .. import io
from ..geometry.transform import Transform4f
from ..scene.schema import Param, register
from ._util import LUMINANCE_WEIGHTS, as_mask, atan2, lane_count
from .base import DirectionSample, Emitter
from .distr2d import PiecewiseConstant2D

_TWO_PI_SQ = 2.0 * np.pi * np.pi


def direction_to_uv(d: Any) -> tuple[Any, Any, Any]:
    """Local unit direction -> ``(u, v, sin θ)`` (see the module docstring).

    Differentiable with finite derivatives everywhere (the poles included):
    ``θ = atan2(sqrt(x² + z²), y)`` with a safe square root, and the azimuth
    is evaluated on a fixed direction at the poles, where it is undefined.
    (``atan2`` is :func:`._util.atan2`, not ``dr.atan2``: see there why.)
    """
    x, y, z = d[0], d[1], d[2]
    r2 = dr.square(x) + dr.square(z)
    sin_theta = dr.safe_sqrt(r2)
    # At the poles the azimuth is undefined; use u = 0, as Mitsuba 3 does (its
    # lookup at (0, ±1, 0) blends the first and last texel of the pole row).
    pole = r2 <= 0.0
    xs = dr.select(pole, 0.0, x)
    zs = dr.select(pole, -1.0, z)
    u = atan2(xs, -zs) * dr.inv_two_pi
    u = u - dr.floor(u)
    v = atan2(sin_theta, y) * dr.inv_pi
    return u, v, sin_theta


def uv_to_direction(u: Any, v: Any) -> Any:
    """``(u, v)`` in [0,1]² -> local unit direction ``(sin φ sin θ, cos θ, -cos φ sin θ)``."""
    sin_t, cos_t = dr.sincos(v * dr.pi)
    sin_p, cos_p = dr.sincos(u * dr.two_pi)
    return bk.Array3f(sin_p * sin_t, cos_t, -cos_p * sin_t)


@register
class EnvironmentMapEmitter(Emitter):
    """Lat-long environment map. Keys: ``data`` (TensorXf H×W×3), ``scale``, ``to_world``."""

    PLUGIN = ("emitter", "envmap")
    PARAMS = {
        "filename": Param("string", default=None,
                          doc="lat-long image (EXR/HDR linear; PNG/JPEG sRGB-decoded)"),
        "scale": Param("float", default=1.0, min=0.0, doc="factor applied to the image's radiance"),
        "to_world": Param("transform", default=None, doc="emitter-to-world transform"),
        "sampling_weight": Param("float", default=1.0, min=0.0),
        "mis_compensation": Param("bool", default=False, ignored="it changes only the "
                                  "density with which directions are sampled (Karlik et al. "
                                  "2019), not the expected image"),
        "bitmap": Param("image", default=None,
                        doc="an in-memory lat-long image (H x W x C, linear) instead of a file"),
    }
    is_infinite = True

    def __init__(self, filename: str | None = None, scale: Any = 1.0, to_world: Any = None,
                 sampling_weight: float = 1.0, bitmap: Any = None,
                 id: str | None = None) -> None:
        super().__init__(id)
        self._where = f"envmap emitter '{id}'" if id else "envmap emitter"
        if (filename is None) == (bitmap is None):
            raise ValueError(f"{self._where}: give exactly one of 'filename' or 'bitmap' "
                             "(an H×W×3 array of linear radiance)")
        if filename is not None:
            path = os.fspath(filename)
            try:
                img = io.read_image(path)
            except FileNotFoundError:
                raise FileNotFoundError(f"{self._where}: image file '{path}' does not exist") \
                    from None
            except ValueError as exc:
                raise ValueError(f"{self._where}: {exc}") from None
            try:
                io.check_finite_image(img, path)
            except ValueError as exc:
                raise ValueError(f"{self._where}: {exc}") from None
            if not io.is_hdr(path):
                # 8/16-bit images store sRGB-encoded colour.
                img = np.concatenate([io.srgb_to_linear(img[..., :3]), img[..., 3:]], axis=-1) \
                    if img.shape[2] >= 3 else io.srgb_to_linear(img)
            self.filename: str | None = path
            data = img
        else:
            self.filename = None
            data = bitmap
        self.to_world = Transform4f(to_world) if to_world is not None else Transform4f()
        self._set_scale(scale)
        self._set_data(data)
        self.sampling_weight = float(sampling_weight)
        self.center = bk.Array3f(0.0, 0.0, 0.0)
        self.radius = 1.0

    # -- state ---------------------------------------------------------------
    def _set_scale(self, s: Any) -> None:
        if isinstance(s, dr.ArrayBase):
            self.scale = bk.Float(s)
        else:
            s = float(s)
            if not np.isfinite(s):
                raise ValueError(f"{self._where}: scale {s!r} is not finite")
            self.scale = bk.Float(s)

    def _set_data(self, data: Any) -> None:
        """Store the image (keeps a Dr.Jit tensor as is, so its AD graph survives)
        and rebuild the sampling distribution from its detached values."""
        if dr.is_tensor_v(data):
            shape = tuple(data.shape)
            if len(shape) != 3 or shape[2] != 3:
                raise ValueError(f"{self._where}: data must be a TensorXf of shape "
                                 f"(H, W, 3), got {shape}")
            tensor = bk.TensorXf(data)
            values = np.array(dr.detach(tensor), dtype=np.float32)
        else:
            arr = np.array(data, dtype=np.float32, copy=True)  # copy: numpy is zero-copy
            if arr.ndim == 2:
                arr = arr[:, :, None]
            if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
                raise ValueError(f"{self._where}: image must be H×W, H×W×1, H×W×3 or H×W×4, "
                                 f"got shape {arr.shape}")
            if arr.shape[2] == 1:
                arr = np.repeat(arr, 3, axis=2)
            arr = np.ascontiguousarray(arr[:, :, :3])
            tensor = bk.TensorXf(arr)
            values = arr
        h, w = values.shape[:2]
        if h < 2 or w < 2:
            raise ValueError(f"{self._where}: the environment map must be at least 2×2 "
                             f"pixels, got {w}×{h}")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{self._where}: the environment map contains NaN or inf")
        if np.any(values < 0):
            raise ValueError(f"{self._where}: the environment map has negative radiance")
        self.data = tensor
        self._h, self._w = h, w
        self._distr = PiecewiseConstant2D(self._cell_weights(values))

    @staticmethod
    def _cell_weights(values: np.ndarray) -> np.ndarray:
        """``(H-1) × W`` weights: corner-mean luminance × ∫ sin θ dθ (see module doc)."""
        h, w = values.shape[:2]
        lum = values @ np.asarray(LUMINANCE_WEIGHTS, dtype=np.float64)
        right = np.roll(lum, -1, axis=1)  # wrap-around neighbour in u
        patch = 0.25 * (lum[:-1] + right[:-1] + lum[1:] + right[1:])
        theta = np.pi * np.arange(h) / (h - 1)
        band = np.cos(theta[:-1]) - np.cos(theta[1:])
        return patch * band[:, None]

    def set_scene_bounds(self, center: Any, radius: float) -> None:
        self.center, self.radius = center, radius

    # -- radiance ------------------------------------------------------------
    def eval_uv(self, u: Any, v: Any, active: Any = True) -> Any:
        """Bilinear radiance lookup at lat-long coordinates (times ``scale``)."""
        w, h = self._w, self._h
        rows = h - 1
        x = u * w - 0.5
        x0 = dr.floor(x)
        fx = x - x0
        i0 = bk.Int32(x0)
        i0 = dr.select(i0 < 0, i0 + w, i0)
        i0 = dr.select(i0 >= w, i0 - w, i0)
        i1 = dr.select(i0 + 1 >= w, 0, i0 + 1)
        y = dr.clip(v * rows, 0.0, float(rows))
        j0 = dr.minimum(bk.Int32(dr.floor(y)), rows - 1)
        fy = y - bk.Float(j0)
        j1 = j0 + 1
        src = self.data.array
        i0, i1 = bk.UInt32(i0), bk.UInt32(i1)
        r0, r1 = bk.UInt32(j0) * w, bk.UInt32(j1) * w
        v00 = dr.gather(bk.Array3f, src, r0 + i0, active)
        v10 = dr.gather(bk.Array3f, src, r0 + i1, active)
        v01 = dr.gather(bk.Array3f, src, r1 + i0, active)
        v11 = dr.gather(bk.Array3f, src, r1 + i1, active)
        top = dr.lerp(v00, v10, fx)
        bottom = dr.lerp(v01, v11, fx)
        return dr.lerp(top, bottom, fy) * self.scale

    def _to_local(self, d: Any) -> Any:
        return dr.normalize(self.to_world.inverse_transform().transform_vector(bk.Array3f(d)))

    def eval_direction(self, d: Any, active: Any = True) -> Any:
        """Radiance seen along an escaping ray with world direction ``d``."""
        n = lane_count(d)
        active = as_mask(active, n)
        u, v, _ = direction_to_uv(self._to_local(d))
        return dr.select(active, self.eval_uv(u, v, active), 0.0)

    # -- sampling ------------------------------------------------------------
    def _uv_to_grid(self, u: Any, v: Any) -> Any:
        x = u - 0.5 / self._w
        return bk.Array2f(x - dr.floor(x), v)

    def pdf_direction(self, p: Any, d: Any, active: Any = True) -> Any:
        """Solid-angle density of :meth:`sample_direction` producing ``d``."""
        n = lane_count(p, d)
        active = as_mask(active, n)
        u, v, sin_theta = direction_to_uv(dr.detach(self._to_local(d)))
        p_uv = self._distr.eval(self._uv_to_grid(u, v), active)
        pdf = p_uv / (_TWO_PI_SQ * dr.maximum(sin_theta, 1e-7))
        return dr.select(active, pdf, 0.0)

    def sample_direction(self, p: Any, sample2: Any, active: Any = True) -> DirectionSample:
        n = lane_count(p, sample2)
        active = as_mask(active, n)
        grid, p_uv, _ = self._distr.sample(bk.Array2f(sample2), active)
        u = grid[0] + 0.5 / self._w
        u = u - dr.floor(u)
        return self._sample_uv(n, u, grid[1], p_uv, active)

    def direction_point(self, d: Any) -> Any:
        u, v, _ = direction_to_uv(dr.detach(self._to_local(d)))
        return bk.Array2f(u, v)

    def sample_at(self, p: Any, point: Any, active: Any = True) -> DirectionSample:
        n = lane_count(p, point)
        active = as_mask(active, n)
        u, v = point[0], point[1]
        p_uv = self._distr.eval(self._uv_to_grid(u, v), active)
        return self._sample_uv(n, u, v, p_uv, active)

    def _sample_uv(self, n: int, u: Any, v: Any, p_uv: Any, active: Any) -> DirectionSample:
        """The direction sample at ``(u, v)`` of the map, drawn with density
        ``p_uv`` there."""
        local = uv_to_direction(u, v)
        sin_theta = dr.safe_sqrt(dr.square(local[0]) + dr.square(local[2]))
        d = dr.normalize(self.to_world.transform_vector(local))
        ok = active & (p_uv > 0)
        pdf = p_uv / (_TWO_PI_SQ * dr.maximum(sin_theta, 1e-7))
        radiance = self.eval_uv(u, v, ok)
        weight = radiance * (_TWO_PI_SQ * sin_theta / dr.maximum(p_uv, 1e-30))
        return DirectionSample(
            d=d,
            dist=dr.full(bk.Float, dr.inf, n),
            pdf=dr.select(ok, pdf, 0.0),
            weight=dr.select(ok, weight, 0.0),
            delta=dr.full(bk.Bool, False, n))

    def eval(self, si: Any, active: Any = True) -> Any:
        return dr.zeros(bk.Array3f, lane_count(si.p))

    # -- parameters ----------------------------------------------------------
    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield "data", self.data, self._set_data
        yield "scale", self.scale, self._set_scale

        def set_to_world(m: Any) -> None:
            self.to_world = Transform4f(m)
        yield "to_world", self.to_world, set_to_world

    def __repr__(self) -> str:
        return (f"EnvironmentMapEmitter(id={self.id!r}, filename={self.filename!r}, "
                f"res={self._w}x{self._h})")
