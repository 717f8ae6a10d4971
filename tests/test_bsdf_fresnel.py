"""Fresnel equations, IOR tables and microfacet distributions (core/fresnel.py,
core/microfacet.py), checked against independent formulas and integrals."""
from __future__ import annotations

import math

import numpy as np
import pytest
import drjit as dr

from lumigrad import backend as bk
from lumigrad.core.fresnel import (CONDUCTOR_TABLE, IOR_TABLE, conductor_ior,
                                   fresnel_conductor, fresnel_dielectric,
                                   fresnel_diffuse_reflectance, fresnel_dielectric_np,
                                   refract, resolve_ior)
from lumigrad.core.microfacet import MicrofacetDistribution, rough_reflectance_np


def F(x) -> np.ndarray:
    return np.array(x, dtype=np.float64)


def complex_fresnel(cos_i: np.ndarray, n: complex) -> np.ndarray:
    """Born & Wolf with a complex index: independent of the closed form under test."""
    c = cos_i.astype(np.complex128)
    s2 = 1.0 - c * c
    root = np.sqrt(n * n - s2)
    rs = (c - root) / (c + root)
    rp = (n * n * c - root) / (n * n * c + root)
    return 0.5 * (np.abs(rs) ** 2 + np.abs(rp) ** 2)


COS = np.linspace(0.0, 1.0, 41)


def test_dielectric_normal_incidence_and_symmetry():
    for eta in (1.5, 1.333, 2.4, 1.0 / 1.5):
        f, ct, eta_it, eta_ti = fresnel_dielectric(bk.Float(1.0), bk.Float(eta))
        assert f[0] == pytest.approx(((eta - 1) / (eta + 1)) ** 2, rel=1e-5)
        assert ct[0] == pytest.approx(-1.0) and eta_it[0] == pytest.approx(eta)
        # from inside at normal incidence the reflectance is the same
        f_in, ct_in, _, _ = fresnel_dielectric(bk.Float(-1.0), bk.Float(eta))
        assert f_in[0] == pytest.approx(f[0], rel=1e-5) and ct_in[0] == pytest.approx(1.0)


def test_dielectric_matches_complex_formula_and_tir():
    eta = 1.5
    f, ct, _, _ = fresnel_dielectric(bk.Float(COS), bk.Float(eta))
    assert np.allclose(F(f), complex_fresnel(COS, eta), atol=1e-5)
    # from inside: relative index 1/eta, total internal reflection past the critical angle
    f_in, ct_in, eta_it, eta_ti = fresnel_dielectric(bk.Float(-COS), bk.Float(eta))
    sin_i = np.sqrt(1 - COS ** 2)
    tir = (sin_i * eta >= 1) & (COS > 0)   # -0.0 counts as outside
    assert np.all(F(f_in)[tir] == 1.0) and np.all(F(ct_in)[tir] == 0.0)
    ok = ~tir & (COS > 0)
    assert np.allclose(F(f_in)[ok], complex_fresnel(COS[ok], 1 / eta), atol=1e-5)
    assert np.allclose(F(eta_it)[1:], 1 / eta) and np.allclose(F(eta_ti)[1:], eta)
    # eta == 1: no reflection (except exactly at grazing), finite everywhere
    f1, _, _, _ = fresnel_dielectric(bk.Float(COS), bk.Float(1.0))
    assert np.all(np.isfinite(F(f1))) and np.allclose(F(f1)[1:], 0.0, atol=1e-6)
    # numpy twin
    assert np.allclose(fresnel_dielectric_np(COS, eta), F(f), atol=1e-6)
    assert np.allclose(fresnel_dielectric_np(-COS, eta), F(f_in), atol=1e-6)


def test_refraction_obeys_snell():
    eta = 1.5
    th = np.radians([0.0, 20.0, 50.0, 80.0])
    wi = bk.Array3f(np.sin(th), 0 * th, np.cos(th))
    f, ct, eta_it, eta_ti = fresnel_dielectric(wi[2], bk.Float(eta))
    wo = refract(wi, ct, eta_ti)
    wo_np = F(wo).T
    assert np.allclose(np.linalg.norm(wo_np, axis=1), 1.0, atol=1e-6)
    assert np.allclose(np.sqrt(1 - wo_np[:, 2] ** 2) * eta, np.sin(th), atol=1e-5)
    assert np.all(wo_np[:, 2] < 0) and np.all(wo_np[1:, 0] < 0)
    # with an explicit normal m = +Z the general formula agrees
    wo2 = refract(wi, ct, eta_ti, bk.Array3f(0.0, 0.0, 1.0))
    assert np.allclose(F(wo2), F(wo), atol=1e-6)


