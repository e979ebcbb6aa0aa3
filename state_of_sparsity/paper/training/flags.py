"""The absl flags every training binary shares (``train_resnet50``, ``train_transformer``; the
tools, ``plot_results`` included, use some of them too).

Defined once here, so the binaries can live in one process (a notebook, the in-process
integration tests). Flags whose default differs per binary default to None here and are filled
in by ``resolve_defaults`` when the binary starts (the help text names each binary's default).
"""

from __future__ import annotations

from absl import flags

__all__ = ["resolve_defaults"]

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "output_dir", None,
    "Checkpoints, logs, SavedModel and results.json (plot_results: its figures and table; "
    "default out/plot_results).",
)  # fmt: skip
flags.DEFINE_string(
    "dataset", None,
    "tfds dataset (default: imagenet2012 for train_resnet50 and evaluate_resnet50, "
    "wmt14_translate/de-en for train_transformer).",
)  # fmt: skip
flags.DEFINE_string("data_dir", None, "tfds data_dir (prepared data), or the TFRecord directory.")
flags.DEFINE_integer(
    "train_steps", None,
    "Optimizer steps (default: the paper's, 128,000 for ResNet-50 times its --lr_schedule's "
    "length, 500,000 for the Transformer).",
)  # fmt: skip
flags.DEFINE_integer("steps_per_checkpoint", 1000, "Steps between checkpoints.")
flags.DEFINE_integer("keep_checkpoint_max", 0, "Checkpoints kept (0: all).")
flags.DEFINE_enum(
    "distribution_strategy", "default", ["default", "mirrored", "multi_worker_mirrored", "tpu"],
    "tf.distribute strategy.",
)  # fmt: skip
flags.DEFINE_string("tpu", None, "TPU address (--distribution_strategy=tpu).")
flags.DEFINE_integer("logical_cpus", 0, "> 1: split the CPU into that many devices (for testing).")
flags.DEFINE_integer("seed", 0, "Seed of initialisation, data order, augmentation and noise.")
flags.DEFINE_integer("verbose", 2, "Keras fit verbosity (its lines come once per checkpoint).")
flags.DEFINE_integer(
    "log_every_steps", 100, "Print the step, loss and steps/s every this many steps (0: never)."
)
flags.DEFINE_bool("export", True, "Write the SavedModel at the end (--noexport: skip it).")
flags.DEFINE_integer(
    "pruning_frequency", None,
    "Steps between mask updates (default: 2,000 for ResNet-50, 10,000 for the Transformer).",
)  # fmt: skip
flags.DEFINE_string(
    "sparsity_pattern", "",
    "MP / RP structure: '' (unstructured), 'N:M' (at most N of every M inputs kept, e.g. 2:4; "
    "the target sparsity must be 1 - N/M) or 'RxC' blocks ranked by L2 norm (e.g. 1x4, 4x4).",
)  # fmt: skip
flags.DEFINE_enum(
    "sparsity_distribution", "uniform", ["uniform", "global", "erk"],
    "MP / RP: how the target spreads over layers: uniform (each layer at it, the paper), "
    "global (one magnitude threshold for all) or erk (Erdos-Renyi-kernel densities).",
)  # fmt: skip
flags.DEFINE_float("clip_log_alpha", 8.0, "VD training clip of log alpha.")
flags.DEFINE_float(
    "log_alpha_threshold", None,
    "VD eval threshold: a weight is pruned iff log alpha >= it (default: the paper's 0.5 for "
    "train_resnet50 and evaluate_resnet50, 3.0 for train_transformer, the model's own for the "
    "other tools).",
)  # fmt: skip


def resolve_defaults(**defaults) -> None:
    """Gives every flag in ``defaults`` that was left unset (None) the binary's default."""
    for name, value in defaults.items():
        if FLAGS[name].value is None:
            FLAGS[name].value = value
