"""The pose-recovery example converges (tiny images, few iterations)."""
from __future__ import annotations

from .conftest import load_example


def test_optimize_pose_example(tmp_path):
    out = load_example("optimize_pose").main(
        ["--res", "32", "--spp", "4", "--iterations", "30", "--lr", "0.03",
         "--output", str(tmp_path), "--quiet"])
    (t0, a0), (t1, a1) = out["errors"][0], out["errors"][-1]
    # From 0.39 away and 0.45 rad off to within a few hundredths.
    assert t1 < 0.2 * t0 and a1 < 0.25 * a0, out["errors"][-1]
    for name in ("losses.png", "translation_error.png", "angle_error.png", "before_after.png"):
        assert (tmp_path / name).stat().st_size > 0, name
