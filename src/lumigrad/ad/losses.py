"""Image losses (differentiable Dr.Jit expressions returning a scalar ``Float``)."""
from __future__ import annotations

from typing import Any

import drjit as dr


def _check(image: Any, target: Any) -> None:
    s1 = tuple(getattr(image, "shape", ()))
    s2 = tuple(getattr(target, "shape", ()))
    if s1 and s2 and s1 != s2:
        raise ValueError(f"loss: image shape {s1} differs from target shape {s2}")


def l1(image: Any, target: Any) -> Any:
    """Mean absolute error."""
    _check(image, target)
    return dr.mean(dr.abs(image - target), axis=None)


def l2(image: Any, target: Any) -> Any:
    """Mean squared error."""
    _check(image, target)
    return dr.mean(dr.square(image - target), axis=None)


mse = l2


def rmse(image: Any, target: Any) -> Any:
    """Root mean squared error (PSDR's image loss)."""
    return dr.sqrt(l2(image, target))
