"""The ``hdrfilm`` film: image size and reconstruction filter."""
from __future__ import annotations

from typing import Any

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
