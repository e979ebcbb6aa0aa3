"""The ImageNet input flags ``train_resnet50`` and ``evaluate_resnet50`` share.

Defined once here, so both binaries can live in one process (see ``training/flags.py``);
``--dataset`` and ``--data_dir`` are the harness flags of ``training/flags.py``.
"""

from __future__ import annotations

from absl import flags

flags.DEFINE_string("manual_dir", None, "Directory with the official ImageNet tars (tfds build).")
flags.DEFINE_enum("data_format", "tfds", ["tfds", "tfrecord"], "Input format.")
flags.DEFINE_integer("num_label_classes", 1000, "Classes (TFRecord format only; tfds knows).")
flags.DEFINE_integer(
    "eval_batch_size", None,
    "Eval batch size (default: 1000 for train_resnet50, 100 for evaluate_resnet50).",
)  # fmt: skip
