"""Silhouette (visibility) gradients for the rasterizer: two methods of the course.

A rasterized image is a step function of the camera and the geometry at
silhouettes: the triangle id of a sample jumps as an edge sweeps over it. The
rasterizer's barycentrics and depths are differentiable *inside* triangles, so
without help the derivative of the image misses every silhouette term (and the
rasterizer warns with :class:`~lumigrad.raster.rasterizer.SilhouetteGradientWarning`).
Both methods below turn the image into a function that varies continuously
with the silhouette's position; neither is the exact derivative of the
point-sampled image (which is a sum of Dirac deltas), so **their geometry and
camera gradients are approximate** and are labelled so
(:attr:`AnalyticAntialias.GRADIENTS`, :attr:`RasterizeThenSplat.GRADIENTS`,
:meth:`~lumigrad.raster.pipeline.Pipeline.gradient_status`).

**Analytic antialiasing** (Laine et al. 2020, "Modular Primitives for
High-Performance Differentiable Rendering", the ``antialias`` op of
nvdiffrast). For every pair of horizontally or vertically adjacent samples
``P``, ``N`` with different triangle ids, the nearer one's triangle ``O`` (the
occluder) is followed from its sample towards the other until it leaves
``O``: the exit parameter ``t`` in [0, 1] is where its edge ``k`` crosses the
segment, ``t = ê_k(q_O) / (ê_k(q_O) - ê_k(q_X))`` with ``ê_k`` the triangle's
homogeneous edge functions (attached to vertices and camera). If edge ``k`` is
a *silhouette* edge (a boundary edge or one whose neighbour faces the other
way), the sample whose half of the segment contains the crossing is blended
with the other's colour by the covered fraction: ``0.5 - t`` of the other
colour into ``O``'s sample when ``t < 0.5``, ``t - 0.5`` of ``O``'s colour
into the other sample when ``t > 0.5``. The primal image is antialiased along
silhouettes only; its derivative has a term ``(C_O - C_X) dt/dθ`` at each
silhouette crossing: the motion of the edge along the pixel axis, which is
the first-order change of the box-filtered coverage for a locally straight
edge. *Approximate*: coverage is measured along one axis per pair (edges at
45° are under-weighted relative to true area coverage), only silhouette
edges between two samples of *different* triangles are seen (an edge that
slips between samples, or a triangle smaller than a sample, produces
nothing), occluders are chosen by comparing the two samples' depths, and
interpenetrations are not handled. Gradients of colours/lights/materials are
the exact derivatives of the antialiased image.

**Rasterize-then-splat** (Cole et al. 2021, "Differentiable Surface Rendering
via Non-Differentiable Sampling"). Every covered sample ``p`` is shaded at its
surface point, whose barycentrics are *detached* but whose position is
attached to the geometry and camera, then re-projected: ``p'`` equals the
sample's centre in value and moves with the surface in derivative. Each
sample's colour is splatted to its 3 x 3 neighbourhood with a Gaussian kernel
(``sigma = 0.5`` sample) normalised over that neighbourhood, ``w(q) =
G(q - p') / sum_k G(k - p')``. At each target ``q`` the splats are sorted
into three layers by depth relative to ``q``'s own surface (in front / same
surface / behind, relative tolerance ``depth_tolerance``; everything is "in
front" of the background), each layer is normalised, ``C_L = sum w c /
max(1, sum w)``, ``a_L = min(1, sum w)``, and the layers are composited front
to back over the background: ``out = C_f + (1 - a_f)(C_s + (1 - a_s)(C_b +
(1 - a_b) bg))``. The primal image is slightly blurred (the kernel's width);
the derivative with respect to geometry and camera comes from ``dp'/dθ``
through the kernel weights, at silhouettes (where the background receives
partial weight) and in the interior. *Approximate*: it is the exact
derivative of the splatted image with the sampling held fixed, which differs
from the derivative of the splatted image as a whole (re-rasterization
changes which surface points are sampled); the support of silhouette
gradients is the kernel's (about one sample on each side).
"""
from __future__ import annotations

