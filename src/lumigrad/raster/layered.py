"""The TinyDiffRast course's silhouette methods built on two depth layers and
the :class:`~lumigrad.raster.occlusion.OcclusionEstimator`: options beside
:class:`~lumigrad.raster.discontinuity.RasterizeThenSplat` and
:class:`~lumigrad.raster.discontinuity.AnalyticAntialias` (which decide
occlusion from one layer by depth comparisons and triangle walks).

**Layered splat** (the course's ``TriangleSplatter``, after Cole et al. 2021,
"Differentiable Surface Rendering via Non-Differentiable Sampling"). Both
depth layers are shaded and splatted: the colour ``c`` of layer ``l`` at
sample ``x`` lands on each target ``n`` of its 3 x 3 neighbourhood with weight

    w = N exp(-|p'_l(x) - c_n|^2 / (2 v)),
    N = (1 + a) / sum_{u, v in {-1, 0, 1}} exp(-(u^2 + v^2) / (2 v))

(``v`` = ``kernel_variance`` in samples^2, ``a`` = ``adjustment_factor``,
``p'`` the splat position of :func:`~lumigrad.raster.discontinuity.splat_positions`,
``c_n`` the target's centre), into one of three accumulation layers: by
default ``l + 1``; ``l`` when ``x`` is an occluder and ``n`` occluded; ``2``
when ``x`` is occluded and ``n`` an occluder (both occluders or both occluded:
the default). Each layer ``L`` is normalised where its weight exceeds 1
(``C_L /= W_L``, ``W_L = 1``) and the layers are composited front to back:
``out = C_0 + (1 - W_0)(C_1 + (1 - W_1)(C_2 + (1 - W_2) background))``.
``single_layer_mode`` splats only the first layer, into layer 1.

**Occlusion antialiasing** (the course's ``Antialiaser``, after Laine et al.
2020). With occlusion flags that include the background, every occluder ``x``
looks at its 4 neighbours ``n``; where ``n`` is occluded, the first edge of
``x``'s triangle (in corner order 01, 12, 20) that is closer than 45° to
perpendicular to the segment ``c_x -> c_n`` and crosses it, at ``c_x + t
(c_n - c_x)`` with ``t, u`` in [0, 1], gives the blend factor ``|0.5 - t|``:
stored at ``x`` towards ``n`` when ``t <= 0.5`` (``x`` takes that much of
``n``'s colour), at ``n`` towards ``x`` otherwise. Flagged samples become
``(1 - B) c + sum_d b_d c_d / max(1, B)`` with ``B = sum_d b_d`` (``1 - B``
replaced by 0 when ``B > 1``). ``t`` is attached to the vertices and camera,
so the derivative carries the edge's motion along the pair's axis.

Both are **approximate** silhouette gradients (see
:mod:`lumigrad.raster.discontinuity` for what that means); derivatives of
colours, lights and materials are exact for the image they produce.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import drjit as dr
import numpy as np

from .. import backend as bk
from .buffers import Buffer, as_array3f, channel_count
from .discontinuity import splat_positions
from .occlusion import OcclusionEstimator
from .rasterizer import TriangleRasterizer

_LAYERED_SPLAT_GRADIENTS = {
    "shading (lights, materials, albedo, texture)": "exact derivative of the splatted image",
    "geometry and camera, interior of triangles": "APPROXIMATE (splat-position derivative, "
                                                  "two layers, course variant)",
    "geometry and camera, silhouettes": "APPROXIMATE (splat-position derivative, two layers, "
                                       "course variant)",
}
_OCC_AA_GRADIENTS = {
    "shading (lights, materials, albedo, texture)": "exact derivative of the antialiased image",
    "geometry and camera, interior of triangles": "exact (moving surface points along fixed rays)",
    "geometry and camera, silhouettes": "APPROXIMATE (edge crossing of the occluder's triangle, "
                                       "course variant of Laine et al. 2020)",
}

#: the 4 neighbours (dx, dy); direction d's reverse is d ^ 1
_DIRS = ((0, 1), (0, -1), (-1, 0), (1, 0))


def _zero_like(color: Any) -> Any:
    return type(color)(0.0) if channel_count(color) > 1 else bk.Float(0.0)


def _background(bg: Any, color: Any) -> Any:
    ch = channel_count(color)
    if isinstance(bg, dr.ArrayBase):
        return bg
    if np.ndim(bg) == 0:
        return type(color)(float(bg)) if ch > 1 else bk.Float(float(bg))
    return as_array3f(bg, "background") if ch == 3 else type(color)(*[float(x) for x in bg])


class LayeredSplat:
    """Two-layer rasterize-then-splat of the course; see the module documentation.

    Args:
        color_buffers: the shaded buffers of depth layers 0 and 1 (same channels).
        rasterizer: the rasterizer (``depth_layers=2``).
        kernel_variance: variance of the Gaussian kernel, in samples^2 (0.25).
        adjustment_factor: ``a`` in the kernel's normalisation (0.05).
        single_layer_mode: splat only the first layer (no occlusion handling).
        background: colour behind the three layers (0: the course's).
        perfect_coords: splat positions at the sample centres in value.
        occlusion: an :class:`OcclusionEstimator` to share (one without background
            occlusion is made otherwise).
    """

    GRADIENTS = _LAYERED_SPLAT_GRADIENTS
    approximate = True

    def __init__(self, color_buffers: Sequence[Buffer], rasterizer: TriangleRasterizer,
                 kernel_variance: float = 0.25, adjustment_factor: float = 0.05,
                 single_layer_mode: bool = False, background: Any = 0.0,
                 perfect_coords: bool = False,
                 occlusion: Optional[OcclusionEstimator] = None) -> None:
        if len(color_buffers) != 2:
            raise ValueError(f"LayeredSplat: needs the colour buffers of 2 depth layers, got "
                             f"{len(color_buffers)}")
        if not kernel_variance > 0:
            raise ValueError(f"LayeredSplat: kernel_variance must be > 0, got {kernel_variance}")
        self.color_buffers = list(color_buffers)
        self.rasterizer = rasterizer
        rasterizer.discontinuity_handled = True
        self.occlusion = occlusion or OcclusionEstimator(rasterizer, background_occlusion=False)
        self.kernel_variance = float(kernel_variance)
        ksum = sum(math.exp(-(u * u + v * v) / (2.0 * kernel_variance))
                   for u in (-1, 0, 1) for v in (-1, 0, 1))
        self.normalization = (1.0 + float(adjustment_factor)) / ksum
        self.single_layer_mode = bool(single_layer_mode)
        self.background = background
        self.perfect_coords = bool(perfect_coords)
        c0 = color_buffers[0]
        self.output_buffer = Buffer(c0.name + "_layered_splat", channels=c0.channels, **c0.like)

    def forward(self) -> None:
        r = self.rasterizer
        self.occlusion.forward()
        occluder = self.occlusion.is_occluder_buffer.value
        occluded = self.occlusion.is_occluded_buffer.value
        W, H = r.sample_width, r.sample_height
        layers = (0,) if self.single_layer_mode else (0, 1)
        colors = [self.color_buffers[l].value for l in layers]
        active = [r.triangle_id_buffers[l].value >= 0 for l in layers]
        pos = [splat_positions(r, l, self.perfect_coords) for l in layers]
        idx = dr.arange(bk.UInt32, r.n_samples)
        gx, gy = bk.Int32(idx % W), bk.Int32(idx // W)
        cx, cy = bk.Float(gx) + 0.5, bk.Float(gy) + 0.5
        inv2v = 1.0 / (2.0 * self.kernel_variance)
        zero = _zero_like(colors[0])
        acc_c = [zero, zero, zero]
        acc_w = [bk.Float(0.0)] * 3
        for oy in (-1, 0, 1):
            for ox in (-1, 0, 1):
                # source x = n - o splats onto the target n (this lane)
                sx, sy = gx - ox, gy - oy
                inb = (sx >= 0) & (sx < W) & (sy >= 0) & (sy < H)
                src = bk.UInt32(dr.select(inb, sy * W + sx, 0))
                xo = dr.gather(bk.Bool, occluder, src, inb)
                xd = dr.gather(bk.Bool, occluded, src, inb)
                for li, l in enumerate(layers):
                    ok = inb & dr.gather(bk.Bool, active[li], src, inb)
                    p = dr.gather(bk.Array2f, pos[li], src, ok)
                    w = dr.exp(-(dr.square(p[0] - cx) + dr.square(p[1] - cy)) * inv2v)
                    w = dr.select(ok, w * self.normalization, 0.0)
                    c = dr.gather(type(colors[li]), colors[li], src, ok)
                    if self.single_layer_mode:
                        L = dr.full(bk.UInt32, 1, r.n_samples)
                    else:
                        same = (xd & occluded) | (xo & occluder)
                        L = dr.select(~same & xo & occluded, bk.UInt32(l),
                                      dr.select(~same & xd & occluder, bk.UInt32(2),
                                                bk.UInt32(l + 1)))
                    for k in range(3):
                        wk = dr.select(L == k, w, 0.0)
                        acc_c[k] = acc_c[k] + c * wk
                        acc_w[k] = acc_w[k] + wk
        out = _background(self.background, colors[0])
        for k in (2, 1, 0):  # back to front: out = C_k + (1 - W_k) out
            big = acc_w[k] > 1.0
            c_n = dr.select(big, acc_c[k] / dr.select(big, acc_w[k], 1.0), acc_c[k])
            out = c_n + (1.0 - dr.select(big, 1.0, acc_w[k])) * out
        self.output_buffer.value = out


class OcclusionAntialias:
    """Antialiasing of the course from occlusion flags (with the background); see the
    module documentation.

    Args:
        color_buffer: the shaded buffer of the first depth layer.
        rasterizer: the rasterizer (``depth_layers=2``).
        occlusion: an :class:`OcclusionEstimator` with ``background_occlusion=True``
            to share (one is made otherwise).
    """

    GRADIENTS = _OCC_AA_GRADIENTS
    approximate = True

    def __init__(self, color_buffer: Buffer, rasterizer: TriangleRasterizer,
                 occlusion: Optional[OcclusionEstimator] = None) -> None:
        self.color_buffer = color_buffer
        self.rasterizer = rasterizer
        rasterizer.discontinuity_handled = True
        if occlusion is not None and not occlusion.background_occlusion:
            raise ValueError("OcclusionAntialias: the occlusion estimator must have "
                             "background_occlusion=True")
        self.occlusion = occlusion or OcclusionEstimator(rasterizer, background_occlusion=True)
        self.output_buffer = Buffer(color_buffer.name + "_occ_aa", channels=color_buffer.channels,
                                    **color_buffer.like)

    def blend_factors(self) -> list:
        """Per direction ``d`` of :data:`_DIRS`, the (attached) ``Float`` factor with
        which each sample takes its neighbour's colour."""
        r = self.rasterizer
        n = r.n_samples
        W, H = r.sample_width, r.sample_height
        occluder = self.occlusion.is_occluder_buffer.value
        occluded = self.occlusion.is_occluded_buffer.value
        sel = dr.compress(occluder)
        blend = dr.zeros(bk.Float, 4 * n)
        if dr.width(sel) == 0:
            return [dr.zeros(bk.Float, n) for _ in range(4)]
        ids = dr.gather(bk.Int32, r.triangle_id_buffer.value, sel)
        tri = bk.UInt32(ids)
        hs, _ = r.triangle_homogeneous(tri)
        s = r.spp_side
        front = (dr.detach(hs[0][2]) > 0) & (dr.detach(hs[1][2]) > 0) & (dr.detach(hs[2][2]) > 0)
        vs = [bk.Array2f(h[0] / dr.select(front, h[2], 1.0) * s,
                         h[1] / dr.select(front, h[2], 1.0) * s) for h in hs]
        gx, gy = bk.Int32(sel % W), bk.Int32(sel // W)
        p1 = bk.Array2f(bk.Float(gx) + 0.5, bk.Float(gy) + 0.5)
        cos45 = math.cos(math.pi / 4.0)
        for d, (dx, dy) in enumerate(_DIRS):
            nx, ny = gx + dx, gy + dy
            inb = (nx >= 0) & (nx < W) & (ny >= 0) & (ny < H)
            nidx = bk.UInt32(dr.select(inb, ny * W + nx, 0))
            todo = front & inb & dr.gather(bk.Bool, occluded, nidx, inb)
            rx, ry = float(dx), float(dy)  # p2 - p1
            t_best = bk.Float(0.0)
            found = dr.full(bk.Bool, False, dr.width(sel))
            for a, b in ((0, 1), (1, 2), (2, 0)):
                q = vs[b] - vs[a]
                qd = dr.detach(q)
                qn = dr.norm(qd)
                # the edge is closer than 45 degrees to perpendicular to the pair
                perp = (dr.abs(qd[0] * rx + qd[1] * ry) < cos45 * qn) & (qn > 0)
                # p1 + t r = v_a + u q:  t = (w x q) / (r x q),  u = (w x r) / (r x q)
                w = vs[a] - p1
                den = rx * q[1] - ry * q[0]
                okd = dr.detach(den) != 0
                den = dr.select(okd, den, 1.0)
                t = (w[0] * q[1] - w[1] * q[0]) / den
                u = (w[0] * ry - w[1] * rx) / den
                tb, ub = dr.detach(t), dr.detach(u)
                hit = todo & ~found & perp & okd & (tb >= 0) & (tb <= 1) & (ub >= 0) & (ub <= 1)
                t_best = dr.select(hit, t, t_best)
                found |= hit
            factor = dr.abs(0.5 - t_best)
            near_side = dr.detach(t_best) <= 0.5
            # t <= 0.5: x takes n's colour; else n takes x's (n's reverse direction)
            slot = dr.select(near_side, d * n + sel, (d ^ 1) * n + nidx)
            dr.scatter_add(blend, dr.select(found, factor, 0.0), slot, found)
        return [dr.gather(bk.Float, blend, dr.arange(bk.UInt32, n) + d * n) for d in range(4)]

    def forward(self) -> None:
        r = self.rasterizer
        self.occlusion.forward()
        color = self.color_buffer.value
        T = type(color)
        W, H = r.sample_width, r.sample_height
        bl = self.blend_factors()
        idx = dr.arange(bk.UInt32, r.n_samples)
        gx, gy = bk.Int32(idx % W), bk.Int32(idx // W)
        total = bl[0] + bl[1] + bl[2] + bl[3]
        over = total > 1.0
        norm = dr.select(over, total, 1.0)
        out = color * dr.select(over, 0.0, 1.0 - total)
        for d, (dx, dy) in enumerate(_DIRS):
            nx, ny = gx + dx, gy + dy
            inb = (nx >= 0) & (nx < W) & (ny >= 0) & (ny < H)
            nidx = bk.UInt32(dr.select(inb, ny * W + nx, 0))
            out = out + dr.gather(T, color, nidx, inb) * (bl[d] / norm)
        flagged = self.occlusion.is_occluder_buffer.value | self.occlusion.is_occluded_buffer.value
        self.output_buffer.value = dr.select(flagged, out, color)
