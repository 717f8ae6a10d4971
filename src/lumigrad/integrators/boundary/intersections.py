"""Intersection curves: where one surface passes through another, seen by the camera.

A box sunk into a floor (the Cornell box's tall box stands 0.01 into its
floor) shows a jump along the line where its faces cut the floor plane: on
one side of it the camera sees the box, on the other the floor. That line is
no edge of either mesh, so :mod:`.primary` never samples it; it moves on the
film when the camera moves, and in the world when either surface moves.

The curves are the segments ``A ∩ B`` of pairs of triangles of different
shapes whose planes each cut the other triangle (vertices strictly on both
sides: a box resting exactly on a floor touches it along its edges, which the
edge terms handle). They are found in numpy when the geometry changes: per
pair of shapes whose bounding boxes overlap, all pairs of the triangles that
reach into the other shape's box (at most :data:`MAX_PAIRS`; a dense mesh
sunk into a dense floor tests the few thousand triangles near the floor).
Their boundary term is that of :mod:`.primary` with the segment for the edge:

    ∫ (L_right − L_left) v_n dℓ

over the segment's image, sampled uniformly along each segment chosen by its
film length, the radiance either side by rays just left and right of it on
the film (common random numbers), ``v_n`` the film velocity of the moving
intersection point: the solution of ``n_A · y = n_A · a``, ``n_B · y = n_B · b``
and ``d · y = d · y₀`` (``d`` the line's direction, fixed) with the planes
attached, projected by the attached camera.
"""
from __future__ import annotations

import math
import weakref
from typing import Any

import drjit as dr
import numpy as np

from ... import backend as bk
from . import BoundarySample, PrimaryPart, moves_geometry, per_sample
from .sampling import DiscreteSampler, cross2, perp
from .views import connect_to_camera, film_to_unit, widened_length

#: Most triangle pairs tested per pair of shapes (those of each whose bounding
#: boxes reach into the other shape's box): beyond it the pair is not searched.
MAX_PAIRS = 1 << 26

#: Per scene: the last curves found and the geometry they were found for.
_SEGMENT_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

#: Triangle pairs tested at once (memory).
PAIRS_PER_CHUNK = 1 << 20

#: Film offset (pixels) of the rays either side of a curve.
EPS_PX = 1e-3

#: Vertices within this fraction of the scene's extent of the other plane
#: count as on it (touching, not crossing).
PLANE_TOLERANCE = 1e-6


