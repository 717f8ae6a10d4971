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
into the other sample when ``t > 0.5``. When the occluder's exit edge is
not a silhouette (the surface continues into a triangle that is thinner than
a sample), the walk continues into the next triangle along the segment, up
to ``max_walk`` triangles, until it leaves through a silhouette edge (or
reaches the triangle seen at the other sample: then there is no silhouette
between them). Each crossing is used only by the pairs across its dominant
axis (horizontal pairs for edges closer to vertical, and vice versa, as in
nvdiffrast), so it is counted once. The primal image is antialiased along
silhouettes only; its derivative has a term ``(C_O - C_X) dt/dθ`` at each
silhouette crossing: the motion of the edge along the pair's axis. For a
straight edge that is the first-order change of the box-filtered coverage
(a pair across the dominant axis sees a shift ``(v.n)/n_x`` on each of the
``|n_x| ds`` rows the edge element ``ds`` crosses, so the sum is ``∫ v.n ds``);
the tests find the moment of a moving disk within a few percent of the
analytic value. *Approximate*: edges curved within a sample, silhouettes that
slip between samples or triangles smaller than a sample produce no or partial
terms, occluders are chosen by comparing the two samples' depths,
interpenetrations are not handled, and the walk gives up after ``max_walk``
triangles. Gradients of colours, lights and materials are the exact
derivatives of the antialiased image.

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
gradients is the kernel's (about one sample on each side). In the tests the
splat derivative of a moving disk's moment is about 15 % below the analytic
value (the compositing renormalises part of the motion away).
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
        max_walk: how many triangles to follow along a sample pair before giving
            up on finding the silhouette edge (rim triangles of a finely
            tessellated surface are often thinner than a sample, so the edge
            that crosses the pair may belong to a triangle no sample sees).
    """

    GRADIENTS = _AA_GRADIENTS
    approximate = True

    def __init__(self, color_buffer: Buffer, rasterizer: TriangleRasterizer,
                 max_walk: int = 16) -> None:
        self.color_buffer = color_buffer
        self.rasterizer = rasterizer
        self.max_walk = max(1, int(max_walk))
        rasterizer.discontinuity_handled = True
        nb = rasterizer.mesh.edge_neighbors()  # (F, 3): across local edge k (corners k, k+1)
        self._nb_flat = bk.UInt32(np.where(nb >= 0, nb, 0xFFFFFFFF).astype(np.uint32).ravel())
        self.output_buffer = Buffer(color_buffer.name + "_aa", channels=color_buffer.channels,
                                    **color_buffer.like)

    def silhouette_edges(self) -> Any:
        """``Bool`` per (triangle, local edge ``k``) at index ``3 f + k`` (edge from corner
        ``k`` to ``k+1``): a silhouette for the current camera (a boundary edge, or
        the neighbour across it faces the other way)."""
        front = self.rasterizer.front_facing
        F = self.rasterizer.mesh.n_triangles
        j = dr.arange(bk.UInt32, 3 * F)
        nb = self._nb_flat
        has = nb != 0xFFFFFFFF
        nf = dr.gather(bk.Bool, front, nb, has)
        sil = ~has | (nf != dr.gather(bk.Bool, front, j // 3))
        dr.eval(sil)
        return sil

    def forward(self) -> None:
        r = self.rasterizer
        color = self.color_buffer.value
        T = type(color)
        W, H = r.sample_width, r.sample_height
        n = r.n_samples
        sil = self.silhouette_edges()
        tri = r.triangle_ids
        valid = r.coverage
        depth = dr.detach(r.depth_buffer.value)

        # ---- all (sample, direction) pairs at once: lane L = dir * n + sample ----------
        L = dr.arange(bk.UInt32, 4 * n)
        d, smp = L // n, L % n
        one, zero = bk.Int32(1), bk.Int32(0)
        dx = dr.select(d == 0, one, dr.select(d == 1, -one, zero))  # directions +x, -x,
        dy = dr.select(d == 2, one, dr.select(d == 3, -one, zero))  # +y, -y
        gx, gy = bk.Int32(smp % W), bk.Int32(smp // W)
        nx, ny = gx + dx, gy + dy
        inb = (nx >= 0) & (nx < W) & (ny >= 0) & (ny < H)
        nidx = bk.UInt32(dr.select(inb, ny * W + nx, 0))
        tp = dr.gather(bk.UInt32, tri, smp)
        vp = dr.gather(bk.Bool, valid, smp)
        zp = dr.gather(bk.Float, depth, smp)
        tn = dr.gather(bk.UInt32, tri, nidx, inb)
        vn = dr.gather(bk.Bool, valid, nidx, inb)
        zn = dr.gather(bk.Float, depth, nidx, inb)
        differ = inb & ((vp != vn) | (vp & (tp != tn)))
        # the occluder: the nearer of the two samples' surfaces
        p_occ = differ & vp & (~vn | (zp < zn) | ((zp == zn) & (tp < tn)))
        n_occ = differ & ~p_occ & vn
        # only pairs across an id change matter (O(perimeter) of them): compact
        sel = dr.compress(p_occ | n_occ)
        m = dr.width(sel)
        out = color
        if m == 0:
            self.output_buffer.value = out
            return
        po = dr.gather(bk.Bool, p_occ, sel)
        dsel = sel // n
        ssel = sel % n
        tps, tns = dr.gather(bk.UInt32, tp, sel), dr.gather(bk.UInt32, tn, sel)
        vps, vns = dr.gather(bk.Bool, vp, sel), dr.gather(bk.Bool, vn, sel)
        qp = dr.gather(bk.Array3f, r.sample_positions(), ssel)
        step = 1.0 / r.spp_side
        qn = qp + bk.Array3f(bk.Float(dr.gather(bk.Int32, dx, sel)) * step,
                             bk.Float(dr.gather(bk.Int32, dy, sel)) * step, 0.0)
        q_from = dr.select(po, qp, qn)
        q_to = dr.select(po, qn, qp)
        # the triangle seen at the far end (none if background)
        far_tri = dr.select(po, dr.select(vns, tns, 0xFFFFFFFF), dr.select(vps, tps, 0xFFFFFFFF))
        start = dr.select(po, tps, tns)
        fin_tri, fin_k, found, axis_x = self._walk(r, sil, start, q_from, q_to, far_tri)
        # each edge is handled by the pairs across its dominant axis only (mostly
        # vertical edges by horizontal pairs, and vice versa), as in nvdiffrast:
        # then every silhouette crossing is counted once
        found &= dr.select(dsel < 2, axis_x, ~axis_x)

        # ---- the differentiable part: the crossing of the chosen edge ------------------
        t = self._crossing(r, fin_tri, fin_k, found, q_from, q_to)
        tb = dr.detach(t)
        use = found & dr.select(po, tb < 0.5, tb > 0.5)
        w = dr.select(use, dr.select(po, 0.5 - t, t - 0.5), 0.0)
        w_all = dr.zeros(bk.Float, 4 * n)
        dr.scatter_add(w_all, w, sel)
        idx = dr.arange(bk.UInt32, n)
        for k in range(4):
            w_k = dr.gather(bk.Float, w_all, idx + k * n)
            nid = dr.gather(bk.UInt32, nidx, idx + k * n)
            ok = dr.gather(bk.Bool, inb, idx + k * n)
            out = out + w_k * (dr.gather(T, color, nid, ok) - color)
        self.output_buffer.value = out

    def _walk(self, r: TriangleRasterizer, sil: Any, start: Any, q_from: Any, q_to: Any,
              far_tri: Any) -> tuple[Any, Any, Any, Any]:
        """Detached search: from triangle ``start`` along ``q_from -> q_to``, cross
        non-silhouette edges (at most ``max_walk`` triangles) until leaving through a
        silhouette edge. Returns that triangle, the index ``k`` of its edge-function
        row (the edge opposite corner ``k``), whether one was found, and whether the
        edge is closer to vertical than to horizontal on screen. One symbolic loop."""
        E0, E1, E2 = (dr.detach(e) for e in r.triangle_edges)
        det = dr.detach(r.triangle_det)
        nb = self._nb_flat
        q_from, q_to = dr.detach(q_from), dr.detach(q_to)
        m = dr.width(start)
        max_walk = dr.opaque(bk.UInt32, self.max_walk)

        def cond(i, cur, alive, found, fin_tri, fin_k, axis):
            return alive & (i < max_walk)

        def body(i, cur, alive, found, fin_tri, fin_k, axis):
            sgn = dr.select(dr.gather(bk.Float, det, cur, alive) < 0, -1.0, 1.0)
            t_best = dr.full(bk.Float, 2.0, m)
            k_best = dr.zeros(bk.UInt32, m)
            xdom = dr.full(bk.Bool, False, m)
            for k, Ek in enumerate((E0, E1, E2)):
                e = dr.gather(bk.Array3f, Ek, cur, alive)
                a = dr.dot(e, q_from) * sgn
                b = dr.dot(e, q_to) * sgn
                dec = alive & (b < a)
                t_k = a / dr.select(dec, a - b, 1.0)
                better = dec & (t_k < t_best)
                t_best = dr.select(better, t_k, t_best)
                k_best = dr.select(better, k, k_best)
                # the edge's screen-space normal is (e.x, e.y)
                xdom = dr.select(better, dr.abs(e[0]) >= dr.abs(e[1]), xdom)
            exits = alive & (t_best <= 1.0) & (t_best >= -1e-4)
            # E_k vanishes on the side opposite corner k: local edge (k + 1) % 3
            slot = cur * 3 + (k_best + 1) % 3
            is_sil = dr.gather(bk.Bool, sil, slot, exits)
            hit = exits & is_sil
            found = found | hit
            fin_tri = dr.select(hit, cur, fin_tri)
            fin_k = dr.select(hit, k_best, fin_k)
            axis = dr.select(hit, xdom, axis)
            nxt = dr.gather(bk.UInt32, nb, slot, exits)
            # keep walking over the same surface, unless it reaches the far sample's
            # triangle (then the surface is continuous there: no silhouette)
            alive = exits & ~is_sil & (nxt != 0xFFFFFFFF) & (nxt != far_tri)
            cur = dr.select(alive, nxt, cur)
            return i + 1, cur, alive, found, fin_tri, fin_k, axis

        state = (dr.zeros(bk.UInt32, m), bk.UInt32(start), dr.full(bk.Bool, True, m),
                 dr.full(bk.Bool, False, m), dr.zeros(bk.UInt32, m), dr.zeros(bk.UInt32, m),
                 dr.full(bk.Bool, False, m))
        _, _, _, found, fin_tri, fin_k, axis = dr.while_loop(state, cond, body,
                                                             label="aa_silhouette_walk")
        return fin_tri, fin_k, found, axis

    @staticmethod
    def _crossing(r: TriangleRasterizer, tri: Any, k: Any, active: Any, q_from: Any,
                  q_to: Any) -> Any:
        """Attached crossing parameter ``t`` of edge row ``k`` of triangle ``tri`` along
        ``q_from -> q_to``: ``t = e(q_from) / (e(q_from) - e(q_to))``."""
        hs, _ = r.triangle_homogeneous(tri, active)
        E = _cross_rows(hs[0], hs[1], hs[2])
        e = dr.select(k == 0, E[0], dr.select(k == 1, E[1], E[2]))
        a = dr.dot(e, q_from)
        b = dr.dot(e, q_to)
        den = a - b
        ok = active & (dr.detach(den) != 0)
        return dr.select(ok, a / dr.select(ok, den, 1.0), 0.0)


class RasterizeThenSplat:
    """Rasterize-then-splat (Cole et al. 2021); see the module documentation.

    Args:
        color_buffer: the shaded sample buffer.
        rasterizer: the rasterizer that produced the sample grid.
        sigma: standard deviation of the splat kernel, in samples.
        background: colour composited behind the layers (a number or 3-vector).
        depth_tolerance: relative depth difference below which a splat counts as
            the target's own surface.
        perfect_coords: splat positions equal to the sample centres in value
            (see :func:`splat_positions`).
    """

    GRADIENTS = _SPLAT_GRADIENTS
    approximate = True

    def __init__(self, color_buffer: Buffer, rasterizer: TriangleRasterizer, sigma: float = 0.5,
                 background: Any = 0.0, depth_tolerance: float = 0.02,
                 perfect_coords: bool = False) -> None:
        if not sigma > 0:
            raise ValueError(f"RasterizeThenSplat: sigma must be > 0, got {sigma}")
        self.color_buffer = color_buffer
        self.rasterizer = rasterizer
        rasterizer.discontinuity_handled = True
        self.sigma = float(sigma)
        self.background = background
        self.depth_tolerance = float(depth_tolerance)
        self.perfect_coords = bool(perfect_coords)
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
        (see :func:`splat_positions`)."""
        return splat_positions(self.rasterizer, 0, self.perfect_coords)

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


