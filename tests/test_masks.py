"""Mask functions against NumPy references written from the spec (§3.4, §3.6)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from keras import ops

from state_of_sparsity.ops import masks


def ref_topk(scores, k):
    """Keep the k largest; among equal scores the lower flat index wins."""
    flat = np.asarray(scores, np.float64).ravel()
    order = np.lexsort((np.arange(flat.size), -flat))  # primary: -score, then index
    keep = np.zeros(flat.size)
    keep[order[:k]] = 1
    return keep.reshape(np.shape(scores))


def np_(x):
    return ops.convert_to_numpy(x)


@settings(max_examples=150, deadline=None)
@given(
    scores=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=1, max_dims=4, max_side=6),
        elements=st.integers(-4, 4).map(float),  # many ties on purpose
    ),
    frac=st.floats(0, 1),
)
def test_topk_matches_reference_with_ties(scores, frac):
    k = int(round(frac * scores.size))
    got = np_(masks.topk_mask(scores, k))
    assert got.shape == scores.shape
    assert got.sum() == k
    np.testing.assert_array_equal(got, ref_topk(scores, k))


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 10_000), s=st.floats(0, 1))
def test_keep_count_is_round_half_even(size, s):
    assert masks.keep_count(size, s) == int(np.round(size * (1.0 - s)))


def test_keep_count_examples():
    assert masks.keep_count(10, 0.25) == 8  # 7.5 -> 8 (half to even)
    assert masks.keep_count(10, 0.35) == 6  # 6.5 -> 6 (half to even)
    with pytest.raises(ValueError, match="sparsity"):
        masks.keep_count(10, 1.5)


@pytest.mark.parametrize("shape", [(7,), (20, 30), (3, 3, 4, 8)])
@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9, 0.999])
def test_magnitude_mask_keeps_largest_magnitudes(rng, shape, sparsity):
    w = rng.standard_normal(shape).astype("float32")
    got = np_(masks.magnitude_mask(w, sparsity))
    k = int(np.round(w.size * (1 - sparsity)))
    np.testing.assert_array_equal(got, ref_topk(np.abs(w), k))
    # Every kept magnitude is >= every pruned one.
    if 0 < k < w.size:
        assert np.abs(w)[got == 1].min() >= np.abs(w)[got == 0].max()


def test_cumulative_random_mask_properties(rng):
    shape = (40, 25)
    mask = np.ones(shape, "float32")
    history = []
    for step, s in enumerate([0.2, 0.5, 0.5, 0.8, 0.95]):
        new = np_(masks.cumulative_random_mask(mask, s, seed=step))
        assert new.sum() == masks.keep_count(mask.size, s)
        assert np.all(new <= mask)  # a zero stays zero
        history.append(new)
        mask = new
    # A lower target never revives weights.
    again = np_(masks.cumulative_random_mask(mask, 0.1, seed=99))
    np.testing.assert_array_equal(again, mask)


def test_cumulative_random_mask_is_deterministic_per_seed():
    mask = np.ones((50, 50), "float32")
    a = np_(masks.cumulative_random_mask(mask, 0.5, seed=7))
    b = np_(masks.cumulative_random_mask(mask, 0.5, seed=7))
    c = np_(masks.cumulative_random_mask(mask, 0.5, seed=8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_cumulative_random_mask_is_uniform_among_survivors():
    """Each survivor is removed with probability (removed / survivors); never a dead one."""
    n, trials = 20, 2000
    start = np.ones(n, "float32")
    start[:5] = 0  # 15 survivors
    counts = np.zeros(n)
    for seed in range(trials):
        counts += np_(masks.cumulative_random_mask(start, 0.5, seed=seed))
    assert np.all(counts[:5] == 0)
    keep_prob = masks.keep_count(n, 0.5) / 15
    expected = trials * keep_prob
    sd = np.sqrt(trials * keep_prob * (1 - keep_prob))
    assert np.all(np.abs(counts[5:] - expected) < 5 * sd)
