"""Bad input that used to render silently wrong or give messages naming nothing
(issue 10): each must be a clear error naming the file (and line), the plugin,
the parameter and the problem."""
from __future__ import annotations

import numpy as np
import pytest

import lumigrad as lg
from lumigrad import io
from lumigrad.geometry.transform import Transform4f
from lumigrad.scene.loader import SceneLoadError

SENSOR = """<sensor type="perspective"><float name="fov" value="30"/>
    <transform name="to_world">{tw}</transform>
    <film type="hdrfilm"><integer name="width" value="4"/><integer name="height" value="4"/></film>
</sensor>"""
LOOKAT = '<lookat origin="0, 0, 5" target="0, 0, 0" up="0, 1, 0"/>'


def scene(*parts: str) -> str:
    return '<scene version="3.0.0">\n' + "\n".join(parts) + "\n</scene>\n"


def write_exr(path, img) -> None:
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, {"RGB": np.ascontiguousarray(img, dtype=np.float32)}).write(str(path))


# -- negative emitted quantities (rendered negative pixels before) -------------

@pytest.mark.parametrize("emitter", [
    '<shape type="rectangle"><emitter type="area"><rgb name="radiance" value="1, -0.5, 1"/>'
    '</emitter></shape>',
    '<shape type="rectangle"><emitter type="area"><spectrum name="radiance" value="-3"/>'
    '</emitter></shape>',
    '<emitter type="point"><float name="intensity" value="-1"/></emitter>',
    '<emitter type="constant"><rgb name="radiance" value="-0.1"/></emitter>',
    '<emitter type="directional"><vector name="direction" value="0, 0, -1"/>'
    '<rgb name="irradiance" value="-2"/></emitter>',
])
def test_negative_emission_is_an_error(emitter):
    with pytest.raises(SceneLoadError) as e:
        lg.load_string(scene(SENSOR.format(tw=LOOKAT), emitter))
    msg = str(e.value)
    assert msg.startswith("<string>:")
    assert "below the minimum 0" in msg
    assert any(p in msg for p in ("'radiance'", "'intensity'", "'irradiance'"))


def test_negative_emission_dict_form():
    with pytest.raises(SceneLoadError, match=r"scene\['light'\].*'radiance'.*minimum"):
        lg.load_dict({"type": "scene", "light": {"type": "constant",
                                                  "radiance": {"type": "rgb",
                                                               "value": [1.0, -1.0, 1.0]}}})
    with pytest.raises(SceneLoadError, match="'scale'.*minimum"):
        lg.load_dict({"type": "scene", "env": {"type": "envmap", "scale": -1.0,
                                                "bitmap": np.ones((4, 8, 3), np.float32)}})


# -- degenerate transforms (a uniform image before, for the sensor) -------------

@pytest.mark.parametrize("tw", [
    LOOKAT + '<scale value="0"/>',
    '<scale x="1" y="0" z="1"/>' + LOOKAT,
    '<matrix value="1 0 0 0  0 1 0 0  1 1 0 5  0 0 0 1"/>',   # rank 2: a projection
])
def test_degenerate_sensor_to_world_is_an_error(tw):
    with pytest.raises(SceneLoadError) as e:
        lg.load_string(scene(SENSOR.format(tw=tw)))
    msg = str(e.value)
    assert msg.startswith("<string>:3:")              # the line of the <transform>
    assert "sensor" in msg and "'to_world'" in msg and "degenerate" in msg


def test_degenerate_emitter_and_shape_to_world_are_errors():
    bad = '<transform name="to_world"><scale value="1, 1, 0"/></transform>'
    for obj in (f'<emitter type="point">{bad}</emitter>',
                f'<emitter type="directional">{bad}</emitter>',
                f'<emitter type="envmap"><float name="scale" value="1"/>{bad}'
                '<string name="filename" value="nowhere.exr"/></emitter>',
                f'<shape type="sphere">{bad}</shape>'):
        with pytest.raises(SceneLoadError, match=r"'to_world'.*degenerate"):
            lg.load_string(scene(obj))
    # dict form, with a Transform4f
    with pytest.raises(SceneLoadError, match=r"scene\['cam'\].*'to_world'.*degenerate"):
        lg.load_dict({"type": "scene", "cam": {"type": "perspective",
                                                "to_world": Transform4f().scale(0.0)}})
    # a tiny but invertible scale is fine (the test is scale-free)
    sc = lg.load_string(scene(SENSOR.format(tw=LOOKAT + '<scale value="1e-4"/>'),
                              '<shape type="rectangle"/>'))
    assert len(sc.sensors) == 1


