"""``train_resnet50``: the paper's ResNet-50 / ImageNet benchmark (spec §4, flags of §9.1).

One command per run of the paper's table: ``--pruning_method`` selects dense (``baseline``),
magnitude pruning (``threshold``, the paper's name, or ``magnitude_pruning``),
``random_pruning``, ``variational_dropout``, ``l0_regularization``, or ``scratch`` (fixed masks
from ``--load_mask_dir``; add ``--initial_value_checkpoint`` for a lottery ticket). Rerunning the
same command resumes from the latest checkpoint in ``--output_dir``.

Outputs in ``--output_dir``: ``checkpoints/`` (``ckpt-<step>.weights.h5`` every
``--steps_per_checkpoint`` steps, the step-0 values, ``model.json``), ``logs/`` (TensorBoard:
loss, accuracy, learning rate, per-layer and global sparsity, regularizer weight),
``saved_model/`` (stripped, eval-mode), ``results.json`` (top-1, top-5, sparsity report).

Fixes of the reference's flags (spec §10, items 19-23): ``--train_steps`` defaults to the paper's
128,000 (not 2); scratch and lottery modes are allowed values; setting both
``--first_layer_sparsity`` and ``--last_layer_sparsity`` keeps both.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from state_of_sparsity.cli import launch  # noqa: E402
from state_of_sparsity.cli.launch import UsageError  # noqa: E402
from state_of_sparsity.training import flags as harness_flags  # noqa: E402

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(harness_flags)
DEFAULTS = {"dataset": "imagenet2012", "train_steps": 128000, "pruning_frequency": 2000}
METHODS = {
    "baseline": None,
    "threshold": "magnitude_pruning",
    "magnitude_pruning": "magnitude_pruning",
    "random_pruning": "random_pruning",
    "variational_dropout": "variational_dropout",
    "l0_regularization": "l0_regularization",
    "scratch": "magnitude_pruning",
}

flags.DEFINE_enum("mode", "train_and_eval", ["train", "eval", "train_and_eval"], "What to run.")
# Data.
flags.DEFINE_string("manual_dir", None, "Directory with the official ImageNet tars (tfds build).")
flags.DEFINE_enum("data_format", "tfds", ["tfds", "tfrecord"], "Input format.")
flags.DEFINE_integer("num_label_classes", 1000, "Classes (TFRecord format only; tfds knows).")
flags.DEFINE_integer("num_train_images", None, "Train images (default: the dataset's count).")
flags.DEFINE_integer("image_size", 224, "Input resolution.")
# Model and optimisation.
flags.DEFINE_enum("resnet_depth", "50", ["18", "34", "50", "101", "152", "200"], "Depth.")
flags.DEFINE_float("width", -1.0, "Channel multiplier; <= 0 means 1.")
flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"], "Compute precision.")
flags.DEFINE_float("base_learning_rate", 0.1, "Learning rate at batch 256 (scaled linearly).")
flags.DEFINE_float("momentum", 0.9, "Nesterov momentum.")
flags.DEFINE_float("weight_decay", 1e-4, "L2 coefficient on kernels: wd * sum(w^2) / 2.")
flags.DEFINE_float("label_smoothing", 0.1, "Label smoothing.")
flags.DEFINE_integer("train_batch_size", 1024, "Global train batch size.")
flags.DEFINE_integer("eval_batch_size", 1000, "Eval batch size.")
flags.DEFINE_integer("steps_per_eval", 1251, "Steps between evaluations (train_and_eval).")
# Sparsity.
flags.DEFINE_enum("pruning_method", "baseline", list(METHODS), "Technique.")
flags.DEFINE_float("end_sparsity", 0.9, "Target sparsity (MP/RP) and the sparse-init sparsity.")
flags.DEFINE_integer("sparsity_begin_step", 5000, "Pruning begin; VD/L0 weight ramp start.")
flags.DEFINE_integer("sparsity_end_step", 8000, "Pruning end; VD/L0 weight ramp end.")
flags.DEFINE_float("reg_scalar", 0.0, "VD/L0 penalty weight, 1/N included (e.g. 0.01/1281167).")
flags.DEFINE_bool("is_warm_up", True, "Ramp the VD/L0 weight linearly over the pruning steps.")
flags.DEFINE_float("log_sigma2_init", -15.0, "VD initial log sigma^2 (the paper's RN50: -15).")
flags.DEFINE_float("log_alpha_init", 2.197, "L0 initial log alpha (drop probability 0.1).")
flags.DEFINE_bool("prune_first_layer", True, "Sparsify the stem convolution.")
flags.DEFINE_bool("prune_last_layer", True, "Sparsify the final dense layer.")
flags.DEFINE_float("first_layer_sparsity", -1.0, ">= 0: the stem's own target (MP/RP).")
flags.DEFINE_float("last_layer_sparsity", -1.0, ">= 0: the final layer's own target (MP/RP).")
flags.DEFINE_enum("init_method", "baseline", ["baseline", "sparse"], "Initialisation.")
flags.DEFINE_string("load_mask_dir", "", "scratch: checkpoint (file or directory) of the masks.")
flags.DEFINE_string("initial_value_checkpoint", "", "scratch: non-mask initial values (lottery).")


def validate():
    """Checks flag values and combinations before anything runs or is written."""
    harness_flags.resolve_defaults(**DEFAULTS)
    if not FLAGS.output_dir:
        raise UsageError("--output_dir is required.")
    if not 0.0 <= FLAGS.end_sparsity < 1.0:
        raise UsageError(f"--end_sparsity={FLAGS.end_sparsity} must be in [0, 1).")
    for name in ("first_layer_sparsity", "last_layer_sparsity"):
        value = getattr(FLAGS, name)
        if value >= 1.0:
            raise UsageError(f"--{name}={value} must be in [0, 1) (or < 0 for unset).")
    for name in ("train_steps", "train_batch_size", "eval_batch_size", "steps_per_checkpoint",
                 "steps_per_eval", "pruning_frequency", "image_size"):  # fmt: skip
        if getattr(FLAGS, name) < 1:
            raise UsageError(f"--{name}={getattr(FLAGS, name)} must be >= 1.")
    if FLAGS.sparsity_end_step <= FLAGS.sparsity_begin_step and METHODS[FLAGS.pruning_method]:
        raise UsageError(
            f"--sparsity_begin_step={FLAGS.sparsity_begin_step} must be < "
            f"--sparsity_end_step={FLAGS.sparsity_end_step}."
        )
    method = FLAGS.pruning_method
    if method == "scratch" and not FLAGS.load_mask_dir:
        raise UsageError("--pruning_method=scratch needs --load_mask_dir (an MP run's checkpoint).")
    if method != "scratch" and (FLAGS.load_mask_dir or FLAGS.initial_value_checkpoint):
        raise UsageError(
            "--load_mask_dir / --initial_value_checkpoint need --pruning_method=scratch."
        )
    if FLAGS.init_method == "sparse" and method not in (
        "threshold",
        "magnitude_pruning",
        "scratch",
    ):
        raise UsageError("--init_method=sparse is only valid with threshold (MP) or scratch.")
    if FLAGS.data_format == "tfrecord" and not FLAGS.data_dir:
        raise UsageError("--data_format=tfrecord needs --data_dir.")
    if FLAGS.data_format == "tfds" and FLAGS.manual_dir and not os.path.isdir(FLAGS.manual_dir):
        raise UsageError(f"--manual_dir={FLAGS.manual_dir!r} is not a directory.")


def layer_overrides(technique) -> dict:
    """Stem / final-layer targets from the flags (both may be set together)."""
    overrides = {}
    for layer, prune, target in (
        ("initial_conv", FLAGS.prune_first_layer, FLAGS.first_layer_sparsity),
        ("final_dense", FLAGS.prune_last_layer, FLAGS.last_layer_sparsity),
    ):
        if not prune:
            overrides[layer] = 0.0
        elif target >= 0:
            if technique not in ("magnitude_pruning", "random_pruning") and target > 0:
                raise UsageError(f"Per-layer targets apply to MP/RP, not {technique}.")
            overrides[layer] = target
    return overrides


def build_model(num_classes):
    """The (sparsified, compiled) model for the flags; call inside the strategy's scope."""
    import keras

    import state_of_sparsity as sos
    from state_of_sparsity.models import resnet
    from state_of_sparsity.training import losses, lr_schedules

    if FLAGS.precision == "bfloat16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(FLAGS.seed)
    model = resnet.resnet(
        int(FLAGS.resnet_depth),
        num_classes=num_classes,
        width=FLAGS.width if FLAGS.width > 0 else 1.0,
        input_shape=(FLAGS.image_size, FLAGS.image_size, 3),
        init_sparsity=FLAGS.end_sparsity if FLAGS.init_method == "sparse" else None,
        weight_decay=FLAGS.weight_decay,
    )
    technique = METHODS[FLAGS.pruning_method]
    if technique is not None:
        kwargs = {"overrides": layer_overrides(technique), "seed": FLAGS.seed}
        if FLAGS.pruning_method == "scratch":  # fixed masks: a schedule that never fires
            kwargs["schedule"] = sos.ConstantSparsity(FLAGS.end_sparsity, 0, 0, 1)
        elif technique in ("magnitude_pruning", "random_pruning"):
            kwargs["schedule"] = sos.PolynomialDecay(
                0.0, FLAGS.end_sparsity, FLAGS.sparsity_begin_step, FLAGS.sparsity_end_step,
                frequency=FLAGS.pruning_frequency,
            )  # fmt: skip
        elif technique == "variational_dropout":
            kwargs.update(
                log_sigma2_init=FLAGS.log_sigma2_init,
                clip_log_alpha=FLAGS.clip_log_alpha,
                threshold=FLAGS.log_alpha_threshold,
            )
        else:
            kwargs["log_alpha_init"] = FLAGS.log_alpha_init
        model = sos.sparsify(model, technique, **kwargs)
    num_train = FLAGS.num_train_images
    model.compile(
        optimizer=keras.optimizers.SGD(
            lr_schedules.ResNetLearningRate(
                FLAGS.base_learning_rate, FLAGS.train_batch_size, num_train
            ),
            momentum=FLAGS.momentum,
            nesterov=True,
        ),
        loss=losses.SmoothedSparseCategoricalCrossentropy(num_classes, FLAGS.label_smoothing),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="top_1"),
            keras.metrics.SparseTopKCategoricalAccuracy(5, name="top_5"),
        ],
    )
    return model


