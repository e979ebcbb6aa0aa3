"""Layers with several kernels: separable convolutions and recurrent layers (one mask, or one
set of L0 gates, per kernel), checked against Keras' own layer with the kernels replaced."""

import keras
import numpy as np
import pytest
from helpers import MULTI_KERNEL_CASES, attribute, make_input, reference_output
from keras import ops
from test_schedules import ref_update_steps

import state_of_sparsity as sos
from state_of_sparsity.ops import masks

SCHEDULE = sos.PolynomialDecay(0.0, 0.8, begin_step=2, end_step=20, frequency=4)
CASES = sorted(MULTI_KERNEL_CASES)


def np_(x):
    return ops.convert_to_numpy(x)


def wrapped(cls, case, **kwargs):
    factory, shape, paths = MULTI_KERNEL_CASES[case]
    wrapper = cls(factory(), **kwargs)
    x = make_input(shape, False)
    wrapper(x)
    return wrapper, x, paths


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("cls", [sos.layers.MagnitudePruning, sos.layers.RandomPruning])
def test_pruning_masks_every_kernel(cls, case, rng):
    wrapper, x, paths = wrapped(cls, case, schedule=SCHEDULE)
    assert [k.path for k in wrapper.kernels] == [attribute(wrapper.layer, p).path for p in paths]
    masked = {}
    for path, kernel, mask in zip(paths, wrapper.kernels, wrapper.masks, strict=True):
        value = (rng.random(kernel.shape) < 0.5).astype("float32")
        mask.assign(value)
        masked[path] = np_(kernel) * value
    expected = reference_output(wrapper.layer, None, x, kernels=masked)
    for training in (True, False):
        np.testing.assert_allclose(np_(wrapper(x, training=training)), expected, atol=1e-5)
    for got, want in zip(wrapper.eval_kernels(), masked.values(), strict=True):
        np.testing.assert_array_equal(np_(got), want)
    with pytest.raises(ValueError, match="several kernels"):
        wrapper.eval_kernel()


@pytest.mark.parametrize("case", CASES)
def test_each_kernel_reaches_the_scheduled_sparsity(case):
    wrapper, _, _ = wrapped(sos.layers.MagnitudePruning, case, schedule=SCHEDULE)
    updates = ref_update_steps(2, 20, 4, 24)
    for t in range(24):
        if wrapper.due(t):
            wrapper.update_mask(t)
        done = [u for u in updates if u <= t]
        for kernel, mask in zip(wrapper.kernels, wrapper.masks, strict=True):
            n = int(np.prod(kernel.shape))
            kept = masks.keep_count(n, SCHEDULE.sparsity(done[-1])) if done else n
            assert np_(mask).sum() == kept, (t, kernel.path)
            if done:  # magnitude: the kept entries are the largest of that kernel
                magnitude = np.abs(np_(kernel)).ravel()
                assert (
                    magnitude[np_(mask).ravel() == 0].max()
                    <= magnitude[np_(mask).ravel() == 1].min()
                )


def test_random_pruning_draws_each_kernel_separately():
    schedule = sos.ConstantSparsity(0.5, begin_step=1, frequency=1)
    wrapper, _, _ = wrapped(sos.layers.RandomPruning, "separable_conv2d", schedule=schedule, seed=7)
    wrapper.update_mask(1)
    again, _, _ = wrapped(sos.layers.RandomPruning, "separable_conv2d", schedule=schedule, seed=7)
    again.update_mask(1)
    for a, b in zip(wrapper.masks, again.masks, strict=True):
        np.testing.assert_array_equal(np_(a), np_(b))  # a function of (seed, step, kernel)
    pointwise = np_(wrapper.masks[1])
    assert pointwise.sum() == masks.keep_count(pointwise.size, 0.5)


