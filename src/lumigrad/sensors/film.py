"""The ``hdrfilm`` film: image size and reconstruction filter."""
from __future__ import annotations

import math
from typing import Any

import drjit as dr

from .. import backend as bk
from ..scene.schema import Param, register
from .rfilter import GaussianFilter


@register
class HDRFilm:
    """A linear-radiance RGB film of ``width`` × ``height`` pixels.

    Output images are ``TensorXf`` of shape (height, width, 3). The pixel and
    component format options are accepted for compatibility with Mitsuba scene
    files; images are always float32 RGB.
    """

    PLUGIN = ("film", "hdrfilm")
    PARAMS = {
        "width": Param("int", 768, min=1, max=1 << 15),
        "height": Param("int", 576, min=1, max=1 << 15),
        "rfilter": Param("object", category="rfilter"),
        "pixel_format": Param("string", "rgb", choices=("rgb", "rgba", "luminance", "xyz")),
        "component_format": Param("string", "float32",
                                  choices=("float16", "float32", "uint32")),
        "file_format": Param("string", "openexr", choices=("openexr", "exr", "png", "pfm")),
        "sample_border": Param("bool", False),
    }

    def __init__(self, width: int = 768, height: int = 576, rfilter: Any = None,
                 pixel_format: str = "rgb", component_format: str = "float32",
                 file_format: str = "openexr", sample_border: bool = False,
                 id: str | None = None) -> None:
        if int(width) < 1 or int(height) < 1:
            raise ValueError(f"film size must be positive, got {width}x{height}")
        self.id = id
        self.width = int(width)
        self.height = int(height)
        self.rfilter = rfilter if rfilter is not None else GaussianFilter()

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def footprint(self, pos: Any) -> list[tuple[Any, Any, Any]]:
        """The pixels whose reconstruction filter covers film point ``pos``
        (pixels, Array2f): a list of ``(pixel index, weight, valid)``, one entry
        per candidate pixel (``(2K+1)²`` of them, K = ⌈r + ½⌉ − 1 for a filter of
        radius r: 1 for the default box, 9 for a tent, 25 for a gaussian). The
        weight is the filter's normalised density at the pixel centre's offset
        (:meth:`~lumigrad.sensors.rfilter.ReconstructionFilter.weight_dr`), so a
        film-plane integral ``∫ g(s) ds`` becomes pixel values by splatting
        ``weight · g``: the same image the sampled film forms."""
        rf = self.rfilter
        k_max = max(0, math.ceil(rf.radius + 0.5) - 1)
        bx, by = dr.floor(pos[0]), dr.floor(pos[1])
        # (opaque: one compiled kernel serves every film size)
        w, h = dr.opaque(bk.Float, self.width), dr.opaque(bk.Float, self.height)
        w_u = dr.opaque(bk.UInt32, self.width)
        out = []
        for ky in range(-k_max, k_max + 1):
            for kx in range(-k_max, k_max + 1):
                ix, iy = bx + kx, by + ky
                valid = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
                weight = rf.weight_dr(ix + 0.5 - pos[0], iy + 0.5 - pos[1])
                index = bk.UInt32(dr.select(valid, iy, 0.0)) * w_u + \
                    bk.UInt32(dr.select(valid, ix, 0.0))
                out.append((index, dr.select(valid, weight, 0.0), valid & (weight > 0)))
        return out
