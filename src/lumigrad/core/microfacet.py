"""Microfacet normal distributions (GGX and Beckmann) with Smith shadowing.

References:

* B. Walter, S. R. Marschner, H. Li, K. E. Torrance, "Microfacet Models for
  Refraction through Rough Surfaces", EGSR 2007 (D, G1 and the BSDFs built on them).
* E. Heitz, "Understanding the Masking-Shadowing Function in Microfacet-Based
  BRDFs", JCGT 3(2), 2014 (Smith Λ functions, anisotropic forms, slope space).
* E. Heitz, "Sampling the GGX Distribution of Visible Normals", JCGT 7(4), 2018
  (the visible-normal sampling routine below).

All directions are in the local shading frame (macro normal +Z). The
anisotropic distributions use roughness ``alpha_u`` along X and ``alpha_v``
along Y. In slope space (x̃, ỹ) = (-m_x/m_z, -m_y/m_z) with normalised slopes
s = (x̃/α_u, ỹ/α_v):

* GGX:       P22 = 1 / (π α_u α_v (1 + |s|²)²),   D(m) = P22 / m_z⁴
* Beckmann:  P22 = exp(-|s|²) / (π α_u α_v),       D(m) = P22 / m_z⁴

so ``∫ D(m) m_z dm = 1``. Smith's separable masking-shadowing
``G(wi, wo, m) = G1(wi, m) G1(wo, m)`` with ``G1 = χ⁺((v·m)/v_z) / (1 + Λ(v))``:

* GGX:      Λ = (-1 + sqrt(1 + α(v)² tan²θ_v)) / 2
* Beckmann: Λ = (erf(a) - 1)/2 + exp(-a²)/(2a√π),  a = 1 / (α(v) tan θ_v)

where ``α(v)² tan²θ_v = (v_x² α_u² + v_y² α_v²) / v_z²``.

Sampling: ``sample_visible=True`` (the default, as in Mitsuba) draws ``m`` from
the distribution of normals visible from ``wi``,
``D_wi(m) = G1(wi, m) max(0, wi·m) D(m) / wi_z``: for GGX in closed form (Heitz
2018), for Beckmann by inverting the visible-slope CDF numerically (E. Heitz and
E. d'Eon, "Importance Sampling Microfacet-Based BSDFs using the Distribution of
Visible Normals", EGSR 2014; see ``_sample_visible_beckmann``), from a tabulated
first guess that leaves one Newton step for nearly every sample. Otherwise ``m``
is drawn with density ``D(m) m_z`` by sampling P22 exactly in slope space (radial
inverse CDF ``r² = u/(1-u)`` for GGX, ``r² = -ln(1-u)`` for Beckmann).
"""
from __future__ import annotations

import math
from typing import Any

import drjit as dr
import numpy as np

from .. import backend as bk

#: Roughness is clamped from below: D is a Dirac delta at α = 0 and float32
#: overflows for much smaller values (D(+Z) = 1 / (π α²)).
MIN_ALPHA = 1e-4
#: Most evaluations of the CDF in the Beckmann visible-slope inversion (Newton steps,
#: bisection where a step would leave the bracket). From the tabulated first guess
#: (:func:`_beckmann_guess`) nearly every lane is done after one.
NEWTON_STEPS = 12
#: The inversion stops once a Newton step is below this (relative to 1 + |x|); the
#: final step then leaves an error of ~its square (at most ~1e-5 in the slope).
BECKMANN_TOL = 3e-4
#: Abramowitz & Stegun 7.1.26: erfc x = t (a1 + a2 t + ... + a5 t⁴) e^{-x²} + ε,
#: t = 1 / (1 + p x), |ε| <= 1.5e-7 for x >= 0 (Beckmann's G1, load-time tables).
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
#: Distribution names accepted by :class:`MicrofacetDistribution`.
DISTRIBUTIONS = ("ggx", "beckmann")


def check_distribution(name: str, where: str) -> str:
    key = str(name).strip().lower()
    if key not in DISTRIBUTIONS:
        raise ValueError(f"{where}: unknown microfacet distribution {name!r}; expected one of "
                         f"{', '.join(DISTRIBUTIONS)}")
    return key


def _safe(x: Any, ok: Any) -> Any:
    """``x`` where ``ok``, else 1: keeps divisions finite in value and derivative."""
    return dr.select(ok, x, 1.0)


