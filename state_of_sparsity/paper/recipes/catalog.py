"""The recipes: each the paper's best run of a technique at a reported sparsity, as flags.

"Best" and the levels are ``results.selection``'s: at each level of the benchmark (ResNet-50 50,
70, 80, 90, 95, 96.5, 98 %; Transformer 50, 60, 70, 80, 90, 95, 98 %), the run with the highest
metric among the paper's runs whose density is within ±5 % of the level's. A recipe's flags are
that run's hyper-parameters (``paper_runs.PaperRun.hparams``, named as the binary's flags), its
technique, and the paper's training length: 128,000 steps at batch 1024 (ResNet-50; extended
magnitude pruning 48,000 at 4096), 500,000 steps of 2,048 tokens (Transformer). Recipes:

- ResNet-50: ``magnitude_pruning``, ``magnitude_pruning_extended`` (dense stem, 80 % final
  layer, the ``extended`` learning-rate preset), ``random_pruning``, ``variational_dropout``
  (τ 0.5), ``lottery_ticket`` and ``scratch_e`` (the paper's scratch-e: fixed masks, a fresh
  ``--init_method`` initialization);
- Transformer: ``magnitude_pruning``, ``random_pruning``, ``variational_dropout`` (at the run's
  best threshold τ), ``l0_regularization``, ``lottery_ticket``, ``scratch_e``,
  ``scratch_e_augmented_init``.

Lottery and scratch recipes need the masks (and, for a lottery ticket, the step-0 values) of a
finished pruning run: ``needs`` names the flags to add, and the file names that run's flags (a
recipe of its own when the paper's mask source was the best run of its level).

Left out, because the paper's record or today's flags cannot express them: ResNet-50 L0 (every
paper run failed, and the CSV lacks the ramp steps); scratch-b (ResNet-50: a ``scratch_e``
recipe plus ``--lr_schedule=<the CSV's scheme> --train_steps=256000``; Transformer: its step
count is not recorded).

``python -m state_of_sparsity.paper.recipes.catalog`` rewrites the files from the CSVs.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import textwrap

from state_of_sparsity.paper.results import paper_runs, selection
from state_of_sparsity.paper.results.benchmarks import BENCHMARKS

__all__ = ["DIRECTORY", "Recipe", "find", "recipes", "render", "write"]

DIRECTORY = os.path.dirname(os.path.abspath(__file__))

_SCHEDULE = (
    "end_sparsity",
    "sparsity_begin_step",
    "sparsity_end_step",
    "pruning_frequency",
    "label_smoothing",
)
# technique -> (the flags naming it, the hyper-parameters copied, the flags the user adds)
_RESNET = {
    "magnitude_pruning": ({"pruning_method": "threshold"}, _SCHEDULE, ()),
    "magnitude_pruning_extended": (
        {"pruning_method": "threshold", "lr_schedule": "extended"},
        (*_SCHEDULE, "prune_first_layer", "last_layer_sparsity", "train_steps", "train_batch_size"),
        (),
    ),
    "random_pruning": ({"pruning_method": "random_pruning"}, _SCHEDULE, ()),
    "variational_dropout": (
        {"pruning_method": "variational_dropout"},
        (
            "sparsity_begin_step",
            "sparsity_end_step",
            "reg_scalar",
            "label_smoothing",
            "log_alpha_threshold",
        ),
        (),
    ),
    "lottery_ticket": (
        {"pruning_method": "scratch"},
        ("end_sparsity", "label_smoothing"),
        ("--load_mask_dir", "--initial_value_checkpoint"),
    ),
    "scratch_e": (
        {"pruning_method": "scratch"},
        ("end_sparsity", "init_method", "label_smoothing"),
        ("--load_mask_dir",),
    ),
}
_PRUNING = ("begin_pruning_step", "end_pruning_step", "pruning_frequency", "regularization")
_FIXED_MASKS = {"sparsity_technique": "magnitude_pruning"}
_TRANSFORMER = {
    "magnitude_pruning": ({"sparsity_technique": "magnitude_pruning"}, _PRUNING, ()),
    "random_pruning": ({"sparsity_technique": "random_pruning"}, _PRUNING, ()),
    "variational_dropout": (
        {"sparsity_technique": "variational_dropout"},
        (
            "dkl_weight",
            "dkl_weight_fn",
            "dkl_weight_start",
            "dkl_weight_diff",
            "regularization",
            "log_alpha_threshold",
        ),
        (),
    ),
    "l0_regularization": (
        {"sparsity_technique": "l0_regularization"},
        ("l0_norm_weight", "l0_weight_fn", "l0_weight_start", "l0_weight_diff", "regularization"),
        (),
    ),
    "lottery_ticket": (
        _FIXED_MASKS,
        ("regularization",),
        ("--load_masks_from", "--load_weights_from"),
    ),
    "scratch_e": (_FIXED_MASKS, ("regularization",), ("--load_masks_from",)),
    "scratch_e_augmented_init": (_FIXED_MASKS, ("regularization",), ("--load_masks_from",)),
}
_RECIPE_OF_METHOD = {"threshold": "magnitude_pruning"}  # train_resnet50's name for MP
_PENALTIES = ("variational_dropout", "l0_regularization")  # --target_sparsity does not apply
_TECHNIQUES = {"resnet50": _RESNET, "transformer": _TRANSFORMER}
_LENGTH = {
    "resnet50": {"train_steps": 128000, "train_batch_size": 1024},
    "transformer": {"train_steps": 500000, "batch_tokens": 2048},
}


@dataclasses.dataclass(frozen=True, eq=False)
class Recipe:
    """One recipe: the paper's best ``run`` of ``technique`` at ``level`` on ``benchmark``,
    and the ``flags`` (name -> value, in file order) that reproduce it; ``needs``: the flags a
    user adds besides the data and ``--output_dir``."""

    benchmark: str
    technique: str
    level: float
    run: paper_runs.PaperRun
    flags: dict
    needs: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.benchmark}/{self.technique}_{round(self.level * 100, 1):g}"

    @property
    def path(self) -> str:
        return os.path.join(DIRECTORY, f"{self.name}.flags")

    @property
    def binary(self) -> str:
        return BENCHMARKS[self.benchmark].binary


def _flags(benchmark, technique, level, run) -> dict:
    naming, copied, _ = _TECHNIQUES[benchmark][technique]
    flags = dict(naming)
    if benchmark == "transformer" and technique not in _PENALTIES:
        flags["target_sparsity"] = level
    flags.update((name, run.hparams[name]) for name in copied)
    if technique == "scratch_e_augmented_init":
        flags["initial_sparsity"] = level
    for name, value in _LENGTH[benchmark].items():
        flags.setdefault(name, value)
    return flags


@functools.cache
def recipes() -> tuple[Recipe, ...]:
    """Every recipe, by benchmark, technique (in the order above) and level."""
    out = []
    for benchmark, techniques in _TECHNIQUES.items():
        levels = BENCHMARKS[benchmark].levels
        for technique, (_, _, needs) in techniques.items():
            best = selection.best_by_level(paper_runs.load(benchmark, technique), levels)
            out += [
                Recipe(
                    benchmark,
                    technique,
                    level,
                    run,
                    _flags(benchmark, technique, level, run),
                    needs,
                )
                for level, run in best.items()
            ]
    return tuple(out)


def find(benchmark: str, technique: str, level: float) -> Recipe | None:
    """The recipe of ``technique`` at ``level`` on ``benchmark``, if there is one."""
    for recipe in recipes():
        if (recipe.benchmark, recipe.technique, recipe.level) == (benchmark, technique, level):
            return recipe
    return None


def _value(name, value) -> str:
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no{name}"
    return f"--{name}={value!r}" if isinstance(value, float) else f"--{name}={value}"


def _metric(benchmark, value) -> str:
    return f"top-1 {value * 100:.2f}%" if benchmark == "resnet50" else f"BLEU {value:.2f}"


def _repeats(recipe) -> str:
    same = [
        r.metric
        for r in paper_runs.load(recipe.benchmark, recipe.technique)
        if r.hparams == recipe.run.hparams
        and r.mask_source == recipe.run.mask_source
        and selection.level_of(r.sparsity, (recipe.level,)) is not None
    ]
    if len(same) < 2:
        return ""
    mean = _metric(recipe.benchmark, sum(same) / len(same))
    return f"; the best of {len(same)} repeats of this configuration (mean {mean})"


def _notes(recipe) -> list[str]:
    run, notes = recipe.run, []
    if recipe.technique == "magnitude_pruning_extended":
        notes.append(
            "No CSV holds the extended runs: configuration and top-1 come from the paper's README "
            "table of released checkpoints; batch 4096 is inferred (48,000 steps = 1.5x the "
            "standard run's epochs), the learning-rate preset from the paper's text (section 5.2)."
        )
    if recipe.benchmark == "resnet50" and recipe.technique == "variational_dropout":
        notes.append("The CSV's global sparsity is measured at log-alpha threshold 0.5.")
    if recipe.benchmark == "transformer" and recipe.technique == "variational_dropout":
        notes.append(
            "The paper evaluated each VD model at 11 log-alpha thresholds; this is the best one."
        )
    if run.mask_source is not None:
        source = run.mask_source
        method = source.get("pruning_method", source.get("sparsity_technique"))
        match = find(recipe.benchmark, _RECIPE_OF_METHOD.get(method, method), recipe.level)
        same = match is not None and all(match.flags.get(k) == v for k, v in source.items())
        notes.append(
            f"Masks from a finished {recipe.binary} run with: "
            f"{' '.join(_value(k, v) for k, v in source.items())}."
        )
        notes.append(
            f"That is recipe {match.name}."
            if same
            else "No recipe is that run (it is not the best of its level): train it with the "
            "flags above."
        )
    if recipe.needs:
        notes.append(f"Add {', '.join(recipe.needs)}.")
    return notes


def render(recipe: Recipe) -> str:
    """The flagfile text of ``recipe``: comments (what it reproduces, from where, how to use
    it), then one flag per line."""
    benchmark = BENCHMARKS[recipe.benchmark]
    run = recipe.run
    lines = [
        f"{benchmark.title}: {recipe.technique} at {round(recipe.level * 100, 1):g}% sparsity "
        f"(recipe {recipe.name}).",
        f"The paper's best run at this level: {_metric(recipe.benchmark, run.metric)} at sparsity "
        f"{run.sparsity:.4f} ({run.source}{', ' + run.column if run.column else ''})"
        f"{_repeats(recipe)}.",
        "Best: the highest metric among the paper's runs within +-5% of the level's density "
        "(state_of_sparsity.paper.results.selection).",
        *_notes(recipe),
        f"Use: {recipe.binary} --flagfile=<this file> --data_dir=DIR --output_dir=DIR; later "
        "flags override the recipe's.",
    ]
    comments = [
        c
        for line in lines
        for c in textwrap.wrap(line, 98, initial_indent="# ", subsequent_indent="#   ")
    ]
    return "\n".join([*comments, *(_value(k, v) for k, v in recipe.flags.items())]) + "\n"


def write(directory: str = DIRECTORY) -> list[str]:
    """(Re)writes every recipe under ``directory`` and removes ``.flags`` files that are no
    recipe; returns the paths written."""
    written = []
    for recipe in recipes():
        path = os.path.join(directory, f"{recipe.name}.flags")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(render(recipe))
        written.append(path)
    for benchmark in _TECHNIQUES:
        folder = os.path.join(directory, benchmark)
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if name.endswith(".flags") and path not in written:
                os.remove(path)
    return written


if __name__ == "__main__":
    for path in write():
        print(path)
