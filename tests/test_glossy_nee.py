"""Next-event estimation at glossy vertices in geometry derivatives
(``integrators/nee.py``): emitter points drawn by the BSDF too (MIS), each
paired antithetically about the mirror direction. The finite-difference
check is ``test_boundary_terms.py``'s ``test_sharp_glossy_lobe_path_traced``."""
from __future__ import annotations

import drjit as dr
import numpy as np
import pytest

import lumigrad as lg
from lumigrad import backend as bk
from lumigrad.integrators import nee

from .test_boundary_terms import T, derivative, floor_scene, translate


def _lights() -> dict:
    """Two area lights of different sizes and a point light, besides the floor
    scene's light."""
    return {
        "light2": {"type": "rectangle",
                   "to_world": T().translate([-1.5, 1.5, 1]).rotate([0, 1, 0], 60).scale(0.4),
                   "emitter": {"type": "area",
                               "radiance": {"type": "rgb", "value": [5, 8, 5]}}},
        "pl": {"type": "point", "position": [1.5, 2, 2],
               "intensity": {"type": "rgb", "value": [6, 6, 6]}},
    }


def _points(scene, n: int = 4096):
    """Surface points on the scene's ball, seen by rays from above."""
    rng = np.random.default_rng(3)
    xz = rng.uniform(-0.4, 0.4, (n, 2))
    o = bk.Array3f(xz[:, 0].tolist(), [3.0] * n, xz[:, 1].tolist())
    d = bk.Array3f(0.0, -1.0, 0.0) + dr.zeros(bk.Array3f, n)
    si = scene.ray_intersect(o, d, dr.full(bk.Float, 10.0, n), dr.full(bk.Bool, True, n))
    return si, rng


def test_emitter_direction_at_matches_sampling():
    """The sample that ``sample_emitter_direction`` draws is reproduced from
    the triangle and barycentrics where it lies (how points found by rays
    enter next-event estimation): direction, distance, density and weight."""
    scene = lg.load_dict(floor_scene(ball={"type": "sphere", "radius": 0.6}, **_lights()))
    si, rng = _points(scene)
    n = dr.width(si.p)
    s1 = bk.Float(rng.uniform(0, 1, n).tolist())
    s2 = bk.Array2f(rng.uniform(0, 1, n).tolist(), rng.uniform(0, 1, n).tolist())
    d, dist, pdf, w, delta = scene.sample_emitter_direction(si.p, s1, s2, si.valid)
    area = si.valid & ~delta & (pdf > 0)
    # Where the sample lies: the first hit of its ray that is an emitter.
    hit = scene.ray_intersect(si.p, d, dist * 1.001, area)
    ok = area & hit.valid & (dr.abs(hit.t - dist) < 1e-3 * dist)
    d2, dist2, pdf2, w2 = scene.emitter_direction_at(si.p, hit.prim, hit.bary, ok)
    mask = np.array(ok)
    assert mask.sum() > 500
    for a, b in ((d, d2), (dist, dist2), (pdf, pdf2), (w, w2)):
        a, b = np.array(a)[..., mask], np.array(b)[..., mask]
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-5)
    # Not an emitter: nothing.
    _, _, pdf3, w3 = scene.emitter_direction_at(si.p, si.prim, si.bary, si.valid)
    assert np.all(np.array(pdf3) == 0) and np.all(np.array(w3) == 0)


