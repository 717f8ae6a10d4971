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
   time, not memory.

2. **Geometry (differentiated).** From the chosen triangle id and the fixed
   sample position, the barycentrics and the depth are recomputed from the
   *attached* vertex positions and camera, so derivatives with respect to
   vertices and camera flow through every covered sample. This is the
   rasterization analogue of the ray tracer's differentiable re-intersection:
   the surface point slides along the fixed pixel ray. (Silhouettes, where the
   triangle id itself changes, are not differentiable this way: see
   :mod:`lumigrad.raster.discontinuity`.)

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

    Output buffers (image layout ``(H*n, W*n, C)``):
        ``triangle_id_buffer`` (``Int32``; ``BACKGROUND = -1`` where uncovered),
        ``barycentric_buffer`` (3 channels, 0 on the background),
        ``depth_buffer`` (camera-space depth along the view axis, 0 on the background).
    """

    def __init__(self, resolution: Any, camera: Camera, mesh: TriangleMesh,
                 samples_per_pixel: int = 1, cull_backfaces: bool = False,
                 chunk: int = 1 << 25, subpixel_bits: Any = None) -> None:
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
        # ``subpixel_bits`` (the course's fixed-point precision) is accepted for
        # compatibility; coverage here is evaluated in floating point.
        self.subpixel_bits = subpixel_bits
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
        W, H, s = self.width, self.height, self.spp_side
        Ws, Hs = self.sample_width, self.sample_height

        # ---- 1. visibility on detached values ------------------------------------
        pos = dr.detach(mesh.vertices)
        pc = dr.detach(cam.to_camera(pos))
        u, v, w = cam.homogeneous(pc, W, H)
        hv = bk.Array3f(dr.detach(u), dr.detach(v), dr.detach(w))
        F = mesh.n_triangles
        tri_all = dr.arange(bk.UInt32, F)
        h, z = [], []
        for k in range(3):
            vid = dr.gather(bk.UInt32, mesh.triangle_vertex_ids, tri_all * 3 + k)
            h.append(dr.gather(bk.Array3f, hv, vid))
            z.append(dr.gather(bk.Float, pc[2], vid))
        E = _cross_rows(h[0], h[1], h[2])
        det = dr.dot(h[0], E[0])
        front = det * cam.handedness < 0
        self.front_facing = front
        #: detached per-triangle edge-function rows and determinant (for later stages)
        self.triangle_edges = E
        self.triangle_det = det

        # bounding box of the part of the triangle in front of the near plane
        inf = float("inf")
        xmin = dr.full(bk.Float, inf, F)
        ymin = dr.full(bk.Float, inf, F)
        xmax = dr.full(bk.Float, -inf, F)
        ymax = dr.full(bk.Float, -inf, F)
        any_front = dr.full(bk.Bool, False, F)
        any_before_far = dr.full(bk.Bool, False, F)

        def include(hp: Any, ok: Any) -> None:
            nonlocal xmin, xmax, ymin, ymax
            wd = dr.select(ok, hp[2], 1.0)
            X, Y = hp[0] / wd, hp[1] / wd
            xmin = dr.select(ok & (X < xmin), X, xmin)
            xmax = dr.select(ok & (X > xmax), X, xmax)
            ymin = dr.select(ok & (Y < ymin), Y, ymin)
            ymax = dr.select(ok & (Y > ymax), Y, ymax)

        for k in range(3):
            ok = z[k] >= near
            any_front |= ok
            any_before_far |= z[k] <= far
            include(h[k], ok)
            k1 = (k + 1) % 3
            dz = z[k1] - z[k]
            crosses = (z[k] - near) * (z[k1] - near) < 0
            t = (near - z[k]) / dr.select(crosses, dz, 1.0)
            include(h[k] + (h[k1] - h[k]) * t, crosses)

        keep = any_front & any_before_far & (det != 0) & dr.isfinite(det)
        if self.cull_backfaces:
            keep &= front
        # (xmin etc. are in pixels; the sample grid is s times finer)
        lo_x = bk.Int32(dr.ceil(fclip(xmin * s - 0.5, -2.0, Ws + 2.0)))
        hi_x = bk.Int32(dr.floor(fclip(xmax * s - 0.5, -2.0, Ws + 2.0)))
        lo_y = bk.Int32(dr.ceil(fclip(ymin * s - 0.5, -2.0, Hs + 2.0)))
        hi_y = bk.Int32(dr.floor(fclip(ymax * s - 0.5, -2.0, Hs + 2.0)))
        lo_x = dr.select(lo_x < 0, 0, lo_x)
        lo_y = dr.select(lo_y < 0, 0, lo_y)
        hi_x = dr.select(hi_x > Ws - 1, Ws - 1, hi_x)
        hi_y = dr.select(hi_y > Hs - 1, Hs - 1, hi_y)
        bw = hi_x - lo_x + 1
        bh = hi_y - lo_y + 1
        ok_box = keep & (bw > 0) & (bh > 0)
        bw = dr.select(ok_box, bw, 0)
        count = dr.select(ok_box, bw * bh, 0)
        x0 = bk.UInt32(lo_x)
        y0 = bk.UInt32(lo_y)
        dr.eval(count, x0, y0, bw, E, z)

        counts = np.array(count, dtype=np.int64)
        csum = np.concatenate([[0], np.cumsum(counts)])
        total = int(csum[-1])
        self.stats = {"candidate_pairs": total, "launches": 0}

        keys = dr.full(bk.UInt64, 0xFFFFFFFFFFFFFFFF, self.n_samples)
        bwu = bk.UInt32(bw)
        # consecutive ranges of at most ``chunk`` pairs (a range may start or end
        # inside one triangle's box, so even a full-screen triangle is split)
        for p0 in range(0, total, self.chunk):
            p1 = min(p0 + self.chunk, total)
            self._raster_chunk(keys, p0, p1, csum, counts, bwu, x0, y0, E, z, near, far)
            self.stats["launches"] += 1

        # ---- 2. differentiable recomputation from the triangle ids ---------------
        bg = keys == 0xFFFFFFFFFFFFFFFF
        tri = bk.UInt32(keys & 0xFFFFFFFF)
        valid = ~bg
        tri = dr.select(valid, tri, 0)
        dr.eval(tri, valid)
        self._tri = tri
        self._valid = valid
        self.triangle_id_buffer.value = dr.select(valid, bk.Int32(tri), BACKGROUND)
        b, depth = self.interpolate_geometry(tri, valid)
        self.barycentric_buffer.value = b
        self.depth_buffer.value = depth

    def _raster_chunk(self, keys: Any, p0: int, p1: int, csum: np.ndarray, counts: np.ndarray,
                      bw: Any, x0: Any, y0: Any, E: tuple, z: list, near: float,
                      far: float) -> None:
        """Test the candidate pairs ``p0 <= k < p1`` of the global enumeration and keep
        the nearest triangle per sample in ``keys``."""
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
        gx = dr.gather(bk.UInt32, x0, t) + r % wbox
        gy = dr.gather(bk.UInt32, y0, t) + r // wbox
        s = self.spp_side
        q = bk.Array3f((bk.Float(gx) + 0.5) / s, (bk.Float(gy) + 0.5) / s, 1.0)
        e = [dr.dot(dr.gather(bk.Array3f, E[i], t), q) for i in range(3)]
        ssum = e[0] + e[1] + e[2]
        inside = (e[0] * ssum >= 0) & (e[1] * ssum >= 0) & (e[2] * ssum >= 0) & (ssum != 0)
        rs = 1.0 / dr.select(inside, ssum, 1.0)
        depth = (e[0] * dr.gather(bk.Float, z[0], t) + e[1] * dr.gather(bk.Float, z[1], t)
                 + e[2] * dr.gather(bk.Float, z[2], t)) * rs
        ok = inside & (depth >= near) & (depth <= far)
        depth = dr.select(depth > 0, depth, 0.0)
        key = (bk.UInt64(dr.reinterpret_array(bk.UInt32, depth)) << 32) | bk.UInt64(t)
        dr.scatter_reduce(dr.ReduceOp.Min, keys, key, gy * self.sample_width + gx, ok)
        dr.eval(keys)

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
                "(interior derivatives only). Use Pipeline(discontinuity='antialias' or "
                "'splat') for approximate silhouette gradients.",
                SilhouetteGradientWarning, stacklevel=3)
