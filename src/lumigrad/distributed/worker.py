"""The Ray actor of :class:`lumigrad.distributed.Pool`: one scene, loaded once.

A worker holds the scene, its parameters and a few cached pieces of state
(views, targets, loss, parameter values), each tagged with the token of the
Ray object it came from. Every call carries the tokens and object references
of the state it needs; a worker fetches an object only when its token changed.
So a step sends only what changed (the optimised parameters), and a worker
that Ray restarted after a crash (with an empty cache) fetches everything
again and computes exactly what the dead one would have.

This module imports no Ray at top level: the class is made remote by the pool.
"""
from __future__ import annotations

import os
import socket
import time
import traceback
from typing import Any, Optional

import numpy as np


class Worker:
    """Loads the scene; renders views and their loss gradients on request."""

    def __init__(self, scene: Any, defaults: dict, threads: Optional[int],
                 variant: Optional[str]) -> None:
        self.error: Optional[str] = None
        self.cache: dict = {}
        self.view_changes: dict = {}
        self.loaded: dict = {}      # key -> value in the loaded scene, of keys set since
        try:
            import drjit as dr

            import lumigrad as lg
            if variant:
                lg.set_variant(variant)
            if threads and lg.variant() == "llvm":
                dr.set_thread_count(int(threads))
            if isinstance(scene, dict):
                self.scene = lg.load_dict(scene)
            elif scene in ("cbox", "cornell_box", "builtin:cbox"):
                self.scene = lg.cornell_box(**{k: int(v) for k, v in defaults.items()})
            else:
                if not os.path.isfile(scene):
                    raise FileNotFoundError(
                        f"no scene file {scene!r} on this worker (working directory "
                        f"{os.getcwd()!r}): on a cluster, let the scene's folder travel with "
                        "the job (Pool(..., working_dir='auto')) or put it on shared storage")
                if not os.access(scene, os.R_OK):
                    raise PermissionError(f"the scene file {scene!r} is not readable here")
                self.scene = lg.load_file(scene, **defaults)
            self.params = lg.traverse(self.scene)
        except Exception as e:  # reported by info(): a failing constructor would be retried
            self.error = f"{type(e).__name__}: {e}"
            self.error_trace = traceback.format_exc()

    # -- set-up -------------------------------------------------------------
    def info(self) -> dict:
        """Host, process, backend and the scene's sensors (or the load error)."""
        out = {"host": socket.gethostname(), "pid": os.getpid(), "error": self.error}
        if self.error is None:
            import drjit as dr

            import lumigrad as lg
            out.update(variant=lg.variant(), threads=dr.thread_count(),
                       sensors=[tuple(s.resolution) for s in self.scene.sensors],
                       keys=list(self.params.keys()),
                       spp=[s.sampler.sample_count for s in self.scene.sensors],
                       sensor_params=[[self.params.suffix(k) for k in self.params.keys()
                                       if self.params.owner(k) is sensor]
                                      for sensor in self.scene.sensors])
        return out

    def _state(self, state: dict, name: str) -> Any:
        """The cached state ``name``, fetched from the object store if its token changed."""
        entry = state.get(name)
        if entry is None:
            return None
        token, box = entry
        cached = self.cache.get(name)
        if cached is not None and cached[0] == token:
            return cached[1]
        import ray
        value = ray.get(box[0])
        value = self._prepare(name, value)
        self.cache[name] = (token, value)
        return value

    def _prepare(self, name: str, value: Any) -> Any:
        import lumigrad as lg

        from .codec import decode, to_array
        if name == "targets":
            return [None if t is None else to_array(lg.TensorXf, t) for t in value]
        if name == "values":
            # Assign once per step: the scene renders with these from now on.
            # Keys of earlier values that are not sent again go back to the
            # loaded scene's values, so that a restarted worker (which has
            # only the loaded scene and this object) renders the same scene.
            decoded = {k: decode(enc, self.params[k]) for k, enc in value.items()}
            for k, v in self.loaded.items():
                if k not in decoded:
                    self.params[k] = v
            for k, v in decoded.items():
                self.loaded.setdefault(k, self.params[k])
                self.params[k] = v
            self.params.update()
            return decoded
        return value

    # -- views --------------------------------------------------------------
    def _apply_view(self, views: Optional[list], index: int) -> int:
        """Set up view ``index`` of the pool; returns the sensor to render from.

        Sensor parameters set by the previous view that this one does not set
        go back to their loaded values; one ``update()`` for both."""
        from .codec import decode
        n = len(views) if views is not None else len(self.scene.sensors)
        if not 0 <= index < n:
            raise IndexError(f"view index {index} out of range: the pool has {n} view(s)")
        spec = ("sensor", index) if views is None else views[index]
        sensor = spec[1]
        if not 0 <= sensor < len(self.scene.sensors):
            raise IndexError(f"view {index}: sensor {sensor} out of range: the scene has "
                             f"{len(self.scene.sensors)} sensor(s)")
        new = ({f"Sensor[{sensor}].{suffix}": enc for suffix, enc in spec[2].items()}
               if spec[0] == "params" else {})
        stale = [k for k in self.view_changes if k not in new]
        if not stale and not new:
            return sensor
        for k in stale:
            self.params[k] = self.view_changes.pop(k)
        for k, enc in new.items():
            original = self.view_changes.setdefault(k, self.params[k])
            self.params[k] = decode(enc, original)
        self.params.update()
        return sensor

    # -- work ---------------------------------------------------------------
    def render(self, state: dict, tasks: list) -> list:
        """``tasks``: ``(view, spp, seed)`` each; returns ``(image, seconds)`` each."""
        import drjit as dr

        import lumigrad as lg
        self._check()
        views = self._state(state, "views")
        self._state(state, "values")
        out = []
        for view, spp, seed in tasks:
            t0 = time.perf_counter()
            sensor = self._apply_view(views, view)
            with dr.suspend_grad():
                image = lg.render(self.scene, self.params, sensor=sensor, spp=spp, seed=seed)
                arr = np.array(image, dtype=np.float32)
            out.append((arr, time.perf_counter() - t0))
        return out

    def gradient(self, state: dict, tasks: list) -> dict:
        """Render each ``(view, spp, seed)`` of ``tasks`` with fresh grad-enabled
        copies of the broadcast parameters, back-propagate ``loss(image, target)``
        view by view (``dr.backward``, i.e. path replay) and return the gradients
        summed over the task's views, the per-view losses and times."""
        import drjit as dr

        import lumigrad as lg

        from .codec import raw
        self._check()
        views = self._state(state, "views")
        targets = self._state(state, "targets")
        loss_fn = self._state(state, "loss")
        values = self._state(state, "values")
        if loss_fn is None or values is None:
            raise ValueError("gradient(): no loss or no parameters were sent")
        losses, seconds = [], []
        leaves = {}
        try:
            for view, spp, seed in tasks:
                t0 = time.perf_counter()
                sensor = self._apply_view(views, view)
                if not leaves:
                    # One set of leaves for the task's views: the render op hands
                    # each view's gradient to them (they accumulate).
                    for k, v in values.items():
                        leaf = type(raw(v))(dr.detach(raw(v)))
                        dr.enable_grad(leaf)
                        self.params[k] = lg.Transform4f(leaf) if isinstance(
                            v, lg.Transform4f) else leaf
                        leaves[k] = leaf
                    self.params.update()
                image = lg.render(self.scene, self.params, sensor=sensor, spp=spp, seed=seed)
                target = targets[view] if targets is not None else None
                loss = loss_fn(image, target)
                dr.backward(loss)
                losses.append(float(np.array(dr.detach(loss), dtype=np.float64).ravel()[0])
                              if dr.is_array_v(loss) else float(loss))
                dr.sync_thread()
                seconds.append(time.perf_counter() - t0)
            grads = {k: np.array(dr.grad(leaf)) for k, leaf in leaves.items()}
        finally:
            # Back to the broadcast (detached) values.
            for k, v in values.items():
                self.params[k] = v
            self.params.update()
        return {"losses": losses, "seconds": seconds, "grads": grads}

    def _check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"the scene failed to load on this worker: {self.error}")

    def pid(self) -> int:
        return os.getpid()
