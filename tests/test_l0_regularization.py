"""L0 regularization: hard-concrete formulas against NumPy (spec §2), the wrapper and penalty."""

import keras
import numpy as np
import pytest
from helpers import LAYER_CASES, built, gradients, make_input, reference_output
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import ops

import state_of_sparsity as sos
from state_of_sparsity.ops import hard_concrete as hc

BETA, GAMMA, ZETA = 2 / 3, -0.1, 1.1


def np_(x):
    return ops.convert_to_numpy(x)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def ref_gate(log_alpha, u, beta=BETA, gamma=GAMMA, zeta=ZETA):
    s = sigmoid((np.log(u + 1e-8) - np.log(1 - u) + log_alpha) / beta)
    return np.clip(s * (zeta - gamma) + gamma, 0, 1)


def ref_eval_gate(log_alpha, gamma=GAMMA, zeta=ZETA):
    return np.clip(sigmoid(log_alpha) * (zeta - gamma) + gamma, 0, 1)


@settings(max_examples=200, deadline=None)
@given(
    log_alpha=st.floats(-10, 10),
    u=st.floats(0, 0.999999),
    beta=st.floats(0.1, 2),
    gamma=st.floats(-1, -0.01),
    zeta=st.floats(1.01, 2),
)
def test_gate_formulas_match_reference(log_alpha, u, beta, gamma, zeta):
    la, u32 = np.float32(log_alpha), np.float32(u)
    got = float(np_(hc.gates_from_uniform(la, u32, beta, gamma, zeta)))
    assert got == pytest.approx(
        ref_gate(np.float64(la), np.float64(u32), beta, gamma, zeta), abs=1e-5
    )
    assert float(np_(hc.eval_gates(la, gamma, zeta))) == pytest.approx(
        ref_eval_gate(np.float64(la), gamma, zeta), abs=1e-6
    )
    p = sigmoid(np.float64(la) - beta * np.log(-gamma / zeta))
    assert float(np_(hc.prob_nonzero(la, beta, gamma, zeta))) == pytest.approx(p, abs=1e-6)


def test_expected_l0_on_a_normal_matrix(rng):
    log_alpha = rng.standard_normal((256, 128)).astype("float32")
    expected = sigmoid(log_alpha.astype(np.float64) + 1.5985974).sum()  # β log(−γ/ζ) = −1.5986
    assert float(np_(hc.expected_l0(log_alpha))) == pytest.approx(expected, rel=1e-5)


def test_monte_carlo_zero_and_one_fractions():
    log_alpha = np.repeat(np.array([-3.0, -1.0, 0.0, 1.0, 3.0], "float32")[:, None], 20000, 1)
    z = np_(hc.sample_gates(log_alpha, seed=5))
    n = log_alpha.shape[1]
    p_zero = 1 - np_(hc.prob_nonzero(log_alpha[:, 0]))
    # Closed forms, from P(sigmoid((L + log α)/β) ≤ c) with L logistic (independent of hc).
    c0, c1 = -GAMMA / (ZETA - GAMMA), (1 - GAMMA) / (ZETA - GAMMA)
    logit = lambda c: np.log(c / (1 - c))  # noqa: E731
    np.testing.assert_allclose(p_zero, sigmoid(BETA * logit(c0) - log_alpha[:, 0]), atol=1e-6)
    p_one = sigmoid(log_alpha[:, 0].astype(np.float64) - BETA * logit(c1))
    for got, p in ((np.mean(z == 0, 1), p_zero), (np.mean(z == 1, 1), p_one)):
        assert np.all(np.abs(got - p) < 5 * np.sqrt(p * (1 - p) / n) + 1e-3)


def test_eval_zeros_exactly_below_the_closed_form_threshold():
    boundary = np.log(-GAMMA / ZETA)  # sigmoid(la) = −γ/(ζ−γ)  ⇔  la = log(0.1/1.1) = −2.398
    assert boundary == pytest.approx(-2.3979, abs=1e-4)
    la = np.array([boundary - 1e-3, boundary + 1e-3, -10, 2.197, 2.5], "float32")
    gates = np_(hc.eval_gates(la))
    np.testing.assert_array_equal(gates == 0, [True, False, True, False, False])
    assert gates[3] == pytest.approx(0.98, abs=1e-3)  # the initial gate is not 1
    assert gates[4] == 1.0


