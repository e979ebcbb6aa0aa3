"""``evaluate_resnet50``: top-1, top-5 and global sparsity of one ResNet checkpoint.

The model is rebuilt from the ``model.json`` that ``train_resnet50`` writes beside its
checkpoints, so any technique and depth evaluates the same way. ``--checkpoint``: a
``ckpt-<step>.weights.h5`` file, a ``checkpoints/`` directory or a run's ``--output_dir`` (its
latest checkpoint). A variational-dropout model is evaluated at ``--log_alpha_threshold``,
default the paper's 0.5 (every ResNet-50 VD number of the paper, and its ``evaluate_vd.sh`` for
the released models: spec §1.5, §4.7), whatever threshold it was trained with; the result then
records ``threshold``. Exit statuses
as every binary (``cli/launch.py``); a checkpoint of another model, or a corrupt one, is a usage
error naming the file.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from state_of_sparsity.paper.cli import launch  # noqa: E402
from state_of_sparsity.paper.training import flags as harness_flags  # noqa: E402
from state_of_sparsity.paper.training import imagenet_flags, tool_flags  # noqa: E402
from state_of_sparsity.paper.training.errors import UsageError, usage_errors  # noqa: E402

FLAGS = flags.FLAGS
BINARY = "evaluate_resnet50"
flags.adopt_module_key_flags(imagenet_flags)
flags.adopt_module_key_flags(tool_flags)
for _name in ("log_alpha_threshold", "dataset", "data_dir"):  # the harness flags it reads
    flags.declare_key_flag(_name)
flags.DEFINE_string("output_json", None, "Also write the results here.")


def run() -> dict:
    harness_flags.resolve_defaults(
        dataset="imagenet2012", eval_batch_size=100, log_alpha_threshold=0.5
    )
    if not FLAGS.checkpoint:
        raise UsageError("--checkpoint is required.")
    if FLAGS.eval_batch_size < 1:
        raise UsageError(f"--eval_batch_size={FLAGS.eval_batch_size} must be >= 1.")
    if FLAGS.output_json:
        from state_of_sparsity.paper.training import run_dir

        run_dir.check_output_file(FLAGS.output_json, "output_json")

    import keras

    import state_of_sparsity as sos
    from state_of_sparsity.paper.data import imagenet
    from state_of_sparsity.paper.training.checkpoints import load_model_from_checkpoint

    model, step = load_model_from_checkpoint(FLAGS.checkpoint, kind="resnet")
    options = {}
    if sos.set_threshold(model, FLAGS.log_alpha_threshold):
        options["threshold"] = FLAGS.log_alpha_threshold
    model.compile(
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="top_1"),
            keras.metrics.SparseTopKCategoricalAccuracy(5, name="top_5"),
        ],
        loss=None,
    )
    with usage_errors("--data_dir: "):
        data, info = imagenet.load(
            "validation",
            batch_size=FLAGS.eval_batch_size,
            image_size=int(model.input_shape[1]),
            dataset=FLAGS.dataset,
            data_dir=FLAGS.data_dir,
            manual_dir=FLAGS.manual_dir,
            data_format=FLAGS.data_format,
            num_classes=FLAGS.num_label_classes,
        )
    if info.num_classes != model.output_shape[-1]:
        raise UsageError(
            f"--dataset={FLAGS.dataset} has {info.num_classes} classes, the model "
            f"{model.output_shape[-1]}."
        )
    metrics = model.evaluate(data, verbose=0, return_dict=True)
    report = sos.sparsity_report(model, **options)
    return {
        "checkpoint": FLAGS.checkpoint,
        "step": step,
        "top_1": float(metrics["top_1"]),
        "top_5": float(metrics["top_5"]),
        "global_sparsity": report.global_sparsity,
        **options,
    }


def _evaluate_and_report() -> int:
    from state_of_sparsity.paper.training.checkpoints import write_json

    result = run()
    print(
        f"{result['checkpoint']} (step {result['step']}): top-1 {result['top_1']:.4f}, "
        f"top-5 {result['top_5']:.4f}, global sparsity {result['global_sparsity']:.4f}"
    )
    if FLAGS.output_json:
        write_json(FLAGS.output_json, result)
    return 0


def _main(argv):
    return launch.guarded(_evaluate_and_report, BINARY, argv, __name__)


def main():
    launch.run(_main, __name__)


if __name__ == "__main__":
    main()
