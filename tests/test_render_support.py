"""Helpers shared by the known-answer render tests (and a test of the helpers).

* :func:`camera_rays` reproduces the ``perspective`` sensor in numpy (film
  position -> world ray), so tests can compute expected images analytically;
  :func:`test_camera_model_matches_aov_positions` checks it against the
  renderer's own ``aov`` output.
* :func:`mean_z` is the z-score of a sample mean: (mean - expected) / (s / sqrt(n)),
  with ``s`` the sample standard deviation. The pixels it is applied to are
  independent estimates with the same expectation (filter importance sampling:
  every sample lands in one pixel), so |z| < 4 fails a correct renderer about
  once in 16,000 runs, and the tests are deterministic for a fixed seed anyway.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

import lumigrad as lg

Z_MAX = 4.0  # tolerance, in standard errors, of every statistical assertion


def look_at(origin: Any, target: Any, up: Any = (0, 1, 0)) -> lg.Transform4f:
    return lg.Transform4f.looking_at(list(map(float, origin)), list(map(float, target)),
                                     list(map(float, up)))


def sensor_dict(origin: Any, target: Any, up: Any = (0, 1, 0), fov: float = 30.0,
                width: int = 32, height: int = 32, rfilter: Optional[dict] = None,
                **extra: Any) -> dict:
    """A ``perspective`` sensor (fov along x) with an ``hdrfilm`` and a box filter."""
    return {"type": "perspective", "fov": fov, "to_world": look_at(origin, target, up),
            "film": {"type": "hdrfilm", "width": width, "height": height,
                     "rfilter": rfilter or {"type": "box"}}, **extra}


def rgb(v: Any) -> dict:
    return {"type": "rgb", "value": v}


def diffuse(a: Any) -> dict:
    return {"type": "diffuse", "reflectance": rgb(a)}


def camera_rays(to_world: np.ndarray, fov_x: float, width: int, height: int,
                sx: np.ndarray, sy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-space (origin, unit direction) of the pinhole camera through film
    positions ``(sx, sy)`` in [0,1]² (x right, y down), in float64.

    The local direction is ``((1 - 2 sx) tan(fov_x/2), (1 - 2 sy) tan(fov_x/2) H/W, 1)``
    (Mitsuba's convention: local -X is image right), mapped by ``to_world``.
    """
    t = np.tan(np.radians(fov_x) / 2)
    sx, sy = np.broadcast_arrays(np.asarray(sx, float), np.asarray(sy, float))
    d = np.stack([(1 - 2 * sx) * t, (1 - 2 * sy) * t * height / width, np.ones_like(sx)], -1)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    dw = d @ to_world[:3, :3].T
    dw /= np.linalg.norm(dw, axis=-1, keepdims=True)
    return np.broadcast_to(to_world[:3, 3], dw.shape), dw


def pixel_subsamples(width: int, height: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Film positions of an n×n grid of sub-pixel centres for every pixel:
    arrays of shape (height, width, n*n) — the box filter's footprint (radius 0.5)."""
    off = (np.arange(n) + 0.5) / n
    ox, oy = np.meshgrid(off, off)
    sx = (np.arange(width)[None, :, None] + ox.ravel()[None, None, :]) / width
    sy = (np.arange(height)[:, None, None] + oy.ravel()[None, None, :]) / height
    return np.broadcast_arrays(sx, sy)


def pixel_centres(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    sx = (np.arange(width)[None, :] + 0.5) / width
    sy = (np.arange(height)[:, None] + 0.5) / height
    return np.broadcast_arrays(sx, sy)


def mean_z(values: np.ndarray, expected: float) -> float:
    """z-score of the mean of independent ``values`` against ``expected``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    se = v.std(ddof=1) / np.sqrt(v.size)
    return float((v.mean() - expected) / max(se, 1e-12))


def two_sample_z(a: np.ndarray, b: np.ndarray) -> float:
    """z-score of the difference of two means of independent samples."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return float((a.mean() - b.mean()) / max(se, 1e-12))


def sphere_coverage(to_world: np.ndarray, fov_x: float, width: int, height: int,
                    center: Any, radius: float, n: int = 8) -> np.ndarray:
    """Fraction of each pixel (n×n sub-pixel rays) whose ray hits the sphere."""
    sx, sy = pixel_subsamples(width, height, n)
    o, d = camera_rays(to_world, fov_x, width, height, sx, sy)
    oc = o - np.asarray(center, float)
    b = np.einsum("...i,...i", oc, d)
    c = np.einsum("...i,...i", oc, oc) - radius ** 2
    return ((b * b - c) > 0).mean(-1)


# Enclosure furnace (see test_furnace.py): radiance Σ_{k<d} a^k at max_depth d.
A_ENC = 0.7


def enclosure_scene(integrator: dict, a: float = A_ENC, res: int = 24) -> lg.Scene:
    """Camera inside the cube [-1,1]³ whose faces point inwards (flip_normals),
    diffuse with albedo ``a`` and emitting radiance 1 towards the inside."""
    return lg.load_dict({
        "type": "scene",
        "box": {"type": "cube", "flip_normals": True, "bsdf": diffuse([a, a, a]),
                "emitter": {"type": "area", "radiance": rgb(1.0)}},
        "sensor": sensor_dict((0.1, 0.2, 0.3), (1.0, 0.5, -1.0), fov=70, width=res,
                              height=res),
        "integrator": integrator,
    })


def series(a: float, d: int) -> float:
    """Σ_{k=0}^{d-1} a^k, or 1/(1-a) for d = -1."""
    return 1.0 / (1.0 - a) if d == -1 else sum(a ** k for k in range(d))


def test_camera_model_matches_aov_positions() -> None:
    """The numpy camera model hits a plane where the renderer's ``position`` AOV says."""
    w, h, fov = 12, 8, 50.0
    tw = look_at((0.3, -2.0, 3.0), (0.1, 0.2, 0.0), (0, 0, 1))
    scene = lg.load_dict({
        "type": "scene",
        "plane": {"type": "rectangle", "to_world": lg.Transform4f().scale([20, 20, 1])},
        "sensor": {"type": "perspective", "fov": fov, "to_world": tw,
                   "film": {"type": "hdrfilm", "width": w, "height": h,
                            "rfilter": {"type": "box", "radius": 1e-4}}},
        "integrator": {"type": "aov", "aovs": "pp:position"},
    })
    img = np.array(lg.render(scene, spp=1))
    sx, sy = pixel_centres(w, h)
    o, d = camera_rays(tw.numpy(), fov, w, h, sx, sy)
    t = -o[..., 2] / d[..., 2]
    p = o + t[..., None] * d
    # 1e-4 of a pixel of jitter moves the hit by < 1e-3 here.
    np.testing.assert_allclose(img, p, atol=2e-3)
