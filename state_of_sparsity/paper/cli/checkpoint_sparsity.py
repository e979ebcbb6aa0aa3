"""``checkpoint_sparsity``: the global (and per-layer) sparsity of a checkpoint (spec §7).

Works for any model trained by the harness (ResNet and Transformer alike): the model is rebuilt
from the ``model.json`` beside the checkpoint. Global sparsity is zeros / size over the
sparsified tensors only, on the eval-time kernels: masks for MP/RP, 1[log α < τ] for VD with
``--log_alpha_threshold`` (default: the model's own), the test-time gates for L0. Prints the
reference tool's line, ``<checkpoint> global sparsity = <percent>%``. Exit statuses as every
binary (``cli/launch.py``); a corrupt checkpoint is a usage error naming the file.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from state_of_sparsity.paper.cli import launch  # noqa: E402
from state_of_sparsity.paper.training import flags as harness_flags  # noqa: E402, F401
from state_of_sparsity.paper.training import tool_flags  # noqa: E402
from state_of_sparsity.paper.training.errors import UsageError  # noqa: E402

FLAGS = flags.FLAGS
BINARY = "checkpoint_sparsity"
flags.adopt_module_key_flags(tool_flags)
flags.declare_key_flag("log_alpha_threshold")  # defined with the harness flags
flags.DEFINE_bool("per_layer", False, "Also print the per-layer table.")


def run() -> int:
    if not FLAGS.checkpoint:
        raise UsageError("--checkpoint is required.")
    import state_of_sparsity as sos
    from state_of_sparsity.paper.training.checkpoints import load_model_from_checkpoint

    model, _ = load_model_from_checkpoint(FLAGS.checkpoint)
    options = {}
    if FLAGS.log_alpha_threshold is not None:
        options["threshold"] = FLAGS.log_alpha_threshold
    report = sos.sparsity_report(model, **options)
    if FLAGS.per_layer:
        print(report)
    print(f"{FLAGS.checkpoint} global sparsity = {100 * report.global_sparsity}%")
    return 0


def _main(argv):
    return launch.guarded(run, BINARY, argv, __name__)


def main():
    launch.run(_main, __name__)


if __name__ == "__main__":
    main()
