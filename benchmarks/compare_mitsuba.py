"""Do lumigrad and Mitsuba 3 render the same image of a scene file? (issue 10's measure)

    python benchmarks/compare_mitsuba.py scene.xml [more.xml ...] [--spp 256] [--res 128]
    python benchmarks/compare_mitsuba.py --bench-scenes      # the scenes of bench_scenes.py

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("scenes", nargs="*")
    p.add_argument("--spp", type=int, default=256)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--res", type=int, default=128, help="for --bench-scenes")
    p.add_argument("--bench-scenes", action="store_true")
    a = p.parse_args(argv)
    paths = [Path(s) for s in a.scenes]
    tmp = None
    if a.bench_scenes:
        sys.path.insert(0, str(HERE))
        from bench_scenes import write_scenes
        tmp = tempfile.TemporaryDirectory()
        paths += list(write_scenes(Path(tmp.name), a.res, a.spp).values())
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
