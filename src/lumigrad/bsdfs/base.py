"""The BSDF interface used by the integrators.

All directions are unit vectors in the local shading frame of the interaction
(normal = +Z): ``si.wi`` points towards where light leaves to (the camera side),
``wo`` towards where light arrives from (the direction sampled or the light).
Conventions follow Mitsuba 3:

* ``eval(si, wo, active)`` returns ``f(wi, wo) * |cos θ_o|`` (the cosine
  foreshortening included), zero for delta lobes.
* ``pdf(si, wo, active)``: solid-angle density of ``sample`` producing ``wo``
  (zero for delta lobes).
* ``sample(si, sample1, sample2, active)`` returns a :class:`BSDFSample`
  whose ``weight`` is ``eval/pdf`` for smooth lobes, and the lobe's throughput
  (e.g. the Fresnel-weighted choice) for delta lobes.

Everything is written with Dr.Jit arrays of the active variant and must be
differentiable in the BSDF's parameters (textures included) by ordinary AD.
One-sided materials return zero when ``cos θ_i <= 0`` or (for reflection)
``cos θ_o <= 0``, as Mitsuba does; the ``twosided`` plugin flips the frame.

BSDFs and their textures read only ``si.wi`` and ``si.uv`` of the interaction:
the reverse pass replays material derivatives from records of just these
(``integrators/replay.py``); a plugin that needs more must be added there.
The exception: a BSDF with the attribute ``needs_tangents`` (``bumpmap``,
``normalmap``, an anisotropic ``principled``) also reads ``si.dp_du``/``si.dp_dv``
and ``si.n``; the scene then computes the tangents (and aligns the shading frame
with ``∂p/∂u``, as Mitsuba does) and the replay shades such paths again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator


@dataclass
class BSDFSample:
    wo: Any        # Array3f (local)
    pdf: Any       # Float (solid angle; for delta lobes the discrete probability)
    weight: Any    # Color3f: f*cos/pdf (smooth) or the delta lobe's throughput
    delta: Any     # Bool: this sample comes from a delta (specular) lobe
    eta: Any       # Float: relative IOR crossed (1 for reflection)


class BSDF:
    """Base class. Subclasses set ``PLUGIN`` and ``PARAMS`` (see scene/schema.py)."""

    #: True when some lobe is a Dirac delta (mirror, glass)
    has_delta: bool = False
    #: True when every lobe is a delta: next-event estimation is pointless
    delta_only: bool = False
    #: True when some lobe is a glossy (microfacet) lobe about the mirror
    #: direction: geometry derivatives draw emitter points by it too and pair
    #: them antithetically (``integrators/nee.py``)
    glossy: bool = False

    def __init__(self, id: str | None = None) -> None:
        self.id = id

    def sample(self, si: Any, sample1: Any, sample2: Any, active: Any) -> BSDFSample:
        raise NotImplementedError

    def eval(self, si: Any, wo: Any, active: Any) -> Any:
        raise NotImplementedError

    def pdf(self, si: Any, wo: Any, active: Any) -> Any:
        raise NotImplementedError

    def eval_pdf(self, si: Any, wo: Any, active: Any) -> tuple[Any, Any]:
        return self.eval(si, wo, active), self.pdf(si, wo, active)

    def albedo(self, si: Any, active: Any) -> Any:
        """Diffuse-like albedo for the ``aov`` integrator (Color3f)."""
        raise NotImplementedError

    def lobe_roughness(self) -> float:
        """A typical microfacet roughness ``α`` of the glossy lobe (its textures'
        means; the sharpest of nested BSDFs'), ``inf`` where none is glossy."""
        return float("inf")

    def freeze_sampling(self) -> None:
        """Sample with a detached snapshot of the current parameters until
        :meth:`unfreeze_sampling` (see ``lumigrad.bsdfs.frozen_sampling``).
        No-op for BSDFs whose sampling does not depend on their parameters."""

    def unfreeze_sampling(self) -> None:
        """Undo :meth:`freeze_sampling`."""

    def parameters(self) -> Iterator[tuple[str, Any, Callable[[Any], None] | None]]:
        """Yield ``(key_suffix, value, setter)`` for each scene parameter.

        ``key_suffix`` as Mitsuba names it (``'reflectance.value'``,
        ``'alpha.value'``, ``'eta'``, ...); ``setter(new_value)`` stores a new
        value (None: read-only). Nested textures/BSDFs yield theirs with a
        prefix (``'nested.reflectance.value'``, ``'reflectance.data'``).
        """
        return iter(())
