"""``render``: a differentiable rendering operation (a ``dr.CustomOp``).

``render(scene, params)`` returns an image attached to every grad-enabled
scene parameter. Dr.Jit's plain calls then work as in Mitsuba:

* ``dr.forward(param)`` / ``dr.forward_to(image)`` call :meth:`_RenderOp.forward`,
  which renders once more with tangents on the parameters and propagates them
  through the integrator's loop (constant memory);
* ``dr.backward(loss)`` calls :meth:`_RenderOp.backward`, which runs path replay
  backpropagation (``SamplingIntegrator.render_backward``).

Both derivative passes use their own samples: ``spp_grad`` (default ``spp``)
and ``seed_grad`` (default :func:`~lumigrad.integrators.base.grad_seed`
``(seed)``, which differs from ``seed``), so that the derivative of a
non-linear loss is not biased by correlation with the primal image.
"""
from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence, Union

import drjit as dr
import numpy as np

from . import backend as bk
from .geometry.transform import Transform4f
from .integrators.base import SamplingIntegrator, grad_seed
from .scene.params import SceneParameters, traverse


def _resolve_sensor(scene: Any, sensor: Union[int, Any]) -> Any:
    if isinstance(sensor, int):
        if not scene.sensors:
            raise ValueError("the scene has no sensor to render from")
        if not 0 <= sensor < len(scene.sensors):
            raise IndexError(f"sensor index {sensor} out of range: the scene has "
                             f"{len(scene.sensors)} sensor(s)")
        return scene.sensors[sensor]
    return sensor


def _default_integrator(scene: Any) -> SamplingIntegrator:
    if scene.integrator is not None:
        return scene.integrator
    from .integrators.path import PathIntegrator
    return PathIntegrator()


def _raw(value: Any) -> Any:
    """The Dr.Jit array behind a parameter value (a Transform4f's matrix)."""
    return value.matrix if isinstance(value, Transform4f) else value


def _warn_boundary(scene: Any, params: SceneParameters, keys: list[str], integrator: Any,
                   terms: Optional[tuple]) -> None:
    """Warn where the boundary terms that moving these parameters needs are
    switched off or not implemented (see ``integrators/boundary``)."""
    geo = [k for k in keys if params.needs_boundary_terms(k)]
    if not geo:
        return
    from .integrators.boundary import limitations
    notes = limitations(scene, integrator, terms)
    if notes:
        # (Python's warning filters show it once per call site by default.)
        warnings.warn("derivatives with respect to " + ", ".join(geo) + " are incomplete: "
                      + "; ".join(notes) + ".", stacklevel=3)


def swap_in_leaves(scene: Any, params: SceneParameters, keys: list,
                   tangents: Optional[dict]) -> tuple:
    """Replace each parameter in ``keys`` by a fresh grad-enabled copy of its value
    (with tangent ``tangents[key]`` if given) and rebuild derived scene buffers.

    Returns ``(saved, fresh)``: the original values (for :func:`restore_values`)
    and the fresh leaves (the matrix for a ``Transform4f``). Call inside the AD
    scope where the leaves will be differentiated.
    """
    saved, fresh = SavedValues(), {}
    for key in keys:
        value = params[key]
        saved[key] = value
        if isinstance(value, Transform4f):
            m = bk.Matrix4f(dr.detach(value.matrix))
            dr.make_opaque(m)
            dr.enable_grad(m)
            if tangents is not None:
                t = bk.Matrix4f(tangents[key])
                dr.make_opaque(t)
                dr.set_grad(m, t)
            new_value = Transform4f(m)
            fresh[key] = m
        else:
            new_value = type(value)(dr.detach(value))
            dr.make_opaque(new_value)
            dr.enable_grad(new_value)
            if tangents is not None:
                t = type(value)(tangents[key])
                dr.make_opaque(t)  # a literal tangent would be baked into the kernel
                dr.set_grad(new_value, t)
            fresh[key] = new_value
        params.store(key, new_value)
    _attach_smooth_normals(params, keys, saved, tangents)
    _rebuild_if_geometry(scene, params, keys)
    return saved, fresh


class SavedValues(dict):
    """Parameter values replaced by :func:`swap_in_leaves` (key -> value), and
    the vertex normals it attached (``normals``: ``(mesh, value)`` pairs)."""

    def __init__(self) -> None:
        super().__init__()
        self.normals: list = []


