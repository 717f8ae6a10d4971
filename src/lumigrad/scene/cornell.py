"""The built-in Cornell box, identical to ``scenes/cbox.xml`` (Mitsuba's
``cornell_box()``): a [-1, 1]³ box of white, green and red diffuse walls, two
white boxes, a small area light under the ceiling, a perspective camera at
z = 3.9 and the path tracer.

Ids: ``white``, ``green``, ``red`` (BSDFs), ``light``, ``floor``, ``ceiling``,
``back``, ``green-wall``, ``red-wall``, ``small-box``, ``large-box`` (shapes),
``sensor`` and ``integrator``.
"""
from __future__ import annotations

from typing import Any

from ..geometry.transform import Transform4f

__all__ = ["cornell_box_dict", "cornell_box"]


def _T() -> Transform4f:
    return Transform4f()


def cornell_box_dict(res: int = 256, spp: int = 64, max_depth: int = 8) -> dict:
    """The Cornell box in Mitsuba's dict form (for :func:`~lumigrad.scene.loader.load_dict`).

    Transforms are written as Mitsuba chains: ``T().translate(t).rotate(a, θ).scale(s)``
    scales first, then rotates, then translates, like the XML's
    ``<scale/><rotate/><translate/>``.
    """
    def rgb(*v: float) -> dict:
        return {"type": "rgb", "value": list(v)}

    white = {"type": "ref", "id": "white"}
    return {
        "type": "scene",
        "integrator": {"type": "path", "max_depth": max_depth},
        "sensor": {
            "type": "perspective",
            "fov": 39.3077,
            "fov_axis": "smaller",
            "near_clip": 0.001,
            "far_clip": 100.0,
            "to_world": _T().look_at(origin=[0, 0, 3.9], target=[0, 0, 0], up=[0, 1, 0]),
            "sampler": {"type": "independent", "sample_count": spp},
            "film": {"type": "hdrfilm", "width": res, "height": res,
                     "rfilter": {"type": "gaussian"}},
        },
        "white": {"type": "diffuse", "reflectance": rgb(0.885809, 0.698859, 0.666422)},
        "green": {"type": "diffuse", "reflectance": rgb(0.105421, 0.37798, 0.076425)},
        "red": {"type": "diffuse", "reflectance": rgb(0.570068, 0.0430135, 0.0443706)},
        "light": {
            "type": "rectangle",
            "to_world": _T().translate([0, 0.99, 0.01]).rotate([1, 0, 0], 90)
                            .scale([0.23, 0.19, 0.19]),
            "bsdf": white,
            "emitter": {"type": "area", "radiance": rgb(18.387, 13.9873, 6.75357)},
        },
        "floor": {"type": "rectangle",
                  "to_world": _T().translate([0, -1, 0]).rotate([1, 0, 0], -90),
                  "bsdf": white},
        "ceiling": {"type": "rectangle",
                    "to_world": _T().translate([0, 1, 0]).rotate([1, 0, 0], 90),
                    "bsdf": white},
        "back": {"type": "rectangle", "to_world": _T().translate([0, 0, -1]), "bsdf": white},
        "green-wall": {"type": "rectangle",
                       "to_world": _T().translate([1, 0, 0]).rotate([0, 1, 0], -90),
                       "bsdf": {"type": "ref", "id": "green"}},
        "red-wall": {"type": "rectangle",
                     "to_world": _T().translate([-1, 0, 0]).rotate([0, 1, 0], 90),
                     "bsdf": {"type": "ref", "id": "red"}},
        "small-box": {"type": "cube",
                      "to_world": _T().translate([0.335, -0.7, 0.38]).rotate([0, 1, 0], -17)
                                      .scale(0.3),
                      "bsdf": white},
        "large-box": {"type": "cube",
                      "to_world": _T().translate([-0.33, -0.4, -0.28]).rotate([0, 1, 0], 18.25)
                                      .scale([0.3, 0.61, 0.3]),
                      "bsdf": white},
    }


def cornell_box(**kw: Any) -> Any:
    """``load_dict(cornell_box_dict(**kw))``: the Cornell box as a Scene."""
    from .loader import load_dict

    return load_dict(cornell_box_dict(**kw))
