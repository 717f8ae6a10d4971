"""Buffers: the mutable containers that connect the stages of the pipeline.

The course's Taichi pipeline wires stages together by handing each stage the
*fields* (mutable GPU arrays) of the stages before it; a stage's ``forward()``
reads its input fields and overwrites its output fields. Dr.Jit arrays are
values (an AD graph node per array), not mutable storage, so a stage cannot
overwrite an array in place and keep gradients. A :class:`Buffer` restores the
course's design: it is a small mutable holder whose ``value`` a stage replaces
on every ``forward()``; downstream stages keep a reference to the *holder* and
read ``value`` when they run, so the new (attached) array, with its AD graph,
flows through the whole pipeline and Dr.Jit differentiates it in both modes.

Storage: one Dr.Jit array per buffer, one lane per sample of the sample grid
(rows first: lane = ``y * width + x``), with ``channels`` components (``Float``
for one channel, ``Array2f``/``Array3f``/... otherwise). :attr:`Buffer.tensor`
and :meth:`Buffer.numpy` give the package's image layout ``(height, width,
channels)``.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import drjit as dr
import numpy as np

from .. import backend as bk


class Buffer:
    """A named, mutable holder of one per-sample Dr.Jit array.

    Args:
        name: for messages and ``repr``.
        height, width: the sample grid this buffer covers (``None`` for buffers
            that are not images, e.g. per-vertex normals or a scalar loss).
        channels: number of components per lane.
        value: initial array (optional).
        spp_side: samples per pixel along each axis of an image buffer.
    """

    def __init__(self, name: str, height: Optional[int] = None, width: Optional[int] = None,
                 channels: int = 1, value: Any = None, spp_side: int = 1) -> None:
        self.name = name
        #: samples per pixel along each axis (the grid is ``spp_side`` times finer)
        self.spp_side = int(spp_side)
        self.height = height
        self.width = width
        self.channels = int(channels)
        self._value = value

    @property
    def value(self) -> Any:
        if self._value is None:
            raise RuntimeError(f"buffer {self.name!r} is empty: run forward() of the stage "
                               "that writes it first")
        return self._value

    @value.setter
    def value(self, v: Any) -> None:
        self._value = v

    @property
    def is_image(self) -> bool:
        return self.height is not None and self.width is not None

    @property
    def shape(self) -> tuple:
        if not self.is_image:
            return (dr.width(self.value), self.channels)
        return (self.height, self.width, self.channels)

    @property
    def like(self) -> dict:
        """Keyword arguments that make another buffer over the same sample grid."""
        return {"height": self.height, "width": self.width, "spp_side": self.spp_side}

    @property
    def tensor(self) -> Any:
        """The buffer as a ``TensorXf`` of shape (height, width, channels), attached."""
        return to_tensor(self.value, self.shape)

    def numpy(self) -> np.ndarray:
        """A detached numpy copy in image layout (or (n, channels))."""
        v = self.value
        if isinstance(v, dr.ArrayBase) and dr.is_integral_v(v) and dr.depth_v(v) == 1:
            return np.array(v).reshape(self.shape)
        return np.array(dr.detach(self.tensor) if self.is_image else
                        to_tensor(self.value, self.shape)).reshape(self.shape)

    def __repr__(self) -> str:
        state = "empty" if self._value is None else f"shape={self.shape}"
        return f"Buffer({self.name!r}, {state})"


def read(x: Any) -> Any:
    """Resolve a stage input: a :class:`Buffer` (its current value), a zero-argument
    callable (called), or a plain value."""
    if isinstance(x, Buffer):
        return x.value
    if callable(x) and not isinstance(x, dr.ArrayBase):
        return x()
    return x


def to_tensor(value: Any, shape: tuple) -> Any:
    """Per-lane array (``Float`` or ``ArrayNf``) -> ``TensorXf`` of ``shape`` (attached).

    ``dr.ravel`` interleaves the components lane by lane, which is exactly the
    row-major (lanes, channels) order of an (H, W, C) image.
    """
    if isinstance(value, dr.ArrayBase) and dr.is_tensor_v(value):
        return value
    if dr.depth_v(value) == 1:
        flat = bk.Float(value)
    else:
        flat = dr.ravel(value)
    return bk.TensorXf(flat, tuple(int(s) for s in shape))


def from_tensor(t: Any, channels: int) -> Any:
    """``TensorXf`` (.., C) -> per-lane array (``Float`` if C == 1 else ``ArrayCf``)."""
    if channels == 1:
        return t.array
    return dr.unravel(array_type(channels), t.array)


def array_type(channels: int) -> type:
    """The Dr.Jit per-lane type holding ``channels`` floats."""
    if channels == 1:
        return bk.Float
    if channels == 2:
        return bk.Array2f
    if channels == 3:
        return bk.Array3f
    if channels == 4:
        return bk.Array4f
    raise ValueError(f"per-lane attributes have 1 to 4 channels, got {channels}")


def channel_count(value: Any) -> int:
    """Number of float components per lane of a Dr.Jit value."""
    return 1 if dr.depth_v(value) == 1 else len(value)


def width_of(value: Any) -> int:
    """Lane count of a Dr.Jit value (1 for Python scalars)."""
    if isinstance(value, dr.ArrayBase):
        return dr.width(value)
    return 1


def broadcast(x: Any, n: int) -> Any:
    """Spread an attached one-lane value over ``n`` lanes with a gather.

    Arithmetic between a one-lane and an ``n``-lane array broadcasts implicitly,
    but reverse-mode AD then needs a horizontal reduction at *every* such use,
    each a separate kernel (a camera parameter is used dozens of times per
    frame). The reverse of a gather is a scatter-add that fuses into the
    backward kernel, so routing every use through one gather keeps the backward
    pass to a few kernels. Values without gradients are returned unchanged."""
    if (n <= 1 or not isinstance(x, dr.ArrayBase) or dr.width(x) != 1
            or not dr.grad_enabled(x)):
        return x
    return dr.gather(type(x), x, dr.zeros(bk.UInt32, n))


def as_array3f(v: Any, what: str) -> Any:
    """Convert a 3-sequence / numpy vector / Dr.Jit array to ``Array3f`` (keeps AD)."""
    if isinstance(v, dr.ArrayBase):
        if dr.depth_v(v) == 2 and len(v) == 3:
            return bk.Array3f(v)
        raise ValueError(f"{what}: expected a 3-vector, got a {type(v).__name__}")
    a = np.asarray(v, dtype=np.float64).ravel()
    if a.shape != (3,):
        raise ValueError(f"{what}: expected 3 components, got {a.size}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: value {a.tolist()} is not finite")
    return bk.Array3f(*[float(x) for x in a])


def as_float(v: Any, what: str) -> Any:
    """Convert a Python number or Dr.Jit ``Float`` to ``Float`` (keeps AD)."""
    if isinstance(v, dr.ArrayBase):
        if dr.depth_v(v) != 1:
            raise ValueError(f"{what}: expected a scalar, got a {type(v).__name__}")
        return bk.Float(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a number, got {v!r}") from None
    if not np.isfinite(f):
        raise ValueError(f"{what}: value {f} is not finite")
    return bk.Float(f)


Getter = Callable[[], Any]
Setter = Callable[[Any], None]