def l0_wrapper(case, **kwargs):
    factory, shape, integer = LAYER_CASES[case]
    wrapper = sos.layers.L0Regularization(factory(), seed=1, **kwargs)
    return wrapper, built(wrapper, shape, integer)


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_open_gates_reproduce_the_inner_layer(case):
    wrapper, x = l0_wrapper(case, log_alpha_init=1e5, log_alpha_init_stddev=0.0)
    expected = np_(wrapper.layer(x))
    for training in (True, False):
        np.testing.assert_allclose(np_(wrapper(x, training=training)), expected, atol=1e-5)


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_training_is_stochastic_and_eval_is_deterministic(case):
    wrapper, x = l0_wrapper(case, log_alpha_init=0.0)
    assert not np.allclose(np_(wrapper(x, training=True)), np_(wrapper(x, training=True)))
    theta, la = np_(wrapper.kernel), np_(wrapper.log_alpha)
    expected = reference_output(wrapper.layer, theta * ref_eval_gate(la), x)
    first = np_(wrapper(x, training=False))
    np.testing.assert_allclose(first, expected, atol=1e-5)
    np.testing.assert_array_equal(np_(wrapper(x, training=False)), first)


def test_one_gate_sample_per_weight_is_shared_by_the_batch():
    wrapper, _ = l0_wrapper("dense", log_alpha_init=0.0)
    x = np.repeat(make_input((9,), False, batch=1), 6, 0)
    out = np_(wrapper(x, training=True))
    np.testing.assert_array_equal(out, np.repeat(out[:1], 6, 0))


def test_embedding_gates_are_per_occurrence():
    wrapper, _ = l0_wrapper("embedding", log_alpha_init=0.0)
    out = np_(wrapper(np.full((1, 40), 7, "int32"), training=True))
    assert len({tuple(row) for row in out[0]}) > 30


def test_penalty_and_its_gradient(rng):
    wrapper, _ = l0_wrapper("conv2d")
    la = rng.normal(0, 2, wrapper.log_alpha.shape).astype("float32")
    wrapper.log_alpha.assign(la)
    assert float(np_(wrapper.penalty())) == pytest.approx(
        sigmoid(la.astype(np.float64) - BETA * np.log(-GAMMA / ZETA)).sum(), rel=1e-5
    )
    (grad,) = gradients(wrapper.penalty, [wrapper.log_alpha])
    p = sigmoid(la.astype(np.float64) - BETA * np.log(-GAMMA / ZETA))
    np.testing.assert_allclose(grad, p * (1 - p), rtol=1e-4, atol=1e-7)


def test_weighted_penalty_and_optional_weight_decay():
    ramp = sos.Ramp(0.25)
    wrapper, x = l0_wrapper("dense", regularizer_weight=ramp, weight_decay=1e-4)
    wrapper(x, training=True)
    la, theta = np_(wrapper.log_alpha).astype(np.float64), np_(wrapper.kernel).astype(np.float64)
    p = sigmoid(la - BETA * np.log(-GAMMA / ZETA))
    expected_decay = 1e-4 / sigmoid(2.197) / 2 * np.sum(p * theta**2)
    losses = sorted(float(np_(v)) for v in wrapper.losses)
    np.testing.assert_allclose(losses, sorted([0.25 * p.sum(), expected_decay]), rtol=1e-5)
    plain, _ = l0_wrapper("dense", regularizer_weight=ramp)
    plain(x, training=True)
    assert len(plain.losses) == 1


@pytest.mark.saved_model
def test_report_strip_and_round_trips(tmp_path, rng):
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(hidden))
    model = sos.sparsify(model, "l0_regularization", seed=3)
    for _, wrapper in sos.traversal.wrappers(model):
        wrapper.log_alpha.assign(rng.uniform(-6, 6, wrapper.log_alpha.shape))
    report = sos.sparsity_report(model)
    for name in ("hidden", "out"):
        layer = model.get_layer(name)
        gates = ref_eval_gate(np_(layer.log_alpha).astype(np.float64))
        assert report[name].nonzeros == np.count_nonzero(np_(layer.kernel) * gates)
        p = sigmoid(np_(layer.log_alpha).astype(np.float64) - BETA * np.log(-GAMMA / ZETA))
        assert report[name].extra["expected_density"] == pytest.approx(p.mean(), rel=1e-5)
    x = make_input((6,), False)
    plain = sos.strip(model)
    np.testing.assert_allclose(np_(plain(x)), np_(model(x, training=False)), atol=1e-5)
    path = str(tmp_path / "l0.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(np_(loaded(x)), np_(model(x)))
    assert loaded.get_layer("out").zeta == 1.1
    assert sos.export_saved_model(model, tmp_path / "sm", sample_input=x)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta": 0.0}, "beta"),
        ({"beta": float("nan")}, "beta"),
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": 0.1}, "gamma"),
        ({"zeta": 1.0}, "zeta"),
        ({"log_alpha_init_stddev": -1.0}, "log_alpha_init_stddev"),
        ({"weight_decay": -1e-4}, "weight_decay"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sos.layers.L0Regularization(keras.layers.Dense(2), **kwargs)


def test_unsupported_layer():
    with pytest.raises(ValueError, match="cannot be sparsified"):
        sos.layers.L0Regularization(keras.layers.LayerNormalization())
