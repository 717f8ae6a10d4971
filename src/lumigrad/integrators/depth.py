"""The ``depth`` integrator (Mitsuba 3's plugin): the distance to the first hit.

Each camera ray returns the distance ``t`` from its origin (on the near plane)
to the first surface it hits, 0 where it escapes, in all three channels (grey),
as Mitsuba 3.9.1 does; pixels are filter-weighted means, so silhouettes blend
with 0. It is the ``aov`` integrator's ``depth`` output shaped as an RGB image;
not differentiable (as ``aov``).
"""
from __future__ import annotations

from typing import Any, Optional

from ..scene.schema import register
from .aov import AOVIntegrator


@register
class DepthIntegrator(AOVIntegrator):
    """Distance to the first hit, as a grey image."""

    PLUGIN = ("integrator", "depth")
    PARAMS: dict = {}
    NAMED_CHILDREN = None

    def __init__(self, id: Optional[str] = None) -> None:
        super().__init__(aovs="d:depth", id=id)
        self.channels = 3
        self.channel_names = ["R", "G", "B"]

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        d = super().sample(*args, **kwargs)[0]
        return [d, d, d]
