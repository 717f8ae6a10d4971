"""Sensors added for Mitsuba compatibility (issue 10): ``orthographic``, ``thinlens``.

References: rays printed by Mitsuba 3.9.1 (tests/data/compat_loader/
make_sensor_reference.py) and hand-derived image values."""
import json
import math
import os

import drjit as dr
import numpy as np
import pytest

import lumigrad as lg
from lumigrad.scene import loader
from lumigrad.scene.loader import SceneLoadError

DATA = os.path.join(os.path.dirname(__file__), "data", "compat_loader")
T = lg.Transform4f


def _reference():
    with open(os.path.join(DATA, "sensors_mitsuba.json")) as fh:
        return json.load(fh)


FILM = {"type": "hdrfilm", "width": 100, "height": 50}
CROP = {**FILM, "crop_offset_x": 10, "crop_offset_y": 5, "crop_width": 30, "crop_height": 20}


def _sensors(look):
    to_world = T().look_at(look["origin"], look["target"], look["up"])
    return {
        "ortho": {"type": "orthographic", "near_clip": 0.5, "far_clip": 20.0, "film": FILM,
                  "to_world": to_world @ T().scale([2.0, 2.0, 1.0])},
        "ortho_crop": {"type": "orthographic", "film": CROP},
        "thinlens": {"type": "thinlens", "aperture_radius": 0.2, "focus_distance": 4.0,
                     "fov": 60.0, "near_clip": 0.5, "film": FILM, "to_world": to_world},
        "thinlens_default_fov": {"type": "thinlens", "aperture_radius": 0.1, "film": FILM},
        "thinlens_crop": {"type": "thinlens", "aperture_radius": 0.1, "focus_distance": 2.0,
                          "fov": 45.0, "fov_axis": "y", "film": CROP},
    }


@pytest.mark.parametrize("name", ["ortho", "ortho_crop", "thinlens", "thinlens_default_fov",
                                  "thinlens_crop"])
