"""Geometry, camera and light derivatives on scenes the tests never see, against finite differences.

    python benchmarks/sweep_geometry_derivatives.py                      # every case, 2048 spp
    python benchmarks/sweep_geometry_derivatives.py bunny_rotate_path3 --spp 16384 --fd-spp 262144
    python benchmarks/sweep_geometry_derivatives.py --list

The kinds of cases the boundary-term issue names (a mesh translated and rotated,
one vertex moved, shadows, mirrors, inter-reflections, the camera, point and area
lights) with other meshes, materials, lights and filters: built-in shapes
(``sphere``, ``cylinder``, ``disk``, ``cube``), a smooth torus, PSDR's bunny
and PSDR's own tree scene file (``../shared``, skipped where it is missing), the
Cornell box file (its camera moved), a pyramid resting on a floor, a box beside
a dense smooth ball (in a room, path 5), rough materials (sharp glossy lobes
under an area light and under an environment map with a sun), directional,
spot and constant lights, Mitsuba's default (Gaussian) filter, an orthographic
camera, a thin lens. 32² film. Per case it prints the block relative L1 error
(8×8 blocks) of the mean of two derivative images (seeds 1, 2) against the mean
of two central differences with common random numbers (``--fd-spp`` each), and
the two noise levels that bound what the error can show: the derivative's
seed-against-seed error and the finite differences' error against a third run. An error well above both is a bias.

Measured figures: BENCHMARKS.md, "Geometry derivatives on unseen scenes".
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import drjit as dr
import numpy as np

import lumigrad as lg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from repro_smooth_interreflection import torus_obj  # noqa: E402

T = lg.Transform4f
TMP = Path(tempfile.mkdtemp())
SHARED = Path(os.environ.get("LUMIGRAD_SHARED", HERE.parent.parent / "shared"))
BUNNY = SHARED / "scenes/psdr/examples/data/objects/bunny/bunny_low.obj"
PSDR_TREE = SHARED / "scenes/psdr/examples/data/scenes/tree.xml"
CBOX = HERE.parent / "tests" / "data" / "scenes" / "cbox.xml"
FILTER = {"name": "box"}


def film() -> dict:
    f = {"type": "hdrfilm", "width": 32, "height": 32}
    if FILTER["name"]:
        f["rfilter"] = {"type": FILTER["name"]}
    return f


def camera(origin=(0, 1.0, 5), target=(0, -0.3, 0), fov: float = 40) -> dict:
    return {"type": "perspective", "fov": fov, "film": film(),
            "to_world": T().look_at(origin=list(origin), target=list(target), up=[0, 1, 0])}


def ortho_camera(origin=(0, 1.0, 5), target=(0, -0.3, 0), scale: float = 1.6) -> dict:
    """An orthographic camera (``scale``: half the width of its view)."""
    return {"type": "orthographic", "film": film(),
            "to_world": T().look_at(origin=list(origin), target=list(target), up=[0, 1, 0])
            .scale([scale, scale, 1.0])}


def orthographic(d: dict, **kw) -> dict:
    d["sensor"] = ortho_camera(**kw)
    return d


def thin_lens(d: dict, aperture: float = 0.08, focus: float = 3.5) -> dict:
    """``d``'s camera with a lens (focused in front of the objects)."""
    d["sensor"] = dict(d["sensor"], type="thinlens", aperture_radius=aperture,
                       focus_distance=focus)
    return d


def diffuse(c) -> dict:
    return {"type": "diffuse", "reflectance": {"type": "rgb", "value": list(c)}}


def floor(y: float = -1.0) -> dict:
    return {"type": "rectangle", "to_world": T().translate([0, y, 0]).rotate([1, 0, 0], -90).scale(3),
            "bsdf": diffuse([0.6, 0.6, 0.6])}


def area_light(y: float = 3.0) -> dict:
    return {"type": "rectangle", "to_world": T().translate([0.3, y, 0.4]).rotate([1, 0, 0], 90)
            .scale(0.6), "emitter": {"type": "area", "radiance": {"type": "rgb", "value": [12] * 3}}}


def scene(depth: int, light: dict = None, **shapes) -> dict:
    """``depth`` 0: the ``direct`` integrator; else ``path`` of that depth."""
    integ = {"type": "direct"} if depth == 0 else {"type": "path", "max_depth": depth}
    d = {"type": "scene", "integrator": integ, "sensor": camera(), "floor": floor(),
         "light": light or area_light()}
    d.update(shapes)
    return d