@pytest.mark.parametrize("case", CASES)
def test_l0_gates_every_kernel(case, rng):
    wrapper, x, paths = wrapped(sos.layers.L0Regularization, case, seed=1)
    assert len(wrapper.log_alphas) == len(paths)
    gated = {}
    for path, kernel, log_alpha in zip(paths, wrapper.kernels, wrapper.log_alphas, strict=True):
        value = rng.normal(0, 3, log_alpha.shape).astype("float32")
        log_alpha.assign(value)
        gate = np.clip(1 / (1 + np.exp(-value.astype(np.float64))) * 1.2 - 0.1, 0, 1)
        gated[path] = np_(kernel) * gate.astype("float32")
    expected = reference_output(wrapper.layer, None, x, kernels=gated)
    np.testing.assert_allclose(np_(wrapper(x, training=False)), expected, atol=1e-5)
    assert not np.allclose(np_(wrapper(x, training=True)), np_(wrapper(x, training=True)))
    # The penalty sums the expected L0 norm of every kernel (Louizos et al. 2018, eq. 12).
    beta, gamma, zeta = 2 / 3, -0.1, 1.1
    expected_l0 = sum(
        (1 / (1 + np.exp(-(np_(a).astype(np.float64) - beta * np.log(-gamma / zeta))))).sum()
        for a in wrapper.log_alphas
    )
    assert float(np_(wrapper.penalty())) == pytest.approx(expected_l0, rel=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_variational_dropout_does_not_apply(case):
    factory, _, _ = MULTI_KERNEL_CASES[case]
    with pytest.raises(ValueError, match="does not apply.*local reparameterization"):
        sos.layers.VariationalDropout(factory())


def text_model():
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, 6, mask_zero=True, name="embed")(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True), name="bi")(x)
    x = keras.layers.GRU(3, name="gru")(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(x))


def test_masked_recurrent_model_sparsifies_trains_and_strips():
    """Padding masks reach the wrapped recurrent layers; Bidirectional's two LSTMs are wrapped
    inside it; the report has one row per kernel."""
    model = text_model()
    ids = np.array([[3, 4, 5, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7]], "int32")
    schedule = sos.ConstantSparsity(0.5, begin_step=0, frequency=1)
    sparse = sos.sparsify(model, "magnitude_pruning", schedule=schedule)
    np.testing.assert_allclose(np_(sparse(ids)), np_(model(ids)), atol=1e-6)
    sparse.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    sparse.fit(ids, np.array([0, 1]), epochs=2, verbose=0, callbacks=[sos.SparsityCallback()])
    report = sos.sparsity_report(sparse)
    names = [row.name for row in report.layers]
    assert "gru/kernel" in names and "gru/recurrent_kernel" in names
    assert "bi/forward_lstm/recurrent_kernel" in names and "bi/backward_lstm/kernel" in names
    for row in report.layers:
        assert row.nonzeros == masks.keep_count(row.weights, 0.5), row.name
    cells = [model.get_layer("gru").cell] + [
        getattr(model.get_layer("bi"), side).cell for side in ("forward_layer", "backward_layer")
    ]
    kernels = [model.get_layer("embed").embeddings, model.get_layer("out").kernel]
    kernels += [k for cell in cells for k in (cell.kernel, cell.recurrent_kernel)]
    assert report.weights == sum(int(np.prod(k.shape)) for k in kernels)
    assert report.parameters == model.count_params()
    assert report.coverage == pytest.approx(report.weights / model.count_params())
    plain = sos.strip(sparse)
    assert type(plain.get_layer("bi")) is keras.layers.Bidirectional
    assert type(plain.get_layer("gru")) is keras.layers.GRU
    np.testing.assert_allclose(np_(plain(ids)), np_(sparse(ids, training=False)), atol=1e-6)
    # Padding does not change the output: the mask reaches the wrapped recurrent layers.
    np.testing.assert_allclose(np_(sparse(ids[:1, :3])), np_(sparse(ids[:1])), atol=1e-5)
