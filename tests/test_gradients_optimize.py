"""The optimisation example recovers the Cornell box's red wall colour (tiny run)."""
from __future__ import annotations

import numpy as np

from .conftest import load_example





def test_optimize_cbox_wall_recovers_the_colour(tmp_path, capsys):
    example = load_example("optimize_cbox_wall")
    out = example.main(["--res", "16", "--spp", "4", "--iterations", "30",
                        "--output", str(tmp_path), "--quiet"])
    errors, losses = out["errors"], out["losses"]
    assert len(losses) == 30 and np.isfinite(losses).all()
    # start (0.01, 0.2, 0.9) vs truth (0.570, 0.043, 0.044): squared error 1.07
    assert errors[0] > 1.0
    # the squared colour error falls at least 20-fold (typically ~100-fold)
    assert errors[-1] < errors[0] / 20, errors
    np.testing.assert_allclose(out["final"], out["truth"], atol=0.15)
    assert np.all((out["final"] >= 0.0) & (out["final"] <= 1.0))  # clamped
    for name in ("losses.png", "parameter_error.png", "before_after.png", "reference.png",
                 "initial.png", "final.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    text = capsys.readouterr().out
    assert "loss: first" in text and "red wall colour" in text
