"""The driver side: :class:`Pool`, a set of Ray actors that each hold the scene.

Scheduling is dynamic: the views of a call are cut into tasks (a few views
each), and each worker gets at most ``max_in_flight`` tasks at a time, the
next one as soon as one returns. Results are stored by task, and combined on
the driver in task order once every task has returned, so the outcome depends
neither on which worker ran what nor on failures:

* a worker that dies (killed, out of memory, node lost) makes its tasks fail
  with ``RayActorError``; Ray restarts the actor (``max_restarts``), which
  loads the scene again, and the pool gives the failed tasks to whichever
  worker is free. A task's result is counted once (stored by task index), so
  a step's sum is never partial (the call waits for every task) nor doubled;
* an exception raised by lumigrad on a worker (a bad parameter key, a loss
  that fails) is raised on the driver with the worker named;
* no result for ``timeout`` seconds raises ``TimeoutError`` (and restarts the
  busy workers, so that the pool stays usable) instead of waiting forever.
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

import drjit as dr
import numpy as np

from .. import backend as bk
from .codec import encode, encode_views, raw, to_array


class WorkerError(RuntimeError):
    """A worker could not start (e.g. it cannot read the scene file) or kept dying."""


@dataclass
class GradientResult:
    """What :meth:`Pool.gradient` returns.

    ``grads[key]`` is the gradient of the summed loss with respect to the raw
    value of parameter ``key`` (the 4×4 matrix of a transform), as an array of
    the driver's backend; ``view_losses`` the loss of each view, in call order.
    """
    loss: float
    grads: dict
    view_losses: list
    seconds: float
    view_seconds: list = field(default_factory=list)


@dataclass
class CallStats:
    """Timing of the last call (:meth:`Pool.summary`)."""
    kind: str
    views: int
    seconds: float
    view_seconds: list
    restarts: int
    workers: int

    def __str__(self) -> str:
        v = np.asarray(self.view_seconds) if self.view_seconds else np.zeros(1)
        busy = float(v.sum())
        text = (f"{self.kind}: {self.views} view(s) on {self.workers} worker(s) in "
                f"{self.seconds:.2f} s ({self.views / max(self.seconds, 1e-9):.2f} views/s); "
                f"time per view on a worker: mean {v.mean():.3f} s, min {v.min():.3f} s, "
                f"max {v.max():.3f} s; workers busy {100 * busy / max(self.seconds * self.workers, 1e-9):.0f} %")
        if self.restarts:
            text += f"; {self.restarts} task(s) recomputed after a worker died"
        return text


def _ray() -> Any:
    try:
        import ray
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError("lumigrad.distributed needs Ray: pip install 'lumigrad[distributed]'") \
            from None
    return ray


class Pool:
    """A pool of Ray actors, each with the scene loaded once.

    Args:
        scene: a scene file path (Mitsuba 3 XML), a scene dict (``load_dict``
            form) or ``'cbox'`` (the built-in Cornell box).
        workers: number of actors.
        address: an existing Ray cluster (``'auto'``, ``'ray://host:10001'``,
            ``'host:6379'``); None starts a local Ray instance unless one is
            already running in this process.
        views: the pool's views (default: the scene's sensors, view *i* =
            sensor *i*): sensor indices, ``Transform4f``/4×4 ``to_world``
            matrices of sensor 0, or dicts of sensor parameters such as
            ``{"to_world": T, "x_fov": 40, "sensor": 0}``. Calls select views
            by index into this list. See :meth:`set_views`.
        defaults: ``<default>`` overrides of a scene file (as ``load_file``).
        working_dir: the folder that travels with the job to every node
            (Ray's job-level ``runtime_env`` ``working_dir``, set when the pool
            starts Ray; the scene path is then read relative to it). ``'auto'``
            = the scene file's folder when an ``address`` is given (nothing
            travels for a local pool, which reads the file where it is); None =
            nothing travels (shared storage, or a folder the user's own
            ``ray.init(runtime_env=...)`` ships).
        cpus_per_worker, gpus_per_worker: Ray resources of each actor.
        threads: Dr.Jit (LLVM) threads per worker; default ``cpus_per_worker``.
        variant: ``'llvm'``/``'cuda'`` on the workers (default: CUDA where a
            worker has a GPU, else LLVM; renders are bitwise equal to the
            driver's only on the same backend).
        timeout: seconds without any result before a call raises ``TimeoutError``.
        start_timeout: seconds to wait for the workers to load the scene.
        max_restarts: how often Ray restarts a dead worker; ``max_retries``:
            how often a task is recomputed before the call gives up.
        progress: show a tqdm bar per call.
    """

    def __init__(self, scene: Union[str, os.PathLike, dict], workers: int = 2,
                 address: Optional[str] = None, views: Optional[Sequence] = None,
                 defaults: Optional[dict] = None, working_dir: Optional[str] = "auto",
                 cpus_per_worker: float = 1, gpus_per_worker: float = 0,
                 threads: Optional[int] = None, variant: Optional[str] = None,
                 timeout: float = 600.0, start_timeout: float = 300.0,
                 max_restarts: int = 4, max_retries: int = 3, max_in_flight: int = 2,
                 progress: bool = True) -> None:
        ray = _ray()
        if not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.workers = int(workers)
        self.timeout, self.max_retries = float(timeout), int(max_retries)
        self.max_in_flight = max(1, int(max_in_flight))
        self.progress = progress
        self.restarts = 0
        self.last: Optional[CallStats] = None
        self._on_dispatch: Optional[Callable[[int, int], None]] = None  # (worker, task): tests
        self._owns_ray = False
        # The folder that travels with the job (Ray ships local folders only
        # as the job's runtime_env, given to ray.init).
        folder: Optional[str] = None
        if isinstance(scene, dict):
            scene_arg: Any = scene
        else:
            path = os.fspath(scene)
            if path in ("cbox", "cornell_box", "builtin:cbox"):
                scene_arg = path
            else:
                if working_dir == "auto":
                    folder = os.path.dirname(os.path.abspath(path)) if address else None
                elif working_dir is not None:
                    folder = os.path.abspath(os.fspath(working_dir))
                scene_arg = (os.path.relpath(os.path.abspath(path), folder) if folder
                             else os.path.abspath(path))
        if not ray.is_initialized():
            kw: dict = {"logging_level": "warning"}
            if folder:
                kw["runtime_env"] = {"working_dir": folder}
            if address is None:
                ray.init(num_cpus=max(os.cpu_count() or 1,
                                      math.ceil(self.workers * cpus_per_worker)),
                         include_dashboard=False, **kw)
            else:
                ray.init(address=address, **kw)
            self._owns_ray = True
        elif folder and not ray.get_runtime_context().runtime_env.get("working_dir"):
            raise ValueError(
                f"the scene's folder {folder!r} should travel with the job, but Ray was "
                "started in this process without a working_dir: call ray.init(..., "
                f"runtime_env={{'working_dir': {folder!r}}}) yourself, let the Pool start "
                "Ray, or pass working_dir=None (the path is then read as it is on every node)")
        self.scene_name = scene_arg if isinstance(scene_arg, str) else "<dict>"
        options: dict = dict(num_cpus=cpus_per_worker, max_restarts=int(max_restarts),
                             max_task_retries=0)
        if gpus_per_worker:
            options["num_gpus"] = gpus_per_worker
        from .worker import Worker
        cls = ray.remote(Worker).options(**options)
        threads = threads if threads is not None else max(1, int(cpus_per_worker))
        if variant is None:   # a worker with a GPU runs CUDA, one without it LLVM
            variant = "cuda" if gpus_per_worker else "llvm"
        self._actors = [cls.remote(scene_arg, dict(defaults or {}), threads, variant)
                        for _ in range(self.workers)]
        self._state: dict = {}
        self._keep: dict = {}
        self._failures = [0] * self.workers  # consecutive failed tasks of each worker
        self._dead: set = set()              # workers that failed too often in a row
        try:
            infos = ray.get([a.info.remote() for a in self._actors], timeout=start_timeout)
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise TimeoutError(f"the {self.workers} worker(s) did not start within "
                               f"{start_timeout:.0f} s (not enough CPUs/GPUs in the cluster "
                               f"for {cpus_per_worker} CPU(s) and {gpus_per_worker} GPU(s) "
                               "each?)") from None
        except ray.exceptions.RayError as e:
            self.close()
            raise WorkerError(f"a worker failed to start: {e}") from None
        for i, info in enumerate(infos):
            if info["error"] is not None:
                self.close()
                raise WorkerError(f"worker {i} (host {info['host']}, pid {info['pid']}) could "
                                  f"not load the scene {self.scene_name!r}: {info['error']}")
        self.infos = infos
        self._keys = set(infos[0]["keys"])
        self.sensors = infos[0]["sensors"]
        try:
            self.set_views(views)
        except Exception:
            self.close()
            raise

    # -- state broadcast ----------------------------------------------------
    def _put(self, name: str, value: Any) -> None:
        """Put ``value`` in the object store once; calls send its reference."""
        ray = _ray()
        if value is None:
            self._state.pop(name, None)
            return
        ref = ray.put(value)
        self._state[name] = (ref.hex(), [ref])   # nested: Ray does not resolve it eagerly

    def set_views(self, views: Optional[Sequence]) -> None:
        """Replace the pool's views (see the class docstring); sent once."""
        specs = None if views is None else encode_views(views)
        for j, spec in enumerate(specs or []):
            if not 0 <= spec[1] < len(self.sensors):
                raise IndexError(f"view {j}: sensor {spec[1]} out of range: the scene has "
                                 f"{len(self.sensors)} sensor(s)")
            known = self.infos[0]["sensor_params"][spec[1]]
            for suffix in (spec[2] if spec[0] == "params" else ()):
                if suffix not in known:
                    raise KeyError(f"view {j}: sensor {spec[1]} has no parameter {suffix!r} "
                                   f"(its parameters: {', '.join(known)})")
        self.num_views = len(self.sensors) if specs is None else len(specs)
        self._specs = specs
        self._put("views", specs)
        self._put("targets", None)

    def set_targets(self, images: Optional[Sequence]) -> None:
        """Target images, one per pool view (None for a view without one);
        sent once, then passed as ``target`` to the loss of :meth:`gradient`."""
        if images is None:
            self._put("targets", None)
            return
        images = list(images)
        if len(images) != self.num_views:
            raise ValueError(f"set_targets(): {len(images)} image(s) for {self.num_views} views")
        self._put("targets", [None if t is None else np.array(t, dtype=np.float32)
                              for t in images])

    def _set_values(self, params: Optional[Mapping]) -> Optional[dict]:
        if params is None:
            return None
        if not isinstance(params, Mapping):
            raise TypeError("params must be a mapping of scene parameter keys to values "
                            f"(a dict, SceneParameters or drjit.opt optimizer), got "
                            f"{type(params).__name__}")
        import difflib
        import re
        for k in params:
            if k not in self._keys and not re.match(r"^(Mesh|BSDF|Emitter|Sensor)\[\d+\]\.", k):
                close = difflib.get_close_matches(str(k), sorted(self._keys), n=5, cutoff=0.5)
                raise KeyError(f"unknown scene parameter {k!r}"
                               + (f"; close matches: {', '.join(close)}" if close else ""))
        enc = {str(k): encode(v) for k, v in params.items()}
        self._put("values", enc)     # one object per step, read by every worker
        return enc

    def _set_loss(self, loss: Callable) -> None:
        if not callable(loss):
            raise TypeError(f"loss must be callable as loss(image, target), got {loss!r}")
        if self._keep.get("loss") is not loss:
            self._keep["loss"] = loss
            self._put("loss", loss)

    # -- views and seeds ----------------------------------------------------
    def _views(self, views: Optional[Sequence[int]]) -> list:
        if views is None:
            return list(range(self.num_views))
        if isinstance(views, (int, np.integer)):
            views = [views]
        out = []
        for v in views:
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise TypeError(f"views must be indices into the pool's views, got {v!r} "
                                "(set camera transforms with Pool(views=...) or set_views)")
            if not 0 <= int(v) < self.num_views:
                raise IndexError(f"view index {int(v)} out of range: the pool has "
                                 f"{self.num_views} view(s) (0..{self.num_views - 1})")
            out.append(int(v))
        return out

    @staticmethod
    def _seeds(seed: Union[int, Sequence[int]], n: int) -> list:
        if isinstance(seed, (int, np.integer)):
            return [int(seed)] * n
        seeds = [int(s) for s in seed]
        if len(seeds) != n:
            raise ValueError(f"{len(seeds)} seed(s) for {n} view(s)")
        return seeds

    def _chunks(self, items: list, per_task: Optional[int]) -> list:
        if per_task is None:
            per_task = max(1, math.ceil(len(items) / (4 * self.workers)))
        return [items[i:i + per_task] for i in range(0, len(items), per_task)]

    # -- the calls ----------------------------------------------------------
    def view_spp(self, view: int) -> int:
        """The sample count of the sensor that view ``view`` renders from."""
        (view,) = self._views([view])
        spec = ("sensor", view) if self._specs is None else self._specs[view]
        return int(self.infos[0]["spp"][spec[1]])

    def render(self, views: Optional[Sequence[int]] = None, spp: Optional[int] = None,
               seed: Union[int, Sequence[int]] = 0, passes: int = 1,
               params: Optional[Mapping] = None, views_per_task: Optional[int] = None) -> list:
        """Render views in parallel; returns one ``TensorXf`` per view, in order.

        ``spp``: samples per pixel (None: each view's sensor's sample count).
        ``seed``: one seed for every view, or one per view. With ``passes=1``
        view ``v`` is bit for bit ``lg.render(scene, sensor=v, spp=spp,
        seed=seed)`` (after applying the view's sensor parameters and
        ``params``). With ``passes=k`` each view is split into ``k`` renders of
        ``n_i`` samples (``spp`` shared as evenly as possible) with seeds
        ``seed + i``, run on any worker, and averaged on the driver:
        ``Σ_i n_i · render(spp=n_i, seed=seed+i) / spp``, summed in pass order
        in float64 (equal to a single process doing the same up to float
        rounding). ``params``: parameter values to render with (sent once;
        they stay in effect for later calls until other values are sent, and
        keys not sent again revert to the loaded scene's values).
        """
        idx = self._views(views)
        seeds = self._seeds(seed, len(idx))
        if spp is not None and (not isinstance(spp, (int, np.integer)) or spp < 1):
            raise ValueError(f"spp must be a positive integer, got {spp!r}")
        spps = [int(spp) if spp is not None else self.view_spp(v) for v in idx]
        if not isinstance(passes, (int, np.integer)) or not 1 <= passes <= min(spps):
            raise ValueError(f"passes must be between 1 and spp ({min(spps)}), got {passes!r}")
        prev = self._state.get("values")
        self._set_values(params)
        items = []
        for j, (v, s, n_all) in enumerate(zip(idx, seeds, spps)):
            split = [n_all // passes + (1 if i < n_all % passes else 0) for i in range(passes)]
            items += [(j, v, n, s + i) for i, n in enumerate(split)]
        chunks = self._chunks(items, views_per_task)
        results, view_seconds, wall = self._run(
            "render", [[(v, n, s) for _, v, n, s in c] for c in chunks], "render", prev)
        images: list = [None] * len(idx)
        acc: list = [None] * len(idx)
        for c, res in zip(chunks, results):
            for (j, _, n, _), (img, _) in zip(c, res):
                if passes == 1:
                    images[j] = img
                else:
                    term = img.astype(np.float64) * (n / spps[j])
                    acc[j] = term if acc[j] is None else acc[j] + term
        if passes > 1:
            images = [a.astype(np.float32) for a in acc]
        self.last = CallStats("render", len(idx), wall, view_seconds, self._restarts_call,
                              self.workers)
        return [to_array(bk.TensorXf, img) for img in images]

    def gradient(self, params: Mapping, loss: Callable, views: Optional[Sequence[int]] = None,
                 spp: Optional[int] = None, seed: Union[int, Sequence[int]] = 0,
                 views_per_task: Optional[int] = None) -> GradientResult:
        """Gradient of ``Σ_v loss(render(view v), target_v)`` with respect to
        the parameters ``params`` (``{key: value}``), computed on the workers
        and summed on the driver.

        ``params`` are broadcast once (only these values travel). Each worker
        renders its views with grad-enabled copies of them, back-propagates
        each view's ``loss(image, target)`` (``dr.backward``: path replay) and
        returns its part of the gradient. ``loss`` must be picklable (a module
        function such as ``lg.l2``, or a closure); ``target`` is the view's
        image from :meth:`set_targets` (None without). Seeds as in
        :meth:`render`; the derivative passes use ``render``'s default
        ``seed_grad``, as in a single process.
        """
        idx = self._views(views)
        seeds = self._seeds(seed, len(idx))
        if spp is not None and (not isinstance(spp, (int, np.integer)) or spp < 1):
            raise ValueError(f"spp must be a positive integer, got {spp!r}")
        if not params:
            raise ValueError("gradient(): no parameters to differentiate")
        self._set_loss(loss)
        prev = self._state.get("values")
        self._set_values(params)
        items = [(j, v, int(spp) if spp is not None else self.view_spp(v), s)
                 for j, (v, s) in enumerate(zip(idx, seeds))]
        chunks = self._chunks(items, views_per_task)
        results, view_seconds, wall = self._run(
            "gradient", [[(v, n, s) for _, v, n, s in c] for c in chunks], "gradient", prev)
        sums: dict = {}
        losses: list = [0.0] * len(idx)
        for c, res in zip(chunks, results):          # task order: deterministic
            for (j, *_), l in zip(c, res["losses"]):
                losses[j] = l
            for k, g in res["grads"].items():
                g = g.astype(np.float64)
                sums[k] = g if k not in sums else sums[k] + g
        grads = {}
        for k, g in sums.items():
            like = raw(params[k])
            tp = type(like) if isinstance(like, dr.ArrayBase) else bk.Float
            grads[k] = to_array(tp, g.astype(np.float32).reshape(g.shape))
        self.last = CallStats("gradient", len(idx), wall, view_seconds, self._restarts_call,
                              self.workers)
        return GradientResult(float(np.sum(np.asarray(losses, dtype=np.float64))), grads,
                              losses, wall, view_seconds)

    def loss(self, params: Mapping, loss: Callable, views: Optional[Sequence[int]] = None,
             spp: Optional[int] = None, seed: Union[int, Sequence[int]] = 0,
             views_per_task: Optional[int] = None) -> Any:
        """:meth:`gradient` as a differentiable ``Float``: the summed loss,
        attached to the values in ``params``, so that ``dr.backward(loss)``
        hands the distributed gradient to them and on to whatever they were
        computed from (latent variables, ``drjit.opt`` optimizers)::

            loss = pool.loss({"obj.to_world": posed(opt["t"])}, lg.l2, seed=it)
            dr.backward(loss)
            opt.step()
        """
        inputs = {k: raw(v) for k, v in params.items()
                  if isinstance(raw(v), dr.ArrayBase) and dr.grad_enabled(raw(v))}
        if not inputs:
            return bk.Float(self.gradient(params, loss, views, spp, seed, views_per_task).loss)
        return dr.custom(_PoolLoss, self, dict(params), inputs, loss, views, spp, seed,
                         views_per_task)

    # -- the scheduler ------------------------------------------------------
    def _run(self, method: str, tasks: list, desc: str, prev_values: Any = None) -> tuple:
        """Run ``tasks`` (lists of per-view work) on the workers; returns the
        results in task order, per-view worker seconds and the wall time.
        On an error, the parameter values in effect before the call
        (``prev_values``) are restored, so that later calls do not send the
        values that failed."""
        state = dict(self._state)
        try:
            return self._schedule(method, tasks, desc, state)
        except BaseException:
            if prev_values is None:
                self._state.pop("values", None)
            else:
                self._state["values"] = prev_values
            raise

    def _schedule(self, method: str, tasks: list, desc: str, state: dict) -> tuple:
        ray = _ray()
        from tqdm import tqdm
        t0 = time.perf_counter()
        self._restarts_call = 0
        queue = deque(range(len(tasks)))
        inflight: dict = {}
        load = [0] * self.workers
        tries = [0] * len(tasks)
        waited: dict = {}                    # task -> when a restarting worker first refused it
        results: list = [None] * len(tasks)
        done = [False] * len(tasks)
        total = sum(len(t) for t in tasks)
        bar = tqdm(total=total, desc=desc, unit="view", disable=not self.progress,
                   file=sys.stderr, leave=False)
        try:
            while queue or inflight:
                while queue:
                    alive = [i for i in range(self.workers)
                             if i not in self._dead and load[i] < self.max_in_flight]
                    if not alive:
                        break
                    w = min(alive, key=lambda i: load[i])
                    c = queue.popleft()
                    ref = getattr(self._actors[w], method).remote(state, tasks[c])
                    inflight[ref] = (w, c)
                    load[w] += 1
                    if self._on_dispatch is not None:
                        self._on_dispatch(w, c)
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=self.timeout)
                if not ready:
                    busy = sorted({w for w, _ in inflight.values()})
                    for w in busy:   # restart them: their work is abandoned
                        ray.kill(self._actors[w], no_restart=False)
                    raise TimeoutError(
                        f"{desc}: no result from worker(s) {busy} within {self.timeout:.0f} s "
                        f"({total - sum(len(tasks[i]) for i in range(len(tasks)) if not done[i])}"
                        f" of {total} views done); they were restarted")
                for ref in ready:
                    w, c = inflight.pop(ref)
                    load[w] -= 1
                    try:
                        res = ray.get(ref)
                    except ray.exceptions.RayTaskError as e:
                        _drain(ray, list(inflight), min(self.timeout, 60.0))
                        raise _user_error(e, w, self.infos[w]) from None
                    except ray.exceptions.RayActorError as e:
                        self.restarts += 1
                        self._restarts_call += 1
                        if _restarting(ray, e):
                            # The worker is being restarted (Ray says so while it
                            # loads the scene again): no new death; the task
                            # waits a little, up to ``timeout`` in all, and goes
                            # to whoever is free (on a loaded machine a restart
                            # outlasts several quick retries).
                            waited.setdefault(c, time.perf_counter())
                            if time.perf_counter() - waited[c] > self.timeout:
                                raise WorkerError(
                                    f"{desc}: task {c}: worker {w} still restarting after "
                                    f"{self.timeout:.0f} s; last error: {e}") from None
                            time.sleep(0.1)
                            queue.appendleft(c)
                            continue
                        tries[c] += 1
                        self._failures[w] += 1
                        if self._failures[w] > self.max_retries:
                            self._dead.add(w)        # out of restarts: use the others
                        if tries[c] > self.max_retries or len(self._dead) == self.workers:
                            raise WorkerError(f"{desc}: task {c} failed {tries[c]} times "
                                              f"(workers died); last error: {e}") from None
                        queue.appendleft(c)          # recomputed, by whoever is free
                        continue
                    self._failures[w] = 0
                    if not done[c]:                  # counted once
                        done[c] = True
                        results[c] = res
                        bar.update(len(tasks[c]))
        finally:
            bar.close()
        if method == "render":
            view_seconds = [s for r in results for _, s in r]
        else:
            view_seconds = [s for r in results for s in r["seconds"]]
        return results, view_seconds, time.perf_counter() - t0

    # -- housekeeping -------------------------------------------------------
    def worker_pids(self) -> list:
        """Process id of each worker (they change when Ray restarts one)."""
        ray = _ray()
        return ray.get([a.pid.remote() for a in self._actors], timeout=self.timeout)

    def summary(self) -> str:
        """Timing of the last call: views/s, time per view on the workers."""
        return str(self.last) if self.last is not None else "no call yet"

    def close(self) -> None:
        """Stop the workers (and the local Ray instance if this pool started it)."""
        ray = _ray()
        for a in getattr(self, "_actors", []):
            try:
                ray.kill(a, no_restart=True)
            except Exception:
                pass
        self._actors = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _PoolLoss(dr.CustomOp):
    """The distributed loss as a node of the driver's AD graph: its gradient
    is computed (on the workers) together with its value."""

    def eval(self, pool: Pool, params: dict, inputs: dict, loss: Callable, views: Any,
             spp: int, seed: Any, views_per_task: Any) -> Any:
        res = pool.gradient(params, loss, views, spp, seed, views_per_task)
        self.keys = list(inputs)
        self.grads = res.grads
        self.result = res
        return bk.Float(res.loss)

    def forward(self) -> None:
        # d loss = Σ_k <∂loss/∂x_k, tangent_k> (the gradient is already known)
        tangents = self.grad_in("inputs")
        total = bk.Float(0.0)
        for k in self.keys:
            g, t = self.grads[k], tangents[k]
            if dr.is_matrix_v(g):      # (``*`` of two matrices is their product)
                total += sum(g[i, j] * t[i, j] for i in range(4) for j in range(4))
            else:
                total += dr.sum(g * t, axis=None)
        self.set_grad_out(total)

    def backward(self) -> None:
        g = self.grad_out()
        self.set_grad_in("inputs", {k: self.grads[k] * g for k in self.keys})

    def name(self) -> str:
        return "lumigrad.distributed.loss"


def _restarting(ray: Any, error: Exception) -> bool:
    """Whether ``error`` says the actor is only being restarted (Ray's
    ``ActorUnavailableError``), not that it died."""
    unavailable = getattr(ray.exceptions, "ActorUnavailableError", None)
    return unavailable is not None and isinstance(error, unavailable)


def _drain(ray: Any, refs: list, timeout: float) -> None:
    """Wait for the other tasks of a failed call and drop their results (or
    errors: Ray would log them as unhandled)."""
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout) if refs else ([], [])
    for ref in ready:
        try:
            ray.get(ref)
        except Exception:
            pass


def _user_error(e: Any, worker: int, info: dict) -> Exception:
    """An exception raised by lumigrad on a worker, re-raised on the driver."""
    cause = getattr(e, "cause", None)
    where = f"on worker {worker} (host {info['host']})"
    if isinstance(cause, Exception):
        msg = str(cause.args[0]) if len(cause.args) == 1 else str(cause)
        try:
            return type(cause)(f"{msg} [{where}]")
        except Exception:
            pass
    return WorkerError(f"{where}: {e}")
