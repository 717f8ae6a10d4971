"""Exact silhouette derivatives for the rasterizer: the path tracer's primary edge sampling.

The pipeline's image is the box-filtered shading of what each film point sees,

    I_p = (1/|p|) ∫_p f(s) ds,

``f(s)`` the shaded colour (Blinn-Phong, texture, silhouette, ...) of the surface
seen at film point ``s`` (the sample grid and :class:`~lumigrad.raster.stages.Resolve`
estimate this integral). By the Reynolds transport theorem its derivative with
respect to anything that moves geometry or the camera is

    dI_p/dθ = (1/|p|) ∫_p ∂f/∂θ ds  +  ∫_{edges ∩ p} (f_right − f_left) (ds/dt × ∂s/∂θ) dt.

The first (interior) part is what Dr.Jit's automatic differentiation of the
pipeline already gives at fixed sample positions (``discontinuity=None``). The second
is the boundary term over the film images ``s(t)`` of the edges where ``f`` jumps
(silhouettes, boundary edges of open meshes, and creases where the shading is not
smooth): edge sampling (Li et al. 2018, "Differentiable Monte Carlo Ray Tracing
through Edge Sampling"). It is estimated by the *path tracer's* implementation,
:class:`~lumigrad.integrators.boundary.primary.PrimaryEdges` (edge topology welded by
position, classification from the camera, projected-length sampling, occlusion
test, side rays with the same random numbers): this module only adapts the
pipeline to it:

* a :class:`~lumigrad.scene.scene.Scene` over the pipeline's current (attached) mesh,
  with a perspective (or orthographic) sensor whose ``to_world`` and ``x_fov``
  (or extent, as the transform's scale) are attached to the pipeline's camera
  (so camera, vertex and rigid-transform parameters all move the edges on the
  film);
* the "radiance" of a side ray is the pipeline's own shading stages evaluated at
  the surface point the ray sees (the same stage classes, fed point buffers
  instead of the sample grid), or the background;
* smooth (interpolated) normals make the shading jump inside triangles too: where
  they turn away from the camera (two-sided shading flips them: the path
  tracer's shading-rim term, :mod:`~lumigrad.integrators.boundary.rims`) and, for
  Blinn-Phong, on each light's terminator ``n·l = 0``, where the specular lobe is
  cut off (:class:`SpecularTerminators`, the same line sampling on the curve
  ``Σ b_i n_i · l = 0``);
* the samples are splatted with the box filter into the pixel they fall in and
  added to the resolved image. Their value is zero; only their derivative counts
  (``(s_att − s)`` carries the edge's film velocity), so forward mode
  (``dr.forward``) and reverse mode (``dr.backward``) both get the term.
"""
from __future__ import annotations

from typing import Any, Callable

import drjit as dr
import numpy as np

from .. import backend as bk
from .buffers import Buffer

#: Seed salt of the edge samples (distinct from every path-tracer stream).
_SEED_SALT = 0x5EED_ED6E


