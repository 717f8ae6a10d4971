"""Shared machinery of the sampling integrators: sample generation, passes, films.

An integrator's :meth:`SamplingIntegrator.sample` estimates the radiance of a
batch of camera rays; :meth:`render` turns it into an image:

* one Monte Carlo sample per lane: ``W·H·spp`` lanes per pass, split into
  several passes when that exceeds :data:`MAX_LANES` (so very high sample
  counts never run out of memory);
* the film position of a sample is its pixel centre plus an offset drawn from
  the reconstruction filter (filter importance sampling, see
  ``sensors/rfilter.py``); each pixel is the mean of its samples
  (``dr.block_sum``), so no atomics are needed;
* random numbers come from one PCG32 stream per lane. The seed and the pass
  index enter as *opaque* values so the compiled kernel is reused across
  seeds, passes and sample counts.

Three modes share one code path (so their random decisions are identical):
``'primal'`` (no derivatives), ``'forward'`` (the loop runs with AD enabled and
Dr.Jit propagates tangents through it) and ``'backward'`` (path replay
backpropagation: a second pass replays each path and back-propagates local
contributions, Vicini et al. 2021, "Path Replay Backpropagation: Differentiating
Light Paths using Constant Memory and Linear Time", ACM TOG 40(4)).

Path replay needs each path's total radiance before it starts, hence a primal
pass before the replay. When the integrator offers a *tape*
(:meth:`SamplingIntegrator.make_tape`, per-lane local memory, constant in the
number of samples), the primal pass writes on it and the replay runs in the
same kernel, reading it back instead of tracing rays again:

* a *hit tape* (one 32-bit word per vertex, at most 64): each vertex's triangle
  and shadow-ray outcome; the replay shades every vertex again (about 0.4 of a
  render for the Cornell box, against 1.1 when re-tracing);
* *vertex records* (``replay.py``), when geometry and camera carry no
  gradient: each vertex's detached directions, weights and radiance; the replay
  only evaluates the factors attached to grad-enabled materials and emitters,
  and their adjoints (about 0.1 of a render).

Vertices beyond the tape are replayed by tracing again. Global memory stays
constant in the path length.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import time
from typing import Any, Callable, Iterator, Optional

import drjit as dr

from .. import backend as bk
from ..scene.schema import Param

#: Scene-file parameters of the boundary-term sample budgets (see
#: ``SamplingIntegrator.BUDGETS``), shared by the differentiable integrators.
BUDGET_PARAMS = {
    "sppe": Param("int", None, min=0,
                  doc="primary edge samples per pixel of edge (None: spp where paths go "
                      "beyond direct light, else spp / 2)"),
    "sppse": Param("int", None, min=0,
                   doc="shadow edge samples per pixel on surfaces the camera sees "
                       "(None: spp / 4; spp where shapes move out of the camera's view)"),
    "sppie": Param("int", None, min=0,
                   doc="edge and shadow samples per pixel at later path vertices (None: spp)"),
}

#: Lanes (samples) per pass; larger sample counts are split into several passes.
MAX_LANES = 1 << 23


def mix_seed(*values: int) -> int:
    """A 64-bit hash of integers (seed, pass, ...): decorrelates PCG32 streams."""
    h = hashlib.blake2b(digest_size=8)
    for v in values:
        h.update(int(v).to_bytes(8, "little", signed=True))
    return int.from_bytes(h.digest(), "little") & 0x7FFFFFFFFFFFFFFF


def grad_seed(seed: int) -> int:
    """The default seed of the differentiation pass derived from the primal seed.

    It differs from ``seed`` so that the primal image and its derivative use
    independent samples (correlated samples bias gradients of non-linear losses
    such as L2; see Vicini et al. 2021, §3.2, and Mitsuba's ``seed_grad``).
    """
    return mix_seed(seed, 0x6C756D69) & 0x7FFFFFFF


class SamplingIntegrator:
    """Base class of ``path``, ``direct`` and ``aov``."""

    #: number of output channels of the image
    channels: int = 3

    #: Samples per pixel of the boundary terms (``boundary/``): primary edges,
    #: shadow edges of surfaces the camera sees, and edges/shadows seen from
    #: later path vertices. None: the interior's ``spp``; 0 turns a term off.
    BUDGETS = ("sppe", "sppse", "sppie")

    #: :meth:`radiance` takes ``first_bary`` (the first vertex given as a point
    #: of ``first_prim``): shading rims then take their two sides at the rim
    #: point itself (``boundary/rims.py``).
    rim_sides_at_point: bool = False

    def __init__(self, id: Optional[str] = None, sppe: Optional[int] = None,
                 sppse: Optional[int] = None, sppie: Optional[int] = None) -> None:
        self.id = id
        for name, value in (("sppe", sppe), ("sppse", sppse), ("sppie", sppie)):
            if value is not None and (not isinstance(value, (int,)) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer or None, got {value!r}")
        self.sppe, self.sppse, self.sppie = sppe, sppse, sppie

    # -- to implement ----------------------------------------------------------
    def sample(self, scene: Any, rng: Any, o: Any, d: Any, tmax: Any, active: Any,
               mode: str = "primal", delta_L: Any = None, L_primal: Any = None,
               camera: Any = None, first_prim: Any = None) -> Any:
        """Radiance (Array3f, or an ArrayXf of ``channels``) along each ray.

        ``camera = (sensor, film_pos)`` lets derivative passes regenerate the
        primary ray attached to the sensor's parameters."""
        raise NotImplementedError

    def radiance(self, scene: Any, rng: Any, o: Any, d: Any, tmax: Any, active: Any,
                 resume: Optional[dict] = None, first_prim: Any = None) -> list:
        """Primal (detached) estimate of what :meth:`sample` returns along rays
        ``(o, d)``, as a list of one Float per channel: the narrow entry point
        through which boundary terms measure jumps of the integrand.

        ``resume`` (path tracers): the ray leaves a path vertex instead of the
        camera; a dict with ``depth`` (segments already used), ``prev_p`` (the
        vertex), ``prev_pdf`` (solid-angle density with which the ray's
        direction was sampled there, for MIS with emitters it hits; 0 counts
        no emission at the first hit) and ``prev_delta``. ``first_prim``: the
        triangle the rays hit first, where given (a ray grazing an edge may
        miss the face beside it by rounding)."""
        with dr.suspend_grad():
            L = self.sample(scene, rng, o, d, tmax, active, mode="primal", first_prim=first_prim)
        return [L[c] for c in range(len(L))]

    def radiance_pair(self, scene: Any, rng: Any, ray_a: tuple, ray_b: tuple, active: Any,
                      resume: Optional[dict] = None, first_prims: tuple = (None, None),
                      first_bary: Any = None) -> tuple:
        """:meth:`radiance` along two rays ``(o, d, tmax)`` with the same random
        numbers: the two sides of a discontinuity, whose difference a boundary
        term needs (common random numbers keep it small where both sides see
        alike). Returns ``(L_a, L_b)``; ``rng`` is left as side ``a`` leaves it.
        ``first_prims``: each side's first triangle where known (``0xFFFFFFFF``
        or None: trace it); ``first_bary``: the point of the first triangle both
        sides start from, or a pair, one per side (integrators with
        ``rim_sides_at_point``; see :meth:`radiance`).

        The two estimates run one after the other in a loop of two iterations,
        so the kernel holds one copy of the estimator's code, not two (half the
        compilation time of the boundary terms' kernels for the same work)."""
        n = dr.width(active)
        state0, inc0 = rng.state, rng.inc
        fp_a, fp_b = first_prims
        if (fp_a is None) != (fp_b is None):     # one side given: the other traces
            fp_a, fp_b = (bk.UInt32(0xFFFFFFFF) if f is None else f for f in (fp_a, fp_b))
        zeros = [dr.zeros(bk.Float, n) for _ in range(self.channels)]

        def cond(side: Any, *_: Any) -> Any:
            return side < 2

        def body(side: Any, L_a: list, L_b: list, state_a: Any, inc_a: Any) -> tuple:
            second = side == 1
            r = type(rng)(rng)
            r.state, r.inc = state0, inc0          # the same random numbers on both sides
            o, d, t = (dr.select(second, b, a) for a, b in zip(ray_a, ray_b))
            fp = None if fp_a is None else dr.select(second, fp_b, fp_a)
            bary = first_bary
            if isinstance(bary, tuple):
                bary = dr.select(second, bary[1], bary[0])
            extra = {} if bary is None else dict(first_bary=bary)
            L = self.radiance(scene, r, o, d, t, active, resume, first_prim=fp, **extra)
            L_a = [dr.select(second, x, y) for x, y in zip(L_a, L)]
            L_b = [dr.select(second, y, x) for x, y in zip(L_b, L)]
            return (side + 1, L_a, L_b, dr.select(second, state_a, r.state),
                    dr.select(second, inc_a, r.inc))

        _, L_a, L_b, rng.state, rng.inc = dr.while_loop(
            (dr.zeros(bk.UInt32, n), list(zeros), list(zeros), state0, inc0), cond, body,
            label="lumigrad.radiance_pair")
        return L_a, L_b

    def make_tape(self, scene: Any, sensor: Any, n: int) -> Any:
        """Per-lane storage that lets ``render_backward`` replay paths without
        tracing their rays again (see ``PathIntegrator.sample``); None: replay
        by re-tracing."""
        return None

    @contextlib.contextmanager
    def derivative_estimator(self, scene: Any, sensor: Any) -> Iterator[None]:
        """The estimator that the derivative passes differentiate.

        While shapes or lights move (boundary terms are needed), emitters are
        counted through next-event estimation alone, without MIS with the
        emitter hits of BSDF-sampled rays (an unbiased estimator of the same
        image). Each sampling technique of a MIS combination has its own
        boundary term, in its own variables; with next-event estimation alone,
        the shadow boundary term (``boundary/shadow.py``) is the only one that
        direct illumination needs. Path tracers also switch to the estimator of
        ``pathgeo.py``, whose variables the boundary terms are written in."""
        from . import boundary
        old = getattr(self, "emitter_mis", None), getattr(self, "pathspace", None)
        if old[0] is not None:
            m = boundary.moves_geometry(scene, sensor)
            self.emitter_mis = not (m["shapes"] or m["sensor"] or m["lights"] or m["normals"])
        if old[1] is not None:
            self.pathspace = not self.emitter_mis
        try:
            yield
        finally:
            if old[0] is not None:
                self.emitter_mis = old[0]
            if old[1] is not None:
                self.pathspace = old[1]

    # -- rendering ---------------------------------------------------------------
    def _passes(self, scene: Any, sensor: Any, spp: int) -> list[int]:
        w, h = sensor.resolution
        per_pass = max(1, min(spp, MAX_LANES // max(1, w * h)))
        out = [per_pass] * (spp // per_pass)
        if spp % per_pass:
            out.append(spp % per_pass)
        return out

    def _camera_rays(self, scene: Any, sensor: Any, seed: int, pass_index: int,
                     spp_pass: int) -> tuple:
        """Per-lane RNG, pixel index and primary ray for one pass."""
        w, h = sensor.resolution
        n = w * h * spp_pass
        lane = dr.arange(bk.UInt32, n)
        spp_o = dr.opaque(bk.UInt32, spp_pass)
        pixel = lane // spp_o
        state = dr.opaque(bk.UInt64, mix_seed(seed, pass_index))
        rng = bk.PCG32(size=n, initstate=state)
        # Film size as opaque values: one compiled kernel serves every resolution.
        w_o = dr.opaque(bk.UInt32, w)
        px = bk.Float(pixel % w_o)
        py = bk.Float(pixel // w_o)
        rf = sensor.film.rfilter
        ux = rng.next_float32()
        uy = rng.next_float32()
        ox = rf.sample(ux)
        oy = rf.sample(uy)
        # Filters with negative lobes: offsets drawn in proportion to |f|, each
        # sample weighted by about sign(f) ∫|f| / ∫f per axis (sensors/rfilter_signed.py).
        self._last_sample_weight = (rf.sample_weight(ux, ox) * rf.sample_weight(uy, oy)
                                    if getattr(rf, "signed", False) else None)
        pos = bk.Array2f((px + 0.5 + ox) * dr.opaque(bk.Float, 1.0 / w),
                         (py + 0.5 + oy) * dr.opaque(bk.Float, 1.0 / h))
        o, d, tmax = sensor.sample_ray(pos)
        self._last_film_pos = pos
        return rng, pixel, o, d, tmax

    def _to_image(self, L: Any, spp_pass: int, w: int, h: int) -> Any:
        """Per-pixel sums of per-sample values, as a flat interleaved array."""
        # One kernel computes every channel; block sums then read the results
        # (without this each channel's reduction would re-run the megakernel).
        dr.eval(L)
        chans = [dr.block_sum(L[c], spp_pass) for c in range(len(L))]
        flat = dr.zeros(bk.Float, w * h * len(chans))
        idx = dr.arange(bk.UInt32, w * h) * len(chans)
        for c, v in enumerate(chans):
            dr.scatter(flat, v, idx + c)
        return flat

    def render(self, scene: Any, sensor: Any, seed: int = 0, spp: int = 16,
               mode: str = "primal", progress: Optional[Callable[[int, int], None]] = None) -> Any:
        """Render an image ``TensorXf(H, W, channels)``.

        ``mode='forward'``: call with grad-enabled parameters under
        ``dr.resume_grad()``; the returned image is attached to them.
        """
        if spp < 1:
            raise ValueError(f"spp must be at least 1, got {spp}")
        w, h = sensor.resolution
        total = None
        passes = self._passes(scene, sensor, spp)
        for i, spp_pass in enumerate(passes):
            rng, pixel, o, d, tmax = self._camera_rays(scene, sensor, seed, i, spp_pass)
            L = self.sample(scene, rng, o, d, tmax, dr.full(bk.Bool, True, dr.width(pixel)),
                            mode=mode)
            if self._last_sample_weight is not None:
                L = [L[c] * self._last_sample_weight for c in range(len(L))]
            img = self._to_image(L, spp_pass, w, h)
            if mode == "primal":
                dr.eval(img)
            total = img if total is None else total + img
            if progress is not None:
                dr.sync_thread()
                progress(i + 1, len(passes))
        return bk.TensorXf(total * (1.0 / spp), shape=(h, w, self.channels))

    def render_forward(self, scene: Any, sensor: Any, seed: int, spp: int,
                       terms: Optional[tuple] = None, budget_scale: float = 1.0) -> Any:
        """Forward-mode derivative image (``TensorXf``): propagates the tangents
        currently set on grad-enabled scene parameters through the integrator.

        Each pass evaluates only the per-sample tangents (one kernel; the primal
        values the loop needs are recomputed inside it), then block-sums them.
        The boundary terms (``boundary/``) that the enabled gradients need are
        added. ``terms``: the names of the parts to include (``'interior'`` and
        those of :data:`boundary.TERM_NAMES`); None: all. ``budget_scale``
        scales explicitly set boundary budgets (``render.forward_in_chunks``).
        """
        from . import boundary
        _refuse_signed_filter(sensor)
        with self.derivative_estimator(scene, sensor):
            return self._render_forward(scene, sensor, seed, spp, terms, boundary, budget_scale)

    def _render_forward(self, scene: Any, sensor: Any, seed: int, spp: int,
                        terms: Optional[tuple], boundary: Any, budget_scale: float = 1.0) -> Any:
        w, h = sensor.resolution
        # Every part's per-sample tangents, propagated in *one* traversal:
        # Dr.Jit 1.5 can refuse a second forward traversal of a graph that
        # holds symbolic loops inside the render op's isolated AD scope.
        outputs = []
        if terms is None or "interior" in terms:
            for i, spp_pass in enumerate(self._passes(scene, sensor, spp)):
                with dr.suspend_grad():
                    rng, pixel, o, d, tmax = self._camera_rays(scene, sensor, seed, i, spp_pass)
                    pos = self._last_film_pos
                with dr.resume_grad():
                    L = self._interior_forward(scene, sensor, rng, o, d, tmax, pos, terms, spp)
                from .pathgeo import forward_parts
                values, combine = forward_parts(L)

                def finish(grads: list, n: int = spp_pass, combine: Any = combine) -> Any:
                    return self._to_image(combine(grads), n, w, h) * (1.0 / spp)
                outputs.append((values, finish))
        outputs += boundary.forward_outputs(scene, sensor, self, seed, spp, self.channels, terms,
                                            budget_scale)
        total = dr.zeros(bk.Float, w * h * self.channels)
        if outputs:
            values = [v for vals, _ in outputs for v in vals]
            with dr.resume_grad():
                # (AllowNoGrad: a parameter may simply not influence this image.)
                dr.forward_to(*values, flags=dr.ADFlag.ClearInterior | dr.ADFlag.AllowNoGrad)
                grads = [dr.detach(dr.grad(v)) for v in values]
            k = 0
            for vals, finish in outputs:
                total = total + finish(grads[k:k + len(vals)])
                k += len(vals)
        return bk.TensorXf(total, shape=(h, w, self.channels))

    def render_backward(self, scene: Any, sensor: Any, grad_image: Any, seed: int,
                        spp: int, terms: Optional[tuple] = None) -> None:
        """Path replay backpropagation of ``grad_image`` (dLoss/dImage) into the
        gradients of every grad-enabled scene parameter (accumulated), plus the
        boundary terms (``terms`` as in :meth:`render_forward`)."""
        from . import boundary
        _refuse_signed_filter(sensor)
        with self.derivative_estimator(scene, sensor):
            self._render_backward(scene, sensor, grad_image, seed, spp, terms, boundary)

    def _render_backward(self, scene: Any, sensor: Any, grad_image: Any, seed: int,
                         spp: int, terms: Optional[tuple], boundary: Any) -> None:
        w, h = sensor.resolution
        g = dr.detach(grad_image).array if hasattr(grad_image, "array") else grad_image
        boundary.backward(scene, sensor, self, g, seed, spp, self.channels, terms)
        if terms is not None and "interior" not in terms:
            return
        for i, spp_pass in enumerate(self._passes(scene, sensor, spp)):
            self._interior_backward(scene, sensor, g, seed, i, spp_pass, spp, terms)

    def _interior_forward(self, scene: Any, sensor: Any, rng: Any, o: Any, d: Any, tmax: Any,
                          film_pos: Any, terms: Optional[tuple] = None, spp: int = 1) -> Any:
        """Per-sample estimates attached to the parameters (tangents set)."""
        return self.sample(scene, rng, o, d, tmax, dr.full(bk.Bool, True, dr.width(rng.state)),
                           mode="forward", camera=(sensor, film_pos))

    def _interior_backward(self, scene: Any, sensor: Any, g: Any, seed: int, i: int,
                           spp_pass: int, spp: int, terms: Optional[tuple] = None) -> None:
        """Reverse pass ``i`` of the interior (path replay backpropagation)."""
        if True:
            # 1) primal pass: per-sample radiance (detached); with a hit tape it
            #    also records every vertex's hit and shadow ray, and stays
            #    unevaluated so that the replay below runs in the same kernel.
            # (The tape's layout depends on which parameters carry gradients.)
            tape = self.make_tape(scene, sensor, sensor.resolution[0] * sensor.resolution[1]
                                  * spp_pass)
            with dr.suspend_grad():
                rng, pixel, o, d, tmax = self._camera_rays(scene, sensor, seed, i, spp_pass)
                act = dr.full(bk.Bool, True, dr.width(pixel))
                if tape is None:
                    L = self.sample(scene, rng, o, d, tmax, act, mode="primal")
                    dr.eval(L)
                else:
                    L, tape = self.sample(scene, rng, o, d, tmax, act, mode="primal", tape=tape)
            # 2) adjoint pass: same random numbers, replay and back-propagate
            with dr.suspend_grad():
                rng, pixel, o, d, tmax = self._camera_rays(scene, sensor, seed, i, spp_pass)
                pos = self._last_film_pos
            delta_L = bk.Array3f(*[dr.gather(bk.Float, g, pixel * self.channels + c)
                                   for c in range(3)]) * (1.0 / spp)
            act = dr.full(bk.Bool, True, dr.width(pixel))
            self.sample(scene, rng, o, d, tmax, act, mode="backward",
                        delta_L=delta_L, L_primal=L, camera=(sensor, pos),
                        **({} if tape is None else {"tape": tape}))
            dr.eval()


def _refuse_signed_filter(sensor: Any) -> None:
    rf = sensor.film.rfilter
    if getattr(rf, "signed", False):
        raise NotImplementedError(
            f"derivatives with the '{type(rf).PLUGIN[1]}' reconstruction filter (negative "
            "lobes) are not supported yet; use 'gaussian', 'tent' or 'box' for derivative "
            "renders")


def mis_weight(pdf_a: Any, pdf_b: Any) -> Any:
    """Power heuristic (β = 2) of Veach & Guibas 1995, "Optimally Combining
    Sampling Techniques for Monte Carlo Rendering"; detached."""
    a2 = dr.square(dr.detach(pdf_a))
    b2 = dr.square(dr.detach(pdf_b))
    return dr.select(a2 > 0, a2 / dr.maximum(a2 + b2, 1e-38), 0.0)


def shadow_segment(si: Any, d_em: Any, dist_em: Any) -> tuple:
    """The shadow ray of an emitter sample ``(d_em, dist_em)`` at ``si``, detached:
    ``(origin, direction, length)``. It starts at the offset origin and is re-aimed
    *at the sampled emitter point* (the offset moved the origin off the sampled
    ray), stopping a relative margin short of it; emitters at infinity: along
    ``d_em`` without end."""
    p_ref = dr.detach(si.p)
    origin = dr.detach(si.spawn_origin(d_em))
    finite = ~dr.isinf(dist_em)
    target = p_ref + dr.detach(d_em) * dr.select(finite, dr.detach(dist_em), 0.0)
    seg = target - origin
    seg_len = dr.norm(seg)
    d_shadow = dr.select(finite & (seg_len > 0), seg / dr.maximum(seg_len, 1e-30),
                         dr.detach(d_em))
    return origin, d_shadow, dr.select(finite, seg_len * (1.0 - 1e-4), dr.inf)


class Timer:
    """Wall clock around Dr.Jit work (syncs the device first)."""

    def __enter__(self) -> "Timer":
        dr.sync_thread()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        dr.sync_thread()
        self.seconds = time.perf_counter() - self.t0


def isfinite_all(x: Any) -> bool:
    return bool(dr.all(dr.isfinite(x), axis=None))


__all__ = ["SamplingIntegrator", "mis_weight", "mix_seed", "grad_seed", "MAX_LANES", "Timer",
           "isfinite_all", "math"]
