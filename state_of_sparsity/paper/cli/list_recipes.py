"""``list_recipes``: the recipes shipped with the package, and how to use one.

A recipe is an absl flagfile holding the paper's best configuration of one technique at one
reported sparsity (``paper/recipes/catalog.py`` says how it is chosen and which techniques have
recipes). Lists them per benchmark: name, the paper's result, the flags a user must add;
``--benchmark`` keeps one benchmark, ``--show=<name>`` prints one recipe's path and text. Run
one as ``train_resnet50 --flagfile=<path> --data_dir=... --output_dir=...``. Exit statuses as
every binary (``cli/launch.py``).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from state_of_sparsity.paper.cli import launch  # noqa: E402
from state_of_sparsity.paper.training.errors import UsageError  # noqa: E402

FLAGS = flags.FLAGS
BINARY = "list_recipes"
flags.DEFINE_enum("benchmark", "all", ["all", "resnet50", "transformer"], "Which recipes.")
flags.DEFINE_string("show", None, "A recipe's name (e.g. resnet50/magnitude_pruning_90): print it.")


def run() -> int:
    from state_of_sparsity.paper.recipes import catalog
    from state_of_sparsity.paper.results import tables
    from state_of_sparsity.paper.results.benchmarks import BENCHMARKS

    recipes = catalog.recipes()
    if FLAGS.show:
        chosen = [r for r in recipes if FLAGS.show in (r.name, f"{r.name}.flags")]
        if not chosen:
            raise UsageError(f"--show={FLAGS.show}: no such recipe; list_recipes lists them.")
        print(f"{chosen[0].path}\n")
        print(catalog.render(chosen[0]), end="")
        return 0
    print(f"Recipes in {catalog.DIRECTORY}: the paper's best run per technique and sparsity.")
    for name, benchmark in BENCHMARKS.items():
        mine = [r for r in recipes if r.benchmark == name]
        if not mine or FLAGS.benchmark not in ("all", name):
            continue
        header = ["recipe", "paper sparsity", f"paper {benchmark.short}", "add"]
        rows = [
            [r.name, f"{r.run.sparsity:.2%}", f"{r.run.metric * benchmark.scale:.2f}",
             " ".join(r.needs)]
            for r in mine
        ]  # fmt: skip
        print(f"\n{benchmark.title} ({benchmark.binary}):")
        print("\n".join("  " + line for line in tables.aligned(header, rows)))
        print(
            f"  use: {benchmark.binary} --flagfile={mine[0].path} --data_dir=DIR --output_dir=DIR"
        )
    print(
        "\nLater flags override a recipe's (e.g. --train_steps for a short trial); "
        "--show=<recipe> prints one."
    )
    return 0


def _main(argv):
    return launch.guarded(run, BINARY, argv, __name__)


def main():
    launch.run(_main, __name__)


if __name__ == "__main__":
    main()