def regularizer_weight():
    import state_of_sparsity as sos

    if METHODS[FLAGS.pruning_method] not in ("variational_dropout", "l0_regularization"):
        return None
    if FLAGS.is_warm_up:
        return sos.Ramp(
            FLAGS.reg_scalar, FLAGS.sparsity_begin_step, FLAGS.sparsity_end_step, "linear"
        )
    return sos.Ramp(FLAGS.reg_scalar)


def data(split, **kwargs):
    from state_of_sparsity.data import imagenet

    return imagenet.load(
        split,
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        manual_dir=FLAGS.manual_dir,
        data_format=FLAGS.data_format,
        num_classes=FLAGS.num_label_classes,
        image_size=FLAGS.image_size,
        **kwargs,
    )


def apply_scratch_checkpoints(model):
    """Copies the masks of ``--load_mask_dir`` (and, for a lottery ticket, every other value of
    ``--initial_value_checkpoint``) into ``model``, checking that the architectures match."""
    from state_of_sparsity import experiments

    experiments.copy_masks(FLAGS.load_mask_dir, model)
    if FLAGS.initial_value_checkpoint:
        experiments.copy_initial_values(FLAGS.initial_value_checkpoint, model)


def evaluate(model, eval_data):
    import state_of_sparsity as sos

    metrics = model.evaluate(eval_data, verbose=0, return_dict=True)
    options = {"threshold": FLAGS.log_alpha_threshold}
    report = sos.sparsity_report(model, **options)
    return {
        "top_1": float(metrics["top_1"]),
        "top_5": float(metrics["top_5"]),
        "loss": float(metrics["loss"]),
        "global_sparsity": report.global_sparsity,
        "sparsity": report.to_dict(),
    }


