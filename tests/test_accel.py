"""Ray-tracing cores (geometry/accel.py): the choice, and the Mitsuba (Embree) core
agreeing with the built-in BVH on hits, images and geometry gradients.

The Mitsuba tests are skipped cleanly where the ``accel`` extra is not installed.
"""
from __future__ import annotations

import drjit as dr
import numpy as np
import pytest

import lumigrad as lg
from lumigrad import backend as bk
from lumigrad.geometry.accel import (BuiltinAccelerator, build_accelerator, choose_backend,
                                     mitsuba_available)
from lumigrad.geometry.bvh import BVH

needs_mitsuba = pytest.mark.skipif(not mitsuba_available(),
                                   reason="Mitsuba 3 not installed (pip install 'lumigrad[accel]')")


def _ball_scene(res: int = 32) -> lg.Scene:
    d = lg.cornell_box_dict(res=res, spp=4, max_depth=4)
    d["ball"] = {"type": "sphere", "center": [0.3, -0.5, 0.2], "radius": 0.3,
                 "bsdf": {"type": "roughconductor"}}
    return lg.load_dict(d)


def test_choice_rules(monkeypatch):
    monkeypatch.delenv("LUMIGRAD_ACCEL", raising=False)
    # small scenes keep the unrolled built-in traversal whatever is installed
    assert choose_backend(None, BVH.unroll_max_triangles) == "builtin"
    assert choose_backend("builtin", 10 ** 6) == "builtin"
    expected = "mitsuba" if mitsuba_available() else "builtin"
    assert choose_backend("auto", 10 ** 5) == expected
    monkeypatch.setenv("LUMIGRAD_ACCEL", "builtin")
    assert choose_backend(None, 10 ** 5) == "builtin"
    monkeypatch.setenv("LUMIGRAD_ACCEL", "embree")
    with pytest.raises(ValueError, match="LUMIGRAD_ACCEL.*'embree'"):
        choose_backend(None, 10)
    with pytest.raises(ValueError, match="accel argument"):
        choose_backend("optix", 10)


