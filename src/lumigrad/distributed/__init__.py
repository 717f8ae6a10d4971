"""Multi-view rendering and optimisation on a Ray cluster (optional extra
``lumigrad[distributed]``).

>>> import lumigrad as lg
>>> from lumigrad.distributed import Pool                       # doctest: +SKIP
>>> pool = Pool("scene.xml", workers=4)                         # doctest: +SKIP
>>> images = pool.render(spp=256, seed=0)      # every sensor    # doctest: +SKIP
>>> pool.set_targets(photos)                                    # doctest: +SKIP
>>> for it in range(100):                                       # doctest: +SKIP
...     loss = pool.loss({"obj.to_world": posed(opt["t"])}, lg.l2, spp=16, seed=it)
...     dr.backward(loss)
...     opt.step()

Each worker (a Ray actor) loads the scene once and keeps it; calls send only
what changed (the optimised parameter values, once per call, through Ray's
object store), and get back images or gradient sums. See :class:`Pool`, the
README section "Distributed rendering and optimisation" and
``examples/distributed_pose.py``.

What equals what (checked in ``tests/test_distributed.py``):

* ``pool.render(views, spp, seed)`` (one pass per view): each image is *bit
  for bit* the single-process ``lg.render(scene, sensor=..., spp, seed)`` on
  the same backend, whichever worker rendered it (the samples depend only on
  the seed, the pixel and the sample index, and each pixel's mean is a block
  sum in a fixed order);
* ``passes=k``: the mean of ``k`` renders with seeds ``seed+i``, combined on
  the driver: equal to the same sum in a single process up to float rounding;
* ``pool.gradient``: the per-view losses are bit for bit the single-process
  ones; the gradients equal the single-process gradient of the summed loss
  up to float summation order (reverse mode accumulates with atomic
  scatter-adds, whose order varies from run to run even in one process).
"""
from __future__ import annotations

try:
    import ray as _ray  # noqa: F401
except ImportError:  # pragma: no cover - exercised only without the extra
    raise ImportError("lumigrad.distributed needs Ray: pip install 'lumigrad[distributed]'") \
        from None

from .codec import encode_views
from .pool import CallStats, GradientResult, Pool, WorkerError

__all__ = ["Pool", "GradientResult", "CallStats", "WorkerError", "encode_views"]