class ExactEdgeSampling:
    """Pipeline stage: the edge-sampled boundary term of the resolved image.

    Args:
        pipeline: the :class:`~lumigrad.raster.pipeline.Pipeline` (its mesh after
            rigid transforms, camera, and shading chain).
        color_buffer: the resolved image (pixels) to which the term is added.
        shade_points: ``(triangle_ids Int32, barycentrics Array3f) -> Array3f or Float``,
            the pipeline's shading at arbitrary surface points (background where the
            id is -1).
        samples_per_pixel: edge samples per pixel of projected edge length (the
            path tracer's ``sppe``); more samples, less noise.
        smooth: whether the shading is continuous across interior edges (smooth
            normals and interpolated attributes): then only silhouettes and boundary
            edges are sampled; otherwise every crease too.
        rims: whether the shading also jumps where the interpolated normals turn
            away from the camera (two-sided Blinn-Phong flips them there): adds the
            path tracer's shading-rim term
            (:class:`~lumigrad.integrators.boundary.rims.ShadingRims`) on the
            pipeline's normals.
    """

    def __init__(self, pipeline: Any, color_buffer: Buffer,
                 shade_points: Callable[[Any, Any], Any], samples_per_pixel: float = 16.0,
                 smooth: bool = True, rims: bool = False) -> None:
        from .camera import OrthographicCamera, PerspectiveCamera
        if not isinstance(pipeline.camera, (PerspectiveCamera, OrthographicCamera)):
            raise ValueError("discontinuity='edge' supports perspective and orthographic cameras "
                             f"(not {type(pipeline.camera).__name__}); use 'antialias' or "
                             "'splat'")
        if not samples_per_pixel > 0:
            raise ValueError(f"edge samples_per_pixel must be > 0, got {samples_per_pixel}")
        self.pipeline = pipeline
        pipeline.rasterizer.discontinuity_handled = True
        self.input_buffer = color_buffer
        self.shade_points = shade_points
        self.samples_per_pixel = float(samples_per_pixel)
        self.smooth = bool(smooth)
        self.rims = bool(rims) and self.smooth
        #: (the path tracer's interface) shading is evaluated at the first surface only
        self.max_depth = 1
        #: the seed of the next forward(); incremented by every forward()
        self.seed = 0
        self.output_buffer = Buffer(color_buffer.name + "_edges", color_buffer.height,
                                    color_buffer.width, color_buffer.channels)
        self._scene: Any = None
        self._params: Any = None
        self._terms: Any = None
        #: (the path tracer's interface) channels of the radiance
        self.channels = color_buffer.channels

    # -- the path tracer's view of the pipeline ----------------------------------------
    def _proxy(self) -> tuple[Any, Any]:
        """A Scene + sensor attached to the pipeline's current mesh and camera."""
        from ..geometry.mesh import Mesh
        from ..geometry.transform import Transform4f
        from ..scene.params import traverse
        from ..scene.scene import Scene
        from ..sensors.film import HDRFilm
        from ..sensors.orthographic import OrthographicSensor
        from ..sensors.perspective import PerspectiveSensor
        from ..sensors.rfilter import BoxFilter

        pipe = self.pipeline
        mesh, cam = pipe.mesh, pipe.camera
        W, H = pipe.width, pipe.height
        if self._scene is None:
            pos, faces = mesh.positions_numpy(), mesh.faces_numpy()
            normals = None
            if self.smooth:  # marks the shading smooth; forward() sets the pipeline's own
                from ..geometry.meshio import vertex_normals
                normals = vertex_normals(pos, faces)
            shape = Mesh(pos, faces, vertex_normals=normals, id="mesh")
            film = HDRFilm(width=W, height=H, rfilter=BoxFilter())
            sensor = (PerspectiveSensor(fov=45.0, film=film, id="sensor") if cam.perspective
                      else OrthographicSensor(near_clip=max(cam.near_far()[0], 1e-4), film=film,
                                              id="sensor"))
            self._scene = Scene([shape], sensors=[sensor])
            self._params = traverse(self._scene)
        cam.forward()
        _, _, cols, origin, _ = cam._frame_or_build()
        # An orthographic camera's view spans half-extents (hx, hx H/W): the
        # sensor's film spans ±1 of its local axes, scaled by hx.
        sx = 1.0 if cam.perspective else cam.half_extents(W, H)[0]
        z, o = bk.Float(0.0), bk.Float(1.0)
        m = bk.Matrix4f(cols[0][0] * sx, cols[1][0] * sx, cols[2][0], origin[0],
                        cols[0][1] * sx, cols[1][1] * sx, cols[2][1], origin[1],
                        cols[0][2] * sx, cols[1][2] * sx, cols[2][2], origin[2],
                        z, z, z, o)
        p = self._params
        p["mesh.vertex_positions"] = bk.Float(mesh.vertex_positions)
        if self.smooth and getattr(pipe, "normals_estimator", None) is not None:
            # the pipeline's own (attached) vertex normals: the shading rims are
            # where *they* turn away from the camera
            p["mesh.vertex_normals"] = dr.ravel(pipe.normals_estimator.normals.value)
        p["sensor.to_world"] = Transform4f(m)
        if cam.perspective:
            tx, _ = cam.tan_half(W, H)
            p["sensor.x_fov"] = bk.Float(dr.rad2deg(2.0 * dr.atan(tx)))
        p.update()
        return self._scene, self._scene.sensors[0]

    def radiance(self, scene: Any, rng: Any, o: Any, d: Any, tmax: Any, active: Any,
                 first_prim: Any = None) -> list:
        """The pipeline's shading of what the ray ``(o, d)`` sees first (the
        path tracer's integrator interface, used by the side rays of edge samples);
        ``first_prim`` forces the triangle (a face of the sampled edge)."""
        from ..geometry.edges import NO_FACE
        _, prim, _, _, hit = scene.ray_intersect_preliminary(o, d, tmax, active)
        if first_prim is not None:
            forced = active & (first_prim != NO_FACE)
            prim = dr.select(forced, first_prim, prim)
            hit = dr.select(forced, True, hit)
        hit &= active
        si = scene.compute_interaction(o, d, prim, hit)
        b1, b2 = si.bary[0], si.bary[1]
        ids = dr.select(hit, bk.Int32(prim), -1)
        color = self.shade_points(ids, bk.Array3f(1.0 - b1 - b2, b1, b2))
        if isinstance(color, bk.Float):
            return [color]
        return [color[c] for c in range(3)]

    def radiance_pair(self, scene: Any, rng: Any, ray_a: tuple, ray_b: tuple, active: Any,
                      resume: Any = None, first_prims: tuple = (None, None)) -> tuple:
        """:meth:`radiance` on both sides of an edge (the integrators' interface;
        the shading draws no random numbers, so no loop is needed to share them)."""
        return (self.radiance(scene, rng, *ray_a, active, first_prim=first_prims[0]),
                self.radiance(scene, rng, *ray_b, active, first_prim=first_prims[1]))

    # -- the stage ------------------------------------------------------------------------
    def forward(self) -> None:
        from ..integrators.boundary import _passes
        from ..integrators.boundary.primary import PrimaryEdges
        from ..integrators.base import mix_seed

        src = self.input_buffer
        base = src.value
        self.output_buffer.channels = src.channels
        self.channels = src.channels
        scene, sensor = self._proxy()
        if self._terms is None:
            from ..integrators.boundary.rims import ShadingRims
            self._terms = [PrimaryEdges()]
            if self.rims:
                self._terms += [ShadingRims(), SpecularTerminators(self.pipeline).term]
        seed, self.seed = self.seed, self.seed + 1
        W, H = self.pipeline.width, self.pipeline.height
        ch = src.channels
        image = [dr.zeros(bk.Float, W * H) for _ in range(ch)]
        for k, term in enumerate(self._terms):
            if not term.needed(scene, sensor, self):
                continue
            n_total = term.sample_count(scene, sensor, self, self.samples_per_pixel)
            for i, n in enumerate(_passes(n_total) if n_total > 0 else []):
                state = mix_seed(seed, _SEED_SALT, k, i)
                rng = bk.PCG32(size=n, initstate=dr.opaque(bk.UInt64, state))
                bs = term.sample(scene, sensor, self, rng, n_total)
                for index, weight, valid in sensor.film.footprint(bs.pos):
                    ok = valid & bs.valid
                    for c in range(ch):
                        dr.scatter_reduce(dr.ReduceOp.Add, image[c], bs.value[c] * weight,
                                          index, ok)
        edge = image[0] if ch == 1 else bk.Array3f(*image)
        self.output_buffer.value = base + edge

    def __repr__(self) -> str:
        return f"ExactEdgeSampling(samples_per_pixel={self.samples_per_pixel})"


