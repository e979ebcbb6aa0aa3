"""Magnitude / random pruning under ``tf.distribute.MirroredStrategy`` (DESIGN "Where state lives").

Two logical CPU devices (set up in conftest) act as two replicas. After ``fit`` with
``SparsityCallback``, every mask must be identical on both replicas, reach the scheduled sparsity
at the schedule's update steps, equal the top-k of the kernel as of the last update (MP), never
revive a pruned weight (RP), and (RP) be the very masks a single-device run draws.
"""

import keras
import numpy as np
import pytest
from helpers import update_steps

import state_of_sparsity as sos

pytestmark = pytest.mark.tensorflow_only

BATCH = 8  # global batch: 4 examples per replica
STEPS_PER_EPOCH = 5
EPOCHS = 5
TOTAL_STEPS = STEPS_PER_EPOCH * EPOCHS  # 25: optimizer steps 0 ... 24
# Updates at t = 6, 12, 18, 24 (paper rule, begin 0): the last one follows the final step, and
# end_step > TOTAL_STEPS keeps s(24) short of the final target, so each update has its own s.
SCHEDULE = sos.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=40, frequency=6)


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


@pytest.fixture
def strategy(tf):
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(devices) < 2:
        pytest.skip("needs the 2 logical CPU devices conftest configures")
    return tf.distribute.MirroredStrategy(devices[:2])


def base_model():
    """A small dense Functional model (Conv2D + Dense); same weights on every call."""
    keras.utils.set_random_seed(2024)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, name="fc")(x)
    return keras.Model(inputs, outputs)


