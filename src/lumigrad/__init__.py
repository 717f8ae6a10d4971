"""lumigrad: a differentiable renderer for Python, built on Dr.Jit."""
from __future__ import annotations

from . import backend
from .backend import set_variant, variant, variants

__version__ = "0.1.0"

backend.ensure()
backend._bind(backend.variant())  # re-export the array types at package level
