"""``train_lenet``: the paper's MNIST verification at small scale, all four techniques.

Trains LeNet-300-100 (or LeNet-5-Caffe) on MNIST-5k (5,000 real digits shipped with the
repository: 4,000 train, 1,000 test) densely and with magnitude pruning, random pruning,
variational dropout and L0 regularization; prints a table of test accuracy against sparsity,
plots it, and writes per technique a stripped SavedModel and TensorBoard logs. It re-runs, on
a small budget, the paper's Appendix B check of its VD code (LeNet-300-100 on MNIST: 97.52%
sparse at 98.42% accuracy, log α threshold 3, after 200 epochs on 60,000 digits).

Full MNIST (60,000 / 10,000 digits): ``--dataset=mnist`` reads tfds ``mnist`` prepared in
``--data_dir`` (nothing is downloaded). ``--setup=appendix_b`` sets every flag not given on the
command line to the paper's Table 3 setup (``APPENDIX_B``: full MNIST, VD, Molchanov et al.'s
released settings, thresholds 3, 2 and 0.1), so ``train_lenet --setup=appendix_b
--data_dir=DIR [--model=lenet5_caffe]`` reproduces a Table 3 row. Deliberate differences from
that code: Keras' default (glorot-uniform) init instead of N(0, 0.01²), and the KL weight ramps
per step rather than per epoch.

Defaults (60 epochs of batch 100, Adam 3e-3) take a few minutes on 2 CPU cores and give ≥ 90%
sparsity for every technique. MP/RP follow PolynomialDecay(0 → target) from
``--begin_pruning_step`` to ``--end_pruning_step``; VD/L0 weights ramp linearly from
``--reg_begin_step`` to ``--reg_end_step`` (end -1: 60% / 20% of the training steps).

Outputs in ``--output_dir``: ``run.json`` (the flags of the table, see below),
``results.json`` (rewritten after each technique), ``results.txt``, ``results.png``,
``saved_model/<technique>/``, ``logs/<technique>/`` (TensorBoard).

One table per output directory: a run adds the rows of the techniques it trains to the table
already there and keeps the others (``--technique=random_pruning`` after a ``dense`` run gives a
two-row table); a technique whose row is already there is not retrained (a rerun after a kill
trains only the missing rows; a rerun of a finished run reprints the table). Rows must be
comparable, so every flag but ``--technique``, ``--verbose`` and ``--output_dir`` is recorded
in ``run.json``, and a run with other values is a usage error naming them, before anything is
written. Exit statuses as every binary (``cli/launch.py``).
"""

from __future__ import annotations

import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from state_of_sparsity.paper import techniques  # noqa: E402
from state_of_sparsity.paper.cli import launch  # noqa: E402
from state_of_sparsity.paper.training.errors import UsageError, usage_errors  # noqa: E402

BINARY = "train_lenet"
RERUN_MAY_CHANGE = frozenset({"technique", "verbose", "output_dir"})
TECHNIQUES = tuple(techniques.TECHNIQUES)  # dense, then the four techniques

# Per-epoch learning-rate factors, f(epoch from 0, epochs); Molchanov et al.'s optpolicy:
# lr_linear_to0 (their LeNet-5) and lr_linear (their LeNet-300-100, written for 200 epochs).
LR_DECAYS = {
    "none": lambda epoch, epochs: 1.0,
    "linear": lambda epoch, epochs: max(0.0, 1.0 - epoch / epochs),
    "linear_second_half": lambda epoch, epochs: max(0.0, min(2.0 - 2.0 * epoch / epochs, 1.0)),
}
# The paper's Appendix B / Table 3 (VD on full MNIST, "Ours" rows at log α thresholds 3, 2 and
# 0.1), after Molchanov et al.'s released Lasagne code (experiments/lenet/*-ard.py): Adam 1e-3,
# batch 100, 200 epochs, the ELBO's KL at weight 1/N per example (N = 60,000), its weight
# ramped 0 -> 1 from epoch 5 to epoch 20 (600 steps an epoch), train-time clip of log α at ±8
# (the wrapper's default). LeNet-300-100 keeps the learning rate for 100 epochs and then decays
# it linearly to 0; LeNet-5-Caffe decays it linearly from the start.
_APPENDIX_B_COMMON = {
    "dataset": "mnist", "technique": "variational_dropout", "epochs": 200, "batch_size": 100,
    "learning_rate": 1e-3, "kl_weight": 1 / 60000, "reg_ramp": "linear",
    "reg_begin_step": 5 * 600, "reg_end_step": 20 * 600,
    "log_alpha_threshold": ["3.0", "2.0", "0.1"],
}  # fmt: skip
APPENDIX_B = {
    "lenet_300_100": {**_APPENDIX_B_COMMON, "learning_rate_decay": "linear_second_half"},
    "lenet5_caffe": {**_APPENDIX_B_COMMON, "learning_rate_decay": "linear"},
}