def cube(y: float = -0.5, bsdf: dict = None) -> dict:
    return {"type": "cube", "to_world": T().translate([0, y, 0]).rotate([0, 1, 0], 30).scale(0.5),
            "bsdf": bsdf or diffuse([0.9, 0.5, 0.2])}


def torus() -> dict:
    if not (TMP / "torus.obj").exists():
        torus_obj(TMP / "torus.obj")
    return {"type": "obj", "filename": str(TMP / "torus.obj"),
            "to_world": T().rotate([1, 0, 0], 50).scale(0.8), "bsdf": diffuse([0.8, 0.5, 0.2])}


def bunny() -> dict:
    return {"type": "obj", "filename": str(BUNNY), "to_world": T().translate([0, -0.18, 0]).scale(0.02),
            "bsdf": diffuse([0.7, 0.7, 0.5])}


def psdr_tree() -> Path:
    """PSDR-CUDA's own tree scene file (24k faces: a trunk and flat leaves,
    an area light above, direct illumination) with this sweep's film: its mesh
    paths made absolute (PSDR runs from ``examples/``) and the film 32²."""
    text = PSDR_TREE.read_text().replace("./data/", str(PSDR_TREE.parent.parent) + "/")
    size = str(film()["width"])
    text = text.replace('name="height" value="256"', f'name="height" value="{size}"')
    text = text.replace('name="width" value="256"', f'name="width" value="{size}"')
    if FILTER["name"] != "box":
        rfilter = FILTER["name"] or "gaussian"
        text = text.replace('<rfilter type="box"/>', f'<rfilter type="{rfilter}"/>')
    path = TMP / "tree.xml"
    path.write_text(text)
    return path


def pyramid() -> dict:
    obj = TMP / "pyramid.obj"
    obj.write_text("v -0.5 0 -0.5\nv 0.5 0 -0.5\nv 0.5 0 0.5\nv -0.5 0 0.5\nv 0 0.8 0\n"
                   "f 1 2 3\nf 1 3 4\nf 1 5 2\nf 2 5 3\nf 3 5 4\nf 4 5 1\n")
    return {"type": "obj", "filename": str(obj), "face_normals": True,
            "to_world": T().translate([0, -1, 0]).rotate([0, 1, 0], 20),
            "bsdf": diffuse([0.9, 0.6, 0.2])}


def coarse_ball(open_bowl: bool = False, **kw) -> dict:
    """An 80-face icosphere without normals in its file (shaded smooth): coarse
    smooth shading, whose rims and horizons (``boundary/horizons.py``) matter;
    ``open_bowl``: its lower faces left out (an open mesh, seen from both sides)."""
    from lumigrad.geometry import meshio, primitives
    m = primitives.icosphere(1)
    faces = m.faces[m.positions[m.faces].mean(axis=1)[:, 1] > -0.3] if open_bowl else m.faces
    path = TMP / ("bowl.ply" if open_bowl else "ball.ply")
    meshio.write_ply(path, m.positions.astype(np.float32), faces)
    return dict({"type": "ply", "filename": str(path),
                 "to_world": T().translate([0.4, -0.4, 0]).rotate([1, 0, 0], 20).scale(0.6),
                 "bsdf": diffuse([0.7, 0.6, 0.4])}, **kw)


def sky() -> dict:
    return {"type": "constant", "radiance": {"type": "rgb", "value": [1.0, 1.0, 1.0]}}


def sky_map(h: int = 64, w: int = 128) -> dict:
    """A lat-long sky (blue at the zenith, paler at the horizon, a dark ground)
    with a bright disk of a sun, as an ``envmap`` of an in-memory bitmap."""
    theta = (np.arange(h)[:, None] + 0.5) / h * np.pi
    phi = (np.arange(w)[None, :] + 0.5) / w * 2 * np.pi
    up = np.cos(theta) * np.ones_like(phi)
    img = np.where(up[..., None] > 0, [0.3, 0.5, 0.9] * (0.4 + 0.6 * up[..., None]), 0.05)
    sun_dir = np.array([0.5, 0.6, 0.62]) / np.linalg.norm([0.5, 0.6, 0.62])
    d = np.stack([np.sin(phi) * np.sin(theta), up, -np.cos(phi) * np.sin(theta)], -1)
    img = img + 60.0 * (d @ sun_dir > 0.995)[..., None]
    return {"type": "envmap", "bitmap": img.astype(np.float32)}