# -- image files -----------------------------------------------------------------

def test_nan_in_texture_or_envmap_names_the_file(tmp_path):
    img = np.full((8, 16, 3), 0.5, np.float32)
    img[3, 5, 1] = np.nan
    path = tmp_path / "holes.exr"
    write_exr(path, img)
    tex = ('<shape type="rectangle"><bsdf type="diffuse"><texture type="bitmap" '
           f'name="reflectance"><string name="filename" value="{path}"/></texture></bsdf></shape>')
    env = f'<emitter type="envmap"><string name="filename" value="{path}"/></emitter>'
    for obj, plugin in ((tex, "bitmap"), (env, "envmap")):
        with pytest.raises(SceneLoadError) as e:
            lg.load_string(scene(obj))
        msg = str(e.value)
        assert str(path) in msg and plugin in msg
        assert "1 NaN" in msg and "row 3, column 5" in msg


def test_truncated_exr_names_the_file(tmp_path):
    good = tmp_path / "sky.exr"
    write_exr(good, np.full((32, 64, 3), 0.25, np.float32))
    data = good.read_bytes()
    assert io.read_image(good).shape == (32, 64, 3)
    cut = tmp_path / "cut.exr"
    # every cut point: inside the header, just after it (OpenEXR then opens the
    # file and fails later with "file has 0 parts"), inside the pixel data
    messages = []
    for n in sorted(set(np.linspace(0, len(data) - 1, 41).astype(int)) | {len(data) // 2}):
        cut.write_bytes(data[:n])
        with pytest.raises(ValueError, match=f"cannot read EXR file '{cut}'") as e:
            io.read_image(cut)
        messages.append(str(e.value))
    assert any("truncated or corrupt" in m for m in messages)   # the 'file has 0 parts' case
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SceneLoadError, match=rf"<string>:2: .*envmap.*'{cut}'"):
        lg.load_string(scene(f'<emitter type="envmap"><string name="filename" '
                             f'value="{cut}"/></emitter>'))


# -- encoding ---------------------------------------------------------------------

def test_non_utf8_byte_is_an_encoding_error(tmp_path):
    path = tmp_path / "latin.xml"
    path.write_bytes(b'<scene version="3.0.0">\n  <shape type="obj">\n'
                     b'    <string name="filename" value="caf\xe9.obj"/>\n  </shape>\n</scene>\n')
    with pytest.raises(SceneLoadError) as e:
        lg.load_file(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:3:39:")
    assert "encoding" in msg and "0xe9" in msg and "UTF-8" in msg
    # the same bytes under a declared encoding are read as that encoding
    path.write_bytes(b'<?xml version="1.0" encoding="latin-1"?>\n' + path.read_bytes())
    with pytest.raises(SceneLoadError, match="caf\u00e9.obj' does not exist"):
        lg.load_file(path)


@pytest.mark.parametrize("bsdf,param", [
    ('<bsdf type="diffuse"><rgb name="reflectance" value="0.5, -0.1, 0.2"/></bsdf>', "reflectance"),
    ('<bsdf type="roughplastic"><float name="diffuse_reflectance" value="-1"/></bsdf>',
     "diffuse_reflectance"),
    ('<bsdf type="plastic"><float name="specular_reflectance" value="-1"/></bsdf>',
     "specular_reflectance"),
    ('<bsdf type="conductor"><rgb name="k" value="-2"/></bsdf>', "k"),
    ('<bsdf type="roughconductor"><float name="alpha" value="-0.1"/></bsdf>', "alpha"),
    ('<bsdf type="roughdielectric"><float name="specular_transmittance" value="-0.5"/></bsdf>',
     "specular_transmittance"),
    ('<bsdf type="diffuse"><texture type="checkerboard" name="reflectance">'
     '<float name="color1" value="-0.2"/></texture></bsdf>', "color1"),
])
def test_negative_reflectances_are_errors(bsdf, param):
    # a negative albedo would render negative pixels silently
    with pytest.raises(SceneLoadError, match=rf"<string>:2: .*parameter '{param}'.*minimum 0"):
        lg.load_string(scene(f'<shape type="sphere">{bsdf}</shape>'))