def splat_positions(r: TriangleRasterizer, layer: int = 0, perfect_coords: bool = False) -> Any:
    """Attached sample-grid positions ``p'`` (``Array2f``, sample centres at
    integer + 0.5) of the surface points of depth layer ``layer``: detached
    barycentrics, attached vertices and camera, re-projected. ``p'`` is the
    sample's centre up to rounding; with ``perfect_coords`` its value is exactly
    the centre, ``c + (p' - detach(p'))`` (the course's option of that name, which
    also drops the derivative; here the derivative of ``p'`` is kept)."""
    ids = r.triangle_id_buffers[layer].value
    valid = ids >= 0
    tri = bk.UInt32(dr.select(valid, ids, 0))
    b = dr.detach(r.barycentric_buffers[layer].value)
    hs, _ = r.triangle_homogeneous(tri, valid)
    hp = hs[0] * b[0] + hs[1] * b[1] + hs[2] * b[2]
    wd = dr.select(valid & (dr.detach(hp[2]) != 0), hp[2], 1.0)
    s = r.spp_side
    # raster (pixel) units -> sample-grid units, sample centres at integer + 0.5
    p = bk.Array2f(hp[0] / wd * s, hp[1] / wd * s)
    if perfect_coords:
        idx = dr.arange(bk.UInt32, r.n_samples)
        c = bk.Array2f(bk.Float(idx % r.sample_width) + 0.5, bk.Float(idx // r.sample_width) + 0.5)
        p = c + (p - dr.detach(p))
    return p


def make(method: str, color_buffer: Buffer, rasterizer: TriangleRasterizer,
         background: Any = 0.0) -> Any:
    """Build the discontinuity stage named ``method`` (``'antialias'`` or ``'splat'``)."""
    if method in ("antialias", "aa", "analytic_antialias"):
        return AnalyticAntialias(color_buffer, rasterizer)
    if method in ("splat", "rasterize_then_splat", "rts"):
        return RasterizeThenSplat(color_buffer, rasterizer, background=background)
    raise ValueError(f"unknown discontinuity method {method!r}: use None, 'antialias' "
                     "(Laine et al. 2020) or 'splat' (Cole et al. 2021)")