def sun() -> dict:
    return {"type": "directional", "direction": [-1.0, -0.3, -0.4],
            "irradiance": {"type": "rgb", "value": [3.0, 3.0, 3.0]}}


def translate(*v):
    return lambda base, x: T().translate([x * c for c in v]) @ base


def rotate(*axis):
    return lambda base, x: T().rotate(list(axis), x * (180.0 / np.pi)) @ base


def ball(**kw) -> dict:
    return dict({"type": "sphere", "radius": 0.6, "bsdf": diffuse([0.8, 0.3, 0.2])}, **kw)


def small_ball() -> dict:
    return ball(radius=0.35, center=[0.9, -0.65, 0.5])


def room(depth: int) -> dict:
    """The sweep's scene with a back and a left wall, the cube and a small ball."""
    d = scene(depth, box=cube(), ball=small_ball())
    d["back"] = {"type": "rectangle", "to_world": T().translate([0, 0.5, -1.5]).scale(3),
                 "bsdf": diffuse([0.8, 0.8, 0.3])}
    d["left"] = {"type": "rectangle",
                 "to_world": T().translate([-1.6, 0.5, 0]).rotate([0, 1, 0], 90).scale(3),
                 "bsdf": diffuse([0.2, 0.7, 0.3])}
    return d


def _one_vertex(base, direction=(0.0, 0.3, 1.0)):
    """A unit displacement of the vertex nearest the camera's view of the
    bunny's left silhouette (about (-0.45, -0.4, 0) in the scene), as a flat
    array like ``vertex_positions``."""
    p = np.array(base).reshape(-1, 3)
    k = int(np.argmin(np.linalg.norm(p - [-0.45, -0.4, 0.0], axis=1)))
    d = np.zeros_like(p)
    d[k] = direction
    return lg.Float(d.ravel().astype(np.float32))


def _turn(base, axis=(0.3, 1.0, 0.2)):
    """Vertex normals ``base`` (flat) turned about one axis: ``axis × n``, flat."""
    n = np.array(base).reshape(-1, 3)
    a = np.array(axis) / np.linalg.norm(axis)
    return lg.Float(np.cross(a, n).ravel().astype(np.float32))


