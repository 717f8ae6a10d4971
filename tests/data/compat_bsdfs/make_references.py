"""Write the small scenes of tests/test_bsdfs_extra.py (``<name>.xml``) and render
their references with Mitsuba 3 (``<name>.npy``, float32 H×W×3, linear).

Mitsuba is an optional development tool, never a dependency of lumigrad: run
this script by hand (``python tests/data/compat_bsdfs/make_references.py
[name ...]``) with Mitsuba 3.9.1 installed. The ``scalar_rgb`` variant is used
(its LLVM kernels need no particular LLVM). Each scene: a diffuse checkerboard
floor, a small area light and a dim constant environment, and one object
(a tilted pane or a sphere) with the BSDF under test; 24×24 pixels, box
filter, ``path`` integrator.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SPP_REFERENCE = 8192

TEMPLATE = """<scene version="3.0.0">
    <integrator type="path">
        <integer name="max_depth" value="{max_depth}"/>
    </integrator>
    <sensor type="perspective">
        <float name="fov" value="40"/>
        <transform name="to_world">
            <lookat origin="0, -2.5, 3.5" target="0, 0, 0.3" up="0, 0, 1"/>
        </transform>
        <sampler type="independent">
            <integer name="sample_count" value="64"/>
        </sampler>
        <film type="hdrfilm">
            <integer name="width" value="24"/>
            <integer name="height" value="24"/>
            <rfilter type="box"/>
        </film>
    </sensor>
    <shape type="rectangle" id="floor">
        <transform name="to_world"><scale value="2.5"/></transform>
        <bsdf type="diffuse">
            <texture type="checkerboard" name="reflectance">
                <rgb name="color0" value="0.7, 0.6, 0.5"/>
                <rgb name="color1" value="0.2, 0.3, 0.4"/>
                <transform name="to_uv"><scale value="4"/></transform>
            </texture>
        </bsdf>
    </shape>
    <shape type="rectangle" id="light">
        <transform name="to_world">
            <scale value="0.4"/>
            <lookat origin="1.2, 0.8, 2.6" target="0, 0, 0" up="0, 0, 1"/>
        </transform>
        <emitter type="area"><rgb name="radiance" value="12, 11, 10"/></emitter>
    </shape>
    <emitter type="constant"><rgb name="radiance" value="0.15, 0.2, 0.25"/></emitter>
{object}
</scene>
"""

PANE = """    <shape type="rectangle" id="object">
        <transform name="to_world">
            <scale value="0.9"/>
            <rotate x="1" angle="-35"/>
            <translate value="0, 0, 0.8"/>
        </transform>
{bsdf}
    </shape>"""

SPHERE = """    <shape type="sphere" id="object">
        <point name="center" value="0, 0, 0.6"/>
        <float name="radius" value="0.6"/>
{bsdf}
    </shape>"""

#: name: (object template, max_depth, BSDF XML)
SCENES = {
    "thindielectric_pane": (PANE, 6, """        <bsdf type="thindielectric">
            <float name="int_ior" value="1.7"/>
        </bsdf>"""),
    "null_pane": (PANE, 4, """        <bsdf type="null"/>"""),
    "mask_pane": (PANE, 5, """        <bsdf type="mask">
            <float name="opacity" value="0.3"/>
            <bsdf type="diffuse"><rgb name="reflectance" value="0.8, 0.2, 0.1"/></bsdf>
        </bsdf>"""),
    "blendbsdf_sphere": (SPHERE, 4, """        <bsdf type="blendbsdf">
            <!-- (not a checkerboard: Mitsuba 3.9.1's checkerboard eval_1, which a
                 weight uses, has the opposite parity of its RGB eval) -->
            <float name="weight" value="0.35"/>
            <bsdf type="diffuse"><rgb name="reflectance" value="0.8, 0.3, 0.1"/></bsdf>
            <bsdf type="conductor"><rgb name="specular_reflectance" value="0.9, 0.7, 0.4"/></bsdf>
        </bsdf>"""),
    "normalmap_pane": (PANE, 3, """        <bsdf type="normalmap">
            <texture type="bitmap" name="normalmap">
                <string name="filename" value="normals.exr"/>
                <boolean name="raw" value="true"/>
            </texture>
            <bsdf type="diffuse"><rgb name="reflectance" value="0.7, 0.6, 0.5"/></bsdf>
        </bsdf>"""),
    "bumpmap_sphere": (SPHERE, 3, """        <bsdf type="bumpmap">
            <texture type="bitmap" name="arbitrary">
                <string name="filename" value="height.exr"/>
                <boolean name="raw" value="true"/>
            </texture>
            <float name="scale" value="0.04"/>
            <bsdf type="diffuse"><rgb name="reflectance" value="0.7, 0.6, 0.5"/></bsdf>
        </bsdf>"""),
    "principled_sphere": (SPHERE, 5, """        <bsdf type="principled">
            <rgb name="base_color" value="0.9, 0.5, 0.3"/>
            <float name="metallic" value="0.3"/>
            <float name="specular" value="0.6"/>
            <float name="roughness" value="0.35"/>
            <float name="spec_tint" value="0.4"/>
            <float name="anisotropic" value="0.5"/>
            <float name="sheen" value="0.3"/>
            <float name="sheen_tint" value="0.2"/>
            <float name="clearcoat" value="0.6"/>
            <float name="clearcoat_gloss" value="0.3"/>
            <float name="flatness" value="0.4"/>
        </bsdf>"""),
    "principled_glass": (SPHERE, 6, """        <bsdf type="principled">
            <rgb name="base_color" value="0.95, 0.85, 0.7"/>
            <float name="spec_trans" value="0.85"/>
            <float name="eta" value="1.4"/>
            <float name="roughness" value="0.25"/>
            <float name="clearcoat" value="0.3"/>
        </bsdf>"""),
    "principled_aniso": (SPHERE, 3, """        <bsdf type="principled">
            <rgb name="base_color" value="0.9, 0.8, 0.7"/>
            <float name="metallic" value="1"/>
            <float name="roughness" value="0.4"/>
            <float name="anisotropic" value="1.0"/>
        </bsdf>"""),
}


def write_textures() -> None:
    """``normals.exr``: tangent-space normals tilted by up to ~40° in a smooth
    pattern (RGB = (n + 1) / 2); ``height.exr``: a grey height field of smooth
    bumps (3 × 2 periods) on 32 × 32 texels."""
    import mitsuba as mi
    y, x = np.mgrid[0:32, 0:32] + 0.5
    x, y = x / 32, y / 32
    n = np.stack([0.8 * np.sin(2 * np.pi * x), 0.6 * np.cos(4 * np.pi * y), np.ones_like(x)], -1)
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    mi.Bitmap(((n + 1) / 2).astype(np.float32)).write(str(HERE / "normals.exr"))
    h = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * x) * np.sin(2 * np.pi * 2 * y)
    mi.Bitmap(np.repeat(h[..., None], 3, -1).astype(np.float32)).write(str(HERE / "height.exr"))


def scene_xml(name: str) -> str:
    obj, depth, bsdf = SCENES[name]
    return TEMPLATE.format(max_depth=depth, object=obj.format(bsdf=bsdf))


def main(names: list[str]) -> None:
    import mitsuba as mi
    mi.set_variant("scalar_rgb")
    write_textures()
    for name in names or list(SCENES):
        xml = scene_xml(name)
        (HERE / f"{name}.xml").write_text(xml)
        scene = mi.load_file(str(HERE / f"{name}.xml"))
        img = np.zeros((24, 24, 3))
        chunks = 8
        for k in range(chunks):    # several seeds: one render's spp is capped by its sampler
            img += np.array(mi.render(scene, seed=k, spp=SPP_REFERENCE // chunks))[..., :3]
        np.save(HERE / f"{name}.npy", (img / chunks).astype(np.float32))
        print(name, img.mean((0, 1)) / chunks)


if __name__ == "__main__":
    main(sys.argv[1:])
