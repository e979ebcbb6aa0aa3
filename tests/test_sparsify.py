"""sparsify / strip over Sequential, Functional, nested models and MultiHeadAttention."""

import keras
import numpy as np
import pytest
from keras import ops

import state_of_sparsity as sos
from state_of_sparsity import traversal
from state_of_sparsity.layers.attention import PROJECTIONS
from state_of_sparsity.ops import masks

SCHEDULE = sos.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=4, frequency=2)


def np_(x):
    return ops.convert_to_numpy(x)


def cnn():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Conv2D(6, 3, name="conv2")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(5, name="predictions")(x), name="cnn")


def attention_model():
    inputs = keras.Input((6, 8))
    x = keras.layers.MultiHeadAttention(2, 4, name="mha")(inputs, inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


def nested_model():
    block = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(8, name="inner_a"),
            keras.layers.Dense(8, name="inner_b"),
        ],
        name="block",
    )
    inputs = keras.Input((8,))
    x = block(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(x))


def paths(model):
    return [p for p, _ in traversal.wrappers(model)]


def step_all(model, steps=5):
    for t in range(steps):
        sos.update_masks(model, t)


@pytest.mark.parametrize(
    "build, expected",
    [
        (cnn, ["conv1", "conv2", "predictions"]),
        (attention_model, ["mha/query", "mha/key", "mha/value", "mha/attention_output", "head"]),
        (nested_model, ["block/inner_a", "block/inner_b", "out"]),
    ],
)
@pytest.mark.parametrize("technique", ["magnitude_pruning", "random_pruning"])
def test_sparsify_wraps_every_supported_layer_and_keeps_outputs(build, expected, technique):
    model = build()
    x = np.random.default_rng(0).standard_normal((2, *model.input_shape[1:])).astype("float32")
    before = np_(model(x))
    weights = [np_(w) for w in model.weights]
    sparse = sos.sparsify(model, technique, schedule=SCHEDULE)
    assert paths(sparse) == expected
    np.testing.assert_allclose(np_(sparse(x)), before, atol=1e-5)  # all masks are ones
    step_all(sparse)
    for _, wrapper in traversal.wrappers(sparse):
        n = int(np.prod(wrapper.kernel.shape))
        assert np_(wrapper.mask).sum() == masks.keep_count(n, 0.5)
    # The input model is untouched.
    assert not traversal.wrappers(model)
    for w, value in zip(model.weights, weights, strict=True):
        np.testing.assert_array_equal(np_(w), value)
    np.testing.assert_allclose(np_(model(x)), before, atol=1e-6)


def test_sequential_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    sparse = sos.sparsify(model, "magnitude_pruning", schedule=SCHEDULE)
    assert isinstance(sparse, keras.Sequential)
    assert [type(layer).__name__ for layer in sparse.layers] == ["MagnitudePruning"] * 2


def test_dense_stem_and_80_percent_head_together():
    schedule = sos.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=4, frequency=2)
    sparse = sos.sparsify(
        cnn(), "magnitude_pruning", schedule=schedule, overrides={"conv1": 0.0, "predictions": 0.8}
    )
    assert paths(sparse) == ["conv2", "predictions"]
    assert type(sparse.get_layer("conv1")) is keras.layers.Conv2D
    step_all(sparse)
    report = sos.sparsity_report(sparse)
    head = sparse.get_layer("predictions")
    assert head.schedule.final_sparsity == 0.8
    n = int(np.prod(head.kernel.shape))
    assert report["predictions"].nonzeros == masks.keep_count(n, 0.8)
    assert report["conv2"].sparsity == pytest.approx(0.5, abs=0.01)
    dense = {layer.name: layer.reason for layer in report.dense}
    assert dense["conv1"].startswith("left dense by sparsify")


