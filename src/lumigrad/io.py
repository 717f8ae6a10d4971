"""Image files: reading and writing EXR, PNG, JPEG (and PFM, Radiance HDR, NPY).

Conventions
-----------
* Images are ``numpy.float32`` arrays of shape ``(H, W, C)`` with ``C`` in
  {1, 3, 4} (grey, RGB, RGBA). Row 0 is the top of the picture, as in every
  image file and in lumigrad's ``TensorXf`` renders.
* :func:`read_image` returns the values stored in the file. 8/16-bit files
  (PNG, JPEG, ...) are scaled to [0, 1] by ``value / (2**bits - 1)`` and are
  **not** sRGB-decoded: whether the numbers encode colour (sRGB) or data
  (normal maps, roughness) is the caller's decision; use
  :func:`srgb_to_linear` for colour. EXR/PFM/HDR files are linear floats.
* :func:`write_image` writes linear float data to EXR/PFM/HDR/NPY unchanged,
  and tonemaps for 8-bit formats: ``linear_to_srgb(clip(x * 2**exposure, 0, 1))``
  rounded to 8 bits (alpha is clipped, not sRGB-encoded).

The sRGB transfer function is the exact piecewise curve of IEC 61966-2-1:

.. math::
    \\mathrm{srgb}(x) = \\begin{cases} 12.92\\,x & x \\le 0.0031308 \\\\
                      1.055\\,x^{1/2.4} - 0.055 & \\text{otherwise} \\end{cases}

Known limitation: Pillow decodes 16-bit *colour* PNGs at 8-bit precision (16-bit
grey PNGs keep their full precision).
"""
from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

__all__ = [
    "read_image", "write_image", "is_hdr", "srgb_to_linear", "linear_to_srgb",
    "to_numpy", "HDR_EXTENSIONS", "LDR_EXTENSIONS",
]

#: Extensions of linear (floating point) formats.
HDR_EXTENSIONS = (".exr", ".hdr", ".rgbe", ".pfm", ".npy")
#: Extensions of 8/16-bit display formats handled by Pillow.
LDR_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tga", ".tif", ".tiff", ".ppm",
                  ".pgm", ".webp")


# ----------------------------------------------------------------------------
# Colour curves
# ----------------------------------------------------------------------------

def srgb_to_linear(x: Any) -> np.ndarray:
    """Exact inverse sRGB transfer function (IEC 61966-2-1), elementwise.

    ``x / 12.92`` for ``x <= 0.04045``, else ``((x + 0.055) / 1.055) ** 2.4``.
    Values outside [0, 1] are extended with the same formulas (negative inputs
    use the linear branch) so the function never returns NaN.
    """
    x = np.asarray(x, dtype=np.float32)
    hi = np.power((np.maximum(x, 0.04045) + 0.055) / 1.055, 2.4)
    return np.where(x <= 0.04045, x / 12.92, hi).astype(np.float32)


def linear_to_srgb(x: Any) -> np.ndarray:
    """Exact sRGB transfer function (IEC 61966-2-1), elementwise.

    ``12.92 x`` for ``x <= 0.0031308``, else ``1.055 x**(1/2.4) - 0.055``.
    Inverse of :func:`srgb_to_linear` on [0, 1].
    """
    x = np.asarray(x, dtype=np.float32)
    hi = 1.055 * np.power(np.maximum(x, 0.0031308), 1.0 / 2.4) - 0.055
    return np.where(x <= 0.0031308, 12.92 * x, hi).astype(np.float32)


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------

def _ext(path: str | os.PathLike) -> str:
    return os.path.splitext(os.fspath(path))[1].lower()


def is_hdr(path: str | os.PathLike) -> bool:
    """True when the file's extension names a linear floating-point format
    (EXR, Radiance HDR/RGBE, PFM, NPY); False for 8/16-bit display formats."""
    return _ext(path) in HDR_EXTENSIONS


