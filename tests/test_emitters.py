"""Emitter plugins: known answers, sampling consistency, Monte Carlo checks, AD."""
from __future__ import annotations

import math

import drjit as dr
import numpy as np
import pytest

import lumigrad
from lumigrad import backend as bk
from lumigrad import io
from lumigrad.core import warp
from lumigrad.core.interaction import SurfaceInteraction
from lumigrad.emitters import (AreaEmitter, ConstantEmitter, DirectionalEmitter,
                               EnvironmentMapEmitter, PiecewiseConstant2D, PointEmitter,
                               direction_to_uv, uv_to_direction)
from lumigrad.geometry.transform import Transform4f
from lumigrad.scene.schema import REGISTRY
from lumigrad.textures.base import Texture

N = 100_000


def samples(n: int = N, seed: int = 3):
    rng = bk.PCG32(n, seed)
    return bk.Array2f(rng.next_float32(), rng.next_float32())


def np3(v) -> np.ndarray:
    """Array3f -> (n, 3) numpy."""
    return np.array(v, dtype=np.float64).reshape(3, -1).T


def keys(emitter) -> list[str]:
    return [k for k, _, _ in emitter.parameters()]


def test_registry_and_keys():
    for name in ("area", "point", "directional", "constant", "envmap"):
        assert ("emitter", name) in REGISTRY
    assert keys(PointEmitter()) == ["position", "intensity.value"]
    assert keys(AreaEmitter()) == ["radiance.value"]
    assert keys(ConstantEmitter()) == ["radiance.value"]
    assert keys(DirectionalEmitter()) == ["direction", "to_world", "irradiance.value"]
    env = EnvironmentMapEmitter(bitmap=np.ones((4, 8, 3), np.float32))
    assert keys(env) == ["data", "scale", "to_world"]
    assert tuple(env.data.shape) == (4, 8, 3)


# -- point -------------------------------------------------------------------

def test_point_inverse_square_law():
    em = PointEmitter(position=(1.0, 2.0, 3.0), intensity=(2.0, 4.0, 8.0))
    r = bk.Float(0.5, 1.0, 2.0, 4.0)
    p = bk.Array3f(1.0, 2.0, 3.0 - r)  # points straight below the light
    ds = em.sample_direction(p, dr.zeros(bk.Array2f, 4), True)
    w = np3(ds.weight)
    rr = np.array(r)
    np.testing.assert_allclose(w, np.array([2.0, 4.0, 8.0])[None] / rr[:, None] ** 2, rtol=1e-5)
    np.testing.assert_allclose(np.array(ds.dist), rr, rtol=1e-6)
    np.testing.assert_allclose(np3(ds.d), np.tile([0.0, 0.0, 1.0], (4, 1)), atol=1e-6)
    assert np.all(np.array(ds.pdf) == 1) and np.all(np.array(ds.delta))
    assert em.is_delta and not em.is_infinite
    assert np.all(np3(em.eval_direction(ds.d)) == 0)
    assert np.all(np.array(em.pdf_direction(p, ds.d)) == 0)
    # At the light itself: no direction, zero weight, no NaN.
    ds0 = em.sample_direction(bk.Array3f(1.0, 2.0, 3.0), bk.Array2f(0.5, 0.5), True)
    for v in (np3(ds0.weight), np3(ds0.d), np.array(ds0.dist), np.array(ds0.pdf)):
        assert np.all(np.isfinite(v))
    assert np.all(np3(ds0.weight) == 0)


def test_point_to_world_and_errors():
    em = PointEmitter(to_world=Transform4f().translate((0.0, 5.0, 0.0)))
    np.testing.assert_allclose(np3(em.position)[0], [0.0, 5.0, 0.0])
    with pytest.raises(ValueError, match="either"):
        PointEmitter(position=(0, 0, 0), to_world=Transform4f())

    class Stripes(Texture):
        def parameters(self):
            yield "data", None, None
    with pytest.raises(ValueError, match="uniform colour"):
        PointEmitter(intensity=Stripes())
    with pytest.raises(ValueError):
        PointEmitter(position=(0.0, float("nan"), 0.0))


