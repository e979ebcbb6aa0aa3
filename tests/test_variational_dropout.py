"""Variational dropout: formulas against NumPy (spec §1), the wrapper, the penalty and its ramp."""

import keras
import numpy as np
import pytest
from helpers import LAYER_CASES, built, gradients, make_input, reference_output
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import ops

import state_of_sparsity as sos
from state_of_sparsity.ops import variational as vd

EPS = 1e-8


def np_(x):
    return ops.convert_to_numpy(x)


def ref_log_alpha(log_sigma2, theta, clip=None):
    la = log_sigma2 - np.log(theta.astype(np.float64) ** 2 + EPS)
    return la if clip is None else np.clip(la, -clip, clip)


def ref_kl(la):
    """Molchanov et al. eq. 14, as the paper's negative_dkl returns it (positive, to add)."""
    k1, k2, k3 = 0.63576, 1.8732, 1.48695
    neg_kl = k1 / (1 + np.exp(-(k2 + k3 * la))) - 0.5 * np.log1p(np.exp(-la)) - k1
    return -neg_kl


finite = st.floats(-20, 20, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(log_sigma2=finite, theta=st.floats(-3, 3), clip=st.sampled_from([None, 8.0, 1.5]))
def test_log_alpha_matches_reference_and_round_trips(log_sigma2, theta, clip):
    ls2, th = np.float32(log_sigma2), np.float32(theta)
    got = float(np_(vd.log_alpha(ls2, th, clip)))
    assert got == pytest.approx(ref_log_alpha(ls2, th, clip), abs=2e-5)
    if clip is None:
        back = float(np_(vd.log_sigma2_from_log_alpha(np.float32(got), th)))
        assert back == pytest.approx(float(ls2), abs=1e-4)
    else:
        assert -clip <= got <= clip


def test_kl_matches_reference_at_many_points():
    la = np.linspace(-12, 12, 2001).astype("float32")
    np.testing.assert_allclose(
        np_(vd.kl_approximation(la)), ref_kl(la.astype(np.float64)), rtol=1e-5, atol=1e-6
    )
    # The KL is positive, decreasing in log α (strictly where float32 resolves it), and
    # vanishes for large log α.
    ours = np_(vd.kl_approximation(la))
    assert np.all(np.diff(ours) <= 0) and np.all(np.diff(ours[la < 6]) < 0)
    assert np.all(ours > 0) and ours[-1] < 1e-3


def test_kl_divergence_clips_at_8_and_sums(rng):
    theta = rng.standard_normal((256, 128)).astype("float32")
    log_sigma2 = rng.standard_normal((256, 128)).astype("float32") * 6
    expected = ref_kl(ref_log_alpha(log_sigma2, theta, clip=8.0)).sum()
    assert float(np_(vd.kl_divergence(log_sigma2, theta))) == pytest.approx(expected, rel=1e-4)


def test_threshold_mask_uses_unclipped_log_alpha():
    theta = np.array([1.0, 1.0, 1.0], "float32")
    log_sigma2 = np.array([2.0, 9.0, 12.0], "float32")  # log α = 2, 9, 12
    np.testing.assert_array_equal(np_(vd.threshold_mask(log_sigma2, theta, 10.0)), [1, 1, 0])


def vd_wrapper(case, **kwargs):
    factory, shape, integer = LAYER_CASES[case]
    wrapper = sos.layers.VariationalDropout(factory(), seed=1, **kwargs)
    return wrapper, built(wrapper, shape, integer)


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_zero_variance_training_equals_inner_layer(case):
    wrapper, x = vd_wrapper(case, log_sigma2_init=-60.0, clip_log_alpha=None)
    expected = np_(wrapper.layer(x))
    np.testing.assert_allclose(np_(wrapper(x, training=True)), expected, atol=2e-3)


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_training_is_stochastic_and_eval_is_masked_and_deterministic(case, rng):
    wrapper, x = vd_wrapper(case, log_sigma2_init=0.0)
    assert not np.allclose(np_(wrapper(x, training=True)), np_(wrapper(x, training=True)))
    # Half the weights get a large log α: those must be dropped at eval.
    theta = np_(wrapper.kernel)
    log_sigma2 = np.where(rng.random(theta.shape) < 0.5, 10.0, -10.0).astype("float32")
    wrapper.log_sigma2.assign(log_sigma2)
    mask = (ref_log_alpha(log_sigma2, theta) < 3.0).astype("float32")
    expected = reference_output(wrapper.layer, theta * mask, x)
    first = np_(wrapper(x, training=False))
    np.testing.assert_allclose(first, expected, atol=1e-5)
    np.testing.assert_array_equal(np_(wrapper(x, training=False)), first)
    np.testing.assert_array_equal(np_(wrapper.eval_kernel()), theta * mask)


def test_monte_carlo_mean_and_variance_of_a_dense_output(rng):
    layer = keras.layers.Dense(3)
    wrapper = sos.layers.VariationalDropout(layer, log_sigma2_init=-2.0, seed=2)
    x = rng.standard_normal((1, 5)).astype("float32")
    wrapper(x)
    theta, bias = np_(wrapper.kernel), np_(layer.bias)
    log_sigma2 = rng.uniform(-3, 0, theta.shape).astype("float32")
    wrapper.log_sigma2.assign(log_sigma2)
    # One batch of 4,000 copies of x: every output element draws its own noise (exact LRT).
    draws = np_(wrapper(np.repeat(x, 4000, axis=0), training=True))
    mean, var = x @ theta + bias, (x**2) @ np.exp(log_sigma2) + EPS
    n = len(draws)
    assert np.all(np.abs(draws.mean(0) - mean[0]) < 5 * np.sqrt(var[0] / n))
    # The sample variance of a normal has standard error var * sqrt(2 / (n - 1)).
    assert np.all(np.abs(draws.var(0, ddof=1) - var[0]) < 5 * var[0] * np.sqrt(2 / (n - 1)))


def test_training_clip_caps_the_variance(rng):
    """log σ² = 40 with clip 1: the forward pass uses σ² = e·(θ² + ε) (the inverse map)."""
    wrapper = sos.layers.VariationalDropout(
        keras.layers.Dense(3), log_sigma2_init=40.0, clip_log_alpha=1.0, seed=4
    )
    x = rng.standard_normal((1, 5)).astype("float32")
    wrapper(x)
    theta = np_(wrapper.kernel)
    var = (x**2) @ (np.e * (theta.astype(np.float64) ** 2 + EPS)) + EPS
    draws = np_(wrapper(np.repeat(x, 3000, axis=0), training=True))
    n = len(draws)
    assert np.all(np.abs(draws.var(0, ddof=1) - var[0]) < 5 * var[0] * np.sqrt(2 / (n - 1)))


def test_penalty_gradient_reaches_log_sigma2_and_theta():
    wrapper, _ = vd_wrapper("dense")
    grads = gradients(wrapper.penalty, [wrapper.kernel, wrapper.log_sigma2])
    assert all(np.any(g != 0) and np.all(np.isfinite(g)) for g in grads)
    # Outside ±8 the clip stops the KL gradient.
    wrapper.log_sigma2.assign(np.full(wrapper.log_sigma2.shape, 30.0))
    g_theta, g_ls2 = gradients(wrapper.penalty, [wrapper.kernel, wrapper.log_sigma2])
    assert np.all(g_ls2 == 0) and np.all(g_theta == 0)


def test_weighted_penalty_is_added_once_per_training_call():
    ramp = sos.Ramp(0.5, begin_step=0, end_step=4, shape="linear")
    wrapper, x = vd_wrapper("dense", regularizer_weight=ramp)
    for t in range(6):
        penalty = float(np_(wrapper.penalty()))
        wrapper(x, training=True)
        assert int(np_(wrapper.step)) == t + 1
        assert len(wrapper.losses) == 1
        assert float(np_(wrapper.losses[0])) == pytest.approx(
            0.5 * min(t / 4, 1) * penalty, rel=1e-5
        )
    wrapper(x, training=False)
    assert int(np_(wrapper.step)) == 6 and not wrapper.losses


@pytest.mark.parametrize("shape", ["linear", "cubic"])
def test_ramp_follows_its_schedule_through_fit(shape):
    from test_schedules import ref_ramp

    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(8)(inputs)))
    model = sos.sparsify(model, "variational_dropout", seed=0)
    model.compile("sgd", "mse")
    ramp = sos.Ramp(1e-3, begin_step=2, end_step=7, shape=shape)
    x, y = make_input((6,), False, batch=40), np.zeros((40, 2))
    callback = sos.SparsityCallback(regularizer_weight=ramp)
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, callbacks=[callback], verbose=0)
    expected = ref_ramp(1e-3, 2, 7, shape, 0.9, range(10))
    for _, wrapper in sos.traversal.wrappers(model):
        assert int(np_(wrapper.step)) == 10
        assert float(np_(wrapper.regularizer_value)) == pytest.approx(expected[-1], rel=1e-5)


