"""Tests of the XML scene loader (lumigrad.scene.loader / lumigrad.scene.xml)."""
import math
import os

import numpy as np
import pytest

from lumigrad.geometry import meshio, primitives
from lumigrad.geometry.transform import Transform4f
from lumigrad.scene import loader
from lumigrad.scene.loader import SceneLoadError
from lumigrad.scene.xml import srgb_to_linear

from .test_loader_support import plugins  # noqa: F401 (fixture)

CBOX = os.path.join(os.path.dirname(__file__), "data", "scenes", "cbox.xml")


def scene(body: str, version: str = "3.0.0") -> str:
    return f'<scene version="{version}">\n{body}\n</scene>\n'


def kinds(xml_props: str, **kw):
    """Instantiate a 'kinds' test plugin with the given property XML."""
    r = loader.instantiate_string(scene(f'<bsdf type="kinds" id="k">\n{xml_props}\n</bsdf>'), **kw)
    return r["ids"]["k"].values


def write(tmp_path, body: str, name="scene.xml", version="3.0.0"):
    p = tmp_path / name
    p.write_text(scene(body, version))
    return str(p)


def const(tex):
    return np.array(tex.value, dtype=np.float64).ravel()


def rot(axis, deg):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    t = math.radians(deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    m = np.eye(4)
    m[:3, :3] = np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * k @ k
    return m


def trans(t):
    m = np.eye(4)
    m[:3, 3] = t
    return m


def scl(s):
    return np.diag(list(np.broadcast_to(s, 3)) + [1.0])


# ----------------------------------------------------------------------------- cbox
def test_cbox_loads(plugins):
    r = loader.instantiate_file(CBOX)
    ids = r["ids"]
    names = ["light", "floor", "ceiling", "back", "green-wall", "red-wall", "small-box",
             "large-box"]
    assert [s.id for s in r["shapes"]] == names
    assert set(ids) == set(names) | {"white", "green", "red"}
    assert ids["floor"].bsdf is ids["white"] and ids["large-box"].bsdf is ids["white"]
    assert ids["green-wall"].bsdf is ids["green"]
    light = ids["light"]
    assert light.emitter is not None and light.emitter.shape is light
    assert r["emitters"] == [] and len(r["sensors"]) == 1
    np.testing.assert_allclose(const(ids["green"].reflectance), [0.105421, 0.37798, 0.076425],
                               rtol=1e-6)
    np.testing.assert_allclose(const(light.emitter.radiance), [18.387, 13.9873, 6.75357], rtol=1e-6)
    # the light's to_world is baked: compare with numpy matrices (scale, rotate, translate)
    m = trans([0, 0.99, 0.01]) @ rot([1, 0, 0], 90) @ scl([0.23, 0.19, 0.19])
    p = primitives.rectangle().positions.astype(float)
    expect = p @ m[:3, :3].T + m[:3, 3]
    np.testing.assert_allclose(light.positions_numpy(), expect, atol=1e-6)
    sensor = r["sensors"][0]
    assert sensor.film.width == 256 and sensor.film.height == 256
    assert sensor.sampler.sample_count == 64
    assert r["integrator"].max_depth == 8
    assert type(sensor.film.rfilter).__name__ == "GaussianFilter"
    np.testing.assert_allclose(sensor.to_world.numpy()[:3, 3], [0, 0, 3.9], atol=1e-6)


def test_defaults_and_overrides(plugins):
    r = loader.instantiate_file(CBOX, spp=16, res=128, max_depth=3)
    assert r["sensors"][0].film.width == 128
    assert r["sensors"][0].sampler.sample_count == 16
    assert r["integrator"].max_depth == 3
    with pytest.warns(UserWarning, match=r"'sp' \(did you mean spp\?\) are not used"):
        loader.instantiate_file(CBOX, sp=16)


def test_load_file_builds_scene(plugins):
    pytest.importorskip("lumigrad.scene.scene")
    sc = loader.load_file(CBOX, res=32, spp=1)
    assert len(sc.shapes) == 8


# ----------------------------------------------------------------------------- values
def test_value_tags(plugins):
    v = kinds("""
        <float name="f" value="2.5"/>
        <integer name="i" value="$n"/>
        <boolean name="b" value="TRUE"/>
        <string name="s" value="long_name"/>
        <rgb name="c" value="0.1, 0.2 0.3"/>
        <srgb name="tex" value="0.5"/>
        <point name="p" x="1" z="3"/>
        <vector name="v" value="0 1 0"/>
    """, n=7)
    assert v["f"] == 2.5 and v["i"] == 7 and v["b"] is True and v["s"] == "long_name"
    assert v["c"] == pytest.approx((0.1, 0.2, 0.3))
    assert v["p"] == (1.0, 0.0, 3.0) and v["v"] == (0.0, 1.0, 0.0)
    np.testing.assert_allclose(const(v["tex"]), srgb_to_linear([0.5] * 3), rtol=1e-6)
    assert srgb_to_linear(0.5) == pytest.approx(0.21404, abs=1e-5)
    # grey forms and the texture default (wrapped as a constant texture)
    v = kinds('<spectrum name="c" value="0.3"/><float name="tex" value="0.75"/>')
    assert v["c"] == (0.3, 0.3, 0.3)
    np.testing.assert_allclose(const(v["tex"]), 0.75)
    v = kinds("")
    # only given values are passed, except texture defaults, which become constant
    # textures (so their keys exist, as in Mitsuba)
    assert set(v) == {"tex"}
    np.testing.assert_allclose(const(v["tex"]), 0.25)
    v = kinds('<srgb name="c" value="#ff8000"/><rgb name="tex" value="0.5"/>')
    np.testing.assert_allclose(v["c"], srgb_to_linear([1.0, 128 / 255, 0.0]), rtol=1e-6)
    # float accepted where an integer-valued float is fine; integer accepted for float
    assert kinds('<integer name="f" value="4"/>')["f"] == 4.0


# ----------------------------------------------------------------------------- transforms
def tf(ops: str) -> np.ndarray:
    return kinds(f'<transform name="to_world">{ops}</transform>')["to_world"].numpy()


def test_transform_operations(plugins):
    np.testing.assert_allclose(tf('<translate x="1" z="-2"/>'), trans([1, 0, -2]), atol=1e-7)
    np.testing.assert_allclose(tf('<translate value="1, 2, 3"/>'), trans([1, 2, 3]), atol=1e-7)
    np.testing.assert_allclose(tf('<scale value="2"/>'), scl(2), atol=1e-7)
    np.testing.assert_allclose(tf('<scale y="3"/>'), scl([1, 3, 1]), atol=1e-7)
    np.testing.assert_allclose(tf('<rotate y="1" angle="30"/>'), rot([0, 1, 0], 30), atol=1e-6)
    np.testing.assert_allclose(tf('<rotate value="1, 1, 0" angle="-45"/>'),
                               rot([1, 1, 0], -45), atol=1e-6)
    # right-handed: +X rotated 90 degrees about +Z is +Y
    np.testing.assert_allclose(tf('<rotate z="1" angle="90"/>') @ [1, 0, 0, 1], [0, 1, 0, 1],
                               atol=1e-6)
    m16 = np.arange(16, dtype=float).reshape(4, 4) + np.eye(4) * 20
    np.testing.assert_allclose(
        tf(f'<matrix value="{" ".join(str(x) for x in m16.ravel())}"/>'), m16, rtol=1e-6)
    m9 = np.array([[1, 2, 0], [0, 1, 0], [0, 0, 2.0]])
    e = np.eye(4)
    e[:3, :3] = m9
    np.testing.assert_allclose(tf(f'<matrix value="{" ".join(map(str, m9.ravel()))}"/>'), e)
    look = tf('<lookat origin="1, 2, 3" target="0, 0, 0" up="0, 1, 0"/>')
    ref = Transform4f.looking_at([1, 2, 3], [0, 0, 0], [0, 1, 0]).numpy()
    np.testing.assert_allclose(look, ref, atol=1e-6)
    np.testing.assert_allclose(look[:3, 2], -np.array([1, 2, 3]) / np.sqrt(14), atol=1e-6)


def test_transform_composition_order(plugins):
    # each new operation is applied after the previous ones (left-multiplied)
    m = tf('<scale x="2" y="3" z="4"/><rotate x="1" angle="90"/><translate y="5"/>'
           '<rotate y="1" angle="20"/>')
    ref = rot([0, 1, 0], 20) @ trans([0, 5, 0]) @ rot([1, 0, 0], 90) @ scl([2, 3, 4])
    np.testing.assert_allclose(m, ref, atol=1e-6)
    # and the equivalent Transform4f chain (Mitsuba semantics) agrees
    chain = (Transform4f().rotate([0, 1, 0], 20).translate([0, 5, 0]).rotate([1, 0, 0], 90)
             .scale([2, 3, 4]))
    np.testing.assert_allclose(m, chain.numpy(), atol=1e-5)


# ----------------------------------------------------------------------------- references
def test_refs_forward_named_and_shared(plugins):
    r = loader.instantiate_string(scene("""
        <bsdf type="kinds" id="outer">
            <ref name="nested" id="inner"/>
            <ref id="t1"/>
            <texture type="constant" name="many"><rgb name="value" value="1 0 0"/></texture>
        </bsdf>
        <bsdf type="kinds" id="inner"/>
        <texture type="constant" id="t1"><float name="value" value="0.5"/></texture>
        <shape type="rectangle" id="r1"><ref id="inner"/></shape>
        <shape type="rectangle" id="r2"><ref name="bsdf" id="inner"/></shape>
    """))
    ids = r["ids"]
    outer = ids["outer"].values
    assert outer["nested"] is ids["inner"]
    assert len(outer["many"]) == 2 and outer["many"][0] is ids["t1"]
    assert ids["r1"].bsdf is ids["inner"] and ids["r2"].bsdf is ids["inner"]


def test_default_bsdf_and_nested_objects(plugins):
    r = loader.instantiate_string(scene("""
        <shape type="cube" id="c"/>
        <shape type="rectangle" id="r">
            <bsdf type="kinds"><bsdf type="kinds" id="deep"/></bsdf>
        </shape>
    """))
    c = r["ids"]["c"]
    assert type(c.bsdf).PLUGIN == ("bsdf", "diffuse")
    assert r["ids"]["r"].bsdf.values["nested"] is r["ids"]["deep"]


# ----------------------------------------------------------------------------- 0.6 dialect
def test_psdr_dialect(plugins, tmp_path):
    m = primitives.rectangle()
    meshio.write_obj(tmp_path / "quad.obj", m.positions, m.faces)
    path = write(tmp_path, """
        <integrator type="direct"/>
        <sensor type="perspective">
            <string name="fovAxis" value="x"/>
            <float name="fov" value="45"/>
            <transform name="toWorld">
                <lookAt origin="0, 0, 5" target="0, 0, 0" up="0, 1, 0"/>
            </transform>
            <sampler type="independent"><integer name="sampleCount" value="4"/></sampler>
            <film type="hdrfilm">
                <integer name="width" value="32"/><integer name="height" value="16"/>
                <rfilter type="box"/>
            </film>
        </sensor>
        <shape type="obj">
            <string name="filename" value="quad.obj"/>
            <transform name="toWorld"><scale value="2"/></transform>
            <bsdf type="diffuse"><spectrum name="reflectance" value="0.2, 0.4, 0.6"/></bsdf>
            <emitter type="area"><spectrum name="radiance" value="10"/></emitter>
        </shape>
    """, version="0.6.0")
    r = loader.instantiate_file(path)
    s = r["sensors"][0]
    assert s.sampler.sample_count == 4 and s.film.width == 32
    assert float(np.array(s.x_fov).ravel()[0]) == pytest.approx(45.0)
    shape = r["shapes"][0]
    np.testing.assert_allclose(np.abs(shape.positions_numpy()).max(), 2.0)
    np.testing.assert_allclose(const(shape.bsdf.reflectance), [0.2, 0.4, 0.6], rtol=1e-6)
    # a flat emission spectrum is light of the equal-energy illuminant: XYZ = 10 (1, 1, 1),
    # whose linear sRGB is 10 x the row sums of the XYZ -> sRGB matrix (as in Mitsuba)
    np.testing.assert_allclose(const(shape.emitter.radiance), [12.04794, 9.48291, 9.08916],
                               rtol=1e-5)
    assert kinds('<integer name="maxDepth" value="5"/>')["max_depth"] == 5


def test_include(plugins, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "part.xml").write_text(scene('<bsdf type="kinds" id="inc">'
                                                     '<float name="f" value="$x"/></bsdf>'))
    path = write(tmp_path, '<default name="x" value="3"/><include filename="sub/part.xml"/>'
                           '<shape type="cube"><ref id="inc"/></shape>')
    r = loader.instantiate_file(path)
    assert r["shapes"][0].bsdf.values["f"] == 3.0


# ----------------------------------------------------------------------------- errors
ERRORS = [
    # (body, line, regex)
    ('<bsdf type="kinds"><float name="f" value="1"></bsdf>', 1, r"malformed XML"),
    ('<bsdf type="kinds"/>\n<medium type="x"/>', 2, r"medium plugin .x. is not supported yet"),
    ('<bsdf type="difuse"/>', 1, r"unknown bsdf plugin type 'difuse' \(did you mean 'diffuse'"),
    ('<bsdf type="kinds">\n<float name="ff" value="1"/></bsdf>', 2,
     r"bsdf of type 'kinds' has no parameter 'ff' \(did you mean 'f'.*accepted: b, c, f"),
    ('<bsdf type="kinds">\n<string name="f" value="1"/></bsdf>', 2,
     r"parameter 'f': expected a <float>, got <string>"),
    ('<bsdf type="kinds">\n<rgb name="c" value="1 2"/></bsdf>', 2,
     r"<rgb> needs 1 or 3 values, got 2"),
    ('<bsdf type="kinds">\n<float name="f" value="nan"/></bsdf>', 2, r"not finite"),
    ('<bsdf type="kinds">\n<float name="f" value="inf"/></bsdf>', 2, r"not finite"),
    ('<bsdf type="kinds">\n<float name="f" value="11"/></bsdf>', 2,
     r"parameter 'f': value 11.0 is above the maximum 10"),
    ('<bsdf type="kinds">\n<float name="tex" value="-1"/></bsdf>', 2,
     r"parameter 'tex': value -1.0 is below the minimum 0"),
    ('<bsdf type="kinds">\n<integer name="i" value="1.5"/></bsdf>', 2, r"'1.5' is not an integer"),
    ('<bsdf type="kinds">\n<integer name="i" value="0"/></bsdf>', 2, r"parameter 'i'.*below"),
    ('<bsdf type="kinds">\n<boolean name="b" value="yes"/></bsdf>', 2, r"not a boolean"),
    ('<bsdf type="kinds">\n<string name="s" value="c"/></bsdf>', 2,
     r"parameter 's': 'c' is not one of a, b, long_name"),
    ('<bsdf type="kinds">\n<float name="f" value="1"/>\n<float name="f" value="2"/></bsdf>', 3,
     r"parameter 'f' is given twice \(first at .*:3\)"),
    ('<bsdf type="needs" id="n"/>', 1, r"bsdf 'n' \(type 'needs'\): missing required "
                                       r"parameter 'must' \(a number\)"),
    ('<bsdf type="kinds">\n<float name="f" value="$nope"/></bsdf>', 2,
     r"uses \$nope, which is not defined"),
    ('<bsdf type="kinds" id="a"/>\n<bsdf type="kinds" id="a"/>', 2,
     r"duplicate id 'a' \(first declared at .*:2\)"),
    ('<bsdf type="kinds" id="white"/>\n<shape type="cube">\n<ref id="whit"/></shape>', 3,
     r"unknown id \(did you mean 'white'\?\); known ids: white"),
    ('<texture type="constant" id="t"/>\n<shape type="cube">\n<ref name="bsdf" id="t"/></shape>',
     3, r"parameter 'bsdf' expects a bsdf, but 't' is a texture"),
    ('<shape type="cube">\n<texture type="constant"/></shape>', 2,
     r"does not accept a nested <texture>"),
    ('<shape type="cube">\n<bsdf type="kinds"/>\n<bsdf type="kinds"/></shape>', 3,
     r"more than one nested bsdf"),
    ('<bsdf type="diffuse">\n<texture type="constant"/></bsdf>', 2,
     r"a nested <texture> needs a name attribute .*one of: reflectance"),
    ('<emitter type="area"/>', 1, r"area emitter must be nested inside a <shape>"),
    ('<shape type="obj">\n<string name="filename" value="/nonexistent/x.obj"/></shape>', 1,
     r"cannot create shape of type 'obj': mesh file '/nonexistent/x.obj' does not exist"),
    ('<bsdf type="kinds">\n<float name="f" valeu="1"/></bsdf>', 2, r"unknown attribute\(s\) valeu"),
    ('<bsdf type="kinds">\n<transform name="to_world"><rotate x="1"/></transform></bsdf>', 2,
     r"<rotate> needs the attribute 'angle'"),
    ('<bsdf type="kinds">\n<transform name="to_world"><shear x="1"/></transform></bsdf>', 2,
     r"unknown transform operation <shear>"),
    ('<bsdf type="kinds">\n<transform name="to_world"><matrix value="1 2 3"/></transform></bsdf>',
     2, r"<matrix> needs 16 \(4x4\) or 9 \(3x3\) numbers, got 3"),
    ('<bsdf type="kinds">\n<point name="p" value="1 2"/></bsdf>', 2, r"needs 3 numbers, got 2"),
    ('<bsdf type="kinds">\n<rgb name="p" value="1 2 3"/></bsdf>', 2,
     r"parameter 'p': expected a <point> \(3 numbers\), got <rgb>"),
    ('<float name="x" value="1"/>', 1, r"<float> is a property and cannot appear directly"),
    ('<integrator type="path"/>\n<integrator type="path"/>', 2, r"at most one <integrator>"),
    ('<sensor type="perspective">\n<film type="hdrfilm">\n<integer name="width" value="0"/>'
     '</film></sensor>', 3, r"film of type 'hdrfilm', parameter 'width': value 0 is below"),
    ('<sensor type="perspective">\n<float name="fov" value="200"/></sensor>', 2,
     r"parameter 'fov': value 200.0 must be less than 180"),
]


@pytest.mark.parametrize("body,line,match", ERRORS)
def test_errors_name_file_line_and_parameter(plugins, tmp_path, body, line, match):
    path = write(tmp_path, body)
    with pytest.raises(SceneLoadError, match=match) as e:
        loader.instantiate_file(path)
    # the scene body starts on line 2 of the file
    assert str(e.value).startswith(f"{path}:{line + 1}"), str(e.value)


def test_version_errors(plugins, tmp_path):
    p = tmp_path / "v.xml"
    p.write_text('<scene version="4.2.0"><shape type="cube"/></scene>')
    with pytest.raises(SceneLoadError, match=r"v.xml:1: unsupported scene version '4.2.0'"):
        loader.instantiate_file(p)
    p.write_text('<scene><shape type="cube"/></scene>')
    with pytest.raises(SceneLoadError, match=r"v.xml:1: <scene> needs a version"):
        loader.instantiate_file(p)
    p.write_text('<shape version="3.0.0" type="cube"/>')
    with pytest.raises(SceneLoadError, match=r"root element must be <scene>"):
        loader.instantiate_file(p)
    with pytest.raises(FileNotFoundError, match="missing.xml"):
        loader.instantiate_file(tmp_path / "missing.xml")


def test_malformed_xml_reports_line_and_column(plugins):
    with pytest.raises(SceneLoadError, match=r"<string>:3:\d+: malformed XML"):
        loader.instantiate_string('<scene version="3.0.0">\n<shape type="cube">\n</scene>')


def test_relative_filenames_resolve_next_to_the_scene(plugins, tmp_path, monkeypatch):
    (tmp_path / "meshes").mkdir()
    m = primitives.cube()
    meshio.write_ply(tmp_path / "meshes" / "c.ply", m.positions, m.faces)
    path = write(tmp_path, '<shape type="ply" id="m"><string name="filename" '
                           'value="meshes/c.ply"/></shape>')
    monkeypatch.chdir("/")
    r = loader.instantiate_file(path)
    assert r["ids"]["m"].face_count == 12


def test_textures_nested_and_referenced(plugins):
    if ("texture", "checkerboard") not in plugins:
        pytest.skip("no checkerboard texture plugin")
    r = loader.instantiate_string(scene("""
        <texture type="checkerboard" id="checks"/>
        <bsdf type="diffuse" id="a"><texture type="checkerboard" name="reflectance"/></bsdf>
        <bsdf type="diffuse" id="b"><ref name="reflectance" id="checks"/></bsdf>
    """))
    ids = r["ids"]
    assert type(ids["a"].reflectance).PLUGIN == ("texture", "checkerboard")
    assert ids["b"].reflectance is ids["checks"]
    with pytest.raises(SceneLoadError, match=r"<string>:3: .*parameter 'reflectance' expects a "
                                             r"texture, but 'a' is a bsdf"):
        loader.instantiate_string(scene('<bsdf type="diffuse" id="a"/>\n'
                                        '<bsdf type="diffuse"><ref name="reflectance" id="a"/></bsdf>'))
