"""Mesh file loading benchmark (run by hand, prints a table).

    python benchmarks/bench_meshio.py [--repeat 5] [--mitsuba] [--check] [--scene]
                                      [--baseline GIT_REV] [--keep DIR] [MESH_FILE ...]

Generates, in a temporary folder, meshes of the sizes real scenes ship:

* ``tri.obj``: a displaced torus, ~3 MB: ``v`` / ``vt`` / ``vn`` rows with 6
  decimals and ``f a/b/c`` triangles (the layout Blender and most exporters write);
* ``poly.obj``: the same surface as quads in 8 ``o``/``g`` groups with ``usemtl``
  and ``s`` lines;
* ``rel.obj``: ``poly.obj`` with relative (negative) indices (Mitsuba 3 rejects them);
* ``big.ply``: binary little-endian PLY, float ``x y z nx ny nz u v``, ~130k triangles;
* ``big_ascii.ply``: the same mesh as ASCII PLY;
* ``mixed.ply``: binary PLY of the same surface as quads, every third one split
  in two triangles (face rows of varying length);
* ``big.serialized``: the same mesh in Mitsuba's serialized format (zlib);
* ``multi.serialized``: two shapes (the big mesh, and the small one in double
  precision with uvs only).

and prints the median (``--best``: the minimum, the figure least disturbed by other
processes on a shared machine) of ``--repeat`` reads with :mod:`lumigrad.geometry.meshio`
(file read + parse + vertex splitting; the shape plugins add the transform and
normals on top). ``--mitsuba`` also times Mitsuba 3's loader on the same files
(``mi.load_dict`` of one shape, in the same process; Mitsuba is optional and
never a dependency of lumigrad). Nothing is cached between reads.

``--baseline REV`` also times ``meshio`` as it was at git revision ``REV``
(loaded from ``git show``), in the same run, for before/after figures.

``--check`` compares, for every file Mitsuba reads, the shapes both renderers
build (lumigrad's shape plugin against ``mi.load_dict``): the triangles'
corner positions, normals and texture coordinates, face by face (vertex order
may differ), and prints the largest differences. ``--scene`` also times a
whole ``load_dict`` of a scene holding the mesh (acceleration structure
included) in both.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

from lumigrad.geometry import meshio


def torus(n_major: int, n_minor: int, seed: int = 0):
    """A bumpy torus as a grid of (n_major x n_minor) vertices with normals and uvs;
    returns positions, normals, uvs and the quad index grid (n_major*n_minor, 4)."""
    rng = np.random.default_rng(seed)
    u = np.arange(n_major) / n_major * 2 * np.pi
    w = np.arange(n_minor) / n_minor * 2 * np.pi
    U, W = np.meshgrid(u, w, indexing="ij")
    r = 0.3 * (1 + 0.01 * rng.standard_normal(U.shape))
    p = np.stack([(1 + r * np.cos(W)) * np.cos(U), (1 + r * np.cos(W)) * np.sin(U),
                  r * np.sin(W)], -1).reshape(-1, 3)
    n = np.stack([np.cos(W) * np.cos(U), np.cos(W) * np.sin(U), np.sin(W)], -1).reshape(-1, 3)
    uv = np.stack([U / (2 * np.pi), W / (2 * np.pi)], -1).reshape(-1, 2)
    i = np.arange(n_major)[:, None]
    j = np.arange(n_minor)[None, :]
    a = i * n_minor + j
    b = ((i + 1) % n_major) * n_minor + j
    c = ((i + 1) % n_major) * n_minor + (j + 1) % n_minor
    d = i * n_minor + (j + 1) % n_minor
    quads = np.stack([a, b, c, d], -1).reshape(-1, 4)
    return p, n, uv, quads


def write_tri_obj(path: str, p, n, uv, quads) -> None:
    tris = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]) + 1
    with open(path, "w") as fh:
        np.savetxt(fh, p, fmt="v %.6f %.6f %.6f")
        np.savetxt(fh, uv, fmt="vt %.6f %.6f")
        np.savetxt(fh, n, fmt="vn %.6f %.6f %.6f")
        np.savetxt(fh, np.repeat(tris, 3, axis=1), fmt="f %d/%d/%d %d/%d/%d %d/%d/%d")


def write_poly_obj(path: str, p, n, uv, quads, groups: int = 8, relative: bool = False) -> None:
    """Quads in ``groups`` groups; ``relative``: negative indices (counted back from the
    end of the vertex list, which precedes every face)."""
    nv = len(p) if relative else -1
    with open(path, "w") as fh:
        np.savetxt(fh, p, fmt="v %.6f %.6f %.6f")
        np.savetxt(fh, uv, fmt="vt %.6f %.6f")
        np.savetxt(fh, n, fmt="vn %.6f %.6f %.6f")
        for g, part in enumerate(np.array_split(quads, groups)):
            fh.write(f"o part{g}\ng group{g}\nusemtl m{g % 3}\ns 1\n")
            rel = np.repeat(part - nv, 3, axis=1)
            np.savetxt(fh, rel, fmt="f %d/%d/%d %d/%d/%d %d/%d/%d %d/%d/%d")


def write_mixed_ply(path: str, p, n, uv, quads) -> None:
    """Binary PLY whose faces are quads and triangles (rows of 17 and 13 bytes)."""
    split = np.arange(len(quads)) % 3 == 0
    polys = [quads[~split], quads[split][:, [0, 1, 2]], quads[split][:, [0, 2, 3]]]
    order = np.argsort(np.concatenate([np.flatnonzero(~split), np.flatnonzero(split),
                                       np.flatnonzero(split)]), kind="stable")
    counts = np.concatenate([np.full(len(a), a.shape[1]) for a in polys])[order]
    flat_rows = [r for a in polys for r in a]
    flat = np.concatenate([flat_rows[i] for i in order]).astype("<i4")
    row_bytes = 1 + 4 * counts
    start = np.cumsum(row_bytes) - row_bytes
    body = np.zeros(int(row_bytes.sum()), dtype=np.uint8)
    body[start] = counts
    idx_bytes = flat.view(np.uint8)
    dest = np.repeat(start + 1, 4 * counts) + (np.arange(len(idx_bytes)) -
                                                np.repeat(np.cumsum(4 * counts) - 4 * counts,
                                                          4 * counts))
    body[dest] = idx_bytes
    cols = np.concatenate([p, n, uv], axis=1).astype("<f4")
    names = ["x", "y", "z", "nx", "ny", "nz", "u", "v"]
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(p)}"] + \
        [f"property float {k}" for k in names] + \
        [f"element face {len(counts)}", "property list uchar int vertex_indices", "end_header"]
    with open(path, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode())
        fh.write(cols.tobytes())
        fh.write(body.tobytes())


def write_multi_serialized(path: str, meshes) -> None:
    """Several shapes in one serialized file: each written by
    ``meshio.write_serialized`` (positions, faces, normals, uvs, double), its
    one-shape end-of-file dictionary (12 bytes) replaced by a common one."""
    import struct
    out, offsets = b"", []
    for i, (pos, tri, nor, tex, double) in enumerate(meshes):
        meshio.write_serialized(path, pos, tri, nor, tex, name=f"part{i}", double=double)
        with open(path, "rb") as fh:
            data = fh.read()
        offsets.append(len(out))
        out += data[:-12]
    with open(path, "wb") as fh:
        fh.write(out + struct.pack(f"<{len(offsets)}QI", *offsets, len(offsets)))


def load_baseline(rev: str):
    """lumigrad's meshio module as it was at git revision ``rev``."""
    import importlib.util
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    src = subprocess.run(["git", "show", f"{rev}:src/lumigrad/geometry/meshio.py"], cwd=root,
                         check=True, capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader("lumigrad.geometry._meshio_baseline", loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "lumigrad.geometry"
    sys.modules[spec.name] = mod
    exec(compile(src, f"{rev}:meshio.py", "exec"), mod.__dict__)
    return mod


STAT = statistics.median
CPU: list = []      # CPU seconds (time.process_time) of the last median_time, same statistic


def median_time(fn, repeat: int) -> float:
    ts, cs = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    CPU[:] = [STAT(cs)]
    return STAT(ts)


def read_obj_tinyobj(path: str, parse_only: bool = False):
    """The OBJ arrays ``meshio.read_obj`` returns, read with tinyobjloader's Python
    bindings (``pip install --pre tinyobjloader==2.0.0rc13``), for ``--tinyobj``:
    the compiled parser, then the same vertex splitting and fan triangulation in
    numpy. Not used by lumigrad (see BENCHMARKS.md, "Mesh loading"): in 2.0.0rc13
    the ``numpy_*`` accessors return wrong data (``numpy_vertices`` repeats the
    first value, ``numpy_indices`` is zeros), so the lists are converted."""
    import tinyobjloader as tobj
    r = tobj.ObjReader()
    cfg = tobj.ObjReaderConfig()
    cfg.triangulate = False          # its quads use the shorter diagonal, not a fan
    if not r.ParseFromFile(path, cfg):
        raise meshio.MeshFileError(f"{path}: {r.Error().strip()}")
    if parse_only:
        return r
    a = r.GetAttrib()
    v = np.array(a.vertices).reshape(-1, 3)
    vt = np.array(a.texcoords).reshape(-1, 2)
    vn = np.array(a.normals).reshape(-1, 3)
    meshes = [s.mesh for s in r.GetShapes()]          # shapes (o/g groups), not faces
    counts = np.concatenate([np.array(m.num_face_vertices, dtype=np.int64) for m in meshes])
    key = np.stack([np.concatenate([np.array(f(), dtype=np.int64) for f in fs]) + 1
                    for fs in zip(*[(m.vertex_indices, m.texcoord_indices, m.normal_indices)
                                    for m in meshes])], axis=1)     # 0 = absent
    has_uv, has_n = bool((key[:, 1] > 0).any()), bool((key[:, 2] > 0).all())
    if not has_n:
        key[:, 2] = 0
    m1, m2 = len(vt) + 1, len(vn) + 1
    uniq, inv = np.unique((key[:, 0] * m1 + key[:, 1]) * m2 + key[:, 2], return_inverse=True)
    ukey = np.stack([uniq // (m1 * m2), (uniq // m2) % m1, uniq % m2], axis=1)
    uvs = np.where((ukey[:, 1] > 0)[:, None], vt[np.maximum(ukey[:, 1] - 1, 0)], 0.0) \
        if has_uv else None
    faces, _ = meshio.fan_triangulate(counts, inv.reshape(-1))
    return meshio._finish(path, v[ukey[:, 0] - 1], faces, vn[ukey[:, 2] - 1] if has_n else None,
                          uvs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--mitsuba", action="store_true", help="time Mitsuba 3's loader too")
    ap.add_argument("--best", action="store_true", help="report the fastest run, not the median")
    ap.add_argument("--check", action="store_true",
                    help="compare the loaded shapes with Mitsuba's (needs Mitsuba)")
    ap.add_argument("--scene", action="store_true",
                    help="also time whole-scene loads (lumigrad and, with --mitsuba, Mitsuba)")
    ap.add_argument("--baseline", default=None, metavar="REV",
                    help="also time lumigrad's meshio of this git revision")
    ap.add_argument("--tinyobj", action="store_true",
                    help="also time tinyobjloader on the OBJ files: its parse alone, and the "
                    "parse plus lumigrad's vertex splitting (read_obj_tinyobj), checked equal")
    ap.add_argument("--cpu", action="store_true",
                    help="print CPU seconds (time.process_time) after the wall-clock ones")
    ap.add_argument("extra", nargs="*", help="more mesh files to time (and --check)")
    ap.add_argument("--keep", default=None, help="write the files here and keep them")
    args = ap.parse_args()
    global STAT
    STAT = min if args.best else statistics.median

    tmp = tempfile.TemporaryDirectory() if args.keep is None else None
    d = args.keep or tmp.name
    os.makedirs(d, exist_ok=True)
    p, n, uv, quads = torus(140, 130)                    # 18.2k vertices, 36.4k triangles
    write_tri_obj(os.path.join(d, "tri.obj"), p, n, uv, quads)
    write_poly_obj(os.path.join(d, "poly.obj"), p, n, uv, quads)
    write_poly_obj(os.path.join(d, "rel.obj"), p, n, uv, quads, relative=True)
    P, N, UV, Q = torus(400, 170)                        # 68k vertices, 136k triangles
    F = np.concatenate([Q[:, [0, 1, 2]], Q[:, [0, 2, 3]]])
    meshio.write_ply(os.path.join(d, "big.ply"), P, F, N, UV)
    meshio.write_ply(os.path.join(d, "big_ascii.ply"), P, F, N, UV, format="ascii")
    write_mixed_ply(os.path.join(d, "mixed.ply"), P, N, UV, Q)
    files = ["tri.obj", "poly.obj", "rel.obj", "big.ply", "big_ascii.ply", "mixed.ply"]
    if hasattr(meshio, "write_serialized"):
        meshio.write_serialized(os.path.join(d, "big.serialized"), P, F, N, UV)
        files.append("big.serialized")
        write_multi_serialized(os.path.join(d, "multi.serialized"), [
            (P, F, N, UV, False), (p, quads[:, :3], None, uv, True)])
        files.append("multi.serialized")

    files += [os.path.abspath(f) for f in args.extra]
    old = load_baseline(args.baseline) if args.baseline else None
    mi = None
    if args.mitsuba or args.check:
        import mitsuba as mi
        mi.set_variant("scalar_rgb")

    w = 16 if args.cpu else 10

    def timed(fn) -> str:
        t = median_time(fn, args.repeat)
        return f"{t:.3f}s/{CPU[0]:.3f}s" if args.cpu else f"{t:9.3f}s"
    print(f"{'file':<16} {'size':>9} {'triangles':>10} {'lumigrad':>{w}} "
          f"{'Mitsuba':>{w}}" + (f" {args.baseline[:10]:>{w}}" if old else "") +
          (f" {'tinyobj parse':>{w}} {'tinyobj+split':>{w}}" if args.tinyobj else "") +
          ("   (wall/CPU)" if args.cpu else ""))
    for name in files:
        path = os.path.join(d, name)
        m = meshio.read_mesh(path)
        t = timed(lambda: meshio.read_mesh(path))
        tm = ""
        if mi is not None:
            kind = os.path.splitext(name)[1][1:]
            try:
                tm = timed(lambda: mi.load_dict({"type": kind, "filename": path}))
            except RuntimeError:
                tm = "rejects"
        tb = ""
        if old is not None:
            try:
                tb = timed(lambda: old.read_mesh(path))
            except Exception:
                tb = "rejects"
        tt = ""
        if args.tinyobj and name.endswith(".obj"):
            o = read_obj_tinyobj(path)
            same = all(np.array_equal(getattr(o, k), getattr(m, k))
                       for k in ("positions", "normals", "uvs", "faces"))
            tt = f" {timed(lambda: read_obj_tinyobj(path, True)):>{w}} " \
                 f"{timed(lambda: read_obj_tinyobj(path)):>{w}}" + ("" if same else " (differs)")
        print(f"{os.path.basename(name)[:16]:<16} {os.path.getsize(path) / 1e6:7.2f}MB "
              f"{len(m.faces):>10} {t:>{w}} {tm:>{w}}" + (f" {tb:>{w}}" if old else "") + tt)
    if args.scene:
        import lumigrad as lg
        print("\nwhole scene (load_dict of a scene with the mesh, acceleration structure "
              "included)")
        for name in files:
            path = os.path.join(d, name)
            kind = os.path.splitext(name)[1][1:]
            scene = {"type": "scene", "m": {"type": kind, "filename": path}}
            t = median_time(lambda: lg.load_dict(scene), args.repeat)
            tm = ""
            if mi is not None:
                try:
                    tm = f"{median_time(lambda: mi.load_dict(scene), args.repeat):9.3f}s"
                except RuntimeError:
                    tm = "rejects"
            print(f"{os.path.basename(name)[:16]:<16} {t:9.3f}s {tm:>10}")
    if args.check:
        check_against_mitsuba(mi, d, files)
    if tmp is not None:
        tmp.cleanup()


def check_against_mitsuba(mi, d: str, files: list) -> None:
    """Largest differences between the shapes lumigrad and Mitsuba build (every
    shape of a serialized file)."""
    import drjit as dr
    import lumigrad as lg
    print("\nlumigrad shape vs Mitsuba shape (max abs difference over triangle corners)")
    for name in files:
        path = os.path.join(d, name)
        kind = os.path.splitext(name)[1][1:]
        shapes = [{}]
        if kind == "serialized":
            shapes = [{"shape_index": i} for i in range(meshio.serialized_shape_count(path))]
        for extra in shapes:
            label = f"{os.path.basename(name)[:16]:<16}" + \
                (f"@{extra['shape_index']}" if len(shapes) > 1 else "")
            desc = {"type": kind, "filename": path, **extra}
            try:
                ms = mi.load_dict(desc)
            except RuntimeError as e:
                print(f"{label} Mitsuba rejects it: {str(e).splitlines()[0][:90]}")
                continue
            ls = lg.load_dict(desc)
            mp = mi.traverse(ms)
            mf = np.array(mp["faces"]).reshape(-1, 3)
            lf = ls.faces_numpy()
            if mf.shape != lf.shape:
                print(f"{label} triangle counts differ: lumigrad {len(lf)}, Mitsuba {len(mf)}")
                continue
            row = [f"{label} {len(lf):>7} triangles"]
            for what, key, k, ours in (
                    ("positions", "vertex_positions", 3, ls.positions_numpy()),
                    ("normals", "vertex_normals", 3, None if ls.vertex_normals is None
                     else np.array(dr.detach(ls.vertex_normals))),
                    ("uvs", "vertex_texcoords", 2, None if ls.vertex_texcoords is None
                     else np.array(ls.vertex_texcoords))):
                theirs = np.array(mp[key]).reshape(-1, k) if key in mp and \
                    dr.width(mp[key]) > 0 else None
                if ours is None and theirs is None:
                    row.append(f"{what}: none")
                elif ours is None or theirs is None:
                    row.append(f"{what}: {'Mitsuba' if ours is None else 'lumigrad'} only")
                else:
                    ours = np.asarray(ours).reshape(-1, k)
                    row.append(f"{what} {np.abs(ours[lf] - theirs[mf]).max():.2e}")
            print("  ".join(row))


if __name__ == "__main__":
    main()