class MicrofacetDistribution:
    """An anisotropic GGX or Beckmann distribution of microfacet normals.

    ``alpha_u``/``alpha_v`` are Python floats or ``Float`` arrays (e.g. texture
    lookups, per lane); they are clamped to at least :data:`MIN_ALPHA`.
    """

    def __init__(self, kind: str, alpha_u: Any, alpha_v: Any = None,
                 sample_visible: bool = True) -> None:
        self.kind = check_distribution(kind, "MicrofacetDistribution")
        if alpha_v is None:
            alpha_v = alpha_u
        self.alpha_u = dr.maximum(bk.Float(alpha_u) if isinstance(alpha_u, (int, float))
                                  else alpha_u, MIN_ALPHA)
        self.alpha_v = dr.maximum(bk.Float(alpha_v) if isinstance(alpha_v, (int, float))
                                  else alpha_v, MIN_ALPHA)
        self.sample_visible = bool(sample_visible)

    # -- distribution ------------------------------------------------------
    def eval(self, m: Any) -> Any:
        """``D(m)`` (zero for ``m_z <= 0``)."""
        au, av = self.alpha_u, self.alpha_v
        up = m[2] > 0
        x = m[0] / au
        y = m[1] / av
        z2 = dr.square(m[2])
        if self.kind == "ggx":
            den = dr.square(dr.square(x) + dr.square(y) + z2)
            d = dr.rcp(dr.pi * au * av * _safe(den, up & (den > 0)))
        else:
            z2s = _safe(z2, up)
            d = dr.exp(-(dr.square(x) + dr.square(y)) / z2s) / (dr.pi * au * av * dr.square(z2s))
        return dr.select(up, d, 0.0)

    def _alpha2_tan2(self, v: Any) -> tuple[Any, Any]:
        """``(α(v)² tan²θ_v, ok)`` with ``ok`` false where ``v_z = 0``."""
        vz2 = dr.square(v[2])
        ok = vz2 > 0
        num = dr.square(v[0] * self.alpha_u) + dr.square(v[1] * self.alpha_v)
        return num / _safe(vz2, ok), ok

    def smith_g1(self, v: Any, m: Any) -> Any:
        """Smith's monostatic masking ``G1(v, m)`` (zero on back-facing microfacets)."""
        t2, ok = self._alpha2_tan2(v)
        if self.kind == "ggx":
            g1 = 2.0 / (1.0 + dr.sqrt(1.0 + t2))
        else:
            # Λ = (e^{-a²}/(a√π) - erfc a) / 2 with erfc a = t P(t) e^{-a²},
            # t = 1/(1 + p a) (Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7): one
            # exp instead of erf's and another, and Λ exact to 7.5e-8.
            has_slope = t2 > 0
            t2s = dr.minimum(_safe(t2, has_slope), 1e12)
            a = dr.rsqrt(t2s)                          # 1 / (α tan θ) >= 1e-6
            t = dr.rcp(1.0 + _AS_P * a)
            poly = t * (_AS_A[0] + t * (_AS_A[1] + t * (_AS_A[2] + t * (_AS_A[3] + t * _AS_A[4]))))
            lam = 0.5 * dr.exp(-dr.rcp(t2s)) * (dr.sqrt(t2s) * (1.0 / math.sqrt(math.pi)) - poly)
            g1 = dr.select(has_slope, dr.rcp(1.0 + dr.maximum(lam, 0.0)), 1.0)
        facing = dr.dot(v, m) * v[2] > 0
        return dr.select(ok & facing, g1, 0.0)

    def G(self, wi: Any, wo: Any, m: Any) -> Any:
        """Separable Smith shadowing-masking ``G1(wi, m) G1(wo, m)``."""
        return self.smith_g1(wi, m) * self.smith_g1(wo, m)

    # -- sampling ----------------------------------------------------------
    def sample(self, wi: Any, sample2: Any) -> tuple[Any, Any]:
        """Draw a microfacet normal ``m`` (``m_z >= 0``) for ``wi`` with ``wi_z > 0``.

        Returns ``(m, pdf)`` with ``pdf`` the solid-angle density of ``m``
        (:meth:`pdf`).
        """
        if self.sample_visible and self.kind == "ggx":
            m = self._sample_visible_ggx(wi, sample2)
        elif self.sample_visible:
            m = self._sample_visible_beckmann(wi, sample2)
        else:
            m = self._sample_slopes(sample2)
        return m, self.pdf(wi, m)

    def pdf(self, wi: Any, m: Any) -> Any:
        """Density of :meth:`sample` producing ``m`` (``wi_z > 0`` assumed)."""
        d = self.eval(m)
        if self.sample_visible:
            ok = wi[2] > 0
            return dr.select(ok, d * self.smith_g1(wi, m) * dr.maximum(dr.dot(wi, m), 0.0)
                             / _safe(wi[2], ok), 0.0)
        return d * dr.maximum(m[2], 0.0)

    def _sample_slopes(self, s: Any) -> Any:
        u = dr.minimum(s[0], 0.99999994)
        if self.kind == "ggx":
            r = dr.safe_sqrt(u / (1.0 - u))
        else:
            r = dr.safe_sqrt(-dr.log(1.0 - u))
        sp, cp = dr.sincos(2.0 * dr.pi * s[1])
        return dr.normalize(bk.Array3f(-self.alpha_u * r * cp, -self.alpha_v * r * sp, 1.0))

    def _sample_visible_beckmann(self, wi: Any, s: Any) -> Any:
        # Heitz & d'Eon 2014 (EGSR), in the stretched configuration (alpha = 1) where
        # wi makes the angle θ with +Z and lies in the x̃z plane (azimuth φ). With
        # m ∝ (-x̃, -ỹ, 1), wi·m ∝ cos θ - x̃ sin θ, so the visible slopes have the
        # density ∝ max(0, c - x̃) e^{-x̃²} e^{-ỹ²} (c = cot θ): ỹ is a plain Gaussian,
        # ỹ = erfinv(2 u₂ - 1), and x̃ ≤ c solves the marginal's CDF
        #   C(x) = c (1 + erf x) / 2 + e^{-x²} / (2√π)   (C' = (c - x) e^{-x²}/√π)
        # for C(x) = u₁ C(c). The first guess comes from a table of the exact
        # inverse (``_beckmann_guess``), then Newton steps kept inside a shrinking
        # bracket (bisection where a step leaves it) until a step is below
        # BECKMANN_TOL: nearly every lane needs one evaluation of C, which also
        # gives the last step. The bracket [-5, min(c, 5)] loses a slope mass
        # below 1e-11.
        vs = bk.Array3f(self.alpha_u * wi[0], self.alpha_v * wi[1], wi[2])
        vs = dr.normalize(vs)
        sin_t = dr.safe_sqrt(1.0 - dr.square(vs[2]))
        has_t = sin_t > 1e-7
        inv_s = dr.rcp(_safe(sin_t, has_t))
        cos_p = dr.select(has_t, vs[0] * inv_s, 1.0)
        sin_p = dr.select(has_t, vs[1] * inv_s, 0.0)
        c = dr.minimum(vs[2] * inv_s, 1e4)
        c = dr.select(has_t, c, 1e4)
        inv_sqrt_pi = 1.0 / math.sqrt(math.pi)

        def cdf(x: Any, erf_x: Any = None) -> Any:
            erf_x = dr.erf(x) if erf_x is None else erf_x
            return 0.5 * c * (1.0 + erf_x) + 0.5 * inv_sqrt_pi * dr.exp(-dr.square(x))

        u1 = dr.clip(s[0], 1e-6, 1.0 - 1e-6)
        hi = dr.minimum(c, 5.0)
        erf_hi = dr.erf(hi)
        target = u1 * cdf(hi, erf_hi)
        lo = bk.Float(-5.0) + 0.0 * c
        with dr.suspend_grad():
            x0 = _beckmann_guess(dr.detach(vs[2]), dr.detach(u1), dr.detach(erf_hi))
        x = dr.clip(x0, lo, hi)

        # Symbolic loop on detached values (stays in the kernel); it ends when every
        # lane of a packet has converged. Each pass evaluates C and C' at x; a lane
        # whose Newton step is below the tolerance keeps x and its (f, C') for the
        # final step, so the last pass changes nothing (nor does one at the cap).
        def step(i: Any, x: Any, lo: Any, hi: Any, f: Any, dfx: Any, done: Any) -> tuple:
            f = cdf(x) - target
            dfx = (c - x) * dr.exp(-dr.square(x)) * inv_sqrt_pi
            step_ok = dfx > 1e-12
            delta = f / _safe(dfx, step_ok)
            done = (step_ok & (dr.abs(delta) <= BECKMANN_TOL * (1.0 + dr.abs(x)))) \
                | (i + 1 >= NEWTON_STEPS)
            lo = dr.select(f < 0, x, lo)
            hi = dr.select(f < 0, hi, x)
            xn = x - delta
            inside = step_ok & (xn > lo) & (xn < hi)
            xn = dr.select(inside, xn, 0.5 * (lo + hi))
            return i + 1, dr.select(done, x, xn), lo, hi, f, dfx, done

        with dr.suspend_grad():
            zero = dr.zeros(bk.Float, dr.width(x))
            _, x_d, _, _, f_d, dfx_d, _ = dr.while_loop(
                (bk.UInt32(0), dr.detach(x), dr.detach(lo), dr.detach(hi), zero, zero,
                 dr.zeros(bk.Bool, dr.width(x))),
                lambda i, x, lo, hi, f, dfx, done: ~done, step,
                label="beckmann_visible_slope")
        # One more Newton step from the detached root x_d: its value refines x_d
        # (the step is below BECKMANN_TOL; Newton's next error is ~its square), its
        # derivative (alpha, wi) is the implicit function theorem's,
        # -(dF/dθ) / F'(x_d). In a plain render the loop's last (f, C') give it
        # without evaluating C again. A step too large to trust (a lane that ended
        # at the cap) keeps x_d's value and only adds the derivative.
        step_ok = dfx_d > 1e-12
        if dr.grad_enabled(c) or dr.grad_enabled(target):
            f_at = cdf(x_d) - target
        else:
            f_at = f_d
        delta = dr.select(step_ok, f_at / _safe(dfx_d, step_ok), 0.0)
        small = dr.abs(dr.detach(delta)) < 1e-3 * (1.0 + dr.abs(x_d))
        x = x_d - dr.select(small, delta, delta - dr.detach(delta))
        y = dr.erfinv(dr.clip(2.0 * s[1] - 1.0, -1.0 + 1e-6, 1.0 - 1e-6))
        # rotate back to wi's azimuth, unstretch, slope -> normal
        sx = (cos_p * x - sin_p * y) * self.alpha_u
        sy = (sin_p * x + cos_p * y) * self.alpha_v
        return dr.normalize(bk.Array3f(-sx, -sy, 1.0))

    def _sample_visible_ggx(self, wi: Any, s: Any) -> Any:
        # Heitz 2018: stretch wi to the configuration where alpha = 1 (a hemisphere),
        # sample the projected area of the hemisphere as seen from vh, unstretch.
        vh = dr.normalize(bk.Array3f(self.alpha_u * wi[0], self.alpha_v * wi[1], wi[2]))
        lensq = dr.square(vh[0]) + dr.square(vh[1])
        has_t = lensq > 0
        inv_len = dr.rsqrt(_safe(lensq, has_t))
        t1 = dr.select(has_t, bk.Array3f(-vh[1] * inv_len, vh[0] * inv_len, 0.0),
                       bk.Array3f(1.0, 0.0, 0.0))
        t2 = dr.cross(vh, t1)
        r = dr.sqrt(s[0])
        sp, cp = dr.sincos(2.0 * dr.pi * s[1])
        p1 = r * cp
        p2 = r * sp
        w = 0.5 * (1.0 + vh[2])
        p2 = dr.lerp(dr.safe_sqrt(1.0 - dr.square(p1)), p2, w)
        p3 = dr.safe_sqrt(1.0 - dr.square(p1) - dr.square(p2))
        nh = t1 * p1 + t2 * p2 + vh * p3
        m = bk.Array3f(self.alpha_u * nh[0], self.alpha_v * nh[1], dr.maximum(nh[2], 1e-7))
        return dr.normalize(m)


