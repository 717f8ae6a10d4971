"""Mesh file loading benchmark (run by hand, prints a table).

    python benchmarks/bench_meshio.py [--repeat 5] [--mitsuba] [--keep DIR]

Generates, in a temporary folder, meshes of the sizes real scenes ship:

* ``tri.obj``: a displaced torus, ~3 MB: ``v`` / ``vt`` / ``vn`` rows with 6
  decimals and ``f a/b/c`` triangles (the layout Blender and most exporters write);
* ``poly.obj``: the same surface as quads in 8 ``o``/``g`` groups with ``usemtl``
  and ``s`` lines;
* ``rel.obj``: ``poly.obj`` with relative (negative) indices (Mitsuba 3 rejects them);
* ``big.ply``: binary little-endian PLY, float ``x y z nx ny nz u v``, ~130k triangles;
* ``big_ascii.ply``: the same mesh as ASCII PLY;
* ``big.serialized``: the same mesh in Mitsuba's serialized format (zlib).

and prints the median of ``--repeat`` reads with :mod:`lumigrad.geometry.meshio`
(file read + parse + vertex splitting; the shape plugins add the transform and
normals on top). ``--mitsuba`` also times Mitsuba 3's loader on the same files
(``mi.load_dict`` of one shape, in the same process; Mitsuba is optional and
never a dependency of lumigrad). Nothing is cached between reads.
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


def median_time(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--mitsuba", action="store_true", help="time Mitsuba 3's loader too")
    ap.add_argument("--keep", default=None, help="write the files here and keep them")
    args = ap.parse_args()

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
    files = ["tri.obj", "poly.obj", "rel.obj", "big.ply", "big_ascii.ply"]
    if hasattr(meshio, "write_serialized"):
        meshio.write_serialized(os.path.join(d, "big.serialized"), P, F, N, UV)
        files.append("big.serialized")

    mi = None
    if args.mitsuba:
        import mitsuba as mi
        mi.set_variant("scalar_rgb")

    print(f"{'file':<16} {'size':>9} {'triangles':>10} {'lumigrad':>10} "
          f"{'Mitsuba':>10}")
    for name in files:
        path = os.path.join(d, name)
        m = meshio.read_mesh(path)
        t = median_time(lambda: meshio.read_mesh(path), args.repeat)
        tm = ""
        if mi is not None:
            kind = os.path.splitext(name)[1][1:]
            try:
                tm = median_time(lambda: mi.load_dict({"type": kind, "filename": path}),
                                 args.repeat)
                tm = f"{tm:9.3f}s"
            except RuntimeError:
                tm = "rejects"
        print(f"{name:<16} {os.path.getsize(path) / 1e6:7.2f}MB {len(m.faces):>10} "
              f"{t:9.3f}s {tm:>10}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
