"""Do lumigrad and Mitsuba 3 render the same image of a scene file? (issue 10's measure)

    python benchmarks/compare_mitsuba.py scene.xml [more.xml ...] [--spp 256] [--res 128]
    python benchmarks/compare_mitsuba.py --bench-scenes      # the scenes of bench_scenes.py
    python benchmarks/compare_mitsuba.py --gallery           # one scene per group of plugins

Each scene is loaded *unedited* by both renderers (``--res`` overrides a ``$res``
default where the file has one) and rendered with ``--seeds`` independent seeds by
each. Monte Carlo noise is measured, not assumed: the 8×8-block relative L1
between two of lumigrad's own renders (``noise``). The scene matches when the
block rel-L1 between the means of the two renderers' images is at most
``1.5 · noise + 0.005`` and every channel mean agrees within 2 %. Mitsuba is an
optional tool here (``pip install mitsuba``); nothing in the package imports it.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import lumigrad as lg

HERE = Path(__file__).resolve().parent


def block_rel(a: np.ndarray, b: np.ndarray, k: int = 8) -> float:
    """8×8-block relative L1 of ``a`` against ``b`` (edges cropped to whole blocks)."""
    return lg.block_relative_l1(a, b, block=k)


def render_lumigrad(xml: Path, spp: int, seeds: int) -> list[np.ndarray]:
    scene = lg.load_file(xml)
    return [np.array(lg.render(scene, spp=spp, seed=s), dtype=np.float64) for s in range(seeds)]


def render_mitsuba(xml: Path, spp: int, seeds: int) -> list[np.ndarray]:
    import mitsuba as mi
    mi.set_variant("cuda_ad_rgb" if lg.variant() == "cuda" else "llvm_ad_rgb")
    scene = mi.load_file(str(xml))
    return [np.array(mi.render(scene, spp=spp, seed=100 + s), dtype=np.float64)
            for s in range(seeds)]


def compare(xml: Path, spp: int, seeds: int) -> dict:
    a = render_lumigrad(xml, spp, seeds)
    b = render_mitsuba(xml, spp, seeds)
    if a[0].shape != b[0].shape:
        return {"error": f"image shapes differ: {a[0].shape} vs {b[0].shape}"}
    noise = block_rel(a[0], a[1])      # one render against another: sqrt(2) x one's noise
    ma, mb = np.mean(a, 0), np.mean(b, 0)
    err = block_rel(ma, mb)
    # The means hold `seeds` renders each: their difference's noise is that of two
    # single renders divided by sqrt(seeds).
    tol = 1.5 * noise / np.sqrt(seeds) + 0.005
    cha, chb = ma.reshape(-1, ma.shape[-1]).mean(0), mb.reshape(-1, mb.shape[-1]).mean(0)
    ch_rel = np.abs(cha - chb) / np.maximum(np.abs(chb), 1e-8)
    return {"error_block": err, "tolerance": tol, "noise_pair": noise,
            "channel_rel": ch_rel.tolist(),
            "match": bool(err <= tol and np.all(ch_rel <= 0.02))}


def write_gallery(d: Path) -> list[Path]:
    """Small scenes that use the plugins and parameters real scene files use (BSDFs,
    emitters, shapes, sensors, filters, spectra, instancing), written into ``d``."""
    from lumigrad.geometry import meshio, primitives
    checks = ((np.indices((128, 128)).sum(0) // 16) % 2).astype(np.float32)
    lg.write_image(str(d / "checks.png"),
                   np.stack([0.2 + 0.6 * checks, 0.3 + 0.2 * checks, 0.7 - 0.5 * checks], -1))
    h = np.fromfunction(lambda y, x: 0.5 + 0.5 * np.sin(x / 6.0) * np.sin(y / 6.0), (128, 128))
    lg.write_image(str(d / "height.png"), np.stack([h, h, h], -1).astype(np.float32))
    ramp = 0.5 + 0.3 * np.sin(np.arange(128) / 5.0)[None, :].repeat(128, 0)
    lg.write_image(str(d / "normals.png"), np.stack(
        [ramp, np.full((128, 128), 0.5), np.full((128, 128), 0.85)], -1).astype(np.float32))
    u, v = np.meshgrid(np.linspace(0, 1, 128), np.linspace(0, 1, 64))
    sky = np.stack([0.3 + 0.7 * (1 - v), 0.4 + 0.6 * (1 - v), 0.9 + 0.2 * u], -1)
    sky[10:16, 30:40] = 30.0
    lg.write_image(str(d / "sky.exr"), sky.astype(np.float32))
    sph = primitives.uv_sphere(48, 96, 0.5)
    meshio.write_ply(str(d / "ball.ply"), sph.positions, sph.faces, normals=sph.normals,
                     uvs=sph.uvs)

    film = ('<sampler type="independent"><integer name="sample_count" value="64"/></sampler>'
            '<film type="hdrfilm"><integer name="width" value="96"/>'
            '<integer name="height" value="64"/>{rf}</film>')
    look = ('<transform name="to_world">{pre}<lookat origin="0, 1.5, 5" target="0, 0, 0" '
            'up="0, 1, 0"/></transform>')

    def sensor(kind="perspective", lens='<float name="fov" value="40"/>', rf='<rfilter type="box"/>',
               pre=""):
        return (f'<sensor type="{kind}">{lens}{look.format(pre=pre)}'
                f'{film.format(rf=rf)}</sensor>')

    textured_floor = ('<shape type="rectangle"><transform name="to_world"><scale value="5"/>'
                      '<rotate x="1" angle="-90"/><translate y="-0.5"/></transform>'
                      '<bsdf type="diffuse"><texture type="bitmap" name="reflectance">'
                      '<string name="filename" value="checks.png"/></texture></bsdf></shape>')
    checker_floor = ('<shape type="rectangle"><transform name="to_world"><scale value="5"/>'
                     '<rotate x="1" angle="-90"/><translate y="-0.5"/></transform>'
                     '<bsdf type="twosided"><bsdf type="diffuse"><texture type="checkerboard" '
                     'name="reflectance"><rgb name="color0" value="0.2"/><rgb name="color1" '
                     'value="0.7,0.6,0.5"/><transform name="to_uv"><scale x="8" y="8"/>'
                     '</transform></texture></bsdf></bsdf></shape>')
    lamp = ('<shape type="rectangle"><transform name="to_world"><scale value="0.8"/>'
            '<lookat origin="1, 3, 2" target="0, 0, 0" up="0,1,0"/></transform>'
            '<emitter type="area"><rgb name="radiance" value="10"/></emitter></shape>'
            '<emitter type="constant"><rgb name="radiance" value="0.2"/></emitter>')
    env = ('<emitter type="envmap"><string name="filename" value="sky.exr"/>'
           '<float name="scale" value="1.5"/><transform name="to_world">'
           '<rotate y="1" angle="70"/></transform></emitter>')
    path8 = '<integrator type="path"><integer name="max_depth" value="8"/></integrator>'

    def ply(x, bsdf):
        return (f'<shape type="ply"><string name="filename" value="ball.ply"/><transform '
                f'name="to_world"><translate x="{x}"/></transform>{bsdf}</shape>')

    def sphere(x, bsdf):
        return (f'<shape type="sphere"><point name="center" x="{x}" y="0" z="0"/>'
                f'<float name="radius" value="0.5"/>{bsdf}</shape>')

    scenes = {
        "bsdfs_thin_principled_blend": (textured_floor + lamp, ply(-1.2, '<bsdf type="thindielectric"/>')
            + ply(0, '<bsdf type="principled"><rgb name="base_color" value="0.8,0.3,0.1"/>'
                  '<float name="roughness" value="0.4"/><float name="metallic" value="0.3"/>'
                  '<float name="specular" value="0.6"/><float name="clearcoat" value="0.5"/>'
                  '<float name="sheen" value="0.3"/></bsdf>')
            + ply(1.2, '<bsdf type="blendbsdf"><float name="weight" value="0.3"/><bsdf '
                  'type="diffuse"><rgb name="reflectance" value="0.1,0.6,0.2"/></bsdf><bsdf '
                  'type="roughconductor"><string name="material" value="Cu"/><float '
                  'name="alpha" value="0.2"/></bsdf></bsdf>'), sensor()),
        "bsdfs_mask_bump_normal": (textured_floor + lamp, ply(-1.2, '<bsdf type="mask"><float '
                  'name="opacity" value="0.4"/><bsdf type="diffuse"><rgb name="reflectance" '
                  'value="0.8,0.2,0.2"/></bsdf></bsdf>')
            + ply(0, '<bsdf type="bumpmap"><texture type="bitmap"><string name="filename" '
                  'value="height.png"/><boolean name="raw" value="true"/></texture><float '
                  'name="scale" value="2"/><bsdf type="roughplastic"><rgb '
                  'name="diffuse_reflectance" value="0.2,0.3,0.8"/></bsdf></bsdf>')
            + ply(1.2, '<bsdf type="normalmap"><texture type="bitmap" name="normalmap"><string '
                  'name="filename" value="normals.png"/><boolean name="raw" value="true"/>'
                  '</texture><bsdf type="roughconductor"><float name="alpha" value="0.15"/>'
                  '</bsdf></bsdf>'), sensor()),
        "emitters_spot_projector": (textured_floor + lamp, ply(0, '<bsdf type="diffuse"/>')
            + '<emitter type="spot"><transform name="to_world"><lookat origin="-1,3,1" '
              'target="0,0,0" up="0,1,0"/></transform><rgb name="intensity" value="30"/>'
              '<float name="cutoff_angle" value="25"/></emitter><emitter type="projector">'
              '<transform name="to_world"><lookat origin="2,2,2" target="0,-0.5,0" up="0,1,0"/>'
              '</transform><texture type="bitmap" name="irradiance"><string name="filename" '
              'value="checks.png"/></texture><float name="fov" value="30"/><float name="scale" '
              'value="8"/></emitter>', sensor()),
        "shapes_cylinder_instances_disk": (textured_floor + lamp, '<shape type="cylinder"><point '
            'name="p0" x="-1" y="-0.5" z="0"/><point name="p1" x="-1" y="0.8" z="0"/><float '
            'name="radius" value="0.3"/><bsdf type="diffuse"><rgb name="reflectance" '
            'value="0.7,0.6,0.1"/></bsdf></shape><shape type="shapegroup" id="g">'
            + ply(0, '<bsdf type="roughplastic"><rgb name="diffuse_reflectance" '
                  'value="0.5,0.1,0.5"/></bsdf>')
            + '</shape><shape type="instance"><ref id="g"/><transform name="to_world"><scale '
              'value="0.6"/><translate x="0.5" y="-0.2"/></transform></shape><shape '
              'type="instance"><ref id="g"/><transform name="to_world"><scale value="0.5"/>'
              '<translate x="1.5" y="-0.25" z="0.5"/></transform></shape><shape type="disk">'
              '<transform name="to_world"><scale value="0.4"/><rotate y="1" angle="30"/>'
              '<translate x="0" y="0.8" z="-0.5"/></transform><bsdf type="diffuse"/></shape>',
            sensor()),
        "sensor_orthographic": (textured_floor + lamp, ply(0, '<bsdf type="diffuse"/>'),
            sensor("orthographic", "", pre='<scale x="3" y="3"/>')),
        "sensor_thinlens_gaussian": (textured_floor + lamp, ply(0, '<bsdf type="diffuse"/>')
            + ply(1.5, '<bsdf type="conductor"/>'), sensor(
                "thinlens", '<float name="fov" value="40"/><float name="aperture_radius" '
                'value="0.1"/><float name="focus_distance" value="5"/>',
                '<rfilter type="gaussian"/>')),
        "spectra_lists": (textured_floor + lamp, ply(0, '<bsdf type="diffuse"><spectrum '
            'name="reflectance" value="400:0.1, 500:0.6, 600:0.3, 700:0.8"/></bsdf>')
            + '<emitter type="point"><point name="position" x="-1" y="2" z="1"/><spectrum '
              'name="intensity" value="400:10, 550:20, 700:30"/></emitter>', sensor()),
        "rough_envmap": (checker_floor + env, sphere(-1.2, '<bsdf type="roughdielectric"><float '
            'name="alpha" value="0.2"/><float name="int_ior" value="1.5"/></bsdf>')
            + sphere(0, '<bsdf type="plastic"><rgb name="diffuse_reflectance" '
                     'value="0.1,0.4,0.8"/></bsdf>')
            + sphere(1.2, '<bsdf type="roughconductor"><string name="distribution" value="ggx"/>'
                     '<float name="alpha_u" value="0.05"/><float name="alpha_v" value="0.3"/>'
                     '<string name="material" value="Al"/></bsdf>'), sensor()),
        "directional_tent_spectral_conductor": (checker_floor + '<emitter type="directional">'
            '<vector name="direction" x="1" y="-1" z="-0.5"/><rgb name="irradiance" value="3"/>'
            '</emitter><emitter type="constant"><rgb name="radiance" value="0.1"/></emitter>',
            sphere(-0.6, '<bsdf type="conductor"><spectrum name="eta" value="400:0.2, 700:0.3"/>'
                   '<spectrum name="k" value="400:3, 700:4"/></bsdf>')
            + sphere(0.6, '<bsdf type="roughplastic"><float name="alpha" value="0.5"/><rgb '
                     'name="diffuse_reflectance" value="0.7,0.2,0.2"/></bsdf>'),
            sensor(rf='<rfilter type="tent"/>')),
        "focal_length_hide_emitters": (checker_floor + env, sphere(0, '<bsdf type="dielectric"/>'),
            sensor(lens='<string name="focal_length" value="35mm"/>', rf='<rfilter type="gaussian"/>')),
    }
    out = []
    for name, (room, objects, sens) in scenes.items():
        integ = path8
        if name == "focal_length_hide_emitters":
            integ = ('<integrator type="path"><integer name="max_depth" value="8"/><boolean '
                     'name="hide_emitters" value="true"/></integrator>')
        (d / f"{name}.xml").write_text(f'<scene version="3.0.0">{integ}{sens}{room}{objects}</scene>')
        out.append(d / f"{name}.xml")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("scenes", nargs="*")
    p.add_argument("--spp", type=int, default=256)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--res", type=int, default=128, help="for --bench-scenes")
    p.add_argument("--bench-scenes", action="store_true")
    p.add_argument("--gallery", action="store_true",
                   help="small scenes of the plugins real scene files use (write_gallery)")
    a = p.parse_args(argv)
    paths = [Path(s) for s in a.scenes]
    tmp = None
    if a.bench_scenes:
        sys.path.insert(0, str(HERE))
        from bench_scenes import write_scenes
        tmp = tempfile.TemporaryDirectory()
        paths += list(write_scenes(Path(tmp.name), a.res, a.spp).values())
    if a.gallery:
        tmp = tmp or tempfile.TemporaryDirectory()
        gdir = Path(tmp.name) / "gallery"
        gdir.mkdir()
        paths += write_gallery(gdir)
    bad = 0
    for xml in paths:
        try:
            r = compare(xml, a.spp, max(2, a.seeds))
        except Exception as e:  # report and go on
            r = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
        if "error" in r:
            bad += 1
            print(f"{xml.name}: ERROR {r['error']}", flush=True)
            continue
        bad += not r["match"]
        print(f"{xml.name}: {'match' if r['match'] else 'DIFFER'}  block rel-L1 "
              f"{r['error_block']:.4f} (tolerance {r['tolerance']:.4f}, pair noise "
              f"{r['noise_pair']:.4f}); channel means "
              f"{', '.join(f'{c:+.3%}' for c in r['channel_rel'])}", flush=True)
    if tmp is not None:
        tmp.cleanup()
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
