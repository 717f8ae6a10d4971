"""What travels between the driver and the workers: parameter values, views, images.

Values cross process (and machine) boundaries as numpy arrays tagged with how
to rebuild them, never as Dr.Jit objects: a worker may run another backend
(CUDA beside an LLVM driver), and the arrays it rebuilds belong to its own.

* A constant ``Transform4f`` (built from numbers, e.g. ``look_at``) travels as
  its float64 matrix, so the worker rounds it to the same float32 matrix *and*
  inverse as the driver did (bitwise-equal renders from transformed cameras).
* Any other transform travels as its float32 matrix; its inverse is then
  computed on the worker by ``dr.rcp``, as it is on the driver for a matrix
  computed from Dr.Jit variables (e.g. from latent pose variables).
* Dr.Jit arrays travel as ``np.array(value)`` (float32, same layout both ways).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import drjit as dr
import numpy as np

from .. import backend as bk
from ..geometry.transform import Transform4f

#: a view: ``("sensor", index)`` or ``("params", sensor_index, {suffix: encoded value})``
ViewSpec = tuple


def encode(value: Any) -> tuple:
    """A picklable, backend-independent form of a parameter value (detached)."""
    if isinstance(value, Transform4f):
        if value._np is not None and not dr.grad_enabled(value.matrix):
            return ("T64", np.array(value._np, dtype=np.float64))
        return ("T32", np.array(dr.detach(value.matrix), dtype=np.float32).reshape(4, 4))
    if isinstance(value, dr.ArrayBase):
        return ("dr", type(value).__name__, np.array(dr.detach(value)))
    if isinstance(value, (np.ndarray, list, tuple)):
        return ("np", np.array(value))
    if isinstance(value, (bool, int, float)):
        return ("py", value)
    raise TypeError(f"cannot send a value of type {type(value).__name__} to the workers "
                    "(expected a Transform4f, a Dr.Jit array, a numpy array or a number)")


def decode(enc: tuple, like: Any = None) -> Any:
    """Rebuild an :func:`encode`\\ d value with the arrays of this process's
    backend; ``like`` (the parameter's current value) gives the type."""
    kind = enc[0]
    if kind == "T64":
        return Transform4f(enc[1])
    if kind == "T32":
        return Transform4f(bk.Matrix4f(np.ascontiguousarray(enc[1], dtype=np.float32)))
    if kind == "dr":
        name, arr = enc[1], enc[2]
        tp = getattr(bk, name, None)
        if tp is None:
            raise TypeError(f"unknown array type {name!r}")
        if isinstance(like, dr.ArrayBase) and type(like).__name__ == name:
            tp = type(like)
        value = to_array(tp, arr)
        # (a matrix for a transform parameter: params[key] = value converts it)
        return value
    if kind in ("np", "py"):
        return enc[1]
    raise ValueError(f"unknown encoding {kind!r}")


def to_array(tp: type, arr: np.ndarray) -> Any:
    """``tp(arr)`` over private, 64-byte aligned copies (``backend.from_numpy``:
    numpy-mapped memory would change the compiled kernels)."""
    arr = np.asarray(arr)
    if dr.is_tensor_v(tp):
        return tp(bk.from_numpy(bk.Float, arr.astype(np.float32)), shape=arr.shape)
    if dr.is_matrix_v(tp):
        return tp(np.ascontiguousarray(arr, dtype=np.float32))
    if dr.depth_v(tp) == 1:
        return bk.from_numpy(tp, arr) if tp is bk.Float else tp(np.ascontiguousarray(arr))
    if dr.depth_v(tp) == 2 and arr.ndim == 2 and dr.is_float_v(tp):
        # a vector of floats (Array3f, Color3f, ...): one aligned Float per component
        return tp(*[bk.from_numpy(bk.Float, arr[i].astype(np.float32))
                    for i in range(arr.shape[0])])
    return tp(np.ascontiguousarray(arr))


def raw(value: Any) -> Any:
    """The Dr.Jit array behind a value (a transform's matrix)."""
    return value.matrix if isinstance(value, Transform4f) else value


def encode_views(views: Any) -> list:
    """Normalise a user's list of views into :data:`ViewSpec` tuples.

    Each view is one of: an ``int`` (a sensor of the scene); a ``Transform4f``,
    ``Matrix4f`` or 4×4 array (the ``to_world`` of sensor 0); a mapping of
    sensor parameters (``{"to_world": T, "x_fov": 40}``, optionally with
    ``"sensor": i`` to pick which sensor they apply to; default 0).
    """
    if isinstance(views, (str, bytes, Mapping, Transform4f)) or not hasattr(views, "__iter__"):
        raise TypeError("views must be a list (of sensor indices, sensor transforms or "
                        f"dicts of sensor parameters), got {type(views).__name__}")
    out = []
    for j, v in enumerate(views):
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            out.append(("sensor", int(v)))
        elif isinstance(v, Transform4f) or (isinstance(v, dr.ArrayBase) and dr.is_matrix_v(v)):
            out.append(("params", 0, {"to_world": encode(Transform4f(v) if not isinstance(
                v, Transform4f) else v)}))
        elif isinstance(v, (np.ndarray, list, tuple)) and np.shape(v) == (4, 4):
            out.append(("params", 0, {"to_world": ("T64", np.array(v, dtype=np.float64))}))
        elif isinstance(v, Mapping):
            d = dict(v)
            s = d.pop("sensor", 0)
            if not isinstance(s, (int, np.integer)):
                raise TypeError(f"view {j}: 'sensor' must be a sensor index, got {s!r}")
            if not d:
                raise ValueError(f"view {j}: a dict view needs sensor parameters "
                                 "(e.g. {'to_world': T})")
            out.append(("params", int(s), {str(k): encode(val) for k, val in d.items()}))
        else:
            raise TypeError(f"view {j}: expected a sensor index, a sensor transform or a dict "
                            f"of sensor parameters, got {type(v).__name__}")
    return out