def _attach_smooth_normals(params: SceneParameters, keys: list, saved: SavedValues,
                           tangents: Optional[dict]) -> None:
    """Smooth normals turn with moving vertices (as ``SceneParameters.update``
    recomputes them): where a mesh's ``vertex_positions`` get a fresh leaf and
    its normals are not among ``keys``, the normals (same value) get a fresh
    leaf too, whose tangent is that of their recomputation from the positions
    (:meth:`Mesh.normals_jvp`); :func:`normals_gradients` hands its gradient
    back to the positions (``Mesh.normals_vjp``)."""
    from .geometry.mesh import Mesh
    moved = {}
    for key in keys:
        owner, suffix = params.owner(key), params.suffix(key)
        if isinstance(owner, Mesh):
            moved.setdefault(id(owner), [owner, {}])[1][suffix] = key
    for mesh, suffixes in moved.values():
        if ("vertex_positions" in suffixes and "vertex_normals" not in suffixes
                and mesh.vertex_normals is not None):
            key = suffixes["vertex_positions"]
            leaf = type(mesh.vertex_normals)(dr.detach(mesh.vertex_normals))
            dr.make_opaque(leaf)
            dr.enable_grad(leaf)
            if tangents is not None:
                dr.set_grad(leaf, mesh.normals_jvp(type(leaf)(tangents[key])))
            saved.normals.append((mesh, mesh.vertex_normals, key, leaf))
            mesh.vertex_normals = leaf


def normals_gradients(saved: SavedValues, grads: dict) -> dict:
    """Add the gradients that the normals leaves of :func:`_attach_smooth_normals`
    received to their meshes' positions (after a reverse pass)."""
    for mesh, _, key, leaf in saved.normals:
        g = dr.grad(leaf)
        grads[key] = grads[key] + mesh.normals_vjp(g)
    return grads


def restore_values(scene: Any, params: SceneParameters, saved: dict) -> None:
    """Undo :func:`swap_in_leaves`."""
    for key, value in saved.items():
        params.store(key, value)
    for mesh, normals, _, _ in getattr(saved, "normals", ()):
        mesh.vertex_normals = normals
    # Detached: derivative passes swap fresh leaves in again, and buffers left
    # attached to the caller's variables would keep them alive (and be
    # differentiated for nothing) after the caller disables their gradients.
    with dr.suspend_grad():
        _rebuild_if_geometry(scene, params, list(saved))


def _rebuild_if_geometry(scene: Any, params: SceneParameters, keys: list) -> None:
    """Derived scene buffers after the parameters ``keys`` were replaced by
    grad-enabled copies of the same values (or restored): only the attached
    vertex buffers need recomputing."""
    if any(params.owner(k) in scene.shapes for k in keys):
        scene.refresh_attached()


class _RenderOp(dr.CustomOp):
    """Primal render + integrator-driven forward and reverse derivatives."""

    def eval(self, scene: Any, params: SceneParameters, inputs: dict, sensor: Any,
             integrator: SamplingIntegrator, seed: int, spp: int, seed_grad: int,
             spp_grad: int, terms: Optional[tuple]) -> Any:
        self.scene, self.params, self.keys = scene, params, list(inputs)
        self.terms = terms
        self.sensor, self.integrator = sensor, integrator
        self.seed_grad, self.spp_grad = seed_grad, spp_grad
        with dr.suspend_grad():
            return integrator.render(scene, sensor, seed, spp)

    def _swap_in(self, tangents: Optional[dict]) -> tuple:
        return swap_in_leaves(self.scene, self.params, self.keys, tangents)

    def _restore(self, saved: dict) -> None:
        restore_values(self.scene, self.params, saved)

    def forward(self) -> None:
        grads = self.grad_in("inputs")
        tangents = {k: grads[k] for k in self.keys}
        grad = forward_in_chunks(self.scene, self.params, self.keys, tangents, self.integrator,
                                 self.sensor, self.seed_grad, self.spp_grad, self.terms)
        self.set_grad_out(grad)

    def backward(self) -> None:
        grad_image = self.grad_out()
        with dr.isolate_grad(), dr.resume_grad():
            saved, fresh = self._swap_in(None)
            try:
                self.integrator.render_backward(self.scene, self.sensor, grad_image,
                                                self.seed_grad, self.spp_grad, self.terms)
                grads = normals_gradients(saved, {k: dr.grad(v) for k, v in fresh.items()})
            finally:
                self._restore(saved)
        self.set_grad_in("inputs", grads)

    def name(self) -> str:
        return "lumigrad.render"