def to_numpy(image: Any) -> np.ndarray:
    """A float32 ``numpy`` copy of an image given as a numpy array, a Dr.Jit
    tensor (``TensorXf``, gradients are dropped) or a nested list.

    A 2-D input stays 2-D; :func:`write_image` and the plotting helpers accept
    both ``(H, W)`` and ``(H, W, C)``.
    """
    if isinstance(image, np.ndarray):
        return np.array(image, dtype=np.float32, copy=True)
    mod = type(image).__module__ or ""
    if mod.startswith("drjit"):
        import drjit as dr
        if not dr.is_tensor_v(image):
            raise TypeError(
                f"to_numpy: expected an image tensor (TensorXf of shape (H, W[, C])), "
                f"got {type(image).__name__}; wrap flat arrays with TensorXf(x, shape=...)")
        return np.array(dr.detach(image), dtype=np.float32, copy=True)
    try:
        return np.array(image, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"to_numpy: cannot convert {type(image).__name__} to an image "
                        f"array ({exc})") from None


def _as_hwc(img: np.ndarray, path: str) -> np.ndarray:
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4) or img.shape[0] == 0 \
            or img.shape[1] == 0:
        raise ValueError(f"image for '{path}' must have shape (H, W) or (H, W, C) with "
                         f"C in 1..4 and H, W > 0; got {img.shape}")
    return img


# ----------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------

def _read_exr(path: str) -> np.ndarray:
    import OpenEXR
    try:
        f = OpenEXR.File(path, separate_channels=True)
    except Exception as exc:  # OpenEXR raises plain Exceptions with a message
        raise ValueError(f"cannot read EXR file '{path}': {exc}") from None
    try:
        # A file cut short after its header opens, then fails here ("Invalid part
        # index '0': file has 0 parts"), naming no file: say what it is.
        chans = {name: np.asarray(c.pixels) for name, c in f.channels().items()}
    except Exception as exc:  # noqa: BLE001 - OpenEXR raises plain Exceptions
        raise ValueError(f"cannot read EXR file '{path}': the file is truncated or corrupt "
                         f"(its pixel data cannot be read: {exc})") from None
    if not chans:
        raise ValueError(f"EXR file '{path}' has no image channels")

    def pick(prefix: str) -> list[np.ndarray] | None:
        if all(prefix + c in chans for c in "RGB"):
            names = [prefix + c for c in "RGB"] + ([prefix + "A"] if prefix + "A" in chans
                                                   else [])
            return [chans[n] for n in names]
        if prefix + "Y" in chans:
            return [chans[prefix + "Y"]] + ([chans[prefix + "A"]] if prefix + "A" in chans
                                            else [])
        return None

    planes = pick("")
    if planes is None:
        # Multi-layer file without a default layer: take the first RGB/Y layer.
        layers = sorted({n.rsplit(".", 1)[0] + "." for n in chans if "." in n})
        for layer in layers:
            planes = pick(layer)
            if planes is not None:
                break
    if planes is None:
        if len(chans) == 1:
            planes = list(chans.values())
        else:
            raise ValueError(f"EXR file '{path}': no R,G,B or Y channels among "
                             f"{sorted(chans)}")
    shapes = {p.shape for p in planes}
    if len(shapes) != 1:
        raise ValueError(f"EXR file '{path}': channels have different sizes "
                         "(subsampled channels are not supported)")
    return np.stack([p.astype(np.float32) for p in planes], axis=-1)


def _read_pil(path: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "P":  # palette: expand to the palette's colours
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                mode = im.mode
            if mode in ("1", "L", "LA", "RGB", "RGBA"):
                arr = np.asarray(im, dtype=np.float32) / 255.0
            elif mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                arr = np.asarray(im).astype(np.float32) / 65535.0
            elif mode == "I":
                # 32-bit integer mode; Pillow uses it for 16-bit grey PNGs.
                raw = np.asarray(im)
                scale = 65535.0 if raw.max(initial=0) <= 65535 else float(2 ** 32 - 1)
                arr = raw.astype(np.float32) / scale
            elif mode == "F":
                arr = np.asarray(im, dtype=np.float32)
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa", "La", "PA"):
                im = im.convert("RGBA" if mode in ("RGBa", "La", "PA") else "RGB")
                arr = np.asarray(im, dtype=np.float32) / 255.0
            else:
                raise ValueError(f"image '{path}' has unsupported pixel mode {mode!r}")
    except UnidentifiedImageError:
        raise ValueError(f"cannot read image '{path}': not a recognised image file") \
            from None
    except OSError as exc:
        raise ValueError(f"cannot read image '{path}': {exc}") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr, dtype=np.float32)