def run() -> int:
    validate()
    import keras

    import state_of_sparsity as sos
    from state_of_sparsity.training import checkpoints, loop, strategy

    if FLAGS.logical_cpus > 1:
        strategy.split_cpu(FLAGS.logical_cpus)
    strategy_ = strategy.make_strategy(FLAGS.distribution_strategy, FLAGS.tpu)
    print(f"{FLAGS.distribution_strategy} strategy: {strategy_.num_replicas_in_sync} replicas")
    _, info = data("validation", batch_size=FLAGS.eval_batch_size)
    num_classes = info.num_classes
    if FLAGS.num_train_images is None:
        FLAGS.num_train_images = info.num_examples.get("train") or 1_281_167
    output_dir = FLAGS.output_dir
    checkpoint_dir = os.path.join(output_dir, "checkpoints")
    with strategy_.scope():
        model = build_model(num_classes)
    results_path = os.path.join(output_dir, "results.json")
    started = time.time()
    if FLAGS.mode in ("train", "train_and_eval"):
        latest = checkpoints.latest_checkpoint(checkpoint_dir)
        if latest is None and FLAGS.pruning_method == "scratch":
            apply_scratch_checkpoints(model)
        callbacks = [
            keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")),
            sos.SparsitySummaries(os.path.join(output_dir, "logs")),
        ]
        if METHODS[FLAGS.pruning_method] and FLAGS.pruning_method != "scratch":
            callbacks.insert(0, sos.SparsityCallback(regularizer_weight=regularizer_weight()))
        eval_data = data("validation", batch_size=FLAGS.eval_batch_size)[0]
        train_steps = FLAGS.train_steps
        step = 0 if latest is None else latest[0]
        history = []
        while step < train_steps:
            target = train_steps
            if FLAGS.mode == "train_and_eval":
                target = min(train_steps, (step // FLAGS.steps_per_eval + 1) * FLAGS.steps_per_eval)
            step = loop.train_to_step(
                model,
                lambda initial: data(
                    "train",
                    batch_size=FLAGS.train_batch_size,
                    seed=FLAGS.seed,
                    initial_step=initial,
                )[0],  # fmt: skip
                train_steps=target,
                output_dir=output_dir,
                steps_per_checkpoint=FLAGS.steps_per_checkpoint,
                keep_checkpoint_max=FLAGS.keep_checkpoint_max,
                callbacks=callbacks,
                verbose=FLAGS.verbose,
            )
            if FLAGS.mode == "train_and_eval":
                history.append({"step": step, **evaluate(model, eval_data)})
                print(f"step {step}: top-1 {history[-1]['top_1']:.4f}", flush=True)
    else:
        latest = checkpoints.latest_checkpoint(checkpoint_dir)
        if latest is None:
            raise UsageError(f"--mode=eval: no checkpoint in {checkpoint_dir!r}.")
        step, path = latest
        with strategy_.scope():
            model.optimizer.build(model.trainable_variables)
        model.load_weights(path)
    eval_data = data("validation", batch_size=FLAGS.eval_batch_size)[0]
    final = evaluate(model, eval_data)
    saved_model = None
    if FLAGS.mode != "eval":
        saved_model = sos.export_saved_model(
            model,
            os.path.join(output_dir, "saved_model"),
            threshold=FLAGS.log_alpha_threshold,
            sample_input=next(iter(eval_data))[0][:2].numpy(),
        )
    results = {
        "flags": {f.name: f.value for f in FLAGS.get_key_flags_for_module(__name__)},
        "step": step,
        "eval": final,
        "saved_model": saved_model,
        "seconds": time.time() - started,
    }
    if FLAGS.mode == "train_and_eval":
        results["history"] = history
    checkpoints.write_json(results_path, results)
    print(
        f"step {step}: top-1 {final['top_1']:.4f}, top-5 {final['top_5']:.4f}, "
        f"global sparsity {final['global_sparsity']:.4f}; results in {results_path}"
    )
    return 0


def _main(argv):
    return launch.guarded(run, "train_resnet50", argv)


def main():
    launch.run(_main, __name__)


if __name__ == "__main__":
    main()
