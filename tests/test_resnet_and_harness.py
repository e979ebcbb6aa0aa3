"""ResNet model details, learning-rate schedules, the smoothed loss, step checkpoints (resume,
fallback, the NaN guard) and the schedule checks against --train_steps."""

import json
import math
import os

import keras
import numpy as np
import pytest
from keras import ops

import state_of_sparsity as sos
from state_of_sparsity.paper.models import resnet
from state_of_sparsity.paper.training import (
    checkpoints,
    loop,
    losses,
    lr_schedules,
    schedule_checks,
)
from state_of_sparsity.paper.training.errors import UsageError


def np_(x):
    return ops.convert_to_numpy(x)


def kernels(model):
    return {
        layer.name: layer for layer in model.layers if type(layer).__name__ in ("Conv2D", "Dense")
    }


def test_resnet50_parameter_counts():
    model = resnet.resnet(50)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert trainable == 25_557_032  # the reference's ResNet-50 (no conv biases)
    layers = kernels(model)
    sizes = {name: int(np.prod(layer.kernel.shape)) for name, layer in layers.items()}
    # Spec §3.7 arithmetic: 53 convolutions + the 2048x1000 FC, stem 7*7*3*64.
    assert len(sizes) == 54
    assert sizes["initial_conv"] == 9_408 and sizes["final_dense"] == 2_048_000
    assert sum(sizes.values()) == 25_502_912
    # 98% on everything but a dense stem and an 80% head gives 96.5% overall.
    nnz = 0.02 * (sum(sizes.values()) - 9_408 - 2_048_000) + 0.2 * 2_048_000 + 9_408
    assert 1 - nnz / sum(sizes.values()) == pytest.approx(0.965, abs=0.001)


def test_resnet_structure_details():
    model = resnet.resnet(50, input_shape=(224, 224, 3))
    assert model.get_layer("initial_pool").output.shape[1:3] == (56, 56)
    assert model.get_layer("group2_block1_conv2_pad") is not None  # stride on the 3x3 (v1.5)
    assert model.get_layer("group2_block1_conv1").strides == (1, 1)
    assert model.get_layer("group2_block1_conv2").strides == (2, 2)
    assert model.output.shape[1:] == (1000,)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert (layer.momentum, layer.epsilon) == (0.9, 1e-5)
            last = layer.name.endswith("_bn3")
            assert np.all(np_(layer.gamma) == (0.0 if last else 1.0)), layer.name
        if isinstance(layer, keras.layers.Conv2D):
            assert not layer.use_bias
    std = np_(model.get_layer("final_dense").kernel).std()
    assert std == pytest.approx(0.01, rel=0.02)
    assert resnet.resnet(18, width=0.5).get_layer("initial_conv").filters == 32


def test_resnet_weight_decay_is_on_kernels_only():
    model = resnet.resnet(
        18, num_classes=10, width=0.25, input_shape=(32, 32, 3), weight_decay=1e-4
    )
    expected = sum(1e-4 / 2 * np.sum(np_(layer.kernel) ** 2) for layer in kernels(model).values())
    model(np.zeros((1, 32, 32, 3), "float32"))
    assert float(sum(np_(loss) for loss in model.losses)) == pytest.approx(expected, rel=1e-4)
    sparse = sos.sparsify(model, "variational_dropout")  # the decay stays on θ
    sparse(np.zeros((1, 32, 32, 3), "float32"))
    assert float(sum(np_(loss) for loss in sparse.losses)) == pytest.approx(expected, rel=1e-4)


def test_sparse_initialisation_scales():
    model = resnet.resnet(18, width=1.0, init_sparsity=0.9, input_shape=(64, 64, 3))
    conv = np_(model.get_layer("group4_block1_conv1").kernel)  # 3x3, 512 filters
    assert conv.std() == pytest.approx(math.sqrt(2 / (9 * 512 * 0.1)), rel=0.02)
    fc = np_(model.get_layer("final_dense").kernel)  # 512 -> 1000
    nnz = 512 * 1000 * 0.1
    limit = math.sqrt(6 / (nnz / 1000 + nnz / 512))
    assert np.abs(fc).max() <= limit and np.abs(fc).max() > 0.99 * limit
    with pytest.raises(ValueError, match="sparsity"):
        resnet.sparse_initializers(1.0)
    with pytest.raises(ValueError, match="depth"):
        resnet.resnet(42)


