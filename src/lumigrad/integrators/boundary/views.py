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
from ...geometry.edges import DiskApex


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


#: Fraction of the camera-side samples (primary edges, shadow connections)
#: that look through a planar mirror, in scenes that have one.
MIRROR_FRACTION = 0.5


class MirrorViews:
    """The scene's planar mirror triangles: flat triangles (no vertex normals)
    of delta-only BSDFs (smooth conductors and dielectrics), chosen by area.

    Seen through such a triangle, the scene is its mirror image: the camera
    sees a point ``p`` where it sees ``reflect(p)``, so projecting reflected
    points gives the film positions of what the mirror shows (one reflection;
    curved or smooth-shaded mirrors, refraction and chains of mirrors are not
    handled)."""

    def __init__(self, scene: Any) -> None:
        import numpy as np
        flat = np.array([s.vertex_normals is None for s in scene.shapes])
        mirror_bsdf = np.array([bool(getattr(b, "delta_only", False)) for b in scene.bsdfs])
        shape_ok = flat & mirror_bsdf[np.array(scene.shape_bsdf, dtype=np.int64)]
        prims = np.flatnonzero(shape_ok[scene.prim_shape_np])
        self.count = int(prims.size)
        if self.count == 0:
            return
        p = scene._positions_np.astype(np.float64)
        f = scene.faces_np[prims].astype(np.int64)
        area = 0.5 * np.linalg.norm(np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]]),
                                    axis=1)
        keep = area > 0
        prims, area = prims[keep], area[keep]
        self.count = int(prims.size)
        if self.count == 0:
            return
        from .sampling import DiscreteSampler
        self.prims = bk.from_numpy(bk.UInt32, prims.astype(np.uint32))
        self.sampler = DiscreteSampler(bk.from_numpy(bk.Float, area.astype(np.float32)))

    def sample(self, u: Any) -> tuple:
        """A mirror triangle (global index) and its probability."""
        k, pmf = self.sampler.sample(u)
        return dr.gather(bk.UInt32, self.prims, k), pmf


def mirror_plane(scene: Any, prim: Any, active: Any) -> tuple:
    """A point and the unit normal of triangle ``prim``'s plane (attached)."""
    _, (p0, p1, p2) = scene._triangle(prim, active)
    n = dr.cross(p1 - p0, p2 - p0)
    return p0, n * dr.rcp(dr.maximum(dr.norm(n), 1e-30))


def reflect_point(p: Any, a: Any, n: Any) -> Any:
    """Mirror image of point ``p`` in the plane through ``a`` with unit normal ``n``."""
    return p - n * (2.0 * dr.dot(n, p - a))


def reflect_vector(v: Any, n: Any) -> Any:
    return v - n * (2.0 * dr.dot(n, v))


def reflect_apex(apex: tuple, a: Any, n: Any) -> tuple:
    """Mirror image of a homogeneous apex ``(p, w)`` (``sensor.apex()``): a
    point (``w = 1``) or a direction towards an apex at infinity (``w = 0``)."""
    p, w = apex
    if isinstance(p, DiskApex):
        return DiskApex(reflect_point(p.c, a, n), reflect_vector(p.e1, n),
                        reflect_vector(p.e2, n)), w
    return (reflect_point(p, a, n) if w else reflect_vector(p, n)), w


def detach_apex(apex: tuple) -> tuple:
    if isinstance(apex[0], DiskApex):
        return apex
    return dr.detach(apex[0]), apex[1]


def film_slack(view: Any, p: Any) -> Any:
    """How far (pixels) the image of point ``p`` can move between the
    projections that ``view`` stands for: a thin lens's lens points
    (``LensHull.film_slack``); None for a single projection. Sampling tables
    widen their film bounds and weights by it, so that what any lens point
    sees can be drawn."""
    own = getattr(view, "film_slack", None)
    return None if own is None else own(p)


def triangle_slack(view: Any, p: list) -> Any:
    """The largest :func:`film_slack` of a triangle's corners ``p`` (None for a
    single projection)."""
    slack = film_slack(view, p[0])
    if slack is None:
        return None
    return dr.maximum(dr.maximum(slack, film_slack(view, p[1])), film_slack(view, p[2]))


def widened_length(view: Any, a: Any, b: Any, length: Any) -> Any:
    """``length``, the film length of segment ``a``–``b`` as ``view`` projects
    it, plus how far its ends' images move over a thin lens (a segment seen
    end-on through the lens's centre is not through its rim)."""
    slack = film_slack(view, a)
    return length if slack is None else length + slack + film_slack(view, b)