# ---------------------------------------------------------------------------
# First guess of the Beckmann visible-slope inversion
# ---------------------------------------------------------------------------

#: Size of the table of :func:`_beckmann_guess` (θ samples, u samples).
_GUESS_SHAPE = (64, 64)
_guess_cache: dict = {}


def _u_axis(u: Any, sqrt: Any) -> Any:
    """The table's coordinate for u: ``(√u - √(1-u) + 1) / 2``, which spreads both
    ends (the slope goes like -√(-ln u) at u -> 0 and c - x like √(1 - u) at 1)."""
    return 0.5 * (sqrt(u) - sqrt(1.0 - u) + 1.0)


def beckmann_slope_inverse_np(cos_t: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The visible-slope inverse in float64 (bisection):
    ``x`` with ``C(x) = u C(min(c, 5))`` for ``c = cot θ`` (see
    ``MicrofacetDistribution._sample_visible_beckmann``), with erf to 1.5e-7
    (:func:`_erf_np`)."""
    erf = _erf_odd_np
    cos_t = np.clip(cos_t, 1e-6, 1.0)
    c = np.minimum(cos_t / np.sqrt(np.maximum(1.0 - cos_t * cos_t, 1e-300)), 1e4)
    hi = np.minimum(c, 5.0)
    lo = np.full_like(hi, -5.0)

    def cdf(x: np.ndarray) -> np.ndarray:
        return 0.5 * c * (1.0 + erf(x)) + 0.5 / math.sqrt(math.pi) * np.exp(-x * x)

    target = u * cdf(hi)
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        below = cdf(mid) < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def _guess_table() -> Any:
    """The table of :func:`_beckmann_guess`, built on first use (a few ms): at
    θ_i = i/(n-1) π/2 and u_j with ``_u_axis(u_j) = j/(m-1)``, the ratio
    ``r = w / u`` of ``w = (1 + erf x) / (1 + erf min(c, 5))`` (x the inverse of
    :func:`beckmann_slope_inverse_np`)
    to u. ``w`` is the inverse in the erf domain, smooth in u, and the ratio
    removes its vanishing at u -> 0. Each cell stores its four corners (one
    4-wide gather per lookup)."""
    key = bk.variant()
    if key not in _guess_cache:
        erf = _erf_odd_np
        n, m = _GUESS_SHAPE
        theta = np.linspace(0.0, 0.5 * math.pi, n)
        t = np.linspace(0.0, 1.0, m)
        # invert the u axis map (monotonic) by bisection
        lo, hi = np.zeros(m), np.ones(m)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            below = _u_axis(mid, np.sqrt) < t
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        u = np.clip(0.5 * (lo + hi), 1e-7, 1.0 - 1e-7)
        cos_t = np.cos(theta)[:, None] + 0.0 * u[None, :]
        uu = u[None, :] + 0.0 * cos_t
        x = beckmann_slope_inverse_np(cos_t, uu)
        c = np.clip(cos_t, 1e-6, 1.0) / np.sqrt(np.maximum(1.0 - cos_t ** 2, 1e-300))
        r = (1.0 + erf(x)) / (1.0 + erf(np.minimum(c, 5.0))) / uu
        cells = np.stack([r[:-1, :-1], r[:-1, 1:], r[1:, :-1], r[1:, 1:]], axis=-1)
        _guess_cache[key] = bk.from_numpy(bk.Float, cells.astype(np.float32).ravel())
    return _guess_cache[key]


def _beckmann_guess(cos_t: Any, u: Any, erf_hi: Any) -> Any:
    """First guess of the visible-slope inverse for the stretched incident cosine
    ``cos_t`` and ``u`` (``erf_hi = erf(min(c, 5))``): the bilinear interpolation of
    :func:`_guess_table` at ``(θ, u)``, mapped back through ``erfinv``. Within 3e-4
    of the exact inverse for 99 % of (θ, u) (one Newton evaluation suffices for
    ~99.8 % of lanes; checked against :func:`beckmann_slope_inverse_np`)."""
    n, m = _GUESS_SHAPE
    table = _guess_table()
    ft = dr.acos(dr.clip(cos_t, 0.0, 1.0)) * ((n - 1) / (0.5 * math.pi))
    fu = _u_axis(u, dr.sqrt) * (m - 1)
    i = dr.minimum(bk.UInt32(dr.maximum(ft, 0.0)), n - 2)
    j = dr.minimum(bk.UInt32(dr.maximum(fu, 0.0)), m - 2)
    a = ft - bk.Float(i)
    b = fu - bk.Float(j)
    q = dr.gather(bk.Array4f, table, i * (m - 1) + j)
    r = dr.lerp(dr.lerp(q[0], q[1], b), dr.lerp(q[2], q[3], b), a)
    w = r * u
    return dr.erfinv(dr.clip(w * (1.0 + erf_hi) - 1.0, -1.0 + 1e-7, 1.0 - 1e-7))


# ---------------------------------------------------------------------------
# Load-time (numpy) integrals used for precomputed tables (roughplastic)
# ---------------------------------------------------------------------------


def _erf_np(x: np.ndarray) -> np.ndarray:
    """erf for x >= 0, Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7)."""
    t = 1.0 / (1.0 + _AS_P * x)
    poly = t * (_AS_A[0] + t * (_AS_A[1] + t * (_AS_A[2] + t * (_AS_A[3] + t * _AS_A[4]))))
    return 1.0 - poly * np.exp(-x * x)


def _erf_odd_np(x: np.ndarray) -> np.ndarray:
    """erf on the whole line (:func:`_erf_np` is for x >= 0)."""
    return np.sign(x) * _erf_np(np.abs(x))


def _g1_np(kind: str, alpha: float, v: np.ndarray, m: np.ndarray) -> np.ndarray:
    vz = v[..., 2]
    t2 = (v[..., 0] ** 2 + v[..., 1] ** 2) * alpha * alpha / np.maximum(vz * vz, 1e-300)
    if kind == "ggx":
        g1 = 2.0 / (1.0 + np.sqrt(1.0 + t2))
    else:
        a = 1.0 / np.sqrt(np.maximum(t2, 1e-300))
        a = np.maximum(a, 1e-6)
        lam = 0.5 * (_erf_np(np.minimum(a, 30.0)) - 1.0) + np.exp(-a * a) / (2.0 * a * math.sqrt(math.pi))
        g1 = np.where(t2 > 0, 1.0 / (1.0 + np.maximum(lam, 0.0)), 1.0)
    facing = (np.sum(v * m, axis=-1) * vz > 0) & (vz != 0)
    return np.where(facing, g1, 0.0)


def rough_albedos_np(kind: str, alpha: float, eta: float, mu: np.ndarray,
                     n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Directional albedos ``(R(μ_i), T(μ_i))`` of a rough dielectric interface:
    the energy its reflection lobe sends back and the energy its refraction
    lobe transmits, for incident cosines ``mu`` seen from the side where the
    relative index is ``eta``; ``1 - R - T`` is the single-scattering loss of
    the Smith masking-shadowing term.

    With ``m ~ D(m) m_z`` (density over microfacet normals), both integrals
    over the outgoing direction become integrals over ``m``:

    * reflection, ``wo = 2 (wi·m) m - wi`` (Jacobian ``dωo/dωm = 4 wi·m``):
      ``∫ f_r cos θ_o dωo = ∫ F D G (wi·m) / μ_i dωm`` (Walter et al. 2007, eq. 14);
    * refraction, ``wo = -wi/η + (wi·m/η - cos θ_t) m`` (Snell on the microfacet;
      Jacobian ``dωm/dωo = |wo·m| / (wi·m + η wo·m)²`` in units of the index on
      the ``wi`` side): Walter's BTDF times ``cos θ_o`` and the Jacobian leave
      ``∫ (1 - F) D G (wi·m) / μ_i dωm`` over the normals whose refracted ray
      goes below the surface (total internal reflection: ``F = 1``).

    So each sample contributes ``F G (wi·m) / (μ_i m_z)`` to ``R`` and
    ``(1 - F) G (wi·m) / (μ_i m_z)`` to ``T``, with ``G`` Smith's separable
    masking-shadowing of ``wi`` and that lobe's ``wo``. ``n×n`` jittered
    stratified samples, the same for every ``μ``, so the result is smooth in
    ``alpha`` and ``eta`` (deterministic, fixed ``seed``; error ~1e-3).
    """
    from .fresnel import fresnel_dielectric_np

    kind = check_distribution(kind, "rough_albedos_np")
    alpha = max(float(alpha), MIN_ALPHA)
    rng = np.random.default_rng(seed)
    i = (np.arange(n)[:, None] + rng.random((n, n))) / n
    j = (np.arange(n)[None, :] + rng.random((n, n))) / n
    u = np.minimum(i.ravel(), 1.0 - 1e-12)
    r = np.sqrt(u / (1.0 - u)) if kind == "ggx" else np.sqrt(-np.log1p(-u))
    phi = 2.0 * math.pi * j.ravel()
    m = np.stack([-alpha * r * np.cos(phi), -alpha * r * np.sin(phi), np.ones_like(r)], axis=-1)
    m /= np.linalg.norm(m, axis=-1, keepdims=True)

    c = np.clip(np.atleast_1d(np.asarray(mu, dtype=np.float64)), 1e-4, 1.0)[:, None]
    s = np.sqrt(np.maximum(0.0, 1.0 - c * c))
    wim = s * m[None, :, 0] + c * m[None, :, 2]                      # (k, N)
    wi1 = np.concatenate([s, np.zeros_like(s), c], axis=1)            # (k, 3)
    wi = np.broadcast_to(wi1[:, None, :], wim.shape + (3,))
    mm = np.broadcast_to(m[None], wim.shape + (3,))
    f = fresnel_dielectric_np(wim, eta)
    g1_i = _g1_np(kind, alpha, wi, mm)
    base = np.where(wim > 0, g1_i * wim / (c * m[None, :, 2]), 0.0)
    # reflection
    wo_r = 2.0 * wim[..., None] * mm - wi
    ok_r = wo_r[..., 2] > 0
    refl = np.where(ok_r, f * base * _g1_np(kind, alpha, wo_r, mm), 0.0).mean(axis=1)
    # refraction (TIR where cos²θ_t < 0: there f = 1 and the term vanishes)
    cos2_t = 1.0 - (1.0 - wim * wim) / (eta * eta)
    cos_t = np.sqrt(np.maximum(cos2_t, 0.0))
    wo_t = -wi / eta + (wim / eta - cos_t)[..., None] * mm
    ok_t = (cos2_t > 0) & (wo_t[..., 2] < 0)
    trans = np.where(ok_t, (1.0 - f) * base * _g1_np(kind, alpha, wo_t, mm), 0.0).mean(axis=1)
    return refl, trans


