"""``TriangleRasterizer``: triangle-id, barycentric and depth buffers.

Two steps, on purpose:

1. **Visibility (not differentiated).** Which triangle is nearest at each
   sample is a discrete decision. It runs as a Dr.Jit array program on
   *detached* values: per triangle, a screen bounding box; the (triangle,
   sample) candidate pairs are enumerated with an exclusive prefix sum of the
   box sizes (each triangle's index is written at its first pair and an
   inclusive prefix maximum gives every pair its triangle); each pair is
   tested and the nearest triangle per sample is kept with one atomic
   ``scatter_reduce(Min)`` on a 64-bit key
   ``depth_bits << 32 | triangle_id`` (positive floats order like their bit
   patterns). Candidate pairs are processed in chunks, so large triangles cost
   time, not memory. With ``depth_layers=2`` a second pass over the same
   pairs keeps, per sample, the nearest key strictly greater than the first
   layer's: the second-nearest surface.

2. **Geometry (differentiated).** From the chosen triangle id and the fixed
   sample position, the barycentrics and the depth are recomputed from the
   *attached* vertex positions and camera, so derivatives with respect to
   vertices and camera flow through every covered sample. This is the
   rasterization analogue of the ray tracer's differentiable re-intersection:
   the surface point slides along the fixed pixel ray. (Silhouettes, where the
   triangle id itself changes, are not differentiable this way: see
   :mod:`lumigrad.raster.discontinuity`.)

Watertight coverage (the coverage decision only; barycentrics and depths of
step 2 stay float functions of the *unsnapped* vertices, so derivatives stay
smooth). As in hardware rasterizers, every vertex in front of the near plane
is projected and snapped to a fixed-point grid of ``2^-subpixel_bits`` of a
sample: integer coordinates ``X_i, Y_i`` (held in Float64, |X| <= 2^23, so
every product and sum below is an exact integer). The edge functions

    e_i(p) = a_i p_x + b_i p_y + c_i,   a_i = Y_j - Y_k,  b_i = X_k - X_j,
    c_i = -(a_i X_j + b_i Y_j)         (i, j, k cyclic; signs flipped for
                                         clockwise triangles so e_i > 0 inside)

are then evaluated *exactly* at the sample centres (integers in these units),
so two triangles sharing an edge compute exactly opposite values on it, and
the top-left fill rule decides the samples exactly on it: ``e_i = 0`` counts
as inside only if the edge's inward normal ``(a_i, b_i)`` points right (a
left edge) or straight down (a top edge, y growing downwards). Every sample
on a shared edge, or at a shared vertex, belongs to exactly one triangle, and
a closed mesh has no cracks (Pineda 1988, "A Parallel Algorithm for Polygon
Rasterization"; the rule of Direct3D and OpenGL implementations). The
visibility depth comes from the same snapped edge functions (``1/z``
interpolated with ``e_i / sum e``), and culling reads the sign of the
snapped area. Triangles that snap to zero area cover nothing. Triangles
with a corner behind the near plane or beyond the guard band take the
floating-point homogeneous test below (exact near-plane clipping, not
watertight against their neighbours: only around the near plane).

Near plane: 2-D homogeneous rasterization (Olano & Greer 1997, "Triangle Scan
Conversion using 2D Homogeneous Coordinates"). With ``h_i = (u_i, v_i, w_i)``
the homogeneous raster coordinates of the corners (linear in the camera-space
positions, finite for any position), and ``q = (x, y, 1)`` a sample position,

    e_i(q) = (h_j x h_k) . q          (i, j, k cyclic),
    b_i    = e_i / (e_0 + e_1 + e_2),  depth = sum_i b_i z_i,

where ``b`` are the perspective-correct barycentrics of the point where the
sample's ray meets the triangle's plane and ``depth`` its camera-space depth.
A sample is covered iff all ``b_i >= 0`` and ``near <= depth <= far``. No
vertex is ever divided by its ``w``, so a triangle that crosses the near plane
is rasterized exactly (its part behind the near plane is rejected per sample)
and a triangle behind the camera produces nothing instead of an inverted
smear. Bounding boxes of triangles that cross the near plane are those of the
triangle clipped against it (the corners in front plus the two crossing
points), so they stay finite.

Front faces are counter-clockwise seen from the camera: ``det[h0 h1 h2] < 0``
for the cameras here (``det`` is a positive multiple of the triple product
``p0 . (p1 x p2)`` of camera-space corners, negative when the winding faces
the eye), the same test whether the triangle is in front of the eye or not.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import drjit as dr
import numpy as np

from .. import backend as bk
from .buffers import Buffer
from .camera import Camera
from .mesh import TriangleMesh

#: triangle id of samples that no triangle covers
BACKGROUND = -1
#: key of a sample that no candidate reached (depth bits << 32 | triangle id)
_EMPTY = 0xFFFFFFFFFFFFFFFF
#: fixed-point coordinates are kept within +-2^23 units, so that every product and
#: sum of the edge functions stays below 2^53 and is exact in Float64
_GUARD = float(1 << 23)
#: default sub-sample precision (8 bits, as in current GPUs' rasterizers)
DEFAULT_SUBPIXEL_BITS = 8


class SilhouetteGradientWarning(UserWarning):
    """Camera or geometry gradients are being computed without a discontinuity
    method: derivatives from the interiors of triangles are correct, but the
    contributions of silhouettes (where coverage changes) are missing."""


def parse_resolution(resolution: Any) -> tuple[int, int]:
    """``int`` (square) or ``(width, height)`` -> ``(width, height)``, validated."""
    if isinstance(resolution, (int, np.integer)):
        w = h = int(resolution)
    else:
        try:
            w, h = (int(r) for r in resolution)
        except (TypeError, ValueError):
            raise ValueError(f"resolution must be an int or (width, height), got "
                             f"{resolution!r}") from None
    if w < 1 or h < 1:
        raise ValueError(f"resolution must be positive, got {w}x{h}")
    return w, h


def fmin(a: Any, b: Any) -> Any:
    """``min`` by comparison. Dr.Jit lowers ``dr.minimum``/``dr.maximum`` of floats to
    LLVM's ``fminimum``/``fmaximum``, which LLVM 20 fails to compile on x86 in some
    kernels ("Cannot select: fmaximum"); a select is portable and as fast."""
    return dr.select(a < b, a, b)


def fmax(a: Any, b: Any) -> Any:
    """``max`` by comparison (see :func:`fmin`)."""
    return dr.select(a > b, a, b)


def fclip(x: Any, lo: Any, hi: Any) -> Any:
    return fmin(fmax(x, lo), hi)


def _cross_rows(h0: Any, h1: Any, h2: Any) -> tuple[Any, Any, Any]:
    """Edge-function coefficient rows ``E_i = h_j x h_k`` (rows of adj[h0 h1 h2])."""
    return dr.cross(h1, h2), dr.cross(h2, h0), dr.cross(h0, h1)


class TriangleRasterizer:
    """Rasterize ``mesh`` seen by ``camera`` into G-buffers.

    Args:
        resolution: ``(width, height)`` in pixels (or one int for a square image).
        camera: a :class:`~lumigrad.raster.camera.PerspectiveCamera` or
            :class:`~lumigrad.raster.camera.OrthographicCamera`.
        mesh: a :class:`~lumigrad.raster.mesh.TriangleMesh`.
        samples_per_pixel: ``n**2`` samples on a regular ``n x n`` grid per pixel;
            all buffers then cover the *sample grid* ``(height*n, width*n)`` and
            :class:`~lumigrad.raster.stages.Resolve` box-filters to pixels.
        cull_backfaces: drop triangles whose back faces the camera.
        chunk: candidate (triangle, sample) pairs per kernel launch.
        subpixel_bits: fixed-point precision of the coverage test: vertices are
            snapped to ``2^-subpixel_bits`` of a sample (default 8; 1 to 16).
        depth_layers: 1, or 2 to also keep the second-nearest surface per sample
            (for :class:`~lumigrad.raster.occlusion.OcclusionEstimator`).

    Output buffers (image layout ``(H*n, W*n, C)``):
        ``triangle_id_buffer`` (``Int32``; ``BACKGROUND = -1`` where uncovered),
        ``barycentric_buffer`` (3 channels, 0 on the background),
        ``depth_buffer`` (camera-space depth along the view axis, 0 on the background);
        with ``depth_layers=2`` also the second layer's, in ``triangle_id_buffers[1]``,
        ``barycentric_buffers[1]``, ``depth_buffers[1]``.
    """

    def __init__(self, resolution: Any, camera: Camera, mesh: TriangleMesh,
                 samples_per_pixel: int = 1, cull_backfaces: bool = False,
                 chunk: int = 1 << 25, subpixel_bits: Any = None,
                 depth_layers: int = 1) -> None:
        if not isinstance(camera, Camera):
            raise TypeError(f"TriangleRasterizer: camera must be a raster Camera, got "
                            f"{type(camera).__name__}")
        if not isinstance(mesh, TriangleMesh):
            raise TypeError(f"TriangleRasterizer: mesh must be a TriangleMesh, got "
                            f"{type(mesh).__name__}")
        self.width, self.height = parse_resolution(resolution)
        spp = int(samples_per_pixel)
        side = int(round(math.isqrt(max(spp, 0))))
        if spp < 1 or side * side != spp:
            raise ValueError(f"TriangleRasterizer: samples_per_pixel must be a perfect square "
                             f"(1, 4, 9, 16, ...), got {samples_per_pixel}")
        bits = DEFAULT_SUBPIXEL_BITS if subpixel_bits is None else subpixel_bits
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 16:
            raise ValueError(f"TriangleRasterizer: subpixel_bits must be an integer in [1, 16], "
                             f"got {subpixel_bits!r}")
        self.subpixel_bits = int(bits)
        if max(self.width, self.height) * side * (1 << self.subpixel_bits) > _GUARD / 2:
            raise ValueError(f"TriangleRasterizer: a {self.width}x{self.height} image with "
                             f"{spp} samples per pixel and subpixel_bits={bits} exceeds the "
                             f"fixed-point range (2^22 units per axis); use fewer subpixel_bits")
        if depth_layers not in (1, 2):
            raise ValueError(f"TriangleRasterizer: depth_layers must be 1 or 2, got "
                             f"{depth_layers!r}")
        self.depth_layers = int(depth_layers)
        self.spp_side = side
        self.samples_per_pixel = spp
        self.sample_width = self.width * side
        self.sample_height = self.height * side
        self.n_samples = self.sample_width * self.sample_height
        self.camera = camera
        self.mesh = mesh
        self.cull_backfaces = bool(cull_backfaces)
        self.chunk = int(chunk)
        #: set by a discontinuity stage wired to this rasterizer
        self.discontinuity_handled = False
        sh, sw = self.sample_height, self.sample_width
        self.triangle_id_buffer = Buffer("triangle_id", sh, sw, 1, spp_side=side)
        self.barycentric_buffer = Buffer("barycentric", sh, sw, 3, spp_side=side)
        self.depth_buffer = Buffer("depth", sh, sw, 1, spp_side=side)
        #: one (ids, barycentrics, depth) buffer per depth layer: [0] nearest surface,
        #: [1] second-nearest (``depth_layers=2``; ``BACKGROUND`` where there is none)
        self.triangle_id_buffers = [self.triangle_id_buffer]
        self.barycentric_buffers = [self.barycentric_buffer]
        self.depth_buffers = [self.depth_buffer]
        if self.depth_layers == 2:
            self.triangle_id_buffers.append(Buffer("triangle_id_1", sh, sw, 1, spp_side=side))
            self.barycentric_buffers.append(Buffer("barycentric_1", sh, sw, 3, spp_side=side))
            self.depth_buffers.append(Buffer("depth_1", sh, sw, 1, spp_side=side))
        #: per-triangle facing (True: front face towards the camera), detached
        self.front_facing: Any = None
        self.stats: dict = {}

    # -- sample grid ------------------------------------------------------------
    def sample_positions(self) -> Any:
        """Raster coordinates (pixels) of the samples, as ``Array3f(x, y, 1)``."""
        s = self.spp_side
        idx = dr.arange(bk.UInt32, self.n_samples)
        gx = idx % self.sample_width
        gy = idx // self.sample_width
        return bk.Array3f((bk.Float(gx) + 0.5) / s, (bk.Float(gy) + 0.5) / s, 1.0)

    def pixel_index(self) -> Any:
        """For every sample, the index ``py * width + px`` of its pixel."""
        s = self.spp_side
        idx = dr.arange(bk.UInt32, self.n_samples)
        return (idx // self.sample_width // s) * self.width + (idx % self.sample_width) // s

    # -- per-triangle homogeneous coordinates ---------------------------------------
    def triangle_homogeneous(self, tri: Any, active: Any = True) -> tuple[list, Any]:
        """Attached homogeneous raster coordinates ``[h0, h1, h2]`` (``Array3f`` each)
        and camera-space depths ``Array3f(z0, z1, z2)`` of triangles ``tri``."""
        p = self.mesh.gather_triangles(tri, active)
        hs, zs = [], []
        for k in range(3):
            pc = self.camera.to_camera(p[k])
            u, v, w = self.camera.homogeneous(pc, self.width, self.height)
            hs.append(bk.Array3f(u, v, w))
            zs.append(pc[2])
        return hs, bk.Array3f(zs[0], zs[1], zs[2])

    # -- forward ----------------------------------------------------------------
    def forward(self) -> None:
        cam, mesh = self.camera, self.mesh
        cam.forward()
        near, far = cam.near_far()
        self._maybe_warn()
        W, H = self.width, self.height

        # ---- 1. visibility on detached values ------------------------------------
        pos = dr.detach(mesh.vertices)
        pc = dr.detach(cam.to_camera(pos))
        u, v, w = cam.homogeneous(pc, W, H)
        u, v, w = dr.detach(u), dr.detach(v), dr.detach(w)
        hv = bk.Array3f(u, v, w)
        F = mesh.n_triangles
        tri_all = dr.arange(bk.UInt32, F)
        vids = [dr.gather(bk.UInt32, mesh.triangle_vertex_ids, tri_all * 3 + k) for k in range(3)]
        h = [dr.gather(bk.Array3f, hv, vid) for vid in vids]
        z = [dr.gather(bk.Float, pc[2], vid) for vid in vids]
        E = _cross_rows(h[0], h[1], h[2])
        det = dr.dot(h[0], E[0])
        front = det * cam.handedness < 0
        self.front_facing = front
        #: detached per-triangle edge-function rows and determinant (for later stages)
        self.triangle_edges = E
        self.triangle_det = det

        any_front = (z[0] >= near) | (z[1] >= near) | (z[2] >= near)
        any_before_far = (z[0] <= far) | (z[1] <= far) | (z[2] <= far)
        keep = any_front & any_before_far & (det != 0) & dr.isfinite(det)

        # fixed-point raster coordinates of every vertex in front of the near plane
        # (units of 2^-bits sample); vertices beyond the guard band or behind the
        # near plane leave their triangles to the floating-point homogeneous path
        fx = self._fixed_point_triangles(u, v, w, pc[2], vids, near)
        fixed = keep & fx["ok"] & fx["nondegenerate"]
        homog = keep & ~fx["ok"]
        if self.cull_backfaces:
            fixed &= fx["front"]
            homog &= front
        self.stats = {"candidate_pairs": 0, "launches": 0, "homogeneous_triangles": 0}
        self._passes = []
        keys = dr.full(bk.UInt64, _EMPTY, self.n_samples)
        # (no count of the fixed-point triangles first: an empty pass launches nothing;
        # the count of the others is evaluated with the boxes, in the same launch)
        n_h_arr = dr.count(homog)
        boxes = self._boxes(fixed, *fx["box"], extra=(n_h_arr,))
        self._passes.append((boxes, self._test_fixed, self._fixed_origin(fx, boxes)))
        n_h = int(n_h_arr[0]) if F else 0
        if n_h:
            self.stats["homogeneous_triangles"] = n_h
            self._passes.append((self._boxes(homog, *self._homogeneous_boxes(h, z, near)),
                                 self._test_homogeneous, (E, z)))
        for boxes, test, data in self._passes:
            self._enumerate(keys, None, boxes, test, data, near, far)

        # ---- 2. differentiable recomputation from the triangle ids ---------------
        self._tri, self._valid = self._write_layer(keys, self.triangle_id_buffer,
                                                   self.barycentric_buffer, self.depth_buffer)
        if self.depth_layers == 2:
            # the second-nearest surface: the nearest candidate strictly behind the first
            keys2 = dr.full(bk.UInt64, _EMPTY, self.n_samples)
            for boxes, test, data in self._passes:
                self._enumerate(keys2, keys, boxes, test, data, near, far)
            self._tri2, self._valid2 = self._write_layer(
                keys2, self.triangle_id_buffers[1], self.barycentric_buffers[1],
                self.depth_buffers[1])

    def _write_layer(self, keys: Any, ids: Buffer, bary: Buffer, depth: Buffer) -> tuple:
        valid = keys != _EMPTY
        tri = dr.select(valid, bk.UInt32(keys & 0xFFFFFFFF), 0)
        dr.eval(tri, valid)
        ids.value = dr.select(valid, bk.Int32(tri), BACKGROUND)
        b, d = self.interpolate_geometry(tri, valid)
        bary.value = b
        depth.value = d
        return tri, valid

    def _fixed_point_triangles(self, u: Any, v: Any, w: Any, zc: Any, vids: list,
                               near: float) -> dict:
        """Snapped corners, edge-function coefficients with the fill rule folded in,
        depth coefficients and sample-grid boxes of every triangle (Float64, exact)."""
        F64 = bk.Float64
        scale = float(self.spp_side * (1 << self.subpixel_bits))
        ok_v = zc >= near
        wd = dr.select(ok_v & (w != 0), w, 1.0)
        X = dr.round(F64(u) / F64(wd) * scale)
        Y = dr.round(F64(v) / F64(wd) * scale)
        ok_v &= dr.isfinite(X) & dr.isfinite(Y) & (dr.abs(X) <= _GUARD) & (dr.abs(Y) <= _GUARD)
        Xs = [dr.gather(F64, X, vid) for vid in vids]
        Ys = [dr.gather(F64, Y, vid) for vid in vids]
        zs = [F64(dr.gather(bk.Float, zc, vid)) for vid in vids]
        ok = (dr.gather(bk.Bool, ok_v, vids[0]) & dr.gather(bk.Bool, ok_v, vids[1])
              & dr.gather(bk.Bool, ok_v, vids[2]))
        # twice the signed area (exact: |coordinates| <= 2^23, products <= 2^48)
        area2 = (Xs[1] - Xs[0]) * (Ys[2] - Ys[0]) - (Ys[1] - Ys[0]) * (Xs[2] - Xs[0])
        # (a triangle that snaps to zero area covers nothing: dropped, not sent to
        # the floating-point path, where it would overlap its neighbours)
        nondegenerate = area2 != 0
        sgn = dr.select(area2 > 0, F64(1.0), F64(-1.0))
        area = dr.abs(area2)
        A, B, C, K, D = [], [], [], F64(0.0), []
        for i in range(3):
            j, k = (i + 1) % 3, (i + 2) % 3
            a = (Ys[j] - Ys[k]) * sgn
            b = (Xs[k] - Xs[j]) * sgn
            # top-left rule: a sample exactly on the edge (e = 0) belongs to the
            # triangle whose interior gradient (a, b) points right, or straight down
            owned = (a > 0) | ((a == 0) & (b > 0))
            off = dr.select(owned, F64(0.0), F64(1.0))
            c = -(a * Xs[j] + b * Ys[j]) - off
            di = (F64(1.0) / (area * zs[i])) if self.camera.perspective else zs[i] / area
            K = K + off * di
            A.append(a)
            B.append(b)
            C.append(c)
            D.append(di)
        coef = (A, B, C, D, K)
        half = float(1 << (self.subpixel_bits - 1))
        inv = 1.0 / (1 << self.subpixel_bits)

        def lo(m: Any) -> Any:  # first sample centre g*S + S/2 >= m
            return bk.Int32(fclip(bk.Float(dr.ceil((m - half) * inv)), -2.0, 1e7))

        def hi(m: Any) -> Any:
            return bk.Int32(fclip(bk.Float(dr.floor((m - half) * inv)), -2.0, 1e7))

        xmin = fmin(fmin(Xs[0], Xs[1]), Xs[2])
        xmax = fmax(fmax(Xs[0], Xs[1]), Xs[2])
        ymin = fmin(fmin(Ys[0], Ys[1]), Ys[2])
        ymax = fmax(fmax(Ys[0], Ys[1]), Ys[2])
        front = area2 * self.camera.handedness < 0
        return {"ok": ok, "nondegenerate": nondegenerate, "front": front, "coef": coef,
                "box": (lo(xmin), hi(xmax), lo(ymin), hi(ymax))}

    def _fixed_origin(self, fx: dict, boxes: tuple) -> tuple:
        """Per-triangle data of the exact test, relative to each box's first sample:
        edge functions there (Float64), their steps per sample (``A S``, ``B S``:
        integers below 2^24, exact in Float32), depth coefficients and constant."""
        A, B, C, D, K = fx["coef"]
        x0, y0 = boxes[3], boxes[4]
        S = float(1 << self.subpixel_bits)
        px0 = bk.Float64(x0) * S + 0.5 * S
        py0 = bk.Float64(y0) * S + 0.5 * S
        e0 = bk.module.Array3f64(*[A[i] * px0 + B[i] * py0 + C[i] for i in range(3)])
        data = (e0, bk.Array3f(*[bk.Float(a) * S for a in A]),
                bk.Array3f(*[bk.Float(b) * S for b in B]),
                bk.Array3f(*[bk.Float(d) for d in D]), bk.Float(K))
        dr.eval(data)
        return data

    def _homogeneous_boxes(self, h: list, z: list, near: float) -> tuple:
        """Sample-grid box of the part of each triangle in front of the near plane
        (the corners in front plus the points where its edges cross the plane)."""
        s = self.spp_side
        Ws, Hs = self.sample_width, self.sample_height
        F = dr.width(z[0])
        inf = float("inf")
        xmin = dr.full(bk.Float, inf, F)
        ymin = dr.full(bk.Float, inf, F)
        xmax = dr.full(bk.Float, -inf, F)
        ymax = dr.full(bk.Float, -inf, F)

        def include(hp: Any, ok: Any) -> None:
            nonlocal xmin, xmax, ymin, ymax
            wd = dr.select(ok, hp[2], 1.0)
            X, Y = hp[0] / wd, hp[1] / wd
            xmin = dr.select(ok & (X < xmin), X, xmin)
            xmax = dr.select(ok & (X > xmax), X, xmax)
            ymin = dr.select(ok & (Y < ymin), Y, ymin)
            ymax = dr.select(ok & (Y > ymax), Y, ymax)

        for k in range(3):
            include(h[k], z[k] >= near)
            k1 = (k + 1) % 3
            dz = z[k1] - z[k]
            crosses = (z[k] - near) * (z[k1] - near) < 0
            t = (near - z[k]) / dr.select(crosses, dz, 1.0)
            include(h[k] + (h[k1] - h[k]) * t, crosses)
        # (xmin etc. are in pixels; the sample grid is s times finer)
        return (bk.Int32(dr.ceil(fclip(xmin * s - 0.5, -2.0, Ws + 2.0))),
                bk.Int32(dr.floor(fclip(xmax * s - 0.5, -2.0, Ws + 2.0))),
                bk.Int32(dr.ceil(fclip(ymin * s - 0.5, -2.0, Hs + 2.0))),
                bk.Int32(dr.floor(fclip(ymax * s - 0.5, -2.0, Hs + 2.0))))

    def _boxes(self, keep: Any, lo_x: Any, hi_x: Any, lo_y: Any, hi_y: Any,
               extra: tuple = ()) -> tuple:
        """Clip boxes to the sample grid; per-triangle pair counts and prefix sums."""
        Ws, Hs = self.sample_width, self.sample_height
        lo_x = dr.select(lo_x < 0, 0, lo_x)
        lo_y = dr.select(lo_y < 0, 0, lo_y)
        hi_x = dr.select(hi_x > Ws - 1, Ws - 1, hi_x)
        hi_y = dr.select(hi_y > Hs - 1, Hs - 1, hi_y)
        bw = hi_x - lo_x + 1
        bh = hi_y - lo_y + 1
        ok_box = keep & (bw > 0) & (bh > 0)
        bw = dr.select(ok_box, bw, 0)
        count = dr.select(ok_box, bw * bh, 0)
        x0, y0, bwu = bk.UInt32(lo_x), bk.UInt32(lo_y), bk.UInt32(bw)
        dr.eval(count, x0, y0, bwu, *extra)
        counts = np.array(count, dtype=np.int64)
        csum = np.concatenate([[0], np.cumsum(counts)])
        return counts, csum, bwu, x0, y0

    def _enumerate(self, keys: Any, first: Any, boxes: tuple, test: Any, data: Any,
                   near: float, far: float) -> None:
        """Test every candidate pair of ``boxes`` and keep the nearest triangle per
        sample in ``keys`` (only candidates behind ``first``'s key, when given)."""
        counts, csum, bw, x0, y0 = boxes
        total = int(csum[-1])
        self.stats["candidate_pairs"] += total
        # consecutive ranges of at most ``chunk`` pairs (a range may start or end
        # inside one triangle's box, so even a full-screen triangle is split)
        for p0 in range(0, total, self.chunk):
            p1 = min(p0 + self.chunk, total)
            t, gx, gy, dx, dy = self._pairs(p0, p1, csum, counts, bw, x0, y0)
            ok, depth = test(t, gx, gy, dx, dy, data, near, far)
            depth = dr.select(depth > 0, depth, 0.0)
            key = (bk.UInt64(dr.reinterpret_array(bk.UInt32, depth)) << 32) | bk.UInt64(t)
            sidx = gy * self.sample_width + gx
            if first is not None:
                ok &= key > dr.gather(bk.UInt64, first, sidx)
            dr.scatter_reduce(dr.ReduceOp.Min, keys, key, sidx, ok)
            dr.eval(keys)
            self.stats["launches"] += 1

    @staticmethod
    def _pairs(p0: int, p1: int, csum: np.ndarray, counts: np.ndarray, bw: Any, x0: Any,
               y0: Any) -> tuple[Any, Any, Any, Any, Any]:
        """Triangle, sample and offset of the sample in the triangle's box of the
        candidate pairs ``p0 <= k < p1``."""
        m = p1 - p0
        # triangles whose pair ranges meet [p0, p1): the first owns pair p0
        t_first = int(np.searchsorted(csum, p0, side="right")) - 1
        t_last = int(np.searchsorted(csum, p1 - 1, side="right")) - 1
        rel_np = csum[t_first:t_last + 1] - p0  # first pair of each, relative (first <= 0)
        rel = bk.Int32(rel_np.astype(np.int32))
        starts = np.flatnonzero((rel_np > 0) & (counts[t_first:t_last + 1] > 0))
        k = dr.arange(bk.UInt32, m)
        # the owning triangle of pair k: write each non-empty triangle's local index at
        # its first pair, then an inclusive prefix maximum fills the rest (cheaper than
        # a binary search over the offsets per pair); local 0 owns the leading pairs
        owner = dr.zeros(bk.UInt32, m)
        if len(starts):
            dr.scatter(owner, bk.UInt32(starts.astype(np.uint32)),
                       bk.UInt32(rel_np[starts].astype(np.uint32)))
        loc = dr.prefix_reduce(dr.ReduceOp.Max, owner, exclusive=False)
        t = loc + t_first
        r = bk.UInt32(bk.Int32(k) - dr.gather(bk.Int32, rel, loc))
        # (guard: lanes of a partially filled SIMD packet read 0 and an integer
        # division by 0 traps on the CPU)
        wbox = dr.gather(bk.UInt32, bw, t)
        wbox = dr.select(wbox == 0, 1, wbox)
        dx, dy = r % wbox, r // wbox
        return t, dr.gather(bk.UInt32, x0, t) + dx, dr.gather(bk.UInt32, y0, t) + dy, dx, dy

    def _test_fixed(self, t: Any, gx: Any, gy: Any, dx: Any, dy: Any, data: tuple,
                    near: float, far: float) -> tuple[Any, Any]:
        """Exact coverage (integer-valued Float64 edge functions with the top-left
        rule folded into their constants) and the depth from the same snapped
        edge functions (perspective-correct: 1/z interpolates linearly)."""
        e0, a, b, d, K = data
        e = (dr.gather(bk.module.Array3f64, e0, t)
             + bk.module.Array3f64(dr.gather(bk.Array3f, a, t)) * bk.Float64(dx)
             + bk.module.Array3f64(dr.gather(bk.Array3f, b, t)) * bk.Float64(dy))
        inside = (e[0] >= 0) & (e[1] >= 0) & (e[2] >= 0)
        q = dr.dot(bk.Array3f(e), dr.gather(bk.Array3f, d, t)) + dr.gather(bk.Float, K, t)
        depth = 1.0 / dr.select(q > 0, q, 1.0) if self.camera.perspective else q
        return inside & (depth >= near) & (depth <= far), depth

    def _test_homogeneous(self, t: Any, gx: Any, gy: Any, dx: Any, dy: Any, data: tuple,
                          near: float, far: float) -> tuple[Any, Any]:
        """Floating-point 2-D homogeneous coverage (triangles that cross the near
        plane or reach beyond the fixed-point guard band)."""
        E, z = data
        s = self.spp_side
        q = bk.Array3f((bk.Float(gx) + 0.5) / s, (bk.Float(gy) + 0.5) / s, 1.0)
        e = [dr.dot(dr.gather(bk.Array3f, E[i], t), q) for i in range(3)]
        ssum = e[0] + e[1] + e[2]
        inside = (e[0] * ssum >= 0) & (e[1] * ssum >= 0) & (e[2] * ssum >= 0) & (ssum != 0)
        rs = 1.0 / dr.select(inside, ssum, 1.0)
        depth = (e[0] * dr.gather(bk.Float, z[0], t) + e[1] * dr.gather(bk.Float, z[1], t)
                 + e[2] * dr.gather(bk.Float, z[2], t)) * rs
        return inside & (depth >= near) & (depth <= far), depth

    def interpolate_geometry(self, tri: Any, valid: Any) -> tuple[Any, Any]:
        """Barycentrics ``Array3f`` and depth ``Float`` at every sample, attached to
        the vertices and the camera (zero on the background)."""
        q = self.sample_positions()
        hs, zc = self.triangle_homogeneous(tri, valid)
        E = _cross_rows(hs[0], hs[1], hs[2])
        e = bk.Array3f(dr.dot(E[0], q), dr.dot(E[1], q), dr.dot(E[2], q))
        ssum = dr.select(valid, e[0] + e[1] + e[2], 1.0)
        b = dr.select(valid, e / ssum, 0.0)
        depth = dr.select(valid, dr.dot(b, zc), 0.0)
        return b, depth

    # -- helpers ----------------------------------------------------------------
    @property
    def triangle_ids(self) -> Any:
        """``UInt32`` triangle per sample (0 on the background; see :attr:`coverage`)."""
        return self._tri

    @property
    def coverage(self) -> Any:
        """``Bool`` per sample: covered by a triangle."""
        return self._valid

    def _geometry_grad_enabled(self) -> bool:
        cam = self.camera
        vals = [self.mesh.vertex_positions, cam.position, cam.target, cam.up]
        if cam.rigid_transform is not None:
            vals += [cam.rigid_transform.position, cam.rigid_transform.rotation]
        for name in ("fov", "extent"):
            if hasattr(cam, name):
                vals.append(getattr(cam, name))
        src = cam._to_world_source
        if src is not None:
            tw = getattr(src, "to_world", src)
            if hasattr(tw, "matrix"):
                vals.append(tw.matrix)
        return any(dr.grad_enabled(x) for x in vals)

    def _maybe_warn(self) -> None:
        if not self.discontinuity_handled and self._geometry_grad_enabled():
            warnings.warn(
                "rasterizer: camera or geometry parameters have gradients enabled but no "
                "discontinuity method is active, so silhouette contributions are missing "
                "(interior derivatives only). Use Pipeline(discontinuity='edge') for exact "
                "ones, or 'antialias' / 'splat' for approximations.",
                SilhouetteGradientWarning, stacklevel=3)
