"""Distributed rendering and gradients (lumigrad.distributed) against one process.

The scene of ``examples/optimize_pose.py`` seen by ``--views`` cameras (the
transforms of ``examples/distributed_pose.py``), ``--res``² pixels, ``--spp``
samples. For each configuration, the median over ``--steps`` steps (after one
warm-up step that compiles the kernels):

* ``single``: this process, Dr.Jit on all its threads: a loop over the views
  (move the camera, render; for the gradient step also the L2 loss against a
  target and ``dr.backward``), exactly what the pool's workers run;
* ``pool 1×T``: one worker with T threads (the whole machine): the overhead of
  the pool itself (scheduling, object store, copying images and gradients);
* ``pool W×1``: W workers with one thread each.

Reports views per second of plain renders and the time of one gradient step
(render + backward of every view, gradient of the pose matrix summed), and
the overhead of the pool against the single-process loop.

Run: ``python benchmarks/bench_distributed.py [--views 64] [--res 128] [--spp 16]
[--steps 3] [--workers 1,2] [--json out.json]``
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

import drjit as dr
import numpy as np

import lumigrad as lg

ROOT = Path(__file__).resolve().parents[1]


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"_ex_{name}", ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


class Single:
    """The single-process loop over the views (what each worker runs for its views)."""

    def __init__(self, scene_dict: dict, cams: list, spp: int, values: dict,
                 targets: list) -> None:
        self.scene = lg.load_dict(scene_dict)
        self.params = lg.traverse(self.scene)
        self.cams, self.spp, self.values, self.targets = cams, spp, values, targets
        for k, v in values.items():
            self.params[k] = v
        self.params.update()

    def render(self, seed: int) -> float:
        t0 = time.perf_counter()
        for cam in self.cams:
            self.params["front.to_world"] = cam
            self.params.update()
            img = lg.render(self.scene, self.params, sensor=0, spp=self.spp, seed=seed)
            np.array(img)                       # the pool copies images out too
        return time.perf_counter() - t0

    def gradient(self, seed: int) -> float:
        params = self.params
        t0 = time.perf_counter()
        leaf = lg.Matrix4f(dr.detach(self.values["obj.to_world"].matrix))
        dr.enable_grad(leaf)
        params["obj.to_world"] = lg.Transform4f(leaf)
        params.update()
        for cam, target in zip(self.cams, self.targets):
            params["front.to_world"] = cam
            params.update()
            loss = lg.l2(lg.render(self.scene, params, sensor=0, spp=self.spp, seed=seed), target)
            dr.backward(loss)
        np.array(dr.grad(leaf))
        params["obj.to_world"] = self.values["obj.to_world"]
        params.update()
        return time.perf_counter() - t0


class Pooled:
    """The same steps on a pool of ``workers`` actors with ``threads`` threads each."""

    def __init__(self, scene_dict: dict, cams: list, spp: int, values: dict, targets: list,
                 workers: int, threads: int) -> None:
        from lumigrad.distributed import Pool
        self.pool = Pool(scene_dict, workers=workers, views=cams, cpus_per_worker=threads,
                         threads=threads, progress=False)
        self.pool.set_targets(targets)
        self.spp, self.values = spp, values
        self.busy: list = []

    def render(self, seed: int) -> float:
        t0 = time.perf_counter()
        self.pool.render(spp=self.spp, seed=seed, params=self.values)
        return time.perf_counter() - t0

    def gradient(self, seed: int) -> float:
        t0 = time.perf_counter()
        self.pool.gradient(self.values, lg.l2, spp=self.spp, seed=seed)
        dt = time.perf_counter() - t0
        self.busy.append(float(np.sum(self.pool.last.view_seconds)))
        return dt


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--views", type=int, default=64)
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--spp", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--workers", default="1,2",
                    help="pool sizes: 1 = one worker with every thread, W>1 = W x 1 thread")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="threads of the single process and of a 1-worker pool")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    import ray

    pose = _example("optimize_pose")
    dist = _example("distributed_pose")
    scene_dict = pose.scene_dict(args.res)
    cams = dist.cameras(args.views)
    values = {"obj.to_world": pose.posed(lg.Transform4f(), lg.Array2f(0.1, 0.05), lg.Float(0.3))}
    dr.set_thread_count(args.threads)
    # targets: the true pose, rendered here
    scene = lg.load_dict(scene_dict)
    params = lg.traverse(scene)
    params["obj.to_world"] = pose.posed(lg.Transform4f(), lg.Array2f(*pose.TRUE_POSE[:2]),
                                        lg.Float(pose.TRUE_POSE[2]))
    targets = []
    for cam in cams:
        params["front.to_world"] = cam
        params.update()
        targets.append(lg.render(scene, params, sensor=0, spp=args.spp, seed=999))
    del scene, params

    out = {"views": args.views, "res": args.res, "spp": args.spp, "steps": args.steps,
           "cpus": os.cpu_count(), "variant": lg.variant(), "threads": args.threads}
    print(f"{args.views} views of {args.res}x{args.res} x {args.spp} spp, "
          f"{lg.variant()}, {os.cpu_count()} CPUs", file=sys.stderr)
    sizes = [int(x) for x in args.workers.split(",")]
    # Ray runs its workers at nice 15 (so that its own services stay responsive).
    # On a machine that other work shares, that alone slows them against the
    # single process (nice 0): measure both at the same priority.
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(num_cpus=max(os.cpu_count() or 1, args.threads) + sum(sizes),
             include_dashboard=False, logging_level="warning")
    try:
        runs = {"single": Single(scene_dict, cams, args.spp, values, targets)}
        for w in sizes:
            threads = args.threads if w == 1 else 1
            runs[f"pool_{w}x{threads}"] = Pooled(scene_dict, cams, args.spp, values, targets,
                                                 w, threads)
        # Interleaved (single, pool, pool, single, ...): the machine is shared, and
        # its load drifts; a step of each in turn sees about the same load.
        times: dict = {name: {"render": [], "gradient": []} for name in runs}
        for kind in ("render", "gradient"):
            for name, run in runs.items():
                getattr(run, kind)(0)           # warm-up: kernels compiled or loaded
            for i in range(args.steps):
                for name, run in runs.items():
                    times[name][kind].append(getattr(run, kind)(1 + i))
                    print(f"  {kind} step {i}: {name} {times[name][kind][-1]:.2f} s",
                          file=sys.stderr)
        base = {k: statistics.median(v) for k, v in times["single"].items()}
        for name, run in runs.items():
            r = {f"{k}_s": statistics.median(v) for k, v in times[name].items()}
            r.update({f"{k}_all": v for k, v in times[name].items()})
            r["render_views_per_s"] = args.views / r["render_s"]
            r["gradient_views_per_s"] = args.views / r["gradient_s"]
            if name != "single":
                r["render_overhead"] = r["render_s"] / base["render"] - 1
                r["gradient_overhead"] = r["gradient_s"] / base["gradient"] - 1
                r["worker_busy_s"] = statistics.median(run.busy[1:] or run.busy)
                r["summary"] = run.pool.summary()
                run.pool.close()
                extra = (f", {100 * r['render_overhead']:+.1f} % / "
                         f"{100 * r['gradient_overhead']:+.1f} % vs single")
            else:
                extra = ""
            out[name] = r
            print(f"{name:>12}: render {r['render_s']:.2f} s/step ({r['render_views_per_s']:.1f} "
                  f"views/s), gradient {r['gradient_s']:.2f} s/step "
                  f"({r['gradient_views_per_s']:.2f} views/s){extra}", file=sys.stderr)
    finally:
        ray.shutdown()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