def render(scene: Any, params: Optional[SceneParameters] = None, sensor: Union[int, Any] = 0,
           spp: Optional[int] = None, seed: int = 0, integrator: Optional[Any] = None,
           spp_grad: Optional[int] = None, seed_grad: Optional[int] = None,
           terms: Optional[Sequence[str]] = None) -> Any:
    """Render ``scene`` from ``sensor``; returns ``TensorXf(height, width, 3)``.

    Args:
        params: the scene's parameters (``traverse(scene)``). When given (or
            when omitted and some parameter has gradients enabled), the image is
            differentiable in every grad-enabled parameter.
        spp: samples per pixel (default: the sensor's sampler ``sample_count``).
        seed: seed of the primal samples.
        integrator: overrides the scene's integrator.
        spp_grad, seed_grad: samples and seed of the derivative passes
            (defaults: ``spp`` and a seed derived from ``seed`` that differs from it).
        terms: which parts of the derivatives to compute: ``'interior'`` and
            the boundary terms (``'primary'``, ...; see
            :data:`lumigrad.integrators.boundary.TERM_NAMES`). None: all.
    """
    from .scene.scene import Scene
    if not isinstance(scene, Scene):
        raise TypeError(f"render(): 'scene' must be a lumigrad Scene (from load_file, "
                        f"load_dict or cornell_box), got {type(scene).__name__}")
    if params is not None and not isinstance(params, SceneParameters):
        raise TypeError("render(): 'params' must be the SceneParameters of traverse(scene), "
                        f"got {type(params).__name__}")
    if params is not None and params.scene is not scene:
        raise ValueError("render(): 'params' belongs to a different scene")
    if not isinstance(sensor, (int, np.integer)) and sensor not in scene.sensors:
        raise TypeError("render(): 'sensor' must be an index into scene.sensors or one of "
                        f"its sensors, got {sensor!r}")
    if integrator is not None and not isinstance(integrator, SamplingIntegrator):
        raise TypeError("render(): 'integrator' must be an integrator object (e.g. "
                        "lumigrad.load_dict({'type': 'path'})), got "
                        f"{type(integrator).__name__}")
    for name, value in (("spp", spp), ("seed", seed), ("spp_grad", spp_grad),
                        ("seed_grad", seed_grad)):
        if value is not None and not isinstance(value, (int, np.integer)):
            raise TypeError(f"render(): '{name}' must be an integer, got {type(value).__name__}")
    for name, value in (("seed", seed), ("seed_grad", seed_grad)):
        if value is not None and not (0 <= int(value) < 2 ** 63):
            raise ValueError(f"render(): '{name}' must be in [0, 2^63), got {value}")
    sensor_obj = _resolve_sensor(scene, int(sensor) if isinstance(sensor, np.integer) else sensor)
    integrator = integrator if integrator is not None else _default_integrator(scene)
    if spp is None:
        spp = sensor_obj.sampler.sample_count
    spp = int(spp)
    if spp < 1:
        raise ValueError(f"spp must be at least 1, got {spp}")
    seed = int(seed)
    spp_grad = int(spp_grad) if spp_grad is not None else spp
    seed_grad = int(seed_grad) if seed_grad is not None else grad_seed(seed)
    if spp_grad < 1:
        raise ValueError(f"spp_grad must be at least 1, got {spp_grad}")

    if params is None:
        params = traverse(scene)
    inputs = {k: _raw(v) for k, v in params.grad_enabled_items().items()}
    inputs = _independent_inputs(params, inputs)
    if not inputs:
        with dr.suspend_grad():
            return _develop(integrator.render(scene, sensor_obj, seed, spp), scene, sensor_obj,
                            integrator, seed, spp)
    terms = check_terms(terms)
    _warn_boundary(scene, params, list(inputs), integrator, terms)
    return _develop(dr.custom(_RenderOp, scene, params, inputs, sensor_obj, integrator, seed,
                              spp, seed_grad, spp_grad, terms),
                    scene, sensor_obj, integrator, seed, spp)


