"""Figures: derivative images, loss curves, before/after panels.

Derivative (gradient) images are signed, so each colour channel is shown with
a diverging colour map over a *symmetric* range ``[-vlim, vlim]`` (white/grey
means zero), ``vlim`` defaulting to the largest ``|value|`` over all shown
channels — the presentation of Mitsuba 3's forward-mode tutorial, which makes
the channels comparable with each other.

Figures are made with :class:`matplotlib.figure.Figure` and the Agg canvas
directly, never through ``pyplot``: no window opens, nothing depends on the
user's interactive backend, and no global figure list grows in loops.
(In Jupyter a returned ``Figure`` still displays inline.)
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from .io import linear_to_srgb, to_numpy

__all__ = ["derivative_figure", "save_derivative_image", "diverging_rgb", "plot_losses",
           "side_by_side", "symmetric_limit", "derivative_row"]

_CHANNEL_NAMES = "RGBA"


def _new_figure(figsize: tuple[float, float]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike, dpi: int = 100) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def symmetric_limit(values: Any) -> float:
    """``max |values|`` ignoring NaN/inf; a tiny positive number when all are zero
    (so the colour scale stays valid)."""
    a = np.abs(np.asarray(values, dtype=np.float64))
    a = a[np.isfinite(a)]
    m = float(a.max()) if a.size else 0.0
    return m if m > 0.0 else 1e-12


def _channel_indices(arr: np.ndarray, channels: str) -> list[tuple[int, str]]:
    if arr.ndim == 2:
        return [(-1, "")]
    c = arr.shape[2]
    if c == 1:
        return [(0, "")]
    out = []
    for name in channels.upper():
        k = _CHANNEL_NAMES.find(name)
        if k < 0 or k >= c:
            raise ValueError(f"derivative_figure: channel {name!r} is not available in an "
                             f"image with {c} channels (use letters from {_CHANNEL_NAMES[:c]!r})")
        out.append((k, name))
    if not out:
        raise ValueError("derivative_figure: 'channels' selects no channel")
    return out


def diverging_rgb(channel: Any, vlim: float, cmap: str = "coolwarm") -> np.ndarray:
    """Map a signed H×W array to colours: ``cmap((x / vlim + 1) / 2)``, H×W×3 in [0, 1].

    Values beyond ``±vlim`` saturate; NaN/inf are shown as zero (the centre colour).
    """
    import matplotlib
    x = np.asarray(to_numpy(channel), dtype=np.float64)
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[:, :, 0]
    if x.ndim != 2:
        raise ValueError(f"diverging_rgb: expected an H×W array, got shape {x.shape}")
    if not (vlim > 0 and np.isfinite(vlim)):
        raise ValueError(f"diverging_rgb: vlim must be a positive finite number, got {vlim!r}")
    x = np.nan_to_num(x, nan=0.0, posinf=vlim, neginf=-vlim)
    t = np.clip((x / vlim + 1.0) * 0.5, 0.0, 1.0)
    return np.asarray(matplotlib.colormaps[cmap](t)[..., :3], dtype=np.float32)


def derivative_figure(grad_image: Any, *, title: str | None = None, cmap: str = "coolwarm",
                      vlim: float | None = None, channels: str = "RGB") -> Any:
    """One panel per colour channel of a derivative image, symmetric colour range.

    ``grad_image``: H×W×C (numpy or ``TensorXf``) or H×W (one panel).
    ``vlim``: colour range ``[-vlim, vlim]``; default ``max |grad|`` over all
    shown channels. Panel titles are ``'R gradients'``, ``'G gradients'``, ...
    Returns a ``matplotlib.figure.Figure`` with a shared colour bar.
    """
    arr = to_numpy(grad_image)
    if arr.ndim not in (2, 3) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"derivative_figure: expected an H×W or H×W×C image, got shape "
                         f"{arr.shape}")
    picks = _channel_indices(arr, channels)
    planes = [arr if k < 0 else arr[:, :, k] for k, _ in picks]
    if vlim is None:
        vlim = symmetric_limit(np.stack(planes))
    elif not (vlim > 0 and np.isfinite(vlim)):
        raise ValueError(f"derivative_figure: vlim must be positive and finite, got {vlim!r}")
    n = len(planes)
    h, w = arr.shape[:2]
    panel = 4.0
    fig = _new_figure((panel * n + 1.0, panel * h / max(w, 1) + 0.8))
    axes = fig.subplots(1, n, squeeze=False)[0]
    im = None
    for ax, plane, (_, name) in zip(axes, planes, picks):
        im = ax.imshow(np.nan_to_num(plane, nan=0.0), cmap=cmap, vmin=-vlim, vmax=vlim,
                       interpolation="nearest")
        ax.set_title(f"{name} gradients" if name else "gradients")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=list(axes), shrink=0.85)
    if title:
        fig.suptitle(title)
    return fig


def save_derivative_image(grad_image: Any, path: str | os.PathLike, *, dpi: int = 100,
                          **kw: Any) -> str:
    """Write :func:`derivative_figure` (``kw`` passed on) as a PNG; returns the path."""
    return _save(derivative_figure(grad_image, **kw), path, dpi=dpi)


def plot_losses(losses: Sequence[float] | Any, path: str | os.PathLike | None = None, *,
                log: bool = True, title: str | None = None, dpi: int = 100) -> Any:
    """Loss curve (iteration on x). ``log``: logarithmic y axis when every loss is
    positive. Written as PNG when ``path`` is given. Returns the ``Figure``."""
    y = np.asarray([float(np.asarray(v).reshape(-1)[0]) if np.ndim(v) else float(v)
                    for v in losses], dtype=np.float64)
    if y.size == 0:
        raise ValueError("plot_losses: no loss values")
    fig = _new_figure((6.0, 4.0))
    ax = fig.subplots()
    ax.plot(np.arange(y.size), y, lw=1.5)
    finite = y[np.isfinite(y)]
    if log and finite.size and np.all(finite > 0):
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title)
    if path is not None:
        _save(fig, path, dpi=dpi)
    return fig


def side_by_side(images: Sequence[Any], titles: Sequence[str] | None = None,
                 path: str | os.PathLike | None = None, *, exposure: float = 0.0,
                 dpi: int = 100) -> Any:
    """Linear radiance images in a row, tonemapped as ``write_image`` does for PNG
    (``linear_to_srgb(clip(x * 2**exposure, 0, 1))``). Returns the ``Figure`` and
    writes it as PNG when ``path`` is given."""
    imgs = [to_numpy(im) for im in images]
    if not imgs:
        raise ValueError("side_by_side: no images")
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"side_by_side: {len(imgs)} images but {len(titles)} titles")
    n = len(imgs)
    h, w = imgs[0].shape[:2]
    fig = _new_figure((4.0 * n, 4.0 * h / max(w, 1) + 0.6))
    axes = fig.subplots(1, n, squeeze=False)[0]
    for k, (ax, im) in enumerate(zip(axes, imgs)):
        if im.ndim == 3 and im.shape[2] == 1:
            im = im[:, :, 0]
        if im.ndim == 3:
            im = im[:, :, :3]
        if im.ndim not in (2, 3):
            raise ValueError(f"side_by_side: image {k} has shape {im.shape}")
        x = np.nan_to_num(im, nan=0.0, posinf=1.0, neginf=0.0) * np.float32(2.0 ** exposure)
        x = linear_to_srgb(np.clip(x, 0.0, 1.0))
        ax.imshow(x, cmap="gray" if x.ndim == 2 else None, vmin=0.0, vmax=1.0,
                  interpolation="nearest")
        if titles is not None:
            ax.set_title(str(titles[k]))
        ax.set_xticks([])
        ax.set_yticks([])
    if path is not None:
        _save(fig, path, dpi=dpi)
    return fig


def derivative_row(images: Sequence[Any], titles: Sequence[str],
                   path: str | os.PathLike | None = None, *, cmap: str = "coolwarm",
                   vlim: float | None = None, dpi: int = 100) -> Any:
    """Signed images in a row (e.g. the parts of a derivative next to finite
    differences), each shown as its mean over colour channels with one diverging
    colour map and one symmetric range ``[-vlim, vlim]`` for all (default: the
    largest ``|value|`` of the last image, the reference), and a colour bar."""
    arrs = [to_numpy(im) for im in images]
    if len(arrs) != len(titles):
        raise ValueError(f"derivative_row: {len(arrs)} images but {len(titles)} titles")
    means = [a.mean(axis=2) if a.ndim == 3 else a for a in arrs]
    lim = vlim if vlim is not None else symmetric_limit(means[-1])
    h, w = means[0].shape[:2]
    fig = _new_figure((3.2 * len(means) + 0.8, 3.2 * h / max(w, 1) + 0.6))
    axes = fig.subplots(1, len(means), squeeze=False)[0]
    im = None
    for ax, m, title in zip(axes, means, titles):
        im = ax.imshow(np.nan_to_num(m), cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(str(title))
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=list(axes), shrink=0.8)
    if path is not None:
        _save(fig, path, dpi=dpi)
    return fig


def save_before_after(out_dir: str, target: Any, before: Any, after: Any,
                      exposure: float = 0.0) -> None:
    """Write ``target.png``, ``before.png``, ``after.png`` and a side-by-side
    ``comparison.png`` into ``out_dir`` (the inverse-rendering examples' output)."""
    from .io import write_image
    os.makedirs(out_dir, exist_ok=True)
    for name, image in (("target", target), ("before", before), ("after", after)):
        write_image(os.path.join(out_dir, f"{name}.png"), image, exposure=exposure)
    side_by_side([target, before, after], ["target", "before", "after"],
                 os.path.join(out_dir, "comparison.png"), exposure=exposure)
