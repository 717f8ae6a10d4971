"""Texture plugins: constant, bitmap (bilinear/nearest, wrap modes, files,
orientation, gradients w.r.t. texels) and checkerboard."""
from __future__ import annotations

import numpy as np
import pytest
import drjit as dr

from lumigrad import backend as bk
from lumigrad.core.interaction import SurfaceInteraction
from lumigrad.geometry.transform import Transform4f
from lumigrad.scene.schema import REGISTRY
from lumigrad.textures import (BitmapTexture, CheckerboardTexture, ConstantTexture, as_texture)


def make_si(u, v):
    uv = bk.Array2f(np.asarray(u, np.float32), np.asarray(v, np.float32))
    n = dr.width(uv)
    return SurfaceInteraction(t=bk.Float(1), p=bk.Array3f(0), n=bk.Array3f(0, 0, 1),
                              sh_n=bk.Array3f(0, 0, 1), uv=uv,
                              wi=dr.full(bk.Array3f, 0.0, n), prim=bk.UInt32(0),
                              shape=bk.UInt32(0), valid=bk.Bool(True))


def as_np(c) -> np.ndarray:
    return np.array(c).T  # (n, 3)


# -- numpy reference of the documented lookup -----------------------------------

def wrap_np(i, n, mode):
    if mode == "clamp":
        return np.clip(i, 0, n - 1)
    if mode == "repeat":
        return np.mod(i, n)
    r = np.mod(i, 2 * n)
    return np.where(r >= n, 2 * n - 1 - r, r)


def bilinear_np(img, u, v, mode):
    h, w, _ = img.shape
    x = u * w - 0.5
    y = v * h - 0.5  # Mitsuba 3: v = 0 is the first row
    x0 = np.floor(x).astype(int)
    y0 = np.floor(y).astype(int)
    fx = (x - x0)[:, None]
    fy = (y - y0)[:, None]
    xa, xb = wrap_np(x0, w, mode), wrap_np(x0 + 1, w, mode)
    ya, yb = wrap_np(y0, h, mode), wrap_np(y0 + 1, h, mode)
    top = img[ya, xa] * (1 - fx) + img[ya, xb] * fx
    bot = img[yb, xa] * (1 - fx) + img[yb, xb] * fx
    return top * (1 - fy) + bot * fy


RNG = np.random.default_rng(7)
IMG = RNG.random((5, 7, 3)).astype(np.float32)
U = RNG.uniform(-1.3, 2.2, 64).astype(np.float32)
V = RNG.uniform(-1.3, 2.2, 64).astype(np.float32)


# -- constant -------------------------------------------------------------------

def test_constant_texture_values_and_keys():
    t = ConstantTexture(0.25)
    assert np.allclose(np.array(t.eval(None)).ravel(), 0.25)
    t = ConstantTexture((0.1, 0.2, 0.6))
    assert np.allclose(np.array(t.eval(None)).ravel(), [0.1, 0.2, 0.6])
    assert t.eval_1(None)[0] == pytest.approx(0.3)
    assert t.mean() == pytest.approx(0.3)
    assert t.is_constant()
    keys = [k for k, _, _ in t.parameters()]
    assert keys == ["value"]
    assert REGISTRY[("texture", "constant")] is ConstantTexture
    with pytest.raises(ValueError, match="expected 1 or 3"):
        ConstantTexture((1.0, 2.0))
    with pytest.raises(ValueError, match="not finite"):
        ConstantTexture(float("nan"))
    with pytest.raises(TypeError):
        as_texture("red", "bsdf 'diffuse': 'reflectance'")


def test_constant_texture_setter_keeps_gradients():
    t = ConstantTexture(0.5)
    theta = bk.Float(2.0)
    dr.enable_grad(theta)
    _, _, setter = next(t.parameters())
    setter(bk.Array3f(0.2 * theta, 0.5 * theta, 0.8 * theta))   # latent variable
    y = t.eval(None)
    dr.backward(y[0] + y[1] + y[2])
    assert dr.grad(theta)[0] == pytest.approx(1.5)
    setter(bk.Float(0.3))                                       # a grey Float broadcasts
    assert np.allclose(np.array(t.eval(None)).ravel(), 0.3)
    with pytest.raises(ValueError, match="width"):
        setter(bk.Float([0.1, 0.2]))


