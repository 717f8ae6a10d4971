"""Write the small scenes of tests/test_compat_bugs.py (``<name>.xml``) and render
their references with Mitsuba 3 (``<name>.npy``, float32 H×W×3, linear).

Mitsuba is an optional development tool, never a dependency of lumigrad: run
this script by hand (``python tests/data/compat/make_references.py [name ...]``)
with Mitsuba 3.9.1 installed. The ``scalar_rgb`` variant is used (its kernels
need no particular LLVM).

``rough_plates``: three 1.8×1.8 plates on the ground, seen from above at an
angle, each lit by a point light above and behind it whose mirror reflection
falls on the plate (``max_depth`` 2: direct light only, so the only noise is the
pixel's antialiasing): a ``roughconductor`` (copper-like, α 0.25), a
``roughplastic`` (α 0.6, reddish base) and a ``roughdielectric`` (α 0.3), each
with its *default* microfacet distribution (Mitsuba: ``beckmann``).

``rough_plates_env``: the same plates under a constant sky and a small spherical
area light (``max_depth`` 4): BSDF sampling, MIS and the transmission through the
rough dielectric.

``textured_shapes``: a 4×4 texture (``texels_4x4.exr``) as the radiance of a
cube, a disk, a sphere and a mirrored rectangle seen directly: the uv layouts of
Mitsuba's shapes with ``v = 0`` at the image's first row.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SPP_REFERENCE = 4096
WIDTH, HEIGHT = 64, 24

TEMPLATE = """<scene version="3.0.0">
    <integrator type="path">
        <integer name="max_depth" value="{max_depth}"/>
    </integrator>
    <sensor type="perspective">
        <float name="fov" value="58"/>
        <transform name="to_world">
            <lookat origin="0, 3.2, 4.2" target="0, 0, 0.2" up="0, 1, 0"/>
        </transform>
        <sampler type="independent">
            <integer name="sample_count" value="64"/>
        </sampler>
        <film type="hdrfilm">
            <integer name="width" value="{width}"/>
            <integer name="height" value="{height}"/>
            <rfilter type="box"/>
        </film>
    </sensor>
{lights}
{objects}
</scene>
"""

PLATE = """    <shape type="rectangle" id="{id}">
        <transform name="to_world">
            <scale value="0.9"/>
            <rotate x="1" angle="-90"/>
            <translate x="{x}"/>
        </transform>
{bsdf}
    </shape>"""

ROUGH = [
    ("conductor", -2.0, """        <bsdf type="roughconductor">
            <!-- (eta, k as RGB: Mitsuba's named materials are spectra, which its RGB
                 mode converts differently from lumigrad's table) -->
            <rgb name="eta" value="0.2, 0.9, 1.1"/>
            <rgb name="k" value="3.9, 2.4, 2.1"/>
            <float name="alpha" value="0.25"/>
        </bsdf>"""),
    ("plastic", 0.0, """        <bsdf type="roughplastic">
            <float name="alpha" value="0.6"/>
            <rgb name="diffuse_reflectance" value="0.7, 0.3, 0.2"/>
        </bsdf>"""),
    ("dielectric", 2.0, """        <bsdf type="roughdielectric">
            <float name="alpha" value="0.3"/>
            <float name="int_ior" value="1.5"/>
        </bsdf>"""),
]

#: a 4x4 texture of distinct colours (written next to the scenes as texels_4x4.exr)
TEXELS = (np.arange(48, dtype=np.float32).reshape(4, 4, 3) % 7 + 1) / 7.0


def textured(shape: str, transform: str) -> str:
    return f"""    <shape type="{shape}">
        <transform name="to_world">{transform}</transform>
        <emitter type="area"><texture type="bitmap" name="radiance">
            <string name="filename" value="texels_4x4.exr"/>
            <string name="filter_type" value="nearest"/>
        </texture></emitter>
    </shape>"""


#: name: (max_depth, objects XML, point lights?)
SCENES = {
    "rough_plates": (2, "\n".join(PLATE.format(id=i, x=x, bsdf=b) for i, x, b in ROUGH), True),
    # the same plates under a constant sky and a small area light: BSDF sampling (the
    # visible normals), MIS and transmission through the dielectric plate
    "rough_plates_env": (4, "\n".join(PLATE.format(id=i, x=x, bsdf=b) for i, x, b in ROUGH)
                         + "\n" + """    <emitter type="constant"><rgb name="radiance" value="0.3, 0.35, 0.4"/></emitter>
    <shape type="sphere">
        <point name="center" value="0.5, 2.0, -2.0"/>
        <float name="radius" value="0.3"/>
        <emitter type="area"><rgb name="radiance" value="8, 7, 6"/></emitter>
    </shape>""", False),
    # textures on the cube (Mitsuba's per-face uvs), a disk (polar uvs), a sphere and a
    # mirrored rectangle, as emitters seen directly (max_depth 1)
    "textured_shapes": (1, "\n".join([
        textured("cube", '<scale value="0.6"/><rotate y="1" angle="35"/>'
                 '<rotate x="1" angle="-25"/><translate x="-2"/>'),
        textured("disk", '<scale value="0.9"/><rotate x="1" angle="-50"/>'),
        textured("sphere", '<scale value="0.7"/><rotate z="1" angle="20"/><translate x="2"/>'),
        textured("rectangle", '<scale x="-0.8" y="0.3"/><rotate x="1" angle="-60"/>'
                 '<translate y="-0.2" z="1.2"/>'),
    ]), False),
}


LIGHT = """    <emitter type="point">
        <point name="position" value="{x}, 2.2, -2.0"/>
        <rgb name="intensity" value="6, 6, 6"/>
    </emitter>"""


def scene_xml(name: str) -> str:
    depth, objects, points = SCENES[name]
    lights = "\n".join(LIGHT.format(x=x) for x in (-2.0, 0.0, 2.0)) if points else ""
    return TEMPLATE.format(max_depth=depth, objects=objects, lights=lights, width=WIDTH,
                           height=HEIGHT)


def main(names: list[str]) -> None:
    import mitsuba as mi
    mi.set_variant("scalar_rgb")
    import OpenEXR
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                 {"RGB": TEXELS}).write(str(HERE / "texels_4x4.exr"))
    for name in names or list(SCENES):
        xml = scene_xml(name)
        (HERE / f"{name}.xml").write_text(xml)
        scene = mi.load_file(str(HERE / f"{name}.xml"))
        img = np.zeros((HEIGHT, WIDTH, 3))
        chunks = 8
        for k in range(chunks):    # several seeds: one render's spp is capped by its sampler
            img += np.array(mi.render(scene, seed=k, spp=SPP_REFERENCE // chunks))[..., :3]
        np.save(HERE / f"{name}.npy", (img / chunks).astype(np.float32))
        print(name, img.mean((0, 1)) / chunks)


if __name__ == "__main__":
    main(sys.argv[1:])
