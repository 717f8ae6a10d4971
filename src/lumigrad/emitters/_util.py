"""Small helpers shared by the emitter plugins (not part of the public API)."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr
import numpy as np

from .. import backend as bk
from ..textures.base import Texture

#: Rec. 709 / sRGB luminance weights (linear RGB -> Y), as Mitsuba's ``luminance``.
LUMINANCE_WEIGHTS = (0.212671, 0.715160, 0.072169)

#: CIE XYZ -> linear sRGB (Rec. 709 primaries, D65 white), the matrix of
#: ITU-R BT.709 as tabulated in PBRT and used by Mitsuba's RGB variants.
XYZ_TO_SRGB = ((3.240479, -1.537150, -0.498535),
               (-0.969256, 1.875991, 0.041556),
               (0.055648, -0.204043, 1.057311))

#: Linear sRGB of a flat *emission* spectrum of value 1. An emitter's spectrum is
#: converted as light, not as a reflectance: ``XYZ = ∫ S(λ) (x̄, ȳ, z̄) dλ / ∫ ȳ dλ``,
#: and the CIE 1931 matching functions have equal integrals, so a flat ``S = 1``
#: (the equal-energy illuminant E) has ``XYZ = (1, 1, 1)`` and its sRGB is the
#: row sums of :data:`XYZ_TO_SRGB`: (1.204794, 0.948291, 0.908916), a pinkish
#: white (sRGB's white is D65, not E). This is what Mitsuba 3's RGB variants give
#: for ``<spectrum name="radiance" value="v"/>``.
FLAT_EMISSION_SRGB = tuple(sum(row) for row in XYZ_TO_SRGB)


def flat_emission_rgb(value: float) -> tuple[float, float, float]:
    """Linear sRGB of a flat emission spectrum of height ``value`` (see
    :data:`FLAT_EMISSION_SRGB`)."""
    return tuple(float(value) * c for c in FLAT_EMISSION_SRGB)  # type: ignore[return-value]


def to_color3f(value: Any, where: str) -> Any:
    """``bk.Array3f`` from a float, a 3-sequence or a Dr.Jit array (AD graph kept)."""
    if isinstance(value, dr.ArrayBase):
        return bk.Array3f(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
        if not np.isfinite(v):
            raise ValueError(f"{where}: value {value!r} is not finite")
        return bk.Array3f(v, v, v)
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: expected a float or 3 floats, got {value!r}") from None
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.size != 3:
        raise ValueError(f"{where}: expected a float or 3 floats, got {arr.size} values")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{where}: value {value!r} is not finite")
    return bk.Array3f(*[float(x) for x in arr])


def to_vector3f(value: Any, where: str) -> Any:
    """``bk.Array3f`` from 3 floats or a Dr.Jit array (AD graph kept)."""
    if isinstance(value, dr.ArrayBase):
        return bk.Array3f(value)
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: expected 3 floats, got {value!r}") from None
    if arr.size != 3:
        raise ValueError(f"{where}: expected 3 floats, got {arr.size} values")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{where}: value {value!r} is not finite")
    return bk.Array3f(*[float(x) for x in arr])


class ConstantColor(Texture):
    """A uniform RGB value used when a plain colour is given to an emitter in
    Python (the scene loaders wrap colours in the ``constant`` texture plugin
    instead). Parameter key: ``value``."""

    def __init__(self, value: Any = 1.0, id: str | None = None) -> None:
        super().__init__(id)
        self.value = to_color3f(value, "constant colour")

    def eval(self, si: Any, active: Any = True) -> Any:
        return self.value

    def eval_1(self, si: Any, active: Any = True) -> Any:
        return dr.mean(self.value)

    def mean(self) -> float:
        return float(np.mean(np.array(dr.detach(self.value))))

    def is_constant(self) -> bool:
        return True

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        def set_value(v: Any) -> None:
            self.value = to_color3f(v, "constant colour")
        yield "value", self.value, set_value


def as_texture(value: Any, where: str) -> Any:
    """Accept a texture object as is; wrap a float / 3 floats / Dr.Jit colour."""
    if value is None:
        raise ValueError(f"{where}: a value is required")
    if isinstance(value, Texture) or (hasattr(value, "eval") and hasattr(value, "parameters")):
        return value
    return ConstantColor(value)


def constant_value(tex: Any, where: str) -> Any:
    """The current colour of a uniform texture (its ``value`` parameter) as ``Array3f``.

    Point, directional and constant emitters need a colour, not a spatially
    varying texture: anything without a ``value`` key is rejected.
    """
    for key, value, _ in tex.parameters():
        if key == "value":
            return bk.Array3f(value)
    raise ValueError(f"{where}: expected a uniform colour (rgb/float or a 'constant' "
                     f"texture), got a {type(tex).__name__} texture")


def texture_parameters(prefix: str, tex: Any) -> Iterator[tuple[str, Any, Any]]:
    """Re-yield a nested texture's parameters under ``prefix.``."""
    for key, value, setter in tex.parameters():
        yield f"{prefix}.{key}", value, setter


def lane_count(*xs: Any) -> int:
    return max(dr.width(x) for x in xs)


def as_mask(active: Any, n: int) -> Any:
    """A ``Bool`` array of width ``n`` from a Python bool or a mask."""
    if isinstance(active, bool):
        return dr.full(bk.Bool, active, n)
    return bk.Bool(active)


def atan2(y: Any, x: Any) -> Any:
    """``atan2(y, x)`` in (-π, π] from ``asin``/``acos`` of the normalised
    coordinates, each used only where its argument is at most 1/√2 in size (so
    both value and derivative stay accurate); 0 at the origin, with finite
    derivatives everywhere.

    Why not ``dr.atan2``: in Dr.Jit 1.5 it emits ``llvm.maximum``/``llvm.minimum``,
    which LLVM 20's x86 backend sometimes fails to compile on AVX2 machines
    ("LLVM ERROR: Cannot select: f32 = fmaximum", aborting the process).
    """
    r2 = dr.square(x) + dr.square(y)
    ok = r2 > 0
    inv = dr.select(ok, dr.rsqrt(dr.select(ok, r2, 1.0)), 0.0)
    s, c = y * inv, x * inv
    use_asin = dr.abs(y) <= dr.abs(x)
    a = dr.asin(dr.select(use_asin, s, 0.0))   # |s| <= 1/√2 here
    b = dr.acos(dr.select(use_asin, 0.0, c))   # |c| < 1/√2 here
    pi_signed = dr.select(y < 0, -dr.pi, dr.pi)
    angle_asin = dr.select(c < 0, pi_signed - a, a)
    angle_acos = dr.select(s < 0, -b, b)
    return dr.select(use_asin, angle_asin, angle_acos)