# -- bitmap ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["repeat", "mirror", "clamp"])
def test_bitmap_bilinear_matches_numpy(mode):
    tex = BitmapTexture(data=IMG, wrap_mode=mode)
    out = as_np(tex.eval(make_si(U, V)))
    ref = bilinear_np(IMG.astype(np.float64), U.astype(np.float64), V.astype(np.float64), mode)
    assert np.allclose(out, ref, atol=2e-5)


def test_bitmap_nearest_and_grey():
    tex = BitmapTexture(data=IMG, filter_type="nearest", wrap_mode="repeat")
    out = as_np(tex.eval(make_si(U, V)))
    h, w, _ = IMG.shape
    xi = np.mod(np.floor(U * w).astype(int), w)
    yi = np.mod(np.floor(V * h).astype(int), h)
    assert np.allclose(out, IMG[yi, xi], atol=1e-6)
    grey = BitmapTexture(data=IMG[:, :, 0])
    g = np.array(grey.eval_1(make_si(U, V)))
    ref = bilinear_np(IMG[:, :, :1].astype(np.float64), U, V, "repeat")[:, 0]
    assert np.allclose(g, ref, atol=2e-5)
    # eval_1 of an RGB bitmap is its luminance, as Mitsuba 3.9.1's bitmap gives it (a
    # uniform (0.2, 0.5, 0.8) image reads 0.457849 there; its constant 'rgb' reads the mean)
    e1 = np.array(BitmapTexture(data=IMG).eval_1(make_si(U, V)))
    lum = bilinear_np(IMG.astype(np.float64), U, V, "repeat") @ np.array([0.212671, 0.715160,
                                                                          0.072169])
    assert np.allclose(e1, lum, atol=2e-5)
    flat = np.zeros((4, 4, 3), np.float32) + np.array([0.2, 0.5, 0.8], np.float32)
    assert np.allclose(np.array(BitmapTexture(data=flat, raw=True).eval_1(make_si(U, V))),
                       0.457849, atol=1e-5)


def test_bitmap_orientation_and_to_uv():
    # top row red, bottom row blue: as in Mitsuba 3, v = 0 is the first (top) row,
    # so uv (.5, .9) is near the bottom of the image.
    img = np.zeros((2, 1, 3), np.float32)
    img[0, 0] = (1, 0, 0)
    img[1, 0] = (0, 0, 1)
    tex = BitmapTexture(data=img, filter_type="nearest")
    out = as_np(tex.eval(make_si([0.5, 0.5], [0.9, 0.1])))
    assert np.allclose(out[0], [0, 0, 1]) and np.allclose(out[1], [1, 0, 0])
    # to_uv = scale by 2 repeats the image twice
    t2 = BitmapTexture(data=IMG, to_uv=Transform4f().scale((2.0, 2.0, 1.0)))
    a = as_np(t2.eval(make_si([0.1], [0.2])))
    b = as_np(BitmapTexture(data=IMG).eval(make_si([0.2], [0.4])))
    assert np.allclose(a, b, atol=1e-6)


def test_bitmap_gradients_are_bilinear_weights():
    tex = BitmapTexture(data=IMG, wrap_mode="clamp")
    dr.enable_grad(tex.data)
    u, v = np.float32(0.33), np.float32(0.61)
    out = tex.eval(make_si([u], [v]))
    dr.backward(out[0])                         # red channel only
    g = np.array(dr.grad(tex.data))
    h, w, _ = IMG.shape
    x, y = u * w - 0.5, v * h - 0.5
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - x0, y - y0
    ref = np.zeros_like(IMG)
    ref[y0, x0, 0] += (1 - fx) * (1 - fy)
    ref[y0, x0 + 1, 0] += fx * (1 - fy)
    ref[y0 + 1, x0, 0] += (1 - fx) * fy
    ref[y0 + 1, x0 + 1, 0] += fx * fy
    assert np.allclose(g, ref, atol=1e-6)

    # forward mode: a tangent on every texel of channel 1 gives d(out) = (0, 1, 0)
    tex2 = BitmapTexture(data=IMG)
    dr.enable_grad(tex2.data)
    tangent = np.zeros_like(IMG)
    tangent[:, :, 1] = 1.0
    dr.set_grad(tex2.data, bk.TensorXf(tangent))
    out2 = tex2.eval(make_si(U[:8], V[:8]))
    dr.forward_to(out2)
    assert np.allclose(as_np(dr.grad(out2)), np.tile([0.0, 1.0, 0.0], (8, 1)), atol=1e-5)


