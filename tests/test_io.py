"""lumigrad.io: image round trips, the sRGB curves, errors."""
from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest

import lumigrad
from lumigrad import io


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# -- sRGB curves ---------------------------------------------------------------

def test_srgb_known_values_and_inverse():
    # Breakpoint of the piecewise curve and a few textbook values.
    assert io.linear_to_srgb(0.0031308) == pytest.approx(0.04045, abs=1e-6)
    assert io.linear_to_srgb(1.0) == pytest.approx(1.0, abs=1e-6)
    assert io.linear_to_srgb(0.0) == 0.0
    assert io.linear_to_srgb(0.5) == pytest.approx(1.055 * 0.5 ** (1 / 2.4) - 0.055, rel=1e-6)
    assert io.srgb_to_linear(0.5) == pytest.approx(((0.5 + 0.055) / 1.055) ** 2.4, rel=1e-6)
    assert io.srgb_to_linear(0.02) == pytest.approx(0.02 / 12.92, rel=1e-6)
    x = np.linspace(0.0, 1.0, 10001, dtype=np.float32)
    np.testing.assert_allclose(io.srgb_to_linear(io.linear_to_srgb(x)), x, atol=2e-6)
    np.testing.assert_allclose(io.linear_to_srgb(io.srgb_to_linear(x)), x, atol=2e-6)
    # Monotone and continuous across the breakpoints (no jump at 0.04045 / 0.0031308).
    assert np.all(np.diff(io.linear_to_srgb(x)) >= 0)
    eps = 1e-6
    assert abs(io.linear_to_srgb(0.0031308 + eps) - io.linear_to_srgb(0.0031308 - eps)) < 1e-4
    assert abs(io.srgb_to_linear(0.04045 + eps) - io.srgb_to_linear(0.04045 - eps)) < 1e-5
    # Never NaN outside [0, 1].
    assert np.all(np.isfinite(io.srgb_to_linear(np.array([-1.0, 2.0]))))
    assert np.all(np.isfinite(io.linear_to_srgb(np.array([-1.0, 2.0]))))


# -- round trips ---------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 3, 4])
def test_exr_round_trip_exact(tmp_path, rng, channels):
    img = (rng.random((5, 7, channels)) * 10 - 2).astype(np.float32)
    path = tmp_path / "sub" / "dir" / "img.exr"  # parent folders are created
    io.write_image(path, img)
    back = io.read_image(path)
    assert back.dtype == np.float32 and back.shape == img.shape
    np.testing.assert_array_equal(back, img)


def test_exr_two_dimensional_and_tensor_input(tmp_path, rng):
    img = rng.random((4, 6)).astype(np.float32)
    io.write_image(tmp_path / "grey.exr", img)
    back = io.read_image(tmp_path / "grey.exr")
    assert back.shape == (4, 6, 1)
    np.testing.assert_array_equal(back[:, :, 0], img)
    rgb = rng.random((4, 6, 3)).astype(np.float32)
    io.write_image(tmp_path / "t.exr", lumigrad.TensorXf(rgb))
    np.testing.assert_array_equal(io.read_image(tmp_path / "t.exr"), rgb)


@pytest.mark.parametrize("ext", ["pfm", "npy"])
def test_float_formats_round_trip(tmp_path, rng, ext):
    img = rng.random((6, 5, 3)).astype(np.float32) * 100
    io.write_image(tmp_path / f"x.{ext}", img)
    np.testing.assert_array_equal(io.read_image(tmp_path / f"x.{ext}"), img)


def test_rgbe_round_trip_relative_precision(tmp_path, rng):
    img = (rng.random((6, 9, 3)) * 50).astype(np.float32) + 0.01
    io.write_image(tmp_path / "x.hdr", img)
    back = io.read_image(tmp_path / "x.hdr")
    assert back.shape == img.shape
    # RGBE keeps 8 mantissa bits relative to the pixel's largest component.
    err = np.abs(back - img) / img.max(axis=2, keepdims=True)
    assert err.max() < 2.0 / 256


def test_rgbe_run_length_encoded_file(tmp_path):
    """A hand-made new-style RLE scanline file decodes to the expected pixels."""
    w, h = 10, 2
    rgbe = np.zeros((h, w, 4), np.uint8)
    rgbe[..., 0] = 128          # mantissa 128 with exponent 129 -> 128 * 2**(129-136) = 1.0
    rgbe[..., 1] = np.arange(w)
    rgbe[..., 2] = 64
    rgbe[..., 3] = 129
    body = b""
    for y in range(h):
        body += bytes([2, 2, w >> 8, w & 255])
        for c in range(4):
            vals = rgbe[y, :, c]
            if np.all(vals == vals[0]):
                body += bytes([128 + w, int(vals[0])])  # one run
            else:
                body += bytes([w]) + vals.tobytes()      # one literal dump
    path = tmp_path / "rle.hdr"
    path.write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n" +
                     f"-Y {h} +X {w}\n".encode() + body)
    img = io.read_image(path)
    assert img.shape == (h, w, 3)
    scale = 2.0 ** (129 - 136)
    np.testing.assert_allclose(img[..., 0], 128 * scale)
    np.testing.assert_allclose(img[0, :, 1], np.arange(w) * scale)
    np.testing.assert_allclose(img[..., 2], 64 * scale)