class SpecularTerminators:
    """Each light's terminator ``n_s · l = 0`` on smooth normals, where Blinn-Phong's
    specular term ``ks c (n·h)^s [n·l > 0]`` is cut off: a jump inside triangles
    that moves with vertices (normals), camera (on the film, and ``h``) and light
    directions. Sampled as the shading rims are (lines through candidate triangles,
    closed-form crossing), with one light picked uniformly per sample."""

    def __init__(self, pipeline: Any) -> None:
        from ..integrators.boundary.rims import ShadingRims

        class _Term(ShadingRims):
            seed_salt = 0x54

            def needed(term, scene: Any, sensor: Any, integrator: Any) -> bool:
                if not self.active():
                    return False
                return self.lights_move() or ShadingRims.needed(term, scene, sensor, integrator)

            def _all_triangles(term) -> bool:
                return self.lights_move()

            def _cache_key(term) -> tuple:
                return tuple(np.array(dr.detach(d)).tobytes() for d in self.directions())

            def _sign_change(term, p: list, nrm: list, o: Any) -> Any:
                out = dr.zeros(bk.Bool, dr.width(p[0]))
                for d in self.directions():
                    l_dir = -dr.normalize(dr.detach(d))
                    f = [dr.dot(nv, l_dir) for nv in nrm]
                    out |= ((f[0] > 0) | (f[1] > 0) | (f[2] > 0)) & \
                        ((f[0] < 0) | (f[1] < 0) | (f[2] < 0))
                return out

            def _direction(term, integrator: Any, rng: Any, n: int) -> tuple:
                return self.pick(rng, n)

        self.pipeline = pipeline
        self.term = _Term()

    def directions(self) -> list:
        lights = self.pipeline.light_array
        out = []
        for i in range(lights.n_lights):
            d = lights.light_direction(i)
            if dr.width(d) != 1:
                raise ValueError("discontinuity='edge': light directions must be shared by "
                                 "all pixels (not per-pixel copies)")
            out.append(d)
        return out

    def active(self) -> bool:
        """Whether a specular lobe exists (a positive or differentiated ``ks``)."""
        shader = self.pipeline.shader
        ks = getattr(shader, "specular_constant", 0.0)
        if isinstance(ks, dr.ArrayBase):
            return bool(dr.grad_enabled(ks)) or float(dr.max(dr.abs(dr.detach(ks)))[0]) > 0
        return float(ks) != 0.0

    def lights_move(self) -> bool:
        return any(dr.grad_enabled(d) for d in self.directions())

    def pick(self, rng: Any, n: int) -> tuple:
        """A light per lane, uniformly: ``(l detached, l attached, n_lights)``."""
        dirs = self.directions()
        with dr.suspend_grad():
            k = bk.UInt32(dr.minimum(rng.next_float32() * len(dirs), len(dirs) - 1))
        l_att = -dr.normalize(dirs[0]) + bk.Array3f(dr.zeros(bk.Float, n))
        for i in range(1, len(dirs)):
            l_att = dr.select(k == i, -dr.normalize(dirs[i]), l_att)
        return dr.detach(l_att), l_att, float(len(dirs))