def _flag_text(value) -> str:
    return ",".join(value) if isinstance(value, list) else f"{value:g}" if isinstance(
        value, float) else str(value)  # fmt: skip


FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "lenet_300_100", ["lenet_300_100", "lenet5_caffe"], "Network.")
flags.DEFINE_string("technique", "all", f"One of {', '.join(TECHNIQUES)}, or 'all'.")
flags.DEFINE_float("target_sparsity", 0.95, "Final sparsity of magnitude / random pruning.")
flags.DEFINE_integer("begin_pruning_step", 0, "First step of the pruning schedule.")
flags.DEFINE_integer(
    "end_pruning_step", -1, "Last step of the pruning schedule; -1: 60% of training."
)
flags.DEFINE_integer("pruning_frequency", 20, "Steps between mask updates.")
flags.DEFINE_float("kl_weight", 7.5e-5, "VD KL weight, 1/N included (0.3 / 4,000 examples).")
flags.DEFINE_float("l0_weight", 5e-4, "L0 penalty weight, 1/N included (2 / 4,000 examples).")
flags.DEFINE_enum("reg_ramp", "linear", ["constant", "linear", "cubic"], "VD / L0 weight ramp.")
flags.DEFINE_integer("reg_begin_step", 0, "Start of the VD / L0 weight ramp.")
flags.DEFINE_integer("reg_end_step", -1, "End of the VD / L0 weight ramp; -1: 20% of training.")
flags.DEFINE_list(
    "log_alpha_threshold",
    ["3.0", "2.0", "1.0", "0.5"],
    "VD log α thresholds to report; the first is used for the table row and the SavedModel.",
)
flags.DEFINE_float("learning_rate", 3e-3, "Adam learning rate.")
flags.DEFINE_integer("epochs", 60, "Training epochs per technique.")
flags.DEFINE_integer("batch_size", 100, "Batch size.")
flags.DEFINE_integer("seed", 0, "Random seed (initialization, shuffling, noise).")
flags.DEFINE_string("output_dir", "out/train_lenet", "Where results and artifacts go.")
flags.DEFINE_enum(
    "dataset", "mnist5k", ["mnist5k", "mnist"],
    "mnist5k: the 5,000 digits shipped with the package; mnist: full MNIST from tfds.",
)  # fmt: skip
flags.DEFINE_string("data_path", None, "mnist_5k.csv.gz (default: the repository's testdata).")
flags.DEFINE_string("data_dir", None, "--dataset=mnist: the tfds data_dir holding prepared mnist.")
flags.DEFINE_enum(
    "learning_rate_decay", "none", list(LR_DECAYS),
    "Per-epoch learning-rate decay: none; linear: lr·(1 - e/E); linear_second_half: "
    "lr·min(2 - 2e/E, 1) (e: epoch from 0, E: --epochs).",
)  # fmt: skip
flags.DEFINE_enum(
    "setup", "default", ["default", "appendix_b"],
    "appendix_b: the paper's Table 3 setup (Molchanov et al.'s released LeNet VD code) for every "
    "flag not given on the command line: " + "; ".join(
        f"{model}: " + " ".join(f"--{k}={_flag_text(v)}" for k, v in values.items())
        for model, values in APPENDIX_B.items()
    ),
)  # fmt: skip
flags.DEFINE_integer("verbose", 1, "Keras fit verbosity: 0 silent, 1 progress bar, 2 one line.")


