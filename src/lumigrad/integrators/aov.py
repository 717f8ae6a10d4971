"""The ``aov`` integrator: arbitrary output variables of the primary hit.

``aovs`` is Mitsuba's comma-separated list of ``name:type`` pairs, e.g.
``"dd:depth,nn:sh_normal,aa:albedo"``. Types and their channel counts:

=============  ========  =================================================
``depth``      1         distance along the camera ray (0 on a miss)
``position``   3         world-space hit position
``uv``         2         texture coordinates
``geo_normal`` 3         geometric normal (world)
``sh_normal``  3         shading normal (world)
``albedo``     3         the hit BSDF's albedo (diffuse colour)
``prim_index`` 1         global triangle index (-1... shown as 0 on a miss)
``shape_index`` 1        shape index (0 on a miss)
=============  ========  =================================================

The image has one channel per AOV component, in order; ``channel_names``
lists them (``dd.y``, ``nn.x``, ...). With a nested integrator (Mitsuba's
``<integrator type="aov"><integrator type="path"/></integrator>``), its
radiance comes first, as channels ``R, G, B`` (Mitsuba 3.9.1's layout). Pixel values are filter-weighted means
like the radiance images (so AOVs at silhouettes are blends).
"""
from __future__ import annotations

from typing import Any, Optional

import drjit as dr

from .. import backend as bk
from ..scene.schema import Param, register
from .base import BUDGET_PARAMS, SamplingIntegrator

_CHANNELS = {"depth": 1, "position": 3, "uv": 2, "geo_normal": 3, "sh_normal": 3,
             "albedo": 3, "prim_index": 1, "shape_index": 1}
_SUFFIX = {1: ("y",), 2: ("u", "v"), 3: ("x", "y", "z")}


@register
class AOVIntegrator(SamplingIntegrator):
    """Outputs geometric quantities of the first hit instead of radiance."""

    PLUGIN = ("integrator", "aov")
    PARAMS = {"aovs": Param("string", "dd:depth,nn:sh_normal,aa:albedo"),
              "integrator": Param("object", None, category="integrator",
                                  doc="a nested integrator whose radiance comes first "
                                      "(channels R, G, B), as in Mitsuba"),
              "sppe": BUDGET_PARAMS["sppe"]}
    #: the nested integrator may carry any name (Mitsuba's files name it freely)
    NAMED_CHILDREN = "integrator"

    def __init__(self, aovs: str = "dd:depth,nn:sh_normal,aa:albedo",
                 id: Optional[str] = None, sppe: Optional[int] = None,
                 integrator: Any = None, integrator_names: Any = None) -> None:
        super().__init__(id, sppe=sppe)
        if integrator is not None and (not isinstance(integrator, SamplingIntegrator) or
                                       hasattr(integrator, "aovs") or
                                       integrator.channels != 3):
            raise ValueError("aov integrator: the nested integrator must render radiance "
                             "(e.g. 'path' or 'direct')")
        #: nested radiance integrator (None: AOV channels only, as Mitsuba)
        self.integrator = integrator
        self.aovs: list[tuple[str, str]] = []
        for item in aovs.split(","):
            item = item.strip()
            if not item:
                continue
            if ":" not in item:
                raise ValueError(f"aov integrator: {item!r} is not of the form name:type")
            name, kind = (s.strip() for s in item.split(":", 1))
            if kind not in _CHANNELS:
                raise ValueError(f"aov integrator: unknown AOV type {kind!r} in {item!r}; "
                                 f"expected one of {', '.join(_CHANNELS)}")
            self.aovs.append((name, kind))
        if not self.aovs:
            raise ValueError("aov integrator: 'aovs' lists no output")
        self.channels = sum(_CHANNELS[k] for _, k in self.aovs)
        names = []
        if integrator is not None:
            self.channels += 3
            names = ["R", "G", "B"]
        for name, kind in self.aovs:
            names += [f"{name}.{s}" for s in _SUFFIX[_CHANNELS[kind]]]
        self.channel_names = names

    def sample(self, scene: Any, rng: Any, o: Any, d: Any, tmax: Any, active: Any,
               mode: str = "primal", delta_L: Any = None, L_primal: Any = None,
               camera: Any = None, first_prim: Any = None) -> Any:
        o, d, tmax = dr.detach(o), dr.detach(d), dr.detach(tmax)
        radiance: list[Any] = []
        if self.integrator is not None:
            L = self.integrator.sample(scene, rng, o, d, tmax, active, mode="primal")
            radiance = [L[0], L[1], L[2]]
        _, prim, _, _, hit = scene.ray_intersect_preliminary(o, d, tmax, active, coherent=True)
        if first_prim is not None:
            forced = active & (bk.UInt32(first_prim) != 0xFFFFFFFF)
            prim = dr.select(forced, bk.UInt32(first_prim), prim)
            hit = hit | forced
        si = scene.compute_interaction(o, d, prim, hit & active)
        hit = si.valid
        out: list[Any] = []
        for _, kind in self.aovs:
            if kind == "depth":
                out.append(dr.select(hit, si.t, 0.0))
            elif kind == "position":
                out += [dr.select(hit, si.p[i], 0.0) for i in range(3)]
            elif kind == "uv":
                out += [dr.select(hit, si.uv[i], 0.0) for i in range(2)]
            elif kind == "geo_normal":
                out += [dr.select(hit, si.n[i], 0.0) for i in range(3)]
            elif kind == "sh_normal":
                out += [dr.select(hit, si.sh_n[i], 0.0) for i in range(3)]
            elif kind == "albedo":
                alb = self._albedo(scene, si, hit)
                out += [dr.select(hit, alb[i], 0.0) for i in range(3)]
            elif kind == "prim_index":
                out.append(dr.select(hit, bk.Float(si.prim), 0.0))
            elif kind == "shape_index":
                out.append(dr.select(hit, bk.Float(si.shape), 0.0))
        return radiance + out

    @staticmethod
    def _albedo(scene: Any, si: Any, hit: Any) -> Any:
        bsdfs = scene.bsdfs
        idx = dr.gather(bk.UInt32, scene.prim_bsdf, si.prim, hit)
        if len(bsdfs) == 1:
            return bsdfs[0].albedo(si, hit)
        return dr.switch(idx, [b.albedo for b in bsdfs], si, hit)

    def render_backward(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("the aov integrator is not differentiable; render "
                                  "radiance with 'path' or 'direct' to differentiate")