from typing import Any

import drjit as dr
import numpy as np

from .. import backend as bk
from .buffers import Buffer, as_array3f, channel_count
from .rasterizer import TriangleRasterizer, _cross_rows, fmin

#: what each method's gradients are (also reported by Pipeline.gradient_status)
_AA_GRADIENTS = {
    "shading (lights, materials, albedo, texture)": "exact derivative of the antialiased image",
    "geometry and camera, interior of triangles": "exact (moving surface points along fixed rays)",
    "geometry and camera, silhouettes": "APPROXIMATE (edge crossing along the pixel axis, "
                                       "Laine et al. 2020)",
}
_SPLAT_GRADIENTS = {
    "shading (lights, materials, albedo, texture)": "exact derivative of the splatted image",
    "geometry and camera, interior of triangles": "APPROXIMATE (splat-position derivative, "
                                                  "Cole et al. 2021)",
    "geometry and camera, silhouettes": "APPROXIMATE (splat-position derivative, "
                                       "Cole et al. 2021)",
}

_OFFSETS4 = ((1, 0), (-1, 0), (0, 1), (0, -1))


def _neighbor(gx: Any, gy: Any, dx: int, dy: int, W: int, H: int) -> tuple[Any, Any]:
    """Index and in-bounds mask of the sample at offset (dx, dy)."""
    nx = bk.Int32(gx) + dx
    ny = bk.Int32(gy) + dy
    inb = (nx >= 0) & (nx < W) & (ny >= 0) & (ny < H)
    idx = bk.UInt32(dr.select(inb, ny * W + nx, 0))
    return idx, inb


class AnalyticAntialias:
    """Analytic antialiasing of silhouette samples (Laine et al. 2020); see the
    module documentation for the method and which gradients are approximate.

    Args:
        color_buffer: the shaded sample buffer (any channel count up to 4).
        rasterizer: the rasterizer that produced the sample grid.
    """

    GRADIENTS = _AA_GRADIENTS
    approximate = True

    def __init__(self, color_buffer: Buffer, rasterizer: TriangleRasterizer) -> None:
        self.color_buffer = color_buffer
        self.rasterizer = rasterizer
        rasterizer.discontinuity_handled = True
        nb = rasterizer.mesh.edge_neighbors()
        self._nb = [bk.UInt32(np.maximum(nb[:, k], 0).astype(np.uint32)) for k in range(3)]
        self._has_nb = [bk.Bool(nb[:, k] >= 0) for k in range(3)]
        self.output_buffer = Buffer(color_buffer.name + "_aa", channels=color_buffer.channels,
                                    **color_buffer.like)

    def silhouette_edges(self) -> list:
        """Per triangle and local edge ``k`` (corners k -> k+1): ``Bool``, the edge is a
        silhouette for the current camera (boundary, or neighbour faces the other way)."""
        front = self.rasterizer.front_facing
        out = []
        for k in range(3):
            nf = dr.gather(bk.Bool, front, self._nb[k])
            out.append(~self._has_nb[k] | (nf != front))
        dr.eval(out)
        return out

    def forward(self) -> None:
        r = self.rasterizer
        color = self.color_buffer.value
        T = type(color)
        W, H = r.sample_width, r.sample_height
        sil = self.silhouette_edges()
        tri = r.triangle_ids
        valid = r.coverage
        depth = dr.detach(r.depth_buffer.value)
        q = r.sample_positions()
        idx = dr.arange(bk.UInt32, r.n_samples)
        gx, gy = idx % W, idx // W
        out = color
        for dx, dy in _OFFSETS4:
            nidx, inb = _neighbor(gx, gy, dx, dy, W, H)
            tri_n = dr.gather(bk.UInt32, tri, nidx, inb)
            valid_n = dr.gather(bk.Bool, valid, nidx, inb)
            depth_n = dr.gather(bk.Float, depth, nidx, inb)
            differ = inb & ((valid != valid_n) | (valid & (tri != tri_n)))
            p_occ = differ & valid & (~valid_n | (depth < depth_n) |
                                      ((depth == depth_n) & (tri < tri_n)))
            n_occ = differ & ~p_occ & valid_n
            act = p_occ | n_occ
            tri_o = dr.select(p_occ, tri, tri_n)
            q_n = q + bk.Array3f(dx / r.spp_side, dy / r.spp_side, 0.0)
            q_from = dr.select(p_occ, q, q_n)
            q_to = dr.select(p_occ, q_n, q)
            hs, _ = r.triangle_homogeneous(tri_o, act)
            E = _cross_rows(hs[0], hs[1], hs[2])
            # exit of the occluder along q_from -> q_to: first edge whose function
            # turns negative (signs relative to the triangle's orientation)
            sgn = dr.select(dr.detach(dr.dot(hs[0], E[0])) < 0, -1.0, 1.0)
            t_best = dr.full(bk.Float, 2.0, r.n_samples)
            sil_best = dr.full(bk.Bool, False, r.n_samples)
            for k in range(3):
                a = dr.dot(E[k], q_from) * sgn
                b = dr.dot(E[k], q_to) * sgn
                crossing = act & (b < 0) & (dr.detach(a) >= 0)
                t_k = a / dr.select(crossing, a - b, 1.0)
                better = crossing & (dr.detach(t_k) < dr.detach(t_best))
                t_best = dr.select(better, t_k, t_best)
                # edge k of the rasterizer's convention (E_k opposite corner k) is the
                # side from corner k+1 to k+2, i.e. local edge (k + 1) % 3
                sil_k = dr.gather(bk.Bool, sil[(k + 1) % 3], tri_o, act)
                sil_best = dr.select(better, sil_k, sil_best)
            found = act & sil_best & (dr.detach(t_best) <= 1.0)
            tb = dr.detach(t_best)
            w = dr.select(p_occ, 0.5 - t_best, t_best - 0.5)
            use = found & dr.select(p_occ, tb < 0.5, tb > 0.5)
            c_n = dr.gather(T, color, nidx, inb)
            out = out + dr.select(use, w, 0.0) * (c_n - color)
        self.output_buffer.value = out


