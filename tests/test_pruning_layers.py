"""MagnitudePruning / RandomPruning over every registry layer type."""

import keras
import numpy as np
import pytest
from helpers import LAYER_CASES, built, make_input, reference_output
from keras import ops
from test_masks import ref_topk
from test_schedules import ref_update_steps

import state_of_sparsity as sos
from state_of_sparsity.ops import masks

WRAPPERS = {
    "magnitude_pruning": sos.layers.MagnitudePruning,
    "random_pruning": sos.layers.RandomPruning,
}
SCHEDULE = sos.PolynomialDecay(0.0, 0.8, begin_step=2, end_step=20, frequency=4)


def np_(x):
    return ops.convert_to_numpy(x)


def wrap(technique, case, schedule=SCHEDULE):
    factory, shape, integer = LAYER_CASES[case]
    kwargs = {"seed": 3} if technique == "random_pruning" else {}
    wrapper = WRAPPERS[technique](factory(), schedule=schedule, **kwargs)
    x = built(wrapper, shape, integer)
    return wrapper, x


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
@pytest.mark.parametrize("technique", sorted(WRAPPERS))
def test_forward_is_inner_layer_with_masked_kernel(technique, case, rng):
    wrapper, x = wrap(technique, case)
    kernel = np_(wrapper.kernel)
    mask = (rng.random(kernel.shape) < 0.5).astype("float32")
    wrapper.mask.assign(mask)
    expected = reference_output(wrapper.layer, kernel * mask, x)
    for training in (True, False):
        np.testing.assert_allclose(np_(wrapper(x, training=training)), expected, atol=1e-5)
    np.testing.assert_array_equal(np_(wrapper.eval_kernel()), kernel * mask)
    assert wrapper.name == wrapper.layer.name


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
@pytest.mark.parametrize("technique", sorted(WRAPPERS))
def test_reaches_scheduled_sparsity_at_scheduled_steps(technique, case):
    wrapper, _ = wrap(technique, case)
    n = int(np.prod(wrapper.kernel.shape))
    updates = ref_update_steps(2, 20, 4, 30)
    previous = np_(wrapper.mask)
    for t in range(30):
        if wrapper.due(t):
            wrapper.update_mask(t)
        mask = np_(wrapper.mask)
        done = [u for u in updates if u <= t]
        expected_kept = masks.keep_count(n, SCHEDULE.sparsity(done[-1])) if done else n
        assert mask.sum() == expected_kept, (t, done)
        assert int(np_(wrapper.last_update)) == (done[-1] if done else 0)
        if technique == "random_pruning":
            assert np.all(mask <= previous)  # cumulative: a zero stays zero
        else:
            np.testing.assert_array_equal(
                mask, ref_topk(np.abs(np_(wrapper.kernel)), int(mask.sum()))
            )
        previous = mask
    assert 1 - previous.sum() / n == pytest.approx(0.8, abs=1.0 / n)


@pytest.mark.parametrize("technique", sorted(WRAPPERS))
def test_target_zero_is_a_no_op(technique):
    schedule = sos.ConstantSparsity(0.0, begin_step=0, frequency=1)
    wrapper, x = wrap(technique, "conv2d", schedule)
    before = np_(wrapper(x))
    for t in range(5):
        if wrapper.due(t):
            wrapper.update_mask(t)
    assert int(np_(wrapper.last_update)) == 4
    assert np_(wrapper.mask).min() == 1.0
    np.testing.assert_array_equal(np_(wrapper(x)), before)
    np.testing.assert_allclose(before, np_(wrapper.layer(x)), atol=1e-6)


def test_magnitude_pruning_lets_a_pruned_weight_return():
    schedule = sos.ConstantSparsity(0.5, begin_step=0, frequency=1)
    wrapper, _ = wrap("magnitude_pruning", "dense", schedule)
    wrapper.update_mask(1)
    mask = np_(wrapper.mask)
    pruned = tuple(np.argwhere(mask == 0)[0])
    kernel = np_(wrapper.kernel)
    kernel[pruned] = 10.0 * np.abs(kernel).max()
    wrapper.kernel.assign(kernel)
    wrapper.update_mask(2)
    assert np_(wrapper.mask)[pruned] == 1.0
    assert np_(wrapper.mask).sum() == mask.sum()


def test_random_pruning_never_revives_and_depends_only_on_seed_and_step():
    schedule = sos.ConstantSparsity(0.5, begin_step=0, frequency=1)
    a, _ = wrap("random_pruning", "dense", schedule)
    b, _ = wrap("random_pruning", "dense", schedule)  # same seed, different kernel values
    a.update_mask(3)
    b.update_mask(3)
    np.testing.assert_array_equal(np_(a.mask), np_(b.mask))
    first = np_(a.mask)
    a.kernel.assign(np.ones(a.kernel.shape))  # magnitudes play no role
    a.update_mask(4)
    np.testing.assert_array_equal(np_(a.mask), first)  # same target: nothing changes