def _read_pfm(path: str) -> np.ndarray:
    with open(path, "rb") as fh:
        data = fh.read()
    # Header: three whitespace-separated tokens: 'PF'/'Pf', 'W H', scale.
    tokens: list[bytes] = []
    pos = 0
    while len(tokens) < 4 and pos < len(data):
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace():
            pos += 1
        tokens.append(data[start:pos])
    pos += 1  # the single whitespace after the scale
    if len(tokens) < 4 or tokens[0] not in (b"PF", b"Pf"):
        raise ValueError(f"cannot read PFM file '{path}': bad header")
    try:
        w, h, scale = int(tokens[1]), int(tokens[2]), float(tokens[3])
    except ValueError:
        raise ValueError(f"cannot read PFM file '{path}': bad header") from None
    c = 3 if tokens[0] == b"PF" else 1
    dtype = "<f4" if scale < 0 else ">f4"
    n = w * h * c
    if len(data) - pos < 4 * n:
        raise ValueError(f"cannot read PFM file '{path}': file is truncated")
    arr = np.frombuffer(data, dtype=dtype, count=n, offset=pos).reshape(h, w, c)
    return np.ascontiguousarray(arr[::-1], dtype=np.float32)  # PFM rows are bottom-up


def _read_rgbe(path: str) -> np.ndarray:
    """Radiance RGBE (.hdr): flat or new-style run-length encoded scanlines."""
    with open(path, "rb") as fh:
        data = fh.read()
    if not (data.startswith(b"#?RADIANCE") or data.startswith(b"#?RGBE")):
        raise ValueError(f"cannot read HDR file '{path}': missing '#?RADIANCE' header")
    end = data.find(b"\n\n")
    if end < 0:
        raise ValueError(f"cannot read HDR file '{path}': bad header")
    header = data[:end].decode("latin-1")
    if "FORMAT=" in header and "32-bit_rle_rgbe" not in header:
        raise ValueError(f"HDR file '{path}': only the 32-bit_rle_rgbe format is supported")
    line_end = data.find(b"\n", end + 2)
    res = data[end + 2:line_end].decode("latin-1").split()
    if len(res) != 4 or res[0] not in ("-Y", "+Y") or res[2] not in ("+X", "-X"):
        raise ValueError(f"HDR file '{path}': unsupported resolution line {res}")
    h, w = int(res[1]), int(res[3])
    buf = np.frombuffer(data, dtype=np.uint8, offset=line_end + 1)
    out = np.empty((h, w, 4), dtype=np.uint8)
    pos = 0
    try:
        for y in range(h):
            if (8 <= w < 32768 and buf[pos] == 2 and buf[pos + 1] == 2
                    and (int(buf[pos + 2]) << 8 | int(buf[pos + 3])) == w):
                pos += 4
                for c in range(4):  # each component is run-length coded separately
                    x = 0
                    while x < w:
                        count = int(buf[pos])
                        pos += 1
                        if count > 128:
                            count -= 128
                            out[y, x:x + count, c] = buf[pos]
                            pos += 1
                        else:
                            out[y, x:x + count, c] = buf[pos:pos + count]
                            pos += count
                        x += count
            else:  # flat (uncompressed) scanline
                out[y] = buf[pos:pos + 4 * w].reshape(w, 4)
                pos += 4 * w
    except (IndexError, ValueError):
        raise ValueError(f"cannot read HDR file '{path}': file is truncated or corrupt") \
            from None
    if res[0] == "+Y":
        out = out[::-1]
    if res[2] == "-X":
        out = out[:, ::-1]
    e = out[..., 3].astype(np.int32)
    scale = np.where(e > 0, np.ldexp(1.0, e - 136), 0.0).astype(np.float32)
    return np.ascontiguousarray(out[..., :3].astype(np.float32) * scale[..., None])


