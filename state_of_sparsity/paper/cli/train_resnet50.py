"""``train_resnet50``: the paper's ResNet-50 / ImageNet benchmark (spec §4, flags of §9.1).

One command per run of the paper's table: ``--pruning_method`` selects dense (``baseline``),
magnitude pruning (``threshold``, the paper's name, or ``magnitude_pruning``),
``random_pruning``, ``variational_dropout``, ``l0_regularization``, or ``scratch`` (fixed masks
from ``--load_mask_dir``; add ``--initial_value_checkpoint`` for a lottery ticket, which starts
from the mask source's step-0 values; without it, scratch-e, a fresh initialisation drawn with
``--seed`` moved by ``training.init_seed``, never the source's own). ``--lr_schedule`` picks
the paper's learning-rate schedule (``training/lr_schedules.py``): ``standard``, ``extended``
(§5.2) or a scratch-b scheme (Appendix E.6), and with it the ``--train_steps`` default (128,000
times the preset's length: 1.5 or 2). The VD eval threshold ``--log_alpha_threshold`` defaults
to the paper's ResNet-50 value, 0.5 (spec §1.5).

Reruns: the same command resumes from the newest intact checkpoint in ``--output_dir`` (a corrupt
one is skipped with a warning naming it), wherever the last run stopped — training, a checkpoint
write, the final evaluation or the export — and ends with the same files as an uninterrupted
run. A finished run is not redone: its results are reprinted. ``--train_steps`` (and how often
to checkpoint, log and evaluate, where the data lives, the strategy, ``--export``) may change
between invocations; the other flags are recorded in ``run.json`` and a rerun with other values
is a usage error naming them, before anything is written.

Outputs in ``--output_dir``: ``run.json``; ``checkpoints/`` (``ckpt-<step>.weights.h5`` every
``--steps_per_checkpoint`` steps, the step-0 values, ``model.json``, ``checkpoint.json``);
``logs/`` (TensorBoard: loss, accuracy, learning rate, per-layer and global sparsity,
regularizer weight); ``eval_history.json`` (``train_and_eval``: every evaluation so far);
``saved_model/`` (stripped, eval-mode; ``--noexport`` skips it); ``results.json`` (written last:
top-1, top-5, sparsity report, the history, the run's wall-clock ``seconds`` over all its
invocations). ``--mode=eval`` evaluates the newest checkpoint into ``eval.json``.

Fixes of the reference's flags (spec §10, items 19-23): ``--train_steps`` defaults to the paper's
128,000 (not 2); scratch and lottery modes are allowed values; setting both
``--first_layer_sparsity`` and ``--last_layer_sparsity`` keeps both.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from state_of_sparsity.paper import techniques  # noqa: E402
from state_of_sparsity.paper.cli import launch  # noqa: E402
from state_of_sparsity.paper.training import flags as harness_flags  # noqa: E402
from state_of_sparsity.paper.training import imagenet_flags  # noqa: E402
from state_of_sparsity.paper.training.errors import UsageError, usage_errors  # noqa: E402

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(harness_flags)
flags.adopt_module_key_flags(imagenet_flags)
BINARY = "train_resnet50"
# --train_steps defaults to the paper's 128,000 times the --lr_schedule preset's length.
PAPER_TRAIN_STEPS = 128000
DEFAULTS = {"dataset": "imagenet2012", "pruning_frequency": 2000, "log_alpha_threshold": 0.5,
            "eval_batch_size": 1000}  # fmt: skip
# Flags a rerun may change; every other flag is recorded in run.json and must match.
RERUN_MAY_CHANGE = frozenset({
    "output_dir", "data_dir", "manual_dir", "train_steps", "steps_per_checkpoint",
    "keep_checkpoint_max", "distribution_strategy", "tpu", "logical_cpus", "verbose",
    "log_every_steps", "export", "mode", "steps_per_eval", "eval_batch_size",
})  # fmt: skip
# The techniques (paper/techniques.py, with the paper's aliases baseline and threshold), and
# scratch: magnitude pruning's masks copied from a finished run and kept fixed.
SCRATCH = "scratch"

flags.DEFINE_enum("mode", "train_and_eval", ["train", "eval", "train_and_eval"], "What to run.")
# Data (also --dataset, --data_dir, --manual_dir, --data_format, --num_label_classes).
flags.DEFINE_integer("num_train_images", None, "Train images (default: the dataset's count).")
flags.DEFINE_integer("image_size", 224, "Input resolution.")
# Model and optimisation.
flags.DEFINE_enum("resnet_depth", "50", ["18", "34", "50", "101", "152", "200"], "Depth.")
flags.DEFINE_float("width", -1.0, "Channel multiplier; <= 0 means 1.")
flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"], "Compute precision.")
flags.DEFINE_float("base_learning_rate", 0.1, "Learning rate at batch 256 (scaled linearly).")
flags.DEFINE_string(
    "lr_schedule", "standard",
    "Learning-rate preset (training/lr_schedules.py): standard (warm-up 5 epochs, x0.1 at 30, 60, "
    "80), extended (1.5x: the 0.1 region to epoch 111), or a scratch-b scheme (2x): lr_scaled, "
    "lr_constant_final, lr_continual_decay, lr_constant_decay. Sets the --train_steps default.",
)  # fmt: skip
flags.DEFINE_float("momentum", 0.9, "Nesterov momentum.")
flags.DEFINE_float("weight_decay", 1e-4, "L2 coefficient on kernels: wd * sum(w^2) / 2.")
flags.DEFINE_float("label_smoothing", 0.1, "Label smoothing.")
flags.DEFINE_integer("train_batch_size", 1024, "Global train batch size.")
flags.DEFINE_integer("steps_per_eval", 1251, "Steps between evaluations (train_and_eval).")
# Sparsity.
flags.DEFINE_enum("pruning_method", "baseline", [*techniques.flag_values(), SCRATCH], "Technique.")
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
    """Checks flag values and combinations; reads and writes nothing."""
    from state_of_sparsity.paper.training import lr_schedules

    with usage_errors("--lr_schedule: "):
        length = lr_schedules.resnet_lr_preset(FLAGS.lr_schedule).length
    harness_flags.resolve_defaults(train_steps=round(PAPER_TRAIN_STEPS * length), **DEFAULTS)
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
    for name in ("keep_checkpoint_max", "log_every_steps", "sparsity_begin_step"):
        if getattr(FLAGS, name) < 0:
            raise UsageError(f"--{name}={getattr(FLAGS, name)} must be >= 0.")
    if FLAGS.num_train_images is not None and FLAGS.num_train_images < 1:
        raise UsageError(f"--num_train_images={FLAGS.num_train_images} must be >= 1.")
    if FLAGS.base_learning_rate <= 0:
        raise UsageError(f"--base_learning_rate={FLAGS.base_learning_rate} must be > 0.")
    if FLAGS.reg_scalar < 0:
        raise UsageError(f"--reg_scalar={FLAGS.reg_scalar} must be >= 0.")
    if FLAGS.sparsity_end_step <= FLAGS.sparsity_begin_step and technique().sparse:
        raise UsageError(
            f"--sparsity_begin_step={FLAGS.sparsity_begin_step} must be < "
            f"--sparsity_end_step={FLAGS.sparsity_end_step}."
        )
    if scratch() and not FLAGS.load_mask_dir:
        raise UsageError("--pruning_method=scratch needs --load_mask_dir (an MP run's checkpoint).")
    if not scratch() and (FLAGS.load_mask_dir or FLAGS.initial_value_checkpoint):
        raise UsageError(
            "--load_mask_dir / --initial_value_checkpoint need --pruning_method=scratch."
        )
    if FLAGS.init_method == "sparse" and technique().name != "magnitude_pruning":
        raise UsageError("--init_method=sparse is only valid with threshold (MP) or scratch.")
    if FLAGS.data_format == "tfrecord" and not FLAGS.data_dir:
        raise UsageError("--data_format=tfrecord needs --data_dir.")
    if FLAGS.data_format == "tfds" and FLAGS.manual_dir and not os.path.isdir(FLAGS.manual_dir):
        raise UsageError(f"--manual_dir={FLAGS.manual_dir!r} is not a directory.")
    overrides = layer_overrides() if technique().sparse else None  # checks the targets
    with usage_errors():
        techniques.check_structure(
            technique(), FLAGS.sparsity_pattern, FLAGS.sparsity_distribution, FLAGS.end_sparsity,
            overrides, fixed=scratch(),
        )  # fmt: skip


def check_schedules():
    """The schedule flags against --train_steps (see ``training.schedule_checks``)."""
    from state_of_sparsity.paper.training import schedule_checks

    def warn(message):
        launch.warn(BINARY, message)

    if technique().prunes and not scratch():
        names = ("--end_sparsity", "--sparsity_begin_step", "--sparsity_end_step",
                 "--pruning_frequency")  # fmt: skip
        schedule_checks.check_pruning(pruning_schedule(), FLAGS.train_steps, names, warn)
    elif technique().penalized:
        if FLAGS.reg_scalar == 0:
            warn(
                f"--reg_scalar=0: the {technique().name} penalty is off, so it will barely "
                "sparsify."
            )
        elif FLAGS.is_warm_up:
            schedule_checks.check_ramp(
                FLAGS.sparsity_begin_step, FLAGS.sparsity_end_step, FLAGS.train_steps,
                ("--sparsity_begin_step", "--sparsity_end_step"), warn,
            )  # fmt: skip


def recorded_flags() -> dict:
    """The flags that fix the model, data and optimisation: what run.json records."""
    return {
        flag.name: flag.value
        for flag in FLAGS.get_key_flags_for_module(__name__)
        if flag.name not in RERUN_MAY_CHANGE
    }


def technique():
    """The technique of --pruning_method (magnitude pruning for scratch)."""
    return techniques.resolve("magnitude_pruning" if scratch() else FLAGS.pruning_method)


def scratch() -> bool:
    """Whether this run trains the fixed masks of another run (scratch / lottery ticket)."""
    return FLAGS.pruning_method == SCRATCH


def pruning_schedule():
    return techniques.pruning_schedule(
        FLAGS.end_sparsity, FLAGS.sparsity_begin_step, FLAGS.sparsity_end_step,
        FLAGS.pruning_frequency, fixed=scratch(),
    )  # fmt: skip


def layer_overrides() -> dict:
    """Stem / final-layer targets from the flags (both may be set together)."""
    overrides = {}
    for layer, prune, target in (
        ("initial_conv", FLAGS.prune_first_layer, FLAGS.first_layer_sparsity),
        ("final_dense", FLAGS.prune_last_layer, FLAGS.last_layer_sparsity),
    ):
        if not prune:
            overrides[layer] = 0.0
        elif target >= 0:
            if not technique().prunes and target > 0:
                raise UsageError(f"Per-layer targets apply to MP/RP, not {technique().name}.")
            overrides[layer] = target
    return overrides


def build_model(num_classes):
    """The (sparsified, compiled) model for the flags; call inside the strategy's scope."""
    import keras

    from state_of_sparsity.paper.models import resnet
    from state_of_sparsity.paper.training import losses, lr_schedules
    from state_of_sparsity.paper.training.init_seed import init_seed

    if FLAGS.precision == "bfloat16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(
        init_seed(FLAGS.seed, fixed_masks=scratch(),
                  initial_values=bool(FLAGS.initial_value_checkpoint))
    )  # fmt: skip
    sparse_init = FLAGS.init_method == "sparse"
    model = resnet.resnet(
        int(FLAGS.resnet_depth),
        num_classes=num_classes,
        width=FLAGS.width if FLAGS.width > 0 else 1.0,
        input_shape=(FLAGS.image_size, FLAGS.image_size, 3),
        init_sparsity=FLAGS.end_sparsity if sparse_init else None,
        init_overrides=layer_overrides() if sparse_init else None,
        weight_decay=FLAGS.weight_decay,
    )
    model = techniques.sparsify(
        model,
        technique(),
        schedule=pruning_schedule(),
        overrides=layer_overrides() if technique().sparse else None,
        seed=FLAGS.seed,
        pattern=FLAGS.sparsity_pattern,
        distribution=FLAGS.sparsity_distribution,
        log_sigma2_init=FLAGS.log_sigma2_init,
        clip_log_alpha=FLAGS.clip_log_alpha,
        threshold=FLAGS.log_alpha_threshold,
        log_alpha_init=FLAGS.log_alpha_init,
    )
    num_train = FLAGS.num_train_images
    model.compile(
        optimizer=keras.optimizers.SGD(
            lr_schedules.ResNetLearningRate(
                FLAGS.base_learning_rate,
                FLAGS.train_batch_size,
                num_train,
                **lr_schedules.resnet_lr_preset(FLAGS.lr_schedule).arguments(),
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
    """The VD / L0 weight: ``--reg_scalar``, ramped linearly over the pruning steps with
    ``--is_warm_up`` (None for the other techniques)."""
    return techniques.penalty_ramp(
        technique(), FLAGS.reg_scalar, FLAGS.sparsity_begin_step, FLAGS.sparsity_end_step,
        "linear" if FLAGS.is_warm_up else "constant",
    )  # fmt: skip


def data(split, **kwargs):
    from state_of_sparsity.paper.data import imagenet

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
    from state_of_sparsity.paper.training.checkpoints import load_model_from_checkpoint

    with usage_errors("--load_mask_dir: "):
        source, _ = load_model_from_checkpoint(FLAGS.load_mask_dir)
        experiments.copy_masks(source, model, repr(FLAGS.load_mask_dir))
    if FLAGS.initial_value_checkpoint:
        with usage_errors("--initial_value_checkpoint: "):
            source, _ = load_model_from_checkpoint(FLAGS.initial_value_checkpoint)
            experiments.copy_initial_values(source, model, repr(FLAGS.initial_value_checkpoint))


def evaluate(model, eval_data):
    import state_of_sparsity as sos

    metrics = model.evaluate(eval_data, verbose=0, return_dict=True)
    report = sos.sparsity_report(model, threshold=FLAGS.log_alpha_threshold)
    return {
        "top_1": float(metrics["top_1"]),
        "top_5": float(metrics["top_5"]),
        "loss": float(metrics["loss"]),
        "global_sparsity": report.global_sparsity,
        "sparsity": report.to_dict(),
    }


def summary(step, result, path) -> str:
    return (
        f"step {step}: top-1 {result['top_1']:.4f}, top-5 {result['top_5']:.4f}, global "
        f"sparsity {result['global_sparsity']:.4f}; results in {path}"
    )


def finished_results(output_dir, step):
    """The results of this run when it is finished at ``step`` (results.json of that step and
    mode, with its SavedModel when --export), else None."""
    from state_of_sparsity.paper.training import checkpoints

    path = os.path.join(output_dir, "results.json")
    if step < FLAGS.train_steps or not os.path.isfile(path):
        return None
    results = checkpoints.read_json(path)
    if not isinstance(results, dict) or results.get("step") != step:
        return None
    if results.get("mode") != FLAGS.mode:
        return None
    saved_model = os.path.join(output_dir, "saved_model")
    if FLAGS.export and not (results.get("saved_model") and os.path.isdir(saved_model)):
        return None
    return results


def eval_only(model, output_dir):
    """--mode=eval: evaluates the latest intact checkpoint; writes eval.json."""
    from state_of_sparsity.paper.training import checkpoints, loop

    restored = loop.restore(model, loop.checkpoint_dir(output_dir), warn=_warn)
    if restored is None:
        raise UsageError(f"--mode=eval: no checkpoint in {loop.checkpoint_dir(output_dir)}.")
    step = restored[0]
    with usage_errors("--data_dir: "):
        eval_data = data("validation", batch_size=FLAGS.eval_batch_size)[0]
    result = evaluate(model, eval_data)
    path = os.path.join(output_dir, "eval.json")
    checkpoints.write_json(path, {"step": step, "eval": result})
    print(summary(step, result, path))
    return 0


def _warn(message):
    launch.warn(BINARY, message)


def run() -> int:
    from state_of_sparsity.paper.training import run_dir

    clock = run_dir.RunClock()
    validate()
    output_dir = FLAGS.output_dir
    run_dir.check_output_dir(output_dir)

    import keras

    import state_of_sparsity as sos
    from state_of_sparsity.paper.training import checkpoints, faults, loop, strategy

    checkpoint_dir = loop.checkpoint_dir(output_dir)
    checkpoints.read_index(checkpoint_dir)  # a corrupt index is an error before anything else
    if FLAGS.logical_cpus > 1:
        strategy.split_cpu(FLAGS.logical_cpus)
    strategy_ = strategy.make_strategy(FLAGS.distribution_strategy, FLAGS.tpu)
    print(f"{FLAGS.distribution_strategy} strategy: {strategy_.num_replicas_in_sync} replicas")
    with usage_errors("--data_dir: "):
        _, info = data("validation", batch_size=FLAGS.eval_batch_size)
        if FLAGS.mode != "eval":
            data("train", batch_size=FLAGS.train_batch_size, seed=FLAGS.seed)
    num_classes = info.num_classes
    if FLAGS.num_train_images is None:
        FLAGS.num_train_images = info.num_examples.get("train") or 1_281_167
    recorded = run_dir.check_record(output_dir, BINARY, recorded_flags())
    with strategy_.scope():
        model = build_model(num_classes)
    if FLAGS.mode == "eval":
        return eval_only(model, output_dir)
    check_schedules()
    restored = loop.restore(model, checkpoint_dir, warn=_warn)
    if restored is None and scratch():
        apply_scratch_checkpoints(model)
    # Everything is checked: from here on files are written.
    run_dir.create(output_dir)
    for path in run_dir.remove_stale_temporaries(output_dir):
        _warn(f"removed {path}, left by a killed run.")
    if not recorded:
        run_dir.write_record(output_dir, BINARY, recorded_flags())
    if restored is None:
        loop.initialize(model, checkpoint_dir)
        step = 0
    else:
        step, clock.base = restored
    results_path = os.path.join(output_dir, "results.json")
    finished = finished_results(output_dir, step)
    if finished is not None:
        print(f"already finished; {summary(step, finished['eval'], results_path)}")
        return 0

    with usage_errors("--data_dir: "):
        eval_data = data("validation", batch_size=FLAGS.eval_batch_size)[0]
    history_path = os.path.join(output_dir, "eval_history.json")
    history = []
    if FLAGS.mode == "train_and_eval" and os.path.isfile(history_path):
        history = [h for h in checkpoints.read_json(history_path) if h["step"] <= step]

    def evaluate_into_history():
        history.append({"step": step, **evaluate(model, eval_data)})
        checkpoints.write_json(history_path, history)
        print(f"step {step}: top-1 {history[-1]['top_1']:.4f}", flush=True)

    callbacks = [
        keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")),
        sos.SparsitySummaries(os.path.join(output_dir, "logs")),
    ]
    if FLAGS.log_every_steps:
        callbacks.append(loop.ProgressLog(FLAGS.log_every_steps, FLAGS.train_steps))
    if technique().sparse and not scratch():
        callbacks.insert(0, sos.SparsityCallback(regularizer_weight=regularizer_weight()))

    def train_data(initial_step):
        with usage_errors("--data_dir: "):
            return data(
                "train", batch_size=FLAGS.train_batch_size, seed=FLAGS.seed,
                initial_step=initial_step,
            )[0]  # fmt: skip

    evaluating = FLAGS.mode == "train_and_eval"
    due = step > 0 and (step % FLAGS.steps_per_eval == 0 or step >= FLAGS.train_steps)
    if evaluating and due and not (history and history[-1]["step"] == step):
        evaluate_into_history()  # a killed run's evaluation at its last checkpoint
    while step < FLAGS.train_steps:
        target = FLAGS.train_steps
        if evaluating:
            target = min(target, (step // FLAGS.steps_per_eval + 1) * FLAGS.steps_per_eval)
        step = loop.train_to_step(
            model,
            train_data,
            train_steps=target,
            output_dir=output_dir,
            steps_per_checkpoint=FLAGS.steps_per_checkpoint,
            keep_checkpoint_max=FLAGS.keep_checkpoint_max,
            callbacks=callbacks,
            clock=clock,
            verbose=FLAGS.verbose,
        )
        if evaluating:
            evaluate_into_history()
    faults.point("eval")
    if history and history[-1]["step"] == step:
        final = {k: v for k, v in history[-1].items() if k != "step"}
    else:
        final = evaluate(model, eval_data)
    saved_model = None
    if FLAGS.export:
        saved_model = sos.export_saved_model(
            model,
            os.path.join(output_dir, "saved_model"),
            threshold=FLAGS.log_alpha_threshold,
            sample_input=next(iter(eval_data))[0][:2].numpy(),
        )
        faults.point("export")
    results = {
        "flags": {f.name: f.value for f in FLAGS.get_key_flags_for_module(__name__)},
        "mode": FLAGS.mode,
        "step": step,
        "eval": final,
        "saved_model": saved_model,
        "seconds": clock(),
    }
    if evaluating:
        results["history"] = history
    checkpoints.write_json(results_path, results)
    print(summary(step, final, results_path))
    return 0


def _main(argv):
    return launch.guarded(run, BINARY, argv, __name__)


def main():
    launch.run(_main, __name__)


if __name__ == "__main__":
    main()