#: name: (scene builder, parameter key, perturbation ``at(base, x)``)
CASES = {
    "sphere_translate_path3": (lambda: scene(3, ball=ball()), "ball.to_world", translate(1, 0.3, 0)),
    "torus_rotate_direct": (lambda: scene(0, t=torus()), "t.to_world", rotate(0, 1, 0.3)),
    "cylinder_translate_path3": (lambda: scene(3, c={
        "type": "cylinder", "radius": 0.4, "p0": [0, -1, 0], "p1": [0, 0.5, 0],
        "bsdf": diffuse([0.3, 0.7, 0.3])}), "c.to_world", translate(1, 0, 0.5)),
    "cube_rotate_interreflection_path4": (lambda: scene(4, box=cube(), wall={
        "type": "rectangle", "to_world": T().translate([-1.2, 0, 0]).rotate([0, 1, 0], 90).scale(2),
        "bsdf": diffuse([0.9, 0.2, 0.2])}), "box.to_world", rotate(0, 1, 0)),
    # Deep paths: the vertices after the first hold still on static shapes
    # far from the vertex before them (pathgeo.held_vertex).
    "sphere_translate_path8": (lambda: scene(8, ball=ball()), "ball.to_world", translate(1, 0.3, 0)),
    "cube_rotate_interreflection_path8": (lambda: scene(8, box=cube(), wall={
        "type": "rectangle", "to_world": T().translate([-1.2, 0, 0]).rotate([0, 1, 0], 90).scale(2),
        "bsdf": diffuse([0.9, 0.2, 0.2])}), "box.to_world", rotate(0, 1, 0)),
    "sphere_only_in_mirror_path3": (lambda: {
        "type": "scene", "integrator": {"type": "path", "max_depth": 3},
        "sensor": camera((0, 0.5, 3), (0, 0, 0)),
        "mirror": {"type": "rectangle", "to_world": T().translate([0, 0, -1]).scale(2),
                   "bsdf": {"type": "conductor"}},
        "ball": ball(center=[0.3, 0.2, 3.6], radius=0.4),
        "light": {"type": "point", "position": [0, 3, 2],
                  "intensity": {"type": "rgb", "value": [20] * 3}}},
        "ball.to_world", translate(1, 0, 0)),
    "camera_fov_sphere_path3": (lambda: scene(3, ball=ball()), "sensor.x_fov",
                                lambda base, x: base + x * 10),
    "camera_rotate_torus_direct": (lambda: scene(0, t=torus()), "sensor.to_world",
                                   lambda base, x: base @ T().rotate([0, 1, 0], x * (180.0 / np.pi))),
    "camera_translate_cube_path3": (lambda: scene(3, box=cube(-0.3)), "sensor.to_world",
                                    lambda base, x: T().translate([x, 0, 0]) @ base),
    "point_light_sphere_direct": (lambda: scene(0, light={
        "type": "point", "position": [1, 2.5, 1], "intensity": {"type": "rgb", "value": [15] * 3}},
        ball=ball(radius=0.5, center=[0, -0.4, 0])), "light.position",
        lambda base, x: base + x * lg.Array3f(1, 0, 0.5)),
    "area_light_rotate_cube_path3": (lambda: scene(3, light=area_light(2.0), box=cube(-0.6)),
                                     "light.to_world", rotate(0, 0, 1)),
    "disk_translate_direct": (lambda: scene(0, d={
        "type": "disk", "to_world": T().rotate([1, 0, 0], -60).scale(0.7),
        "bsdf": diffuse([0.3, 0.3, 0.8])}), "d.to_world", translate(0.5, 1, 0)),
    "roughplastic_sphere_path3": (lambda: scene(3, ball=ball(bsdf={
        "type": "roughplastic", "alpha": 0.2,
        "diffuse_reflectance": {"type": "rgb", "value": [0.3, 0.5, 0.8]}})),
        "ball.to_world", translate(1, 0.3, 0)),
    # A sharp glossy lobe: next-event estimation draws a point by the BSDF
    # too and pairs the points antithetically (integrators/nee.py).
    "glossy_ball_direct": (lambda: scene(0, ball=ball(bsdf={"type": "roughconductor",
                                                            "alpha": 0.05})),
                           "ball.to_world", translate(1, 0.3, 0)),
    "glossy_ball_path3": (lambda: scene(3, ball=ball(bsdf={"type": "roughconductor",
                                                           "alpha": 0.05})),
                          "ball.to_world", translate(1, 0.3, 0)),
    "glossy_ball_sky_direct": (lambda: scene(0, light=sky_map(), ball=ball(bsdf={
        "type": "roughconductor", "alpha": 0.05})), "ball.to_world", translate(1, 0.3, 0)),
    "glossy_ball_sky_path3": (lambda: scene(3, light=sky_map(), ball=ball(bsdf={
        "type": "roughconductor", "alpha": 0.05})), "ball.to_world", translate(1, 0.3, 0)),
    # A box among a dense smooth mesh (a 65k-face ball): the box's few edges
    # among the ball's thousands in the lights' candidate lists
    # (shadow.GROUP_BY_SHAPE); in a room, path 5.
    "room_rotate_cube_path5": (lambda: room(5), "box.to_world", rotate(0, 1, 0)),
    "cube_beside_ball_translate_path3": (lambda: scene(3, box=cube(-0.4), ball=small_ball()),
                                         "box.to_world", translate(0.3, 1, 0.2)),
    "cube_beside_ball_rotate_direct": (lambda: scene(0, box=cube(), ball=small_ball()),
                                       "box.to_world", rotate(0, 1, 0)),
    "roughconductor_cube_path3": (lambda: scene(3, box=cube(bsdf={"type": "roughconductor",
                                                                 "alpha": 0.3})),
                                  "box.to_world", rotate(0, 1, 0)),
    "directional_cube_direct": (lambda: scene(0, light={
        "type": "directional", "direction": [-0.3, -1, -0.4],
        "irradiance": {"type": "rgb", "value": [3] * 3}}, box=cube()), "box.to_world",
        translate(1, 0, 0.3)),
    "spot_cube_direct": (lambda: scene(0, light={
        "type": "spot", "cutoff_angle": 40, "intensity": {"type": "rgb", "value": [30] * 3},
        "to_world": T().look_at(origin=[1, 3, 1], target=[0, -1, 0], up=[0, 1, 0])}, box=cube()),
        "box.to_world", translate(1, 0, 0.3)),
    "constant_env_cube_path3": (lambda: scene(3, light={
        "type": "constant", "radiance": {"type": "rgb", "value": [1] * 3}}, box=cube()),
        "box.to_world", translate(1, 0, 0.3)),
    "twosided_rectangle_rotate_path3": (lambda: scene(3, r={
        "type": "rectangle", "to_world": T().translate([0, -0.3, 0]).rotate([0, 1, 0], 40).scale(0.5),
        "bsdf": {"type": "twosided", "bsdf": diffuse([0.2, 0.8, 0.3])}}), "r.to_world",
        rotate(1, 0, 0)),
    "pyramid_on_floor_slid_direct": (lambda: scene(0, p=pyramid()), "p.to_world", translate(1, 0, 0)),
    "pyramid_on_floor_lifted_direct": (lambda: scene(0, p=pyramid()), "p.to_world",
                                       translate(0, 1, 0)),
    "pyramid_on_floor_lifted_path3": (lambda: scene(3, p=pyramid()), "p.to_world",
                                      translate(0, 1, 0)),
    "pyramid_on_floor_tilted_direct": (lambda: scene(0, p=pyramid()), "p.to_world",
                                       lambda base, x: T().translate([0.5, -1, 0])
                                       @ T().rotate([0, 0, 1], x * (180.0 / np.pi))
                                       @ T().translate([-0.5, 1, 0]) @ base),
    "cube_on_floor_lifted_direct": (lambda: scene(0, box=cube()), "box.to_world",
                                    translate(0, 1, 0)),
    "box_seen_only_by_interreflection_path3": (lambda: {
        "type": "scene", "integrator": {"type": "path", "max_depth": 3},
        "sensor": camera((0, 0, 3), (0, 0, 0), fov=30),
        "wall": {"type": "rectangle", "to_world": T().translate([0, 0, -1]).scale(2),
                 "bsdf": diffuse([0.8, 0.8, 0.8])},
        "box": cube(bsdf=diffuse([0.9, 0.3, 0.1])) | {
            "to_world": T().translate([1.6, 0, 0.2]).rotate([0, 1, 0], 30).scale(0.4)},
        "light": {"type": "point", "position": [2.6, 1.5, 1.5],
                  "intensity": {"type": "rgb", "value": [30] * 3}}},
        "box.to_world", translate(0, 0.5, 1)),
    "bunny_one_vertex_direct": (lambda: scene(0, b=bunny()), "b.vertex_positions",
                                lambda base, x: base + x * _one_vertex(base)),
    "bunny_translate_path3": (lambda: scene(3, b=bunny()), "b.to_world", translate(1, 0.2, 0)),
    # A mesh growing: path vertices held on it see their triangles' area change.
    "cube_scaled_interreflection_path3": (lambda: scene(3, box=cube(), wall={
        "type": "rectangle", "to_world": T().translate([-1.2, 0, 0]).rotate([0, 1, 0], 90).scale(2),
        "bsdf": diffuse([0.9, 0.2, 0.2])}), "box.to_world",
        lambda base, x: base @ T().scale(1.0 + x)),
    "bunny_translate_direct": (lambda: scene(0, b=bunny()), "b.to_world", translate(1, 0.2, 0)),
    "bunny_rotate_path3": (lambda: scene(3, b=bunny()), "b.to_world", rotate(0, 1, 0)),
    "bunny_translate_path8": (lambda: scene(8, b=bunny()), "b.to_world", translate(1, 0.2, 0)),
    "bunny_rotate_direct": (lambda: scene(0, b=bunny()), "b.to_world", rotate(0, 1, 0)),
    # PSDR's tree scene as its file has it (Mesh[0] the light, Mesh[1] the tree).
    "psdr_tree_rotate_direct": (psdr_tree, "Mesh[1].to_world", rotate(0, 0, 1)),
    "psdr_tree_translate_direct": (psdr_tree, "Mesh[1].to_world", translate(1, 0.5, 0)),
    "psdr_tree_light_translate_direct": (psdr_tree, "Mesh[0].to_world", translate(3, 0, 2)),
    # The Cornell box file (its tall box stands 0.01 into the floor: the
    # intersection curves move on the film with the camera).
    "cornell_camera_fov_path4": (lambda: (CBOX, dict(res=32, max_depth=4)), "sensor.x_fov",
                                 lambda base, x: base + x * 10),
    "cornell_camera_translate_path4": (lambda: (CBOX, dict(res=32, max_depth=4)),
                                       "sensor.to_world", translate(1, 0.3, 0)),
    "coarse_ball_sun_translate_direct": (lambda: scene(0, light=sun(), b=coarse_ball()),
                                         "b.to_world", translate(1, 0.2, 0)),
    "coarse_ball_sky_rotate_path3": (lambda: scene(3, light=sky(), b=coarse_ball()),
                                     "b.to_world", rotate(0, 1, 0)),
    "coarse_bowl_sky_rotate_direct": (lambda: scene(0, light=sky(), b=coarse_ball(True)),
                                      "b.to_world", rotate(1, 0, 0)),
    "coarse_ball_normals_turned_direct": (lambda: scene(0, light=sky(), b=coarse_ball()),
                                          "b.vertex_normals",
                                          lambda base, x: base + x * _turn(base)),
    # An orthographic camera (its apex at infinity): a smooth mesh turning, a
    # path-traced sphere, the camera itself moving.
    "ortho_bunny_rotate_direct": (lambda: orthographic(scene(0, b=bunny()), scale=0.8),
                                  "b.to_world", rotate(0, 1, 0)),
    "ortho_sphere_translate_path3": (lambda: orthographic(scene(3, ball=ball())),
                                     "ball.to_world", translate(1, 0.3, 0)),
    "ortho_camera_translate_cube_path3": (lambda: orthographic(scene(3, box=cube(-0.3))),
                                          "sensor.to_world",
                                          lambda base, x: T().translate([x, 0, 0]) @ base),
    # A thin lens (each sample through a lens point of its own): a mesh moved,
    # the focus distance (defocus moves every edge).
    "lens_torus_rotate_direct": (lambda: thin_lens(scene(0, t=torus())), "t.to_world",
                                 rotate(0, 1, 0.3)),
    "lens_cube_translate_path3": (lambda: thin_lens(scene(3, box=cube())), "box.to_world",
                                  translate(1, 0, 0.3)),
    "lens_focus_bunny_direct": (lambda: thin_lens(scene(0, b=bunny())), "sensor.focus_distance",
                                lambda base, x: base + x * 2.0),
}


