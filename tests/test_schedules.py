"""Schedules against independent NumPy formulas written from the spec (§1.7, §3.2, §3.3)."""

import keras
import numpy as np
import pytest
from helpers import update_steps
from hypothesis import given, settings
from hypothesis import strategies as st

import state_of_sparsity as sos


def ref_polynomial(t, s_i, s_f, begin, end, power=3.0):
    p = np.clip((np.float64(t) - begin) / (end - begin), 0.0, 1.0)
    return s_f + (s_i - s_f) * (1.0 - p) ** power


def ref_update_steps(begin, end, freq, num_steps):
    """Spec §3.3, literally: update iff begin <= t <= end (end < 0: open) and last + freq <= t."""
    last, out = 0, []
    for t in range(num_steps):
        if t >= begin and (end < 0 or t <= end) and last + freq <= t:
            out.append(t)
            last = t
    return out


fractions = st.floats(0.0, 0.999, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    s_i=fractions,
    s_f=fractions,
    begin=st.integers(0, 10_000),
    length=st.integers(1, 10_000),
    power=st.sampled_from([1, 2, 3, 4.5]),
    t=st.integers(0, 30_000),
)
def test_polynomial_matches_reference(s_i, s_f, begin, length, power, t):
    sched = sos.PolynomialDecay(s_i, s_f, begin, begin + length, power=power)
    assert sched.sparsity(t) == pytest.approx(
        ref_polynomial(t, s_i, s_f, begin, begin + length, power), abs=1e-12
    )


def test_polynomial_before_begin_and_after_end():
    sched = sos.PolynomialDecay(0.1, 0.9, begin_step=100, end_step=200)
    assert sched.sparsity(0) == pytest.approx(0.1)
    assert sched.sparsity(100) == pytest.approx(0.1)
    assert sched.sparsity(200) == pytest.approx(0.9)
    assert sched.sparsity(10**9) == pytest.approx(0.9)
    mid = sched.sparsity(150)
    assert mid == pytest.approx(0.9 + (0.1 - 0.9) * 0.5**3)


def test_constant_sparsity():
    sched = sos.ConstantSparsity(0.7, begin_step=10)
    assert all(sched.sparsity(t) == 0.7 for t in (0, 10, 10**6))
    assert sched.end_step == -1
    assert update_steps(sched, 35) == ref_update_steps(10, -1, 100, 35)


@settings(max_examples=100, deadline=None)
@given(
    begin=st.integers(0, 300),
    length=st.integers(1, 300),
    freq=st.integers(1, 50),
    no_end=st.booleans(),
)
def test_update_timing_matches_spec_rule(begin, length, freq, no_end):
    end = -1 if no_end else begin + length
    sched = (
        sos.ConstantSparsity(0.5, begin, end, freq)
        if no_end
        else sos.PolynomialDecay(0.0, 0.5, begin, end, frequency=freq)
    )
    n = begin + length + 100
    expected = ref_update_steps(begin, end, freq, n)
    assert update_steps(sched, n) == expected
    assert sched.first_update_step() == (expected[0] if expected else None)


def test_timing_examples_from_the_paper():
    # begin=0, frequency=1000: the first update is at step 1000, not 0 (spec §3.3).
    sched = sos.PolynomialDecay(0.0, 0.9, begin_step=0, end_step=5000, frequency=1000)
    assert update_steps(sched, 5001) == [1000, 2000, 3000, 4000, 5000]
    assert not sched.should_update(0, 0)
    # begin=40000: the update at the begin step applies s = initial sparsity = 0.
    late = sos.PolynomialDecay(0.0, 0.9, begin_step=40_000, end_step=100_000, frequency=2000)
    assert update_steps(late, 42_001)[:2] == [40_000, 42_000]
    assert late.sparsity(40_000) == 0.0
    # end = train_steps: steps run 0..train_steps-1, so the target is never quite reached.
    train_steps = 500
    short = sos.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=train_steps, frequency=10)
    last = update_steps(short, train_steps)[-1]
    assert last == 490
    assert 0.4999 < short.sparsity(last) < 0.5