def intersection_segments(positions: np.ndarray, faces: np.ndarray, prim_shape: np.ndarray,
                          tolerance: float = PLANE_TOLERANCE) -> tuple:
    """Segments where triangles of different shapes pass through each other:
    ``(p0, p1, tri_a, tri_b)`` (world endpoints, numpy; global triangle
    indices). Each plane must have vertices of the other triangle strictly on
    both sides (beyond ``tolerance`` times the scene's extent).

    Shapes are paired by boxes of the vertices their triangles index (a range
    per shape, as the scene's buffers lay them out: cheap), and triangle boxes
    are computed only for the shapes of overlapping pairs: a 131k-triangle
    mesh standing on a floor took 26 ms per call when every triangle's box
    was built first, 6 ms this way."""
    p = np.asarray(positions).reshape(-1, 3)
    f = np.asarray(faces).reshape(-1, 3).astype(np.int64, copy=False)
    shape = np.asarray(prim_shape).astype(np.int64, copy=False)
    empty = (np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros(0, np.int64))
    if f.shape[0] == 0:
        return empty
    tol = tolerance * float(np.max(p.max(axis=0) - p.min(axis=0)))
    n_shapes = int(shape.max()) + 1
    if np.all(shape[1:] >= shape[:-1]):                # the scene's layout: contiguous
        order = np.arange(f.shape[0])
        starts = np.searchsorted(shape, np.arange(n_shapes + 1))
    else:
        order = np.argsort(shape, kind="stable")
        starts = np.searchsorted(shape[order], np.arange(n_shapes + 1))
    members = [order[starts[k]:starts[k + 1]] for k in range(n_shapes)]
    v_min = np.minimum(np.minimum(f[:, 0], f[:, 1]), f[:, 2])
    v_max = np.maximum(np.maximum(f[:, 0], f[:, 1]), f[:, 2])
    box_lo = np.full((n_shapes, 3), np.inf)
    box_hi = np.full((n_shapes, 3), -np.inf)
    for k, m in enumerate(members):
        if m.size:
            block = p[int(v_min[m].min()):int(v_max[m].max()) + 1]
            box_lo[k], box_hi[k] = block.min(axis=0), block.max(axis=0)
    tri_boxes: dict = {}

    def boxes(k: int) -> tuple:
        """Shape ``k``'s triangles: their corners (float64) and boxes."""
        if k not in tri_boxes:
            m = members[k]
            t = p[f[m]].astype(np.float64)              # (n_k, 3, 3)
            lo = np.minimum(np.minimum(t[:, 0], t[:, 1]), t[:, 2])
            hi = np.maximum(np.maximum(t[:, 0], t[:, 1]), t[:, 2])
            tri_boxes[k] = (t, lo, hi)
        return tri_boxes[k]

    out = []
    for i in range(n_shapes):
        # Shapes after i whose bounding boxes overlap i's.
        others = np.arange(i + 1, n_shapes)
        near = others[np.all((box_lo[i] <= box_hi[others] + tol)
                             & (box_lo[others] <= box_hi[i] + tol), axis=1)]
        for j in near:
            # Only the triangles of each that reach into the other's box.
            (ta, lo_a, hi_a), (tb, lo_b, hi_b) = boxes(i), boxes(int(j))
            a = np.flatnonzero(np.all((lo_a <= box_hi[j] + tol) & (hi_a >= box_lo[j] - tol),
                                      axis=1))
            b = np.flatnonzero(np.all((lo_b <= box_hi[i] + tol) & (hi_b >= box_lo[i] - tol),
                                      axis=1))
            if a.size == 0 or b.size == 0 or a.size * b.size > MAX_PAIRS:
                continue
            step = max(1, PAIRS_PER_CHUNK // b.size)
            for k in range(0, a.size, step):
                ai, bj = np.repeat(a[k:k + step], b.size), np.tile(b, a[k:k + step].size)
                overlap = np.all((lo_a[ai] <= hi_b[bj] + tol) & (lo_b[bj] <= hi_a[ai] + tol),
                                 axis=1)
                ai, bj = ai[overlap], bj[overlap]
                if ai.size:
                    out.append(_segments(ta[ai], tb[bj], members[i][ai], members[j][bj], tol))
    out = [o for o in out if o[0].shape[0]]
    if not out:
        return empty
    return tuple(np.concatenate(parts) for parts in zip(*out))


def _crossing(t: np.ndarray, d: np.ndarray) -> tuple:
    """The two points where triangles ``t`` (m, 3, 3) cross the plane whose
    signed distances their vertices have (``d``, m × 3): the points on the
    edges whose ends lie on different sides (a vertex on the plane counts as
    the side of neither)."""
    pts = []
    for k in range(3):
        d0, d1 = d[:, k], d[:, (k + 1) % 3]
        cross = ((d0 < 0) & (d1 > 0)) | ((d0 > 0) & (d1 < 0))
        s = np.where(cross, d0 / np.where(cross, d0 - d1, 1.0), 0.0)
        q = t[:, k] + (t[:, (k + 1) % 3] - t[:, k]) * s[:, None]
        on = (d0 == 0)
        pts.append((cross | on, np.where(on[:, None], t[:, k], q)))
    first = np.where(pts[0][0][:, None], pts[0][1], np.where(pts[1][0][:, None], pts[1][1],
                                                             pts[2][1]))
    second = np.where(pts[2][0][:, None], pts[2][1], np.where(pts[1][0][:, None], pts[1][1],
                                                              pts[0][1]))
    return first, second


def _segments(ta: np.ndarray, tb: np.ndarray, ia: np.ndarray, ib: np.ndarray,
              tol: float) -> tuple:
    na = np.cross(ta[:, 1] - ta[:, 0], ta[:, 2] - ta[:, 0])
    nb = np.cross(tb[:, 1] - tb[:, 0], tb[:, 2] - tb[:, 0])
    la, lb = np.linalg.norm(na, axis=1), np.linalg.norm(nb, axis=1)
    ok = (la > 0) & (lb > 0)
    na = na / np.where(ok, la, 1.0)[:, None]
    nb = nb / np.where(ok, lb, 1.0)[:, None]
    da = np.einsum("mkc,mc->mk", ta - tb[:, :1], nb)   # A's vertices to B's plane
    db = np.einsum("mkc,mc->mk", tb - ta[:, :1], na)
    da = np.where(np.abs(da) <= tol, 0.0, da)
    db = np.where(np.abs(db) <= tol, 0.0, db)
    ok &= (da.min(1) < 0) & (da.max(1) > 0) & (db.min(1) < 0) & (db.max(1) > 0)
    line = np.cross(na, nb)
    ok &= np.linalg.norm(line, axis=1) > 1e-6
    a0, a1 = _crossing(ta, da)
    b0, b1 = _crossing(tb, db)
    sa0, sa1 = np.einsum("mc,mc->m", a0, line), np.einsum("mc,mc->m", a1, line)
    sb0, sb1 = np.einsum("mc,mc->m", b0, line), np.einsum("mc,mc->m", b1, line)
    lo = np.maximum(np.minimum(sa0, sa1), np.minimum(sb0, sb1))
    hi = np.minimum(np.maximum(sa0, sa1), np.maximum(sb0, sb1))
    span = sa1 - sa0
    ok &= (hi > lo) & (np.abs(span) > 0)
    span = np.where(ok, span, 1.0)
    p0 = a0 + (a1 - a0) * ((lo - sa0) / span)[:, None]
    p1 = a0 + (a1 - a0) * ((hi - sa0) / span)[:, None]
    return p0[ok], p1[ok], ia[ok], ib[ok]


def _moving(scene: Any, sensor: Any) -> tuple:
    """Per shape, whether its intersection curves can move: all of them when
    the camera moves (``()``), else the shapes whose vertices move."""
    if moves_geometry(scene, sensor)["sensor"]:
        return ()
    with dr.resume_grad():
        return tuple(bool(dr.grad_enabled(s.world_positions())) for s in scene.shapes)


def _plane(scene: Any, prim: Any, active: Any) -> tuple:
    """Attached plane of triangle ``prim``: (normal, normal · a vertex)."""
    p = [dr.gather(bk.Array3f, scene.positions,
                   dr.gather(bk.UInt32, scene.faces, 3 * prim + k, active), active)
         for k in range(3)]
    n = dr.cross(p[1] - p[0], p[2] - p[0])
    return n, dr.dot(n, p[0])


class IntersectionCurves(PrimaryPart):
    """Part of the ``primary`` term (budget ``sppe``): see the module docstring."""

    seed_salt = 0x49

    def needed(self, scene: Any, sensor: Any, integrator: Any) -> bool:
        m = moves_geometry(scene, sensor)
        if not (m["shapes"] or m["sensor"]):
            return False
        return self._segments(scene, _moving(scene, sensor))[0].shape[0] > 0

    def _segments(self, scene: Any, moving_key: tuple) -> tuple:
        """The curves (numpy, :func:`intersection_segments`) that can move:
        kept per scene until its vertices, faces or moving shapes change."""
        # (By value: ``Scene.update`` makes new arrays of the same positions,
        # every derivative call updates the scene, and terms are made anew.)
        cached = _SEGMENT_CACHE.get(scene)
        if (cached is not None and cached[0] == moving_key
                and np.array_equal(cached[1], scene._positions_np)
                and np.array_equal(cached[2], scene.faces_np)):
            return cached[3]
        p0, p1, ta, tb = intersection_segments(scene._positions_np, scene.faces_np,
                                               scene.prim_shape_np)
        moving = np.array(moving_key, dtype=bool)
        if moving.size and p0.shape[0]:
            keep = (moving[scene.prim_shape_np[ta]] | moving[scene.prim_shape_np[tb]])
            p0, p1, ta, tb = p0[keep], p1[keep], ta[keep], tb[keep]
        _SEGMENT_CACHE[scene] = (moving_key, scene._positions_np.copy(), scene.faces_np.copy(),
                                 (p0, p1, ta, tb))
        return p0, p1, ta, tb

    def sample_count(self, scene: Any, sensor: Any, integrator: Any, budget: int) -> int:
        """``budget`` samples per pixel of the curves' length on the film."""
        sampler = self.distribution(scene, sensor)[0]
        return 0 if sampler is None else int(math.ceil(budget * sampler.total))

    def _cache_key(self) -> tuple:
        return getattr(self, "_moving_key", ())

    def distribution(self, scene: Any, sensor: Any) -> Any:
        # (Which shapes move is part of the key: curves between static shapes
        # seen by a static camera stay put.)
        self._moving_key = _moving(scene, sensor)
        return super().distribution(scene, sensor)

    def _distribution(self, scene: Any, sensor: Any) -> tuple:
        p0, p1, ta, tb = self._segments(scene, self._moving_key)
        if p0.shape[0] == 0:
            return None, None, None, None, None
        with dr.suspend_grad():
            q0 = bk.Array3f(*[bk.Float(p0[:, k].astype(np.float32)) for k in range(3)])
            q1 = bk.Array3f(*[bk.Float(p1[:, k].astype(np.float32)) for k in range(3)])
            s0, f0 = sensor.project(q0)
            s1, f1 = sensor.project(q1)
            weight = dr.select(f0 & f1, widened_length(sensor, q0, q1, dr.norm(s1 - s0)), 0.0)
            dr.eval(weight)
        return (DiscreteSampler(weight), q0, q1, bk.UInt32(ta.astype(np.uint32)),
                bk.UInt32(tb.astype(np.uint32)))

    def sample(self, scene: Any, sensor: Any, integrator: Any, rng: Any,
               total: int) -> BoundarySample:
        sampler, q0, q1, tri_a, tri_b = self.distribution(scene, sensor)
        with dr.suspend_grad():
            idx, pmf = sampler.sample(rng.next_float32())
            t = rng.next_float32()
            p0 = dr.gather(bk.Array3f, q0, idx)
            p1 = dr.gather(bk.Array3f, q1, idx)
            a = dr.gather(bk.UInt32, tri_a, idx)
            b = dr.gather(bk.UInt32, tri_b, idx)
            y = dr.lerp(p0, p1, t)
            s, front = sensor.project(y)
            ds_dt = sensor.project_differential(y, p1 - p0)
            len_dt = dr.norm(ds_dt)
            valid = front & (len_dt > 0) & (pmf > 0)
            # The camera must see the curve there (the first hit is on A or B,
            # at the curve point).
            cam = connect_to_camera(scene, sensor, y, a, valid)
            valid &= cam.valid
            n_left = perp(ds_dt) / dr.maximum(len_dt, 1e-30)
            o_l, d_l, t_l = sensor.sample_ray(film_to_unit(sensor, s + EPS_PX * n_left))
            o_r, d_r, t_r = sensor.sample_ray(film_to_unit(sensor, s - EPS_PX * n_left))
            L_left, L_right = integrator.radiance_pair(scene, rng, (o_l, d_l, t_l),
                                                       (o_r, d_r, t_r), valid)
            scale = dr.select(valid, dr.rcp(dr.maximum(pmf, 1e-30)) * per_sample(total), 0.0)
            jump = [(r - lft) * scale for lft, r in zip(L_left, L_right)]
        # Attached: the point where both (moving) planes meet the fixed plane
        # across their line through y.
        na, ca = _plane(scene, a, valid)
        nb, cb = _plane(scene, b, valid)
        line = dr.detach(dr.cross(na, nb))
        c_line = dr.dot(line, y)
        det = dr.dot(na, dr.cross(nb, line))
        det = dr.select(valid & (dr.abs(dr.detach(det)) > 0), det, 1.0)
        y_att = (ca * dr.cross(nb, line) + cb * dr.cross(line, na)
                 + c_line * dr.cross(na, nb)) / det
        s_att, _ = sensor.project(y + (y_att - dr.detach(y_att)))
        velocity = cross2(ds_dt, s_att - s)
        value = [dr.detach(j) * velocity for j in jump]
        return BoundarySample(s, value, valid)
