"""``plot_results``: your runs drawn over the paper's results, and beside its best runs.

``--runs`` takes run directories (``--output_dir`` of ``train_resnet50``, ``train_transformer``
or ``train_lenet``, finished: their ``results.json``). Writes to ``--output_dir``:

- ``results.png``: one panel per benchmark. ResNet-50 (top-1) and the Transformer (BLEU) show
  every paper run as a faint point and each technique's Pareto front, the paper's best dense
  run as a dashed line, and the runs given on top (stars; a dense run is a dotted line). LeNet
  runs get a panel of their own, as ``train_lenet``'s plot. ``--benchmarks`` adds the paper's
  panels without runs of yours.
- ``results.txt`` (also printed): each run beside the paper's best run of its technique at the
  nearest reported sparsity, the difference, and the recipe that reproduces that paper run
  (``list_recipes``). How "best" and the levels are defined: ``paper.results.selection``.
- with ``--layers``: ``layers_<i>.png`` per sparse ResNet-50 / Transformer run (the i-th of
  ``--runs``), its sparsity by layer role (the paper's Figures 2 and 4) and per layer; the role
  tables go into ``results.txt``.

Exit statuses as every binary (``cli/launch.py``): a path that is not a run directory, an
unfinished run (no ``results.json``) or a corrupt ``results.json`` is a usage error (2) naming
it, found before anything is written.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from state_of_sparsity.paper.cli import launch  # noqa: E402
from state_of_sparsity.paper.training import flags as harness_flags  # noqa: E402, F401
from state_of_sparsity.paper.training.errors import UsageError  # noqa: E402

FLAGS = flags.FLAGS
BINARY = "plot_results"
PAPER_BENCHMARKS = ("resnet50", "transformer")

flags.declare_key_flag("output_dir")  # defined with the harness flags
flags.DEFINE_list("runs", [], "Run directories (their --output_dir), comma-separated.")
flags.DEFINE_list(
    "benchmarks",
    [],
    f"Paper panels to draw besides those of --runs: {', '.join(PAPER_BENCHMARKS)}.",
)
flags.DEFINE_bool("layers", False, "Also draw each sparse run's sparsity by layer role.")


def run() -> int:
    from state_of_sparsity.paper.results import benchmarks, plots, run_dirs, tables
    from state_of_sparsity.paper.training import run_dir

    harness_flags.resolve_defaults(output_dir="out/plot_results")
    for name in FLAGS.benchmarks:
        if name not in PAPER_BENCHMARKS:
            raise UsageError(
                f"--benchmarks: {name!r} is unknown; use {', '.join(PAPER_BENCHMARKS)}."
            )
    if not FLAGS.runs and not FLAGS.benchmarks:
        raise UsageError("Give --runs (run directories) or --benchmarks (the paper's panels).")
    per_directory = [run_dirs.read(path) for path in FLAGS.runs]
    runs = [user_run for directory in per_directory for user_run in directory]
    run_dir.check_output_dir(FLAGS.output_dir)
    panels = []
    for name, benchmark in benchmarks.BENCHMARKS.items():
        mine = [r for r in runs if r.benchmark == name]
        if name == "lenet" and mine:
            panels.append((benchmarks.lenet(mine[0].flags["model"]), mine))
        elif mine or name in FLAGS.benchmarks:
            panels.append((benchmark, mine))
    # Everything is checked: from here on files are written.
    run_dir.create(FLAGS.output_dir)
    outputs = [os.path.join(FLAGS.output_dir, "results.png")]
    plots.results_figure(panels, outputs[0])
    text = [tables.comparison(runs)] if runs else []
    if FLAGS.layers:
        for i, directory in enumerate(per_directory):
            sparse = [r for r in directory if r.benchmark != "lenet" and r.technique != "dense"]
            if not sparse:
                launch.warn(
                    BINARY,
                    f"--layers: {FLAGS.runs[i]} holds no sparse ResNet-50 or "
                    "Transformer run; no layer figure for it.",
                )
            for user_run in sparse:  # one per training run directory
                outputs.append(os.path.join(FLAGS.output_dir, f"layers_{i}.png"))
                plots.layer_roles_figure(user_run, outputs[-1])
                text.append(tables.roles(user_run))
    table = "\n\n".join(text)
    if table:
        print(table)
        path = os.path.join(FLAGS.output_dir, "results.txt")
        with open(f"{path}.tmp", "w") as f:
            f.write(table + "\n")
        os.replace(f"{path}.tmp", path)
        outputs.append(path)
    print(f"\nwrote {', '.join(outputs)}")
    return 0


def _main(argv):
    return launch.guarded(run, BINARY, argv, __name__)


def main():
    launch.run(_main, __name__)


if __name__ == "__main__":
    main()
