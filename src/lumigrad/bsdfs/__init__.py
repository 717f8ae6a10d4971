"""BSDF plugins: one small module each. Importing this package registers them."""
from contextlib import contextmanager
from typing import Any, Iterator

from .base import BSDF, BSDFSample
from .conductor import SmoothConductor
from .dielectric import SmoothDielectric
from .diffuse import Diffuse
from .plastic import SmoothPlastic
from .roughconductor import RoughConductor
from .roughdielectric import RoughDielectric
from .roughplastic import RoughPlastic
from .twosided import TwoSided
from .thindielectric import ThinDielectric
from .null import Null
from .mask import Mask
from .blendbsdf import BlendBSDF
from .bumpmap import BumpMap
from .normalmap import NormalMap
from .principled import Principled



@contextmanager
def frozen_sampling(*targets: Any) -> Iterator[None]:
    """Within the block, the BSDFs of ``targets`` (scenes, i.e. objects with a
    ``bsdfs`` list, or BSDFs) draw directions, lobe choices and pdfs from a
    detached snapshot of their parameters taken on entry, while ``eval`` and the
    sample weights use the current values (see ``_common.FreezableSampling``).

    Use it around finite-difference checks with common random numbers: without
    it, parameters that steer sampling (roughness, index of refraction of rough
    dielectrics) move the sampled directions, so the per-sample estimate of
    I(θ ± ε) is not the same function as the one AD differentiates (both are
    unbiased, but they agree only in expectation). Delta lobes always use the
    current parameters (their direction is not a sampling choice).
    """
    bsdfs: list = []
    for t in targets:
        items = getattr(t, "bsdfs", None)
        bsdfs += list(items) if items is not None else [t]
    for b in bsdfs:
        b.freeze_sampling()
    try:
        yield
    finally:
        for b in bsdfs:
            b.unfreeze_sampling()


__all__ = ["frozen_sampling", "BSDF", "BSDFSample", "Diffuse", "SmoothConductor", "RoughConductor",
           "SmoothDielectric", "RoughDielectric", "SmoothPlastic", "RoughPlastic", "TwoSided",
           "ThinDielectric", "Null", "Mask",
           "BlendBSDF", "BumpMap", "NormalMap", "Principled"]
