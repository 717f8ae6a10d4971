"""Tests of the dict form of scenes and of the built-in Cornell box."""
import os

import drjit as dr
import numpy as np
import pytest

from lumigrad.geometry.transform import Transform4f
from lumigrad.scene import cornell, loader
from lumigrad.scene.loader import SceneLoadError

from .test_loader_support import plugins  # noqa: F401 (fixture)

CBOX = os.path.join(os.path.dirname(__file__), "data", "scenes", "cbox.xml")


def same(a, b, path="", seen=None, skip=("id",)):
    """Recursively compare two plugin objects attribute by attribute (arrays
    with a tolerance), returning a list of differences."""
    seen = set() if seen is None else seen
    if (id(a), id(b)) in seen:
        return []
    seen.add((id(a), id(b)))
    if isinstance(a, Transform4f):
        return [] if np.allclose(a.numpy(), b.numpy(), atol=1e-6) else [path]
    if isinstance(a, dr.ArrayBase):
        x, y = np.array(dr.detach(a)), np.array(dr.detach(b))
        return [] if x.shape == y.shape and np.allclose(x, y, atol=1e-6) else [path]
    if isinstance(a, np.ndarray):
        return [] if np.allclose(a, b, atol=1e-6) else [path]
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return [path]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in same(x, y, f"{path}[{i}]", seen)]
    if isinstance(a, dict):
        if set(a) != set(b):
            return [path]
        return [d for k in a for d in same(a[k], b[k], f"{path}[{k!r}]", seen)]
    if hasattr(a, "__dict__") and not isinstance(a, type):
        if type(a) is not type(b):
            return [path]
        out = []
        for k in vars(a):
            if k in skip:
                continue
            out += same(getattr(a, k), getattr(b, k, None), f"{path}.{k}", seen)
        return out
    if isinstance(a, float):
        return [] if abs(a - b) <= 1e-6 * max(1, abs(a)) else [path]
    return [] if a == b else [path]


def test_cornell_box_matches_cbox_xml(plugins):
    a = loader.instantiate_file(CBOX)
    b = loader.instantiate_dict(cornell.cornell_box_dict())
    assert [s.id for s in a["shapes"]] == [s.id for s in b["shapes"]]
    for s, t in zip(a["shapes"], b["shapes"]):
        np.testing.assert_allclose(s.positions_numpy(), t.positions_numpy(), atol=1e-6)
        np.testing.assert_array_equal(s.faces_numpy(), t.faces_numpy())
        assert same(s, t) == [], s.id
    for k in ("white", "green", "red"):
        assert same(a["ids"][k], b["ids"][k]) == [], k
    assert same(a["sensors"][0], b["sensors"][0]) == []
    assert same(a["integrator"], b["integrator"]) == []
    assert b["sensors"][0].id == "sensor"
    # the same keyword arguments
    c = loader.instantiate_dict(cornell.cornell_box_dict(res=64, spp=4, max_depth=2))
    assert c["sensors"][0].film.width == 64 and c["integrator"].max_depth == 2
    assert c["sensors"][0].sampler.sample_count == 4


def test_cornell_box_scene(plugins):
    pytest.importorskip("lumigrad.scene.scene")
    sc = cornell.cornell_box(res=32, spp=1)
    assert len(sc.shapes) == 8


def test_dict_values_and_refs(plugins):
    m = np.array([[2, 0, 0, 1], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1.0]])
    r = loader.instantiate_dict({
        "type": "scene",
        "k": {"type": "kinds", "f": 2, "i": 5, "b": True, "s": "b",
              "c": {"type": "rgb", "value": [0.1, 0.2, 0.3]},
              "tex": {"type": "spectrum", "value": 0.5},
              "p": [1, 2, 3], "v": np.array([0, 0, 1.0]),
              "to_world": m.tolist(),
              "nested": {"type": "ref", "id": "other"},
              "anything": {"type": "constant", "value": 0.1}},
        "other": {"type": "kinds"},
        "box": {"type": "cube", "to_world": Transform4f().translate([0, 1, 0]),
                "bsdf": {"type": "ref", "id": "k"},
                "emitter": {"type": "area", "radiance": 3.0}},
    })
    k = r["ids"]["k"].values
    assert k["f"] == 2.0 and k["i"] == 5 and k["b"] is True and k["s"] == "b"
    assert k["c"] == pytest.approx((0.1, 0.2, 0.3)) and k["p"] == (1.0, 2.0, 3.0)
    np.testing.assert_allclose(k["to_world"].numpy(), m)
    assert k["nested"] is r["ids"]["other"]
    # a key that is not a parameter: the nested object is unnamed (bound by its
    # category) and the key becomes its id, as in Mitsuba
    assert k["many"] == [r["ids"]["anything"]]
    box = r["ids"]["box"]
    assert box.bsdf is r["ids"]["k"] and box.emitter.shape is box
    np.testing.assert_allclose(box.positions_numpy()[:, 1].min(), 0.0, atol=1e-6)


