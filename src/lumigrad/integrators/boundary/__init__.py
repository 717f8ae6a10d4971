"""Boundary (edge) terms: the part of geometry and camera derivatives that
plain automatic differentiation of a renderer misses.

A pixel is an integral ``I = ∫ f(x, θ) dx`` of a function that jumps where
visibility or shading changes abruptly: at silhouettes, creases and shadow
edges. When θ moves those discontinuities, Reynolds' transport theorem splits
the derivative in two (e.g. Li et al. 2018, "Differentiable Monte Carlo Ray
Tracing through Edge Sampling", ACM TOG 37(6); Zhang et al. 2020, "Path-Space
Differentiable Rendering", ACM TOG 39(4)):

    dI/dθ = ∫ ∂f/∂θ dx  +  ∫_Γ (f⁻ − f⁺) v_n dℓ

The first, *interior* term is what the integrators' forward and reverse passes
compute (AD of the estimator with its samples held fixed). The second is a
family of integrals over the discontinuity curves Γ in the space of those
samples, with ``f⁻ − f⁺`` the jump across Γ and ``v_n`` its normal velocity.
The velocity must be measured in the same variables that the interior
estimator holds fixed, or the split is wrong: lumigrad's integrators hold the
film position of a camera ray, the local-frame direction of a BSDF sample and
the surface (material) point of an emitter sample fixed, and every term below
measures motion relative to those.

Each term here is a separate estimator that returns, per sample, a film
position and a value *attached to the scene parameters and zero in value*
(``ΔF · (x − detach(x))``-style, DESIGN.md), so that the same expression
gives forward-mode derivative images (``dr.forward_to``) and reverse-mode
gradients (``dr.backward_from``):

* :mod:`.primary`: edges seen by the camera (silhouettes, creases, open
  boundaries; camera parameters included), with :mod:`.rims` (the edges of
  the dark rims of smooth shading inside triangles) and
  :class:`.horizons.SmoothEdgeHorizons` (smooth edges across which the light
  a face's own plane lets through jumps) and :mod:`.intersections` (the
  curves where surfaces pass through each other), under the same name;
* :mod:`.shadow`: edges between a surface the camera sees and an emitter
  (shadows of next-event estimation), with
  :class:`.horizons.SurfaceHorizons` (the horizon of each face the camera
  sees, turning with it) under the same name;
* :mod:`.visible` and :mod:`.indirect` (together the ``indirect`` term):
  edges seen from the surfaces the camera sees (sampled edge first), and
  edges and shadow lines seen from the later vertices of camera paths
  (inter-reflections), with :mod:`.vertex_rims` (shading rims of smooth
  meshes seen from path vertices).

Sample budgets are per term (like PSDR's ``sppe``/``sppse``): samples per
pixel of the film, ``0`` turning the term off, ``None`` taking a share of the
interior's ``spp`` (``BoundaryTerm.share``: ``sppe = spp`` for paths beyond
direct light, ``spp/2`` else, ``sppse = spp/4``, or ``spp`` where shapes
move out of the camera's view, ``sppie = spp``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import drjit as dr

from ... import backend as bk
from ..base import MAX_LANES, mix_seed


@dataclass
class BoundarySample:
    """A batch of boundary-term samples.

    ``pos``: film position (pixels, detached) where each sample's value lands
    (splatted through the reconstruction filter); ``value``: one Float per
    image channel, attached to the scene parameters, zero in value, already
    divided by the sampling density and the sample count; ``valid``: lanes
    that contribute."""

    pos: Any
    value: list
    valid: Any


class BoundaryTerm:
    """One boundary-term estimator (see the module docstring)."""

    #: short name, used in ``derivative_image(..., terms=...)``
    name: str = ""
    #: integrator attribute holding this term's samples per pixel
    budget: str = ""
    #: the budget where the integrator leaves it unset (None), as a fraction of
    #: the interior's ``spp``: chosen for the least error at equal time on the
    #: benchmark cases (see BENCHMARKS.md)
    default_share: float = 1.0

    def share(self, integrator: Any, scene: Any, sensor: Any) -> float:
        """:attr:`default_share` for ``integrator`` (subclasses may choose by it
        and by the scene as it is now: the same in forward and reverse mode)."""
        return self.default_share

    def needed(self, scene: Any, sensor: Any, integrator: Any) -> bool:
        """Whether this term can be non-zero for the gradients enabled now."""
        raise NotImplementedError

    def sample_count(self, scene: Any, sensor: Any, integrator: Any, budget: int) -> int:
        """How many samples ``budget`` (the term's samples per pixel) means:
        per pixel of the film by default."""
        w, h = sensor.resolution
        return int(math.ceil(budget * w * h))

    def sample(self, scene: Any, sensor: Any, integrator: Any, rng: Any,
               total: int) -> BoundarySample:
        """``dr.width(rng)`` samples of the term; ``total`` is the number of
        samples of this pass and all others (the value is divided by it)."""
        raise NotImplementedError

    def distribution(self, scene: Any, sensor: Any) -> Any:
        """The term's sampling tables (``_distribution``, detached) for the
        scene's vertices and the camera as they are now, kept until either
        changes (a derivative pass asks for them several times)."""
        sensor = getattr(sensor, "distribution_view", sensor)    # (a thin lens)
        key = view_key(scene, sensor) + (self._cache_key(),)
        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        out = self._distribution(scene, sensor)
        self._cache = (key, out)
        return out

    def _distribution(self, scene: Any, sensor: Any) -> Any:
        raise NotImplementedError

    def _cache_key(self) -> tuple:
        """What else the tables depend on (see subclasses)."""
        return ()


class PrimaryPart(BoundaryTerm):
    """A part of the ``primary`` term: camera edges, shading rims, smooth-edge
    horizons and intersection curves share its name and its budget ``sppe``
    (by default ``spp`` where paths go beyond direct light, else ``spp/2``);
    each part sets its own ``seed_salt``."""

    name = "primary"
    budget = "sppe"
    default_share = 0.5
    #: ... where paths go beyond direct light: there an edge sample's two
    #: radiance estimates cost less than an interior path differentiated along
    #: its length, and the term's noise is a larger part of the total (8 seeds,
    #: error² × time: Cornell box 64 spp 16.6e-3 → 14.0e-3, a sphere 1.02e-3 →
    #: 0.70e-3, a cube and the camera 0.33e-3 → 0.24e-3; with ``direct`` the
    #: 131k-triangle blob's rotation stays at spp/2: 0.161e-3 → 0.177e-3 at 64
    #: spp; BENCHMARKS.md)
    path_share = 1.0

    def share(self, integrator: Any, scene: Any, sensor: Any) -> float:
        depth = getattr(integrator, "max_depth", 2)
        return self.path_share if (depth < 0 or depth > 2) else self.default_share


def view_key(scene: Any, sensor: Any) -> tuple:
    """What tables computed from the scene's vertices and the camera depend on
    (they are kept until it changes)."""
    return (id(scene), id(sensor), scene._positions_np.ctypes.data,
            sensor.to_world.numpy().tobytes(),
            None if sensor.x_fov is None else float(dr.detach(sensor.x_fov)[0]))


def per_sample(total: float) -> Any:
    """``1 / total`` (a term's sample count) as an opaque kernel input: counts
    follow the geometry, and as a literal it made every step of a shape
    optimisation compile the term's kernels anew (~0.2-0.4 s a step)."""
    return dr.opaque(bk.Float, 1.0 / total)


def moves_geometry(scene: Any, sensor: Any) -> dict:
    """Which kinds of scene quantities carry gradients now: ``'shapes'``
    (vertex positions or transforms, hence edges, surfaces and area lights),
    ``'sensor'`` (to_world, fov), ``'lights'`` (positions/directions of
    lights that are not shapes) and ``'normals'`` (vertex normals, which move
    the rims of smooth shading even where nothing else moves). (Answers the
    same inside ``dr.suspend_grad()``.)"""
    with dr.resume_grad():
        return _moves_geometry(scene, sensor)


def _moves_geometry(scene: Any, sensor: Any) -> dict:
    lens = getattr(sensor, "lens", sensor)      # (a thin lens's pinhole: the lens)
    out = {"shapes": bool(dr.grad_enabled(scene.positions)),
           "sensor": bool(dr.grad_enabled(sensor.to_world.matrix) or
                          dr.grad_enabled(sensor.x_fov) or
                          dr.grad_enabled(getattr(lens, "aperture_radius", None)) or
                          dr.grad_enabled(getattr(lens, "focus_distance", None))),
           "lights": False,
           "normals": bool(scene.has_normals and dr.grad_enabled(scene.normals))}
    others = scene.emitters[len(scene.area_emitters):]
    if others:
        p = bk.Array3f(0.25, 0.5, 0.75)
        s = bk.Array2f(0.3, 0.6)
        for e in others:
            ds = e.sample_direction(p, s, bk.Bool(True))
            if dr.grad_enabled(ds.d) or dr.grad_enabled(ds.dist):
                out["lights"] = True
    return out


def smooth_shading_moves(scene: Any, sensor: Any, integrator: Any, normals: bool) -> bool:
    """Whether the terms of smooth shading (rims, horizons) can be non-zero:
    a path tracer, smooth shapes, and moving shapes or camera (or, with
    ``normals``, vertex normals alone)."""
    if not scene.has_normals or not hasattr(integrator, "max_depth"):
        return False
    m = moves_geometry(scene, sensor)
    return m["shapes"] or m["sensor"] or (normals and m["normals"])


def moves_shadows(scene: Any, sensor: Any) -> bool:
    """Whether the gradients enabled now can move shadows (shapes or lights)."""
    m = moves_geometry(scene, sensor)
    return m["shapes"] or m["lights"]


def all_terms() -> list:
    from .primary import PrimaryEdges
    from .shadow import ShadowEdges
    from .indirect import IndirectEdges
    from .rims import ShadingRims
    from .horizons import SmoothEdgeHorizons, SurfaceHorizons
    from .visible import VisibleSurfaceEdges
    from .intersections import IntersectionCurves
    return [PrimaryEdges(), ShadingRims(), SmoothEdgeHorizons(), IntersectionCurves(),
            ShadowEdges(), SurfaceHorizons(), VisibleSurfaceEdges(), IndirectEdges()]


TERM_NAMES = ("interior", "primary", "shadow", "indirect")


def limitations(scene: Any, integrator: Any, terms: Optional[tuple] = None) -> list:
    """What the derivatives of moving geometry, camera or lights will miss in
    ``scene`` rendered with ``integrator``: terms switched off (a zero budget,
    ``terms`` leaving them out) and configurations no term handles yet."""
    notes = []
    for term in all_terms():
        note = f"the {term.name} boundary term is off ({term.budget}=0)"
        if getattr(integrator, term.budget, None) == 0 and note not in notes:
            notes.append(note)
    if not hasattr(integrator, "max_depth"):
        notes.append(f"the {type(integrator).__name__} integrator has only the primary "
                     "(camera) boundary term")
    refracting = [b for b in scene.bsdfs if getattr(b, "delta_only", False)
                  and type(b).__name__.endswith("Dielectric")]
    curved = [s for s in scene.shapes if s.vertex_normals is not None
              and getattr(s.bsdf, "delta_only", False)]
    if refracting or curved:
        notes.append("edges seen through refraction or in smoothly shaded (curved) mirrors "
                     "have no boundary term (planar mirrors do)")
    return notes


def _budget(scene: Any, sensor: Any, integrator: Any, term: BoundaryTerm, spp: int,
            scale: float = 1.0) -> float:
    value = getattr(integrator, term.budget, None)
    if value is not None:
        return float(value) * scale
    return float(spp) * term.share(integrator, scene, sensor)


def _passes(n_total: int) -> list[int]:
    out = [MAX_LANES] * (n_total // MAX_LANES)
    if n_total % MAX_LANES:
        out.append(n_total % MAX_LANES)
    return out


def _active_terms(scene: Any, sensor: Any, integrator: Any, terms: Optional[tuple]) -> list:
    out = []
    for term in all_terms():
        if terms is not None and term.name not in terms:
            continue
        if term.needed(scene, sensor, integrator):
            out.append(term)
    return out


def _iterate(scene: Any, sensor: Any, integrator: Any, seed: int, spp: int,
             terms: Optional[tuple], camera_path: bool, budget_scale: float = 1.0):
    """Yield ``(term, ...)`` for every pass of every active term of one kind:
    splatting terms give a :class:`BoundarySample`; camera-path terms
    (``camera_path = True``) give ``(rng, pixel, film_pos, spp_pass, spp_total)``."""
    w, h = sensor.resolution
    for term in _active_terms(scene, sensor, integrator, terms):
        # (Seeded by the term, not by its position among the active ones: the
        # parts of a derivative add up to the whole sample by sample.)
        k = TERM_NAMES.index(term.name)
        if getattr(term, "camera_path", False) != camera_path:
            continue
        if getattr(term, "rides_with_interior", False) and (terms is None or "interior" in terms):
            continue        # computed by the interior's own paths
        spp_term = _budget(scene, sensor, integrator, term, spp, budget_scale)
        if spp_term <= 0:
            continue
        if camera_path:
            spp_term = max(1, int(round(spp_term)))
            for i, spp_pass in enumerate(integrator._passes(scene, sensor, spp_term)):
                with dr.suspend_grad():
                    rng, pixel, _, _, _ = integrator._camera_rays(
                        scene, sensor, mix_seed(seed, 0xB1, k), i, spp_pass)
                    pos = integrator._last_film_pos
                yield term, (rng, pixel, pos, spp_pass, spp_term)
            continue
        # (A thin lens: each sample sees the scene through a lens point of its
        # own, an off-axis pinhole; the tables cover every lens point.)
        lens_view = getattr(sensor, "lens_view", None)
        n_total = term.sample_count(scene, table_view(sensor), integrator, spp_term)
        if n_total <= 0:
            continue
        salt = getattr(term, "seed_salt", None)
        for i, n in enumerate(_passes(n_total)):
            key = (seed, 0xB0, k, i) + (() if salt is None else (salt,))
            rng = bk.PCG32(size=n, initstate=dr.opaque(bk.UInt64, mix_seed(*key)))
            view = sensor
            if lens_view is not None:
                lens_rng = bk.PCG32(size=n, initstate=dr.opaque(bk.UInt64, mix_seed(*key, 0x1E45)))
                view = lens_view(bk.Array2f(lens_rng.next_float32(), lens_rng.next_float32()))
            yield term, term.sample(scene, view, integrator, rng, n_total)


def table_view(sensor: Any) -> Any:
    """What the terms' sampling tables see the scene through: the sensor, or
    for a thin lens every lens point at once (``ThinLensSensor.lens_hull``).
    The samples themselves see it through one lens point each (an off-axis
    pinhole, ``ThinLensSensor.lens_view``): the image is the mean over the
    lens, and so is its boundary term, with the interior estimator holding
    each camera ray's film position and lens point fixed."""
    hull = getattr(sensor, "lens_hull", None)
    return sensor if hull is None else hull()


def forward_outputs(scene: Any, sensor: Any, integrator: Any, seed: int, spp: int,
                    channels: int, terms: Optional[tuple] = None,
                    budget_scale: float = 1.0) -> list:
    """The boundary terms' forward-mode outputs: a list of ``(values, finish)``
    where ``values`` are attached per-sample Floats/arrays and ``finish(grads)``
    turns their tangents into a flat, interleaved ``W·H·channels`` image. The
    caller propagates all tangents at once (``dr.forward_to``)."""
    w, h = sensor.resolution
    film = sensor.film
    out = []
    for _, bs in _iterate(scene, sensor, integrator, seed, spp, terms, camera_path=False,
                          budget_scale=budget_scale):
        def splat(grads: list, bs: BoundarySample = bs) -> Any:
            image = dr.zeros(bk.Float, w * h * channels)
            for index, weight, valid in film.footprint(bs.pos):
                ok = valid & bs.valid
                for c in range(channels):
                    dr.scatter_reduce(dr.ReduceOp.Add, image, grads[c] * weight,
                                      index * channels + c, ok)
            return image
        out.append((list(bs.value), splat))
    for term, (rng, pixel, pos, spp_pass, spp_total) in _iterate(
            scene, sensor, integrator, seed, spp, terms, camera_path=True,
            budget_scale=budget_scale):
        with dr.resume_grad():
            L = term.trace(scene, sensor, integrator, rng, pos, "forward")
        from ..pathgeo import forward_parts
        values, combine = forward_parts(L)

        def block(grads: list, n: int = spp_pass, total: int = spp_total,
                  combine: Any = combine) -> Any:
            return integrator._to_image(combine(grads), n, w, h) * (1.0 / total)
        out.append((values, block))
    return out


def backward(scene: Any, sensor: Any, integrator: Any, grad_image: Any, seed: int, spp: int,
             channels: int, terms: Optional[tuple] = None) -> None:
    """Back-propagate ``grad_image`` (dLoss/dImage, flat interleaved) through
    every active boundary term into the parameters' gradients."""
    film = sensor.film
    flags = dr.ADFlag.ClearInterior | dr.ADFlag.AllowNoGrad
    for _, bs in _iterate(scene, sensor, integrator, seed, spp, terms, camera_path=False):
        adj = [dr.zeros(bk.Float, dr.width(bs.valid)) for _ in range(channels)]
        for index, weight, valid in film.footprint(bs.pos):
            ok = valid & bs.valid
            for c in range(channels):
                adj[c] += dr.select(ok, weight * dr.gather(bk.Float, grad_image,
                                                           index * channels + c, ok), 0.0)
        with dr.resume_grad():
            total = None
            for c in range(channels):
                term = bs.value[c] * adj[c]
                total = term if total is None else total + term
            dr.backward_from(total, flags=flags)
    for term, (rng, pixel, pos, spp_pass, spp_total) in _iterate(
            scene, sensor, integrator, seed, spp, terms, camera_path=True):
        delta = bk.Array3f(*[dr.gather(bk.Float, grad_image, pixel * channels + c)
                             for c in range(3)]) * (1.0 / spp_total)
        term.trace(scene, sensor, integrator, rng, pos, "backward", delta)
        dr.eval()
