"""Bad input at render time gets a clear Python exception naming what is wrong
(never a crash inside a kernel, never a silently wrong image), and a rejected
update leaves the scene as it was."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lumigrad as lg

from .test_render_support import diffuse, rgb, sensor_dict


def _scene(with_sensor: bool = True) -> lg.Scene:
    d = {
        "type": "scene",
        "plane": {"type": "rectangle", "bsdf": diffuse(0.5)},
        "env": {"type": "constant", "radiance": rgb(1.0)},
        "integrator": {"type": "path", "max_depth": 3},
    }
    if with_sensor:
        d["sensor"] = sensor_dict((0, 0, 3), (0, 0, 0), fov=40, width=8, height=8)
    return lg.load_dict(d)


@pytest.fixture(scope="module")
def scene() -> lg.Scene:
    return _scene()


@pytest.mark.parametrize("spp", [0, -4, 0.5])
def test_spp_must_be_positive(scene: lg.Scene, spp: float) -> None:
    # (a non-integer is a TypeError, a non-positive integer a ValueError)
    with pytest.raises((ValueError, TypeError), match="spp"):
        lg.render(scene, spp=spp)


def test_spp_grad_must_be_positive(scene: lg.Scene) -> None:
    with pytest.raises(ValueError, match="spp_grad"):
        lg.render(scene, spp=1, spp_grad=0)


def test_numpy_integers_are_accepted(scene: lg.Scene) -> None:
    img = lg.render(scene, spp=np.int64(2), seed=np.int32(3))
    np.testing.assert_array_equal(np.array(img), np.array(lg.render(scene, spp=2, seed=3)))


@pytest.mark.parametrize("index", [1, 7, -1])
def test_sensor_index_out_of_range(scene: lg.Scene, index: int) -> None:
    with pytest.raises(IndexError, match=f"sensor index {index} out of range"):
        lg.render(scene, sensor=index, spp=1)


def test_scene_without_sensor() -> None:
    scene = _scene(with_sensor=False)
    assert len(scene.sensors) == 0
    with pytest.raises(ValueError, match="no sensor"):
        lg.render(scene, spp=1)


@pytest.mark.parametrize("kwargs,name", [
    ({"sensor": "sensor_that_does_not_exist"}, "sensor"),
    ({"integrator": "path"}, "integrator"),
    ({"params": {"plane.bsdf.reflectance.value": 0.5}}, "params"),
    ({"seed": 2 ** 70}, "seed"),
])
def test_wrong_argument_types_name_the_argument(scene: lg.Scene, kwargs: dict,
                                                name: str) -> None:
    """A string where a sensor/integrator object is expected, a plain dict instead
    of ``traverse(scene)``, a seed that does not fit: a TypeError/ValueError that
    names the argument, not an AttributeError from deep inside the renderer."""
    with pytest.raises((TypeError, ValueError, KeyError, IndexError, OverflowError),
                       match=name):
        lg.render(scene, spp=1, **kwargs)


def test_render_a_path_instead_of_a_scene() -> None:
    with pytest.raises((TypeError, ValueError), match="scene"):
        lg.render("cbox.xml", spp=1)


def test_unknown_integrator_plugin_in_xml(tmp_path: Path) -> None:
    xml = tmp_path / "bad.xml"
    xml.write_text('<scene version="3.0.0">\n'
                   '  <shape type="rectangle"/>\n'
                   '  <integrator type="pathtracer"/>\n'
                   '</scene>\n')
    with pytest.raises(lg.SceneLoadError, match="pathtracer") as info:
        lg.load_file(xml)
    msg = str(info.value)
    assert "bad.xml:3" in msg           # file and line
    assert "path" in msg and "direct" in msg   # the known integrators


@pytest.mark.parametrize("integrator", [
    {"type": "path", "max_depth": 0},
    {"type": "path", "max_depth": -2},
    {"type": "path", "rr_depth": 0},
    {"type": "aov", "aovs": "d:dept"},
])
def test_bad_integrator_parameters(integrator: dict) -> None:
    with pytest.raises(lg.SceneLoadError, match="integrator"):
        lg.load_dict({"type": "scene", "plane": {"type": "rectangle"},
                      "integrator": integrator})


# ---------------------------------------------------------------------------------
# Bad parameter values
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad_value", [np.nan, np.inf, 1e39])  # 1e39 overflows float32
def test_non_finite_vertex_is_rejected_and_the_scene_is_unchanged(bad_value: float) -> None:
    scene = _scene()
    before = np.array(lg.render(scene, spp=2, seed=1))
    params = lg.traverse(scene)
    v = np.array(params["plane.vertex_positions"])
    bad = v.astype(np.float64)
    bad[4] = bad_value
    # (1e39 becomes inf when converted to float32: numpy warns about the overflow)
    with pytest.raises(ValueError, match="plane"), np.errstate(over="ignore"):
        params["plane.vertex_positions"] = bad
        params.update()
    np.testing.assert_array_equal(np.array(lg.render(scene, spp=2, seed=1)), before)
    # a good update afterwards still works
    params["plane.vertex_positions"] = v * 0.5
    params.update()
    assert not np.array_equal(np.array(lg.render(scene, spp=2, seed=1)), before)


@pytest.mark.parametrize("key,value", [
    ("plane.vertex_positions", np.zeros(9, np.float32)),          # 3 vertices instead of 4
    ("plane.vertex_positions", np.zeros(15, np.float32)),         # 5 vertices
    ("plane.bsdf.reflectance.value", lg.Color3f([0.1, 0.2], [0.1, 0.2], [0.1, 0.2])),
    ("sensor.x_fov", [30.0, 40.0]),
])
def test_wrong_shaped_parameter_is_rejected(key: str, value: object) -> None:
    scene = _scene()
    before = np.array(lg.render(scene, spp=2, seed=2))
    params = lg.traverse(scene)
    with pytest.raises((TypeError, ValueError), match=key.split(".")[0]):
        params[key] = value
        params.update()
    np.testing.assert_array_equal(np.array(lg.render(scene, spp=2, seed=2)), before)