def rough_reflectance_np(kind: str, alpha: float, eta: float, mu: np.ndarray,
                         n: int = 96, seed: int = 0) -> np.ndarray:
    """Directional albedo of a rough dielectric interface's *reflection* lobe,

        R(μ_i) = ∫ F(wi·m, η) D(m) G(wi, wo, m) / (4 μ_i) dωo   (wo_z > 0),

    for incident cosines ``mu`` (> 0) seen from the side where the relative
    index is ``eta`` (pass ``1/η`` for light inside the dielectric). Isotropic
    roughness ``alpha``; Fresnel from :func:`~lumigrad.core.fresnel.fresnel_dielectric_np`.

    Estimated with ``n×n`` jittered-stratified samples of ``m ~ D(m) m_z`` per
    ``μ``: weight ``F G (wi·m) / (μ_i m_z)``. Deterministic (fixed ``seed``).
    """
    from .fresnel import fresnel_dielectric_np

    kind = check_distribution(kind, "rough_reflectance_np")
    alpha = max(float(alpha), MIN_ALPHA)
    rng = np.random.default_rng(seed)
    i = (np.arange(n)[:, None] + rng.random((n, n))) / n
    j = (np.arange(n)[None, :] + rng.random((n, n))) / n
    u = np.minimum(i.ravel(), 1.0 - 1e-12)
    if kind == "ggx":
        r = np.sqrt(u / (1.0 - u))
    else:
        r = np.sqrt(-np.log1p(-u))
    phi = 2.0 * math.pi * j.ravel()
    m = np.stack([-alpha * r * np.cos(phi), -alpha * r * np.sin(phi), np.ones_like(r)], axis=-1)
    m /= np.linalg.norm(m, axis=-1, keepdims=True)

    c = np.clip(np.atleast_1d(np.asarray(mu, dtype=np.float64)), 1e-4, 1.0)[:, None]
    s = np.sqrt(np.maximum(0.0, 1.0 - c * c))
    # wi = (s, 0, c) for each cosine (rows) against every microfacet normal (columns)
    wim = s * m[None, :, 0] + c * m[None, :, 2]
    wi1 = np.concatenate([s, np.zeros_like(s), c], axis=1)            # (k, 3)
    wo = 2.0 * wim[..., None] * m[None] - wi1[:, None, :]
    ok = (wo[..., 2] > 0) & (wim > 0)
    wi = np.broadcast_to(wi1[:, None, :], wo.shape)
    g = _g1_np(kind, alpha, wi, np.broadcast_to(m[None], wo.shape)) * \
        _g1_np(kind, alpha, wo, np.broadcast_to(m[None], wo.shape))
    f = fresnel_dielectric_np(wim, eta)
    w = np.where(ok, f * g * wim / (c * m[None, :, 2]), 0.0)
    return w.mean(axis=1)