class MirroredView:
    """The camera as a planar mirror shows the scene (the interface of a sensor
    that :class:`.rims.RimTriangle` uses): its apex and film directions
    reflected in the plane through ``a`` with unit normal ``n``, per lane;
    ``n = 0`` is the camera itself. Points project where the camera sees their
    mirror image."""

    def __init__(self, sensor: Any, a: Any, n: Any) -> None:
        self.sensor, self.a, self.n = sensor, a, n
        self.resolution, self.film = sensor.resolution, sensor.film

    def apex(self) -> tuple:
        return reflect_apex(self.sensor.apex(), self.a, self.n)

    def point_ahead(self) -> Any:
        return reflect_point(self.sensor.point_ahead(), self.a, self.n)

    def film_direction(self, u: Any) -> Any:
        return reflect_vector(self.sensor.film_direction(u), self.n)

    def project(self, q: Any) -> tuple:
        return self.sensor.project(reflect_point(q, self.a, self.n))

    @property
    def film_slack(self) -> Any:
        own = getattr(self.sensor, "film_slack", None)
        return None if own is None else (lambda q: own(reflect_point(q, self.a, self.n)))

    def project_differential(self, q: Any, dq: Any) -> Any:
        return self.sensor.project_differential(reflect_point(q, self.a, self.n),
                                                reflect_vector(dq, self.n))


def mirror_planes(scene: Any, limit: int = 4) -> list:
    """One mirror triangle per distinct plane of the scene's planar mirrors
    (:class:`MirrorViews`), at most ``limit`` planes (the largest)."""
    import numpy as np
    views = scene.mirror_views()
    if views.count == 0:
        return []
    prims = np.array(views.prims, dtype=np.int64)
    p = scene._positions_np.astype(np.float64)
    f = scene.faces_np[prims].astype(np.int64)
    n = np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]])
    area = np.linalg.norm(n, axis=1)
    n = n / area[:, None]
    n = np.where((n[:, :1] < 0) | ((n[:, :1] == 0) & (n[:, 1:2] < 0)), -n, n)   # one sign
    key = np.round(np.concatenate([n, np.einsum("ij,ij->i", n, p[f[:, 0]])[:, None]], 1), 4)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    plane_area = np.bincount(inverse.ravel(), weights=area)
    order = np.argsort(-plane_area)[:limit]
    return [int(prims[first[k]]) for k in order]


def camera_views(scene: Any, sensor: Any, mirrors: bool = True) -> list:
    """``(mirror, view)`` pairs: the camera itself (``mirror`` None) and, with
    ``mirrors``, each planar mirror plane's image of it (``mirror``: one of its
    triangles; ``view``: a :class:`MirroredView`, detached)."""
    out = [(None, sensor)]
    for mirror in (mirror_planes(scene) if mirrors else []):
        with dr.suspend_grad():
            a, n = (dr.detach(v) for v in mirror_plane(scene, bk.UInt32(mirror), True))
        out.append((mirror, MirroredView(sensor, a, n)))
    return out


def pick_view(views: list, rng: Any, n: int) -> tuple:
    """Per lane, one of ``views`` (``(mirror, sampler)`` pairs: the camera
    itself where ``mirror`` is None, else a mirror plane's image of it, with a
    :class:`~.sampling.DiscreteSampler` of primitives) in proportion to the
    samplers' totals, then a primitive of it: ``(k, prim, pmf)``. (One view:
    no draw for it, the same samples as without mirrors.)"""
    # (The totals follow the geometry: opaque inputs, not literals that would
    # compile the kernel anew at every step of an optimisation.)
    grand = sum(smp.total for _, smp in views)
    u_view = (rng.next_float32() * dr.opaque(bk.Float, grand) if len(views) > 1
              else dr.zeros(bk.Float, n))
    u_prim = rng.next_float32()
    k, prim, pmf = dr.zeros(bk.UInt32, n), dr.zeros(bk.UInt32, n), dr.zeros(bk.Float, n)
    below = 0.0
    for j, (_, smp) in enumerate(views):
        if j > 0:
            k = dr.select(u_view >= dr.opaque(bk.Float, below), j, k)
        below += smp.total
    for j, (_, smp) in enumerate(views):
        pj, pmf_j = smp.sample(u_prim)
        prim = dr.select(k == j, pj, prim)
        pmf = dr.select(k == j, pmf_j * dr.opaque(bk.Float, smp.total / grand), pmf)
    return k, prim, pmf


