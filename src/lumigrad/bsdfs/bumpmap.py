"""The bump map: a nested BSDF shaded with normals from a height field."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..scene.schema import Param, register
from ..textures.base import Texture
from ..textures.constant import texture_parameters
from ._common import to_scalar_float, where_prefix
from ._perturbed import PERTURB_PARAMS, PerturbedFrameBSDF, local_tangent_frame
from .base import BSDF

#: Half-width of the central difference of the height in uv: this fraction of
#: a texel of a bitmap (the bilinear interpolant is linear in each coordinate
#: inside a texel, so the difference is exact there), or of the uv unit.
_FD_TEXEL = 1.0 / 64.0
_FD_UV = 1e-4


def height_gradient(tex: Texture, si: Any, active: Any) -> tuple[Any, Any]:
    """``(∂h/∂u, ∂h/∂v)`` of the scalar texture ``h = tex.eval_1`` at ``si.uv``,
    by central differences in uv (differentiable in the texture's parameters);
    zero for constant and nearest-filtered textures, as in Mitsuba."""
    if tex.is_constant() or getattr(tex, "filter_type", None) == "nearest":
        zero = dr.zeros(bk.Float, dr.width(si.uv))   # piecewise constant: no slope (Mitsuba)
        return zero, zero
    res = getattr(tex, "resolution", None)
    step = _FD_UV if res is None else _FD_TEXEL / float(max(res()))
    # (a bitmap's to_uv may scale uv: differences stay a fraction of a texel
    # for moderate scales)
    uv = si.uv

    def h(du: float, dv: float) -> Any:
        return tex.eval_1(dataclasses.replace(si, uv=bk.Array2f(uv[0] + du, uv[1] + dv)), active)

    inv = 0.5 / step
    return (h(step, 0.0) - h(-step, 0.0)) * inv, (h(0.0, step) - h(0.0, -step)) * inv


@register
class BumpMap(PerturbedFrameBSDF):
    """Bump mapping (Blinn 1978; Mitsuba 3 docs, ``bumpmap``): the surface is
    displaced by ``scale · h(u, v)`` along the shading normal ``n``, where
    ``h`` is the nested (scalar) texture. To first order the tangents become

        ∂p'/∂u = ∂p/∂u + n (scale ∂h/∂u - n·∂p/∂u),   (same for v)

    and the nested BSDF is shaded with ``n' = normalize(∂p'/∂u × ∂p'/∂v)``,
    flipped to the side of the geometric normal (see
    :class:`~lumigrad.bsdfs._perturbed.PerturbedFrameBSDF` for the frame, the
    options and how directions are handled).
    ``∂h/∂(u, v)`` is a central difference in uv (:func:`height_gradient`).
    Keys: ``scale`` (differentiable), ``nested_texture.*``, ``nested_bsdf.*``.
    """

    PLUGIN = ("bsdf", "bumpmap")
    PARAMS = {
        "texture": Param("object", category="texture", required=True,
                         # (Mitsuba takes a nested texture under any name; these are
                         # the names found in public scenes and exporters)
                         aliases=("arbitrary", "bumpmap", "height", "map", "bump",
                                  "nested_texture", "displacement", "normalmap",
                                  "bump_texture", "heightmap", "height_map"),
                         doc="the height field h(u, v) (a scalar texture; any name)"),
        "scale": Param("float", default=1.0, doc="height multiplier"),
        "bsdf": Param("object", category="bsdf", required=True, doc="the BSDF to shade"),
        **PERTURB_PARAMS,
    }

    def __init__(self, texture: Texture, bsdf: BSDF, scale: float = 1.0,
                 flip_invalid_normals: bool = True, use_shadowing_function: bool = True,
                 id: str | None = None) -> None:
        where = where_prefix("bumpmap", id)
        super().__init__(bsdf, where, flip_invalid_normals, use_shadowing_function, id)
        if not isinstance(texture, Texture):
            raise TypeError(f"{where}: 'texture' must be a texture plugin, got "
                            f"{type(texture).__name__}")
        kind = getattr(type(texture), "PLUGIN", ("", ""))[1]
        if kind == "checkerboard":
            raise ValueError(f"{where}: the height texture 'checkerboard' has no gradient (Mitsuba "
                             "3 refuses it too); use a 'bitmap' height map")
        self.texture = texture
        self._where = where
        self.scale = to_scalar_float(scale, f"{where}: 'scale'")

    def _set_scale(self, value: Any) -> None:
        self.scale = to_scalar_float(value, f"{self._where}: 'scale'")

    def perturbation(self, si: Any, active: Any) -> tuple[Any, Any]:
        dpdu, dpdv, s, _ = local_tangent_frame(si)
        gu, gv = height_gradient(self.texture, si, active)
        z = bk.Array3f(0, 0, 1)
        n = dr.cross(dpdu + z * (self.scale * gu - dpdu[2]), dpdv + z * (self.scale * gv - dpdv[2]))
        n_geo = si.to_local(si.n)
        return dr.select(dr.dot(n, n_geo) < 0, -n, n), s

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield from self.nested_parameters()
        yield from texture_parameters("nested_texture", self.texture)
        yield "scale", self.scale, self._set_scale

    def __repr__(self) -> str:
        return f"BumpMap({self.texture!r}, scale={float(dr.detach(self.scale)[0]):.4g}, " \
               f"{self.nested!r})"
