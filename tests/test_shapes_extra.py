"""Shapes added for Mitsuba compatibility (issue 10): ``cylinder``.

Expected values are derived by hand from the cylinder's definition (Mitsuba 3's
``cylinder`` docs: an open tube around p0 -> p1, outward normals)."""
import math

import numpy as np
import pytest

import lumigrad as lg
from lumigrad.geometry.cylinder import CYLINDER_SEGMENTS
from lumigrad.scene import loader
from lumigrad.scene.loader import SceneLoadError


def _mesh_arrays(shape):
    p = shape.positions_numpy().astype(np.float64)
    f = shape.faces_numpy()
    n = np.array(shape.vertex_normals, dtype=np.float64).reshape(-1, 3)
    return p, f, n


def _axis_distance(p, a, b):
    d = (b - a) / np.linalg.norm(b - a)
    v = p - a
    t = v @ d
    return np.linalg.norm(v - np.outer(t, d), axis=1), t


@pytest.mark.parametrize("form", ["xml", "dict"])
def test_cylinder_geometry(form):
    a, b, r = np.array([1.0, -1.0, 0.5]), np.array([2.0, 1.0, 2.5]), 0.3
    if form == "xml":
        s = loader.instantiate_string(f'''<scene version="3.0.0">
<shape type="cylinder" id="c"><point name="p0" value="1, -1, 0.5"/>
<point name="p1" x="2" y="1" z="2.5"/><float name="radius" value="{r}"/></shape></scene>''')["ids"]["c"]
    else:
        s = loader.instantiate_dict({"type": "cylinder", "p0": a.tolist(), "p1": b.tolist(),
                                     "radius": r})
    p, f, n = _mesh_arrays(s)
    dist, t = _axis_distance(p, a, b)
    length = np.linalg.norm(b - a)
    np.testing.assert_allclose(dist, r, rtol=1e-5)              # every vertex on the surface
    assert set(np.round(t / length, 5)) == {0.0, 1.0}            # rings at both ends, no caps
    # Area: 2 n triangles spanning the inscribed polygon: 2 n r sin(π/n) · L.
    e1, e2 = p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]]
    cross = np.cross(e1, e2)
    area = 0.5 * np.linalg.norm(cross, axis=1).sum()
    m = CYLINDER_SEGMENTS
    assert area == pytest.approx(2 * m * r * math.sin(math.pi / m) * length, rel=1e-5)
    assert area == pytest.approx(2 * math.pi * r * length, rel=1e-4)
    # Winding and normals point away from the axis.
    centre = (p[f[:, 0]] + p[f[:, 1]] + p[f[:, 2]]) / 3
    d = (b - a) / length
    radial = (centre - a) - np.outer((centre - a) @ d, d)
    assert np.all(np.einsum("ij,ij->i", cross, radial) > 0)
    radial_v = (p - a) - np.outer((p - a) @ d, d)
    np.testing.assert_allclose(n, radial_v / r, atol=1e-5)


def test_cylinder_mirror_and_flip():
    # A mirroring to_world keeps the normals outward (Mitsuba transforms the
    # analytic normal); flip_normals turns them inward.
    for flip, sign in ((False, 1.0), (True, -1.0)):
        s = loader.instantiate_dict({"type": "cylinder", "flip_normals": flip,
                                     "to_world": lg.Transform4f().scale([-1.0, 1.0, 1.0])})
        p, f, n = _mesh_arrays(s)
        centre = (p[f[:, 0]] + p[f[:, 1]] + p[f[:, 2]]) / 3
        cross = np.cross(p[f[:, 1]] - p[f[:, 0]], p[f[:, 2]] - p[f[:, 0]])
        radial = centre * [1, 1, 0]
        assert np.all(sign * np.einsum("ij,ij->i", cross, radial) > 0)
        assert np.all(sign * np.einsum("ij,ij->i", n, p * [1, 1, 0]) > 0)


def test_cylinder_errors():
    with pytest.raises(SceneLoadError, match="p0 and p1 coincide"):
        loader.instantiate_dict({"type": "cylinder", "p0": [1, 1, 1], "p1": [1, 1, 1]})
    with pytest.raises(SceneLoadError, match="radius.*greater than 0"):
        loader.instantiate_dict({"type": "cylinder", "radius": 0.0})