def test_dict_plugin_instances_and_single_objects(plugins):
    bsdf = loader.load_dict({"type": "diffuse", "reflectance": 0.3})
    assert type(bsdf).PLUGIN[0] == "bsdf"
    r = loader.instantiate_dict({"type": "scene",
                                 "ball": {"type": "sphere", "radius": 0.5, "bsdf": bsdf}})
    assert r["shapes"][0].bsdf is bsdf


DICT_ERRORS = [
    ({"type": "scene", "a": {"type": "kinds", "ff": 1.0}},
     r"^scene\['a'\]\['ff'\]: bsdf 'a' \(type 'kinds'\) has no parameter 'ff' \(did you mean 'f'"),
    ({"type": "scene", "a": {"type": "kinds", "f": "x"}},
     r"^scene\['a'\]\['f'\]: bsdf 'a' \(type 'kinds'\), parameter 'f': expected a <float>"),
    ({"type": "scene", "a": {"type": "kinds", "c": {"type": "rgb", "value": [1, 2]}}},
     r"^scene\['a'\]\['c'\]: a rgb value needs 1 or 3 numbers, got 2"),
    ({"type": "scene", "a": {"type": "kinds", "f": float("nan")}}, r"^scene\['a'\]\['f'\]: .*not finite"),
    ({"type": "scene", "a": {"type": "kinds", "f": 20.0}}, r"above the maximum 10"),
    ({"type": "scene", "green-wall": {"type": "rectangle", "bsdf": {
        "type": "kinds", "tex": {"type": "rgb", "value": [0.1, 0.2, -1]}}}},
     r"^scene\['green-wall'\]\['bsdf'\]\['tex'\]: bsdf of type 'kinds', parameter 'tex': "
     r"value .* is below the minimum 0"),
    ({"type": "scene", "s": {"type": "rectangle", "bsdf": {"type": "ref", "id": "nope"}}},
     r"^scene\['s'\]\['bsdf'\]: <ref id=\"nope\"> refers to an unknown id"),
    ({"type": "scene", "s": {"type": "blob"}}, r"^scene\['s'\]: unknown plugin type 'blob'"),
    ({"type": "scene", "s": {"type": "rectangle", "bsdf": {"type": "area"}}},
     r"^scene\['s'\]\['bsdf'\]: a 'area' plugin is a emitter, which is not accepted here"),
    ({"type": "scene", "s": {"type": "needs"}}, r"missing required parameter 'must'"),
    ({"type": "scene", "s": 3}, r"^scene\['s'\]: top-level entries of a scene dict must be"),
    ({"type": "scene", "s": {"type": "kinds", "p": [1, 2, 3, 4, 5]}},
     r"^scene\['s'\]\['p'\]: expected 1 or 3 numbers or a 4x4 matrix"),
]


@pytest.mark.parametrize("d,match", DICT_ERRORS)
def test_dict_errors_name_the_path(plugins, d, match):
    with pytest.raises(SceneLoadError, match=match):
        loader.instantiate_dict(d)


def test_in_memory_images_for_bitmap_and_envmap() -> None:
    """Mitsuba's dict form takes image arrays for a bitmap's data and an envmap."""
    import lumigrad as lg
    img = np.random.default_rng(0).uniform(0, 1, (8, 16, 3)).astype(np.float32)
    scene = lg.load_dict({
        "type": "scene",
        "r": {"type": "rectangle",
              "bsdf": {"type": "diffuse", "reflectance": {"type": "bitmap", "data": img}}},
        "env": {"type": "envmap", "bitmap": img},
    })
    params = lg.traverse(scene)
    np.testing.assert_allclose(np.array(params["r.bsdf.reflectance.data"]), img, rtol=1e-6)
    assert tuple(params["env.data"].shape) == (8, 16, 3)