def test_point_gradients_forward_and_reverse():
    em = PointEmitter(position=(0.0, 0.0, 2.0), intensity=3.0)
    pos = bk.Array3f(0.0, 0.0, 2.0)
    dr.enable_grad(pos)
    setters = {k: s for k, _, s in em.parameters()}
    setters["position"](pos)
    p = bk.Array3f(0.0, 0.0, 0.0)
    w = em.sample_direction(p, bk.Array2f(0.5, 0.5), True).weight
    # w = I / z^2  ->  dw/dz = -2 I / z^3 = -0.75
    dr.forward_from(pos[2])
    assert dr.grad(w)[0][0] == pytest.approx(-0.75, rel=1e-5)
    inten = bk.Array3f(3.0, 3.0, 3.0)
    dr.enable_grad(inten)
    setters["intensity.value"](inten)
    w = em.sample_direction(p, bk.Array2f(0.5, 0.5), True).weight
    dr.backward(dr.sum(w, axis=None))
    np.testing.assert_allclose(np.array(dr.grad(inten)).ravel(), 0.25, rtol=1e-6)


# -- directional ---------------------------------------------------------------

def test_directional():
    em = DirectionalEmitter(direction=(0.0, 0.0, -2.0), irradiance=(1.0, 2.0, 3.0))
    ds = em.sample_direction(bk.Array3f([0.0, 1.0], [0.0, 2.0], [0.0, 3.0]),
                             dr.zeros(bk.Array2f, 2), True)
    np.testing.assert_allclose(np3(ds.d), [[0, 0, 1], [0, 0, 1]], atol=1e-7)
    assert np.all(np.isinf(np.array(ds.dist)))
    np.testing.assert_allclose(np3(ds.weight), [[1, 2, 3], [1, 2, 3]])
    assert np.all(np.array(ds.delta)) and em.is_delta and em.is_infinite
    # to_world: local +Z rotated by 90 degrees about +X becomes -Y.
    em2 = DirectionalEmitter(to_world=Transform4f().rotate((1.0, 0.0, 0.0), 90.0))
    np.testing.assert_allclose(np3(em2.direction)[0], [0.0, -1.0, 0.0], atol=1e-6)
    # The exposed to_world reproduces the direction on its +Z axis.
    tw = dict((k, v) for k, v, _ in em2.parameters())["to_world"]
    np.testing.assert_allclose(tw.numpy()[:3, 2], [0.0, -1.0, 0.0], atol=1e-6)
    with pytest.raises(ValueError):
        DirectionalEmitter(direction=(0.0, 0.0, 0.0))


# -- constant ------------------------------------------------------------------

def test_constant_weight_is_eval_over_pdf_and_integrates():
    L = np.array([0.5, 1.0, 2.0])
    em = ConstantEmitter(radiance=tuple(L))
    s = samples(4096)
    p = dr.zeros(bk.Array3f, 4096)
    ds = em.sample_direction(p, s, True)
    d = np3(ds.d)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    ev = np3(em.eval_direction(ds.d))
    pdf = np.array(em.pdf_direction(p, ds.d))
    np.testing.assert_allclose(np.array(ds.pdf), 1 / (4 * np.pi), rtol=1e-6)
    np.testing.assert_allclose(np3(ds.weight), ev / pdf[:, None], rtol=1e-5)
    # E[weight] = ∫ L dω = 4π L.
    np.testing.assert_allclose(np3(ds.weight).mean(axis=0), 4 * np.pi * L, rtol=1e-5)
    assert np.all(np.isinf(np.array(ds.dist)))
    em.set_scene_bounds(bk.Array3f(1.0, 2.0, 3.0), 4.0)
    assert em.radius == 4.0


# -- area ------------------------------------------------------------------------

def _si(wi_z, uv=(0.5, 0.5)):
    n = len(wi_z)
    wz = bk.Float(wi_z)
    wi = bk.Array3f(dr.safe_sqrt(1 - wz * wz), 0.0, wz)
    z3 = dr.zeros(bk.Array3f, n)
    return SurfaceInteraction(t=dr.ones(bk.Float, n), p=z3, n=z3, sh_n=z3,
                              uv=bk.Array2f(uv[0], uv[1]) + dr.zeros(bk.Array2f, n), wi=wi,
                              prim=dr.zeros(bk.UInt32, n), shape=dr.zeros(bk.UInt32, n),
                              valid=dr.full(bk.Bool, True, n))