def test_antithetic_partner_is_an_involution():
    """The partner of the partner is the sample itself (the estimator's
    pairing is a bijection of the points that have one)."""
    scene = lg.load_dict(floor_scene(ball={"type": "sphere", "radius": 0.6,
                                           "bsdf": {"type": "roughconductor", "alpha": 0.05}},
                                     light={"type": "rectangle",
                                            "to_world": T().translate([0, 3, 0])
                                            .rotate([1, 0, 0], 90).scale(2.5),
                                            "emitter": {"type": "area", "radiance": {
                                                "type": "rgb", "value": [1, 1, 1]}}}))
    si, rng = _points(scene)
    n = dr.width(si.p)
    s2 = bk.Array2f(rng.uniform(0, 1, n).tolist(), rng.uniform(0, 1, n).tolist())
    d, dist, pdf, _, _ = scene.sample_emitter_direction(si.p, dr.zeros(bk.Float, n), s2,
                                                        si.valid)
    on = si.valid & (pdf > 0) & (dr.dot(si.n, d) > 0)
    found, prim, bary = nee.antithetic_partner(scene, si, d, on)
    d_pair = scene.emitter_direction_at(si.p, prim, bary, found)[0]
    back, prim2, bary2 = nee.antithetic_partner(scene, si, d_pair, found)
    f, b = np.array(found), np.array(back)
    assert f.sum() > 200 and np.all(b[f])
    y = np.array(si.p + d * dist)[:, f]
    y2 = np.array(scene.emitter_direction_at(si.p, prim2, bary2, back)[0] * dist + si.p)[:, f]
    np.testing.assert_allclose(y2, y, atol=2e-3)


@pytest.mark.parametrize("bsdf", [
    {"type": "roughplastic", "alpha": 0.3,
     "diffuse_reflectance": {"type": "rgb", "value": [0.2, 0.3, 0.5]}},
    # A delta lobe besides the glossy one: the BSDF's delta samples find no
    # emitter point (their density is not the BSDF's pdf).
    {"type": "blendbsdf", "weight": 0.5, "bsdf_0": {"type": "roughconductor", "alpha": 0.3},
     "bsdf_1": {"type": "conductor"}},
], ids=["roughplastic", "blend_with_mirror"])
def test_glossy_emitter_samples_estimate_the_same_derivative(bsdf, monkeypatch):
    """Drawn by the BSDF or the emitters, paired or not, the emitter points
    estimate the same derivative as emitter sampling alone (common random
    numbers elsewhere): two area lights and a point light (which the BSDF's
    rays cannot find). Lobes of α 0.3, whose derivatives are quiet: 0.0004 /
    0.0025; with the balance
    heuristic's weight left out of the emitters' points (a bias) 0.018 / 0.062."""
    scene = floor_scene(ball={"type": "sphere", "radius": 0.6, "bsdf": bsdf}, **_lights())
    scene["integrator"] = {"type": "direct"}
    scene = lg.load_dict(scene)
    tables = nee.glossy_tables(scene)
    assert np.array(tables.mis).any()
    paired = derivative(scene, "ball.to_world", translate(0), spp=2048)
    monkeypatch.setattr(nee, "GLOSSY_NEE", False)
    assert nee.glossy_tables(scene) is None
    plain = derivative(scene, "ball.to_world", translate(0), spp=2048)
    assert np.isfinite(paired).all()
    assert lg.block_relative_l1(paired, plain) < 0.015


def _sky(h: int = 32, w: int = 64) -> np.ndarray:
    """A lat-long sky: a gradient and a bright, small sun."""
    v, u = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
    sky = np.stack([0.2 + 0.3 * (1 - v), 0.3 + 0.3 * (1 - v), 0.5 + 0.2 * (1 - v)], -1)
    sun = np.exp(-((u - 0.3) ** 2 + (v - 0.25) ** 2) / 0.002)[..., None] * 40.0
    return (sky + sun).astype(np.float32)


