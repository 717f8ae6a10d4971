"""``Pipeline``: the course's rasterization pipeline, composed from the stages.

Order (as in the course's lesson): camera -> rasterizer -> world-position
interpolator -> normals estimator -> normals interpolator -> albedo (vertex
colours or a texture) -> lights -> Blinn-Phong (or silhouette) shader ->
optional discontinuity stage (``'antialias'`` / ``'splat'``) -> resolve of the
sample grid to pixels. ``forward()`` runs them and returns the image, a
``TensorXf`` (height, width, channels); there is no ``backward()`` to write:
``dr.backward(loss)`` / ``dr.forward_to(image)`` differentiate it.

:meth:`Pipeline.parameters` exposes the differentiable inputs under
Mitsuba-like keys (``'light.0.direction'``, ``'lights.colors'``,
``'vertex_albedos'``, ``'camera.position'``, ``'mesh.vertex_positions'``, ...)
with ``update(optimizer)`` so that a ``drjit.opt`` optimizer drives them the
way ``params.update(opt)`` does in Mitsuba.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Optional

import drjit as dr
import numpy as np

from .. import backend as bk
from . import discontinuity as disc
from .buffers import Buffer
from .camera import Camera, OrthographicCamera, PerspectiveCamera
from .mesh import TriangleMesh
from .rasterizer import TriangleRasterizer, parse_resolution
from .layered import LayeredSplat, OcclusionAntialias
from .occlusion import OcclusionEstimator
from .rigid import RigidMeshTransform
from .stages import (BlinnPhongShader, DirectionalLightArray, NormalsEstimator, Resolve,
                     SilhouetteShader, TextureSampler, TriangleAttributeInterpolator)

#: the ``discontinuity`` options of :class:`Pipeline`
DISCONTINUITY_METHODS = (None, "antialias", "splat", "layered_splat", "occlusion_antialias",
                         "edge")


class RasterParameters:
    """Differentiable inputs of a pipeline by key (a small ``SceneParameters``).

    ``params[key]`` reads the current value, ``params[key] = v`` sets it,
    ``params.update(opt)`` copies every key the optimizer holds."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[Callable[[], Any], Callable[[Any], None]]] = {}

    def add(self, key: str, getter: Callable[[], Any], setter: Callable[[Any], None]) -> None:
        self._items[key] = (getter, setter)

    def __getitem__(self, key: str) -> Any:
        return self._lookup(key)[0]()

    def __setitem__(self, key: str, value: Any) -> None:
        self._lookup(key)[1](value)

    def _lookup(self, key: str) -> tuple:
        if key not in self._items:
            raise KeyError(f"unknown pipeline parameter {key!r}; known: {', '.join(self._items)}")
        return self._items[key]

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def keys(self) -> list[str]:
        return list(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def update(self, values: Any = None) -> None:
        """Set every key of ``values`` (a dict or a ``drjit.opt`` optimizer) that names
        a parameter here; other keys are ignored, as in Mitsuba."""
        if values is None:
            return
        for k in list(values.keys()):
            if k in self._items:
                self._items[k][1](values[k])

    def __repr__(self) -> str:
        return "RasterParameters(" + ", ".join(self._items) + ")"


class Pipeline:
    """The rasterization pipeline of the course, differentiable end to end.

    Args:
        resolution: ``(width, height)`` or one int.
        mesh: a :class:`TriangleMesh` or the name of an example mesh
            (``'icosphere'``, ``'uv_sphere'``, ``'torus'``, ``'cube'``, ``'plane'``);
            ``mesh_kwargs`` go to its generator.
        camera: a :class:`PerspectiveCamera` / :class:`OrthographicCamera`
            (default: perspective at (0, 0, 3) looking at the origin, 45°).
        n_lights: number of directional lights (white, travelling along (1, -1, -1)
            by default, as in the course).
        samples_per_pixel: perfect square; samples are box-filtered to pixels.
        cull_backfaces: see :class:`TriangleRasterizer`.
        discontinuity: ``None`` (interior derivatives only), ``'antialias'``
            (Laine et al. 2020) or ``'splat'`` (Cole et al. 2021), see
            :mod:`lumigrad.raster.discontinuity` (approximations); or ``'edge'``:
            the exact boundary term of the box-filtered image by edge sampling,
            with the path tracer's primary-edge estimator
            (:mod:`lumigrad.raster.edge_sampling`; perspective and orthographic
            cameras).
        edge_samples: with ``discontinuity='edge'``, edge samples per pixel of
            projected edge length (default: ``max(128, samples_per_pixel)``).
        shading: ``'blinn_phong'`` or ``'silhouette'``.
        vertex_albedos: (N, 3) per-vertex albedo (default 0.8 grey), ignored when
            ``texture`` is given.
        texture: (h, w, 3) albedo texture looked up at the mesh's uvs.
        ambient_constant, diffuse_constant, specular_constant, shine_coefficient:
            Blinn-Phong constants (the course's defaults 0.1, 0.3, 0.2, 30).
        background: colour of uncovered samples.
        subpixel_bits: fixed-point precision of the watertight coverage test
            (default 8; see :class:`TriangleRasterizer`).
        perfect_coords: splat positions exactly at the sample centres in value
            (``'splat'``, ``'layered_splat'``; derivatives kept).
        rigid_camera: pose the camera with a learnable
            :class:`~lumigrad.raster.rigid.RigidTransform` (keys
            ``'camera.rigid.position'``, ``'camera.rigid.rotation'``).
        rigid_mesh_groups: ``'all'`` or a list of vertex groups, each moved by its
            own :class:`~lumigrad.raster.rigid.RigidMeshTransform` (keys
            ``'mesh.group.<g>.position'`` / ``.rotation``).
        group_silhouettes, group_colors: with ``shading='silhouette'``, colour
            each triangle group (see :class:`SilhouetteShader`; key ``'group_colors'``).

    ``discontinuity`` also takes the course's two-layer variants built on the
    :class:`~lumigrad.raster.occlusion.OcclusionEstimator`: ``'layered_splat'``
    and ``'occlusion_antialias'`` (:mod:`lumigrad.raster.layered`; approximate),
    which make the rasterizer keep two depth layers.
    """

    def __init__(self, resolution: Any = (64, 64), mesh: Any = "icosphere",
                 camera: Optional[Camera] = None, n_lights: int = 1,
                 samples_per_pixel: int = 1, cull_backfaces: bool = False,
                 discontinuity: Optional[str] = None, shading: str = "blinn_phong",
                 vertex_albedos: Any = None, texture: Any = None,
                 ambient_constant: Any = 0.1, diffuse_constant: Any = 0.3,
                 specular_constant: Any = 0.2, shine_coefficient: Any = 30.0,
                 background: Any = (0.0, 0.0, 0.0), mesh_kwargs: Optional[dict] = None,
                 mesh_type: Optional[str] = None, subpixel_bits: Optional[int] = None,
                 perfect_coords: bool = False, rigid_camera: bool = False,
                 rigid_mesh_groups: Any = None, group_silhouettes: bool = False,
                 group_colors: Any = None, edge_samples: Optional[float] = None) -> None:
        if shading not in ("blinn_phong", "silhouette"):
            raise ValueError(f"Pipeline: shading must be 'blinn_phong' or 'silhouette', "
                             f"got {shading!r}")
        if discontinuity not in DISCONTINUITY_METHODS:
            known = ", ".join(map(repr, DISCONTINUITY_METHODS))
            raise ValueError(f"Pipeline: discontinuity must be one of {known}, got "
                             f"{discontinuity!r}")
        self.width, self.height = parse_resolution(resolution)
        if mesh_type is not None:  # the course's keyword
            mesh = mesh_type
        if isinstance(mesh, str):
            mesh = TriangleMesh.example(mesh, **(mesh_kwargs or {}))
        if not isinstance(mesh, TriangleMesh):
            raise TypeError(f"Pipeline: mesh must be a TriangleMesh or an example name, got "
                            f"{type(mesh).__name__}")
        self.camera = camera if camera is not None else PerspectiveCamera()
        if rigid_camera:
            self.camera.use_rigid_transform()
        self.shading = shading
        self.discontinuity = discontinuity
        self.stages: list[Any] = [self.camera]

        # rigid motions of vertex groups (chained), before the rasterizer
        self.input_mesh = mesh
        self.mesh_transforms: list[RigidMeshTransform] = []
        if rigid_mesh_groups is not None:
            if isinstance(rigid_mesh_groups, str) and rigid_mesh_groups == "all":
                groups: list = [None]
            else:
                groups = [int(g) for g in rigid_mesh_groups]
            for g in groups:
                t = RigidMeshTransform(mesh, g)
                self.mesh_transforms.append(t)
                mesh = t.transformed_mesh
            self.stages += self.mesh_transforms
        self.mesh = mesh

        layered = discontinuity in ("layered_splat", "occlusion_antialias")
        self.rasterizer = TriangleRasterizer((self.width, self.height), self.camera, mesh,
                                             samples_per_pixel=samples_per_pixel,
                                             cull_backfaces=cull_backfaces,
                                             subpixel_bits=subpixel_bits,
                                             depth_layers=2 if layered else 1)
        rz = self.rasterizer
        self.stages.append(rz)
        self.light_array = DirectionalLightArray(n_lights)
        for i in range(n_lights):
            self.light_array.set_light_direction(i, (1.0, -1.0, -1.0))
        self.vertex_albedos = Buffer("vertex_albedos", channels=3)
        self.texture: Optional[Buffer] = None
        self.background = background
        self._texture_arg = texture
        self._shader_kwargs = dict(ambient_constant=ambient_constant,
                                   specular_constant=specular_constant,
                                   diffuse_constant=diffuse_constant,
                                   shine_coefficient=shine_coefficient, background=background)
        self._group_args = (group_silhouettes, group_colors)
        if shading == "blinn_phong":
            if texture is not None:
                if mesh.uvs is None:
                    raise ValueError(f"Pipeline: a texture needs uvs, and mesh {mesh.name!r} has "
                                     "none")
                self.texture = Buffer("texture")
                self.texture.value = texture if isinstance(texture, dr.ArrayBase) else \
                    bk.TensorXf(np.asarray(texture, dtype=np.float32).copy())
            else:
                va = (np.full((mesh.n_vertices, 3), 0.8, np.float32) if vertex_albedos is None
                      else vertex_albedos)
                self.set_vertex_albedos(va)
            self.normals_estimator = NormalsEstimator(mesh)
        color = self._shade_layer(0, vertex_albedos)
        # the course's name for the Blinn-Phong stage
        self.phong_shader = self.shader
        self.discontinuity_stage: Any = None
        self.occlusion_estimator: Optional[OcclusionEstimator] = None
        if discontinuity not in (None, "edge"):
            bg = background if shading == "blinn_phong" else 0.0
            if discontinuity == "layered_splat":
                color1 = self._shade_layer(1, vertex_albedos)
                self.discontinuity_stage = LayeredSplat([color, color1], rz, background=bg,
                                                        perfect_coords=perfect_coords)
            elif discontinuity == "occlusion_antialias":
                self.discontinuity_stage = OcclusionAntialias(color, rz)
            elif discontinuity == "splat":
                self.discontinuity_stage = disc.RasterizeThenSplat(
                    color, rz, background=bg, perfect_coords=perfect_coords)
            else:
                self.discontinuity_stage = disc.make(discontinuity, color, rz, background=bg)
            self.occlusion_estimator = getattr(self.discontinuity_stage, "occlusion", None)
            self.stages.append(self.discontinuity_stage)
            color = self.discontinuity_stage.output_buffer
        self.resolve = Resolve(color)
        self.stages.append(self.resolve)
        self.output_buffer = self.resolve.output_buffer
        if discontinuity == "edge":
            from .edge_sampling import ExactEdgeSampling, PointShader, default_budget
            smooth = shading == "blinn_phong" or not self._group_args[0]
            self.discontinuity_stage = ExactEdgeSampling(
                self, self.output_buffer, PointShader(self),
                samples_per_pixel=edge_samples if edge_samples is not None
                else default_budget(samples_per_pixel), smooth=smooth,
                rims=shading == "blinn_phong")
            self.stages.append(self.discontinuity_stage)
            self.output_buffer = self.discontinuity_stage.output_buffer

    def _shade_layer(self, layer: int, vertex_albedos: Any) -> Buffer:
        """Build the stages that shade depth layer ``layer`` (appended to
        :attr:`stages`); returns the colour buffer. Layer 0's stages are also
        attributes (``world_position_interpolator``, ``normals_interpolator``,
        ``albedo_stage``, ``shader``); layer 1's are in ``layer_stages[1]``."""
        rz = self.rasterizer
        ids, bary = rz.triangle_id_buffers[layer], rz.barycentric_buffers[layer]
        new, shader, parts = self._shading_stages(ids, bary, layer)
        if layer == 0:
            self.shader = shader
            if "uv" in parts:
                self.uv_interpolator = parts["uv"]
            if "world_position" in parts:
                self.world_position_interpolator = parts["world_position"]
                self.normals_interpolator = parts["normals"]
                self.albedo_stage = parts["albedo"]
        if not hasattr(self, "layer_stages"):
            self.layer_stages: dict = {}
        self.layer_stages[layer] = new
        self.stages += new
        return shader.output_buffer

    def _shading_stages(self, ids: Buffer, bary: Buffer, layer: int) -> tuple[list, Any, dict]:
        """The shading chain over a triangle-id and a barycentric buffer: ``(stages,
        shader, parts)``. Layer 0 also runs the per-vertex stages (normals
        estimator, lights) that every other chain reads; other chains (the second
        depth layer, or ``layer=-1``: the surface points of exact edge sampling)
        read layer 0's shading constants."""
        mesh = self.mesh
        parts: dict = {}
        if self.shading == "silhouette":
            group_silhouettes, group_colors = self._group_args
            groups = None
            if group_silhouettes:
                if mesh.triangle_groups is None:
                    raise ValueError(f"Pipeline: group_silhouettes needs triangle groups, and "
                                     f"mesh {mesh.name!r} has none")
                groups = mesh.triangle_groups
            shader: Any = SilhouetteShader(ids, groups, group_colors)
            return [shader], shader, parts
        wpi = TriangleAttributeInterpolator(mesh, mesh, ids, bary, name="world_position")
        ni = TriangleAttributeInterpolator(self.normals_estimator.normals, mesh, ids, bary,
                                           normalize=True, name="normals")
        if self.texture is not None:
            uvi = TriangleAttributeInterpolator(lambda: mesh.uvs, mesh, ids, bary, name="uv")
            albedo: Any = TextureSampler(self.texture, uvi.attribute_buffer, ids)
            albedo_stages = [uvi, albedo]
            parts["uv"] = uvi
        else:
            albedo = TriangleAttributeInterpolator(self.vertex_albedos, mesh, ids, bary,
                                                   name="albedo")
            albedo_stages = [albedo]
        shader = BlinnPhongShader(self.camera, self.light_array, ids, wpi.attribute_buffer,
                                  ni.attribute_buffer, albedo.output_buffer,
                                  **self._shader_kwargs)
        if layer != 0:
            # other chains read the shader constants of layer 0's shader
            shader._constants_from = self.shader
        new = ([wpi, self.normals_estimator, ni] if layer == 0 else [wpi, ni]) \
            + albedo_stages + ([self.light_array] if layer == 0 else []) + [shader]
        parts.update(world_position=wpi, normals=ni, albedo=albedo)
        return new, shader, parts

    # -- running ------------------------------------------------------------------
    def forward(self) -> Any:
        """Run every stage; return the image ``TensorXf`` (height, width, channels)."""
        for st in self.stages:
            st.forward()
        self._image = self.output_buffer.tensor
        return self._image

    __call__ = forward

    def backward(self, seed: Any = None) -> None:
        """The course's ``pipeline.backward()``: backpropagate the image gradient
        ``seed`` (an image-shaped array; all ones by default) from the image of the
        last ``forward()`` to every grad-enabled parameter (read them with
        ``dr.grad``). Dr.Jit derives every stage's adjoint: no stage has code here."""
        img = getattr(self, "_image", None)
        if img is None:
            raise RuntimeError("Pipeline.backward(): call forward() first")
        if seed is None:
            dr.backward(dr.sum(img.array))
            return
        s = seed if isinstance(seed, dr.ArrayBase) else bk.TensorXf(
            np.asarray(seed, dtype=np.float32).copy())
        if tuple(s.shape) != tuple(img.shape):
            raise ValueError(f"Pipeline.backward(): seed shape {tuple(s.shape)} differs from "
                             f"the image shape {tuple(img.shape)}")
        dr.backward(dr.sum(img.array * dr.detach(s.array)))

    @property
    def image(self) -> Any:
        return self.output_buffer.tensor

    # -- parameters --------------------------------------------------------------
    def set_vertex_albedos(self, albedos: Any) -> None:
        if isinstance(albedos, dr.ArrayBase):
            a = bk.Array3f(albedos)
            if dr.width(a) not in (1, self.mesh.n_vertices):
                raise ValueError(f"vertex_albedos: {dr.width(a)} lanes for "
                                 f"{self.mesh.n_vertices} vertices")
        else:
            arr = np.asarray(albedos, dtype=np.float32)
            if arr.shape == (3,):
                arr = np.tile(arr, (self.mesh.n_vertices, 1))
            if arr.shape != (self.mesh.n_vertices, 3) or not np.all(np.isfinite(arr)):
                raise ValueError(f"vertex_albedos: expected a finite ({self.mesh.n_vertices}, 3) "
                                 f"array, got shape {arr.shape}")
            a = bk.Array3f(*[arr[:, c].copy() for c in range(3)])
        if dr.width(a) == 1 and self.mesh.n_vertices > 1:
            a = a + bk.Array3f(dr.zeros(bk.Float, self.mesh.n_vertices))
        self.vertex_albedos.value = a

    def parameters(self) -> RasterParameters:
        """The differentiable inputs by key (see the module documentation)."""
        p = RasterParameters()
        cam, la = self.camera, self.light_array

        def attr(obj: Any, name: str) -> tuple:
            return (lambda: getattr(obj, name), lambda v: setattr(obj, name, v))

        for name in ("position", "target", "up", "near", "far"):
            p.add(f"camera.{name}", *attr(cam, name))
        if isinstance(cam, PerspectiveCamera):
            p.add("camera.fov", *attr(cam, "fov"))
        if isinstance(cam, OrthographicCamera):
            p.add("camera.extent", *attr(cam, "extent"))
        if cam.rigid_transform is not None:
            p.add("camera.rigid.position", *attr(cam.rigid_transform, "position"))
            p.add("camera.rigid.rotation", *attr(cam.rigid_transform, "rotation"))
        p.add("mesh.vertex_positions", *attr(self.input_mesh, "vertex_positions"))
        for t in self.mesh_transforms:
            g = "all" if t.vertex_group is None else str(t.vertex_group)
            p.add(f"mesh.group.{g}.position", *attr(t.rigid_transform, "position"))
            p.add(f"mesh.group.{g}.rotation", *attr(t.rigid_transform, "rotation"))
        if self.shading == "silhouette" and self._group_args[0]:
            shaders = [st[-1] for st in self.layer_stages.values()]

            def set_colors(v: Any) -> None:
                # (a list: one value per group, each possibly per pixel)
                for s in shaders:
                    s.group_colors = list(v) if isinstance(v, (list, tuple)) else bk.Array3f(v)

            p.add("group_colors", lambda: self.shader.group_colors, set_colors)
        if self.shading == "blinn_phong":
            p.add("lights.colors", *attr(la, "colors"))
            p.add("lights.directions", *attr(la, "directions"))
            for i in range(la.n_lights):
                p.add(f"light.{i}.color", (lambda i=i: la.light_color(i)),
                      (lambda v, i=i: la.set_light_color(i, v)))
                p.add(f"light.{i}.direction", (lambda i=i: la.light_direction(i)),
                      (lambda v, i=i: la.set_light_direction(i, v)))
            sh = self.shader
            for name in ("ambient_constant", "diffuse_constant", "specular_constant",
                         "shine_coefficient"):
                p.add(f"shader.{name}",
                      (lambda n=name: _as_param(getattr(sh, n))),
                      (lambda v, n=name: setattr(sh, n, v)))
            if self.texture is not None:
                tex = self.texture
                p.add("texture", lambda: tex.value, lambda v: setattr(tex, "value", v))
            else:
                p.add("vertex_albedos", lambda: self.vertex_albedos.value,
                      self.set_vertex_albedos)
        return p

    def render_fn(self, key: str, component: Optional[int] = None,
                  index: Optional[int] = None) -> "ParamRenderFn":
        """A function ``θ -> image`` that sets parameter ``key`` (its ``component``
        for vector parameters, lane ``index`` for parameters with several lanes,
        e.g. the light in ``'lights.directions'``) to ``θ`` and renders: the input of
        :func:`~lumigrad.raster.jacobian.jacobian_image`. ``.value`` is the current
        value; ``.restore()`` puts the original parameter back."""
        return ParamRenderFn(self, key, component, index)

    def gradient_status(self) -> dict:
        """What the derivatives of this pipeline's image are, per group of parameters.

        Shading parameters (lights, albedo, texture, shader constants) always get
        exact derivatives of the image as rendered. Camera and geometry
        parameters get exact interior derivatives; silhouette terms are missing
        without a discontinuity method and *approximate* with either method."""
        if self.discontinuity_stage is not None:
            return dict(self.discontinuity_stage.GRADIENTS)
        return {
            "shading (lights, materials, albedo, texture)": "exact",
            "geometry and camera, interior of triangles": "exact (moving surface points "
                                                          "along fixed rays)",
            "geometry and camera, silhouettes": "MISSING (no discontinuity method: use "
                                               "'antialias' or 'splat')",
        }

    # -- scenes -------------------------------------------------------------------
    @classmethod
    def from_scene(cls, scene: Any, resolution: Any = None, sensor: int = 0,
                   **kwargs: Any) -> "Pipeline":
        """Rasterize a loaded scene (XML or dict): all its shapes (sharing their vertex
        arrays), seen by its sensor; albedo from each shape's BSDF reflectance
        where it is a constant (0.5 grey otherwise); emitters are not rasterized:
        one white directional light shines along the camera's view direction.
        Returns the pipeline; ``pipeline.mesh.triangle_shape_ids`` maps triangle
        ids to ``scene.shapes``."""
        shapes = list(scene.shapes)
        sens = scene.sensors[sensor]
        cam = PerspectiveCamera.from_sensor(sens)
        if resolution is None:
            resolution = cam.film_size or (64, 64)
        mesh = TriangleMesh.from_shapes(shapes)
        alb = []
        for s in shapes:
            nv = dr.width(s.vertex_positions) // 3
            alb.append(np.tile(_constant_reflectance(s.bsdf), (nv, 1)))
        kwargs.setdefault("diffuse_constant", 0.8)
        kwargs.setdefault("ambient_constant", 0.2)
        kwargs.setdefault("specular_constant", 0.0)
        pipe = cls(resolution, mesh=mesh, camera=cam, vertex_albedos=np.concatenate(alb),
                   **kwargs)
        cam.forward()
        fwd = np.array(dr.detach(cam.forward_direction)).reshape(-1)[:3]
        for i in range(pipe.light_array.n_lights):
            pipe.light_array.set_light_direction(i, fwd)
        return pipe


class ParamRenderFn:
    """``θ -> image`` for one scalar of one pipeline parameter (see
    :meth:`Pipeline.render_fn`).

    ``θ`` may have one lane (forward mode, per-pixel reverse mode, finite
    differences) or one lane per pixel (batched reverse mode). For a parameter
    with several lanes (``'lights.directions'`` with several lights), ``index``
    picks the lane; with one lane per pixel, the parameter is handed to its
    setter as a list of per-lane values, so each light keeps its own width."""

    def __init__(self, pipeline: Pipeline, key: str, component: Optional[int],
                 index: Optional[int] = None) -> None:
        self.pipeline = pipeline
        self.params = pipeline.parameters()
        self.key = key
        self.component = component
        self.original = self.params[key]
        orig = self.original
        lanes = dr.width(orig) if isinstance(orig, dr.ArrayBase) else 1
        if index is None:
            if lanes != 1:
                raise ValueError(f"render_fn: parameter {key!r} has {lanes} lanes; give "
                                 "index=<lane> (e.g. the light)")
            index = 0
        if not 0 <= int(index) < lanes:
            raise ValueError(f"render_fn: index {index} out of range for parameter {key!r} "
                             f"({lanes} lanes)")
        self.index = int(index)
        self.lanes = lanes
        if component is None:
            if dr.depth_v(orig) != 1:
                raise ValueError(f"render_fn: parameter {key!r} is not a scalar; give a "
                                 "component index")
            self.value = float(dr.detach(orig)[self.index])
        else:
            if dr.depth_v(orig) != 2 or not 0 <= component < len(orig):
                raise ValueError(f"render_fn: parameter {key!r} has no scalar component "
                                 f"{component}")
            self.value = float(dr.detach(orig[component])[self.index])

    def _with(self, value: Any, theta: Any) -> Any:
        """``value`` (one lane) with the chosen component replaced by ``theta``."""
        if self.component is None:
            return theta
        comps = [value[i] for i in range(len(value))]
        comps[self.component] = theta
        return type(value)(*comps)

    def __call__(self, theta: Any) -> Any:
        orig = self.original
        if self.lanes == 1:
            new: Any = self._with(orig, theta)
        elif dr.width(theta) == 1:
            sel = dr.arange(bk.UInt32, self.lanes) == self.index
            col = orig if self.component is None else orig[self.component]
            new = self._with(orig, dr.select(sel, theta, col))
        else:  # per-pixel copies of one lane: a list of per-lane values
            T = type(orig)
            new = [dr.gather(T, orig, bk.UInt32(i)) for i in range(self.lanes)]
            new[self.index] = self._with(new[self.index], theta)
        self.params[self.key] = new
        return self.pipeline.forward()

    def restore(self) -> None:
        self.params[self.key] = self.original


def _as_param(v: Any) -> Any:
    return v if isinstance(v, dr.ArrayBase) else bk.Float(float(v))


def _constant_reflectance(bsdf: Any) -> np.ndarray:
    """RGB of a BSDF's constant reflectance (or 0.5 grey if it has none)."""
    if bsdf is None or not hasattr(bsdf, "parameters"):
        return np.full(3, 0.5, np.float32)
    for key, value, _ in bsdf.parameters():
        if key.endswith("reflectance.value") or key.endswith("base_color.value"):
            try:
                a = np.array(dr.detach(value), dtype=np.float32).reshape(-1)
            except Exception:
                continue
            if a.size == 1:
                return np.full(3, float(a[0]), np.float32)
            if a.size >= 3:
                return a[:3].astype(np.float32)
    return np.full(3, 0.5, np.float32)

