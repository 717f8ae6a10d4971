"""The ``lumigrad`` command line, run in-process through ``cli.main``."""
from __future__ import annotations

import numpy as np
import pytest

import lumigrad as lg
from lumigrad.cli import main

from .conftest import SCENES


def test_demo_writes_the_image_and_the_derivative(tmp_path) -> None:
    assert main(["demo", "-o", str(tmp_path), "--res", "16", "--spp", "2"]) == 0
    for name in ("cbox.png", "cbox.exr", "cbox_d_green_reflectance.png",
                 "cbox_d_green_reflectance.exr"):
        assert (tmp_path / name).stat().st_size > 0
    image = lg.read_image(tmp_path / "cbox.exr")
    assert image.shape == (16, 16, 3) and np.isfinite(image).all() and image.mean() > 0.01
    grad = lg.read_image(tmp_path / "cbox_d_green_reflectance.exr")
    # the green wall's colour brightens the image: a positive derivative overall
    assert grad.shape == (16, 16, 3) and grad.sum() > 0


def test_render_with_defines(tmp_path) -> None:
    out = tmp_path / "cbox.exr"
    assert main(["render", str(SCENES / "cbox.xml"), "-o", str(out), "--spp", "2",
                 "-D", "res=24"]) == 0
    assert lg.read_image(out).shape == (24, 24, 3)


def test_derivative_and_check(tmp_path, capsys) -> None:
    out = tmp_path / "d.png"
    assert main(["derivative", "cbox", "--param", "red.reflectance.value", "-o", str(out),
                 "--spp", "2", "-D", "res=16"]) == 0
    assert out.exists() and (tmp_path / "d.exr").exists()
    assert main(["check", "cbox", "--param", "light.emitter.radiance.value", "--spp", "2",
                 "-D", "res=16"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out


def test_params_lists_keys(capsys) -> None:
    assert main(["params", "cbox", "-D", "res=8"]) == 0
    out = capsys.readouterr().out
    assert "green.reflectance.value" in out and "sensor.to_world" in out


@pytest.mark.parametrize("argv", [
    ["render", "/nonexistent/scene.xml", "-o", "x.png"],
    ["render", "cbox", "-o", "x.png", "--spp", "0"],
    ["derivative", "cbox", "--param", "no.such.key", "-o", "x.png", "-D", "res=8"],
])
def test_bad_input_exits_with_a_message(argv, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "lumigrad: error:" in capsys.readouterr().err
