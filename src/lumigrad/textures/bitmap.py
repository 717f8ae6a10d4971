"""The bitmap texture: an image looked up at the surface's uv coordinates.

Orientation (Mitsuba 3's): ``uv = (0, 0)`` is the first pixel of the file (its
top-left corner as an image viewer shows it) and ``v`` grows with the row index,
i.e. image row ``r`` covers ``v ∈ [r/H, (r+1)/H]``. The OBJ loader flips ``v``
(``flip_tex_coords``), so OBJ files, whose ``v = 0`` is the image's bottom, show
textures upright; on Mitsuba's ``rectangle`` (uv (0,0) at (-1,-1), (1,1) at
(1,1)) seen from +Z with +Y up, the image appears upside down, as in Mitsuba.

Lookup: continuous texel coordinates ``x = u W - 1/2``, ``y = v H - 1/2``
(texel centres at integers); ``bilinear`` blends the four nearest texels with
weights ``(1-fx)(1-fy), fx(1-fy), (1-fx)fy, fx fy``; ``nearest`` takes texel
``(⌊uW⌋, ⌊vH⌋)``. Integer texel indices outside the image are mapped back by
the ``wrap_mode``: ``repeat`` (periodic), ``mirror`` (period 2W, reflected),
``clamp`` (edge texels).

The texels live in a ``TensorXf`` of shape (H, W, C) (key ``data``, C = 1 or 3;
an alpha channel is dropped at load) and are read with ``dr.gather`` on its flat
array, so reverse-mode AD scatters each lookup's adjoint into the four texels
with the bilinear weights, and forward mode propagates texel tangents; the
result is also differentiable in ``uv`` (through ``fx``, ``fy``).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterator

import drjit as dr
import numpy as np

from .. import backend as bk
from ..scene.schema import Param, register
from .base import Texture

FILTERS = ("bilinear", "nearest")
WRAP_MODES = ("repeat", "mirror", "clamp")


def apply_to_uv(to_uv: Any, uv: Any) -> Any:
    """Apply a ``Transform4f`` to texture coordinates as the affine map of the plane
    ``(u, v, 0, 1) -> (u', v')`` (Mitsuba's ``to_uv``); ``None`` is the identity."""
    if to_uv is None:
        return uv
    m = to_uv.matrix
    return bk.Array2f(m[0, 0] * uv[0] + m[0, 1] * uv[1] + m[0, 3],
                      m[1, 0] * uv[0] + m[1, 1] * uv[1] + m[1, 3])


def check_to_uv(to_uv: Any, where: str) -> Any:
    if to_uv is None:
        return None
    from ..geometry.transform import Transform4f

    if not isinstance(to_uv, Transform4f):
        try:
            to_uv = Transform4f(to_uv)
        except Exception as exc:
            raise TypeError(f"{where}: 'to_uv' must be a Transform4f or a 4x4 matrix "
                            f"({exc})") from None
    return None if to_uv.is_identity() else to_uv


def wrap_index(i: Any, n: int, mode: str) -> Any:
    """Map integer texel indices ``i`` (Int32) into ``[0, n)`` according to ``mode``."""
    if mode == "clamp":
        return dr.clip(i, 0, n - 1)
    if mode == "repeat":
        r = i % n
        r = dr.select(r < 0, r + n, r)
    else:  # mirror: ..., 1, 0 | 0, 1, ..., n-1 | n-1, ..., 0 | 0, ...
        p = 2 * n
        r = i % p
        r = dr.select(r < 0, r + p, r)
        r = dr.select(r >= n, p - 1 - r, r)
    # Guard against garbage from non-finite uv (float -> int conversion).
    return dr.clip(r, 0, n - 1)


@register
class BitmapTexture(Texture):
    """An image texture (Mitsuba's ``bitmap``), bilinear or nearest, differentiable."""

    PLUGIN = ("texture", "bitmap")
    PARAMS = {
        "filename": Param("string", default=None, doc="image file (PNG, JPEG, EXR, HDR, PFM)"),
        "filter_type": Param("string", default="bilinear", choices=FILTERS,
                             doc="texel interpolation"),
        "wrap_mode": Param("string", default="repeat", choices=WRAP_MODES,
                           doc="behaviour outside [0,1]^2"),
        "raw": Param("bool", default=False,
                     doc="use 8/16-bit values as they are (no sRGB decoding); EXR is linear"),
        "to_uv": Param("transform", default=None, singular_ok=True,
                         doc="transform applied to uv"),
        "data": Param("image", default=None,
                      doc="an in-memory image (H x W x C, linear) instead of a file"),
        "format": Param("string", default="auto",
                        choices=("auto", "variant", "float16", "fp16", "uint8"),
                        ignored="Mitsuba's storage precision of the texels; lumigrad keeps "
                        "float32 texels (a difference below 8-bit quantization)"),
        "accel": Param("bool", default=True, ignored="Mitsuba's hardware-accelerated "
                       "lookups; lumigrad applies the same filter in software"),
    }

    def __init__(self, filename: str | None = None, filter_type: str = "bilinear",
                 wrap_mode: str = "repeat", raw: bool = False, to_uv: Any = None,
                 data: Any = None, id: str | None = None) -> None:
        super().__init__(id)
        where = f"texture 'bitmap'{f' (id {id!r})' if id else ''}"
        self._where = where
        if filter_type not in FILTERS:
            raise ValueError(f"{where}: unknown filter_type {filter_type!r}; expected one of "
                             f"{', '.join(FILTERS)}")
        if wrap_mode not in WRAP_MODES:
            raise ValueError(f"{where}: unknown wrap_mode {wrap_mode!r}; expected one of "
                             f"{', '.join(WRAP_MODES)}")
        self.filter_type = filter_type
        self.wrap_mode = wrap_mode
        self.raw = bool(raw)
        self.to_uv = check_to_uv(to_uv, where)
        self.filename = None if filename is None else os.fspath(filename)
        if data is not None:
            if filename is not None:
                raise ValueError(f"{where}: give either 'filename' or 'data', not both")
            self._set_data(data)
        elif filename is not None:
            self._set_data(self._load(self.filename))
        else:
            raise ValueError(f"{where}: 'filename' is required")

    # -- data ----------------------------------------------------------------
    def _load(self, path: str) -> np.ndarray:
        from .. import io

        try:
            img = io.read_image(path)
        except FileNotFoundError:
            raise FileNotFoundError(f"{self._where}: image file '{path}' does not exist") from None
        except ValueError as exc:
            raise ValueError(f"{self._where}: {exc}") from None
        try:
            io.check_finite_image(img, path)
        except ValueError as exc:
            raise ValueError(f"{self._where}: {exc}") from None
        if img.shape[2] == 4:
            img = img[:, :, :3]
        if not self.raw and not io.is_hdr(path):
            img = io.srgb_to_linear(img)
        return np.ascontiguousarray(img, dtype=np.float32)

    def _set_data(self, data: Any) -> None:
        where = f"{self._where}: 'data'"
        if isinstance(data, bk.TensorXf):
            t = data
        elif isinstance(data, dr.ArrayBase) and dr.is_tensor_v(data):
            t = bk.TensorXf(data)
        elif isinstance(data, (np.ndarray, list, tuple)):
            arr = np.array(data, dtype=np.float32)  # a copy: numpy <-> drjit share memory
            if arr.ndim == 2:
                arr = arr[:, :, None]
            if arr.ndim != 3:
                raise ValueError(f"{where}: expected an (H, W, C) array, got shape {arr.shape}")
            if arr.shape[2] == 4:
                arr = arr[:, :, :3]
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{where}: the image contains NaN or inf")
            t = bk.TensorXf(arr)
        else:
            raise TypeError(f"{where}: expected a TensorXf or a numpy array, got "
                            f"{type(data).__name__}")
        shape = tuple(t.shape)
        if len(shape) == 2:
            t = bk.TensorXf(t.array, shape=(shape[0], shape[1], 1))
            shape = tuple(t.shape)
        if len(shape) != 3 or shape[2] not in (1, 3) or shape[0] < 1 or shape[1] < 1:
            raise ValueError(f"{where}: expected shape (H, W, 1) or (H, W, 3), got {shape}")
        self.data = t
        self.shape = shape
        self._mean: float | None = None

    # -- lookups ---------------------------------------------------------------
    def _fetch(self, idx: Any, active: Any) -> Any:
        src = self.data.array
        if self.shape[2] == 3:
            return dr.gather(bk.Array3f, src, idx, active)
        g = dr.gather(bk.Float, src, idx, active)
        return bk.Array3f(g, g, g)

    def _fetch_1(self, idx: Any, active: Any) -> Any:
        if self.shape[2] == 1:
            return dr.gather(bk.Float, self.data.array, idx, active)
        c = self._fetch(idx, active)
        # A scalar read of colour data is its luminance, as Mitsuba's bitmap does
        # (linear sRGB / Rec. 709 weights; a constant colour's scalar is its mean).
        return c[0] * 0.212671 + c[1] * 0.715160 + c[2] * 0.072169

    def _lookup(self, si: Any, active: Any, fetch: Callable[[Any, Any], Any]) -> Any:
        h, w, _ = self.shape
        uv = apply_to_uv(self.to_uv, si.uv)
        x = uv[0] * w
        y = uv[1] * h
        mode = self.wrap_mode
        if self.filter_type == "nearest":
            xi = wrap_index(bk.Int32(dr.floor(x)), w, mode)
            yi = wrap_index(bk.Int32(dr.floor(y)), h, mode)
            return fetch(bk.UInt32(yi * w + xi), active)
        x = x - 0.5
        y = y - 0.5
        x0f = dr.floor(x)
        y0f = dr.floor(y)
        fx = x - x0f
        fy = y - y0f
        x0 = bk.Int32(x0f)
        y0 = bk.Int32(y0f)
        xa, xb = wrap_index(x0, w, mode), wrap_index(x0 + 1, w, mode)
        ya, yb = wrap_index(y0, h, mode) * w, wrap_index(y0 + 1, h, mode) * w
        v00 = fetch(bk.UInt32(ya + xa), active)
        v10 = fetch(bk.UInt32(ya + xb), active)
        v01 = fetch(bk.UInt32(yb + xa), active)
        v11 = fetch(bk.UInt32(yb + xb), active)
        return dr.lerp(dr.lerp(v00, v10, fx), dr.lerp(v01, v11, fx), fy)

    def eval(self, si: Any, active: Any = True) -> Any:
        return self._lookup(si, active, self._fetch)

    def eval_1(self, si: Any, active: Any = True) -> Any:
        return self._lookup(si, active, self._fetch_1)

    def mean(self) -> float:
        if self._mean is None:
            self._mean = float(np.mean(np.array(dr.detach(self.data.array), dtype=np.float64)))
        return self._mean

    def mean_detached(self) -> Any:
        # opaque: a changing mean (after data updates) must not recompile kernels
        return dr.opaque(bk.Float, self.mean())

    def resolution(self) -> tuple[int, int]:
        """``(width, height)`` in texels."""
        return self.shape[1], self.shape[0]

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield "data", self.data, self._set_data

    def __repr__(self) -> str:
        h, w, c = self.shape
        src = f"'{self.filename}'" if self.filename else "data"
        return f"BitmapTexture({src}, {w}x{h}x{c}, {self.filter_type}, {self.wrap_mode})"