def test_rays_match_mitsuba(name):
    ref = _reference()
    s = loader.instantiate_dict(_sensors(ref["look_at"])[name])
    rays = ref["rays"][name]
    pos = lg.Array2f(*np.array([r["film"] for r in rays]).T)
    if name.startswith("thinlens"):
        o, d, t = s.ray_through(pos, lg.Array2f(*np.array([r["aperture"] for r in rays]).T))
    else:
        o, d, t = s.sample_ray(pos)
    np.testing.assert_allclose(np.array(o).T, [r["o"] for r in rays], atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(np.array(d).T, [r["d"] for r in rays], atol=2e-6)
    np.testing.assert_allclose(np.array(t), [r["maxt"] for r in rays], rtol=1e-5)


def test_xml_forms():
    r = loader.instantiate_string('''<scene version="3.0.0">
<sensor type="orthographic" id="o"><float name="nearClip" value="0.1"/>
  <transform name="toWorld"><scale value="3"/><lookat origin="0,0,5" target="0,0,0" up="0,1,0"/>
  </transform><film type="hdrfilm"><integer name="width" value="8"/>
  <integer name="height" value="8"/></film></sensor>
<sensor type="thinlens" id="t"><float name="apertureRadius" value="0.05"/>
  <float name="focusDistance" value="3"/><float name="fov" value="30"/></sensor>
</scene>''')
    o, t = r["ids"]["o"], r["ids"]["t"]
    org, d, _ = o.sample_ray(lg.Array2f(0.0, 0.0))
    # film corner (0, 0) -> local (1, 1, near) scaled by 3, camera at z = 5 looking down -z
    np.testing.assert_allclose(np.array(org).ravel(), [-3.0, 3.0, 5 - 0.3], atol=1e-5)
    np.testing.assert_allclose(np.array(d).ravel(), [0, 0, -1], atol=1e-6)
    assert float(t.focus_distance[0]) == 3.0
    assert float(t.aperture_radius[0]) == pytest.approx(0.05)
    with pytest.raises(SceneLoadError, match="missing required parameter 'aperture_radius'"):
        loader.instantiate_dict({"type": "thinlens"})


def _emitter_scene(sensor, shape):
    return lg.load_dict({
        "type": "scene", "integrator": {"type": "path", "max_depth": 1},
        "sensor": sensor, "s": {**shape, "emitter": {
            "type": "area", "radiance": {"type": "rgb", "value": [1.0, 2.0, 3.0]}}}})


def test_orthographic_render_covers_the_exact_area():
    """An emitting disk of radius 0.5 seen orthographically through a film 2 x 2
    units wide (32 x 32 pixels, box filter): the image mean is its area over the
    view's, π 0.25 / 4, in units of the radiance; only pixels on the rim are noisy."""
    sensor = {"type": "orthographic", "to_world": T().look_at([0, 0, 3], [0, 0, 0], [0, 1, 0]),
              "film": {"type": "hdrfilm", "width": 32, "height": 32,
                       "rfilter": {"type": "box"}}}
    s = _emitter_scene(sensor, {"type": "disk", "to_world": T().scale([0.5, 0.5, 1])})
    img = np.array(lg.render(s, spp=64))
    area = 512 * 0.5 * 0.25 * math.sin(2 * math.pi / 512)  # the 512-gon of the disk
    # ~100 rim pixels, each a mean of 64 binary samples: std of the mean < 0.5/8*10/1024
    np.testing.assert_allclose(img.mean(axis=(0, 1)), np.array([1, 2, 3]) * area / 4.0,
                               rtol=0.01)
    assert np.all(img[14:18, 14:18] == [1, 2, 3])


def test_thinlens_conserves_flux_and_blurs():
    """A small emitting disk (radius R = 0.2) at distance z = 4 with the lens
    focused at 2: the image is the pinhole image convolved with a normalised
    blur disk, so its sum is unchanged, π (R/z)² / (pixel size)² times the
    radiance (pixel size 2 tan(fov/2)/W in units of the film plane at distance 1),
    and it spreads beyond R/z by the blur radius A |z - f| / (z f)."""
    fov, w, rad_r, z, f, ap = 20.0, 48, 0.2, 4.0, 2.0, 0.05
    tan = math.tan(math.radians(fov / 2))
    sensor = {"type": "thinlens", "aperture_radius": ap, "focus_distance": f, "fov": fov,
              "to_world": T().look_at([0, 0, z], [0, 0, 0], [0, 1, 0]),
              "film": {"type": "hdrfilm", "width": w, "height": w,
                       "rfilter": {"type": "box"}}}
    s = _emitter_scene(sensor, {"type": "disk", "to_world": T().scale([rad_r, rad_r, 1])})
    img = np.array(lg.render(s, spp=256))[..., 0]
    pix = 2 * tan / w
    expected = math.pi * (rad_r / z) ** 2 / pix ** 2
    assert img.sum() == pytest.approx(expected, rel=0.02)
    blur = ap * abs(z - f) / (z * f)
    yy, xx = np.mgrid[0:w, 0:w]
    rpix = np.hypot(xx + 0.5 - w / 2, yy + 0.5 - w / 2) * pix
    lit = img > 0
    assert rpix[lit].max() == pytest.approx(rad_r / z + blur, abs=1.5 * pix)
    # and nothing is at full brightness beyond R/z - blur (in focus it would be)
    assert np.all(img[rpix > rad_r / z - blur + pix] < 0.999)


def test_orthographic_material_derivative():
    """With an orthographic camera the image is linear in the emitted radiance:
    d image / d radiance.r = image.r / 1 (forward mode). (Geometry derivatives
    with the orthographic and thin-lens cameras: test_boundary_terms.py.)"""
    sensor = {"type": "orthographic", "to_world": T().look_at([0, 0, 3], [0, 0, 0], [0, 1, 0]),
              "film": {"type": "hdrfilm", "width": 8, "height": 8}}
    s = _emitter_scene(sensor, {"type": "disk", "to_world": T().scale([0.5, 0.5, 1])})
    params = lg.traverse(s)
    key = "s.emitter.radiance.value"
    v = lg.Color3f(dr.detach(params[key]))
    dr.enable_grad(v)
    params[key] = v
    params.update()
    img = lg.render(s, params, spp=16, seed=1, seed_grad=1)
    dr.forward(v, dr.ADFlag.ClearEdges)
    grad = np.array(dr.grad(img))
    np.testing.assert_allclose(grad[..., 0], np.array(img)[..., 0] / 1.0, atol=1e-5)


def test_thin_lens_refuses_a_single_pinhole_projection():
    """The boundary terms see a thin lens through one lens point per sample;
    asking the lens itself for a pinhole's projection is a clear error, not a
    silently wrong answer."""
    lens = {"type": "thinlens", "aperture_radius": 0.05, "focus_distance": 3.0, "fov": 30,
            "to_world": T().look_at([0, 0, 3], [0, 0, 0], [0, 1, 0]),
            "film": {"type": "hdrfilm", "width": 8, "height": 8}}
    s = _emitter_scene(lens, {"type": "disk", "to_world": T().scale([0.5, 0.5, 1])})
    with pytest.raises(NotImplementedError, match="sensor 'thinlens'.*no single pinhole"):
        s.sensor.project(lg.Array3f(0.0, 0.0, 0.0))


# --------------------------------------------------------------------------- film formats
def _film_scene(pixel_format, integrator="path", scale=10.0, env=False):
    d = {"type": "scene", "integrator": {"type": integrator},
         "sensor": {"type": "perspective", "fov": 10.0,
                    "to_world": T().look_at([0, 0, 5], [0, 0, 0], [0, 1, 0]),
                    "film": {"type": "hdrfilm", "width": 4, "height": 4,
                             "pixel_format": pixel_format, "rfilter": {"type": "box"}}},
         "r": {"type": "rectangle", "to_world": T().translate([-scale, 0, 0]).scale(
             [scale, scale, 1]), "emitter": {"type": "area", "radiance": {
                 "type": "rgb", "value": [1.0, 2.0, 3.0]}}}}
    if env:
        d["env"] = {"type": "constant", "radiance": {"type": "rgb", "value": 0.5}}
    return lg.load_dict(d)


def test_film_pixel_formats_luminance_xyz():
    """Radiance (1, 2, 3) everywhere in view (the light covers the left half,
    the other half sees nothing): Y = 0.212671 + 2 · 0.715160 + 3 · 0.072169 =
    1.859498 and XYZ = (1.66888, 1.85950, 3.10840), the values Mitsuba 3.9.1's
    film gives (luminance 0.929749 for a half-covered pixel)."""
    y = np.array(lg.render(_film_scene("luminance"), spp=4))
    assert y.shape == (4, 4, 1)
    np.testing.assert_allclose(y[:, :2, 0], 1.859498, rtol=1e-5)
    np.testing.assert_allclose(y[:, 2:, 0], 0.0)
    xyz = np.array(lg.render(_film_scene("xyz"), spp=4))
    np.testing.assert_allclose(xyz[:, :2], np.broadcast_to([1.6688823, 1.8594975, 3.1084013],
                                                           (4, 2, 3)), rtol=1e-5)


def test_film_alpha_is_coverage_as_mitsuba():
    """Alpha, as Mitsuba 3.9.1 gives it (measured): the fraction of camera rays
    hitting a surface; with the path tracer, escaping rays count too when an
    environment emitter is seen, not with 'direct'."""
    img = np.array(lg.render(_film_scene("rgba", "direct", env=True), spp=16))
    assert img.shape == (4, 4, 4)
    np.testing.assert_allclose(img[:, :2, 3], 1.0)
    np.testing.assert_allclose(img[:, 2:, 3], 0.0)
    img = np.array(lg.render(_film_scene("rgba", "path", env=True), spp=16))
    np.testing.assert_allclose(img[..., 3], 1.0)
    la = np.array(lg.render(_film_scene("luminance_alpha", "path"), spp=16))
    assert la.shape == (4, 4, 2)
    np.testing.assert_allclose(la[:, :2, 1], 1.0)
    np.testing.assert_allclose(la[:, 2:, 1], 0.0)


def test_film_luminance_is_differentiable():
    """Forward mode through the film: seeding all three radiance channels with 1,
    d Y = 0.212671 + 0.715160 + 0.072169 = 1 where the light is seen."""
    s = _film_scene("luminance")
    params = lg.traverse(s)
    key = "r.emitter.radiance.value"
    v = lg.Color3f(dr.detach(params[key]))
    dr.enable_grad(v)
    params[key] = v
    params.update()
    y = lg.render(s, params, spp=4)
    dr.forward(v, dr.ADFlag.ClearEdges)
    g = np.array(dr.grad(y))
    np.testing.assert_allclose(g[:, :2, 0], 0.212671 + 0.715160 + 0.072169, rtol=1e-5)


# --------------------------------------------------------------------------- filters
@pytest.mark.parametrize("name", ["mitchell", "catmullrom", "lanczos"])
def test_negative_lobe_filters_match_mitsuba(name):
    """Sharp emitter edges through filters with negative lobes, against Mitsuba
    3.9.1 at 16384 spp (make_filters_reference.py; the reference has negative
    pixels next to bright edges, as these filters give). Per-pixel error held to
    the noise as in the compatibility scene test; channel means within 4 σ of
    their own noise (estimated from the two renders) plus 0.2 %."""
    spp = 512
    ref = np.load(os.path.join(DATA, f"filters_{name}_ref.npy"))
    s = lg.load_file(os.path.join(DATA, "filters_scene.xml"), filter=name)
    assert type(s.sensors[0].film.rfilter).PLUGIN[1] == name
    a = np.array(lg.render(s, spp=spp, seed=1))
    b = np.array(lg.render(s, spp=spp, seed=2))
    noise = np.abs(a - b).mean() / np.sqrt(2)
    err = np.abs(a - ref).mean()
    assert err <= 1.3 * noise * np.sqrt(1 + spp / 16384), (err, noise)
    n_px = a.shape[0] * a.shape[1]
    sigma = (a - b).reshape(-1, 3).std(axis=0) / np.sqrt(2) / np.sqrt(n_px)
    mean_ref = ref.reshape(-1, 3).mean(0)
    assert np.all(np.abs(a.reshape(-1, 3).mean(0) - mean_ref) <= 4 * sigma + 0.002 * mean_ref)
    if name != "mitchell":
        assert (ref.min() < 0) and (a.min() < 0)  # the negative lobes show


def test_negative_lobe_filter_values_and_derivatives_refused():
    """Hand-derived filter values: Mitchell-Netravali (B = C = 1/3) f(0) = 8/9,
    f(1) = 1/18, f(2) = 0; Catmull-Rom f(0) = 1, f(1) = 0, f(1.5) = -1/16;
    Lanczos (a = 3) f(0.5) = sinc(0.5) sinc(1/6). Derivative renders refuse them."""
    from lumigrad.sensors.rfilter_signed import CatmullRomFilter, LanczosFilter, MitchellFilter

    m, c, l3 = MitchellFilter(), CatmullRomFilter(), LanczosFilter()
    np.testing.assert_allclose(m.eval(np.array([0.0, 1.0, 2.0])), [8 / 9, 1 / 18, 0.0],
                               atol=1e-12)
    np.testing.assert_allclose(c.eval(np.array([0.0, 1.0, 1.5])), [1.0, 0.0, -1 / 16],
                               atol=1e-12)
    np.testing.assert_allclose(l3.eval(np.array([0.5])),
                               np.sinc(0.5) * np.sinc(0.5 / 3), rtol=1e-12)
    np.testing.assert_allclose(np.array(l3.eval_dr(lg.Float([0.0, 0.5, 2.5]))),
                               l3.eval(np.array([0.0, 0.5, 2.5])), rtol=1e-5, atol=1e-6)
    s = lg.load_file(os.path.join(DATA, "filters_scene.xml"), filter="mitchell")
    params = lg.traverse(s)
    key = [k for k in params.keys() if k.endswith("radiance.value")][0]
    v = lg.Color3f(dr.detach(params[key]))
    dr.enable_grad(v)
    params[key] = v
    params.update()
    with pytest.raises(NotImplementedError, match="'mitchell' reconstruction filter"):
        img = lg.render(s, params, spp=4)
        dr.forward(v)


@pytest.mark.parametrize("centre", [(0.0, 0.0, 0.0), (0.0, 0.3, 3.6)])
def test_lens_hull_frustum_covers_every_lens_point(centre):
    """The thin lens's tables clip edges to what *some* lens point sees
    (``LensHull.clip_to_frustum``): every point of a segment that a random lens
    point sees on the film must lie in the clipped range; segments around the
    scene and right in front of the lens (where the lens's edge and centre see
    a point on opposite sides of the film: taking the extreme lens points alone
    missed 30 % of those)."""
    sc = lg.load_dict({"type": "scene", "b": {"type": "sphere"}, "sensor": {
        "type": "thinlens", "aperture_radius": 0.3, "focus_distance": 2.0, "fov": 40,
        "to_world": T().look_at([0, 0.3, 4], [0, 0, 0], [0, 1, 0]),
        "film": {"type": "hdrfilm", "width": 32, "height": 24}}})
    lens, n = sc.sensor, 20000
    rng = np.random.default_rng(1)
    spread = 3.0 if centre[2] == 0.0 else 0.4
    p0 = np.asarray(centre) + rng.uniform(-spread, spread, (n, 3))
    p1 = np.asarray(centre) + rng.uniform(-spread, spread, (n, 3))
    iv = lens.lens_hull().clip_to_frustum(lg.Array3f(*p0.T.astype(np.float32)),
                                          lg.Array3f(*p1.T.astype(np.float32)), 0.5)
    lo, hi = np.array(iv.lo), np.array(iv.hi)
    seen = missed = 0
    for _ in range(10):
        t = rng.uniform(0, 1, n).astype(np.float32)
        view = lens.lens_view(lg.Array2f(*rng.uniform(0, 1, (2, n)).astype(np.float32)))
        y = p0 + (p1 - p0) * t[:, None]
        s, front = view.project(lg.Array3f(*y.T.astype(np.float32)))
        s, front = np.array(s), np.array(front)
        inside = front & (s[0] > -0.5) & (s[0] < 32.5) & (s[1] > -0.5) & (s[1] < 24.5)
        seen += inside.sum()
        missed += (inside & ~((t >= lo - 1e-5) & (t <= hi + 1e-5))).sum()
    assert seen > 1000
    assert missed == 0