class RasterizeThenSplat:
    """Rasterize-then-splat (Cole et al. 2021); see the module documentation.

    Args:
        color_buffer: the shaded sample buffer.
        rasterizer: the rasterizer that produced the sample grid.
        sigma: standard deviation of the splat kernel, in samples.
        background: colour composited behind the layers (a number or 3-vector).
        depth_tolerance: relative depth difference below which a splat counts as
            the target's own surface.
    """

    GRADIENTS = _SPLAT_GRADIENTS
    approximate = True

    def __init__(self, color_buffer: Buffer, rasterizer: TriangleRasterizer, sigma: float = 0.5,
                 background: Any = 0.0, depth_tolerance: float = 0.02) -> None:
        if not sigma > 0:
            raise ValueError(f"RasterizeThenSplat: sigma must be > 0, got {sigma}")
        self.color_buffer = color_buffer
        self.rasterizer = rasterizer
        rasterizer.discontinuity_handled = True
        self.sigma = float(sigma)
        self.background = background
        self.depth_tolerance = float(depth_tolerance)
        self.output_buffer = Buffer(color_buffer.name + "_splat", channels=color_buffer.channels,
                                    **color_buffer.like)

    def _background(self, T: type, ch: int) -> Any:
        bg = self.background
        if isinstance(bg, dr.ArrayBase):
            return bg
        if np.ndim(bg) == 0:
            return T(float(bg)) if ch > 1 else bk.Float(float(bg))
        return as_array3f(bg, "splat background") if ch == 3 else T(*[float(x) for x in bg])

    def splat_positions(self) -> Any:
        """Attached sample-grid positions ``p'`` of every covered sample's surface point
        (detached barycentrics, attached vertices and camera)."""
        r = self.rasterizer
        tri, valid = r.triangle_ids, r.coverage
        b = dr.detach(r.barycentric_buffer.value)
        hs, _ = r.triangle_homogeneous(tri, valid)
        hp = hs[0] * b[0] + hs[1] * b[1] + hs[2] * b[2]
        wd = dr.select(valid & (dr.detach(hp[2]) != 0), hp[2], 1.0)
        s = r.spp_side
        # raster (pixel) units -> sample-grid units, sample centres at integer + 0.5
        return bk.Array2f(hp[0] / wd * s, hp[1] / wd * s)

    def forward(self) -> None:
        r = self.rasterizer
        color = self.color_buffer.value
        T = type(color)
        ch = channel_count(color)
        W, H = r.sample_width, r.sample_height
        valid = r.coverage
        depth = dr.detach(r.depth_buffer.value)
        pp = self.splat_positions()
        idx = dr.arange(bk.UInt32, r.n_samples)
        gx, gy = idx % W, idx // W
        cx, cy = bk.Float(gx) + 0.5, bk.Float(gy) + 0.5
        inv2s2 = 1.0 / (2.0 * self.sigma * self.sigma)
        # per source: normaliser over its 3 x 3 target neighbourhood
        norm = bk.Float(0.0)
        for oy in (-1, 0, 1):
            for ox in (-1, 0, 1):
                norm = norm + dr.exp(-(dr.square(cx + ox - pp[0]) + dr.square(cy + oy - pp[1]))
                                     * inv2s2)
        norm = dr.select(valid, norm, 1.0)
        zero = T(0.0) if ch > 1 else bk.Float(0.0)
        acc_c = [zero, zero, zero]  # front, same, behind
        acc_a = [bk.Float(0.0)] * 3
        tol = self.depth_tolerance
        for oy in (-1, 0, 1):
            for ox in (-1, 0, 1):
                # source p = q - o splats onto q with weight G(q - p') / norm_p
                sidx, inb = _neighbor(gx, gy, -ox, -oy, W, H)
                vs = dr.gather(bk.Bool, valid, sidx, inb) & inb
                ppx = dr.gather(bk.Float, pp[0], sidx, vs)
                ppy = dr.gather(bk.Float, pp[1], sidx, vs)
                nrm = dr.gather(bk.Float, norm, sidx, vs)
                g = dr.exp(-(dr.square(cx - ppx) + dr.square(cy - ppy)) * inv2s2)
                w = dr.select(vs, g / dr.select(vs, nrm, 1.0), 0.0)
                c = dr.gather(T, color, sidx, vs)
                zs = dr.gather(bk.Float, depth, sidx, vs)
                same = valid & (dr.abs(zs - depth) <= tol * depth)
                front = vs & (~valid | (zs < depth * (1.0 - tol)))
                behind = vs & ~same & ~front
                for L, m in enumerate((front, same & vs, behind)):
                    wm = dr.select(m, w, 0.0)
                    acc_c[L] = acc_c[L] + c * wm
                    acc_a[L] = acc_a[L] + wm
        bg = self._background(T, ch)
        out = bg
        for L in (2, 1, 0):  # back to front: out = C_L + (1 - a_L) out
            a = acc_a[L]
            big = a > 1.0
            c_n = acc_c[L] / dr.select(big, a, 1.0)
            out = c_n + (1.0 - fmin(a, 1.0)) * out
        self.output_buffer.value = out


def make(method: str, color_buffer: Buffer, rasterizer: TriangleRasterizer,
         background: Any = 0.0) -> Any:
    """Build the discontinuity stage named ``method`` (``'antialias'`` or ``'splat'``)."""
    if method in ("antialias", "aa", "analytic_antialias"):
        return AnalyticAntialias(color_buffer, rasterizer)
    if method in ("splat", "rasterize_then_splat", "rts"):
        return RasterizeThenSplat(color_buffer, rasterizer, background=background)
    raise ValueError(f"unknown discontinuity method {method!r}: use None, 'antialias' "
                     "(Laine et al. 2020) or 'splat' (Cole et al. 2021)")

