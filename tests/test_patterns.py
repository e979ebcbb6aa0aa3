"""Structured patterns (N:M along the input channels, blocks by L2 norm) for MP and RP, against
loop-based NumPy references written from the definitions in ``ops.patterns``."""

import itertools
import warnings

import keras
import numpy as np
import pytest
from keras import ops

import state_of_sparsity as sos
from state_of_sparsity.ops import masks, patterns


def np_(x):
    return ops.convert_to_numpy(x)


def ref_nm(kernel, n, m, in_axis):
    """Keep the n largest |w| of every m consecutive entries along ``in_axis`` (ties: lower)."""
    moved = np.moveaxis(np.abs(kernel), in_axis, -1)
    keep = np.zeros_like(moved)
    for index in itertools.product(*map(range, moved.shape[:-1])):
        for start in range(0, moved.shape[-1], m):
            group = moved[index][start : start + m]
            for j in sorted(range(m), key=lambda j: (-group[j], j))[:n]:
                keep[(*index, start + j)] = 1
    return np.moveaxis(keep, -1, in_axis)


def ref_blocks(matrix, r, c, sparsity):
    """Keep the round(B(1 - s)) blocks of largest L2 norm of a 2-D matrix (ties: lower)."""
    rows, cols = matrix.shape
    norms = {
        (i, j): np.sqrt(np.sum(matrix[i : i + r, j : j + c] ** 2))
        for i in range(0, rows, r)
        for j in range(0, cols, c)
    }
    kept = sorted(norms, key=lambda key: -norms[key])[: masks.keep_count(len(norms), sparsity)]
    keep = np.zeros_like(matrix)
    for i, j in kept:
        keep[i : i + r, j : j + c] = 1
    return keep


def mp(layer, final, pattern):
    return sos.layers.MagnitudePruning(layer, schedule(final), pattern=pattern)


def built(wrapper, shape):
    wrapper.build((None, *shape))
    return wrapper


def schedule(final, begin=0, end=8, frequency=2):
    return sos.PolynomialDecay(0.0, final, begin_step=begin, end_step=end, frequency=frequency)


def run(wrapper, steps=10):
    history = []
    for t in range(steps):
        if wrapper.due(t):
            wrapper.update_mask(t)
            history.append((t, np_(wrapper.mask).copy()))
    return history


@pytest.mark.parametrize(
    "factory, shape, in_axis",
    [
        (lambda: keras.layers.Dense(6), (8,), 0),
        (lambda: keras.layers.Conv2D(3, 3), (5, 5, 8), 2),
        (lambda: keras.layers.Conv1DTranspose(3, 2), (4, 8), 2),
        (lambda: keras.layers.Embedding(5, 12), (3,), 1),
    ],
    ids=["dense", "conv2d", "conv1d_transpose", "embedding"],
)
def test_magnitude_nm_ramps_to_the_exact_pattern(factory, shape, in_axis):
    wrapper = built(mp(factory(), 0.5, "2:4"), shape)
    kernel = np_(wrapper.kernel)
    final = ref_nm(kernel, 2, 4, in_axis)
    for t, mask in run(wrapper):
        s = wrapper.schedule.sparsity(t)
        assert mask.sum() == masks.keep_count(kernel.size, s)
        assert np.all(mask >= final)  # only weights N:M prunes are pruned on the way
        pruned = np.abs(kernel)[mask == 0]
        candidates = np.abs(kernel)[(mask == 1) & (final == 0)]
        assert pruned.size == 0 or candidates.size == 0 or pruned.max() <= candidates.min()
    np.testing.assert_array_equal(mask, final)


def test_any_nm_and_einsum_input_axes():
    layer = keras.layers.EinsumDense("abc,cde->abde", (4, 2, 3))  # kernel (c, d, e): c reduced
    wrapper = sos.layers.MagnitudePruning(layer, schedule=schedule(2 / 3), pattern=(1, 3))
    built(wrapper, (4, 6))
    run(wrapper)
    np.testing.assert_array_equal(np_(wrapper.mask), ref_nm(np_(wrapper.kernel), 1, 3, 0))


@pytest.mark.parametrize("block, sparsity", [("1x4", 0.75), ("4x4", 0.5), ("2x1", 0.9)])
def test_magnitude_blocks_keep_the_largest_norms(block, sparsity):
    wrapper = sos.layers.MagnitudePruning(
        keras.layers.Conv2D(8, 2), schedule=schedule(sparsity), pattern=block
    )
    built(wrapper, (5, 5, 8))
    r, c = map(int, block.split("x"))
    kernel = np_(wrapper.kernel)
    for t, mask in run(wrapper):
        matrix = kernel.reshape(-1, 8)  # (kh*kw*in, out): inputs by outputs
        expected = ref_blocks(matrix, r, c, wrapper.schedule.sparsity(t))
        np.testing.assert_array_equal(mask.reshape(-1, 8), expected)
    blocks = kernel.size // (r * c)
    kept = masks.keep_count(blocks, sparsity)
    assert mask.sum() == kept * r * c  # sparsity in whole blocks