def ref_resnet_lr(step, base=0.1, batch=1024, n=1_281_167):
    scaled = base * batch / 256
    epoch = step / (n / batch)
    if epoch < 5:
        return scaled * epoch / 5
    for multiplier, start in ((0.001, 80), (0.01, 60), (0.1, 30)):
        if epoch >= start:
            return scaled * multiplier
    return scaled


@pytest.mark.parametrize(
    "epoch", [0, 1, 2.5, 4.999, 5, 17, 29.99, 30, 45, 59.99, 60, 79.99, 80, 100]
)
def test_resnet_learning_rate_at_the_paper_boundaries(epoch):
    schedule = lr_schedules.ResNetLearningRate(0.1, 1024, 1_281_167)
    step = int(round(epoch * 1_281_167 / 1024))
    assert float(np_(schedule(step))) == pytest.approx(ref_resnet_lr(step), rel=1e-5, abs=1e-9)
    assert ref_resnet_lr(int(5 * 1_281_167 / 1024) + 1) == pytest.approx(0.4)


# The paper's schedules as written (spec §4.4, paper §5.2, Appendix E.6), in epochs: (warm-up,
# the epochs of the x0.1 drops). The standard run is 128,000 steps at batch 1024 = 102.3 epochs.
STANDARD_EPOCHS = 128000 * 1024 / 1_281_167
PAPER_LR = {
    "standard": (5, [30, 60, 80], 1.0),
    # 1.5x by lengthening the 0.1x region (before the second drop) by 153.5 - 102.3 = 51 epochs.
    "extended": (5, [30, 60 + 51, 80 + 51], 1.5),
    "lr_scaled": (10, [60, 120, 160], 2.0),  # every region twice as long
    "lr_constant_final": (5, [30, 60, 80], 2.0),  # the final LR held
    "lr_continual_decay": (5, [30, 60, 80, 110, 140, 170, 200], 2.0),  # then every 30 epochs
    "lr_constant_decay": (0, [30, 60, 90, 120, 150, 180], 2.0),  # no warm-up, every 30 epochs
}


def paper_lr(epochs, warmup, drops, scaled=0.4):
    epochs = np.asarray(epochs, "float64")
    drops_passed = (epochs[:, None] >= np.asarray(drops)[None, :]).sum(1)
    ramp = np.minimum(1.0, epochs / warmup) if warmup else 1.0
    return scaled * 0.1**drops_passed * ramp


@pytest.mark.parametrize("name", sorted(PAPER_LR))
def test_resnet_lr_presets_at_the_papers_epochs(name):
    warmup, drops, length = PAPER_LR[name]
    preset = lr_schedules.resnet_lr_preset(name)
    assert preset.length == length
    schedule = lr_schedules.ResNetLearningRate(0.1, 1024, 1_281_167, **preset.arguments())
    end = length * STANDARD_EPOCHS
    epochs = [0.5, warmup / 2, *(d + o for d in [warmup, *drops] for o in (-0.01, 0.01)), end]
    epochs = np.array([e for e in epochs if 0 < e <= end])
    steps = np.round(epochs * 1_281_167 / 1024).astype("int64")
    exact = steps * 1024 / 1_281_167  # the epochs of the steps themselves
    np.testing.assert_allclose(
        np_(schedule(steps)), paper_lr(exact, warmup, drops), rtol=1e-5, atol=1e-9
    )