def test_png_round_trip_within_one_code(tmp_path, rng):
    img = rng.random((8, 9, 3)).astype(np.float32) * 1.2  # some values clip at 1
    io.write_image(tmp_path / "x.png", img)
    back = io.read_image(tmp_path / "x.png")
    assert back.shape == (8, 9, 3)
    expected = io.linear_to_srgb(np.clip(img, 0, 1))
    assert np.abs(back - expected).max() <= 0.5 / 255 + 1e-6
    # Decoding the codes gives the linear values back to 8-bit precision.
    lin = io.srgb_to_linear(back)
    step = np.abs(io.srgb_to_linear(np.minimum(expected + 1 / 255, 1)) - np.clip(img, 0, 1))
    assert np.all(np.abs(lin - np.clip(img, 0, 1)) <= step + 1e-6)


def test_png_exposure_grey_alpha_and_jpeg(tmp_path, rng):
    img = rng.random((4, 4, 3)).astype(np.float32) * 0.4
    io.write_image(tmp_path / "a.png", img * 2)
    io.write_image(tmp_path / "b.png", img, exposure=1.0)
    np.testing.assert_array_equal(io.read_image(tmp_path / "a.png"),
                                  io.read_image(tmp_path / "b.png"))
    grey = rng.random((3, 5)).astype(np.float32)
    io.write_image(tmp_path / "g.png", grey)
    assert io.read_image(tmp_path / "g.png").shape == (3, 5, 1)
    rgba = rng.random((3, 5, 4)).astype(np.float32)
    io.write_image(tmp_path / "a4.png", rgba)
    back = io.read_image(tmp_path / "a4.png")
    assert back.shape == (3, 5, 4)
    # Alpha is stored linearly (not sRGB-encoded).
    assert np.abs(back[..., 3] - rgba[..., 3]).max() <= 0.5 / 255 + 1e-6
    flat = np.full((16, 16, 3), 0.2, np.float32)
    io.write_image(tmp_path / "x.jpg", flat)
    np.testing.assert_allclose(io.read_image(tmp_path / "x.jpg"), io.linear_to_srgb(flat),
                               atol=2 / 255)


def test_read_png_is_not_srgb_decoded_and_16_bit(tmp_path):
    from PIL import Image
    Image.fromarray(np.full((2, 3, 3), 128, np.uint8)).save(tmp_path / "c.png")
    np.testing.assert_allclose(io.read_image(tmp_path / "c.png"), 128 / 255)
    codes = np.array([[0, 1000, 65535]], dtype=np.uint16)
    Image.fromarray(codes).save(tmp_path / "g16.png")
    np.testing.assert_allclose(io.read_image(tmp_path / "g16.png")[..., 0], codes / 65535,
                               rtol=1e-6)


def test_is_hdr():
    assert io.is_hdr("a/b.EXR") and io.is_hdr("x.hdr") and io.is_hdr("x.pfm")
    assert not io.is_hdr("x.png") and not io.is_hdr("x.jpg")


# -- errors --------------------------------------------------------------------

def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nope.exr"
    with pytest.raises(FileNotFoundError, match="nope.exr"):
        io.read_image(path)


def test_unreadable_and_unsupported_files(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match="bad.png"):
        io.read_image(bad)
    bad_exr = tmp_path / "bad.exr"
    bad_exr.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="bad.exr"):
        io.read_image(bad_exr)
    odd = tmp_path / "x.xyz"
    odd.write_bytes(b"123")
    with pytest.raises(ValueError, match="unsupported"):
        io.read_image(odd)
    with pytest.raises(ValueError, match="unsupported"):
        io.write_image(tmp_path / "x.xyz", np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="shape"):
        io.write_image(tmp_path / "x.exr", np.zeros((2, 2, 7)))
    pfm = tmp_path / "short.pfm"
    pfm.write_bytes(b"PF\n4 4\n-1.0\n" + struct.pack("<3f", 1, 2, 3))
    with pytest.raises(ValueError, match="truncated"):
        io.read_image(pfm)


def test_nan_images_are_written_with_a_warning(tmp_path):
    img = np.zeros((2, 2, 3), np.float32)
    img[0, 0, 0] = np.nan
    img[1, 1, 2] = np.inf
    with pytest.warns(RuntimeWarning, match="2 NaN/inf"):
        io.write_image(tmp_path / "n.exr", img)
    back = io.read_image(tmp_path / "n.exr")
    assert np.isnan(back[0, 0, 0]) and np.isinf(back[1, 1, 2])
    with pytest.warns(RuntimeWarning):
        io.write_image(tmp_path / "n.png", img)
    assert np.all(np.isfinite(io.read_image(tmp_path / "n.png")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        io.write_image(tmp_path / "ok.png", np.zeros((2, 2, 3)))


def test_to_numpy_copies():
    a = np.ones((2, 2, 3), np.float32)
    b = io.to_numpy(a)
    b[0, 0, 0] = 5
    assert a[0, 0, 0] == 1
    t = io.to_numpy(lumigrad.TensorXf(a))
    assert t.shape == (2, 2, 3) and t.dtype == np.float32
    with pytest.raises(TypeError):
        io.to_numpy(lumigrad.Float(1, 2))