@settings(max_examples=100, deadline=None)
@given(s_f=st.floats(0.05, 0.95), target=st.floats(0.0, 0.99), t=st.integers(0, 2000))
def test_per_layer_target_scales_the_schedule(s_f, target, t):
    sched = sos.PolynomialDecay(0.0, s_f, begin_step=100, end_step=1100, frequency=10)
    scaled = sched.with_final_sparsity(target)
    assert scaled.sparsity(t) == pytest.approx(sched.sparsity(t) * target / s_f, abs=1e-12)
    assert update_steps(scaled, 1200) == update_steps(sched, 1200)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"initial_sparsity": -0.1}, "initial_sparsity"),
        ({"final_sparsity": 1.0}, "final_sparsity"),
        ({"final_sparsity": float("nan")}, "final_sparsity"),
        ({"begin_step": 10, "end_step": 5}, "begin_step"),
        ({"begin_step": 10, "end_step": 10}, "end_step"),
        ({"begin_step": -1}, "begin_step"),
        ({"end_step": -1}, "end_step"),
        ({"frequency": 0}, "frequency"),
        ({"frequency": 2.5}, "frequency"),
        ({"power": 0}, "power"),
    ],
)
def test_polynomial_rejects_bad_arguments(kwargs, message):
    args = {
        "initial_sparsity": 0.0,
        "final_sparsity": 0.5,
        "begin_step": 0,
        "end_step": 100,
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        sos.PolynomialDecay(**args)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target_sparsity": 1.0}, r"target_sparsity.*\[0, 1\)"),
        ({"begin_step": 5, "end_step": 4}, "begin_step"),
        ({"end_step": -2}, "end_step"),
        ({"frequency": -1}, "frequency"),
    ],
)
def test_constant_rejects_bad_arguments(kwargs, message):
    args = {"target_sparsity": 0.5, "begin_step": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        sos.ConstantSparsity(**args)


@pytest.mark.parametrize(
    "schedule",
    [
        sos.PolynomialDecay(0.1, 0.8, 5, 50, power=2, frequency=3),
        sos.ConstantSparsity(0.3, 7, 70, 9),
        sos.Ramp(1e-3, 10, 20, "cubic", ema_decay=0.8),
    ],
)
def test_schedules_serialize(schedule):
    config = keras.saving.serialize_keras_object(schedule)
    assert keras.saving.deserialize_keras_object(config) == schedule


def ref_ramp(value, begin, end, shape, decay, steps):
    """Spec §1.7: the Transformer's linear / cubic+EMA weight, evaluated on successive steps."""
    out, ema = [], 0.0
    for t in steps:
        if shape == "constant":
            out.append(value)
            continue
        x = min(max(t - begin, 0) / (end - begin), 1.0)
        if shape == "linear":
            out.append(value * x)
        else:
            ema = decay * ema + (1 - decay) * value * min(1 - (1 - x) ** 3, 1.0)
            out.append(ema)
    return np.array(out)


@pytest.mark.parametrize("shape", ["constant", "linear", "cubic"])
def test_ramp_matches_reference(shape):
    ramp = sos.Ramp(2.5e-7, begin_step=10, end_step=60, shape=shape)
    steps = range(0, 120)
    got, state = [], 0.0
    for t in steps:
        state = float(keras.ops.convert_to_numpy(ramp(t, previous=state)))
        got.append(state)
    np.testing.assert_allclose(
        got, ref_ramp(2.5e-7, 10, 60, shape, 0.9, steps), rtol=1e-5, atol=1e-14
    )


def test_ramp_linear_full_weight_one_step_in():
    ramp = sos.Ramp(1.0, begin_step=0, end_step=1, shape="linear")
    assert float(ramp(0)) == 0.0
    assert float(ramp(1)) == 1.0


def test_ramp_cubic_needs_state():
    with pytest.raises(ValueError, match="previous"):
        sos.Ramp(1.0, 0, 10, "cubic")(3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"value": -1.0}, "value"),
        ({"value": float("inf")}, "value"),
        ({"shape": "quadratic"}, "shape"),
        ({"shape": "linear", "begin_step": 5, "end_step": 5}, "end_step"),
        ({"ema_decay": 1.0}, "ema_decay"),
    ],
)
def test_ramp_rejects_bad_arguments(kwargs, message):
    args = {"value": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        sos.Ramp(**args)
