"""The built-in Cornell box (``lumigrad.cornell_box``) is ``cbox.xml``: the same
scene renders the same image, bit for bit, with the same seed."""
from __future__ import annotations

import numpy as np
import pytest

import lumigrad as lg

from .conftest import SCENES
from .test_render_support import Z_MAX, mean_z

CBOX = SCENES / "cbox.xml"
pytestmark = pytest.mark.skipif(not CBOX.exists(), reason=f"{CBOX} not found")


@pytest.fixture(scope="module")
def scenes() -> tuple[lg.Scene, lg.Scene]:
    return (lg.cornell_box(res=32, spp=4, max_depth=5),
            lg.load_file(CBOX, res=32, spp=4, max_depth=5))


def test_same_parameters(scenes: tuple[lg.Scene, lg.Scene]) -> None:
    builtin, xml = scenes
    pa, pb = lg.traverse(builtin), lg.traverse(xml)
    assert list(pa.keys()) == list(pb.keys())
    assert "green.reflectance.value" in pa and "light.emitter.radiance.value" in pa


def test_same_geometry_to_the_bit(scenes: tuple[lg.Scene, lg.Scene]) -> None:
    """Exact equality of the images needs exactly equal float32 geometry and camera."""
    builtin, xml = scenes
    np.testing.assert_array_equal(np.array(builtin.positions), np.array(xml.positions))
    np.testing.assert_array_equal(builtin.sensors[0].to_world.numpy(),
                                  xml.sensors[0].to_world.numpy())


def test_builtin_cornell_box_agrees_in_expectation(scenes: tuple[lg.Scene, lg.Scene]) -> None:
    """Independent renders: the per-pixel difference has mean 0 (|z| < 4 over
    3072 pixel-channel differences)."""
    builtin, xml = scenes
    a = np.array(lg.render(builtin, spp=8, seed=1), dtype=np.float64)
    b = np.array(lg.render(xml, spp=8, seed=2), dtype=np.float64)
    assert abs(mean_z(a - b, 0.0)) < Z_MAX


def test_builtin_cornell_box_renders_exactly_like_cbox_xml(
        scenes: tuple[lg.Scene, lg.Scene]) -> None:
    builtin, xml = scenes
    a = np.array(lg.render(builtin, seed=7))   # spp from the sampler: 4
    b = np.array(lg.render(xml, seed=7))
    assert a.shape == (32, 32, 3)
    assert np.isfinite(a).all() and a.mean() > 0.05
    np.testing.assert_array_equal(a, b)
    # the keyword overrides reached the sampler: the default spp is 4
    np.testing.assert_array_equal(a, np.array(lg.render(builtin, spp=4, seed=7)))
    # and the comparison is not vacuous: another seed gives another image
    assert not np.array_equal(a, np.array(lg.render(xml, seed=8)))


def test_unrolled_and_stack_traversal_render_the_same_image(monkeypatch) -> None:
    """The Cornell box (36 triangles) is traced by the unrolled BVH traversal on
    large launches and by the stack loop on small ones: the same image either way
    (same hits; only exact ties on shared edges may pick the other triangle)."""
    from lumigrad.geometry.bvh import BVH
    scene = lg.load_file(CBOX, res=32, max_depth=5)
    images = []
    for min_rays in (1 << 30, 0):
        monkeypatch.setattr(BVH, "unroll_min_rays", min_rays)
        assert scene.accel.bvh.unrolled(32 * 32) == (min_rays == 0)
        images.append(np.array(lg.render(scene, spp=4, seed=3)))
    stack, unrolled = images
    assert np.isfinite(unrolled).all() and unrolled.mean() > 0.05
    assert np.mean(np.abs(unrolled - stack) > 1e-5 * (1 + np.abs(stack))) < 1e-3
