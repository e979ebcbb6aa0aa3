"""A run directory (``--output_dir`` of ``train_resnet50``, ``train_transformer`` or
``train_lenet``) read into the paper's terms: ``read(path)`` -> ``UserRun`` s.

The binary comes from ``run.json``; the numbers from ``results.json``, written when the run
finished: ResNet-50 top-1 (``eval.top_1``, a fraction), Transformer BLEU (``eval.bleu_tokenized``,
the paper's tokenized Moses BLEU; absent when ``--bleu_sentences=0``), LeNet test accuracy (one
run per technique of its table, VD with its threshold sweep). The technique is the paper's name
for what the flags ran: ResNet-50 ``threshold`` is ``magnitude_pruning`` (``_extended`` with a
dense stem, ``--noprune_first_layer``); a run with fixed masks (``scratch``,
``--load_masks_from``) is ``lottery_ticket`` when it starts from the mask-source run's values,
else ``scratch_e``, or ``scratch_b`` when it trains on more examples than the paper's standard
run, with ``_augmented_init`` for a Transformer with ``--initial_sparsity``.

A path that is not a directory, a directory without ``run.json``, an unfinished run (no
``results.json``) or a corrupt or foreign ``results.json`` is a ``UsageError`` naming it.
"""

from __future__ import annotations

import dataclasses
import os

from state_of_sparsity.paper.training.checkpoints import read_json
from state_of_sparsity.paper.training.errors import UsageError

__all__ = ["UserRun", "lenet_runs", "read"]

_BENCHMARK_OF = {
    "train_resnet50": "resnet50",
    "train_transformer": "transformer",
    "train_lenet": "lenet",
}
_RESNET_EXAMPLES = 128000 * 1024  # the paper's standard ResNet-50 run: steps x batch
_TRANSFORMER_STEPS = 500000


@dataclasses.dataclass(frozen=True, eq=False)
class UserRun:
    """One result of a user's run, shown as its directory ``path`` (empty: unnamed).
    ``metric`` is None when the run measured none (a Transformer trained with
    ``--bleu_sentences=0``). ``layers``: the sparsity report's rows (name, weights, nonzeros,
    ...). ``sweep``: (sparsity, metric) of a VD model at each threshold."""

    path: str
    benchmark: str
    technique: str
    sparsity: float
    metric: float | None
    flags: dict
    layers: tuple = ()
    sweep: tuple = ()


def _resnet_technique(flags) -> str:
    method = flags["pruning_method"]
    if method == "baseline":
        return "dense"
    if method == "threshold":
        method = "magnitude_pruning"
    if method == "magnitude_pruning" and not flags["prune_first_layer"]:
        return "magnitude_pruning_extended"
    if method != "scratch":
        return method
    if flags["initial_value_checkpoint"]:
        return "lottery_ticket"
    longer = flags["train_steps"] * flags["train_batch_size"] > _RESNET_EXAMPLES
    return "scratch_b" if longer else "scratch_e"


def _transformer_technique(flags) -> str:
    technique = flags["sparsity_technique"]
    if technique == "none":
        return "dense"
    if not flags["load_masks_from"]:
        return technique
    if flags["load_weights_from"]:
        return "lottery_ticket"
    name = "scratch_b" if flags["train_steps"] > _TRANSFORMER_STEPS else "scratch_e"
    return name + ("_augmented_init" if flags["initial_sparsity"] > 0 else "")


def _training_runs(path, benchmark, results):
    flags, final = results["flags"], results["eval"]
    if benchmark == "resnet50":
        technique, metric = _resnet_technique(flags), float(final["top_1"])
    else:
        technique = _transformer_technique(flags)
        metric = float(final["bleu_tokenized"]) if "bleu_tokenized" in final else None
    return [
        UserRun(
            path,
            benchmark,
            technique,
            float(final["global_sparsity"]),
            metric,
            flags,
            tuple(final["sparsity"]["layers"]),
        )
    ]


def lenet_runs(results: dict, config: dict, path: str = "") -> list[UserRun]:
    """The rows of a ``train_lenet`` table (``results.json``'s ``results``, made with the flags
    ``config``) as runs of ``path``."""
    runs = []
    for technique, row in results.items():
        sweep = tuple(
            sorted(
                (float(s["global_sparsity"]), float(s["accuracy"]))
                for s in row.get("thresholds", {}).values()
            )
        )
        runs.append(
            UserRun(
                path,
                "lenet",
                technique,
                float(row["global_sparsity"]),
                float(row["accuracy"]),
                config,
                tuple(row.get("layers", ())),
                sweep,
            )
        )
    return runs


def read(path: str) -> list[UserRun]:
    """The results of the run directory ``path`` (one per technique for ``train_lenet``)."""
    if not os.path.isdir(path):
        raise UsageError(f"--runs: {path} is not a directory.")
    record_path = os.path.join(path, "run.json")
    if not os.path.isfile(record_path):
        raise UsageError(
            f"--runs: {path} is not a run directory (no run.json): give the --output_dir of "
            "train_resnet50, train_transformer or train_lenet."
        )
    record = read_json(record_path)
    binary = record.get("binary") if isinstance(record, dict) else None
    if binary not in _BENCHMARK_OF:
        raise UsageError(f"--runs: {record_path} is not a record of a training run.")
    results_path = os.path.join(path, "results.json")
    if not os.path.isfile(results_path):
        raise UsageError(
            f"--runs: {path} has no results.json: the {binary} run has not finished (rerun its "
            "command to finish it)."
        )
    results = read_json(results_path)
    benchmark = _BENCHMARK_OF[binary]
    try:
        if benchmark == "lenet":
            return lenet_runs(results["results"], results["config"], path)
        return _training_runs(path, benchmark, results)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UsageError(f"--runs: {results_path} is corrupt (not {binary}'s results).") from None