class PointShader:
    """The pipeline's shading chain evaluated at arbitrary surface points.

    The same stage classes as the sample grid's chain (attribute interpolators,
    texture lookup, Blinn-Phong or silhouette shader), built once over two point
    buffers (triangle ids, barycentrics) whose width is set per call; per-vertex
    inputs (normals from the pipeline's normals estimator, albedos, texture) and
    parameters (lights, shading constants, camera) are the pipeline's own."""

    def __init__(self, pipeline: Any) -> None:
        self.ids = Buffer("edge_point_triangle_id", 1, 1, 1)
        self.bary = Buffer("edge_point_barycentric", 1, 1, 3)
        self.stages, shader, _ = pipeline._shading_stages(self.ids, self.bary, layer=-1)
        self.color = shader.output_buffer

    def __call__(self, ids: Any, bary: Any) -> Any:
        n = dr.width(ids)
        for b in (self.ids, self.bary):
            b.width = n
        self.ids.value, self.bary.value = ids, bary
        for st in self.stages:
            st.forward()
        return self.color.value


def default_budget(samples_per_pixel: int) -> float:
    """Edge samples per pixel of projected edge length matching the sample grid's
    density (at least 128: about 0.04 relative error on 8×8 blocks of a sphere's image)."""
    return float(max(128, samples_per_pixel))

