"""The ``moment`` integrator: nested integrators' images and their second moments.

Mitsuba 3's ``moment`` runs one or more nested integrators on the same camera
rays and returns, per pixel, the mean of each one's per-sample output and the
mean of its *square*; from both, a pixel's sample variance is
``m2 − m1²`` (times ``spp / (spp − 1)`` for the unbiased estimate).

lumigrad returns the channels in Mitsuba 3.9.1's order (checked against its
``aov_names()``), so images are interchangeable:

1. ``R, G, B``: the first nested integrator's radiance (linear sRGB);
2. for every nested integrator ``name``, in order: its AOV channels (an ``aov``
   integrator's ``dd.y``, ``nn.x``, ...), then its radiance converted to CIE XYZ
   (``name.X, name.Y, name.Z``: Mitsuba stores colour AOVs as XYZ; an ``aov``
   integrator has no radiance, so these are 0);
3. the same channels again as second moments, ``m2_name...``: the pixel mean of
   the per-sample squares of the values in 2.

Pixel means are filter-weighted as in every lumigrad image: each sample lands in
one pixel with a position drawn from the reconstruction filter, so ``m2`` is
``E_f[x²]`` with the filter's density, as Mitsuba's splatting film gives in
expectation. ``channel_names`` lists the channels.

Second moments are not linear in the scene's parameters and Mitsuba does not
differentiate this integrator either: derivative passes raise an error.
"""
from __future__ import annotations

from typing import Any, Optional

import drjit as dr

from .. import backend as bk
from ..scene.schema import Param, register
from .base import SamplingIntegrator

#: linear sRGB -> CIE XYZ (Rec. 709 primaries, D65 white; IEC 61966-2-1)
SRGB_TO_XYZ = ((0.412453, 0.357580, 0.180423),
               (0.212671, 0.715160, 0.072169),
               (0.019334, 0.119193, 0.950227))


@register
class MomentIntegrator(SamplingIntegrator):
    """Images and second moments of nested integrators (see the module docstring)."""

    PLUGIN = ("integrator", "moment")
    PARAMS = {
        "integrators": Param("objects", category="integrator",
                             doc="the nested integrators (any names)"),
    }
    #: nested integrators may carry any name (Mitsuba: the name labels their channels)
    NAMED_CHILDREN = "integrators"

    def __init__(self, integrators: Optional[list] = None,
                 integrators_names: Optional[list] = None, id: Optional[str] = None) -> None:
        super().__init__(id)
        nested = list(integrators or [])
        if not nested:
            raise ValueError("the moment integrator needs at least one nested integrator")
        for n in nested:
            if not isinstance(n, SamplingIntegrator):
                raise ValueError(f"moment: nested object {n!r} is not an integrator")
            if isinstance(n, MomentIntegrator):
                raise ValueError("moment: a moment integrator cannot be nested in another")
        names = list(integrators_names or [None] * len(nested))
        self.integrators = nested
        self.names = [nm or getattr(n, "id", None) or f"integrator{i}"
                      for i, (n, nm) in enumerate(zip(nested, names))]
        first: list[str] = []
        for n, nm in zip(nested, self.names):
            first += [f"{nm}.{c}" for c in self._aov_names(n)]
            first += [f"{nm}.X", f"{nm}.Y", f"{nm}.Z"]
        self.channel_names = ["R", "G", "B"] + first + [f"m2_{c}" for c in first]
        self.channels = len(self.channel_names)

    @staticmethod
    def _aov_names(n: Any) -> list:
        if not hasattr(n, "aovs"):
            return []
        names = list(getattr(n, "channel_names", []))
        return names[3:] if getattr(n, "integrator", None) is not None else names

    def _outputs(self, n: Any, L: Any) -> tuple[list, Any]:
        """(AOV channels, radiance Array3f) of one nested integrator's sample."""
        if hasattr(n, "aovs"):
            if getattr(n, "integrator", None) is not None:  # radiance first, then AOVs
                return [L[c] for c in range(3, len(L))], bk.Array3f(L[0], L[1], L[2])
            aov = [L[c] for c in range(len(L))]      # AOVs only: no radiance
            zero = dr.zeros(bk.Float, dr.width(aov[0]))
            return aov, bk.Array3f(zero, zero, zero)
        return [], bk.Array3f(L[0], L[1], L[2])

    def sample(self, scene: Any, rng: Any, o: Any, d: Any, tmax: Any, active: Any,
               mode: str = "primal", delta_L: Any = None, L_primal: Any = None,
               camera: Any = None, first_prim: Any = None) -> Any:
        if mode != "primal":
            self._not_differentiable()
        first, rgb0 = [], None
        for n in self.integrators:
            # (the nested integrators draw from the same stream one after another,
            # as Mitsuba's share one sampler)
            L = n.sample(scene, rng, o, d, tmax, active, mode="primal", first_prim=first_prim)
            aov, rgb = self._outputs(n, L)
            if rgb0 is None:
                rgb0 = rgb
            xyz = [rgb[0] * m[0] + rgb[1] * m[1] + rgb[2] * m[2] for m in SRGB_TO_XYZ]
            first += aov + xyz
        out = [rgb0[0], rgb0[1], rgb0[2]] + first + [dr.square(v) for v in first]
        return out

    def check_scene(self, scene: Any) -> None:
        """Scenes a nested integrator refuses are refused here too."""
        for n in self.integrators:
            check = getattr(n, "check_scene", None)
            if check is not None:
                check(scene)

    def _not_differentiable(self) -> None:
        raise NotImplementedError("the moment integrator is not differentiable (second "
                                  "moments are not linear in the scene); differentiate its "
                                  "nested integrator instead")

    def render_forward(self, *args: Any, **kwargs: Any) -> Any:
        self._not_differentiable()

    def render_backward(self, *args: Any, **kwargs: Any) -> None:
        self._not_differentiable()
