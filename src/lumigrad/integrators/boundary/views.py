"""Connecting surface points to the camera (the film end of boundary paths).

Secondary boundary terms find a surface point ``a`` first (where a shadow or
silhouette line crosses a surface) and then need the film position at which
the camera sees it. :func:`connect_to_camera` projects ``a`` and traces the
camera ray through that film position: the point counts only if that ray
reaches it (nothing in front of it, in front of the near plane).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import drjit as dr

from ... import backend as bk


@dataclass
class CameraConnection:
    """Where (and whether) the camera sees a surface point."""

    pos: Any        # Array2f: film position, pixels (detached)
    valid: Any      # Bool: the camera ray through ``pos`` reaches the point
    si: Any         # SurfaceInteraction of that camera ray (wi towards the camera)
    ray_d: Any      # Array3f: the camera ray's direction


def in_film(sensor: Any, s: Any) -> Any:
    """True where film position ``s`` (pixels) is within the reconstruction
    filter's radius of the film (its samples can reach a pixel)."""
    r = sensor.film.rfilter.radius
    w, h = sensor.resolution
    return (s[0] > -r) & (s[0] < w + r) & (s[1] > -r) & (s[1] < h + r)


def film_to_unit(sensor: Any, s: Any) -> Any:
    """Pixels -> the [0,1]² film coordinates of ``sensor.sample_ray``."""
    w, h = sensor.resolution
    return bk.Array2f(s[0] * dr.opaque(bk.Float, 1.0 / w), s[1] * dr.opaque(bk.Float, 1.0 / h))


def connect_to_camera(scene: Any, sensor: Any, p: Any, prim: Any, active: Any) -> CameraConnection:
    """Film position at which the camera sees point ``p`` of triangle ``prim``
    (all detached), and whether it does."""
    with dr.suspend_grad():
        p = dr.detach(p)
        s, in_front = sensor.project(p)
        s = dr.detach(s)
        ok = active & in_front & in_film(sensor, s)
        o, d, tmax = sensor.sample_ray(film_to_unit(sensor, s))
        o, d, tmax = dr.detach(o), dr.detach(d), dr.detach(tmax)
        t, prim_c, _, _, hit = scene.ray_intersect_preliminary(o, d, tmax, ok)
        dist = dr.norm(p - o)
        # The same triangle, or (where p lies on a triangle's border) the same point.
        same = (prim_c == prim) | (dr.abs(t - dist) < 1e-4 * dist)
        valid = ok & hit & same
        si = scene.compute_interaction(o, d, prim_c, valid)
    return CameraConnection(pos=s, valid=valid, si=si, ray_d=d)
