"""Jacobian images: the derivative of every pixel with respect to one scalar.

For an image ``I(θ)`` with pixels ``I_p`` and a scalar parameter ``θ``, the
Jacobian image is ``J_p = dI_p/dθ``: the picture the course draws to check that
reverse-mode AD of its pipeline works. Three ways to get it, which must agree:

``'forward'``
    One forward-mode pass: ``dr.set_grad(θ, 1)``, render, ``dr.forward_to(image)``,
    ``dr.grad(image)`` is ``J`` (a Jacobian-vector product with the tangent 1).

``'reverse_pixel'``
    The course's validation path: for each pixel ``p``, seed the image's
    gradient with 1 at ``p`` (all channels for ``'grey'``) and 0 elsewhere,
    backpropagate, read ``dθ``: one vector-Jacobian product per pixel, a
    Python loop over pixels (use it on small images). With ``rerender=True``
    the image is re-rendered for every pixel exactly as the course does;
    by default one rendering's AD graph is kept and only the backward pass
    is repeated (same numbers, much less time).

``'reverse_batched'``
    Reverse mode for all pixels in one backward pass, by giving every pixel
    its own copy of the parameter: ``render_fn`` receives ``θ`` as a ``Float``
    with one lane per output pixel (all equal to the value), and must let
    pixel ``p`` depend on lane ``p`` only, so that ``dθ_p = dI_p/dθ`` after
    backpropagating a seed of ones. (This is stacking one image per pixel
    along a new axis, each with its own parameter copy, with the stack
    collapsed to the pixel itself; it is valid exactly when pixels are
    independent given ``θ``.) The raster pipeline supports this for
    parameters that enter per sample: light colours and directions (the
    per-light keys ``'light.<i>.direction'`` and the vector keys
    ``'lights.directions'``, with ``index=`` the light), shader constants, a
    constant albedo, group colours; per-vertex parameters and the
    discontinuity stages (which mix neighbouring pixels) do not qualify. The
    assumption is *verified*: one extra reverse pass with a random seed
    ``v`` and the ordinary scalar parameter must give ``v . J`` (to float
    precision), else an error says to use another mode.

Channels: ``'grey'`` differentiates the sum of the channels of each pixel
(the course seeds all three channels with 1 and shows one grey image);
``'rgb'`` keeps one Jacobian per channel. The results are numpy arrays of
shape (H, W) and (H, W, C).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional

import drjit as dr
import numpy as np

from .. import backend as bk

MODES = ("forward", "reverse_pixel", "reverse_batched")
CHANNELS = ("grey", "rgb")

_KEEP_GRAPH = dr.ADFlag.ClearInput | dr.ADFlag.ClearInterior


def _value_of(param: Any) -> float:
    if isinstance(param, dr.ArrayBase):
        if dr.depth_v(param) != 1 or dr.width(param) != 1:
            raise ValueError("jacobian_image: 'param' must be one scalar (a float or a "
                             "Float with one lane)")
        return float(dr.detach(param)[0])
    try:
        v = float(param)
    except (TypeError, ValueError):
        raise ValueError(f"jacobian_image: 'param' must be a number, got {param!r}") from None
    if not np.isfinite(v):
        raise ValueError(f"jacobian_image: 'param' is not finite ({v})")
    return v


def _check_image(img: Any) -> tuple[int, int, int]:
    if not (isinstance(img, dr.ArrayBase) and dr.is_tensor_v(img)):
        raise TypeError("jacobian_image: render_fn must return an image TensorXf "
                        f"(height, width[, channels]), got {type(img).__name__}")
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 2:
        return shape[0], shape[1], 1
    if len(shape) != 3:
        raise ValueError(f"jacobian_image: expected an image of shape (H, W, C), got {shape}")
    return shape  # type: ignore[return-value]


def _finish(flat: np.ndarray, H: int, W: int, C: int, channels: str) -> np.ndarray:
    j = np.asarray(flat, dtype=np.float32).reshape(H, W, C)
    return j.sum(axis=2) if channels == "grey" else j


def jacobian_image(render_fn: Callable[[Any], Any], param: Any, mode: str = "forward",
                   channels: str = "grey", *, rerender: bool = False, check: bool = True,
                   pixels: Optional[np.ndarray] = None, progress: bool = False,
                   seed: int = 0) -> np.ndarray:
    """The Jacobian image ``dI/dθ`` of ``I = render_fn(θ)`` at ``θ = param``.

    Args:
        render_fn: ``θ -> TensorXf (H, W, C)``; it must build the image from the
            Dr.Jit ``Float`` it receives (e.g. set a light's direction.x to it
            and render). Objects with a ``restore()`` method are restored after.
        param: the value of ``θ`` (float or one-lane ``Float``).
        mode: ``'forward'``, ``'reverse_pixel'`` or ``'reverse_batched'``.
        channels: ``'grey'`` (sum of channels, the course's seed) or ``'rgb'``.
        rerender: ``reverse_pixel`` only: render again for every pixel (the course's
            loop) instead of re-using one AD graph.
        check: ``reverse_batched`` only: verify the per-pixel independence
            assumption with one extra random-seed reverse pass.
        pixels: ``reverse_pixel`` only: optional flat pixel indices to compute
            (others are NaN), e.g. to time a subset.
        progress: show a tqdm bar in ``reverse_pixel``.

    Returns:
        numpy float32 (H, W) for ``'grey'``, (H, W, C) for ``'rgb'``.
    """
    if mode not in MODES:
        raise ValueError(f"jacobian_image: mode must be one of {MODES}, got {mode!r}")
    if channels not in CHANNELS:
        raise ValueError(f"jacobian_image: channels must be 'grey' or 'rgb', got {channels!r}")
    value = _value_of(param)
    try:
        if mode == "forward":
            return _forward(render_fn, value, channels)
        if mode == "reverse_pixel":
            return _reverse_pixel(render_fn, value, channels, rerender, pixels, progress)
        return _reverse_batched(render_fn, value, channels, check, seed)
    finally:
        restore = getattr(render_fn, "restore", None)
        if callable(restore):
            restore()


def _forward(render_fn: Callable, value: float, channels: str) -> np.ndarray:
    theta = bk.Float(value)
    dr.enable_grad(theta)
    img = render_fn(theta)
    H, W, C = _check_image(img)
    dr.set_grad(theta, 1.0)
    dr.forward_to(img)
    g = dr.grad(img)
    return _finish(np.array(g.array), H, W, C, channels)


def _pixel_seed(n: int, C: int, pix: Any, channel: Optional[Any]) -> Any:
    """Seed over the flat image (lane = pixel * C + c): 1 at pixel ``pix`` (opaque),
    on every channel or only on ``channel`` (opaque)."""
    lane = dr.arange(bk.UInt32, n)
    hit = (lane // C) == pix
    if channel is not None:
        hit &= (lane % C) == channel
    return dr.select(hit, bk.Float(1.0), 0.0)


def _reverse_pixel(render_fn: Callable, value: float, channels: str, rerender: bool,
                   pixels: Optional[np.ndarray], progress: bool) -> np.ndarray:
    theta = bk.Float(value)
    dr.enable_grad(theta)
    img = render_fn(theta)
    H, W, C = _check_image(img)
    n = H * W * C
    todo = np.arange(H * W) if pixels is None else np.asarray(pixels, dtype=np.int64).ravel()
    chans: list = [None] if channels == "grey" else list(range(C))
    out = np.full((H * W, len(chans)), np.nan, dtype=np.float32)
    it: Any = todo
    if progress:
        from tqdm import tqdm
        it = tqdm(todo, desc="reverse-mode Jacobian, pixel by pixel")
    for p in it:
        for ci, c in enumerate(chans):
            if rerender:
                theta = bk.Float(value)
                dr.enable_grad(theta)
                img = render_fn(theta)
            else:
                dr.clear_grad(theta)
            seed = _pixel_seed(n, C, dr.opaque(bk.UInt32, int(p)),
                               None if c is None else dr.opaque(bk.UInt32, c))
            dr.set_grad(img, bk.TensorXf(seed, img.shape))
            dr.backward_to(theta, flags=dr.ADFlag.Default if rerender else _KEEP_GRAPH)
            out[p, ci] = float(dr.grad(theta)[0])
    dr.disable_grad(theta)
    if channels == "grey":
        return out[:, 0].reshape(H, W)
    return out.reshape(H, W, C)


class LaneDependenceError(RuntimeError):
    """``render_fn`` does not keep pixels independent in a per-pixel parameter."""


def _reverse_batched(render_fn: Callable, value: float, channels: str, check: bool,
                     seed: int) -> np.ndarray:
    # 1. an ordinary (one-lane) rendering: the image shape, and v.J for the check
    theta1 = bk.Float(value)
    dr.enable_grad(theta1)
    img1 = render_fn(theta1)
    H, W, C = _check_image(img1)
    P = H * W
    # 2. one parameter copy per pixel
    lanes = dr.full(bk.Float, value, P)
    dr.enable_grad(lanes)
    try:
        img = render_fn(lanes)
    except Exception as e:  # width mismatch inside the renderer
        raise LaneDependenceError(
            "jacobian_image(mode='reverse_batched'): render_fn failed with a per-pixel "
            f"parameter ({P} lanes): {e}. This mode needs a parameter that enters every "
            "pixel separately (lights, shading constants); use mode='forward' or "
            "'reverse_pixel'.") from e
    if tuple(int(s) for s in img.shape)[:2] != (H, W):
        raise LaneDependenceError("jacobian_image: the image shape changed with a per-pixel "
                                  "parameter")
    n = P * C
    chans: list = [None] if channels == "grey" else list(range(C))
    out = np.zeros((P, len(chans)), dtype=np.float32)
    lane = dr.arange(bk.UInt32, n)
    for ci, c in enumerate(chans):
        dr.clear_grad(lanes)
        s = dr.full(bk.Float, 1.0, n) if c is None else dr.select(lane % C == c,
                                                                   bk.Float(1.0), 0.0)
        dr.set_grad(img, bk.TensorXf(s, img.shape))
        last = ci == len(chans) - 1
        dr.backward_to(lanes, flags=dr.ADFlag.Default if last else _KEEP_GRAPH)
        g = dr.grad(lanes)
        if dr.width(g) != P:  # the parameter was broadcast, not used per lane
            raise LaneDependenceError("jacobian_image: render_fn reduced the per-pixel "
                                      "parameter; use mode='forward' or 'reverse_pixel'")
        out[:, ci] = np.array(g)
    dr.disable_grad(lanes)
    if check:
        rng = np.random.default_rng(seed)
        v = rng.standard_normal((P, C)).astype(np.float32)
        if channels == "grey":
            v[:] = v[:, :1]  # one weight per pixel, on all channels
        dr.set_grad(img1, bk.TensorXf(bk.Float(v.ravel().copy()), img1.shape))
        dr.backward_to(theta1)
        vj_true = float(dr.grad(theta1)[0])
        if channels == "grey":
            vj = float(np.dot(v[:, 0].astype(np.float64), out[:, 0]))
        else:
            vj = float(np.sum(v.astype(np.float64) * out))
        scale = float(np.sum(np.abs(v[:, :len(chans)] * out))) + 1e-12
        if abs(vj - vj_true) > 1e-3 * scale + 1e-6:
            raise LaneDependenceError(
                "jacobian_image(mode='reverse_batched'): the per-pixel parameter copies are "
                f"not independent (check v.J = {vj_true:.6g} vs {vj:.6g}): render_fn mixes "
                "pixels (e.g. a discontinuity stage) or uses the parameter before the "
                "per-pixel stages. Use mode='forward' or 'reverse_pixel'.")
    dr.disable_grad(theta1)
    if channels == "grey":
        return out[:, 0].reshape(H, W)
    return out.reshape(H, W, C)


def finite_difference_image(render_fn: Callable[[Any], Any], param: Any, eps: float = 1e-3,
                            channels: str = "grey") -> np.ndarray:
    """Central finite difference ``(I(θ+ε) - I(θ-ε)) / 2ε`` (no AD), same layout as
    :func:`jacobian_image`. Rendered in float32: expect errors of order
    ``1e-7 / ε`` relative to the image, and wrong values at pixels where the
    image is not smooth within ``±ε`` (silhouettes, shading kinks)."""
    if channels not in CHANNELS:
        raise ValueError("finite_difference_image: channels must be 'grey' or 'rgb', "
                         f"got {channels!r}")
    v = _value_of(param)
    try:
        hi = render_fn(bk.Float(v + eps))
        H, W, C = _check_image(hi)
        a = np.array(hi.array, dtype=np.float64)
        b = np.array(render_fn(bk.Float(v - eps)).array, dtype=np.float64)
    finally:
        restore = getattr(render_fn, "restore", None)
        if callable(restore):
            restore()
    return _finish(((a - b) / (2 * eps)).astype(np.float32), H, W, C, channels)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``(fn(), seconds)`` with Dr.Jit's asynchronous launches synchronised."""
    dr.sync_thread()
    t0 = time.perf_counter()
    r = fn()
    dr.sync_thread()
    return r, time.perf_counter() - t0