def test_area_one_sided():
    em = AreaEmitter(radiance=(1.0, 2.0, 4.0))
    si = _si([0.5, 1.0, 0.0, -0.3])
    val = np3(em.eval(si, True))
    np.testing.assert_allclose(val, [[1, 2, 4], [1, 2, 4], [0, 0, 0], [0, 0, 0]])
    val = np3(em.eval(si, bk.Bool([True, False, True, True])))
    np.testing.assert_allclose(val[1], 0.0)
    assert em.is_area and em.shape is None
    ds = em.sample_direction(si.p, dr.zeros(bk.Array2f, 4), True)
    assert np.all(np3(ds.weight) == 0) and np.all(np.array(ds.pdf) == 0)
    # Radiance is differentiable through the 'radiance.value' key.
    rad = bk.Array3f(1.0, 2.0, 4.0)
    dr.enable_grad(rad)
    dict((k, s) for k, _, s in em.parameters())["radiance.value"](rad)
    dr.backward(dr.sum(em.eval(si, True), axis=None))
    np.testing.assert_allclose(np.array(dr.grad(rad)).ravel(), 2.0)


# -- 2-D distribution ------------------------------------------------------------

def test_piecewise_constant_2d_histogram():
    rng = np.random.default_rng(5)
    w = rng.random((4, 6))
    w[1] = 0.0       # an empty row
    w[2, 3] = 0.0    # an empty cell
    distr = PiecewiseConstant2D(w)
    pts, dens, cell = distr.sample(samples(N))
    cell = np.array(cell)
    prob = w.ravel() / w.sum()
    hist = np.bincount(cell, minlength=24) / N
    assert np.all(hist[prob == 0] == 0)
    sigma = np.sqrt(prob * (1 - prob) / N)
    assert np.all(np.abs(hist - prob) <= 5 * sigma + 1e-4)
    np.testing.assert_allclose(np.array(dens), prob[cell] * 24, rtol=1e-5)
    np.testing.assert_allclose(np.array(distr.eval(pts)), np.array(dens), rtol=1e-6)
    xy = np.array(pts).reshape(2, -1)
    assert xy.min() >= 0 and xy.max() < 1
    # Points land inside the chosen cell.
    np.testing.assert_array_equal(np.floor(xy[1] * 4) * 6 + np.floor(xy[0] * 6), cell)


# -- envmap ----------------------------------------------------------------------

def test_atan2_replacement_matches_numpy_and_has_finite_gradients():
    from lumigrad.emitters._util import atan2
    rng = np.random.default_rng(8)
    # (the last entry, y = 1e-30, is a zero in float32)
    y = np.concatenate([rng.normal(size=2000), [0.0, 1.0, -1.0, 0.0, 0.0, 1.0, -1.0, 1e-30]])
    x = np.concatenate([rng.normal(size=2000), [1.0, 0.0, 0.0, -1.0, 0.0, 1.0, -1.0, -1.0]])
    yy, xx = bk.Float(y), bk.Float(x)
    dr.enable_grad(yy, xx)
    a = atan2(yy, xx)
    ref = np.arctan2(y, x)
    got = np.array(a)
    diff = np.abs(got - ref)
    diff = np.minimum(diff, 2 * np.pi - diff)  # ±π are the same angle
    assert diff.max() < 1e-6
    dr.backward(dr.sum(a))
    gy, gx = np.array(dr.grad(yy)), np.array(dr.grad(xx))
    assert np.all(np.isfinite(gy)) and np.all(np.isfinite(gx))
    r2 = x * x + y * y
    m = r2 > 1e-3
    r2 = np.where(m, r2, 1.0)
    np.testing.assert_allclose(gy[m], (x / r2)[m], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gx[m], (-y / r2)[m], rtol=1e-4, atol=1e-5)


