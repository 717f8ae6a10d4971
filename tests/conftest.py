"""Shared test settings: paths to ../shared and a small kernel-cache-friendly setup."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LUMIGRAD_SHARED", ROOT.parent / "shared"))
SCENES = SHARED / "scenes"
REFERENCE = SHARED / "reference"


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    if not SCENES.exists():
        skip = pytest.mark.skip(reason=f"shared scenes not found at {SCENES}")
        for item in items:
            if "shared" in item.keywords:
                item.add_marker(skip)
