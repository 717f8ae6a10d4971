"""``boundary.sampling.DiscreteSampler``: the guide-table search selects what a
search of the whole cumulative sum selects, never a zero weight, with the
right probabilities; ``CandidateLists`` draws with the probabilities it reports."""
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


@pytest.mark.parametrize("grouped", [False, True])
def test_candidate_lists_draw_with_their_probabilities(grouped):
    """``CandidateLists``: a draw's reported probability is its frequency
    (rows of different lengths, an empty row); grouped by shape, each group
    gets half the share of its items' weights and half that of their number —
    a few heavy items of one group beside thousands of light ones of another
    (the edges of a box beside a dense mesh) are drawn by their weight too."""
    from lumigrad import backend as bk
    from lumigrad.integrators.boundary.sampling import CandidateLists
    rng = np.random.default_rng(3)
    n = 3000
    groups = np.repeat(np.arange(4), [12, 2500, 400, 88])      # a box, a mesh, ...
    w0 = np.where(groups == 0, 1.0, 0.002) * (rng.random(n) < 0.9)
    w1 = np.where(groups == 2, rng.random(n), 0.0)
    w2 = np.zeros(n)
    rows = [lg.Float(w.astype(np.float32)) for w in (w0, w1, w2)]
    lists = CandidateLists(rows, groups if grouped else None)
    m = 400_000
    u = lg.Float(rng.random(m).astype(np.float32))
    for r, w in enumerate((w0, w1, w2)):
        slot, pmf = lists.draw_slot(bk.UInt32(np.full(m, r, np.uint32)), u)
        pmf = np.array(pmf)
        if not w.any():
            assert np.all(pmf == 0)
            continue
        item = np.array(lists.items)[np.array(slot)]
        assert np.all(w[item] > 0), "an item outside the row's list was drawn"
        freq = np.bincount(item, minlength=n) / m
        # reported probabilities: one per item, summing to 1 over the row's list
        p_item = np.zeros(n)
        p_item[item] = pmf
        assert 0.99 < p_item.sum() < 1.0 + 1e-4      # (items never drawn are missing)
        seen = freq > 0
        tol = 6 * np.sqrt(p_item[seen] / m) + 1e-6
        assert np.all(np.abs(freq[seen] - p_item[seen]) <= tol)
        if grouped and r == 0:
            # half by the groups' weights, half by their numbers of items
            box, listed = (groups == 0) & (w0 > 0), w0 > 0
            share_box = (0.5 * w0[box].sum() / w0.sum() + 0.5 * box.sum() / listed.sum())
            assert CandidateLists.DEFENSIVE == 0.5
            assert freq[groups == 0].sum() == pytest.approx(share_box, abs=0.01)
        elif r == 0:
            assert freq[groups == 0].sum() == pytest.approx(
                (w0[groups == 0] > 0).sum() / (w0 > 0).sum(), abs=0.01)