def test_mitsuba_requested_without_mitsuba_is_an_error(monkeypatch):
    import lumigrad.geometry.accel as accel
    monkeypatch.setattr(accel, "mitsuba_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"lumigrad\[accel\]"):
        accel.choose_backend("mitsuba", 10 ** 5)


def _random_rays(n: int, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    o = rng.normal(size=(3, n)).astype(np.float32) * 2.0
    target = rng.normal(size=(3, n)).astype(np.float32) * 0.5
    d = target - o
    d /= np.linalg.norm(d, axis=0)
    return (bk.Array3f(*[bk.Float(x) for x in o]), bk.Array3f(*[bk.Float(x) for x in d]))


@needs_mitsuba
def test_same_hits_as_builtin():
    scene = _ball_scene()
    pos = scene._positions_np
    ref = BuiltinAccelerator(pos, scene.faces_np)
    emb = build_accelerator(pos, scene.faces_np, "mitsuba")
    o, d = _random_rays(20000)
    on = bk.Bool(True)
    for tmax in (bk.Float(dr.inf), bk.Float(1.5)):
        a = [np.array(x) for x in ref.ray_intersect(o, d, tmax, on)]
        b = [np.array(x) for x in emb.ray_intersect(o, d, tmax, on)]
        assert np.array_equal(a[4], b[4])
        hit = a[4]
        same = a[1] == b[1]
        # Rays through a shared edge, or onto coplanar faces (the boxes stand on the
        # floor: their bottoms and the floor are hit at the same t), may report either
        # triangle; the distance is then the same.
        assert (same[hit]).mean() > 0.98
        np.testing.assert_allclose(a[0][hit], b[0][hit], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a[2][same & hit], b[2][same & hit], atol=1e-3)  # sliver triangles
        np.testing.assert_allclose(a[3][same & hit], b[3][same & hit], atol=1e-3)
        assert np.all(b[1][~b[4]] == 0xFFFFFFFF) and np.all(np.isinf(b[0][~b[4]]))
        ta = np.array(ref.ray_test(o, d, tmax, on))
        tb = np.array(emb.ray_test(o, d, tmax, on))
        assert (ta != tb).mean() < 1e-3 and ta.mean() > 0.2


@needs_mitsuba
def test_images_and_geometry_gradients_agree():
    """Same seed, same scene: the Embree core reproduces the built-in image (hits are
    the same triangles), and the derivative image w.r.t. a vertex translation."""
    scene = _ball_scene()
    assert scene.accel_name == "mitsuba" or not mitsuba_available()
    results = {}
    for kind in ("builtin", "mitsuba"):
        scene.set_accelerator(kind)
        assert scene.accel_name == kind
        img = np.array(lg.render(scene, spp=8, seed=5))
        n = dr.width(lg.traverse(scene)["ball.vertex_positions"]) // 3
        deriv = np.array(lg.derivative_image(scene, "ball.vertex_positions",
                                             direction=np.tile([1.0, 0.0, 0.0], n), spp=8, seed=5))
        results[kind] = (img, deriv)
    (ia, da), (ib, db) = results["builtin"], results["mitsuba"]
    assert ia.mean() > 0.05 and np.abs(da).sum() > 0
    assert np.abs(ia - ib).mean() <= 1e-4 * ia.mean()
    assert np.abs(da - db).sum() <= 1e-3 * np.abs(da).sum()


@needs_mitsuba
def test_follows_moving_geometry():
    """params.update() after moving vertices moves the Embree hits too."""
    scene = _ball_scene()
    scene.set_accelerator("mitsuba")
    params = lg.traverse(scene)
    key = "ball.vertex_positions"
    p = np.array(params[key]).reshape(-1, 3)
    params[key] = bk.Float((p + np.array([0.0, 0.0, 5.0], np.float32)).ravel())
    params.update()
    o = bk.Array3f(0.3, -0.5, 3.0)
    d = bk.Array3f(0.0, 0.0, 1.0)
    t, prim, _, _, hit = scene.ray_intersect_preliminary(o, d, bk.Float(dr.inf), bk.Bool(True))
    i = next(i for i, s in enumerate(scene.shapes) if s.id == "ball")
    first, end = int(scene.face_offsets[i]), int(scene.face_offsets[i + 1])
    assert bool(hit[0]) and first <= int(prim[0]) < end
    assert abs(float(t[0]) - (5.2 - 0.3 - 3.0)) < 1e-2


@needs_mitsuba
def test_leaves_mitsubas_variant_alone():
    """Building and updating the Mitsuba core neither reads nor sets Mitsuba's
    global variant (a user comparing against Mitsuba keeps theirs)."""
    import mitsuba as mi
    old = mi.variant()
    mi.set_variant("scalar_rgb")
    try:
        scene = _ball_scene()
        scene.set_accelerator("mitsuba")
        params = lg.traverse(scene)
        params["ball.vertex_positions"] = params["ball.vertex_positions"] + 0.01
        params.update()
        assert mi.variant() == "scalar_rgb"
        _, _, _, _, hit = scene.ray_intersect_preliminary(
            bk.Array3f(0.3, -0.5, 3.0), bk.Array3f(0.0, 0.0, -1.0), bk.Float(dr.inf),
            bk.Bool(True))
        assert bool(hit[0])
    finally:
        if old is not None:
            mi.set_variant(old)


def test_loaders_take_the_core():
    scene = lg.load_dict(lg.cornell_box_dict(res=16, spp=1), accel="builtin")
    assert scene.accel_name == "builtin"
    with pytest.raises(lg.SceneLoadError, match="unknown ray-tracing backend 'nope'"):
        lg.load_dict(lg.cornell_box_dict(res=16, spp=1), accel="nope")


def test_cli_reports_the_core(tmp_path, capsys):
    from lumigrad.cli import main
    assert main(["render", "cbox", "-D", "res=16", "--spp", "1", "-o", str(tmp_path / "a.exr"),
                 "--accel", "builtin", "--verbose"]) == 0
    err = capsys.readouterr().err
    assert "36 triangles" in err and "ray tracing: builtin" in err