def check_finite_image(img: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """Return ``img`` if all its values are finite, else raise ``ValueError``
    naming the file, how many values are NaN or infinite and where the first is
    (textures and environment maps must not hold NaN: it spreads to every pixel
    that sees it)."""
    bad = ~np.isfinite(img)
    if bad.any():
        r, c = (int(x) for x in np.argwhere(bad)[0][:2])
        nan = int(np.count_nonzero(np.isnan(img)))
        raise ValueError(f"image file '{os.fspath(path)}' holds {nan} NaN and "
                         f"{int(np.count_nonzero(bad)) - nan} infinite value(s) (the first "
                         f"at row {r}, column {c}); fix or re-export the image")
    return img


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file into a float32 ``(H, W, C)`` array, ``C`` in {1, 3, 4}.

    EXR (via the OpenEXR 3.x ``OpenEXR.File`` API), PFM, Radiance ``.hdr`` and
    ``.npy`` give linear floats; PNG/JPEG/... give the stored code values scaled
    to [0, 1] (*not* sRGB-decoded). Grey+alpha becomes RGBA.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (naming
    the file and the reason) for unreadable or unsupported files.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"image file '{path}' does not exist")
    if os.path.isdir(path):
        raise ValueError(f"cannot read image '{path}': it is a directory")
    ext = _ext(path)
    if ext == ".exr":
        img = _read_exr(path)
    elif ext in (".hdr", ".rgbe"):
        img = _read_rgbe(path)
    elif ext == ".pfm":
        img = _read_pfm(path)
    elif ext == ".npy":
        try:
            img = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"cannot read '{path}': {exc}") from None
        if not np.issubdtype(img.dtype, np.number):
            raise ValueError(f"'{path}' does not hold a numeric array")
        img = img.astype(np.float32)
    elif ext in LDR_EXTENSIONS or ext == "":
        img = _read_pil(path)
    else:
        raise ValueError(f"cannot read image '{path}': unsupported file extension "
                         f"'{ext}' (supported: {', '.join(HDR_EXTENSIONS + LDR_EXTENSIONS)})")
    img = _as_hwc(np.asarray(img, dtype=np.float32), path)
    if img.shape[2] == 2:  # e.g. a YA exr or npy
        img = np.concatenate([np.repeat(img[:, :, :1], 3, axis=2), img[:, :, 1:]], axis=2)
    return np.ascontiguousarray(img)


# ----------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------

def _write_exr(path: str, img: np.ndarray) -> None:
    import OpenEXR
    c = img.shape[2]
    if c == 1:
        chans = {"Y": img[:, :, 0]}
    elif c == 2:
        chans = {"Y": img[:, :, 0], "A": img[:, :, 1]}
    else:
        chans = {"RGBA"[:c]: img}
    chans = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in chans.items()}
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    try:
        OpenEXR.File(header, chans).write(path)
    except Exception as exc:
        raise ValueError(f"cannot write EXR file '{path}': {exc}") from None


def _write_pfm(path: str, img: np.ndarray) -> None:
    c = img.shape[2]
    if c not in (1, 3):
        img = img[:, :, :3] if c == 4 else img[:, :, :1]
        c = img.shape[2]
    h, w = img.shape[:2]
    with open(path, "wb") as fh:
        fh.write(f"{'PF' if c == 3 else 'Pf'}\n{w} {h}\n-1.0\n".encode("ascii"))
        fh.write(np.ascontiguousarray(img[::-1], dtype="<f4").tobytes())