def test_cylinder_render_silhouette_width():
    """An emitting cylinder (radiance 1, radius 0.5, along y, long enough to fill
    the view vertically) seen from distance D = 4 with a box filter: it covers,
    in every row, the width between the tangents from the camera,
    ``2 r D / sqrt(D² - r²)`` at the axis' depth, of the view's ``2 D tan(fov/2)``."""
    T = lg.Transform4f
    r, dist, fov, w = 0.5, 4.0, 30.0, 32
    s = lg.load_dict({
        "type": "scene", "integrator": {"type": "path", "max_depth": 1},
        "sensor": {"type": "perspective", "fov": fov,
                   "to_world": T().look_at([0, 0, dist], [0, 0, 0], [0, 1, 0]),
                   "film": {"type": "hdrfilm", "width": w, "height": 4,
                            "rfilter": {"type": "box"}}},
        "tube": {"type": "cylinder", "p0": [0, -5, 0], "p1": [0, 5, 0], "radius": r,
                 "emitter": {"type": "area", "radiance": {"type": "rgb", "value": 1.0}}}})
    img = np.array(lg.render(s, spp=64))[..., 0]
    expected = 2 * r * dist / math.sqrt(dist ** 2 - r ** 2) / (2 * dist * math.tan(
        math.radians(fov / 2)))
    # Only the 2 edge pixels per row are noisy: each is a mean of 64 0/1 samples
    # (std <= 0.5/8), so a row's mean has std <= sqrt(2) * 0.0625 / 32 = 0.0028.
    np.testing.assert_allclose(img.mean(axis=1), expected, atol=4 * 0.0028)
    assert np.all(img[:, w // 2 - 2:w // 2 + 2] == 1.0)


# --------------------------------------------------------------------------- instances
GROUP_XML = '''<scene version="3.0.0">
<shape type="shapegroup" id="g">
  <shape type="cube" id="box"><bsdf type="diffuse" id="red">
    <rgb name="reflectance" value="0.8, 0.1, 0.1"/></bsdf>
    <transform name="to_world"><scale value="0.5"/></transform></shape>
  <shape type="rectangle"><transform name="to_world"><translate z="3"/></transform></shape>
</shape>
<shape type="instance" id="a"><ref id="g"/>
  <transform name="to_world"><rotate z="1" angle="90"/><translate y="5"/></transform></shape>
<shape type="instance"><ref id="g"/>
  <transform name="to_world"><scale x="-1"/><translate x="-4"/></transform></shape>
</scene>'''


def _world(mesh):
    import drjit as dr
    return np.array(dr.detach(mesh.world_positions()), dtype=np.float64).reshape(-1, 3)


def test_instances_flatten_with_reachable_parameters():
    from lumigrad.geometry import primitives

    s = lg.load_string(GROUP_XML)
    assert [m.id for m in s.shapes] == ["a.box", "a.shape_1", "instance_1.box",
                                        "instance_1.shape_1"]
    cube = primitives.cube().positions.astype(np.float64) * 0.5
    # rotate 90° about z then translate y by 5: (x, y, z) -> (-y, x + 5, z)
    np.testing.assert_allclose(_world(s.shapes[0]),
                               np.stack([-cube[:, 1], cube[:, 0] + 5, cube[:, 2]], 1),
                               atol=1e-6)
    # mirrored: (x, y, z) -> (-x - 4, y, z), baked, winding reversed: still outward
    w = _world(s.shapes[2])
    np.testing.assert_allclose(w, np.stack([-cube[:, 0] - 4, cube[:, 1], cube[:, 2]], 1),
                               atol=1e-6)
    f = s.shapes[2].faces_numpy()
    cross = np.cross(w[f[:, 1]] - w[f[:, 0]], w[f[:, 2]] - w[f[:, 0]])
    centre = (w[f[:, 0]] + w[f[:, 1]] + w[f[:, 2]]) / 3 - [-4, 0, 0]
    assert np.all(np.einsum("ij,ij->i", cross, centre) > 0)
    # the rectangle keeps facing +z (its front side) under the mirror
    r = _world(s.shapes[3])
    fr = s.shapes[3].faces_numpy()
    assert np.all(np.cross(r[fr[:, 1]] - r[fr[:, 0]], r[fr[:, 2]] - r[fr[:, 0]])[:, 2] > 0)
    params = lg.traverse(s)
    for k in ("a.box.vertex_positions", "a.box.to_world", "instance_1.shape_1.to_world",
              "red.reflectance.value"):
        assert k in params
    assert s.shapes[0].bsdf is s.shapes[2].bsdf  # shared material


def test_instances_dict_form_and_errors():
    s = lg.load_dict({
        "type": "scene",
        "g": {"type": "shapegroup", "ball": {"type": "sphere", "radius": 0.5}},
        "i1": {"type": "instance", "shape": {"type": "ref", "id": "g"},
               "to_world": lg.Transform4f().translate([2, 0, 0])},
        "i2": {"type": "instance", "shape": {"type": "ref", "id": "g"}}})
    assert [m.id for m in s.shapes] == ["i1.ball", "i2.ball"]
    w = _world(s.shapes[0])
    np.testing.assert_allclose((w.max(axis=0) + w.min(axis=0)) / 2, [2, 0, 0], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(w - [2, 0, 0], axis=1), 0.5, rtol=1e-6)
    with pytest.raises(SceneLoadError, match="expected a shapegroup"):
        lg.load_dict({"type": "scene", "c": {"type": "cube"},
                      "i": {"type": "instance", "s": {"type": "ref", "id": "c"}}})
    with pytest.raises(SceneLoadError, match="emitters cannot be instanced"):
        lg.load_dict({"type": "scene", "g": {"type": "shapegroup", "r": {
            "type": "rectangle", "emitter": {"type": "area"}}}})


def test_instance_renders_like_the_placed_shape():
    """An instance of a group renders as the same shape placed directly with the
    composed transform (same triangles, same random numbers)."""
    T = lg.Transform4f
    common = {
        "type": "scene", "integrator": {"type": "direct"},
        "sensor": {"type": "perspective", "fov": 40.0,
                   "to_world": T().look_at([0, -6, 3], [0, 0, 0], [0, 0, 1]),
                   "film": {"type": "hdrfilm", "width": 16, "height": 12}},
        "light": {"type": "point", "position": [1, -3, 4], "intensity": 20.0}}
    place = T().translate([0.5, 0, 0]).rotate([0, 0, 1], 30)
    a = lg.load_dict({**common, "g": {"type": "shapegroup", "c": {
        "type": "cube", "to_world": T().scale([1, 0.5, 0.7])}},
        "i": {"type": "instance", "s": {"type": "ref", "id": "g"}, "to_world": place}})
    b = lg.load_dict({**common, "c": {"type": "cube",
                                      "to_world": place @ T().scale([1, 0.5, 0.7])}})
    ia, ib = np.array(lg.render(a, spp=8, seed=3)), np.array(lg.render(b, spp=8, seed=3))
    assert ib.mean() > 0.01
    np.testing.assert_allclose(ia, ib, atol=2e-4)


def test_merge_keeps_its_shapes():
    s = lg.load_dict({"type": "scene", "m": {
        "type": "merge", "a": {"type": "cube"},
        "b": {"type": "rectangle", "to_world": lg.Transform4f().translate([0, 0, 3])}}})
    assert [x.id for x in s.shapes] == ["a", "b"]
    assert "b.vertex_positions" in lg.traverse(s)
    np.testing.assert_allclose(_world(s.shapes[1])[:, 2], 3.0)


def test_instance_transform_is_differentiable():
    """An instance copy's to_world is a parameter attached to the scene's world
    positions: d(world position)/d(translation) is the identity (here along x)."""
    import drjit as dr

    s = lg.load_dict({"type": "scene", "g": {"type": "shapegroup", "c": {"type": "cube"}},
                      "i": {"type": "instance", "s": {"type": "ref", "id": "g"},
                            "to_world": lg.Transform4f().translate([1, 2, 3])}})
    params = lg.traverse(s)
    tx = lg.Float(0.0)
    dr.enable_grad(tx)
    params["i.c.to_world"] = lg.Transform4f().translate(lg.Array3f(tx, 0.0, 0.0)) @ \
        params["i.c.to_world"]
    params.update()
    pos = s.positions
    dr.forward(tx)
    g = np.array(dr.grad(pos)).reshape(-1, 3)
    np.testing.assert_allclose(g, np.broadcast_to([1.0, 0.0, 0.0], g.shape), atol=1e-6)
    np.testing.assert_allclose(np.array(dr.detach(pos)).reshape(-1, 3).mean(0), [1, 2, 3],
                               atol=1e-6)


@pytest.mark.parametrize("p1, point, uv", [
    ((0, 0, 1), (0, 0.5, 0.3), (0.25, 0.3)),
    ((1, 1, 1), (0.765057, 0.0760838, 0.282776), (0.911122, 0.374639)),
    ((0, 0, -1), (0, 0.5, -0.3), (0.75, 0.3)),
])
def test_cylinder_uv_matches_mitsuba(p1, point, uv):
    """Hit points and uvs Mitsuba 3.9.1 reports on cylinders from p0 = 0 to p1
    (radius 0.5): the mesh's vertex nearest to the point carries the same uv to
    within the tessellation (1/512 in u, and v is exact along the axis)."""
    s = loader.instantiate_dict({"type": "cylinder", "p1": list(p1), "radius": 0.5})
    p, _, _ = _mesh_arrays(s)
    uvs = np.array(s.vertex_texcoords, dtype=np.float64).reshape(-1, 2)
    q = np.array(point)
    d = np.array(p1, float) / np.linalg.norm(p1)
    # the vertex nearest to the point around the axis (u; v is linear along it)
    near = np.argmin(np.linalg.norm((p - q) - np.outer((p - q) @ d, d), axis=1))
    assert abs(uvs[near, 0] - uv[0]) <= 1.0 / 512 + 1e-6
    t = (q @ d) / np.linalg.norm(p1)
    assert t == pytest.approx(uv[1], abs=1e-5)
