"""The normal map: a nested BSDF shaded with normals read from a texture."""
from __future__ import annotations

from typing import Any, Callable, Iterator

from .. import backend as bk
from ..scene.schema import Param, register
from ..textures.constant import as_texture, texture_parameters
from ._common import where_prefix
from ._perturbed import PERTURB_PARAMS, PerturbedFrameBSDF, local_tangent_frame
from .base import BSDF


@register
class NormalMap(PerturbedFrameBSDF):
    """Normal mapping (Mitsuba 3 docs, ``normalmap``): the RGB value ``c`` of
    the ``normalmap`` texture at ``uv`` encodes a tangent-space normal
    ``n_ts = 2c - 1`` in the frame ``(s, t, n)`` of the shading normal ``n``
    and ``s`` = ``∂p/∂u`` made orthogonal to it; the nested BSDF is shaded with
    that normal (see :class:`~lumigrad.bsdfs._perturbed.PerturbedFrameBSDF`
    for the frame, the options and how directions are handled). The texture should be read as linear data (``raw`` bitmap).
    Keys: ``normalmap.*`` (e.g. ``normalmap.data``), ``nested_bsdf.*``.
    """

    PLUGIN = ("bsdf", "normalmap")
    PARAMS = {
        "normalmap": Param("texture", required=True,
                           doc="tangent-space normals as RGB = (n + 1) / 2 (a raw bitmap)"),
        "bsdf": Param("object", category="bsdf", required=True, doc="the BSDF to shade"),
        **PERTURB_PARAMS,
    }

    def __init__(self, normalmap: Any, bsdf: BSDF, flip_invalid_normals: bool = True,
                 use_shadowing_function: bool = True, id: str | None = None) -> None:
        where = where_prefix("normalmap", id)
        super().__init__(bsdf, where, flip_invalid_normals, use_shadowing_function, id)
        self.normalmap = as_texture(normalmap, f"{where}: 'normalmap'")

    def perturbation(self, si: Any, active: Any) -> tuple[Any, Any]:
        _, _, s, t = local_tangent_frame(si)
        n_ts = self.normalmap.eval(si, active) * 2.0 - 1.0
        return s * n_ts[0] + t * n_ts[1] + bk.Array3f(0, 0, 1) * n_ts[2], s

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield from self.nested_parameters()
        yield from texture_parameters("normalmap", self.normalmap)

    def __repr__(self) -> str:
        return f"NormalMap({self.normalmap!r}, {self.nested!r})"
