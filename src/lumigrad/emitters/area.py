"""Area light (``area``): a mesh that emits radiance from its front side.

.. math::
    L_e(x, \\omega) = \\begin{cases} L(x) & \\langle n(x), \\omega\\rangle > 0 \\\\
                                   0 & \\text{otherwise} \\end{cases}

where ``L`` is the ``radiance`` texture evaluated at the hit point's uv and
``n`` the shading normal oriented by the triangle winding (one-sided, as in
Mitsuba 3). The scene samples points on the emitter's ``shape`` itself, so this
plugin only evaluates radiance; the direction-sampling methods of infinite
emitters return empty samples here.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import drjit as dr

from .. import backend as bk
from ..scene.schema import Param, register
from ._util import as_mask, as_texture, lane_count, texture_parameters
from .base import DirectionSample, Emitter


@register
class AreaEmitter(Emitter):
    """One-sided diffuse area light attached to a mesh (``emitter.shape``)."""

    PLUGIN = ("emitter", "area")
    PARAMS = {
        "radiance": Param("texture", default=1.0, min=0.0, emission=True,
                          doc="emitted radiance (W / (m^2 sr)), a colour or texture"),
        "sampling_weight": Param("float", default=1.0, min=0.0,
                                 doc="relative weight when choosing an emitter"),
    }
    is_area = True

    def __init__(self, radiance: Any = 1.0, sampling_weight: float = 1.0,
                 id: str | None = None) -> None:
        super().__init__(id)
        self.radiance = as_texture(radiance, f"area emitter '{id}': radiance")
        self.sampling_weight = float(sampling_weight)
        #: the Mesh this emitter is attached to (set by the scene loader)
        self.shape: Any = None

    def eval(self, si: Any, active: Any = True) -> Any:
        """Radiance leaving ``si`` towards ``si.wi`` (zero on the back side)."""
        n = lane_count(si.wi)
        active = as_mask(active, n) & (si.wi[2] > 0)
        value = bk.Array3f(self.radiance.eval(si, active))
        return dr.select(active, value, 0.0)

    # Area lights are sampled by the scene (points on triangles); these
    # direction-only queries describe a light that cannot be reached that way.
    def sample_direction(self, p: Any, sample2: Any, active: Any = True) -> DirectionSample:
        n = lane_count(p, sample2)
        zero = dr.zeros(bk.Float, n)
        return DirectionSample(d=bk.Array3f(0.0, 0.0, 1.0) + dr.zeros(bk.Array3f, n),
                               dist=zero, pdf=zero, weight=dr.zeros(bk.Array3f, n),
                               delta=dr.full(bk.Bool, False, n))

    def eval_direction(self, d: Any, active: Any = True) -> Any:
        return dr.zeros(bk.Array3f, lane_count(d))

    def pdf_direction(self, p: Any, d: Any, active: Any = True) -> Any:
        return dr.zeros(bk.Float, lane_count(p, d))

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        yield from texture_parameters("radiance", self.radiance)

    def __repr__(self) -> str:
        return f"AreaEmitter(id={self.id!r}, radiance={self.radiance!r})"
