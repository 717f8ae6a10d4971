"""lumigrad.raster: a differentiable rasterization pipeline of small stages.

The design of the TinyDiffRast course: each stage is an object that owns its
output buffers and has a ``forward()``, and stages are wired together by
passing buffers — but every buffer holds an attached Dr.Jit array, so the
whole pipeline is differentiable in forward and reverse mode without any
hand-written backward pass.

Stages: :class:`PerspectiveCamera`, :class:`OrthographicCamera`,
:class:`TriangleMesh` (with OBJ vertex/triangle groups), :class:`TriangleRasterizer`
(triangle-id, barycentric and depth buffers, one or two depth layers; watertight
fixed-point coverage with a top-left fill rule; exact near-plane handling;
optional back-face culling), :class:`OcclusionEstimator`,
:class:`RigidTransform` / :class:`RigidMeshTransform` (6-D rotations),
:class:`TriangleAttributeInterpolator`, :class:`NormalsEstimator`,
:class:`DirectionalLightArray`, :class:`BlinnPhongShader`,
:class:`SilhouetteShader`, :class:`TextureSampler`, :class:`Resolve`,
:class:`ImageLoss`; silhouette gradients by :class:`AnalyticAntialias`
(Laine et al. 2020) or :class:`RasterizeThenSplat` (Cole et al. 2021), or the
course's two-layer variants :class:`OcclusionAntialias` and :class:`LayeredSplat`;
:class:`Pipeline` composes them. :func:`jacobian_image` computes derivative
images by forward mode, per-pixel reverse mode and batched reverse mode.
"""
from __future__ import annotations

from .buffers import Buffer
from .camera import Camera, OrthographicCamera, PerspectiveCamera
from .discontinuity import AnalyticAntialias, RasterizeThenSplat, splat_positions
from .jacobian import LaneDependenceError, finite_difference_image, jacobian_image
from .mesh import EXAMPLE_MESHES, TriangleMesh
from .layered import LayeredSplat, OcclusionAntialias
from .occlusion import OcclusionEstimator
from .pipeline import DISCONTINUITY_METHODS, ParamRenderFn, Pipeline, RasterParameters
from .rasterizer import BACKGROUND, SilhouetteGradientWarning, TriangleRasterizer
from .rigid import RigidMeshTransform, RigidTransform, rotation_from_6d
from .stages import (BlinnPhongShader, DirectionalLightArray, ImageLoss, NormalsEstimator,
                     Resolve, SilhouetteShader, TextureSampler, TriangleAttributeInterpolator)

__all__ = [
    "Buffer", "Camera", "PerspectiveCamera", "OrthographicCamera", "TriangleMesh",
    "EXAMPLE_MESHES", "TriangleRasterizer", "BACKGROUND", "SilhouetteGradientWarning",
    "TriangleAttributeInterpolator", "NormalsEstimator", "DirectionalLightArray",
    "BlinnPhongShader", "SilhouetteShader", "TextureSampler", "Resolve", "ImageLoss",
    "AnalyticAntialias", "RasterizeThenSplat", "Pipeline", "RasterParameters",
    "ParamRenderFn", "jacobian_image", "finite_difference_image", "LaneDependenceError",
    "OcclusionEstimator", "LayeredSplat", "OcclusionAntialias", "splat_positions",
    "RigidTransform", "RigidMeshTransform", "rotation_from_6d", "DISCONTINUITY_METHODS",
]
