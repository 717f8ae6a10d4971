"""Variant selection, LLVM discovery and the array types of the active variant.

lumigrad runs on Dr.Jit's LLVM backend (CPU) or CUDA backend (GPU). The variant
is chosen once, at first use:

1. :func:`set_variant` called before any scene is built, else
2. the environment variable ``LUMIGRAD_VARIANT`` (``llvm``/``cuda``; Mitsuba's
   ``llvm_ad_rgb``/``cuda_ad_rgb`` are accepted), else
3. ``cuda`` where a CUDA device is present, ``llvm`` otherwise.

Internal code reads the array types as attributes of this module
(``from lumigrad import backend as bk``; ``bk.Float(...)``) so that a variant
switch rebinds them everywhere.

The LLVM backend needs a shared ``libLLVM``; the ``karellen-llvm-core`` wheel
ships one inside the Python environment. We point ``DRJIT_LIBLLVM_PATH`` at it
before ``drjit`` is imported, unless the user set that variable.
"""
from __future__ import annotations

import glob
import os
import sys
from types import ModuleType


def _find_libllvm() -> str | None:
    """The newest libLLVM shipped inside this Python environment, if any."""
    roots = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(sys.executable))}
    candidates: list[str] = []
    for root in roots:
        for pattern in ("lib/libLLVM.so.*", "lib/libLLVM-*.so", "lib/libLLVM.so",
                        "lib/libLLVM*.dylib"):
            candidates += glob.glob(os.path.join(root, pattern))
    candidates = [c for c in candidates if os.path.isfile(c)]
    return sorted(candidates)[-1] if candidates else None


if "DRJIT_LIBLLVM_PATH" not in os.environ:
    _lib = _find_libllvm()
    if _lib is not None:
        os.environ["DRJIT_LIBLLVM_PATH"] = _lib

import drjit as dr  # noqa: E402  (must follow the environment set-up above)

_ALIASES = {
    "llvm": "llvm", "llvm_ad_rgb": "llvm", "llvm_rgb": "llvm", "cpu": "llvm",
    "cuda": "cuda", "cuda_ad_rgb": "cuda", "cuda_rgb": "cuda", "gpu": "cuda",
}

#: Names of the array types re-exported from the active Dr.Jit backend module.
TYPE_NAMES = (
    "Float", "Float64", "UInt32", "Int32", "UInt64", "Bool",
    "Array2f", "Array3f", "Array4f", "Array2u", "Array3u", "Array2i", "Array3i",
    "Array2b", "Array3b", "Matrix3f", "Matrix4f", "Quaternion4f", "TensorXf",
    "TensorXu", "TensorXb", "PCG32", "Texture2f", "Texture3f",
)

_variant: str | None = None
module: ModuleType | None = None  # drjit.llvm.ad or drjit.cuda.ad
#: callbacks run after a variant is bound (modules that cache array types)
ON_BIND: list = []

# Placeholders (bound by _bind) so that static analysis sees the names.
Float = Float64 = UInt32 = Int32 = UInt64 = Bool = None  # type: ignore
Array2f = Array3f = Array4f = Array2u = Array3u = Array2i = Array3i = None  # type: ignore
Array2b = Array3b = Matrix3f = Matrix4f = Quaternion4f = TensorXf = None  # type: ignore
TensorXu = TensorXb = PCG32 = Texture2f = Texture3f = None  # type: ignore
Color3f = Point3f = Vector3f = Normal3f = Point2f = Vector2f = None  # type: ignore


