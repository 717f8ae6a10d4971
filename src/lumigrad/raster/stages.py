"""The stages after rasterization: interpolation, normals, lights, shading,
texture lookup, sample resolve and image losses.

Every stage follows the course's pattern: it is built from the buffers of the
stages before it, owns its output buffer(s), and ``forward()`` recomputes them.
No stage has a ``backward()``: each output is an attached Dr.Jit array, so
``dr.backward(loss)`` / ``dr.forward(param)`` differentiate the whole chain.

Per-sample inputs that are parameters (light colours and directions, shading
constants, a constant albedo) may have one lane (shared by all samples), one
lane per *sample*, or one lane per *pixel* (then every sample of a pixel reads
its pixel's lane). The last form is what :func:`~lumigrad.raster.jacobian.jacobian_image`
uses for batched reverse-mode Jacobians (one parameter copy per pixel).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import drjit as dr
import numpy as np

from .. import backend as bk
from .buffers import (Buffer, array_type, as_array3f, as_float, broadcast, channel_count, read,
                      width_of)
from .camera import Camera
from .mesh import TriangleMesh
from .rasterizer import fclip, fmax


def _tri_and_valid(triangle_id_buffer: Buffer) -> tuple[Any, Any]:
    ids = triangle_id_buffer.value
    valid = ids >= 0
    return bk.UInt32(dr.select(valid, ids, 0)), valid


def per_sample(value: Any, like: Buffer, what: str) -> Any:
    """Broadcast a parameter to the sample grid of ``like``: one lane (kept), one
    lane per sample (kept) or one lane per pixel (gathered per sample)."""
    n = width_of(value)
    n_samples = like.height * like.width  # type: ignore[operator]
    if n == 1:
        return broadcast(value, n_samples)
    if n == n_samples:
        return value
    s = like.spp_side
    n_pixels = n_samples // (s * s)
    if n == n_pixels:
        idx = dr.arange(bk.UInt32, n_samples)
        w = like.width  # type: ignore[assignment]
        pix = (idx // w // s) * (w // s) + (idx % w) // s
        return dr.gather(type(value), value, pix)
    raise ValueError(f"{what}: has {n} lanes; expected 1, one per pixel ({n_pixels}) or one "
                     f"per sample ({n_samples})")


class TriangleAttributeInterpolator:
    """Interpolate a per-vertex attribute with the barycentric buffer.

    ``out = b0 a[v0] + b1 a[v1] + b2 a[v2]`` (perspective-correct, since the
    rasterizer's barycentrics are those of the 3-D surface point), optionally
    normalised (for normals); 0 on the background.

    Args:
        vertex_attributes: per-vertex values with one lane per vertex: ``Float``,
            ``Array2f``, ``Array3f`` or ``Array4f`` (or a :class:`Buffer` / a
            zero-argument callable returning one, read at every ``forward()``, or
            a :class:`TriangleMesh` for its vertex positions).
        triangle_vertex_ids: flat ``UInt32`` (3 per triangle), or the mesh.
        triangle_id_buffer, barycentric_buffer: the rasterizer's buffers.
        normalize: normalise the interpolated vector.
    """

    def __init__(self, vertex_attributes: Any, triangle_vertex_ids: Any,
                 triangle_id_buffer: Buffer, barycentric_buffer: Buffer,
                 normalize: bool = False, name: str = "attribute") -> None:
        # a mesh stands for its positions, gathered straight from the flat array
        # (unravel + gather would give the backward pass a scatter and a
        # scatter-add into one gradient array, which Dr.Jit refuses for large ones)
        self._mesh = vertex_attributes if isinstance(vertex_attributes, TriangleMesh) else None
        self.vertex_attributes = vertex_attributes
        if isinstance(triangle_vertex_ids, TriangleMesh):
            triangle_vertex_ids = triangle_vertex_ids.triangle_vertex_ids
        self.triangle_vertex_ids = triangle_vertex_ids
        self.triangle_id_buffer = triangle_id_buffer
        self.barycentric_buffer = barycentric_buffer
        self.normalize = bool(normalize)
        self.name = name
        self.attribute_buffer = Buffer(name, channels=0, **triangle_id_buffer.like)

    def forward(self) -> None:
        if self._mesh is not None:
            self._interpolate(self._mesh.vertex_positions, bk.Array3f, 3)
            return
        attr = read(self.vertex_attributes)
        if not isinstance(attr, dr.ArrayBase) or dr.depth_v(attr) > 2:
            raise TypeError(f"{self.name} interpolator: vertex attributes must be a Dr.Jit "
                            f"Float/Array2f/Array3f/Array4f, got {type(attr).__name__}")
        ch = channel_count(attr)
        T = array_type(ch) if ch > 1 else bk.Float
        self._interpolate(T(attr), T, ch)

    def _interpolate(self, attr: Any, T: type, ch: int) -> None:
        """``attr``: one lane per vertex of type ``T``, or a flat ``Float`` holding
        ``ch`` values per vertex (``dr.gather(T, flat, i)`` reads ``ch`` in a row)."""
        self.attribute_buffer.channels = ch
        tri, valid = _tri_and_valid(self.triangle_id_buffer)
        b = self.barycentric_buffer.value
        out = None
        for k in range(3):
            vid = dr.gather(bk.UInt32, self.triangle_vertex_ids, tri * 3 + k, valid)
            term = dr.gather(T, attr, vid, valid) * b[k]
            out = term if out is None else out + term
        if self.normalize:
            n2 = dr.squared_norm(out) if ch > 1 else dr.square(out)
            ok = valid & (n2 > 0)
            out = dr.select(ok, out * dr.rsqrt(dr.select(ok, n2, 1.0)), 0.0)
        self.attribute_buffer.value = out

    @property
    def output_buffer(self) -> Buffer:
        return self.attribute_buffer


class NormalsEstimator:
    """Angle-weighted vertex normals, differentiable in the vertex positions.

    ``n_v = normalize(sum_f alpha_{f,v} n_f)`` over the faces ``f`` around vertex
    ``v``, with ``n_f`` the unit face normal and ``alpha_{f,v}`` the interior
    angle of ``f`` at ``v`` (Thürrner & Wüthrich 1998, "Computing vertex normals
    from polygonal facets"): unlike area or uniform weights the result does not
    depend on how the surface around ``v`` is triangulated. Computed as a
    Dr.Jit program (per-face terms + ``scatter_add``), so the normals are
    attached to the positions in both AD modes.
    """

    def __init__(self, mesh: TriangleMesh) -> None:
        self.mesh = mesh
        self.normals = Buffer("vertex_normals", channels=3)

    def forward(self) -> None:
        m = self.mesh
        F = m.n_triangles
        tri = dr.arange(bk.UInt32, F)
        p = m.gather_triangles(tri)
        n = dr.cross(p[1] - p[0], p[2] - p[0])
        n_len = dr.norm(n)
        ok = n_len > 0
        n_unit = dr.select(ok, n / dr.select(ok, n_len, 1.0), 0.0)
        acc = dr.zeros(bk.Array3f, m.n_vertices)
        for k in range(3):
            a = p[(k + 1) % 3] - p[k]
            b = p[(k + 2) % 3] - p[k]
            # interior angle at corner k (acos of the clamped cosine; dr.atan2 is
            # avoided: see rasterizer.fmin on LLVM's fmaximum)
            lab = dr.norm(a) * dr.norm(b)
            c = dr.dot(a, b) / dr.select(lab > 0, lab, 1.0)
            alpha = dr.acos(fclip(c, -1.0, 1.0))
            vid = dr.gather(bk.UInt32, m.triangle_vertex_ids, tri * 3 + k)
            dr.scatter_add(acc, n_unit * alpha, vid)
        ln = dr.norm(acc)
        good = ln > 0
        self.normals.value = dr.select(good, acc / dr.select(good, ln, 1.0), 0.0)

    @property
    def output_buffer(self) -> Buffer:
        return self.normals


class DirectionalLightArray:
    """``n_lights`` directional lights, each with a colour and a direction.

    The *direction* is the direction the light travels (the course's
    convention: a light "facing the same direction as the camera" has the
    camera's viewing direction); shading uses ``l = -normalize(direction)``.
    Directions need not be unit length: the derivative with respect to a raw
    component (e.g. ``direction.x``) is what Jacobian images show.

    Colours and directions are kept per light (a list of ``Array3f``), so each
    may be grad-enabled on its own, and are also available as one ``Array3f``
    with ``n_lights`` lanes (:attr:`colors`, :attr:`directions`) for optimisers.
    """

    def __init__(self, n_lights: int = 1, colors: Optional[Sequence] = None,
                 directions: Optional[Sequence] = None) -> None:
        if int(n_lights) < 1:
            raise ValueError(f"DirectionalLightArray: n_lights must be >= 1, got {n_lights}")
        self.n_lights = int(n_lights)
        self._colors = [bk.Array3f(1.0, 1.0, 1.0) for _ in range(self.n_lights)]
        self._directions = [bk.Array3f(0.0, 0.0, -1.0) for _ in range(self.n_lights)]
        for i, c in enumerate(colors or []):
            self.set_light_color(i, c)
        for i, d in enumerate(directions or []):
            self.set_light_direction(i, d)

    def _check(self, i: int) -> int:
        if not 0 <= int(i) < self.n_lights:
            raise IndexError(f"DirectionalLightArray: light {i} out of range "
                             f"(0..{self.n_lights - 1})")
        return int(i)

    def set_light_color(self, i: int, color: Any) -> None:
        self._colors[self._check(i)] = as_array3f(color, f"light {i} color")

    def set_light_direction(self, i: int, direction: Any) -> None:
        d = as_array3f(direction, f"light {i} direction")
        if not isinstance(direction, dr.ArrayBase) and np.linalg.norm(
                np.asarray(direction, dtype=float)) == 0:
            raise ValueError(f"light {i} direction: must not be the zero vector")
        self._directions[self._check(i)] = d

    def light_color(self, i: int) -> Any:
        return self._colors[self._check(i)]

    def light_direction(self, i: int) -> Any:
        return self._directions[self._check(i)]

    @property
    def colors(self) -> Any:
        """All colours as one ``Array3f`` (``n_lights`` lanes)."""
        return _stack(self._colors)

    @colors.setter
    def colors(self, v: Any) -> None:
        for i, c in enumerate(_split(v, self.n_lights, "light colors")):
            self._colors[i] = c

    @property
    def directions(self) -> Any:
        """All directions as one ``Array3f`` (``n_lights`` lanes)."""
        return _stack(self._directions)

    @directions.setter
    def directions(self, v: Any) -> None:
        for i, d in enumerate(_split(v, self.n_lights, "light directions")):
            self._directions[i] = d

    # the course's field names
    @property
    def light_colors(self) -> Any:
        return self.colors

    @property
    def light_directions(self) -> Any:
        return self.directions

    def forward(self) -> None:
        """Nothing to compute: the lights are parameters (kept for the stage pattern)."""


def _stack(vs: list) -> Any:
    if len(vs) == 1:
        return vs[0]
    return bk.Array3f(*[dr.concat([v[c] for v in vs]) for c in range(3)])


def _split(v: Any, n: int, what: str) -> list:
    """One ``Array3f`` per light from: one ``Array3f`` with ``n`` lanes (one per
    light), a sequence of ``n`` 3-vectors, or (for one light) an ``Array3f`` of any
    width: a light's value may itself have one lane per pixel or per sample (the
    per-pixel parameter copies of batched reverse-mode Jacobians)."""
    if isinstance(v, (list, tuple)) and len(v) == n and all(
            isinstance(x, dr.ArrayBase) or np.size(x) == 3 for x in v):
        return [as_array3f(x, f"{what}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, dr.ArrayBase):
        v = bk.Array3f(v)
        if n == 1:
            return [v]
        if dr.width(v) != n:
            raise ValueError(f"{what}: expected {n} lanes (one per light), got {dr.width(v)}; "
                             "give a list of per-light values for per-pixel lanes")
        return [dr.gather(bk.Array3f, v, bk.UInt32(i)) for i in range(n)]
    a = np.asarray(v, dtype=np.float64).reshape(-1, 3)
    if a.shape[0] != n:
        raise ValueError(f"{what}: expected {n} rows of 3, got shape {a.shape}")
    return [as_array3f(row, what) for row in a]


def _safe_pow(x: Any, e: Any) -> Any:
    """``x**e`` for ``x >= 0`` with finite derivatives at ``x = 0`` (both in x and e)."""
    pos = x > 0
    return dr.select(pos, dr.exp(e * dr.log(dr.select(pos, x, 1.0))), 0.0)


class BlinnPhongShader:
    """Blinn-Phong shading under directional lights (Blinn 1977).

    Per covered sample with albedo ``A``, unit normal ``n`` (turned towards the
    viewer: two-sided), unit direction to the viewer ``v``, and for light ``i``
    with colour ``c_i`` and ``l_i = -normalize(d_i)``, ``h_i = normalize(l_i + v)``::

        out = ka A + sum_i c_i [ kd A max(0, n.l_i) + ks max(0, n.h_i)^s [n.l_i > 0] ]

    (``ka``/``kd``/``ks``: ambient, diffuse, specular constants; ``s``: shininess).
    Background samples get ``background``. Every input may be grad-enabled.
    """

    def __init__(self, camera: Camera, directional_light_array: DirectionalLightArray,
                 triangle_id_buffer: Buffer, world_position_buffer: Buffer,
                 normals_buffer: Buffer, albedo_buffer: Any = None,
                 ambient_constant: Any = 0.1, specular_constant: Any = 0.2,
                 diffuse_constant: Any = 0.3, shine_coefficient: Any = 30.0,
                 background: Any = (0.0, 0.0, 0.0), two_sided: bool = True) -> None:
        self.camera = camera
        self.lights = directional_light_array
        self.triangle_id_buffer = triangle_id_buffer
        self.world_position_buffer = world_position_buffer
        self.normals_buffer = normals_buffer
        self.albedo_buffer = albedo_buffer if albedo_buffer is not None else \
            bk.Array3f(1.0, 1.0, 1.0)
        self.ambient_constant = ambient_constant
        self.specular_constant = specular_constant
        self.diffuse_constant = diffuse_constant
        self.shine_coefficient = shine_coefficient
        self.background = background
        self.two_sided = bool(two_sided)
        self.output_buffer = Buffer("blinn_phong", channels=3, **triangle_id_buffer.like)

    @staticmethod
    def _scalar(v: Any, what: str) -> Any:
        return v if isinstance(v, dr.ArrayBase) else as_float(v, what)

    def forward(self) -> None:
        like = self.triangle_id_buffer
        _, valid = _tri_and_valid(like)
        p = self.world_position_buffer.value
        n = self.normals_buffer.value
        albedo = per_sample(bk.Array3f(read(self.albedo_buffer)), like, "albedo")
        # (a shader of a second depth layer reads the constants of the first's)
        src = getattr(self, "_constants_from", None) or self
        ka = per_sample(self._scalar(read(src.ambient_constant), "ambient_constant"), like,
                        "ambient_constant")
        kd = per_sample(self._scalar(read(src.diffuse_constant), "diffuse_constant"), like,
                        "diffuse_constant")
        ks = per_sample(self._scalar(read(src.specular_constant), "specular_constant"), like,
                        "specular_constant")
        shine = per_sample(self._scalar(read(src.shine_coefficient), "shine_coefficient"), like,
                           "shine_coefficient")
        v = self.camera.direction_to_camera(p)
        if self.two_sided:
            n = dr.select(dr.dot(n, v) < 0, -n, n)
        color = albedo * ka
        for i in range(self.lights.n_lights):
            d = per_sample(self.lights.light_direction(i), like, f"light {i} direction")
            c = per_sample(self.lights.light_color(i), like, f"light {i} color")
            l = -dr.normalize(d)  # noqa: E741
            ndl = dr.dot(n, l)
            lit = ndl > 0
            h = dr.normalize(l + v)
            spec = dr.select(lit, _safe_pow(fmax(dr.dot(n, h), 0.0), shine), 0.0)
            color += c * (albedo * (kd * fmax(ndl, 0.0)) + ks * spec)
        bg = as_array3f(self.background, "background") if not isinstance(
            self.background, dr.ArrayBase) else self.background
        self.output_buffer.value = dr.select(valid, color, bg)


class SilhouetteShader:
    """Silhouettes: 1 where a triangle covers the sample, 0 on the background (one
    channel); or, with ``triangle_groups``, the colour of the covering triangle's
    group (3 channels, 0 on the background), as the course's group silhouettes.

    Its derivative with respect to geometry and camera is zero everywhere
    unless a discontinuity method (antialiasing or splatting) follows it.

    Args:
        triangle_id_buffer: the rasterizer's (either depth layer).
        triangle_groups: group index per triangle (e.g. ``mesh.triangle_groups``),
            or ``None`` for the plain silhouette.
        group_colors: (G, 3) colours, or an ``Array3f`` with G lanes (may be
            grad-enabled); default: G grey levels ``(g + 1) / G`` (for two groups
            0.5 and 1, the course's). May later be set to a list of G ``Array3f``,
            each with one lane, one per pixel or one per sample.
    """

    def __init__(self, triangle_id_buffer: Buffer, triangle_groups: Any = None,
                 group_colors: Any = None) -> None:
        self.triangle_id_buffer = triangle_id_buffer
        self.triangle_groups = None
        self.group_colors = None
        channels = 1
        if triangle_groups is not None:
            g = np.asarray(triangle_groups)
            if g.ndim != 1 or not np.issubdtype(g.dtype, np.integer) or g.min() < 0:
                raise ValueError("SilhouetteShader: triangle_groups must be non-negative "
                                 "integers, one per triangle")
            n_groups = int(g.max()) + 1
            self.triangle_groups = bk.UInt32(g.astype(np.uint32))
            if group_colors is None:
                lv = (np.arange(n_groups, dtype=np.float32) + 1) / n_groups
                group_colors = np.repeat(lv[:, None], 3, axis=1)
            if isinstance(group_colors, dr.ArrayBase):
                self.group_colors = bk.Array3f(group_colors)
                have = dr.width(self.group_colors)
            else:
                c = np.asarray(group_colors, dtype=np.float32).reshape(-1, 3)
                have = len(c)
                self.group_colors = bk.Array3f(*[c[:, k].copy() for k in range(3)])
            if have < n_groups:
                raise ValueError(f"SilhouetteShader: {have} group colours for {n_groups} groups")
            channels = 3
        self.output_buffer = Buffer("silhouette", channels=channels, **triangle_id_buffer.like)

    def forward(self) -> None:
        tri, valid = _tri_and_valid(self.triangle_id_buffer)
        if self.triangle_groups is None:
            self.output_buffer.value = dr.select(valid, bk.Float(1.0), 0.0)
            return
        g = dr.gather(bk.UInt32, self.triangle_groups, tri, valid)
        gc = self.group_colors
        if isinstance(gc, (list, tuple)):
            like = self.triangle_id_buffer
            out = bk.Array3f(0.0)
            for k, c in enumerate(gc):
                out = dr.select(g == k, per_sample(as_array3f(c, f"group colour {k}"), like,
                                                   f"group colour {k}"), out)
        else:
            out = dr.gather(bk.Array3f, gc, g, valid)
        self.output_buffer.value = dr.select(valid, out, 0.0)


class TextureSampler:
    """Bilinear texture lookup at interpolated uvs (repeat wrap), differentiable in
    the texels and in the uvs. ``uv = (0, 0)`` is the corner of texel (0, 0) (the
    first row of the image), ``u`` runs along columns, ``v`` along rows.

    Args:
        texture: ``TensorXf`` (h, w, C), numpy (h, w[, C]), or a :class:`Buffer`
            holding such a tensor (a grad-enabled tensor gets texel gradients).
        uv_buffer: a 2-channel per-sample buffer (interpolated vertex uvs).
        triangle_id_buffer: the rasterizer's (background samples read 0).
    """

    def __init__(self, texture: Any, uv_buffer: Buffer, triangle_id_buffer: Buffer) -> None:
        if isinstance(texture, np.ndarray):
            a = np.asarray(texture, dtype=np.float32)
            if a.ndim == 2:
                a = a[..., None]
            if a.ndim != 3 or not np.all(np.isfinite(a)):
                raise ValueError(f"TextureSampler: texture must be a finite (h, w, C) array, "
                                 f"got shape {a.shape}")
            texture = bk.TensorXf(a.copy())
        self.texture = texture
        self.uv_buffer = uv_buffer
        self.triangle_id_buffer = triangle_id_buffer
        self.output_buffer = Buffer("texture", channels=0, **triangle_id_buffer.like)

    def forward(self) -> None:
        tex = read(self.texture)
        if not (isinstance(tex, dr.ArrayBase) and dr.is_tensor_v(tex) and len(tex.shape) == 3):
            raise TypeError("TextureSampler: texture must be a TensorXf of shape (h, w, C)")
        th, tw, C = (int(x) for x in tex.shape)
        _, valid = _tri_and_valid(self.triangle_id_buffer)
        uv = self.uv_buffer.value
        x = uv[0] * tw - 0.5
        y = uv[1] * th - 0.5
        x0f, y0f = dr.floor(x), dr.floor(y)
        fx, fy = x - x0f, y - y0f
        x0 = bk.Int32(x0f)
        y0 = bk.Int32(y0f)

        def wrap(i: Any, n: int) -> Any:
            r = i % n
            return bk.UInt32(dr.select(r < 0, r + n, r))

        out = [bk.Float(0.0)] * C
        for dy, wy in ((0, 1.0 - fy), (1, fy)):
            for dx, wx in ((0, 1.0 - fx), (1, fx)):
                idx = (wrap(y0 + dy, th) * tw + wrap(x0 + dx, tw)) * C
                for c in range(C):
                    out[c] = out[c] + wx * wy * dr.gather(bk.Float, tex.array, idx + c, valid)
        self.output_buffer.channels = C
        val = out[0] if C == 1 else array_type(C)(*out)
        self.output_buffer.value = dr.select(valid, val, 0.0)


class Resolve:
    """Box-filter the sample grid down to pixels: the mean of each pixel's
    ``n x n`` samples (a pass-through for one sample per pixel)."""

    def __init__(self, input_buffer: Buffer) -> None:
        self.input_buffer = input_buffer
        s = input_buffer.spp_side
        self.output_buffer = Buffer(input_buffer.name + "_resolved", input_buffer.height // s,
                                    input_buffer.width // s, input_buffer.channels)

    def forward(self) -> None:
        src = self.input_buffer
        self.output_buffer.channels = src.channels
        val = src.value
        s = src.spp_side
        if s == 1:
            self.output_buffer.value = val
            return
        H, W = self.output_buffer.height, self.output_buffer.width
        n = H * W * s * s
        # lane j = (pixel, k): pixel = j // s^2, k = j % s^2 -> sample (py*s + k//s, px*s + k%s)
        j = dr.arange(bk.UInt32, n)
        pix, k = j // (s * s), j % (s * s)
        py, px = pix // W, pix % W
        src_idx = (py * s + k // s) * (W * s) + px * s + k % s
        g = dr.gather(type(val), val, src_idx)
        self.output_buffer.value = dr.block_sum(g, s * s) * (1.0 / (s * s))


class ImageLoss:
    """Scalar image loss between an image buffer and a target.

    ``kind``: ``'l2'`` / ``'mse'`` (mean of squared differences over pixels and
    channels), ``'l1'`` (mean absolute difference), ``'rmse'`` (square root of
    the MSE)."""

    KINDS = ("l2", "mse", "l1", "rmse")

    def __init__(self, image_buffer: Buffer, target: Any, kind: str = "l2") -> None:
        if kind not in self.KINDS:
            raise ValueError(f"ImageLoss: kind must be one of {self.KINDS}, got {kind!r}")
        self.image_buffer = image_buffer
        self.kind = kind
        self.target = target
        self.loss_buffer = Buffer("loss", channels=1)

    @property
    def target(self) -> Any:
        return self._target

    @target.setter
    def target(self, t: Any) -> None:
        if isinstance(t, Buffer):
            self._target = t
            return
        arr = t if isinstance(t, dr.ArrayBase) else bk.TensorXf(np.asarray(t, np.float32).copy())
        self._target = arr

    def forward(self) -> Any:
        img = self.image_buffer.tensor
        tgt = read(self._target)
        if isinstance(tgt, dr.ArrayBase) and not dr.is_tensor_v(tgt):
            tgt = Buffer("t", channels=self.image_buffer.channels, value=tgt,
                         **{"height": self.image_buffer.height,
                            "width": self.image_buffer.width}).tensor
        if tuple(tgt.shape) != tuple(img.shape):
            raise ValueError(f"ImageLoss: target shape {tuple(tgt.shape)} differs from the "
                             f"image shape {tuple(img.shape)}")
        diff = img.array - tgt.array
        if self.kind == "l1":
            loss = dr.mean(dr.abs(diff))
        else:
            loss = dr.mean(dr.square(diff))
            if self.kind == "rmse":
                loss = dr.sqrt(loss)
        self.loss_buffer.value = loss
        return loss

    @property
    def output_buffer(self) -> Buffer:
        return self.loss_buffer