def dataset(tf, num_batches=STEPS_PER_EPOCH):
    rng = np.random.default_rng(7)
    n = num_batches * BATCH
    x = rng.normal(size=(n, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH, drop_remainder=True)


def build(technique, strategy=None, schedule=SCHEDULE):
    base = base_model()

    def make():
        model = sos.sparsify(base, technique, schedule=schedule, seed=11)
        model.compile(
            optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model

    if strategy is None:
        return make()
    with strategy.scope():
        model = make()
    assert model.distribute_strategy.num_replicas_in_sync == 2
    return model


def wrappers(model):
    found = [layer for layer in model.layers if isinstance(layer, sos.layers.PruningWrapper)]
    assert sorted(w.name for w in found) == ["conv", "fc"]
    return found


def replica_values(strategy, variable):
    """The per-replica numpy values of a Keras variable (a MirroredVariable underneath)."""
    return [np.asarray(v.numpy()) for v in strategy.experimental_local_results(variable.value)]


def expected_sparsity(schedule, size, step):
    """Sparsity after an update at ``step``: 1 - round(n (1 - s(step))) / n (spec §3.4)."""
    return 1.0 - sos.ops.keep_count(size, schedule.sparsity(step)) / size


class Recorder(keras.callbacks.Callback):
    """After every batch (and after SparsityCallback): each wrapper's masks on every replica."""

    def __init__(self, strategy):
        super().__init__()
        self.strategy = strategy
        self.masks = []  # per step: {name: [mask on replica 0, mask on replica 1]}

    def on_train_batch_end(self, batch, logs=None):
        self.masks.append(
            {w.name: replica_values(self.strategy, w.mask) for w in wrappers(self.model)}
        )


def fit(tf, model, strategy, epochs=EPOCHS):
    recorder = Recorder(strategy)
    model.fit(
        dataset(tf),
        epochs=epochs,
        callbacks=[sos.SparsityCallback(), recorder],
        verbose=0,
        shuffle=False,
    )
    return recorder.masks


def check_replicas_and_schedule(strategy, model, recorded, first_step, schedule=SCHEDULE):
    """(a) identical on both replicas at every step; (b) sparsity follows the schedule."""
    last_step = first_step + len(recorded) - 1
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == last_step + 1
    updates = [t for t in update_steps(schedule, last_step + 1) if t >= first_step]
    assert updates, "the schedule must update during this fit"
    for w in wrappers(model):
        size = int(np.prod(w.mask.shape))
        for i, step_masks in enumerate(recorded):
            step = first_step + i
            replica0, replica1 = step_masks[w.name]
            np.testing.assert_array_equal(replica0, replica1)
            assert set(np.unique(replica0)) <= {0.0, 1.0}
            done = update_steps(schedule, step + 1)
            expected = expected_sparsity(schedule, size, done[-1]) if done else 0.0
            assert np.mean(replica0 == 0) == pytest.approx(expected, abs=1e-12), (w.name, step)
        # The state after fit: last_update and kernel agree on both replicas too.
        assert [int(v) for v in replica_values(strategy, w.last_update)] == [updates[-1]] * 2
        kernel0, kernel1 = replica_values(strategy, w.kernel)
        np.testing.assert_array_equal(kernel0, kernel1)


@pytest.mark.parametrize("technique", ["magnitude_pruning", "random_pruning"])
def test_mirrored_masks_identical_and_on_schedule(tf, strategy, technique):
    assert update_steps(SCHEDULE, TOTAL_STEPS)[-1] == TOTAL_STEPS - 1
    model = build(technique, strategy)
    recorded = fit(tf, model, strategy)
    assert len(recorded) == TOTAL_STEPS
    check_replicas_and_schedule(strategy, model, recorded, first_step=0)
    if technique == "magnitude_pruning":
        # (d) The last update followed the final optimizer step, so each replica's mask is the
        # top-k of its (final) kernel at s(last update).
        last = update_steps(SCHEDULE, TOTAL_STEPS)[-1]
        for w in wrappers(model):
            for kernel, mask in zip(
                replica_values(strategy, w.kernel), replica_values(strategy, w.mask), strict=True
            ):
                top_k = np.asarray(sos.ops.magnitude_mask(kernel, SCHEDULE.sparsity(last)))
                np.testing.assert_array_equal(mask, top_k)
    else:
        # RP masks are cumulative at every step of the run: a zero stays zero.
        for w in wrappers(model):
            history = [step[w.name][0] for step in recorded]
            for before, after in zip(history, history[1:], strict=False):
                assert np.all(after <= before)


def test_mirrored_random_pruning_monotone_across_fits(tf, strategy):
    """(c) A second fit continues the schedule; its masks are subsets of the first fit's."""
    model = build("random_pruning", strategy)
    first = fit(tf, model, strategy)
    masks_first = {w.name: replica_values(strategy, w.mask)[0] for w in wrappers(model)}
    second = fit(tf, model, strategy, epochs=3)  # steps 25 ... 39: updates at 30 and 36
    assert [t for t in update_steps(SCHEDULE, TOTAL_STEPS + 15) if t >= TOTAL_STEPS] == [30, 36]
    check_replicas_and_schedule(strategy, model, second, first_step=len(first))
    for w in wrappers(model):
        for mask in replica_values(strategy, w.mask):
            assert np.all(mask <= masks_first[w.name])
            assert np.sum(mask) < np.sum(masks_first[w.name])  # it did prune further


def test_random_pruning_mirrored_equals_single_device(tf, strategy):
    """(d) RP draws depend only on (seed, step, previous mask): 1 device == 2 replicas."""
    mirrored = build("random_pruning", strategy)
    fit(tf, mirrored, strategy)
    single = build("random_pruning")
    single.fit(
        dataset(tf), epochs=EPOCHS, callbacks=[sos.SparsityCallback()], verbose=0, shuffle=False
    )
    assert int(keras.ops.convert_to_numpy(single.optimizer.iterations)) == TOTAL_STEPS
    single_masks = {w.name: np.asarray(w.mask.numpy()) for w in wrappers(single)}
    for w in wrappers(mirrored):
        assert w.seed == single.get_layer(w.name).seed
        for mask in replica_values(strategy, w.mask):
            np.testing.assert_array_equal(mask, single_masks[w.name])


_LOSS_UNDER_REPLICAS = """
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from state_of_sparsity.paper.training.losses import PaddedSequenceCrossentropy
rng = np.random.default_rng(0)
x = rng.standard_normal((8, 3, 4)).astype("float32")
y = rng.integers(1, 5, (8, 3))  # no padding: both replicas hold the same token count
out = []
for scope in (tf.distribute.get_strategy(), tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])):
    with scope.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3, 4)), keras.layers.Dense(5)])
        model.compile(keras.optimizers.SGD(0.1), PaddedSequenceCrossentropy(5, 0.1))
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    out.append([history.history["loss"][0], model.layers[0].kernel.numpy().tolist()])
print(json.dumps(out))
"""


def test_padded_sequence_loss_is_scaled_for_replicas():
    """The Transformer's loss under 2 replicas gives the same reported loss and update as one
    device (a loss returning a scalar was summed over replicas: 2x). Its own process: a second
    MirroredStrategy in the test process clashes on collective keys."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _LOSS_UNDER_REPLICAS], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    one, two = json.loads(done.stdout.strip().splitlines()[-1])
    (loss_one, kernel_one), (loss_two, kernel_two) = one, two
    np.testing.assert_allclose(loss_two, loss_one, rtol=1e-5)
    np.testing.assert_allclose(kernel_two, kernel_one, rtol=1e-5, atol=1e-6)
