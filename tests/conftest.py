"""Shared test settings: paths to the test data shipped in ``tests/data`` and
small helpers.

The tests need nothing beside the clone: the Cornell box scene and its reference renders
(copies of ``../shared/scenes/cbox.xml`` and ``../shared/reference/cbox_256*.npy``) live in
``tests/data``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import drjit as dr
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
SCENES = DATA / "scenes"
REFERENCE = DATA / "reference"
EXAMPLES = ROOT / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def grad_leaves(params: Any, keys: list) -> dict:
    """Replace each parameter ``keys`` by a fresh grad-enabled copy of its current
    value (a Transform4f by one over a fresh matrix) and ``update()``; returns the
    leaves by key."""
    import lumigrad as lg
    out = {}
    for k in keys:
        v = params[k]
        if isinstance(v, lg.Transform4f):
            m = lg.Matrix4f(dr.detach(v.matrix))
            dr.enable_grad(m)
            params[k] = lg.Transform4f(m)
            out[k] = m
        else:
            leaf = type(v)(dr.detach(v))
            dr.enable_grad(leaf)
            params[k] = leaf
            out[k] = leaf
    params.update()
    return out


def flat(x: Any) -> np.ndarray:
    """A Dr.Jit array or tensor as a flat float64 numpy array."""
    return np.array(x.array if dr.is_tensor_v(x) else dr.ravel(x), dtype=np.float64)