def test_conductor_fresnel():
    for name in ("Au", "Cu", "Al"):
        eta, k = CONDUCTOR_TABLE[name]
        f = fresnel_conductor(bk.Float(COS), bk.Array3f(*eta), bk.Array3f(*k))
        for c in range(3):
            assert np.allclose(F(f[c]), complex_fresnel(COS, eta[c] + 1j * k[c]), atol=2e-5)
    # k = 0 is the dielectric formula (also beyond the critical angle for eta < 1)
    for eta in (1.5, 0.7):
        fc = fresnel_conductor(bk.Float(COS), bk.Float(eta), bk.Float(0.0))
        fd = fresnel_dielectric(bk.Float(COS), bk.Float(eta))[0]
        assert np.allclose(F(fc), F(fd), atol=2e-5)
    # Mitsuba's 'none' (eta 0, k 1) is a perfect mirror
    f = fresnel_conductor(bk.Float(COS), bk.Float(0.0), bk.Float(1.0))
    assert np.allclose(F(f), 1.0, atol=1e-6)


def test_diffuse_fresnel_reflectance():
    for eta in (1.2, 1.5, 2.4):
        ext, inn = fresnel_diffuse_reflectance(eta), fresnel_diffuse_reflectance(1 / eta)
        # reciprocity of the interface: 1 - F_dr(eta) = eta^2 (1 - F_dr(1/eta))
        assert 1 - ext == pytest.approx(eta * eta * (1 - inn), rel=1e-6)
        mu = (np.arange(200000) + 0.5) / 200000
        assert ext == pytest.approx(2 * np.mean(fresnel_dielectric_np(mu, eta) * mu), abs=1e-6)
    assert fresnel_diffuse_reflectance(1.0) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        fresnel_diffuse_reflectance(-1.0)


def test_ior_tables_and_errors():
    assert resolve_ior("bk7", "x") == 1.5046 and resolve_ior("BK7", "x") == 1.5046
    assert resolve_ior("glass", "x") == 1.5046 and resolve_ior("water", "x") == 1.3330
    assert resolve_ior("air", "x") == pytest.approx(1.000277)
    assert resolve_ior("diamond", "x") == 2.419 and resolve_ior(1.7, "x") == 1.7
    assert set(IOR_TABLE) >= {"vacuum", "polypropylene", "acrylic glass", "fused quartz"}
    with pytest.raises(ValueError, match="unknown index of refraction 'glas'.*glass"):
        resolve_ior("glas", "bsdf 'dielectric': 'int_ior'")
    with pytest.raises(ValueError, match="positive"):
        resolve_ior(-1.0, "x")
    assert conductor_ior("au", "x") == CONDUCTOR_TABLE["Au"]
    with pytest.raises(ValueError, match=r"'Unobtainium'.*known materials \(Mitsuba 3's\): none, a-C, Ag, Al"):
        conductor_ior("Unobtainium", "bsdf 'conductor'")
    # physical sanity of the metal data (Mitsuba's RGB conversion of measured spectra,
    # tests/test_compat_bugs.py): gold is yellow, silver bright and grey, chromium grey
    for name, (lo, hi) in {"Au": (0.3, 1.0), "Ag": (0.9, 1.0), "Cr": (0.6, 0.7)}.items():
        eta, k = CONDUCTOR_TABLE[name]
        f0 = [((e - 1) ** 2 + kk ** 2) / ((e + 1) ** 2 + kk ** 2) for e, kk in zip(eta, k)]
        assert all(lo <= x <= hi for x in f0)
    eta, k = CONDUCTOR_TABLE["Au"]
    f0 = [((e - 1) ** 2 + kk ** 2) / ((e + 1) ** 2 + kk ** 2) for e, kk in zip(eta, k)]
    assert f0[0] > f0[1] > f0[2]


# -- microfacet distributions ------------------------------------------------------

def uniform_hemisphere(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    u = (np.arange(n) + rng.random(n)) / n                  # stratified in z
    z = u
    phi = 2 * np.pi * rng.random(n)
    r = np.sqrt(1 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z]).astype(np.float32)


DISTRS = [("ggx", 0.3, 0.3), ("ggx", 0.6, 0.6), ("ggx", 0.2, 0.5),
          ("beckmann", 0.3, 0.3), ("beckmann", 0.2, 0.5)]


@pytest.mark.parametrize("kind,au,av", DISTRS)
def test_microfacet_normalisation_and_smith_projected_area(kind, au, av):
    """∫ D(m) m_z dm = 1, and Smith's G1 satisfies the projected-area identity
    ∫ G1(v, m) max(0, v·m) D(m) dm = v_z (Heitz 2014, eq. 17) for several v."""
    n = 400000
    m = bk.Array3f(uniform_hemisphere(n))
    d = MicrofacetDistribution(kind, au, av)
    vals = F(d.eval(m) * m[2]) * 2 * np.pi
    assert vals.mean() == pytest.approx(1.0, abs=0.03)
    for th, ph in ((0.0, 0.0), (45.0, 0.3), (80.0, 1.2)):
        t, p = math.radians(th), ph
        v = bk.Array3f(math.sin(t) * math.cos(p), math.sin(t) * math.sin(p), math.cos(t))
        g = F(d.smith_g1(v, m) * dr.maximum(dr.dot(v, m), 0.0) * d.eval(m)) * 2 * np.pi
        assert g.mean() == pytest.approx(math.cos(t), abs=0.03)
        # the visible-normal pdf is normalised
        if kind == "ggx":
            assert (F(d.pdf(v, m)) * 2 * np.pi).mean() == pytest.approx(1.0, abs=0.03)
    g1 = F(d.smith_g1(bk.Array3f(0.6, 0.0, 0.8), m))
    assert np.all((g1 >= 0) & (g1 <= 1))


