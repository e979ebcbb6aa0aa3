"""Global and ERK distributions, against NumPy references of RigL's ERK loop and of a pooled
top-k, on MobileNetV2."""

import keras
import numpy as np
import pytest
from keras import ops

import state_of_sparsity as sos
from state_of_sparsity import distributions
from state_of_sparsity.ops import masks

SCHEDULE = sos.PolynomialDecay(0.0, 0.9, begin_step=0, end_step=4, frequency=2)


def np_(x):
    return ops.convert_to_numpy(x)


def ref_erk_densities(shapes, sparsity):
    """RigL's sparse_utils.get_sparsities_erdos_renyi (erk_power_scale=1), as densities."""
    dense = set()
    while True:
        divisor, rhs, raw = 0.0, 0.0, {}
        for name, shape in shapes.items():
            n = np.prod(shape)
            if name in dense:
                rhs -= n * sparsity
            else:
                rhs += n * (1 - sparsity)
                raw[name] = np.sum(shape) / np.prod(shape)
                divisor += raw[name] * n
        eps = rhs / divisor
        top = max(raw.values())
        if top * eps > 1:
            dense |= {name for name, p in raw.items() if p == top}
        else:
            break
    return {name: 1.0 if name in dense else eps * raw[name] for name in shapes}


@pytest.fixture(scope="module")
def mobilenet():
    return keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35)


def _wrappers(model):
    from state_of_sparsity import traversal

    return traversal.wrappers(model)


@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.95, 0.99])
def test_erk_matches_rigl_and_meets_the_target_exactly(sparsity):
    shapes = {
        "stem": [(3, 3, 3, 16)],
        "conv": [(3, 3, 16, 32)],
        "pointwise": [(1, 1, 32, 64)],
        "fc": [(64, 10)],
        "bias_like": [(2, 2)],
    }
    got = distributions.erk_sparsities(shapes, sparsity)
    expected = ref_erk_densities({k: v[0] for k, v in shapes.items()}, sparsity)
    sizes = {k: np.prod(v[0]) for k, v in shapes.items()}
    for name in shapes:
        assert abs((1 - got[name]) - expected[name]) * sizes[name] <= 1.0, name
    kept = sum(round(sizes[k] * (1 - got[k])) for k in shapes)
    assert kept == masks.keep_count(sum(sizes.values()), sparsity)
    for name in shapes:  # a density that would exceed 1 is kept dense
        assert (got[name] == 0.0) == (expected[name] == 1.0)
    assert (got["bias_like"] == 0.0) == (sparsity < 0.99)


def test_erk_on_mobilenet_meets_the_global_target(mobilenet):
    sparse = sos.sparsify(mobilenet, "magnitude_pruning", schedule=SCHEDULE, distribution="erk")
    for step in range(6):
        sos.update_masks(sparse, step)
    report = sos.sparsity_report(sparse)
    assert report.nonzeros == masks.keep_count(report.weights, 0.9)
    wrappers = dict(_wrappers(sparse))
    shapes = {name: tuple(w.kernel.shape) for name, w in wrappers.items()}
    expected = ref_erk_densities(shapes, 0.9)
    for row in report.layers:
        assert row.extra["distribution"] == "erk"
        assert row.extra["target"] == pytest.approx(row.sparsity, abs=1e-12)
        assert abs((1 - row.sparsity) - expected[row.name]) * row.weights <= 1.0
    dense = [row.name for row in report.layers if row.sparsity == 0.0]
    assert dense == [name for name, density in expected.items() if density == 1.0]
    assert "block_16_depthwise" in dense and "predictions" not in dense
    big = max(report.layers, key=lambda row: row.weights)
    assert big.sparsity > 0.9  # large layers are pruned more than the target


def test_erk_overrides_are_fixed_and_counted_in_the_budget(mobilenet):
    sparse = sos.sparsify(
        mobilenet,
        "magnitude_pruning",
        schedule=SCHEDULE,
        distribution="erk",
        overrides={"Conv_1": 0.5, "Conv1": 0.0},
    )
    sos.update_masks(sparse, 4)
    report = sos.sparsity_report(sparse)
    assert report["Conv_1"].sparsity == 0.5
    assert "Conv1" not in [row.name for row in report.layers]
    assert report.nonzeros == masks.keep_count(report.weights, 0.9)