@pytest.mark.parametrize("technique", sorted(WRAPPERS))
def test_pruned_weights_get_no_gradient_and_keep_their_values(technique):
    schedule = sos.ConstantSparsity(0.6, begin_step=0, frequency=1)
    wrapper = WRAPPERS[technique](keras.layers.Dense(4), schedule=schedule)
    model = keras.Sequential([keras.Input((6,)), wrapper])
    wrapper.update_mask(1)
    mask = np_(wrapper.mask)
    before = np_(wrapper.kernel)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x = make_input((6,), False, batch=16)
    model.fit(x, np.ones((16, 4)), epochs=3, verbose=0)
    after = np_(wrapper.kernel)
    np.testing.assert_array_equal(after[mask == 0], before[mask == 0])
    assert np.all(after[mask == 1] != before[mask == 1])


def test_embedding_keeps_mask_zero():
    wrapper = sos.layers.MagnitudePruning(
        keras.layers.Embedding(10, 4, mask_zero=True), schedule=SCHEDULE
    )
    ids = np.array([[1, 2, 0, 0]])
    wrapper(ids)
    np.testing.assert_array_equal(np_(wrapper.compute_mask(ids)), [[True, True, False, False]])


def test_mixed_precision_forward_matches_float32():
    wrapper, x = wrap("magnitude_pruning", "dense")
    wrapper.update_mask(6)
    expected = np_(wrapper(x))
    half = sos.layers.MagnitudePruning(
        keras.layers.Dense(12, activation="relu", dtype="mixed_bfloat16"), schedule=SCHEDULE
    )
    half(x)
    for target, source in zip(half.weights, wrapper.weights, strict=True):
        target.assign(source)
    out = half(x)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    np.testing.assert_allclose(np_(ops.cast(out, "float32")), expected, rtol=0.05, atol=0.05)


class _OwnCall(keras.layers.Dense):
    def call(self, inputs):
        return super().call(inputs) * 2.0


@pytest.mark.parametrize(
    "layer, reason",
    [
        (keras.layers.BatchNormalization(), "unsupported layer type BatchNormalization"),
        (_OwnCall(3), "_OwnCall subclasses Dense with its own call"),
        (
            keras.layers.RNN(keras.layers.StackedRNNCells([keras.layers.LSTMCell(2)])),
            "RNN over a StackedRNNCells",
        ),
    ],
    ids=lambda value: type(value).__name__,
)
def test_unsupported_layer_is_a_clear_error(layer, reason):
    with pytest.raises(ValueError, match=rf"cannot be sparsified: {reason}.*Supported layer types"):
        sos.layers.MagnitudePruning(layer, schedule=SCHEDULE)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="schedule"):
        sos.layers.MagnitudePruning(keras.layers.Dense(2), schedule=0.5)
    with pytest.raises(ValueError, match="seed"):
        sos.layers.RandomPruning(keras.layers.Dense(2), schedule=SCHEDULE, seed=-1)
    with pytest.raises(ValueError, match="already wrapped"):
        sos.layers.MagnitudePruning(
            sos.layers.MagnitudePruning(keras.layers.Dense(2), schedule=SCHEDULE),
            schedule=SCHEDULE,
        )
    lora = keras.layers.Dense(3)
    lora.build((None, 4))
    lora.enable_lora(2)
    with pytest.raises(ValueError, match="LoRA"):
        sos.layers.MagnitudePruning(lora, schedule=SCHEDULE)


def test_subclass_that_keeps_its_call_is_its_parent():
    class Plain(keras.layers.Dense):
        pass

    wrapper = sos.layers.MagnitudePruning(Plain(3), schedule=SCHEDULE)
    x = make_input((4,), False)
    np.testing.assert_allclose(np_(wrapper(x)), np_(wrapper.layer(x)), atol=1e-6)


def test_register_layer_extends_the_registry():
    class Scaled(keras.layers.Dense):
        def call(self, inputs):
            return super().call(inputs) * 2.0

    with pytest.raises(ValueError, match="register it"):
        sos.layers.MagnitudePruning(Scaled(3), schedule=SCHEDULE)
    registry = sos.layers.registry
    spec = registry.spec_for(keras.layers.Dense(3))

    def finish(layer, y):
        return spec.finish(layer, y) * 2.0

    registry.register_layer(Scaled, kernel="kernel", linear=spec.linear, finish=finish)
    try:
        wrapper = sos.layers.MagnitudePruning(Scaled(3), schedule=SCHEDULE)
        np.testing.assert_allclose(np_(wrapper(x := make_input((4,), False))),
                                   np_(wrapper.layer(x)), atol=1e-6)  # fmt: skip
        with pytest.raises(ValueError, match="exactly one of `kernel`"):
            registry.register_layer(Scaled, linear=spec.linear, finish=finish)
        with pytest.raises(ValueError, match="`apply`"):
            registry.register_layer(Scaled, kernels=("kernel", "bias"))
    finally:
        registry._REGISTRY.pop(Scaled)