def test_microfacet_degenerate_inputs_are_finite():
    d = MicrofacetDistribution("ggx", 0.0, 0.0)          # clamped to MIN_ALPHA
    b = MicrofacetDistribution("beckmann", 1e-6)
    vs = bk.Array3f([0.0, 1.0, 0.0, 0.6], [0.0, 0.0, 0.0, 0.0], [1.0, 0.0, -1.0, 0.8])
    for dist in (d, b):
        for x in (dist.eval(vs), dist.smith_g1(vs, vs), dist.pdf(vs, vs)):
            assert np.all(np.isfinite(F(x)))
        m, pdf = dist.sample(bk.Array3f(0.0, 0.0, 1.0), bk.Array2f([0.0, 0.999999], [0.0, 0.5]))
        assert np.all(np.isfinite(F(m))) and np.all(np.isfinite(F(pdf)))
    with pytest.raises(ValueError, match="ggx, beckmann"):
        MicrofacetDistribution("phong", 0.1)


def test_beckmann_slope_inverse_reference():
    """The float64 reference inverse of the visible-slope CDF solves
    C(x) = u C(min(c, 5)) with C(x) = c (1 + erf x)/2 + exp(-x²)/(2√π), checked
    with Python's math.erf at a few points."""
    from lumigrad.core.microfacet import beckmann_slope_inverse_np
    cos_t = np.array([0.05, 0.3, 0.7, 0.95, 0.999])
    for u in (1e-4, 0.2, 0.5, 0.9, 0.9999):
        x = beckmann_slope_inverse_np(cos_t, np.full_like(cos_t, u))
        for ct, xi in zip(cos_t, x):
            c = ct / math.sqrt(1 - ct * ct)
            def cdf(t: float, c: float = c) -> float:
                return 0.5 * c * (1 + math.erf(t)) + 0.5 / math.sqrt(math.pi) * math.exp(-t * t)
            assert xi <= min(c, 5.0)
            # (the reference's erf is Abramowitz & Stegun's, within 1.5e-7)
            top = cdf(min(c, 5.0))
            assert cdf(xi) / top == pytest.approx(u, abs=2e-7 * max(c, 1.0) / top)


def test_beckmann_visible_slope_inversion_is_exact():
    """The sampler's slope (tabulated first guess + Newton, float32) equals the
    float64 inverse, and the tabulated guess alone is within the Newton stopping
    tolerance for nearly all (θ, u), which is what makes it cheap (one CDF
    evaluation per lane)."""
    from lumigrad.core import microfacet as mf
    rng = np.random.default_rng(5)
    n = 100_000
    for au, av in ((0.2, 0.2), (0.3, 0.6)):
        th, ph = np.arccos(rng.random(n)), rng.random(n) * 2 * np.pi
        wi = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)])
        s = rng.random((2, n)).astype(np.float32)
        d = MicrofacetDistribution("beckmann", au, av)
        m = F(d.sample(bk.Array3f(wi.astype(np.float32)), bk.Array2f(s))[0])
        vs = wi * np.array([au, av, 1.0])[:, None]
        vs /= np.linalg.norm(vs, axis=0)
        sin_t = np.sqrt(1 - vs[2] ** 2)
        u = np.clip(s[0].astype(np.float64), 1e-6, 1 - 1e-6)
        x = mf.beckmann_slope_inverse_np(vs[2], u)
        # slope along wi's azimuth (ill-defined at normal incidence: left out)
        xs = (vs[0] * (-m[0] / m[2] / au) + vs[1] * (-m[1] / m[2] / av)) / sin_t
        err = (np.abs(xs - x) / (1 + np.abs(x)))[sin_t > 0.05]
        # float32: ~1e-6 typical; up to ~1e-4 where C is flat (u -> 1)
        assert np.percentile(err, 99.9) < 5e-5 and err.max() < 5e-4
        erf_hi = mf._erf_odd_np(np.minimum(vs[2] / sin_t, 5.0))
        guess = F(mf._beckmann_guess(bk.Float(vs[2].astype(np.float32)),
                                     bk.Float(u.astype(np.float32)),
                                     bk.Float(erf_hi.astype(np.float32))))
        close = np.abs(guess - x) <= mf.BECKMANN_TOL * (1 + np.abs(x))
        assert close.mean() > 0.99


def test_rough_reflectance_table_against_smooth_limit():
    mu = np.array([1.0, 0.7, 0.4])
    r = rough_reflectance_np("ggx", 1e-4, 1.5, mu)
    assert np.allclose(r, fresnel_dielectric_np(mu, 1.5), atol=2e-3)
    r_b = rough_reflectance_np("beckmann", 1e-4, 1.5, mu)
    assert np.allclose(r_b, fresnel_dielectric_np(mu, 1.5), atol=2e-3)