def view_planes(scene: Any, views: list, k: Any, attached: bool) -> tuple:
    """Per lane, the mirror plane of view ``k`` (a point and the unit normal;
    zero for the camera's own view, where reflecting changes nothing)."""
    n = dr.width(k)
    a, nrm = dr.zeros(bk.Array3f, n), dr.zeros(bk.Array3f, n)
    for j, (mirror, _) in enumerate(views):
        if mirror is None:
            continue
        a_j, n_j = mirror_plane(scene, bk.UInt32(mirror), True)
        if not attached:
            a_j, n_j = dr.detach(a_j), dr.detach(n_j)
        a = dr.select(k == j, a_j, a)
        nrm = dr.select(k == j, n_j, nrm)
    return a, nrm


def ray_into_view(scene: Any, o: Any, d: Any, tmax: Any, a_m: Any, n_m: Any,
                  active: Any) -> tuple:
    """The ray that reaches what the camera ray ``(o, d)`` shows: itself, or
    where ``n_m`` is not zero, its reflection in that mirror plane, which the
    camera ray must meet first on a mirror triangle. Returns ``(ok, o_in,
    d_in, tmax_in, si_m, through)`` (``si_m``: the mirror point)."""
    from ...core.math import hmax
    through = dr.squared_norm(n_m) > 0
    _, prim_m, _, _, hit_m = scene.ray_intersect_preliminary(o, d, tmax, active & through)
    si_m = scene.compute_interaction(o, d, prim_m, active & through & hit_m)
    on_mirror = (hit_m & scene.bsdf_delta_only(prim_m, hit_m)
                 & (dr.abs(dr.dot(si_m.n, n_m)) > 0.9999)
                 & (dr.abs(dr.dot(si_m.p - a_m, n_m)) <= 1e-4 * (1.0 + hmax(dr.abs(a_m)))))
    d_in = dr.select(through, reflect_vector(d, n_m), d)
    o_in = dr.select(through, si_m.spawn_origin(d_in), o)
    return (active & (~through | on_mirror), o_in, d_in, dr.select(through, dr.inf, tmax),
            si_m, through)


def mirror_reflectance(scene: Any, si: Any, active: Any) -> Any:
    """Expected reflection factor of the delta BSDF at ``si`` (towards the
    mirror direction of ``si.wi``): the reflection lobe's sample weight times
    its probability (a conductor's Fresnel factor, a dielectric's ``F``)."""
    bsdfs = scene.bsdfs

    def lobe(b: Any) -> Any:
        def f(si: Any, active: Any) -> Any:
            zero = dr.zeros_like(si.wi)
            if not getattr(b, "delta_only", False):
                return zero
            bs = b.sample(si, zero[0], bk.Array2f(zero[0] + 0.5, zero[0] + 0.5), active)
            return dr.select(active & bs.delta & (bs.wo[2] * si.wi[2] > 0),
                             bs.weight * bs.pdf, 0.0)
        return f
    if len(bsdfs) == 1:
        return lobe(bsdfs[0])(si, active)
    idx = dr.gather(bk.UInt32, scene.prim_bsdf, si.prim, active)
    return dr.switch(idx, [lobe(b) for b in bsdfs], si, active)


def connect_through_mirror(scene: Any, sensor: Any, p: Any, prim: Any, mirror: Any,
                           active: Any) -> tuple:
    """As :func:`connect_to_camera`, but the camera sees point ``p`` (triangle
    ``prim``) in mirror triangle ``mirror``: returns the connection (whose
    ``si`` is the mirror point), the reflection factor of the mirror, and the
    direction from ``p`` towards the mirror point (all detached)."""
    with dr.suspend_grad():
        a, n = mirror_plane(scene, mirror, active)
        a, n, p = dr.detach(a), dr.detach(n), dr.detach(p)
        s, in_front = sensor.project(reflect_point(p, a, n))
        s = dr.detach(s)
        ok = active & in_front & in_film(sensor, s)
        o, d, tmax = sensor.sample_ray(film_to_unit(sensor, s))
        o, d, tmax = dr.detach(o), dr.detach(d), dr.detach(tmax)
        _, prim_c, _, _, hit = scene.ray_intersect_preliminary(o, d, tmax, ok)
        ok &= hit & (prim_c == mirror)
        si_m = scene.compute_interaction(o, d, prim_c, ok)
        to_p = p - si_m.p
        dist = dr.norm(to_p)
        w = to_p / dr.maximum(dist, 1e-30)
        origin = si_m.spawn_origin(w)
        ok &= ~scene.ray_test(origin, w, dr.norm(p - origin) * (1.0 - 1e-3), ok)
        refl = mirror_reflectance(scene, si_m, ok)
        ok &= hmax_pos(refl)
    return CameraConnection(pos=s, valid=ok, si=si_m, ray_d=d), refl, -w


def hmax_pos(c: Any) -> Any:
    return (c[0] > 0) | (c[1] > 0) | (c[2] > 0)
