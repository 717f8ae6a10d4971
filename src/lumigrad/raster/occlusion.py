"""``OcclusionEstimator``: which samples occlude, or are occluded by, a neighbour.

The stage of the TinyDiffRast course (lesson "rasterize then splat") that the
layered splat and the occlusion-based antialiasing read. It needs the two
depth layers of the rasterizer (``TriangleRasterizer(..., depth_layers=2)``):
``z0`` the nearest and ``z1`` the second-nearest surface at each sample.

For a sample ``x`` whose first layer is covered, and each neighbour ``n`` in
its 3 x 3 neighbourhood (inside the image, ``n != x``), the depths are
matched across layers::

    d00 = |z0(x) - z0(n)|,
    d01 = |z0(x) - z1(n)|   (inf if n has no second layer),
    d10 = |z1(x) - z0(n)|   (inf if x has no second layer).

If ``d00`` is the strictly smallest, ``x`` and ``n`` see the same surface:
nothing. Otherwise, if ``d10 < d01`` the surface behind ``x`` is what ``n``
sees, so ``x`` is an **occluder**; if ``d01 < d10`` the surface ``x`` sees lies
behind ``n``'s, so ``x`` is **occluded**. With ``background_occlusion``, a
covered ``x`` next to an uncovered ``n`` is an occluder and such an ``n`` is
occluded (the course's antialiasing uses this; its splatting does not).

All of it is a gather over the 8 neighbours (no scatter): the flags of ``n``
set "from ``x``" in the course are computed from ``n``'s own side.
Not differentiated (the flags are discrete); depths are read detached.
"""
from __future__ import annotations

import drjit as dr

from .. import backend as bk
from .buffers import Buffer
from .rasterizer import TriangleRasterizer


class OcclusionEstimator:
    """Occluder / occluded flags per sample from the rasterizer's two depth layers.

    Args:
        rasterizer: a :class:`TriangleRasterizer` built with ``depth_layers=2``.
        background_occlusion: covered samples next to uncovered ones are occluders,
            and those uncovered samples are occluded.

    Output buffers (``Bool`` per sample): ``is_occluder_buffer``, ``is_occluded_buffer``.
    """

    def __init__(self, rasterizer: TriangleRasterizer, background_occlusion: bool = False) -> None:
        if not isinstance(rasterizer, TriangleRasterizer):
            raise TypeError(f"OcclusionEstimator: expected a TriangleRasterizer, got "
                            f"{type(rasterizer).__name__}")
        if rasterizer.depth_layers != 2:
            raise ValueError("OcclusionEstimator: the rasterizer must keep two depth layers "
                             "(TriangleRasterizer(..., depth_layers=2))")
        self.rasterizer = rasterizer
        self.background_occlusion = bool(background_occlusion)
        like = rasterizer.triangle_id_buffer.like
        self.is_occluder_buffer = Buffer("is_occluder", channels=1, **like)
        self.is_occluded_buffer = Buffer("is_occluded", channels=1, **like)

    def forward(self) -> None:
        r = self.rasterizer
        W, H = r.sample_width, r.sample_height
        a0 = r.triangle_id_buffers[0].value >= 0
        a1 = r.triangle_id_buffers[1].value >= 0
        z0 = dr.detach(r.depth_buffers[0].value)
        z1 = dr.detach(r.depth_buffers[1].value)
        idx = dr.arange(bk.UInt32, r.n_samples)
        gx, gy = bk.Int32(idx % W), bk.Int32(idx // W)
        inf = float("inf")
        occluder = dr.full(bk.Bool, False, r.n_samples)
        occluded = dr.full(bk.Bool, False, r.n_samples)
        for oy in (-1, 0, 1):
            for ox in (-1, 0, 1):
                if ox == 0 and oy == 0:
                    continue
                nx, ny = gx + ox, gy + oy
                inb = (nx >= 0) & (nx < W) & (ny >= 0) & (ny < H)
                n = bk.UInt32(dr.select(inb, ny * W + nx, 0))
                na0 = dr.gather(bk.Bool, a0, n, inb) & inb
                na1 = dr.gather(bk.Bool, a1, n, inb) & inb
                nz0 = dr.gather(bk.Float, z0, n, inb)
                nz1 = dr.gather(bk.Float, z1, n, inb)
                d00 = dr.abs(z0 - nz0)
                d01 = dr.select(na1, dr.abs(z0 - nz1), inf)
                d10 = dr.select(a1, dr.abs(z1 - nz0), inf)
                both = a0 & na0
                differ = both & ~((d00 < d01) & (d00 < d10))
                occluder |= differ & (d10 < d01)
                occluded |= differ & (d01 < d10)
                if self.background_occlusion:
                    occluder |= a0 & inb & ~na0
                    occluded |= ~a0 & na0
        self.is_occluder_buffer.value = occluder
        self.is_occluded_buffer.value = occluded

    @property
    def output_buffers(self) -> tuple[Buffer, Buffer]:
        return self.is_occluder_buffer, self.is_occluded_buffer