def test_resnet_lr_schedule_config_round_trip_and_old_configs():
    preset = lr_schedules.resnet_lr_preset("lr_constant_decay")
    schedule = lr_schedules.ResNetLearningRate(0.1, 256, 1000, **preset.arguments())
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(schedule)))
    again = keras.saving.deserialize_keras_object(config)
    assert again.get_config() == schedule.get_config()
    steps = np.arange(0, 200_000, 997)
    np.testing.assert_array_equal(np_(again(steps)), np_(schedule(steps)))
    # A schedule saved before the shape parameters existed loads as the standard one.
    old = lr_schedules.ResNetLearningRate.from_config(
        {"base_learning_rate": 0.1, "batch_size": 1024, "num_train_images": 1_281_167}
    )
    standard = lr_schedules.ResNetLearningRate(
        0.1, 1024, 1_281_167, **lr_schedules.resnet_lr_preset("standard").arguments()
    )
    assert old.get_config() == standard.get_config()
    with pytest.raises(ValueError, match="not a preset; use one of standard, extended, lr_scaled"):
        lr_schedules.resnet_lr_preset("lr_bogus")
    with pytest.raises(ValueError, match="start at epoch 0"):
        lr_schedules.ResNetLearningRate(regions=((1.0, 0), (0.1, 30), (0.01, 30)))


def test_sparse_initialisation_only_on_pruned_layers():
    def stds(**kwargs):
        keras.utils.set_random_seed(0)
        model = resnet.resnet(18, num_classes=10, width=0.25, input_shape=(32, 32, 3), **kwargs)
        names = ("initial_conv", "group4_block1_conv1", "final_dense")
        return [np_(model.get_layer(n).kernel) for n in names]

    # A dense stem and head keep the baseline initialisers; the rest is scaled for 90%.
    stem, conv, fc = stds(init_sparsity=0.9, init_overrides={"initial_conv": 0.0,
                                                               "final_dense": None})  # fmt: skip
    assert stem.std() == pytest.approx(math.sqrt(1 / (7 * 7 * 3)), rel=0.05)  # fan-in, scale 1
    assert conv.std() == pytest.approx(math.sqrt(2 / (9 * 128 * 0.1)), rel=0.05)
    assert fc.std() == pytest.approx(0.01, rel=0.1)
    # A per-layer target scales that layer's initialisation.
    _, _, fc = stds(init_sparsity=0.9, init_overrides={"final_dense": 0.8})
    nnz = 128 * 10 * 0.2
    limit = math.sqrt(6 / (nnz / 10 + nnz / 128))
    assert limit * 0.9 < np.abs(fc).max() <= limit


def test_transformer_learning_rate():
    schedule = lr_schedules.TransformerLearningRate()
    for t in (1, 100, 4000, 8000, 20000, 500000):
        expected = 2.0 * min(1, t / 8000) / math.sqrt(max(t, 8000)) / math.sqrt(512)
        assert float(np_(schedule(t))) == pytest.approx(expected, rel=1e-5)
    assert float(np_(schedule(8000))) == pytest.approx(9.88e-4, abs=1e-6)


def test_smoothed_crossentropy_matches_reference(rng):
    logits = rng.standard_normal((6, 5)).astype("float32")
    labels = rng.integers(0, 5, 6)
    targets = np.eye(5)[labels] * 0.9 + 0.1 / 5
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -(targets * log_softmax).sum(1).mean()
    loss = losses.SmoothedSparseCategoricalCrossentropy(5, label_smoothing=0.1)
    assert float(np_(loss(labels, logits))) == pytest.approx(expected, rel=1e-5)


def tiny_model(lr=0.01):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(keras.optimizers.SGD(lr), "mse")
    return model


def stream(initial_step, batch=4):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 4)).astype("float32")
    y = rng.standard_normal((1000, 2)).astype("float32")

    def gen():
        step = initial_step
        while True:
            i = (step * batch) % 996
            yield x[i : i + batch], y[i : i + batch]
            step += 1

    import tensorflow as tf

    spec = (tf.TensorSpec((batch, 4), tf.float32), tf.TensorSpec((batch, 2), tf.float32))
    return tf.data.Dataset.from_generator(gen, output_signature=spec)