def test_bitmap_uv_gradient_matches_finite_differences():
    tex = BitmapTexture(data=IMG)
    u = bk.Float(0.41)
    dr.enable_grad(u)
    si = make_si([0.0], [0.37])
    si.uv = bk.Array2f(u, si.uv[1])
    out = tex.eval(si)
    dr.forward(u)
    d_ad = as_np(dr.grad(out))[0]
    eps = 1e-3
    f = lambda uu: bilinear_np(IMG.astype(np.float64), np.array([uu]), np.array([0.37]), "repeat")[0]
    d_fd = (f(0.41 + eps) - f(0.41 - eps)) / (2 * eps)
    assert np.allclose(d_ad, d_fd, atol=1e-3)


def test_bitmap_files(tmp_path):
    from lumigrad import io

    img = np.linspace(0.05, 0.95, 4 * 3 * 3, dtype=np.float32).reshape(4, 3, 3)
    exr = tmp_path / "a.exr"
    io.write_image(exr, img)
    t = BitmapTexture(filename=str(exr), filter_type="nearest")
    assert np.allclose(np.array(t.data), img, atol=1e-6)              # EXR: linear as is
    png = tmp_path / "a.png"
    io.write_image(png, img)                                          # stores sRGB codes
    lin = BitmapTexture(filename=str(png))
    assert np.allclose(np.array(lin.data), img, atol=0.01)            # decoded to linear
    raw = BitmapTexture(filename=str(png), raw=True)
    assert np.allclose(np.array(raw.data), io.linear_to_srgb(img), atol=1 / 255 + 1e-6)
    assert lin.mean() == pytest.approx(float(img.mean()), abs=0.01)
    assert [k for k, _, _ in lin.parameters()] == ["data"]

    with pytest.raises(FileNotFoundError, match="nope.png"):
        BitmapTexture(filename=str(tmp_path / "nope.png"))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.png"):
        BitmapTexture(filename=str(bad))
    with pytest.raises(ValueError, match="wrap_mode"):
        BitmapTexture(data=img, wrap_mode="tile")
    with pytest.raises(ValueError, match="filename"):
        BitmapTexture()


def test_bitmap_data_setter():
    tex = BitmapTexture(data=IMG)
    _, _, setter = next(tex.parameters())
    setter(bk.TensorXf(np.ones((2, 2, 3), np.float32)))
    assert np.allclose(as_np(tex.eval(make_si([0.3], [0.7]))), 1.0)
    assert tex.mean() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        setter(bk.TensorXf(np.ones((2, 2, 2), np.float32)))


# -- checkerboard ---------------------------------------------------------------

def test_checkerboard_pattern():
    tex = CheckerboardTexture(color0=(1.0, 0.0, 0.0), color1=0.2)
    u = np.array([0.25, 0.75, 0.25, 0.75, 1.25, -0.25], np.float32)
    v = np.array([0.25, 0.25, 0.75, 0.75, 0.25, 0.25], np.float32)
    out = as_np(tex.eval(make_si(u, v)))
    c0, c1 = np.array([1.0, 0, 0]), np.array([0.2, 0.2, 0.2])
    for row, exp in zip(out, [c0, c1, c1, c0, c0, c1]):
        assert np.allclose(row, exp)
    assert np.allclose(np.array(tex.eval_1(make_si(u[:2], v[:2]))), [1 / 3, 0.2])
    assert tex.mean() == pytest.approx(0.5 * (1 / 3 + 0.2))
    assert [k for k, _, _ in tex.parameters()] == ["color0.value", "color1.value"]
    d = CheckerboardTexture()
    assert np.allclose(as_np(d.eval(make_si([0.1, 0.6], [0.1, 0.1]))),
                       [[0.4] * 3, [0.2] * 3])