def _develop(image: Any, scene: Any, sensor: Any, integrator: Any, seed: int, spp: int) -> Any:
    """A radiance image shaped by the film's ``pixel_format`` (luminance, XYZ,
    alpha; ``HDRFilm.develop``), as Mitsuba's film returns it."""
    film = sensor.film
    if getattr(film, "pixel_format", "rgb") == "rgb" or integrator.channels != 3 or \
            hasattr(integrator, "aovs"):
        return image

    def alpha() -> Any:
        from .integrators.coverage import CoverageIntegrator
        with dr.suspend_grad():
            return CoverageIntegrator(integrator).render(scene, sensor, seed + 0x5A17, spp)
    return film.develop(image, alpha)


def _independent_inputs(params: SceneParameters, inputs: dict) -> dict:
    """Leave out the normals of meshes whose normals were recomputed from
    positions that are inputs too: the render handles that dependency itself
    (``_attach_smooth_normals``), and Dr.Jit 1.5 loses one of the routes when a
    custom operation's inputs depend on each other."""
    from .geometry.mesh import Mesh
    positions = {id(params.owner(k)) for k in inputs if params.suffix(k) == "vertex_positions"}
    out = {}
    for k, v in inputs.items():
        owner = params.owner(k)
        if (params.suffix(k) == "vertex_normals" and isinstance(owner, Mesh)
                and owner.normals_follow_positions and id(owner) in positions):
            continue
        out[k] = v
    return out


def check_terms(terms: Optional[Sequence[str]]) -> Optional[tuple]:
    """Validate a ``terms`` selection (see :func:`render`)."""
    if terms is None:
        return None
    from .integrators.boundary import TERM_NAMES
    if isinstance(terms, str):
        terms = (terms,)
    out = tuple(terms)
    bad = [t for t in out if t not in TERM_NAMES]
    if bad:
        raise ValueError(f"unknown derivative term(s) {', '.join(map(repr, bad))}; expected "
                         f"some of {', '.join(TERM_NAMES)}")
    return out


def render_forward(scene: Any, params: SceneParameters, tangents: dict, sensor: Union[int, Any] = 0,
                   spp: Optional[int] = None, seed: int = 0,
                   integrator: Optional[Any] = None,
                   terms: Optional[Sequence[str]] = None) -> Any:
    """Forward-mode derivative image along ``tangents`` (``{key: tangent}``) alone.

    The same derivative as ``render(...)`` followed by ``dr.forward``, without
    rendering the primal image first (about half the cost). ``seed`` is the seed
    of the derivative pass itself; ``terms`` as in :func:`render`.
    """
    terms = check_terms(terms)
    sensor_obj = _resolve_sensor(scene, sensor)
    integrator = integrator if integrator is not None else _default_integrator(scene)
    spp = int(spp if spp is not None else sensor_obj.sampler.sample_count)
    if spp < 1:
        raise ValueError(f"spp must be at least 1, got {spp}")
    keys = list(tangents)
    for k in keys:
        if not params.is_differentiable(k):
            raise ValueError(f"scene parameter {k!r} is not differentiable")
    _warn_boundary(scene, params, keys, integrator, terms)
    return forward_in_chunks(scene, params, keys, tangents, integrator, sensor_obj, int(seed),
                             spp, terms)


def forward_in_chunks(scene: Any, params: SceneParameters, keys: list, tangents: dict,
                      integrator: Any, sensor: Any, seed: int, spp: int,
                      terms: Optional[tuple]) -> Any:
    """The forward-mode derivative image, in chunks of at most ``MAX_LANES``
    camera samples, each propagated in an isolated AD scope with leaves of its
    own (Dr.Jit 1.5 cannot propagate tangents through several symbolic loops of
    geometry derivatives in one scope). Chunk 0 uses ``seed``; explicitly set
    boundary budgets are shared among chunks in proportion to their samples."""
    from .integrators.base import MAX_LANES, mix_seed
    w, h = sensor.resolution
    per_chunk = max(1, MAX_LANES // max(1, w * h))
    chunks = [per_chunk] * (spp // per_chunk) + ([spp % per_chunk] if spp % per_chunk else [])
    total = None
    for i, n in enumerate(chunks):
        # The fresh leaves must live inside the isolated AD scope.
        with dr.isolate_grad(), dr.resume_grad():
            saved, _ = swap_in_leaves(scene, params, keys, tangents)
            try:
                image = integrator.render_forward(
                    scene, sensor, seed if i == 0 else mix_seed(seed, 0xC4, i), n, terms,
                    budget_scale=n / spp)
            finally:
                restore_values(scene, params, saved)
        if len(chunks) > 1:
            image = image * (n / spp)
            dr.eval(image)
        total = image if total is None else total + image
    return total
