"""Derivative images (forward mode) and finite-difference checks of every derivative.

``derivative_image(scene, key)`` is the Mitsuba forward-mode tutorial in one
call: enable gradients on a parameter, render, ``dr.forward``, ``dr.grad``.
``check_gradient(scene, key)`` compares three estimates of the same
derivative, all computed with *common random numbers* (the same samples):

* central finite differences ``(I(θ+εv) − I(θ−εv)) / 2ε``,
* forward mode along ``v`` (the derivative image),
* reverse mode: ``⟨∇_θ L, v⟩`` for the linear loss ``L = Σ w·I`` with fixed
  random weights ``w``, against ``Σ w·(forward image)``.

With the same samples the three estimate the derivative of the *same*
per-sample estimator, so they agree far more tightly than Monte Carlo noise:
forward and reverse to float precision, finite differences up to O(ε²) and
rounding. Russian roulette makes path lengths depend on θ and breaks this, so
the check renders with it disabled (and ``max_depth`` bounded); parameters that
steer sampling (roughness) would move the sampled directions, so sampling is
frozen at θ during the check (``bsdfs.frozen_sampling``).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

import drjit as dr
import numpy as np

from .. import backend as bk
from ..bsdfs import frozen_sampling
from ..geometry.transform import Transform4f
from ..render import render, render_forward
from ..scene.params import SceneParameters, traverse


def _leaf_like(value: Any) -> Any:
    """A fresh grad-enabled copy of a parameter value."""
    if isinstance(value, Transform4f):
        m = bk.Matrix4f(dr.detach(value.matrix))
        dr.enable_grad(m)
        return Transform4f(m)
    v = type(value)(dr.detach(value))
    dr.enable_grad(v)
    return v


def _raw(value: Any) -> Any:
    return value.matrix if isinstance(value, Transform4f) else value


def derivative_image(scene: Any, key_or_variable: Union[str, Any], spp: Optional[int] = None,
                     seed: int = 0, sensor: int = 0, params: Optional[SceneParameters] = None,
                     integrator: Any = None, direction: Any = None,
                     terms: Optional[Sequence[str]] = None) -> Any:
    """Forward-mode derivative of the rendered image, ``TensorXf(H, W, 3)``.

    ``key_or_variable`` is either a parameter key (``'green.reflectance.value'``:
    every component is seeded with 1, or with ``direction`` if given, as
    ``dr.forward(params[key])`` does) or a grad-enabled latent variable on which
    some parameters already depend (set them with ``params[key] = f(θ)`` and
    ``params.update()`` first). The scene is left as it was.

    ``terms`` selects parts of the derivative: ``'interior'`` (what automatic
    differentiation of the estimator gives) and the boundary terms of moving
    edges (``'primary'``, ...; see :data:`lumigrad.integrators.boundary.TERM_NAMES`).
    Their images add up to the whole derivative (None, the default).
    """
    if isinstance(key_or_variable, str):
        # Tangent pass only: no primal image is rendered (render_forward).
        params = params if params is not None else traverse(scene)
        key = key_or_variable
        if not params.is_differentiable(key):
            raise ValueError(f"scene parameter {key!r} is not differentiable")
        raw = _raw(params[key])
        if direction is None:
            tangent = dr.ones(type(raw)) if dr.is_matrix_v(raw) else dr.ones_like(dr.detach(raw))
        else:
            tangent = type(raw)(direction)
        return render_forward(scene, params, {key: tangent}, sensor=sensor, spp=spp,
                              seed=seed, integrator=integrator, terms=terms)
    variable = key_or_variable
    if not (isinstance(variable, dr.ArrayBase) and dr.grad_enabled(variable)):
        raise TypeError("derivative_image: expected a parameter key or a grad-enabled "
                        "Dr.Jit variable")
    params = params if params is not None else traverse(scene)
    image = render(scene, params, sensor=sensor, spp=spp, seed=seed, integrator=integrator,
                   seed_grad=seed, terms=terms)
    dr.set_grad(variable, 1.0 if direction is None else direction)
    # Keep the graph from the variable to the parameters: the caller may ask
    # for another derivative image (another part, another seed) of it.
    dr.forward_to(image, flags=dr.ADFlag.ClearInterior)
    dr.clear_grad(variable)
    return dr.grad(image)


@dataclass
class GradientReport:
    """Result of :func:`check_gradient` (errors are relative to the FD image's scale)."""

    key: str
    eps: float
    scale: float                      # max |block-averaged FD derivative|
    forward_vs_fd: list = field(default_factory=list)    # per channel, block-averaged
    forward_vs_fd_pixel: list = field(default_factory=list)  # per channel, per-pixel max
    reverse: float = 0.0              # <grad L, v>
    forward_dot: float = 0.0          # sum(w * forward image)
    fd_dot: float = 0.0               # sum(w * FD image)
    finite: bool = True
    #: 'exact': finite differences with the derivative's own samples (they
    #: differentiate the same estimator: agreement to O(eps²)); 'boundary':
    #: moving edges make the image discontinuous, so finite differences get
    #: ``fd_spp`` samples and the comparison is statistical.
    mode: str = "exact"
    block_rel_l1: float = 0.0         # 'boundary' mode: block relative L1 (8x8 blocks)
    fd_spp: int = 0
    tolerance: float = 0.05           # 'boundary' mode: the pass threshold of block_rel_l1
    #: 'boundary' mode: the noise levels that bound what ``block_rel_l1`` can
    #: show (same metric): the derivative's (a second seed against the first,
    #: / √2) and the finite differences' (their two halves, / 2)
    derivative_noise: float = 0.0
    fd_noise: float = 0.0
    spp: int = 0                      # the derivative's samples per pixel
    #: 'boundary' mode, ``retries``: the reports of the earlier, smaller
    #: budgets whose verdict was INCONCLUSIVE
    earlier: list = field(default_factory=list)

    @property
    def noise(self) -> float:
        """The error expected from noise alone ('boundary' mode)."""
        return float(np.hypot(self.derivative_noise, self.fd_noise))

    @property
    def verdict(self) -> str:
        """'PASS', 'FAIL', or in 'boundary' mode 'INCONCLUSIVE' where the error
        is above the tolerance but the noise alone could make it so (the
        budget is too small to tell: more samples will)."""
        if self.ok():
            return "PASS"
        if (self.mode == "boundary" and self.finite and self.reverse_vs_forward < 1e-3
                and self.noise > 0.5 * self.tolerance
                and self.block_rel_l1 <= self.tolerance + 2.0 * self.noise):
            return "INCONCLUSIVE"
        return "FAIL"

    @property
    def reverse_vs_forward(self) -> float:
        return abs(self.reverse - self.forward_dot) / max(abs(self.forward_dot), 1e-12)

    @property
    def reverse_vs_fd(self) -> float:
        return abs(self.reverse - self.fd_dot) / max(abs(self.fd_dot), 1e-12)

    def ok(self, tol: float = 0.02) -> bool:
        if self.mode == "boundary":
            return (self.finite and self.block_rel_l1 <= self.tolerance and
                    self.reverse_vs_forward < 1e-3)
        return (self.finite and max(self.forward_vs_fd) < tol and
                self.reverse_vs_forward < 1e-3 and self.reverse_vs_fd < tol)

    def __str__(self) -> str:
        ch = "RGB"
        lines = [f"gradient check of {self.key!r} (eps={self.eps:g}, derivative scale "
                 f"{self.scale:.4g})"]
        if self.mode == "boundary":
            for e in self.earlier:
                lines.append(f"  (at {e.spp} / {e.fd_spp} spp: block relative L1 "
                             f"{e.block_rel_l1:.3f}, noise {e.noise:.3f}: INCONCLUSIVE)")
            lines.append(f"  moving edges (boundary terms): forward ({self.spp} spp) vs finite "
                         f"differences ({self.fd_spp} spp): block relative L1 "
                         f"{self.block_rel_l1:.3f} "
                         f"(pass: <= {self.tolerance:g}); noise: derivative "
                         f"{self.derivative_noise:.3f}, finite differences {self.fd_noise:.3f}")
        for i, (b, p) in enumerate(zip(self.forward_vs_fd, self.forward_vs_fd_pixel)):
            lines.append(f"  {ch[i] if i < 3 else i}: forward vs finite differences: "
                         f"block-averaged {b:.2e}, worst pixel {p:.2e}")
        lines.append(f"  reverse <grad, v> = {self.reverse:.6g}; forward = "
                     f"{self.forward_dot:.6g} (rel. diff {self.reverse_vs_forward:.1e}); "
                     f"finite differences = {self.fd_dot:.6g} (rel. diff "
                     f"{self.reverse_vs_fd:.1e})")
        verdict = self.verdict
        if verdict == "INCONCLUSIVE":
            verdict += (" (the error is within what this budget's noise can make: rerun with "
                        "more samples, spp and fd_spp, or retries)")
        lines.append(f"  all finite: {self.finite}; verdict: {verdict}")
        return "\n".join(lines)


def _flatten(value: Any) -> np.ndarray:
    """A parameter value as a flat float64 vector (matrices row-major, as
    ``Matrix4f(array.reshape(4, 4))`` reads them back)."""
    if dr.is_matrix_v(value):
        return np.array(value, dtype=np.float64).reshape(4, 4).ravel()
    if dr.is_tensor_v(value):
        return np.array(value.array, dtype=np.float64).ravel()
    return np.array(dr.ravel(value), dtype=np.float64).ravel()


def _check_integrator(scene: Any, integrator: Any) -> Any:
    from ..render import _default_integrator
    integ = copy.copy(integrator if integrator is not None else _default_integrator(scene))
    if hasattr(integ, "rr_depth"):
        if getattr(integ, "max_depth", -1) < 0:
            integ.max_depth = 16
        integ.rr_depth = 1 << 30
    return integ


def _block_mean(a: np.ndarray, b: int) -> np.ndarray:
    h, w = a.shape[:2]
    h2, w2 = h // b * b, w // b * b
    a = a[:h2, :w2]
    return a.reshape(h2 // b, b, w2 // b, b, -1).mean(axis=(1, 3))


def transform_direction(value: Any, translate: Optional[Sequence[float]] = None,
                        rotate: Optional[Sequence[float]] = None,
                        centre: Optional[Sequence[float]] = None) -> np.ndarray:
    """The 4×4 tangent of a ``Transform4f`` parameter ``M`` for a motion applied
    on top of it: a translation by ``translate`` per unit, and/or a rotation
    about the axis ``rotate`` (its length: radians per unit) through
    ``centre``. That is ``d/dθ [T(c) R(θ) T(-c) Tr(θ t) M]`` at θ = 0, usable as
    ``direction`` of :func:`check_gradient` and :func:`derivative_image`."""
    m = value.numpy() if isinstance(value, Transform4f) else np.asarray(value, np.float64)
    g = np.zeros((4, 4))
    if rotate is not None:
        a = np.asarray(rotate, dtype=np.float64)
        k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
        c = np.zeros(3) if centre is None else np.asarray(centre, dtype=np.float64)
        g[:3, :3] = k
        g[:3, 3] = -k @ c
    if translate is not None:
        g[:3, 3] += np.asarray(translate, dtype=np.float64)
    return g @ m


def block_relative_l1(estimate: Any, reference: Any, block: int = 8) -> float:
    """Relative L1 error of block means: ``Σ|B(estimate) − B(reference)| /
    Σ|B(reference)|`` over ``block × block`` pixel blocks and all channels
    (the measure the boundary-term tests and benchmarks use: block averages
    let Monte Carlo noise cancel, and normalising by the reference's mass
    makes a derivative image with a few large edges comparable to a smooth
    one)."""
    a = np.asarray(estimate, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"block_relative_l1: shapes differ, {a.shape} vs {b.shape}")
    ba, bb = _block_mean(a, block), _block_mean(b, block)
    return float(np.abs(ba - bb).sum() / max(float(np.abs(bb).sum()), 1e-30))


def central_difference_image(scene: Any, assign: Callable[[float], None], eps: float, spp: int,
                             seed: int = 0, sensor: int = 0, integrator: Any = None) -> np.ndarray:
    """``(I(θ + ε) − I(θ − ε)) / 2ε`` with common random numbers (both renders
    use the same samples), as a float64 array (H, W, C).

    ``assign(x)`` sets the scene's parameters for ``θ + x`` (and ``params.update()``);
    it is called with ``+eps``, ``-eps`` and finally ``0`` to restore the scene.
    Discontinuities make this estimate noisy where edges cross samples: give it
    many more samples than the derivative it checks.
    """
    out = []
    try:
        for x in (eps, -eps):
            assign(x)
            out.append(np.array(render(scene, sensor=sensor, spp=spp, seed=seed,
                                       integrator=integrator), dtype=np.float64))
    finally:
        assign(0.0)
    return (out[0] - out[1]) / (2.0 * eps)


def check_gradient(scene: Any, key: str, spp: int = 16, seed: int = 0, eps: Optional[float] = None,
                   direction: Any = None, block: int = 4, sensor: int = 0,
                   integrator: Any = None, rng_seed: int = 1, fd_spp: Optional[int] = None,
                   tolerance: float = 0.05, retries: int = 0) -> GradientReport:
    """Finite differences vs forward vs reverse mode for parameter ``key``.

    ``direction`` (default: all ones for colours and scalars, a random unit
    vector for larger arrays) is the perturbation ``v``; ``eps`` the finite
    difference step (default ``1e-2`` times the parameter's magnitude, at least
    ``1e-3``).

    Parameters that move geometry, the camera or lights (``vertex_positions``,
    ``to_world``, ``x_fov``, a light's ``position``) make the image jump where
    edges move whenever an edge is in view (a boundary term is non-zero): the
    finite differences then get ``fd_spp`` samples (default ``64 * spp``) and
    the verdict is the block relative L1 error (8×8 blocks) of the forward
    derivative against them, at most ``tolerance`` (report ``mode='boundary'``),
    next to the noise that bounds what it can show (the derivative at a second
    seed, the finite differences' two halves): above the tolerance but within
    that noise the verdict is INCONCLUSIVE (more samples will tell), not FAIL;
    ``retries`` such checks then run again with 4x the samples of both (each
    halves the noise; the report lists the earlier ones).
    Reverse mode must equal forward mode along ``v`` in every case (same samples).
    """
    earlier = []
    while True:
        rep = _check_once(scene, key, spp, seed, eps, direction, block, sensor, integrator,
                          rng_seed, fd_spp, tolerance)
        if rep.verdict != "INCONCLUSIVE" or len(earlier) >= retries:
            rep.earlier = earlier
            return rep
        earlier.append(rep)
        spp, fd_spp = 4 * spp, 4 * rep.fd_spp


def _check_once(scene: Any, key: str, spp: int, seed: int, eps: Optional[float],
                direction: Any, block: int, sensor: int, integrator: Any, rng_seed: int,
                fd_spp: Optional[int], tolerance: float) -> GradientReport:
    """One :func:`check_gradient` at one budget."""
    params = traverse(scene)
    if not params.is_differentiable(key):
        raise ValueError(f"scene parameter {key!r} is not differentiable")
    integ = _check_integrator(scene, integrator)
    original = params[key]
    raw0 = dr.detach(_raw(original))
    flat0 = _flatten(raw0)
    gen = np.random.default_rng(rng_seed)
    if direction is None:
        if flat0.size <= 4:
            v = np.ones_like(flat0)
        else:
            v = gen.standard_normal(flat0.size)
            v /= np.linalg.norm(v)
    else:
        v = np.asarray(direction, dtype=np.float64).ravel()
        if v.size != flat0.size:
            raise ValueError(f"direction has {v.size} entries, {key!r} has {flat0.size}")
    if eps is None:
        eps = max(1e-2 * float(np.abs(flat0).max(initial=0.0)), 1e-3)

    def make(values: np.ndarray) -> Any:
        vals = values.astype(np.float32)
        tp = type(raw0)
        if dr.is_tensor_v(raw0):
            out = tp(vals.reshape(raw0.shape))
        elif tp is bk.Matrix4f:
            out = bk.Matrix4f(vals.reshape(4, 4))
        elif dr.depth_v(raw0) > 1:
            out = dr.unravel(tp, bk.Float(vals))
        else:
            out = tp(vals)
        return Transform4f(out) if isinstance(original, Transform4f) else out

    def render_at(values: np.ndarray, n: int = spp, seed_: Optional[int] = None) -> np.ndarray:
        params[key] = make(values)
        params.update()
        return np.array(render(scene, params, sensor=sensor, spp=n,
                               seed=seed if seed_ is None else seed_, integrator=integ),
                        dtype=np.float64)

    # Sampling decisions come from a snapshot of the parameters at θ (the
    # weights use the current values), so the renders at θ ± ε use the same
    # directions and the three estimates differentiate one per-sample estimator.
    frozen = frozen_sampling(scene)
    frozen.__enter__()
    try:
        fd = (render_at(flat0 + eps * v) - render_at(flat0 - eps * v)) / (2 * eps)
        # forward mode along v, same samples
        params[key] = make(flat0)
        params.update()
        leaf = _leaf_like(params[key])
        params[key] = leaf
        params.update()
        raw = _raw(leaf)
        image = render(scene, params, sensor=sensor, spp=spp, seed=seed, integrator=integ,
                       seed_grad=seed)
        tangent = make(v) if not isinstance(original, Transform4f) else make(v).matrix
        dr.set_grad(raw, tangent)
        dr.forward_to(image)
        fwd = np.array(dr.grad(image), dtype=np.float64)
        boundary = None
        if params.needs_boundary_terms(key):
            # Does an edge move in view? (Then finite differences with the
            # derivative's own samples are no longer exact: compare statistically.)
            from ..integrators.boundary import TERM_NAMES
            edge_terms = tuple(t for t in TERM_NAMES if t != "interior")
            boundary = np.array(render_forward(scene, params, {key: tangent}, sensor=sensor,
                                               spp=spp, seed=seed, integrator=integ,
                                               terms=edge_terms), dtype=np.float64)
            if not np.abs(boundary).max() > 0:
                boundary = None
        # reverse mode of L = sum(w * I), same samples. (The forward pass consumed
        # the graph edges from the leaf to derived scene buffers: rebuild them.)
        w_np = gen.uniform(0.0, 1.0, size=fd.shape).astype(np.float32)
        dr.clear_grad(raw)
        params.set_dirty(key)
        params.update()
        image = render(scene, params, sensor=sensor, spp=spp, seed=seed, integrator=integ,
                       seed_grad=seed)
        loss = dr.sum(image * bk.TensorXf(w_np), axis=None)
        dr.backward(loss)
        g_np = _flatten(dr.grad(raw))
        if boundary is not None:
            # The reference in two halves (their difference measures its noise),
            # and the derivative at a second seed (its own noise).
            n_fd = int(fd_spp if fd_spp is not None else 64 * spp)
            halves = []
            for k in range(2):
                n_half = max(1, n_fd // 2)
                halves.append((render_at(flat0 + eps * v, n_half, seed + k)
                               - render_at(flat0 - eps * v, n_half, seed + k)) / (2 * eps))
            fd_hi = 0.5 * (halves[0] + halves[1])
            params[key] = make(flat0)
            params.update()
            fwd2 = np.array(render_forward(scene, params, {key: tangent}, sensor=sensor, spp=spp,
                                           seed=seed + 1, integrator=integ), dtype=np.float64)
    finally:
        frozen.__exit__(None, None, None)
        params[key] = original if isinstance(original, Transform4f) else \
            type(original)(dr.detach(original))
        params.update()

    if boundary is not None:
        fd, block = fd_hi, 8        # (the per-channel errors against the reference)
    bf, bw = _block_mean(fd, block), _block_mean(fwd, block)
    scale = max(float(np.abs(bf).max()), 1e-12)
    rep = GradientReport(key=key, eps=float(eps), scale=scale, spp=int(spp))
    for c in range(fd.shape[2]):
        rep.forward_vs_fd.append(float(np.abs(bf[..., c] - bw[..., c]).max() / scale))
        rep.forward_vs_fd_pixel.append(float(np.abs(fd[..., c] - fwd[..., c]).max() /
                                             max(float(np.abs(fd).max()), 1e-12)))
    rep.reverse = float(g_np @ v)
    rep.forward_dot = float((w_np * fwd).sum())
    rep.fd_dot = float((w_np * fd).sum())
    rep.finite = bool(np.isfinite(fwd).all() and np.isfinite(g_np).all())
    if boundary is not None:
        rep.mode, rep.fd_spp, rep.tolerance = "boundary", n_fd, float(tolerance)
        rep.block_rel_l1 = block_relative_l1(fwd, fd_hi, 8)
        rep.derivative_noise = block_relative_l1(fwd2, fwd, 8) / math.sqrt(2.0)
        rep.fd_noise = block_relative_l1(halves[0], halves[1], 8) / 2.0
    return rep