def run(name: str, spp: int, fd_spp: int, eps: float) -> str:
    build, key, at = CASES[name]
    for prefix, needed in (("bunny", BUNNY), ("psdr_tree", PSDR_TREE)):
        if name.startswith(prefix) and not needed.exists():
            return f"{name:36s} skipped ({needed} missing)"
    built = build()
    if isinstance(built, tuple):                     # (scene file, overrides)
        sc = lg.load_file(built[0], **built[1])
    else:
        sc = lg.load_file(built) if isinstance(built, Path) else lg.load_dict(built)
    params = lg.traverse(sc)
    base = params[key]

    def assign(x):
        params[key] = at(base, x)
        params.update()
    t0 = time.time()
    fds = [lg.central_difference_image(sc, assign, eps, spp=fd_spp, seed=100 + s) for s in range(3)]
    fd = np.mean(fds[:2], axis=0)
    t1 = time.time()
    theta = lg.Float(0.0)
    dr.enable_grad(theta)
    params[key] = at(base, theta)
    params.update()
    try:
        ims = [np.array(lg.derivative_image(sc, theta, spp=spp, seed=s, params=params))
               for s in (1, 2)]
    finally:
        assign(0.0)
    err = lg.block_relative_l1(np.mean(ims, axis=0), fd)
    return (f"{name:36s} error {err:.3f}   derivative seed vs seed {lg.block_relative_l1(ims[0], ims[1]):.3f}"
            f"   FD self {lg.block_relative_l1(fds[2], fd):.3f}   ({t1 - t0:.0f} s FD, "
            f"{time.time() - t1:.0f} s derivative)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases", nargs="*", help="case names (default: all)")
    ap.add_argument("--spp", type=int, default=2048)
    ap.add_argument("--fd-spp", type=int, default=32768)
    ap.add_argument("--eps", type=float, default=2e-3)
    ap.add_argument("--filter", default="box", help="reconstruction filter ('' for Mitsuba's default)")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list:
        print("\n".join(CASES))
        return
    FILTER["name"] = a.filter
    for name in a.cases or CASES:
        print(run(name, a.spp, a.fd_spp, a.eps), flush=True)


if __name__ == "__main__":
    main()