@pytest.mark.parametrize("pattern", ["2:4", "4x2"])
def test_random_pruning_patterns_are_cumulative_and_seeded(pattern):
    final = 0.5 if pattern == "2:4" else 0.75

    def make(seed):
        wrapper = sos.layers.RandomPruning(
            keras.layers.Dense(8), schedule=schedule(final), pattern=pattern, seed=seed
        )
        return built(wrapper, (16,))

    wrapper = make(5)
    history = run(wrapper)
    unit = 1 if pattern == "2:4" else 8
    for (_, before), (t, after) in itertools.pairwise(history):
        assert np.all(after <= before)
        kept = masks.keep_count(after.size // unit, wrapper.schedule.sparsity(t)) * unit
        assert after.sum() == kept
    mask = history[-1][1]
    if pattern == "2:4":
        assert np.all(mask.reshape(4, 4, 8).sum(axis=1) == 2)
    else:
        assert set(np.unique(mask.reshape(4, 4, 4, 2).sum(axis=(1, 3)))) == {0.0, 8.0}
    np.testing.assert_array_equal(run(make(5))[-1][1], mask)
    assert not np.array_equal(run(make(6))[-1][1], mask)


def test_keras_round_trip_keeps_the_pattern_and_resumes(tmp_path):
    model = keras.Sequential([keras.Input((8,)), mp(keras.layers.Dense(4), 0.5, "2:4")])
    sos.update_masks(model, 2)
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.models.load_model(path)
    assert str(again.layers[0].pattern) == "2:4" and again.layers[0].distribution == "uniform"
    for m in (model, again):
        sos.update_masks(m, 8)
    np.testing.assert_array_equal(np_(again.layers[0].mask), np_(model.layers[0].mask))


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("4:4", "0 < N < M"),
        ((3, 2), "0 < N < M"),
        ("2-4", "'N:M' or (N, M)"),
        ((1, 2, 3), "'N:M' or (N, M)"),
        ("1x1", "unstructured"),
        ("0x4", ">= 1"),
    ],
)
def test_bad_patterns_are_named(pattern, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sos.layers.MagnitudePruning(keras.layers.Dense(4), schedule(0.5), pattern=pattern)


def test_impossible_targets_and_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="final_sparsity must be 0.5"):
        sos.layers.MagnitudePruning(keras.layers.Dense(4), schedule(0.9), pattern="2:4")
    with pytest.raises(ValueError, match="6 input channels are not a multiple of M=4"):
        built(mp(keras.layers.Dense(4), 0.5, "2:4"), (6,))
    with pytest.raises(ValueError, match="5 output channels are not a multiple of 4"):
        built(mp(keras.layers.Dense(5), 0.5, "1x4"), (8,))
    with pytest.raises(ValueError, match="distribution='uniform'"):
        sos.layers.MagnitudePruning(
            keras.layers.Dense(4), schedule(0.5), pattern="2:4", distribution="global"
        )
    with pytest.raises(ValueError, match="at most sparsity 0.5"):
        patterns.NM(2, 4).mask(np.ones((4, 2)), 0.6, ((0,), (1,)))


def test_sparsify_with_a_pattern_leaves_misfits_dense_with_a_warning():
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(8, 3, name="stem")(inputs)  # 3 input channels: 2:4 cannot apply
    x = keras.layers.DepthwiseConv2D(3, name="dw")(x)  # a 3x3 window: nor here
    x = keras.layers.Conv2D(8, 1, name="pw")(x)
    model = keras.Model(inputs, keras.layers.Dense(4, name="head")(x))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sparse = sos.sparsify(model, "magnitude_pruning", schedule=schedule(0.5), pattern="2:4")
    text = "\n".join(str(w.message) for w in caught if "leaves" in str(w.message))
    assert "pattern 2:4 does not fit" in text and "stem" in text and "dw" in text
    sos.update_masks(sparse, 8)
    report = sos.sparsity_report(sparse)
    assert [row.name for row in report.layers] == ["pw", "head"]
    assert all(row.sparsity == 0.5 and row.extra["pattern"] == "2:4" for row in report.layers)
    with pytest.raises(ValueError, match="final_sparsity=0.5"):
        sos.sparsify(model, "magnitude_pruning", schedule=schedule(0.8), pattern="2:4")
    with pytest.raises(ValueError, match="magnitude_pruning and random_pruning"):
        sos.sparsify(model, "variational_dropout", pattern="2:4")
    with pytest.raises(ValueError, match="pattern='2:4'"):
        sos.sparsify(model, "magnitude_pruning", schedule=schedule(0.5), sparsity_m_by_n=(2, 4))
