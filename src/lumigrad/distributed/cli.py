"""``lumigrad render SCENE --workers N [--address ADDR]``: rendering on a Ray pool.

One sensor (``--sensor``): its samples are split into ``--passes`` renders
(default: one per worker) with seeds ``seed, seed+1, ...``, averaged on the
driver (see :meth:`Pool.render`). ``--all-sensors``: every sensor is a view,
rendered in parallel and written as ``OUT_<i>.<ext>``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def render_distributed(args: argparse.Namespace) -> int:
    try:
        return _render(args)
    except (ImportError, TimeoutError, RuntimeError, IndexError) as e:  # WorkerError: Runtime
        print(f"lumigrad: error: {e}", file=sys.stderr)
        return 2


def _render(args: argparse.Namespace) -> int:
    import lumigrad as lg

    from .pool import Pool
    from ..cli import _defaults
    workers = args.workers or 2
    defaults = _defaults(args.define)
    if args.scene in ("cbox", "cornell_box", "builtin:cbox"):
        defaults = {k: int(v) for k, v in defaults.items() if k in ("res", "spp", "max_depth")}
    with Pool(args.scene, workers=workers, address=args.address, defaults=defaults,
              progress=True) as pool:
        info = pool.infos[0]
        print(f"{workers} worker(s) ready ({info['variant']}, {info['threads']} thread(s) each)",
              file=sys.stderr)
        out = Path(args.output)
        if args.all_sensors:
            images = pool.render(list(range(pool.num_views)), spp=args.spp, seed=args.seed,
                                 passes=args.passes or 1)
            paths = [out.with_name(f"{out.stem}_{i}{out.suffix}") for i in range(len(images))]
        else:
            spp = args.spp if args.spp is not None else pool.view_spp(args.sensor)
            passes = args.passes or min(workers, spp)
            images = pool.render([args.sensor], spp=spp, seed=args.seed, passes=passes)
            paths = [out]
        print(pool.summary(), file=sys.stderr)
    for path, image in zip(paths, images):
        lg.write_image(path, image)
        print(f"wrote {path}")
    return 0