def from_numpy(dtype: type, array: object) -> object:
    """A Dr.Jit array of ``dtype`` over a private, 64-byte aligned copy of ``array``.

    ``Float(ndarray)`` maps numpy's memory without copying and Dr.Jit flags it
    unaligned unless it is 64-byte aligned; kernels reading it then compile
    differently (unaligned loads, scalar instead of packet gathers) and are
    recompiled depending on where numpy happened to allocate. The private copy
    also stops later writes to the user's array from changing the scene.
    """
    import numpy as np

    a = np.ascontiguousarray(array).ravel()
    buf = np.empty(a.size + 64 // max(a.itemsize, 1), a.dtype)
    off = (-buf.ctypes.data % 64) // a.itemsize
    view = buf[off:off + a.size]
    view[...] = a
    return dtype(view)


def cuda_available() -> bool:
    """True when Dr.Jit can use a CUDA device."""
    try:
        return bool(dr.has_backend(dr.JitBackend.CUDA))
    except Exception:  # pragma: no cover - depends on the machine
        return False


def _normalise(name: str) -> str:
    key = name.strip().lower()
    if key not in _ALIASES:
        raise ValueError(
            f"unknown variant {name!r}: expected one of 'llvm', 'cuda' "
            "(or Mitsuba's 'llvm_ad_rgb', 'cuda_ad_rgb')")
    return _ALIASES[key]


def _bind(variant: str) -> None:
    global _variant, module
    if variant == "cuda":
        if not cuda_available():
            raise RuntimeError("variant 'cuda' requested but no CUDA device is available "
                               "to Dr.Jit; use 'llvm' (CPU)")
        import drjit.cuda.ad as mod
    else:
        if not dr.has_backend(dr.JitBackend.LLVM):
            raise RuntimeError(
                "Dr.Jit's LLVM backend is unavailable: it needs a shared libLLVM. "
                "Install the 'karellen-llvm-core' wheel into this environment or set "
                "DRJIT_LIBLLVM_PATH to a libLLVM.so (version >= 17).")
        import drjit.llvm.ad as mod
        _install_llvm_minmax_workaround()
    module = mod
    g = globals()
    for name in TYPE_NAMES:
        g[name] = getattr(mod, name)
    # Mitsuba-style aliases: RGB colours, points, vectors and normals are 3-vectors.
    g["Color3f"] = mod.Array3f
    g["Point3f"] = mod.Array3f
    g["Vector3f"] = mod.Array3f
    g["Normal3f"] = mod.Array3f
    g["Point2f"] = mod.Array2f
    g["Vector2f"] = mod.Array2f
    _variant = variant
    for hook in ON_BIND:
        hook()
    # Re-export at package level (lumigrad.Float, ...), as mi.Float is in Mitsuba.
    pkg = sys.modules.get("lumigrad")
    if pkg is not None:
        for name in TYPE_NAMES + ("Color3f", "Point3f", "Vector3f", "Normal3f",
                                  "Point2f", "Vector2f"):
            setattr(pkg, name, g[name])


_ORIGINAL_MINMAX: tuple = ()


def _install_llvm_minmax_workaround() -> None:
    """Route float ``dr.minimum``/``dr.maximum`` through ``dr.select`` on LLVM.

    Dr.Jit 1.5 lowers float min/max to ``llvm.minimum``/``llvm.maximum``. When
    LLVM's DAG combiner narrows such a vector operation to a single lane (it
    does so in large kernels, e.g. when only one element is demanded), the x86
    backend (LLVM 18–23) aborts the whole process with "Cannot select: f32 =
    fmaximum". A compare + select computes the same values (NaN inputs aside)
    with the same derivatives and never hits that path. Python-level Dr.Jit
    helpers (``dr.clip``, ``dr.safe_sqrt``, ...) call these functions too, so
    the patch covers them.
    """
    global _ORIGINAL_MINMAX
    if _ORIGINAL_MINMAX:
        return
    orig_min, orig_max = dr.minimum, dr.maximum
    _ORIGINAL_MINMAX = (orig_min, orig_max)

    def _is_llvm_float(x: object) -> bool:
        return (isinstance(x, dr.ArrayBase) and dr.is_float_v(x)
                and dr.backend_v(x) == dr.JitBackend.LLVM)

    def minimum(a, b, /):  # type: ignore[no-untyped-def]
        if _is_llvm_float(a) or _is_llvm_float(b):
            return dr.select(a < b, a, b)
        return orig_min(a, b)

    def maximum(a, b, /):  # type: ignore[no-untyped-def]
        if _is_llvm_float(a) or _is_llvm_float(b):
            return dr.select(a > b, a, b)
        return orig_max(a, b)

    minimum.__doc__, maximum.__doc__ = orig_min.__doc__, orig_max.__doc__
    dr.minimum, dr.maximum = minimum, maximum


def set_variant(name: str) -> None:
    """Select the backend: ``'llvm'`` (CPU) or ``'cuda'`` (GPU).

    Call it before building scenes: arrays made under one variant cannot be
    mixed with arrays of another.
    """
    _bind(_normalise(name))


def variant() -> str:
    """The active variant name (``'llvm'`` or ``'cuda'``)."""
    if _variant is None:
        _bind(_default_variant())
    return _variant  # type: ignore[return-value]


def variants() -> list[str]:
    """Variants usable on this machine."""
    out = ["llvm"] if dr.has_backend(dr.JitBackend.LLVM) else []
    if cuda_available():
        out.append("cuda")
    return out


def _default_variant() -> str:
    env = os.environ.get("LUMIGRAD_VARIANT")
    if env:
        return _normalise(env)
    return "cuda" if cuda_available() else "llvm"


def ensure() -> None:
    """Bind the default variant if none was chosen yet."""
    if _variant is None:
        _bind(_default_variant())


ensure()
