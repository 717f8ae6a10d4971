"""BSDF plugins: one small module each. Importing this package registers them."""
from .base import BSDF, BSDFSample
from .conductor import SmoothConductor
from .dielectric import SmoothDielectric
from .diffuse import Diffuse
from .plastic import SmoothPlastic
from .roughconductor import RoughConductor
from .roughdielectric import RoughDielectric
from .roughplastic import RoughPlastic
from .twosided import TwoSided

__all__ = ["BSDF", "BSDFSample", "Diffuse", "SmoothConductor", "RoughConductor",
           "SmoothDielectric", "RoughDielectric", "SmoothPlastic", "RoughPlastic", "TwoSided"]