def train(model, output_dir, steps, every=3):
    """What a binary does: restore (or initialize), then train to ``steps``."""
    directory = loop.checkpoint_dir(str(output_dir))
    if loop.restore(model, directory) is None:
        loop.initialize(model, directory)
    return loop.train_to_step(model, stream, train_steps=steps, output_dir=str(output_dir),
                              steps_per_checkpoint=every, verbose=0)  # fmt: skip


def test_train_to_step_resumes_to_the_same_weights(tmp_path):
    straight = tiny_model()
    keras.utils.set_random_seed(0)
    initial = [np_(w) for w in straight.weights]
    train(straight, tmp_path / "a", 9)
    interrupted = tiny_model()
    interrupted.set_weights(initial)
    train(interrupted, tmp_path / "b", 5)
    resumed = tiny_model()  # a fresh process would rebuild the model like this
    assert train(resumed, tmp_path / "b", 9) == 9
    for a, b in zip(straight.weights, resumed.weights, strict=True):
        np.testing.assert_allclose(np_(a), np_(b), rtol=1e-6)
    steps = checkpoints.read_index(str(tmp_path / "b" / "checkpoints"))["steps"]
    assert steps == [0, 3, 5, 6, 9]
    finished = tiny_model()  # restoring a finished run gives its weights, trains nothing
    assert train(finished, tmp_path / "b", 9) == 9
    for a, b in zip(straight.weights, finished.weights, strict=True):
        np.testing.assert_allclose(np_(a), np_(b), rtol=1e-6)


def test_nan_guard_keeps_the_last_good_checkpoint(tmp_path):
    model = tiny_model(lr=1e30)  # explodes within a few steps
    with pytest.raises(checkpoints.TrainingDiverged, match="Last good checkpoint"):
        train(model, tmp_path, 50, every=1)
    step, path = checkpoints.latest_checkpoint(str(tmp_path / "checkpoints"))
    reloaded, _ = checkpoints.load_model_from_checkpoint(path)
    assert all(np.all(np.isfinite(np_(w))) for w in reloaded.weights)
    assert 0 <= step < 50


def test_nan_guard_checks_the_weights_not_only_the_loss(tmp_path):
    """The loss of step k is computed before its update: a finite loss can come with weights
    the update made infinite. They must not be saved."""
    model = tiny_model()
    model.optimizer.build(model.trainable_variables)
    saver = checkpoints.StepCheckpoint(str(tmp_path), every=1)
    saver.set_model(model)
    saver.save(1, loss=0.5)
    kernel = model.layers[-1].kernel
    kernel.assign(np.full(kernel.shape, np.inf, "float32"))
    with pytest.raises(checkpoints.TrainingDiverged, match=r"kernel is not finite at step 2.*"
                       r"ckpt-1\.weights\.h5 \(step 1\)"):  # fmt: skip
        saver.save(2, loss=0.5)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.json", "ckpt-1.weights.h5"]


def test_restore_falls_back_from_a_corrupt_checkpoint(tmp_path):
    model = tiny_model()
    train(model, tmp_path, 6, every=2)
    directory = str(tmp_path / "checkpoints")
    with open(checkpoints.checkpoint_path(directory, 6), "r+b") as f:
        f.truncate(100)
    warnings = []
    assert loop.restore(tiny_model(), directory, warn=warnings.append)[0] == 4
    assert len(warnings) == 1 and "ckpt-6.weights.h5 is corrupt" in warnings[0]
    for step in (0, 2, 4):
        os.remove(checkpoints.checkpoint_path(directory, step))
    with pytest.raises(UsageError, match="No intact checkpoint"):
        loop.restore(tiny_model(), directory, warn=warnings.append)


