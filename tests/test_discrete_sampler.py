"""``boundary.sampling.DiscreteSampler``: the guide-table search selects what a
search of the whole cumulative sum selects, never a zero weight, with the
right probabilities."""
from __future__ import annotations

import numpy as np
import pytest

import lumigrad as lg
from lumigrad.integrators.boundary.sampling import DiscreteSampler


def _weights(kind: str, rng: np.random.Generator) -> np.ndarray:
    n = {"few": 5, "edges": 58, "sparse": 2000, "large": 50000, "skewed": 20000,
         "steep": 30000}[kind]
    w = rng.exponential(size=n).astype(np.float32)
    if kind == "edges":
        w[rng.random(n) < 0.3] = 0
    if kind == "sparse":
        w[rng.random(n) < 0.95] = 0
    if kind == "skewed":
        w[rng.random(n) < 0.99] = 0
        w[rng.integers(0, n)] = 1e6
    if kind == "steep":
        w = (0.05 + rng.random(n) ** 8).astype(np.float32)
    return w


@pytest.mark.parametrize("kind", ["few", "edges", "sparse", "large", "skewed", "steep"])
def test_guide_table_search_equals_a_whole_search(kind):
    rng = np.random.default_rng(7)
    w = _weights(kind, rng)
    sampler = DiscreteSampler(lg.Float(w))
    u = np.concatenate([rng.random(100000), np.linspace(0, 1, 20000, endpoint=False)])
    u = u.astype(np.float32)
    idx, pmf = sampler.sample(lg.Float(u))
    idx, pmf = np.array(idx), np.array(pmf)
    items = np.flatnonzero(w > 0)
    # The first positive item whose cumulative sum exceeds x = u · total.
    x = (u * np.float32(sampler.total)).astype(np.float64)
    whole = items[np.minimum(np.searchsorted(np.array(sampler.cdf, np.float64), x,
                                             side="right"), items.size - 1)]
    np.testing.assert_array_equal(idx, whole)
    assert np.all(w[idx] > 0)
    np.testing.assert_allclose(pmf, w[idx] / w.sum(dtype=np.float64), rtol=1e-4)
    # Frequencies follow the weights (the random part of u).
    freq = np.bincount(idx[:100000], minlength=w.size) / 100000
    top = np.argsort(w)[-3:]
    np.testing.assert_allclose(freq[top], w[top] / w.sum(), atol=4e-3)


def test_empty_and_zero_weights():
    assert DiscreteSampler(lg.Float(np.zeros(4, np.float32))).empty
    assert DiscreteSampler(lg.Float(np.zeros(0, np.float32))).empty
    s = DiscreteSampler(lg.Float(np.array([0, 0, 2, 0], np.float32)))
    idx, pmf = s.sample(lg.Float(np.linspace(0, 0.999, 50).astype(np.float32)))
    assert set(np.array(idx).tolist()) == {2} and np.allclose(np.array(pmf), 1.0)
