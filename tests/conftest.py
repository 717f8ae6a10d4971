"""Shared test settings: paths to ../shared and a small kernel-cache-friendly setup."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LUMIGRAD_SHARED", ROOT.parent / "shared"))
SCENES = SHARED / "scenes"
REFERENCE = SHARED / "reference"
EXAMPLES = ROOT / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (examples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    if not SCENES.exists():
        skip = pytest.mark.skip(reason=f"shared scenes not found at {SCENES}")
        for item in items:
            if "shared" in item.keywords:
                item.add_marker(skip)