def test_penalty_pushes_irrelevant_weights_to_be_pruned():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 20)).astype("float32")
    y = (x[:, 0] - x[:, 1] > 0).astype("float32")[:, None]  # only 2 of 20 inputs matter
    inputs = keras.Input((20,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model = sos.sparsify(model, "variational_dropout", seed=0)
    model.compile(keras.optimizers.Adam(0.02), keras.losses.BinaryCrossentropy(from_logits=True))
    callback = sos.SparsityCallback(regularizer_weight=sos.Ramp(1.0 / len(x)))
    model.fit(x, y, batch_size=64, epochs=40, callbacks=[callback], verbose=0)
    log_alpha = np_(model.layers[-1].log_alpha())[:, 0]
    assert log_alpha[2:].min() > log_alpha[:2].max() + 5
    assert np.mean(log_alpha[2:] >= 0.0) >= 2 / 3
    kept = np_(model.layers[-1].eval_kernel())[:, 0] != 0
    assert kept[:2].all()


@pytest.mark.saved_model
@pytest.mark.parametrize("threshold", [0.5, 3.0])
def test_round_trips_at_two_thresholds(threshold, tmp_path):
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(hidden))
    model = sos.sparsify(model, "variational_dropout", seed=3)
    rng = np.random.default_rng(5)
    for _, wrapper in sos.traversal.wrappers(model):
        wrapper.log_sigma2.assign(rng.uniform(-8, 6, wrapper.log_sigma2.shape))
    x = make_input((6,), False)
    path = str(tmp_path / "vd.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(np_(loaded(x)), np_(model(x)))
    report = sos.sparsity_report(model, threshold=threshold)
    plain = sos.strip(model, threshold=threshold)
    hidden_kernel = np_(plain.get_layer("hidden").kernel)
    assert report["hidden"].nonzeros == np.count_nonzero(hidden_kernel)
    theta, ls2 = np_(model.get_layer("hidden").kernel), np_(model.get_layer("hidden").log_sigma2)
    np.testing.assert_array_equal(hidden_kernel, theta * (ref_log_alpha(ls2, theta) < threshold))
    before = model.predict(x, verbose=0)  # compiles the predict function at threshold 3
    assert sos.set_threshold(model, threshold) == 2
    np.testing.assert_allclose(model.predict(x, verbose=0), np_(plain(x)), atol=1e-5)
    if threshold == 3.0:
        np.testing.assert_array_equal(before, model.predict(x, verbose=0))
    exported = sos.export_saved_model(model, tmp_path / "sm", threshold=threshold, sample_input=x)
    assert exported


def test_thresholds_change_the_report_without_retraining():
    wrapper, _ = vd_wrapper("dense")
    wrapper.log_sigma2.assign(np.random.default_rng(0).uniform(-6, 6, wrapper.log_sigma2.shape))
    sparsities = [
        sos.sparsity_report(wrapper, threshold=t).global_sparsity for t in np.arange(0, 5.5, 0.5)
    ]
    assert all(a >= b for a, b in zip(sparsities, sparsities[1:], strict=False))
    assert sparsities[0] > sparsities[-1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": float("nan")}, "threshold"),
        ({"threshold": float("inf")}, "threshold"),
        ({"clip_log_alpha": 0.0}, "clip_log_alpha"),
        ({"clip_log_alpha": -1.0}, "clip_log_alpha"),
        ({"clip_log_alpha": float("inf")}, "clip_log_alpha"),
        ({"log_sigma2_init": float("nan")}, "log_sigma2_init"),
        ({"regularizer_weight": 0.1}, "regularizer_weight"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sos.layers.VariationalDropout(keras.layers.Dense(2), **kwargs)


def test_unsupported_layer_and_bad_eval_threshold():
    with pytest.raises(ValueError, match="cannot be sparsified"):
        sos.layers.VariationalDropout(keras.layers.LayerNormalization())
    wrapper, _ = vd_wrapper("dense")
    with pytest.raises(ValueError, match="threshold"):
        sos.sparsity_report(wrapper, threshold=float("nan"))
    with pytest.raises(ValueError, match="threshold"):
        wrapper.set_threshold(float("inf"))
    with pytest.raises(ValueError, match="Unknown eval option"):
        sos.strip(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]), tau=1.0)


def test_sequence_noise_is_shared_across_positions_not_examples(rng):
    """The paper's Transformer noise (broadcast_matmul_train, spec §1.4): one ε per example."""
    row = rng.standard_normal((1, 1, 5)).astype("float32")
    x = np.tile(row, (2, 4, 1))  # every position of both examples holds the same vector
    outputs = {}
    for noise in ("sequence", "element"):
        wrapper = sos.layers.VariationalDropout(
            keras.layers.Dense(3), log_sigma2_init=0.0, noise=noise, seed=3
        )
        outputs[noise] = np_(wrapper(x, training=True))
        assert wrapper.get_config()["noise"] == noise
    shared = outputs["sequence"]
    np.testing.assert_allclose(shared, np.repeat(shared[:, :1], 4, axis=1), atol=1e-6)
    assert not np.allclose(shared[0, 0], shared[1, 0])  # examples draw their own noise
    per_element = outputs["element"]
    assert not np.allclose(per_element[:, 0], per_element[:, 1])
    with pytest.raises(ValueError, match="`noise` must be one of"):
        sos.layers.VariationalDropout(keras.layers.Dense(3), noise="token")
