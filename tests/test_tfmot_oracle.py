"""tfmot as an oracle: schedule values and magnitude-pruning masks (DESIGN "Oracle", spec §3.2-3.4).

tensorflow-model-optimization works on legacy ``tf_keras`` (it imports it itself); it lives in the
same process as Keras 3 without trouble. Our values must equal tfmot's wherever the two libraries
mean the same thing:

- s(t) of ``PolynomialDecay`` / ``ConstantSparsity`` (tfmot computes in float32: tolerance 1e-6);
- the magnitude-pruning mask on weights without ties (tfmot keeps every |w| >= the k-th largest).

Where they deliberately differ, a test documents the difference: ties (tfmot keeps every tie at
the threshold, we keep exactly k), k = 0 (tfmot keeps at least one weight), and the update timing
(the paper's ``last_update + frequency <= t`` rule, not tfmot's ``(t - begin) % frequency == 0``).
"""

import numpy as np
import pytest
from helpers import update_steps
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import state_of_sparsity as sos

pytestmark = pytest.mark.tensorflow_only


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def tfmot():
    return pytest.importorskip("tensorflow_model_optimization")


@pytest.fixture(scope="module")
def tf_keras():
    return pytest.importorskip("tf_keras")


@pytest.fixture(scope="module")
def pruning_impl(tfmot):
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_impl

    return pruning_impl


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def tfmot_schedule_at(tf, schedule, steps):
    """tfmot's ``(should_prune, sparsity)`` at every step of ``steps`` (one vectorized call)."""
    should_prune, sparsity = schedule(tf.constant(np.asarray(steps, np.int64)))
    should_prune = np.broadcast_to(should_prune.numpy(), (len(steps),))
    sparsity = np.broadcast_to(sparsity.numpy(), (len(steps),))
    return should_prune, sparsity


def tfmot_k(size, sparsity):
    """tfmot's kept count: max(round(float32(size) * (1 - float32(s))), 1) (pruning_impl)."""
    kept = np.round(np.float32(size) * (np.float32(1.0) - np.float32(sparsity)))
    return max(int(kept), 1)


def distinct_weights(shape, seed):
    """Float32 normal weights whose magnitudes are pairwise distinct (no ties)."""
    rng = np.random.default_rng(seed)
    while True:
        w = rng.normal(size=shape).astype(np.float32)
        if np.unique(np.abs(w)).size == w.size:
            return w


def tfmot_pruning_mask(tf, tfmot, pruning_impl, weights, sparsity):
    """The mask tfmot's ``Pruning`` object writes for ``weights`` at ``sparsity``.

    Runs tfmot's own ``conditional_mask_update`` over (weight, mask, threshold) variables, as
    its ``PruneLowMagnitude`` wrapper does, with a schedule that prunes at step 0.
    """
    weight = tf.Variable(weights)
    mask = tf.Variable(tf.ones_like(weight))
    threshold = tf.Variable(0.0)
    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    pruning = pruning_impl.Pruning(
        training_step_fn=lambda: tf.constant(0, tf.int64),
        pruning_vars=[(weight, mask, threshold)],
        pruning_schedule=schedule,
        block_size=(1, 1),
        block_pooling_type="AVG",
    )
    pruning.conditional_mask_update()
    return mask.numpy(), float(threshold.numpy())