def _apply_setup() -> None:
    """``--setup=appendix_b``: its values for the flags not given on the command line."""
    if FLAGS.setup == "appendix_b":
        for name, value in APPENDIX_B[FLAGS.model].items():
            if not FLAGS[name].present:
                FLAGS[name].value = value


def _validated():
    """Checks every flag before anything is written; returns (techniques, thresholds)."""
    _apply_setup()
    if FLAGS.dataset == "mnist" and FLAGS.data_path:
        raise UsageError("--data_path is MNIST-5k's file; --dataset=mnist reads --data_dir.")
    if FLAGS.dataset == "mnist5k" and FLAGS.data_dir:
        raise UsageError("--data_dir is for --dataset=mnist; MNIST-5k reads --data_path.")
    if FLAGS.technique == "all":
        names = TECHNIQUES
    else:
        with usage_errors("--technique: "):
            names = (techniques.resolve(FLAGS.technique).name,)
    if not 0.0 <= FLAGS.target_sparsity < 1.0:
        raise UsageError(f"--target_sparsity={FLAGS.target_sparsity} must be in [0, 1).")
    for name in ("epochs", "batch_size", "pruning_frequency"):
        if getattr(FLAGS, name) < 1:
            raise UsageError(f"--{name}={getattr(FLAGS, name)} must be >= 1.")
    for name in ("kl_weight", "l0_weight", "learning_rate"):
        if not getattr(FLAGS, name) >= 0:
            raise UsageError(f"--{name}={getattr(FLAGS, name)} must be >= 0.")
    for name in ("begin_pruning_step", "reg_begin_step"):
        if getattr(FLAGS, name) < 0:
            raise UsageError(f"--{name}={getattr(FLAGS, name)} must be >= 0.")
    try:
        thresholds = [float(t) for t in FLAGS.log_alpha_threshold]
    except ValueError:
        thresholds = [math.nan]
    if not all(math.isfinite(t) for t in thresholds):
        raise UsageError(
            f"--log_alpha_threshold={','.join(FLAGS.log_alpha_threshold)} must be finite numbers."
        )
    if not thresholds:
        raise UsageError("--log_alpha_threshold needs at least one value.")
    return names, thresholds


def _schedules(selected, steps: int):
    import state_of_sparsity as sos
    from state_of_sparsity.paper.training import schedule_checks

    def warn(message):
        launch.warn(BINARY, message)

    end = FLAGS.end_pruning_step if FLAGS.end_pruning_step >= 0 else int(0.6 * steps)
    if end <= FLAGS.begin_pruning_step:
        raise UsageError(
            f"The pruning schedule ends (step {end}) before it begins "
            f"(--begin_pruning_step={FLAGS.begin_pruning_step})."
        )
    pruning = sos.PolynomialDecay(
        0.0, FLAGS.target_sparsity, FLAGS.begin_pruning_step, end, frequency=FLAGS.pruning_frequency
    )
    if any(techniques.resolve(name).prunes for name in selected):
        names = ("--target_sparsity", "--begin_pruning_step", "--end_pruning_step",
                 "--pruning_frequency")  # fmt: skip
        schedule_checks.check_pruning(pruning, steps, names, warn)
    reg_end = FLAGS.reg_end_step if FLAGS.reg_end_step >= 0 else max(1, int(0.2 * steps))
    if FLAGS.reg_ramp != "constant" and reg_end <= FLAGS.reg_begin_step:
        raise UsageError(
            f"The regularizer ramp ends (step {reg_end}) before it begins "
            f"(--reg_begin_step={FLAGS.reg_begin_step})."
        )
    if FLAGS.reg_ramp != "constant" and any(techniques.resolve(n).penalized for n in selected):
        schedule_checks.check_ramp(
            FLAGS.reg_begin_step, reg_end, steps, ("--reg_begin_step", "--reg_end_step"), warn
        )

    weights = {"variational_dropout": FLAGS.kl_weight, "l0_regularization": FLAGS.l0_weight}
    ramps = {
        name: techniques.penalty_ramp(
            techniques.resolve(name), weight, FLAGS.reg_begin_step, reg_end, FLAGS.reg_ramp
        )
        for name, weight in weights.items()
    }
    return pruning, ramps


