"""The ``--checkpoint`` flag of the tools that read a run (``evaluate_resnet50``,
``checkpoint_sparsity``, ``decode_transformer``), defined once so they can share a process."""

from __future__ import annotations

from absl import flags

flags.DEFINE_string(
    "checkpoint", None,
    "A ckpt-<step>.weights.h5 file, a checkpoints/ directory (its latest checkpoint) or a run's "
    "--output_dir.",
)  # fmt: skip