def test_direction_uv_round_trip_and_orientation():
    # Mitsuba 3's axes: u = 0 looks along -Z, u = 1/4 along +X, u = 1/2 along +Z,
    # v = 0 is +Y (top row), v = 1 is -Y.
    d = bk.Array3f([0.0, 1.0, 0.0, -1.0, 0.0, 0.0],
                   [0.0, 0.0, 0.0, 0.0, 1.0, -1.0],
                   [-1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    u, v, s = direction_to_uv(d)
    np.testing.assert_allclose(np.array(u)[:4], [0.0, 0.25, 0.5, 0.75], atol=1e-6)
    np.testing.assert_allclose(np.array(v), [0.5, 0.5, 0.5, 0.5, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(np.array(s), [1, 1, 1, 1, 0, 0], atol=1e-6)
    # Round trips.
    s2 = samples(2000, seed=11)
    dirs = warp.square_to_uniform_sphere(s2)
    u, v, _ = direction_to_uv(dirs)
    np.testing.assert_allclose(np3(uv_to_direction(u, v)), np3(dirs), atol=2e-6)
    u2, v2, _ = direction_to_uv(uv_to_direction(s2[0], s2[1]))
    du = np.abs(np.array(u2) - np.array(s2[0]))
    np.testing.assert_allclose(np.minimum(du, 1 - du), 0, atol=5e-6)
    np.testing.assert_allclose(np.array(v2), np.array(s2[1]), atol=5e-4)


def _direction_image(h: int, w: int) -> np.ndarray:
    """Texel (j, i) stores (d + 1) / 2 for the direction of its centre."""
    u = (np.arange(w) + 0.5) / w
    v = np.arange(h) / (h - 1)
    theta, phi = np.pi * v[:, None], 2 * np.pi * u[None, :]
    d = np.stack([np.sin(phi) * np.sin(theta), np.cos(theta) + 0 * phi,
                  -np.cos(phi) * np.sin(theta)], axis=-1)
    return ((d + 1) / 2).astype(np.float32)


# Radiance that Mitsuba 3.9.1 (scalar_rgb) returns for the image
# default_rng(1).random((5, 8, 3)) as an 'envmap' bitmap, looked up along the
# directions of _mitsuba_dirs(), without and with to_world = rotate([1, 1, 0]/√2, 40°)
# (Mitsuba's Python rotate() does not normalise the axis, so it was given a unit one).
_MITSUBA_ENVMAP = np.array([
    [0.790140, 0.452174, 0.585048], [0.219675, 0.673068, 0.697789],
    [0.177011, 0.526431, 0.575564], [0.482987, 0.297361, 0.815674],
    [0.652453, 0.175262, 0.616984], [0.648603, 0.556365, 0.679341],
    [0.430393, 0.547055, 0.396038], [0.777237, 0.638441, 0.822712],
    [0.197647, 0.268861, 0.563787], [0.411566, 0.248575, 0.447625],
    [0.396115, 0.717827, 0.562448], [0.263421, 0.649072, 0.418177]])
_MITSUBA_ENVMAP_ROTATED = np.array([
    [0.605401, 0.722432, 0.715668], [0.504081, 0.351815, 0.829660],
    [0.444688, 0.361008, 0.818674], [0.645711, 0.485913, 0.667369],
    [0.484922, 0.287394, 0.526886], [0.433942, 0.742482, 0.633300],
    [0.511693, 0.097772, 0.689528], [0.342915, 0.656042, 0.612555],
    [0.154948, 0.663794, 0.763133], [0.361451, 0.293130, 0.414637],
    [0.725527, 0.754710, 0.471449], [0.783938, 0.230006, 0.538010]])


def _mitsuba_dirs() -> np.ndarray:
    d = np.random.default_rng(2).normal(size=(10, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.concatenate([d, [[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]]])


def test_envmap_matches_mitsuba_orientation():
    img = np.random.default_rng(1).random((5, 8, 3)).astype(np.float32)
    d = _mitsuba_dirs().astype(np.float32)
    dirs = bk.Array3f(*[bk.Float(d[:, k]) for k in range(3)])
    em = EnvironmentMapEmitter(bitmap=img)
    np.testing.assert_allclose(np3(em.eval_direction(dirs)), _MITSUBA_ENVMAP, atol=2e-5)
    em = EnvironmentMapEmitter(bitmap=img, to_world=Transform4f().rotate((1.0, 1.0, 0.0), 40.0))
    np.testing.assert_allclose(np3(em.eval_direction(dirs)), _MITSUBA_ENVMAP_ROTATED,
                               atol=2e-5)


def test_other_emitters_match_mitsuba_samples():
    """sample_direction from p = (0.5, -0.25, 1) with sample (0.3, 0.6), as
    Mitsuba 3.9.1 returns it (d, dist, pdf, weight)."""
    p = bk.Array3f(0.5, -0.25, 1.0)
    s = bk.Array2f(0.3, 0.6)
    ds = PointEmitter(position=(1, 2, 3), intensity=(1, 2, 3)).sample_direction(p, s, True)
    np.testing.assert_allclose(np3(ds.d)[0], [0.163846, 0.737309, 0.655386], atol=1e-6)
    assert np.array(ds.dist)[0] == pytest.approx(3.0516388, rel=1e-6)
    np.testing.assert_allclose(np3(ds.weight)[0], [0.107383, 0.214765, 0.322148], rtol=1e-5)
    ds = DirectionalEmitter(direction=(1, -2, 0.5), irradiance=(1, 2, 3)).sample_direction(
        p, s, True)
    np.testing.assert_allclose(np3(ds.d)[0], [-0.436436, 0.872872, -0.218218], atol=1e-6)
    np.testing.assert_allclose(np3(ds.weight)[0], [1, 2, 3])
    ds = ConstantEmitter(radiance=(1, 2, 3)).sample_direction(p, s, True)
    np.testing.assert_allclose(np3(ds.d)[0], [-0.302774, 0.931841, -0.2], atol=1e-5)
    assert np.array(ds.pdf)[0] == pytest.approx(0.0795774683, rel=1e-6)
    np.testing.assert_allclose(np3(ds.weight)[0], [12.5664, 25.1327, 37.6991], rtol=1e-5)


def test_envmap_texel_placement_and_lookup():
    h, w = 32, 64
    img = _direction_image(h, w)
    em = EnvironmentMapEmitter(bitmap=img)
    # Exactly at texel centres: the texel's value.
    jj, ii = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    dirs = 2 * img.reshape(-1, 3) - 1
    val = np3(em.eval_direction(bk.Array3f(*[bk.Float(dirs[:, k]) for k in range(3)])))
    pole = (jj.ravel() == 0) | (jj.ravel() == h - 1)  # every texel of a pole row is the pole
    np.testing.assert_allclose(val[~pole], img.reshape(-1, 3)[~pole], atol=2e-5)
    # Anywhere: the looked-up colour encodes the direction (bilinear error only).
    dirs = warp.square_to_uniform_sphere(samples(5000, seed=2))
    val = np3(em.eval_direction(dirs))
    np.testing.assert_allclose(val, (np3(dirs) + 1) / 2, atol=0.02)
    # Turning the environment with to_world turns the lookup with it.
    rot = Transform4f().rotate((0.0, 1.0, 0.0), 90.0)
    em_rot = EnvironmentMapEmitter(bitmap=img, to_world=rot)
    np.testing.assert_allclose(np3(em_rot.eval_direction(rot.transform_vector(dirs))),
                               val, atol=1e-5)


def _test_map() -> np.ndarray:
    rng = np.random.default_rng(4)
    h, w = 16, 32
    img = (rng.random((h, w, 3)) * 0.5).astype(np.float32)
    img[3:5, 20:23] *= 60.0        # a bright "sun"
    img[0, :, :] = [3.0, 2.0, 1.0]  # bright zenith row (tests the pole)
    img[-1, :5, :] = 0.0
    return img


def _quadrature(em, nu: int, nv: int):
    """Midpoint rule over (u, v) with dω = 2π² sin θ du dv."""
    u = (np.arange(nu) + 0.5) / nu
    v = (np.arange(nv) + 0.5) / nv
    uu, vv = np.meshgrid(u, v)
    dirs = uv_to_direction(bk.Float(uu.ravel()), bk.Float(vv.ravel()))
    jac = 2 * np.pi ** 2 * np.sin(np.pi * vv.ravel()) / (nu * nv)
    L = np3(em.eval_direction(dirs))
    pdf = np.array(em.pdf_direction(dr.zeros(bk.Array3f, uu.size), dirs))
    return uu.ravel(), vv.ravel(), L, pdf, jac


def test_envmap_sampling_is_consistent():
    em = EnvironmentMapEmitter(bitmap=_test_map(), scale=1.5)
    p = dr.zeros(bk.Array3f, N)
    ds = em.sample_direction(p, samples(N), True)
    w = np3(ds.weight)
    assert np.all(np.isfinite(w)) and np.all(np.isfinite(np.array(ds.pdf)))
    assert not np.any(np.array(ds.delta))
    assert np.all(np.isinf(np.array(ds.dist)))
    L = np3(em.eval_direction(ds.d))
    pdf = np.array(em.pdf_direction(p, ds.d))
    spdf = np.array(ds.pdf)
    # pdf_direction agrees with the sampler's pdf (cell boundaries aside).
    assert np.mean(np.abs(pdf - spdf) > 1e-3 * spdf) < 1e-3
    ok = pdf > 0
    np.testing.assert_allclose(w[ok], L[ok] / pdf[ok, None], rtol=2e-3, atol=1e-6)

    # E[weight] = ∫ L dω, the integral estimated independently by quadrature.
    _, _, Lq, pdfq, jac = _quadrature(em, 512, 256)
    integral = (Lq * jac[:, None]).sum(axis=0)
    est, err = w.mean(axis=0), w.std(axis=0) / math.sqrt(N)
    assert np.all(np.abs(est - integral) < 4 * err + 2e-3 * integral), (est, integral, err)
    # Importance sampling beats uniform sampling clearly on this peaky map.
    d_uni = warp.square_to_uniform_sphere(samples(N, seed=9))
    w_uni = 4 * np.pi * np3(em.eval_direction(d_uni))
    assert np.all(w.std(axis=0) < 0.5 * w_uni.std(axis=0))
    assert np.all(np.abs(w_uni.mean(axis=0) - integral) < 4 * w_uni.std(axis=0) / math.sqrt(N))

    # The pdf integrates to one: by quadrature (on a grid aligned with the 15 x 32
    # sampling cells, so the midpoint rule is exact) and by uniform-sphere MC.
    _, _, _, pdfq, jac = _quadrature(em, 32 * 16, 15 * 16)
    assert (pdfq * jac).sum() == pytest.approx(1.0, abs=2e-5)
    q = 4 * np.pi * np.array(em.pdf_direction(dr.zeros(bk.Array3f, N), d_uni))
    assert abs(q.mean() - 1.0) < 4 * q.std() / math.sqrt(N)


def test_envmap_sample_histogram_matches_pdf():
    em = EnvironmentMapEmitter(bitmap=_test_map())
    ds = em.sample_direction(dr.zeros(bk.Array3f, N), samples(N, seed=21), True)
    u, v, _ = direction_to_uv(ds.d)
    bu, bv = 8, 4
    iu = np.minimum((np.array(u) * bu).astype(int), bu - 1)
    iv = np.minimum((np.array(v) * bv).astype(int), bv - 1)
    hist = np.bincount(iv * bu + iu, minlength=bu * bv) / N
    uu, vv, _, pdfq, jac = _quadrature(em, 1024, 512)
    qbin = np.minimum((vv * bv).astype(int), bv - 1) * bu + np.minimum((uu * bu).astype(int),
                                                                         bu - 1)
    expected = np.bincount(qbin, weights=pdfq * jac, minlength=bu * bv)
    sigma = np.sqrt(expected * (1 - expected) / N)
    assert np.all(np.abs(hist - expected) <= 5 * sigma + 2e-3), (hist, expected)


def test_envmap_poles_and_black_map_have_no_nan():
    em = EnvironmentMapEmitter(bitmap=_test_map())
    poles = bk.Array3f(0.0, [1.0, -1.0], 0.0)
    assert np.all(np.isfinite(np3(em.eval_direction(poles))))
    assert np.all(np.isfinite(np.array(em.pdf_direction(dr.zeros(bk.Array3f, 2), poles))))
    np.testing.assert_allclose(np3(em.eval_direction(poles))[0], [3.0, 2.0, 1.0], rtol=1e-6)
    eps = dr.one_minus_epsilon(bk.Float)
    s = bk.Array2f([0.0, 0.3, eps, 0.0, eps], [0.0, 0.0, 0.0, eps, eps])
    ds = em.sample_direction(dr.zeros(bk.Array3f, 5), s, True)
    for arr in (np3(ds.weight), np3(ds.d), np.array(ds.pdf)):
        assert np.all(np.isfinite(arr))
    black = EnvironmentMapEmitter(bitmap=np.zeros((8, 16, 3), np.float32))
    ds = black.sample_direction(dr.zeros(bk.Array3f, 1000), samples(1000), True)
    assert np.all(np3(ds.weight) == 0) and np.all(np.isfinite(np.array(ds.pdf)))
    # Gradients are finite at the poles too.
    d = bk.Array3f([0.0, 0.0, 0.1], [1.0, -1.0, 0.99], [0.0, 0.0, 0.0])
    dr.enable_grad(d)
    dr.backward(dr.sum(em.eval_direction(d), axis=None))
    assert np.all(np.isfinite(np.array(dr.grad(d))))


def test_envmap_gradients_wrt_data_and_scale():
    img = _test_map()
    em = EnvironmentMapEmitter(bitmap=img, scale=2.0)
    params = {k: (v, s) for k, v, s in em.parameters()}
    data = params["data"][0]
    dr.enable_grad(data)
    d = bk.Array3f(0.3, 0.5, -0.8)
    d = dr.normalize(d)
    L = em.eval_direction(d)
    dr.backward(L[0])
    g = np.array(dr.grad(data))
    # Bilinear weights (times scale) on four texels of the red channel only.
    assert np.count_nonzero(g[..., 0]) <= 4 and np.all(g[..., 1:] == 0)
    assert g[..., 0].sum() == pytest.approx(2.0, rel=1e-5)
    assert np.all(g >= 0)
    # Forward mode through the 'scale' key: dL/dscale = L / scale.
    scale = bk.Float(2.0)
    dr.enable_grad(scale)
    params["scale"][1](scale)
    L = em.eval_direction(d)
    dr.forward_from(scale)
    np.testing.assert_allclose(np3(dr.grad(L)), np3(dr.detach(L)) / 2.0, rtol=1e-5)


def test_envmap_data_setter_rebuilds_sampling():
    em = EnvironmentMapEmitter(bitmap=np.ones((32, 64, 3), np.float32))
    up = bk.Array3f(0.0, 0.6, 0.8)
    pdf0 = np.array(em.pdf_direction(bk.Array3f(0.0, 0.0, 0.0), up))[0]
    # A uniform map: p_uv is constant per row of cells, proportional to the row's
    # ∫ sin θ dθ; p_ω = p_uv / (2π² sin θ), close to the uniform 1/(4π).
    theta = math.acos(0.6)
    r = math.floor(theta / math.pi * 31)
    band = math.cos(math.pi * r / 31) - math.cos(math.pi * (r + 1) / 31)
    assert pdf0 == pytest.approx(band * 31 / 2 / (2 * math.pi ** 2 * 0.8), rel=1e-4)
    assert pdf0 == pytest.approx(1 / (4 * np.pi), rel=0.05)
    img = np.ones((32, 64, 3), np.float32) * 0.01
    img[:16] = 10.0  # bright upper hemisphere
    dict((k, s) for k, _, s in em.parameters())["data"](bk.TensorXf(img))
    pdf1 = np.array(em.pdf_direction(bk.Array3f(0.0, 0.0, 0.0), up))[0]
    assert pdf1 > 1.5 * pdf0
    with pytest.raises(ValueError, match="shape"):
        dict((k, s) for k, _, s in em.parameters())["data"](bk.TensorXf(np.ones((4, 4, 2))))


def test_envmap_files_and_errors(tmp_path):
    img = _test_map()
    io.write_image(tmp_path / "env.exr", img)
    em = EnvironmentMapEmitter(filename=str(tmp_path / "env.exr"))
    np.testing.assert_array_equal(np.array(em.data), img)
    ldr = np.clip(img, 0, 1)
    io.write_image(tmp_path / "env.png", ldr)
    em = EnvironmentMapEmitter(filename=str(tmp_path / "env.png"))
    # PNG codes are sRGB-decoded back to linear radiance (8-bit precision).
    np.testing.assert_allclose(np.array(em.data), ldr, atol=0.01)
    with pytest.raises(FileNotFoundError, match="missing.exr"):
        EnvironmentMapEmitter(filename=str(tmp_path / "missing.exr"))
    with pytest.raises(ValueError, match="exactly one"):
        EnvironmentMapEmitter()
    with pytest.raises(ValueError, match="2×2"):
        EnvironmentMapEmitter(bitmap=np.ones((1, 8, 3)))
    bad = img.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        EnvironmentMapEmitter(bitmap=bad)