def _write_rgbe(path: str, img: np.ndarray) -> None:
    c = img.shape[2]
    rgb = np.repeat(img[:, :, :1], 3, axis=2) if c < 3 else img[:, :, :3]
    rgb = np.maximum(np.nan_to_num(rgb, nan=0.0, posinf=0.0), 0.0).astype(np.float64)
    m = rgb.max(axis=2)
    mant, e = np.frexp(m)  # m = mant * 2**e, mant in [0.5, 1)
    scale = np.where(m > 1e-32, mant * 256.0 / np.where(m > 0, m, 1.0), 0.0)
    out = np.zeros(img.shape[:2] + (4,), dtype=np.uint8)
    out[..., :3] = np.clip(rgb * scale[..., None], 0, 255).astype(np.uint8)
    out[..., 3] = np.where(m > 1e-32, np.clip(e + 128, 0, 255), 0).astype(np.uint8)
    h, w = img.shape[:2]
    with open(path, "wb") as fh:
        fh.write(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n")
        fh.write(f"-Y {h} +X {w}\n".encode("ascii"))
        fh.write(out.tobytes())  # flat scanlines: valid, uncompressed RGBE


def _write_pil(path: str, img: np.ndarray, exposure: float, ext: str) -> None:
    from PIL import Image
    c = img.shape[2]
    img = np.nan_to_num(img, nan=0.0, posinf=1.0, neginf=0.0)
    colour = img[:, :, :3] if c >= 3 else img[:, :, :1]
    colour = linear_to_srgb(np.clip(colour * np.float32(2.0 ** exposure), 0.0, 1.0))
    if c in (2, 4):
        alpha = np.clip(img[:, :, -1:], 0.0, 1.0)
        out = np.concatenate([colour, alpha], axis=2)
    else:
        out = colour
    if ext in (".jpg", ".jpeg") and out.shape[2] in (2, 4):
        out = out[:, :, :-1]  # JPEG has no alpha
    u8 = np.round(out * 255.0).astype(np.uint8)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[u8.shape[2]]
    data = u8[:, :, 0] if u8.shape[2] == 1 else u8
    try:
        kw = {"quality": 95} if ext in (".jpg", ".jpeg") else {}
        Image.fromarray(np.ascontiguousarray(data), mode=mode).save(path, **kw)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"cannot write image '{path}': {exc}") from None


def write_image(path: str | os.PathLike, image: Any, *, exposure: float = 0.0) -> None:
    """Write an image; the format follows the extension.

    * ``.exr`` (float32, channels ``Y``, ``YA``, ``RGB`` or ``RGBA``), ``.pfm``,
      ``.hdr`` (RGBE) and ``.npy``: linear values unchanged (``exposure`` is
      ignored for them, so a round trip is exact for EXR/PFM/NPY).
    * ``.png``, ``.jpg``, ... : 8 bits,
      ``round(255 * linear_to_srgb(clip(image * 2**exposure, 0, 1)))``.

    ``image`` is a numpy array or a Dr.Jit ``TensorXf`` of shape ``(H, W)`` or
    ``(H, W, C)``. The parent folder is created. Non-finite values are written
    (as 0 / 1 in 8-bit formats) with a ``RuntimeWarning`` saying how many.
    """
    path = os.fspath(path)
    img = _as_hwc(to_numpy(image), path)
    bad = int(np.count_nonzero(~np.isfinite(img)))
    if bad:
        warnings.warn(f"write_image('{path}'): image has {bad} NaN/inf values",
                      RuntimeWarning, stacklevel=2)
    ext = _ext(path)
    if ext not in HDR_EXTENSIONS and ext not in LDR_EXTENSIONS:
        raise ValueError(f"cannot write image '{path}': unsupported file extension "
                         f"'{ext}' (use .exr, .png, .jpg, .pfm, .hdr or .npy)")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    if ext == ".exr":
        _write_exr(path, img)
    elif ext == ".pfm":
        _write_pfm(path, img)
    elif ext in (".hdr", ".rgbe"):
        _write_rgbe(path, img)
    elif ext == ".npy":
        np.save(path, img)
    else:
        _write_pil(path, img, exposure, ext)