def _image_mean(scene, glossy: bool, spp: int = 256) -> tuple:
    """The mean and standard error of ``pathgeo.trace``'s primal estimate
    (the value the derivatives differentiate) over the film."""
    from lumigrad.integrators import pathgeo
    sensor = scene.sensors[0]
    w, h = sensor.resolution
    n = w * h * spp
    idx = dr.arange(bk.UInt32, n) // spp
    rng = bk.PCG32(size=n, initstate=bk.UInt64(7), initseq=bk.UInt64(dr.arange(bk.UInt32, n)))
    film_pos = bk.Array2f((bk.Float(idx % w) + rng.next_float32()) / w,
                          (bk.Float(idx // w) + rng.next_float32()) / h)
    nee.GLOSSY_NEE = glossy
    try:
        gen = bk.PCG32(size=n, initstate=bk.UInt64(11),
                       initseq=bk.UInt64(dr.arange(bk.UInt32, n)))
        L = np.array(pathgeo.trace(scene.integrator, scene, gen, sensor, film_pos, "primal",
                                   edges=False)).mean(0)
    finally:
        nee.GLOSSY_NEE = True
    return float(np.mean(L)), float(np.std(L) / np.sqrt(n))


def test_glossy_emitter_samples_estimate_the_same_radiance():
    """The value of the estimator the derivatives differentiate, a sharp lobe
    under a large light (most of it from the BSDF's points and their
    partners): the image mean 0.0849 against emitter sampling alone's 0.0833
    ± 0.0008. Dropping the partner from a pair's density: 0.0937; the balance
    heuristic's weight left out of the emitters' points: 0.0905."""
    scene = floor_scene(ball={"type": "sphere", "radius": 0.6,
                              "bsdf": {"type": "roughconductor", "alpha": 0.1}},
                        light={"type": "rectangle",
                               "to_world": T().translate([0, 3, 0]).rotate([1, 0, 0], 90)
                               .scale(2.5),
                               "emitter": {"type": "area",
                                           "radiance": {"type": "rgb", "value": [1, 1, 1]}}})
    scene["integrator"] = {"type": "direct"}
    scene = lg.load_dict(scene)
    (m_new, e_new), (m_old, e_old) = _image_mean(scene, True), _image_mean(scene, False)
    assert abs(m_new - m_old) < 4 * np.hypot(e_new, e_old), (m_new, m_old, e_new, e_old)


@pytest.mark.parametrize("env", ["envmap", "constant"])
def test_glossy_emitter_samples_under_an_environment(env):
    """Points the BSDF's rays find by escaping, and partners that escape, lie
    at the environment's own coordinates (``Emitter.direction_point``): they
    reproduce its samples, and the estimate's value is emitter sampling
    alone's: a glossy ball under a rectangle light and a sky with a small sun,
    0.681 against 0.686 ± 0.007 (escapes not counted as points: 0.635); under
    a uniform sky 0.825 against 0.828 ± 0.008 (0.771)."""
    light = ({"type": "envmap", "bitmap": _sky(), "to_world": T().rotate([0, 1, 0], 30)}
             if env == "envmap" else {"type": "constant", "radiance": {"type": "rgb",
                                                                         "value": [1, 1, 1]}})
    scene = lg.load_dict(floor_scene(ball={"type": "sphere", "radius": 0.6,
                                           "bsdf": {"type": "roughconductor", "alpha": 0.08}},
                                     env=light))
    sky = scene.environment
    n = 1000
    rng = np.random.default_rng(5)
    s2 = bk.Array2f(rng.uniform(0, 1, n).tolist(), rng.uniform(0, 1, n).tolist())
    p = dr.zeros(bk.Array3f, n)
    ds = sky.sample_direction(p, s2, True)
    again = sky.sample_at(p, sky.direction_point(ds.d), True)
    for a, b in ((ds.d, again.d), (ds.pdf, again.pdf), (ds.weight, again.weight)):
        np.testing.assert_allclose(np.array(b), np.array(a), rtol=2e-3, atol=1e-5)
    scene_d = floor_scene(ball={"type": "sphere", "radius": 0.6,
                                "bsdf": {"type": "roughconductor", "alpha": 0.08}}, env=light)
    scene_d["integrator"] = {"type": "direct"}
    scene = lg.load_dict(scene_d)
    assert nee.glossy_tables(scene) is not None
    (m_new, e_new), (m_old, e_old) = _image_mean(scene, True), _image_mean(scene, False)
    assert abs(m_new - m_old) < 4 * np.hypot(e_new, e_old), (m_new, m_old, e_new, e_old)


def test_reverse_equals_forward_glossy_under_a_sky():
    """Reverse mode replays the four points from the record (the partner's
    and the BSDF's points found by escaping rays at the map's coordinates):
    ⟨∇L, u⟩ equals the forward derivative along u."""
    from .test_boundary_terms import assert_ball_reverse_equals_forward
    assert_ball_reverse_equals_forward(floor_scene(
        ball={"type": "sphere", "radius": 0.6, "bsdf": {"type": "roughconductor", "alpha": 0.08}},
        env={"type": "envmap", "bitmap": _sky()}))