def tfmot_training_mask(tfmot, tf_keras, weights, sparsity):
    """The mask tfmot computes during one ``fit`` step of a pruned tf_keras layer.

    The layer (Dense for 2-D weights, Conv2D for 4-D) is wrapped by ``prune_low_magnitude`` with
    a ConstantSparsity that prunes at every step; the optimizer's learning rate is 0, so the
    mask is computed on exactly ``weights``.
    """
    if weights.ndim == 2:
        layer = tf_keras.layers.Dense(weights.shape[1])
        input_shape = (weights.shape[0],)
    else:
        kh, kw, cin, cout = weights.shape
        layer = tf_keras.layers.Conv2D(cout, (kh, kw))
        input_shape = (kh + 2, kw + 2, cin)
    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    wrapper = tfmot.sparsity.keras.prune_low_magnitude(
        layer, pruning_schedule=schedule, input_shape=input_shape
    )
    model = tf_keras.Sequential([wrapper])
    ((weight, mask, _),) = wrapper.pruning_vars
    weight.assign(weights)
    model.compile(optimizer=tf_keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    x = np.zeros((2, *input_shape), np.float32)
    y = np.zeros((2, *model.output_shape[1:]), np.float32)
    model.fit(
        x, y, batch_size=2, epochs=1, verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )  # fmt: skip
    assert int(wrapper.pruning_step.numpy()) == 1  # exactly one step, which pruned
    return mask.numpy()


def ours(weights, sparsity):
    return np.asarray(sos.ops.magnitude_mask(weights, sparsity))


# --------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------

fractions = st.floats(0.0, 0.99, allow_nan=False)
powers = st.one_of(st.sampled_from([1, 2, 3, 4]), st.floats(1.0, 6.0, allow_nan=False))


@st.composite
def polynomial_cases(draw):
    begin = draw(st.integers(0, 10_000))
    end = begin + draw(st.integers(1, 10_000))
    # Steps before begin, at begin, inside, at end, just past and well past end.
    fixed = [0, max(begin - 1, 0), begin, begin + 1, (begin + end) // 2, end - 1, end, end + 1]
    inside = draw(st.lists(st.integers(begin, end), min_size=1, max_size=10))
    before = draw(st.lists(st.integers(0, begin), max_size=3))
    after = draw(st.lists(st.integers(end, end + 20_000), max_size=3))
    return {
        "initial_sparsity": draw(fractions),
        "final_sparsity": draw(fractions),
        "begin_step": begin,
        "end_step": end,
        "power": draw(powers),
        "frequency": draw(st.integers(1, 1000)),
        "steps": sorted(set(fixed + inside + before + after)),
    }


@settings(max_examples=100, deadline=None)
@given(case=polynomial_cases())
def test_polynomial_decay_equals_tfmot(tf, tfmot, case):
    steps = case.pop("steps")
    expected = tfmot.sparsity.keras.PolynomialDecay(**case)
    _, theirs = tfmot_schedule_at(tf, expected, steps)
    sched = sos.PolynomialDecay(**case)
    mine = np.array([sched.sparsity(t) for t in steps])
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    target=fractions,
    begin=st.integers(0, 10_000),
    end=st.one_of(st.just(-1), st.integers(0, 10_000)),
    frequency=st.integers(1, 1000),
    steps=st.lists(st.integers(0, 30_000), min_size=1, max_size=20),
)
def test_constant_sparsity_equals_tfmot(tf, tfmot, target, begin, end, frequency, steps):
    if end >= 0:
        end += begin
    expected = tfmot.sparsity.keras.ConstantSparsity(target, begin, end, frequency)
    _, theirs = tfmot_schedule_at(tf, expected, steps)
    sched = sos.ConstantSparsity(target, begin, end, frequency)
    mine = np.array([sched.sparsity(t) for t in steps])
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    begin=st.integers(0, 60),
    length=st.one_of(st.just(None), st.integers(1, 200)),
    frequency=st.integers(1, 40),
    num_steps=st.integers(1, 300),
)
def test_update_timing_is_tfmot_shifted(tf, tfmot, begin, length, frequency, num_steps):
    """Our update steps are tfmot's, shifted by max(0, frequency - begin).

    tfmot prunes at begin, begin + f, ... (``(t - begin) % f == 0``). The paper's rule
    ``last_update + f <= t`` with ``last_update`` starting at 0 first fires at max(begin, f)
    and then every f steps, so for begin >= f the two agree exactly, and for begin = 0 ours
    is tfmot's without step 0. Both stop at end_step.
    """
    end = -1 if length is None else begin + length
    theirs_sched = tfmot.sparsity.keras.ConstantSparsity(0.5, begin, end, frequency)
    should_prune, _ = tfmot_schedule_at(tf, theirs_sched, range(num_steps))
    tfmot_steps = np.flatnonzero(should_prune).tolist()
    last = num_steps - 1 if end < 0 else min(end, num_steps - 1)
    shift = max(0, frequency - begin)
    expected = [t + shift for t in tfmot_steps if t + shift <= last]
    mine = update_steps(sos.ConstantSparsity(0.5, begin, end, frequency), num_steps)
    assert mine == expected
    if begin >= frequency:
        assert mine == tfmot_steps


def test_first_update_timing_differs_from_tfmot(tf, tfmot):
    """Paper rule (spec §3.3): begin=0, frequency=1000 first prunes at t=1000; tfmot at t=0."""
    kwargs = {"initial_sparsity": 0.0, "final_sparsity": 0.9, "begin_step": 0,
              "end_step": 10_000, "frequency": 1000}  # fmt: skip
    mine = update_steps(sos.PolynomialDecay(**kwargs), 5001)
    assert mine[0] == 1000
    assert mine == [1000, 2000, 3000, 4000, 5000]
    theirs = tfmot.sparsity.keras.PolynomialDecay(**kwargs)
    assert bool(theirs(tf.constant(0, tf.int64))[0].numpy())
    assert bool(theirs(tf.constant(1000, tf.int64))[0].numpy())
    assert not bool(theirs(tf.constant(999, tf.int64))[0].numpy())


# --------------------------------------------------------------------------------------------
# Magnitude-pruning masks
# --------------------------------------------------------------------------------------------

