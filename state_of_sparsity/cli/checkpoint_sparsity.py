"""``checkpoint_sparsity``: the global (and per-layer) sparsity of a checkpoint (spec §7).

Works for any model trained by the harness (ResNet and Transformer alike): the model is rebuilt
from the ``model.json`` beside the checkpoint. Global sparsity is zeros / size over the
sparsified tensors only, on the eval-time kernels: masks for MP/RP, 1[log α < τ] for VD with
``--log_alpha_threshold`` (default: the model's own), the test-time gates for L0. Prints the
reference tool's line, ``<checkpoint> global sparsity = <percent>%``.
"""

from __future__ import annotations

import logging as std_logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags, logging  # noqa: E402

from state_of_sparsity.cli import launch  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "A ckpt-<step>.weights.h5 file, or a checkpoint directory.")
flags.DEFINE_float("log_alpha_threshold", None, "VD threshold (default: the model's own).")
flags.DEFINE_bool("per_layer", False, "Also print the per-layer table.")


def _main(argv):
    logging.set_verbosity(logging.WARNING)
    std_logging.getLogger("tensorflow").setLevel(std_logging.ERROR)
    import state_of_sparsity as sos
    from state_of_sparsity.training.checkpoints import load_model_from_checkpoint

    if len(argv) > 1 or not FLAGS.checkpoint:
        print(
            "checkpoint_sparsity: error: give --checkpoint (and no other arguments)",
            file=sys.stderr,
        )
        return 2
    try:
        model, _ = load_model_from_checkpoint(FLAGS.checkpoint)
    except (ValueError, FileNotFoundError) as error:
        print(f"checkpoint_sparsity: error: {error}", file=sys.stderr)
        return 2
    options = {}
    if FLAGS.log_alpha_threshold is not None:
        options["threshold"] = FLAGS.log_alpha_threshold
    report = sos.sparsity_report(model, **options)
    if FLAGS.per_layer:
        print(report)
    print(f"{FLAGS.checkpoint} global sparsity = {100 * report.global_sparsity}%")
    return 0


def main():
    launch.run(_main, __name__)


if __name__ == "__main__":
    main()
