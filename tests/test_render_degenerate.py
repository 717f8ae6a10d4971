"""Degenerate geometry and grazing rays render without NaN or inf.

A mesh may contain zero-area triangles (a repeated vertex, three collinear
vertices, one vertex three times), vertices used only by such triangles, and
triangles seen exactly edge-on. None of them has area, so none may change the
image: rendered with the same seed, a mesh with them must give the image of
the same mesh without them (same random numbers, same hits), whether the mesh
is a diffuse surface, an area light (the emitter sampling table gives the
degenerate triangles probability 0) or seen through the ``aov`` integrator.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lumigrad as lg

from .test_render_support import Z_MAX, diffuse, mean_z, rgb, sensor_dict

VERTICES = """\
v -1 -1 0
v 1 -1 0
v 1 1 0
v -1 1 0
v 0 0 0
v 0.5 0.5 0
v 2 2 2
"""
GOOD_FACES = "f 1 2 3\nf 1 3 4\n"
DEGENERATE_FACES = """\
f 1 1 2
f 5 6 3
f 7 7 7
f 4 4 4
f 5 3 6
f 6 5 1
"""


@pytest.fixture(scope="module")
def objs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("degenerate")
    clean = d / "clean.obj"
    clean.write_text(VERTICES + GOOD_FACES)
    bad = d / "bad.obj"
    # degenerate faces before, between and after the good ones
    lines = DEGENERATE_FACES.splitlines()
    bad.write_text(VERTICES + "\n".join(lines[:2]) + "\nf 1 2 3\n" + "\n".join(lines[2:4])
                   + "\nf 1 3 4\n" + "\n".join(lines[4:]) + "\n")
    return clean, bad


def _surface_scene(path: Path, integrator: dict) -> lg.Scene:
    return lg.load_dict({
        "type": "scene",
        "mesh": {"type": "obj", "filename": str(path), "bsdf": diffuse([0.5, 0.6, 0.7])},
        "env": {"type": "constant", "radiance": rgb(1.0)},
        "sensor": sensor_dict((0.3, -1.5, 2.5), (0, 0, 0), (0, 0, 1), fov=60, width=24,
                              height=24),
        "integrator": integrator,
    })


def _light_scene(path: Path) -> lg.Scene:
    """The mesh as an area light 1.5 above a diffuse floor, facing down."""
    tw = lg.Transform4f().translate([0.0, 0.0, 1.5]).rotate([1, 0, 0], 180.0).scale(0.5)
    return lg.load_dict({
        "type": "scene",
        "light": {"type": "obj", "filename": str(path), "to_world": tw,
                  "emitter": {"type": "area", "radiance": rgb(4.0)}},
        "floor": {"type": "rectangle", "to_world": lg.Transform4f().scale([3.0, 3.0, 1.0]),
                  "bsdf": diffuse(0.5)},
        "sensor": sensor_dict((0, -3, 3), (0, 0, 0.3), (0, 0, 1), fov=50, width=24,
                              height=24),
        "integrator": {"type": "path", "max_depth": 3},
    })


def _same(a: np.ndarray, b: np.ndarray) -> None:
    assert np.isfinite(a).all() and np.isfinite(b).all()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_degenerate_triangles_in_a_diffuse_mesh(objs: tuple[Path, Path]) -> None:
    clean, bad = objs
    integ = {"type": "path", "max_depth": 3}
    a = np.array(lg.render(_surface_scene(clean, integ), spp=4, seed=21))
    b = np.array(lg.render(_surface_scene(bad, integ), spp=4, seed=21))
    assert (a > 0).any()
    _same(b, a)


def test_degenerate_triangles_in_an_area_light(objs: tuple[Path, Path]) -> None:
    clean, bad = objs
    a = np.array(lg.render(_light_scene(clean), spp=4, seed=22))
    b = np.array(lg.render(_light_scene(bad), spp=4, seed=22))
    assert a.mean() > 0.05
    _same(b, a)


def test_degenerate_triangles_aov_normals(objs: tuple[Path, Path]) -> None:
    clean, bad = objs
    integ = {"type": "aov", "aovs": "dd:depth,nn:sh_normal,gg:geo_normal,uv:uv"}
    a = np.array(lg.render(_surface_scene(clean, integ), spp=2, seed=23))
    b = np.array(lg.render(_surface_scene(bad, integ), spp=2, seed=23))
    _same(b, a)
    # The plane's normals (smooth normals computed from the OBJ: all +Z) stay exact;
    # silhouette pixels average them with misses (0).
    for n in (b[..., 1:4], b[..., 4:7]):
        np.testing.assert_array_equal(n[..., :2], 0.0)
        assert ((n[..., 2] >= 0) & (n[..., 2] <= 1 + 1e-6)).all()
        assert (np.abs(n[..., 2] - 1) < 1e-6).sum() > 50


# ---------------------------------------------------------------------------------
# Grazing rays
# ---------------------------------------------------------------------------------
def _grazing_scene(height: float, near_clip: float) -> lg.Scene:
    """A large diffuse plane (albedo 0.5) under a constant environment, with the
    camera ``height`` above it looking horizontally: the lower half of the image
    sees the plane at grazing angles, the upper half the sky."""
    return lg.load_dict({
        "type": "scene",
        "plane": {"type": "rectangle", "to_world": lg.Transform4f().scale([200.0, 200.0, 1.0]),
                  "bsdf": diffuse(0.5)},
        "env": {"type": "constant", "radiance": rgb(1.0)},
        "sensor": sensor_dict((0, 0, height), (0, 10, height), (0, 0, 1), fov=40, width=16,
                              height=16, near_clip=near_clip),
        "integrator": {"type": "path", "max_depth": 4},
    })


@pytest.mark.parametrize("height,near_clip", [(0.05, 0.01), (1e-3, 1e-5), (0.0, 0.01)])
def test_grazing_camera_rays(height: float, near_clip: float) -> None:
    """Above the horizon: exactly the sky (1). Well below it, the plane: a convex
    surface under a uniform sky has radiance = albedo = 0.5. The camera exactly
    in the plane (height 0) sees the plane edge-on: rays parallel to it miss it.
    (The near clip plane must be closer than the plane's hits, or they are clipped.)"""
    img = np.array(lg.render(_grazing_scene(height, near_clip), spp=16, seed=24))
    assert np.isfinite(img).all()
    assert img.min() >= 0.0 and img.max() < 10.0
    np.testing.assert_allclose(img[:7], 1.0, rtol=1e-6)
    if height == 0.0:
        np.testing.assert_allclose(img, 1.0, rtol=1e-6)
    else:
        # rows well below the horizon hit the plane within a few metres
        low = img[11:, :, 0]
        assert abs(mean_z(low, 0.5)) < Z_MAX, low.mean()