def _train_one(technique, data, pruning, ramps, thresholds, output_dir):
    import keras
    import numpy as np

    import state_of_sparsity as sos
    from state_of_sparsity.paper.models import lenet

    (x, y), (x_test, y_test) = data
    keras.utils.set_random_seed(FLAGS.seed)
    model = lenet.build(FLAGS.model)
    callbacks = [keras.callbacks.TensorBoard(os.path.join(output_dir, "logs", technique))]
    kind = techniques.resolve(technique)
    model = techniques.sparsify(
        model, kind, schedule=pruning, seed=FLAGS.seed, threshold=thresholds[0]
    )
    if kind.sparse:
        callbacks += [
            sos.SparsityCallback(regularizer_weight=ramps.get(technique)),
            sos.SparsitySummaries(os.path.join(output_dir, "logs", technique)),
        ]
    model.compile(
        keras.optimizers.Adam(FLAGS.learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    print(f"\n=== {technique} ({FLAGS.model}) ===", flush=True)
    start = time.time()
    decay = LR_DECAYS[FLAGS.learning_rate_decay]
    if FLAGS.learning_rate_decay != "none":
        callbacks.append(keras.callbacks.LearningRateScheduler(
            lambda epoch: FLAGS.learning_rate * decay(epoch, FLAGS.epochs)
        ))  # fmt: skip
    model.fit(
        x, y, batch_size=FLAGS.batch_size, epochs=FLAGS.epochs, verbose=FLAGS.verbose,
        callbacks=callbacks,
    )  # fmt: skip
    train_seconds = time.time() - start

    def measure(**options):
        accuracy = float(model.evaluate(x_test, y_test, batch_size=500, verbose=0)[1])
        if not kind.sparse:
            return {"accuracy": accuracy, "global_sparsity": 0.0}
        report = sos.sparsity_report(model, **options)
        return {
            "accuracy": accuracy,
            "global_sparsity": report.global_sparsity,
            "nonzeros": report.nonzeros,
            "weights": report.weights,
            "layers": [row.to_dict() for row in report.layers],
        }

    if kind.sparse and "threshold" in sos.TECHNIQUES[technique].eval_options:  # VD's τ sweep
        sweep = {}
        for threshold in thresholds:
            sos.set_threshold(model, threshold)
            sweep[str(threshold)] = measure(threshold=threshold)
        sos.set_threshold(model, thresholds[0])
        result = {**sweep[str(thresholds[0])], "threshold": thresholds[0], "thresholds": sweep}
    else:
        result = measure()
    if not kind.sparse:
        kernels = [np.asarray(layer.kernel) for layer in model.layers if hasattr(layer, "kernel")]
        result["weights"] = int(sum(k.size for k in kernels))
        result["nonzeros"] = int(sum(np.count_nonzero(k) for k in kernels))
    path = os.path.join(output_dir, "saved_model", technique)
    sos.export_saved_model(model, path, sample_input=x_test[:8])
    result.update(train_seconds=train_seconds, saved_model=path)
    return result


def _table(results) -> str:
    header = ("technique", "accuracy", "sparsity", "non-zeros", "weights", "train s")
    rows = []
    for technique, r in results.items():
        name = technique
        if "threshold" in r:
            name = f"{technique} (τ={r['threshold']:g})"
        rows.append(
            (
                name,
                f"{r['accuracy']:.4f}",
                f"{r['global_sparsity']:.2%}",
                f"{r['nonzeros']:,}",
                f"{r['weights']:,}",
                f"{r['train_seconds']:.0f}",
            )  # fmt: skip
        )
        for tau, sweep in r.get("thresholds", {}).items():
            if float(tau) != r["threshold"]:
                rows.append(
                    (f"  τ={float(tau):g}", f"{sweep['accuracy']:.4f}",
                     f"{sweep['global_sparsity']:.2%}", f"{sweep['nonzeros']:,}", "", "")
                )  # fmt: skip
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def _plot(results, config, path) -> None:
    """``results.png``: the table as a LeNet panel of ``plot_results`` (same drawing code)."""
    from state_of_sparsity.paper.results import benchmarks, plots, run_dirs

    panel = (benchmarks.lenet(FLAGS.model), run_dirs.lenet_runs(results, config))
    plots.results_figure([panel], path)


def _existing_results(output_dir, recorded):
    """The rows already in ``output_dir``'s table (those of a run made before ``run.json``
    existed only if its recorded config matches)."""
    from state_of_sparsity.paper.training import run_dir
    from state_of_sparsity.paper.training.checkpoints import read_json

    path = os.path.join(output_dir, "results.json")
    if not os.path.isfile(path):
        return {}
    content = read_json(path)
    if not isinstance(content, dict) or not isinstance(content.get("results"), dict):
        raise UsageError(f"{path} is corrupt (not a results table).")
    if not recorded:
        config = content.get("config") or {}
        run_dir.check_flags(
            output_dir, {k: v for k, v in config.items() if k not in RERUN_MAY_CHANGE},
            _recorded_flags(),
        )  # fmt: skip
    return content["results"]


def _recorded_flags() -> dict:
    return {
        flag.name: flag.value
        for flag in FLAGS.get_key_flags_for_module(__name__)
        if flag.name not in RERUN_MAY_CHANGE
    }


def run() -> int:
    techniques, thresholds = _validated()
    from state_of_sparsity.paper.data import mnist5k
    from state_of_sparsity.paper.training import run_dir
    from state_of_sparsity.paper.training.checkpoints import write_json
    from state_of_sparsity.paper.training.errors import usage_errors

    output_dir = FLAGS.output_dir
    run_dir.check_output_dir(output_dir)
    recorded = run_dir.check_record(output_dir, BINARY, _recorded_flags())
    results = _existing_results(output_dir, recorded)
    if FLAGS.dataset == "mnist":
        from state_of_sparsity.paper.data import mnist

        with usage_errors():
            data = mnist.load(FLAGS.data_dir)
    else:
        with usage_errors(f"--data_path={FLAGS.data_path or mnist5k.DEFAULT_PATH}: ",
                          (ValueError, OSError, EOFError)):  # fmt: skip
            data = mnist5k.load(FLAGS.data_path)
    steps = FLAGS.epochs * -(-len(data[0][0]) // FLAGS.batch_size)
    todo = [t for t in techniques if t not in results]
    pruning, ramps = _schedules(todo, steps)
    # Everything is checked: from here on files are written.
    run_dir.create(output_dir)
    for path in run_dir.remove_stale_temporaries(output_dir):
        launch.warn(BINARY, f"removed {path}, left by a killed run.")
    if not recorded:
        run_dir.write_record(output_dir, BINARY, _recorded_flags())
    for technique in techniques:
        if technique not in todo:
            print(f"{technique}: already in {output_dir}/results.json", flush=True)
    config = {flag.name: flag.value for flag in FLAGS.get_key_flags_for_module(__name__)}
    for technique in todo:
        results[technique] = _train_one(technique, data, pruning, ramps, thresholds, output_dir)
        results = {t: results[t] for t in TECHNIQUES if t in results}
        write_json(
            os.path.join(output_dir, "results.json"),
            {"config": config, "train_steps": steps, "results": results},
        )
    table = _table(results)
    name = {"mnist5k": "MNIST-5k", "mnist": "MNIST"}[FLAGS.dataset]
    print(f"\n{FLAGS.model} on {name} ({len(data[0][0])} train / {len(data[1][0])} test)")
    print(table)
    text = os.path.join(output_dir, "results.txt")
    with open(f"{text}.tmp", "w") as f:
        f.write(table + "\n")
    os.replace(f"{text}.tmp", text)
    _plot(results, config, os.path.join(output_dir, "results.png"))
    print(f"\nResults, plot, SavedModels and TensorBoard logs in {output_dir}")
    return 0


def _main(argv):
    return launch.guarded(run, BINARY, argv, __name__)


def main():
    """Console-script entry point."""
    launch.run(_main, __name__)


if __name__ == "__main__":
    main()
