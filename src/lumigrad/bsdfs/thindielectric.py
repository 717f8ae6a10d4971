"""The thin dielectric: a thin slab of glass (a window pane, a soap bubble)."""
from __future__ import annotations

from typing import Any

import drjit as dr

from .. import backend as bk
from ..core.frame import reflect
from ..core.fresnel import fresnel_dielectric
from ..scene.schema import register
from ._common import full_bool, full_float, mask, safe, width
from .base import BSDFSample
from .dielectric import SmoothDielectric


def thin_slab_reflectance(cos_theta_i: Any, eta: Any) -> Any:
    """Reflectance of a thin parallel slab of relative index ``eta``, summed over
    all internal reflections.

    With ``R = F(|cos θ_i|, η)`` the reflectance of one interface (equal on
    both interfaces of a parallel slab: the angle inside is the same) and
    ``T = 1 - R``, light reflected ``2k + 1`` times inside leaves on the front
    with ``T R^(2k+1) T``, so

        R' = R + T² R Σ_k R^(2k) = R + T² R / (1 - R²) = 2R / (1 + R),

    and the slab transmits ``T' = 1 - R' = (1 - R) / (1 + R)`` straight
    through (the two refractions cancel). Mitsuba 3 docs, ``thindielectric``.
    """
    f = fresnel_dielectric(dr.abs(cos_theta_i), eta)[0]
    return 2.0 * f / (1.0 + f)


@register
class ThinDielectric(SmoothDielectric):
    """A thin dielectric slab: delta reflection with probability ``R'`` (see
    :func:`thin_slab_reflectance`) and delta transmission ``wo = -wi`` (no
    refraction: the ray leaves the slab parallel to where it entered) with
    ``1 - R'``. No radiance scaling (the ray ends on the side it started from
    in index). Both sides behave alike.

    As in ``dielectric`` the lobe choice uses the detached ``R'`` and the
    weights are ``ρ_r R'/R̂'`` and ``ρ_t (1-R')/(1-R̂')``, so their derivative
    includes ``dR'/dη`` (while sampling is frozen, ``R̂'`` is that of the
    frozen ``η``: finite differences with common random numbers then see a
    continuous estimate). Keys: ``eta`` (differentiable),
    ``specular_reflectance.value``, ``specular_transmittance.value``.
    """

    PLUGIN = ("bsdf", "thindielectric")
    # PARAMS, the constructor, eval/pdf/albedo and parameters() are dielectric's.
    has_delta = True
    delta_only = True
    #: the transmission is a straight pass-through (Mitsuba flags it "null")
    null_lobe = True

    def sample(self, si: Any, sample1: Any, sample2: Any, active: Any = True) -> BSDFSample:
        n = width(sample1, sample2, si.wi)
        wi = si.wi
        active = mask(active, n) & (wi[2] != 0)
        r = thin_slab_reflectance(wi[2], self.eta)
        # The choice: detached R', or R' of a frozen η (``frozen_sampling``).
        p = dr.detach(r) if self._frozen_eta is None else \
            thin_slab_reflectance(wi[2], self._frozen_eta)
        sel_r = sample1 <= p
        wo = dr.select(sel_r, reflect(wi), -wi)
        ok_r = active & sel_r & (p > 0)
        ok_t = active & ~sel_r & (p < 1)
        w_r = self.specular_reflectance.eval(si, ok_r) * (r / safe(p, ok_r))
        w_t = self.specular_transmittance.eval(si, ok_t) * ((1.0 - r) / safe(1.0 - p, ok_t))
        ok = ok_r | ok_t
        return BSDFSample(wo=wo, pdf=dr.select(ok, dr.select(sel_r, p, 1.0 - p), 0.0),
                          weight=dr.select(ok, dr.select(sel_r, w_r, w_t), 0.0),
                          delta=full_bool(True, n), eta=full_float(1.0, n))

    _frozen_eta: Any = None

    def freeze_sampling(self) -> None:
        self._frozen_eta = bk.Float(dr.detach(self.eta))

    def unfreeze_sampling(self) -> None:
        self._frozen_eta = None

    def __repr__(self) -> str:
        return f"ThinDielectric(eta={float(dr.detach(self.eta)[0]):.4g})"
