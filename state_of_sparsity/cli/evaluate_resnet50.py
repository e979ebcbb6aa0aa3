"""``evaluate_resnet50``: top-1, top-5 and global sparsity of one ResNet checkpoint.

The model is rebuilt from the ``model.json`` that ``train_resnet50`` writes beside its
checkpoints, so any technique and depth evaluates the same way. ``--log_alpha_threshold``
evaluates a variational-dropout model at another threshold without retraining (the paper's
released ResNet-50 VD models used 0.5).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from state_of_sparsity.cli import launch  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "A ckpt-<step>.weights.h5 file, or a checkpoint directory.")
flags.DEFINE_float("log_alpha_threshold", None, "VD threshold (default: the model's own).")
flags.DEFINE_string("dataset", "imagenet2012", "tfds image-classification dataset.")
flags.DEFINE_string("data_dir", None, "tfds data_dir, or the TFRecord directory.")
flags.DEFINE_string("manual_dir", None, "Directory with the official ImageNet tars.")
flags.DEFINE_enum("data_format", "tfds", ["tfds", "tfrecord"], "Input format.")
flags.DEFINE_integer("num_label_classes", 1000, "Classes (TFRecord format only).")
flags.DEFINE_integer("eval_batch_size", 100, "Eval batch size.")
flags.DEFINE_string("output_json", None, "Also write the results here.")


def run() -> dict:
    import keras

    import state_of_sparsity as sos
    from state_of_sparsity.data import imagenet
    from state_of_sparsity.training.checkpoints import load_model_from_checkpoint

    if not FLAGS.checkpoint:
        raise ValueError("--checkpoint is required.")
    model, step = load_model_from_checkpoint(FLAGS.checkpoint)
    options = {}
    if FLAGS.log_alpha_threshold is not None:
        sos.set_threshold(model, FLAGS.log_alpha_threshold)
        options["threshold"] = FLAGS.log_alpha_threshold
    model.compile(
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="top_1"),
            keras.metrics.SparseTopKCategoricalAccuracy(5, name="top_5"),
        ],
        loss=None,
    )
    data, _ = imagenet.load(
        "validation",
        batch_size=FLAGS.eval_batch_size,
        image_size=int(model.input_shape[1]),
        dataset=FLAGS.dataset,
        data_dir=FLAGS.data_dir,
        manual_dir=FLAGS.manual_dir,
        data_format=FLAGS.data_format,
        num_classes=FLAGS.num_label_classes,
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
    from state_of_sparsity.training.checkpoints import write_json

    result = run()
    print(
        f"{result['checkpoint']} (step {result['step']}): top-1 {result['top_1']:.4f}, "
        f"top-5 {result['top_5']:.4f}, global sparsity {result['global_sparsity']:.4f}"
    )
    if FLAGS.output_json:
        write_json(FLAGS.output_json, result)
    return 0


def _main(argv):
    return launch.guarded(_evaluate_and_report, "evaluate_resnet50", argv)


def main():
    launch.run(_main, __name__)


if __name__ == "__main__":
    main()