def test_override_patterns_and_attention_names():
    sparse = sos.sparsify(
        attention_model(),
        "magnitude_pruning",
        schedule=SCHEDULE,
        overrides={"mha/value": 0.2, "head": None},
        exclude=["*key"],
    )
    assert paths(sparse) == ["mha/query", "mha/value", "mha/attention_output"]
    mha = sparse.get_layer("mha")
    assert isinstance(mha, sos.layers.SparseMultiHeadAttention)
    assert mha.projection("value").schedule.final_sparsity == pytest.approx(0.2)
    assert mha.projection("query").schedule == SCHEDULE
    excluded = sos.sparsify(
        attention_model(), "magnitude_pruning", schedule=SCHEDULE, exclude="mha"
    )
    assert paths(excluded) == ["head"]
    assert type(excluded.get_layer("mha")) is keras.layers.MultiHeadAttention


def test_shared_layer_is_wrapped_once():
    shared = keras.layers.Dense(4, name="shared")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, shared(shared(inputs)))
    sparse = sos.sparsify(model, "magnitude_pruning", schedule=SCHEDULE)
    assert paths(sparse) == ["shared"]
    x = np.ones((1, 4), "float32")
    np.testing.assert_allclose(np_(sparse(x)), np_(model(x)), atol=1e-6)


def test_random_pruning_seed_makes_masks_reproducible():
    a = sos.sparsify(cnn(), "random_pruning", schedule=SCHEDULE, seed=11)
    b = sos.sparsify(cnn(), "random_pruning", schedule=SCHEDULE, seed=11)
    step_all(a)
    step_all(b)
    seeds = [w.seed for _, w in traversal.wrappers(a)]
    assert len(set(seeds)) == len(seeds)
    for (_, wa), (_, wb) in zip(traversal.wrappers(a), traversal.wrappers(b), strict=True):
        np.testing.assert_array_equal(np_(wa.mask), np_(wb.mask))


def test_strip_gives_plain_layers_with_exact_zeros():
    sparse = sos.sparsify(attention_model(), "magnitude_pruning", schedule=SCHEDULE)
    step_all(sparse)
    plain = sos.strip(sparse)
    assert not traversal.wrappers(plain)
    assert type(plain.get_layer("mha")) is keras.layers.MultiHeadAttention
    x = np.random.default_rng(1).standard_normal((3, 6, 8)).astype("float32")
    np.testing.assert_allclose(np_(plain(x)), np_(sparse(x, training=False)), atol=1e-5)
    for name in ("query", "key", "value", "attention_output"):
        wrapper = sparse.get_layer("mha").projection(name)
        kernel = np_(getattr(plain.get_layer("mha"), PROJECTIONS[name]).kernel)
        np.testing.assert_array_equal(kernel == 0, np_(wrapper.mask) == 0)
    assert sos.sparsity_report(plain).layers == ()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"technique": "pruning"}, "Unknown `technique`"),
        ({"schedule": None}, "schedule"),
        ({"overrides": {"nope": 0.5}}, "matches no sparsifiable layer"),
        ({"exclude": ["nope"]}, "matches no sparsifiable layer"),
        ({"overrides": {"conv1": 1.0}}, r"\[0, 1\)"),
        ({"overrides": {"conv*": 0.1, "conv1": 0.2}}, "several"),
        ({"power": 3}, r"Unknown argument\(s\) \['power'\]"),
    ],
)
def test_sparsify_errors(kwargs, message):
    args = {"technique": "magnitude_pruning", "schedule": SCHEDULE, **kwargs}
    with pytest.raises(ValueError, match=message):
        sos.sparsify(cnn(), **args)


def test_sparsifying_twice_is_an_error():
    once = sos.sparsify(cnn(), "magnitude_pruning", schedule=SCHEDULE)
    with pytest.raises(ValueError, match="already sparsified"):
        sos.sparsify(once, "random_pruning", schedule=SCHEDULE)


def test_subclassed_and_unbuilt_models_are_clear_errors():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.fc = keras.layers.Dense(2)

        def call(self, x):
            return self.fc(x)

    net = Net()
    net(np.ones((1, 3)))
    with pytest.raises(ValueError, match="subclassed.*sos.layers.MagnitudePruning"):
        sos.sparsify(net, "magnitude_pruning", schedule=SCHEDULE)
    with pytest.raises(ValueError, match="built model"):
        sos.sparsify(
            keras.Sequential([keras.layers.Dense(2)]), "magnitude_pruning", schedule=SCHEDULE
        )