def test_corrupt_index_and_json_writes(tmp_path):
    (tmp_path / "checkpoint.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"checkpoint\.json is corrupt"):
        checkpoints.latest_checkpoint(str(tmp_path))
    (tmp_path / "checkpoint.json").write_text('{"latest": 3}')
    with pytest.raises(UsageError, match=r"checkpoint\.json is corrupt"):
        checkpoints.latest_checkpoint(str(tmp_path))
    target = tmp_path / "results.json"
    target.mkdir()
    with pytest.raises(OSError):
        checkpoints.write_json(str(target), {"a": 1})
    assert not (tmp_path / "results.json.tmp").exists()


def test_schedule_checks_against_train_steps():
    names = ("--target", "--begin", "--end", "--frequency")
    warned = []
    # The paper's timing: updates at max(begin, frequency), then every frequency, up to end.
    schedule_checks.check_pruning(sos.PolynomialDecay(0.0, 0.9, 0, 100, frequency=10), 200,
                                  names, warned.append)  # fmt: skip
    assert warned == []  # last update at step 100 = end: the target
    schedule_checks.check_pruning(sos.PolynomialDecay(0.0, 0.9, 0, 100, frequency=10), 51,
                                  names, warned.append)  # fmt: skip
    assert len(warned) == 1 and "last mask update (step 50) reaches 78.8%" in warned[0]
    with pytest.raises(UsageError, match="first is due at step 10000"):
        schedule_checks.check_pruning(
            sos.PolynomialDecay(0.0, 0.9, 0, 200000, frequency=10000), 600, names, warned.append
        )
    with pytest.raises(UsageError, match="first is due at step 50.*after --end=40"):
        schedule_checks.check_pruning(
            sos.PolynomialDecay(0.0, 0.9, 0, 40, frequency=50), 600, names, warned.append
        )
    schedule_checks.check_ramp(0, 100, 51, ("--start", "--diff"), warned.append)
    assert len(warned) == 2 and "reaches 50.0% of its full value" in warned[1]
    with pytest.raises(UsageError, match="--start=100000"):
        schedule_checks.check_ramp(100000, 200000, 600, ("--start", "--diff"), warned.append)


def test_keep_checkpoint_max(tmp_path):
    model = tiny_model()
    model.optimizer.build(model.trainable_variables)
    saver = checkpoints.StepCheckpoint(str(tmp_path), every=1, keep=2)
    saver.set_model(model)
    for step in range(6):
        saver.save(step)
    assert sorted(os.listdir(tmp_path)) == [
        "checkpoint.json", "ckpt-0.weights.h5", "ckpt-4.weights.h5", "ckpt-5.weights.h5"
    ]  # fmt: skip
    assert checkpoints.latest_checkpoint(str(tmp_path))[0] == 5
    with pytest.raises(UsageError, match="model.json"):
        checkpoints.load_model_from_checkpoint(str(tmp_path))
    with pytest.raises(UsageError, match="not a checkpoint"):
        checkpoints.load_model_from_checkpoint(str(tmp_path / "checkpoint.json"))


def test_a_run_recorded_before_a_flag_existed_matches_its_default(tmp_path):
    from state_of_sparsity.paper.cli import train_resnet50  # noqa: F401  (defines its flags)
    from state_of_sparsity.paper.training import run_dir

    recorded = {"seed": 0, "lr_schedule": "standard"}  # made before --sparsity_pattern existed
    run_dir.check_flags(str(tmp_path), recorded, {**recorded, "sparsity_pattern": ""})
    with pytest.raises(UsageError, match=r"--sparsity_pattern=None \(now '2:4'\)"):
        run_dir.check_flags(str(tmp_path), recorded, {**recorded, "sparsity_pattern": "2:4"})
    with pytest.raises(UsageError, match=r"--lr_schedule='standard' \(now 'extended'\)"):
        run_dir.check_flags(str(tmp_path), recorded, {"seed": 0, "lr_schedule": "extended"})
    with pytest.raises(UsageError, match=r"--seed=0 \(now None\)"):  # dropped since: a mismatch
        run_dir.check_flags(str(tmp_path), recorded, {"lr_schedule": "standard"})
