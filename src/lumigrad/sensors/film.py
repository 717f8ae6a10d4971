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
    files; ``pixel_format`` shapes the rendered image as Mitsuba's film does
    (``rgb``; ``luminance``; ``xyz``; with ``a``/``_alpha`` a coverage channel:
    :meth:`develop`); images are float32.

    ``crop_offset_x/y``, ``crop_width/height`` render only a window of the film,
    as Mitsuba does: the image is ``crop_height x crop_width``, the part of the
    whole film's image inside the window (the sensor's field of view still
    describes the whole film; see :meth:`crop_camera`). ``sample_border``
    (Mitsuba: also sample outside the window so that border pixels get the whole
    filter footprint) is what lumigrad always does, since it draws every
    pixel's samples from its whole filter footprint.
    """

    PLUGIN = ("film", "hdrfilm")
    PARAMS = {
        "width": Param("int", 768, min=1, max=1 << 15),
        "height": Param("int", 576, min=1, max=1 << 15),
        "rfilter": Param("object", category="rfilter"),
        "pixel_format": Param("string", "rgb", choices=("rgb", "rgba", "luminance",
                                                        "luminance_alpha", "xyz", "xyza")),
        "component_format": Param("string", "float32",
                                  choices=("float16", "float32", "uint32")),
        "file_format": Param("string", "openexr",
                             choices=("openexr", "exr", "png", "pfm", "rgbe")),
        "sample_border": Param("bool", False, aliases=("high_quality_edges",),
                               doc="(0.6: highQualityEdges)"),
        "attach_log": Param("bool", True, ignored="Mitsuba 0.6 wrote its log into the EXR "
                            "file's metadata; it is not part of the image"),
        "crop_offset_x": Param("int", 0, min=0, doc="left column of the crop window"),
        "crop_offset_y": Param("int", 0, min=0, doc="top row of the crop window"),
        "crop_width": Param("int", None, min=1, doc="crop window width (default: to the "
                            "right edge)"),
        "crop_height": Param("int", None, min=1, doc="crop window height (default: to the "
                             "bottom edge)"),
        "banner": Param("bool", True, ignored="a logo Mitsuba 0.6 stamped on LDR output "
                        "files; lumigrad's images never carry one"),
        "compensate": Param("bool", False, ignored="Kahan-compensated accumulation in "
                            "Mitsuba's film (removed there too); it changes rounding only"),
    }

    def __init__(self, width: int = 768, height: int = 576, rfilter: Any = None,
                 pixel_format: str = "rgb", component_format: str = "float32",
                 file_format: str = "openexr", sample_border: bool = False,
                 crop_offset_x: int = 0, crop_offset_y: int = 0,
                 crop_width: int | None = None, crop_height: int | None = None,
                 id: str | None = None) -> None:
        if int(width) < 1 or int(height) < 1:
            raise ValueError(f"film size must be positive, got {width}x{height}")
        self.id = id
        fw, fh = int(width), int(height)
        ox, oy = int(crop_offset_x), int(crop_offset_y)
        cw = fw - ox if crop_width is None else int(crop_width)
        ch = fh - oy if crop_height is None else int(crop_height)
        if ox < 0 or oy < 0 or cw < 1 or ch < 1 or ox + cw > fw or oy + ch > fh:
            raise ValueError(f"the crop window (offset {ox}, {oy}, size {cw}x{ch}) does not "
                             f"fit in the {fw}x{fh} film")
        #: size of the whole film, whose field of view the sensor's fov describes
        self.full_size = (fw, fh)
        #: (x, y) pixel offset of the rendered window in the whole film
        self.crop_offset = (ox, oy)
        # The rendered image is the crop window (as Mitsuba's film stores it).
        self.width = cw
        self.height = ch
        self.rfilter = rfilter if rfilter is not None else GaussianFilter()
        self.pixel_format = str(pixel_format)

    #: linear sRGB -> CIE XYZ (Rec. 709 primaries, D65 white; IEC 61966-2-1)
    SRGB_TO_XYZ = ((0.412453, 0.357580, 0.180423),
                   (0.212671, 0.715160, 0.072169),
                   (0.019334, 0.119193, 0.950227))

    @property
    def channel_names(self) -> list:
        """Channels of the developed image (see :meth:`develop`)."""
        fmt = self.pixel_format
        names = ["Y"] if fmt.startswith("luminance") else \
            ["X", "Y", "Z"] if fmt.startswith("xyz") else ["R", "G", "B"]
        return names + (["A"] if fmt in ("rgba", "xyza", "luminance_alpha") else [])

    def develop(self, image: Any, alpha: Any = None) -> Any:
        """The image Mitsuba's film returns for ``pixel_format`` from a linear
        RGB radiance image (H, W, 3): ``rgb`` as is; ``luminance`` the Rec. 709
        luminance ``Y``; ``xyz`` CIE XYZ; ``rgba``, ``luminance_alpha``, ``xyza``
        append ``alpha()`` (H, W, 1), the pixel's coverage
        (integrators/coverage.py). Linear in the radiance: derivatives pass."""
        fmt = self.pixel_format
        if fmt == "rgb":
            return image
        h, w = image.shape[0], image.shape[1]
        flat = image.array
        idx = dr.arange(bk.UInt32, h * w) * 3
        r, g, b = (dr.gather(bk.Float, flat, idx + c) for c in range(3))
        if fmt.startswith("luminance"):
            chans = [0.212671 * r + 0.715160 * g + 0.072169 * b]
        elif fmt.startswith("xyz"):
            chans = [m[0] * r + m[1] * g + m[2] * b for m in self.SRGB_TO_XYZ]
        else:
            chans = [r, g, b]
        if fmt in ("rgba", "xyza", "luminance_alpha"):
            chans.append(alpha().array)
        out = dr.zeros(bk.Float, h * w * len(chans))
        k = dr.arange(bk.UInt32, h * w) * len(chans)
        for c, v in enumerate(chans):
            dr.scatter(out, v, k + c)
        return bk.TensorXf(out, shape=(h, w, len(chans)))

    @property
    def cropped(self) -> bool:
        return self.full_size != (self.width, self.height)

    def crop_camera(self, tan_x: float, principal_point: tuple) -> tuple[float, tuple]:
        """A crop window of a projective camera is the camera with a smaller film.

        With the whole film ``W x H``, window offset ``(o_x, o_y)`` and size
        ``(c_x, c_y)``, and lumigrad's film mapping ``x = (1 - 2 (s + pp_x))
        tan_x`` (``s`` in [0, 1] across the film), the window's own mapping has
        ``tan_x' = tan_x c_x / W`` and principal point offsets
        ``pp_x' = (c_x - W + 2 o_x + 2 pp_x W) / (2 c_x)``, and likewise in y
        (``c_y``, ``H``, ``o_y``): returns ``(tan_x', (pp_x', pp_y'))``."""
        fw, fh = self.full_size
        ox, oy = self.crop_offset
        cw, ch = self.width, self.height
        ppx, ppy = principal_point
        return (tan_x * cw / fw,
                ((cw - fw + 2 * ox + 2 * ppx * fw) / (2 * cw),
                 (ch - fh + 2 * oy + 2 * ppy * fh) / (2 * ch)))

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