@pytest.mark.parametrize("technique", ["magnitude_pruning", "random_pruning"])
def test_global_is_one_threshold_over_all_tensors(mobilenet, technique):
    sparse = sos.sparsify(mobilenet, technique, schedule=SCHEDULE, distribution="global", seed=1)
    wrappers = [w for _, w in _wrappers(sparse)]
    previous = None
    for step in range(6):
        sos.update_masks(sparse, step)
        if not step or step % 2:
            continue
        kept = np.concatenate([np_(w.mask).ravel() for w in wrappers])
        s = SCHEDULE.sparsity(step)
        assert kept.sum() == masks.keep_count(kept.size, s)
        if technique == "magnitude_pruning":  # the pooled top-k of |w|
            scores = np.concatenate([np.abs(np_(w.kernel)).ravel() for w in wrappers])
            assert scores[kept == 1].min() >= scores[kept == 0].max()
        else:  # random: cumulative
            assert previous is None or np.all(kept <= previous)
        previous = kept
    if technique == "magnitude_pruning":  # per-layer outcomes differ (He-init scales differ)
        sparsities = [1 - np_(w.mask).mean() for w in wrappers]
        assert max(sparsities) - min(sparsities) > 0.2


def test_global_blocks_pool_block_norms():
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dense(4, name="small")]
    )
    model.layers[1].set_weights([w * 10 for w in model.layers[1].get_weights()])
    schedule = sos.ConstantSparsity(0.5, begin_step=0, frequency=1)
    sparse = sos.sparsify(
        model, "magnitude_pruning", schedule=schedule, distribution="global", pattern="2x4"
    )
    sos.update_masks(sparse, 1)
    report = sos.sparsity_report(sparse)
    assert report.global_sparsity == 0.5
    assert report["small"].sparsity == 0.0  # its blocks are ten times larger


def test_callback_updates_global_wrappers_together(tmp_path):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dense(4)])
    schedule = sos.PolynomialDecay(0.0, 0.75, begin_step=0, end_step=4, frequency=2)
    sparse = sos.sparsify(model, "magnitude_pruning", schedule=schedule, distribution="global")
    sparse.compile(keras.optimizers.SGD(learning_rate=0.0), "mse")  # kernels stay put
    x, y = np.ones((8, 8), "float32"), np.zeros((8, 4), "float32")
    sparse.fit(x, y, batch_size=1, epochs=1, verbose=0, callbacks=[sos.SparsityCallback()])
    wrappers = [w for _, w in _wrappers(sparse)]
    assert [int(np_(w.last_update)) for w in wrappers] == [4, 4]
    kept = np.concatenate([np_(w.mask).ravel() for w in wrappers])
    scores = np.concatenate([np.abs(np_(w.kernel)).ravel() for w in wrappers])
    assert kept.sum() == masks.keep_count(kept.size, 0.75)
    assert scores[kept == 1].min() >= scores[kept == 0].max()
    path = str(tmp_path / "g.keras")
    sparse.save(path)
    again = keras.models.load_model(path)
    assert {w.distribution for _, w in _wrappers(again)} == {"global"}
    assert sos.sparsity_report(again).global_sparsity == sos.sparsity_report(sparse).global_sparsity


def test_distribution_errors_are_clear(mobilenet):
    with pytest.raises(ValueError, match="`distribution` must be one of"):
        sos.sparsify(mobilenet, "magnitude_pruning", schedule=SCHEDULE, distribution="erdos")
    with pytest.raises(ValueError, match="only keep layers dense"):
        sos.sparsify(
            mobilenet,
            "magnitude_pruning",
            schedule=SCHEDULE,
            distribution="global",
            overrides={"predictions": 0.5},
        )
    with pytest.raises(ValueError, match="magnitude_pruning and random_pruning"):
        sos.sparsify(mobilenet, "l0_regularization", distribution="erk")
