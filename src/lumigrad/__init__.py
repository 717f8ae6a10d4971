"""lumigrad: a differentiable renderer for Python, built on Dr.Jit.

>>> import lumigrad as lg, drjit as dr
>>> scene = lg.cornell_box(res=64)                       # doctest: +SKIP
>>> params = lg.traverse(scene)                          # doctest: +SKIP
>>> dr.enable_grad(params['green.reflectance.value'])    # doctest: +SKIP
>>> params.update()                                      # doctest: +SKIP
>>> image = lg.render(scene, params, spp=16)             # doctest: +SKIP
>>> dr.forward(params['green.reflectance.value'])        # doctest: +SKIP
>>> derivative = dr.grad(image)                          # doctest: +SKIP
"""
from __future__ import annotations

from . import backend
from .backend import set_variant, variant, variants

backend.ensure()
backend._bind(backend.variant())  # re-export the array types (lumigrad.Float, ...)

import drjit.opt  # noqa: E402,F401  (so that dr.opt.Adam/SGD are at hand, as in Mitsuba code)

from . import plugins  # noqa: E402,F401  (registers every plugin)
from .ad.derivatives import (GradientReport, block_relative_l1, central_difference_image,  # noqa: E402
                             check_gradient, derivative_image, transform_direction)
from .ad.large_steps import LargeSteps  # noqa: E402
from .ad.losses import l1, l2, mse, rmse  # noqa: E402
from .geometry.mesh import Mesh  # noqa: E402
from .geometry.transform import Transform4f, rotation_matrix, rotation_matrix_rad  # noqa: E402
from . import viz  # noqa: E402,F401  (matplotlib is imported lazily inside)
from .io import read_image, write_image  # noqa: E402
from .render import render, render_forward  # noqa: E402
from .scene.cornell import cornell_box, cornell_box_dict  # noqa: E402
from .scene.loader import SceneLoadError, load_dict, load_file, load_string  # noqa: E402
from .scene.params import SceneParameters, traverse  # noqa: E402
from .scene.scene import Scene  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "set_variant", "variant", "variants", "render", "render_forward", "traverse", "SceneParameters", "Scene",
    "load_file", "load_string", "load_dict", "cornell_box", "cornell_box_dict",
    "SceneLoadError", "Transform4f", "rotation_matrix", "rotation_matrix_rad", "Mesh",
    "derivative_image", "check_gradient", "GradientReport", "block_relative_l1",
    "central_difference_image", "transform_direction", "l1", "l2", "mse", "rmse", "LargeSteps",
    "read_image", "write_image",
    "Float", "UInt32", "Bool", "Color3f", "Point3f", "Vector3f", "Normal3f", "Point2f",
    "Array3f", "Matrix4f", "TensorXf",
]
