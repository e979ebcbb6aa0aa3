"""SparsityCallback inside model.fit: the paper's timing, on every backend."""

import keras
import numpy as np
import pytest
from keras import ops
from test_masks import ref_topk
from test_schedules import ref_update_steps

import state_of_sparsity as sos
from state_of_sparsity.ops import masks

BATCH = 8


def np_(x):
    return ops.convert_to_numpy(x)


def pruned_mlp(schedule, technique="magnitude_pruning"):
    model = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)]
    )
    model = sos.sparsify(model, technique, schedule=schedule, seed=5)
    model.compile(keras.optimizers.SGD(0.05), "mse")
    return model


def data(steps, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps * BATCH, 10)).astype("float32")
    return x, rng.standard_normal((steps * BATCH, 3)).astype("float32")


def wrappers(model):
    return [w for _, w in sos.traversal.wrappers(model)]


@pytest.mark.parametrize("steps", [3, 4, 9, 10, 14])
def test_updates_follow_the_paper_rule_during_fit(steps):
    schedule = sos.PolynomialDecay(0.0, 0.75, begin_step=0, end_step=10, frequency=3)
    model = pruned_mlp(schedule)
    x, y = data(steps)
    model.fit(x, y, batch_size=BATCH, shuffle=False, callbacks=[sos.SparsityCallback()], verbose=0)
    done = ref_update_steps(0, 10, 3, steps)  # t = 0 .. steps-1
    for wrapper in wrappers(model):
        n = int(np.prod(wrapper.kernel.shape))
        kept = masks.keep_count(n, schedule.sparsity(done[-1])) if done else n
        assert np_(wrapper.mask).sum() == kept
        assert int(np_(wrapper.last_update)) == (done[-1] if done else 0)


def test_mask_is_computed_from_the_weights_after_the_step():
    """An update after the last step (t = steps - 1) ranks the final kernel values."""
    schedule = sos.PolynomialDecay(0.0, 0.75, begin_step=0, end_step=10, frequency=3)
    model = pruned_mlp(schedule)
    x, y = data(10)
    model.fit(x, y, batch_size=BATCH, shuffle=False, callbacks=[sos.SparsityCallback()], verbose=0)
    for wrapper in wrappers(model):
        mask = np_(wrapper.mask)
        assert int(np_(wrapper.last_update)) == 9
        np.testing.assert_array_equal(mask, ref_topk(np.abs(np_(wrapper.kernel)), int(mask.sum())))


def test_steps_continue_across_fit_calls_and_epochs():
    schedule = sos.PolynomialDecay(0.0, 0.75, begin_step=0, end_step=20, frequency=4)
    model = pruned_mlp(schedule)
    x, y = data(5)
    callback = sos.SparsityCallback()
    model.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, callbacks=[callback], verbose=0)
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, callbacks=[callback], verbose=0)
    assert int(np_(model.optimizer.iterations)) == 15
    done = ref_update_steps(0, 20, 4, 15)
    for wrapper in wrappers(model):
        assert int(np_(wrapper.last_update)) == done[-1] == 12


@pytest.mark.skipif(
    keras.backend.backend() == "torch", reason="Keras' torch trainer runs one step per execution"
)
def test_steps_per_execution_updates_at_block_ends():
    schedule = sos.PolynomialDecay(0.0, 0.75, begin_step=0, end_step=20, frequency=3)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(4)])
    model = sos.sparsify(model, "magnitude_pruning", schedule=schedule)
    model.compile(keras.optimizers.SGD(0.05), "mse", steps_per_execution=2)
    x, y = data(10)
    model.fit(x[:, :10], y[:, :1].repeat(4, 1), batch_size=BATCH, shuffle=False,
              callbacks=[sos.SparsityCallback()], verbose=0)  # fmt: skip
    # The rule is evaluated at the last step of each 2-step block: t = 1, 3, 5, 7, 9.
    last = 0
    for t in (1, 3, 5, 7, 9):
        if schedule.should_update(t, last):
            last = t
    assert int(np_(wrappers(model)[0].last_update)) == last == 7


def test_random_pruning_through_fit_is_cumulative():
    schedule = sos.PolynomialDecay(0.0, 0.9, begin_step=0, end_step=12, frequency=2)
    model = pruned_mlp(schedule, "random_pruning")
    x, y = data(6)
    callback = sos.SparsityCallback()
    model.fit(x, y, batch_size=BATCH, shuffle=False, callbacks=[callback], verbose=0)
    first = [np_(w.mask) for w in wrappers(model)]
    model.fit(x, y, batch_size=BATCH, shuffle=False, callbacks=[callback], verbose=0)
    for before, wrapper in zip(first, wrappers(model), strict=True):
        after = np_(wrapper.mask)
        assert np.all(after <= before)
        assert after.sum() < before.sum()


def test_update_masks_for_custom_loops():
    schedule = sos.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=4, frequency=2)
    model = pruned_mlp(schedule)
    assert sos.update_masks(model, 1) == []
    assert sos.update_masks(model, 2) == ["dense", "dense_1"]
    assert sos.update_masks(model, 3) == []
    assert sos.update_masks(model, 4) == ["dense", "dense_1"]
    for wrapper in wrappers(model):
        n = int(np.prod(wrapper.kernel.shape))
        assert np_(wrapper.mask).sum() == masks.keep_count(n, 0.5)


def test_callback_needs_a_compiled_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model = sos.sparsify(model, "magnitude_pruning", schedule=sos.ConstantSparsity(0.5, 0))
    callback = sos.SparsityCallback()
    callback.set_model(model)
    callback.on_train_begin()
    with pytest.raises(ValueError, match="compiled"):
        callback.on_train_batch_begin(0)


def test_callback_warns_when_there_is_nothing_to_prune():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    with pytest.warns(UserWarning, match="no sparsity wrappers"):
        model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0, callbacks=[sos.SparsityCallback()])