SHAPES = [(20, 10), (64, 3), (3, 3, 4, 8), (5, 5, 1, 6), (1, 1, 16, 16)]
SPARSITIES = [0.0, 0.1, 0.5, 0.75, 0.9, 0.98]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_magnitude_mask_equals_tfmot_pruning(tf, tfmot, pruning_impl, shape, sparsity):
    w = distinct_weights(shape, seed=sum(shape) + int(sparsity * 100))
    size = w.size
    k = sos.ops.keep_count(size, sparsity)
    assert k == tfmot_k(size, sparsity)  # these cases are clear of float32 rounding
    theirs, threshold = tfmot_pruning_mask(tf, tfmot, pruning_impl, w, sparsity)
    mine = ours(w, sparsity)
    np.testing.assert_array_equal(mine, theirs)
    assert mine.sum() == k
    # tfmot's threshold is the k-th largest |w|; ours keeps exactly the |w| >= it.
    assert threshold == np.sort(np.abs(w).ravel())[::-1][k - 1]
    np.testing.assert_array_equal(mine, (np.abs(w) >= threshold).astype(np.float32))


@pytest.mark.parametrize("shape", [(12, 7), (3, 3, 2, 5)], ids=["dense", "conv"])
@pytest.mark.parametrize("sparsity", [0.3, 0.8])
def test_magnitude_mask_equals_tfmot_training(tfmot, tf_keras, shape, sparsity):
    """The mask a tfmot user gets from ``prune_low_magnitude`` + ``fit`` (tf_keras)."""
    w = distinct_weights(shape, seed=len(shape) * 10 + int(sparsity * 10))
    assert sos.ops.keep_count(w.size, sparsity) == tfmot_k(w.size, sparsity)
    theirs = tfmot_training_mask(tfmot, tf_keras, w, sparsity)
    np.testing.assert_array_equal(ours(w, sparsity), theirs)


@st.composite
def weight_shapes(draw):
    if draw(st.booleans()):
        return (draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    return (
        draw(st.integers(1, 5)),
        draw(st.integers(1, 5)),
        draw(st.integers(1, 6)),
        draw(st.integers(1, 8)),
    )


@settings(max_examples=80, deadline=None)
@given(shape=weight_shapes(), sparsity=st.floats(0.0, 0.99), seed=st.integers(0, 2**16))
def test_magnitude_mask_equals_tfmot_property(tf, tfmot, pruning_impl, shape, sparsity, seed):
    w = distinct_weights(shape, seed)
    k = sos.ops.keep_count(w.size, sparsity)
    # Ties aside, the only legitimate differences: tfmot's float32 k, and its k >= 1 floor.
    assume(k >= 1 and k == tfmot_k(w.size, sparsity))
    theirs, _ = tfmot_pruning_mask(tf, tfmot, pruning_impl, w, sparsity)
    np.testing.assert_array_equal(ours(w, sparsity), theirs)


def test_ties_tfmot_keeps_all_ties_we_keep_exactly_k(tf, tfmot, pruning_impl):
    """Deliberate difference (spec §3.4): with ties at the threshold tfmot keeps them all.

    tfmot keeps every |w| >= the k-th largest, i.e. more than k weights when ties straddle the
    threshold; we keep exactly k, breaking ties towards the lower flat index. Outside the tie
    both agree, and our kept set is inside tfmot's.
    """
    rng = np.random.default_rng(3)
    # 60 weights with magnitudes in {1, ..., 6}: ten of each, random signs and positions.
    magnitudes = rng.permutation(np.repeat(np.arange(1, 7), 10)).astype(np.float32)
    w = (magnitudes * rng.choice([-1.0, 1.0], size=60)).astype(np.float32).reshape(6, 10)
    sparsity = 0.55  # k = 27: 20 of magnitude 6 or 5, then 7 of the 10 fours
    k = sos.ops.keep_count(w.size, sparsity)
    assert k == tfmot_k(w.size, sparsity) == 27
    theirs, threshold = tfmot_pruning_mask(tf, tfmot, pruning_impl, w, sparsity)
    mine = ours(w, sparsity)
    a = np.abs(w)
    assert threshold == 4.0
    assert theirs.sum() == np.sum(a >= 4.0) == 30 > k
    assert mine.sum() == k
    assert np.all(mine <= theirs)  # ours is a subset of tfmot's
    np.testing.assert_array_equal(mine[a != threshold], theirs[a != threshold])
    # The ties we keep are the first (row-major) ones.
    tie_flat = np.flatnonzero(a.ravel() == threshold)
    kept_ties = np.flatnonzero(mine.ravel()[tie_flat])
    np.testing.assert_array_equal(kept_ties, np.arange(k - np.sum(a > threshold)))


def test_k_zero_tfmot_keeps_one_we_keep_none(tf, tfmot, pruning_impl):
    """Deliberate difference: round(n(1 - s)) = 0 keeps nothing here; tfmot floors k at 1."""
    w = distinct_weights((3, 3), seed=0)
    sparsity = 0.95  # 9 * 0.05 = 0.45 rounds to 0
    assert sos.ops.keep_count(w.size, sparsity) == 0
    theirs, _ = tfmot_pruning_mask(tf, tfmot, pruning_impl, w, sparsity)
    assert theirs.sum() == 1 and theirs.ravel()[np.argmax(np.abs(w))] == 1
    assert ours(w, sparsity).sum() == 0
