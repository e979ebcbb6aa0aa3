"""The paper's released results (``data/``, Apache-2.0) as typed rows: ``load()``.

Every CSV row becomes one ``PaperRun`` (technique, sparsity, hyper-parameters, metric), or
several where a row holds several results: a Transformer VD row is one trained model evaluated
at eleven log-α thresholds τ (one run per τ), a ResNet-50 scratch row holds nine repeats (one
run per repeat). Hyper-parameters are named as the flags of ``train_resnet50`` /
``train_transformer`` where one exists, so a run's ``hparams`` are its command line.
``mask_source`` holds the flags of the magnitude (or random) pruning run whose masks a scratch
or lottery-ticket run reused; the CSVs record that run, not the scratch run's own schedule.

Metric: ResNet-50 top-1 accuracy as a fraction (``rn50_baselines.csv`` holds percent, divided
by 100 here); Transformer Moses BLEU (tokenized, compound-split: spec §5.5).

Files and quirks (spec §8.2), ``sparse_rn50/``:

- ``technique_comparison/rn50_baselines.csv``: dense runs, 128,000 steps at batch 1024.
- ``rn50_magnitude_pruning.csv`` / ``rn50_random_pruning.csv``: the target sparsity (header
  ``Sparsity`` / ``Target Sparsity``), the schedule (``begin``, ``end``, ``freq``) and label
  smoothing of each run.
- ``rn50_variational_dropout.csv``: the KL-weight ramp (``DKL loss begin`` / ``saturate``:
  ``--sparsity_begin_step`` / ``--sparsity_end_step``), its weight (``DKL loss coeff``:
  ``--reg_scalar``, 1/N included), label smoothing and the *measured* global sparsity, at log-α
  threshold 0.5 (inferred from the paper's text: its RN50 threshold).
- ``rn50_l0_regularization.csv``: **the ``label_smoothing`` and ``weight_decay`` headers are
  swapped**: the column named ``label_smoothing`` holds the weight decay (0 or
  1e-4 / sigmoid(initial log α)), the one named ``weight_decay`` the label smoothing (0 or 0.1);
  they are read the right way round here. The ramp steps are not recorded, and every run failed
  (top-1 at most 0.41, most at chance).
- ``extended`` magnitude pruning (a dense stem, an 80 % final layer, 48,000 steps at batch 4096
  [inferred, spec §3.7]) has no CSV: its four runs come from the paper's README table of released
  checkpoints (``extended_threshold_{s}_{begin}_{end}_{freq}_{ls}``), with the overall sparsity
  the README reports; technique ``magnitude_pruning_extended``, ``file`` None.
- ``scratch_lotto/rn50_lottery_ticket.csv``: ``begin``, ``end``, ``freq``, ``label smoothing`` of
  the mask-source MP run (masks and step-0 values), the sparsity and the top-1 of each repeat.
- ``rn50_scratch_lr_scaled.csv``, ``rn50_scratch_lr_constant_final.csv``: ``time multiplier``
  1 (scratch-e, technique ``scratch_e``) or 2 (scratch-b, ``scratch_b``), ``init method``
  (``--init_method``), the mask source's schedule, ``Run 1`` … ``Run 9``.
- ``rn50_scratch_lr_constant_decay.csv``, ``rn50_scratch_lr_continual_decay.csv``: the same with
  one ``accuracy`` column, and **an empty third header cell** holding the init method; their
  masks come from random-pruning runs (spec §6.5). ``lr_schedule`` is the file's LR scheme as
  ``train_resnet50 --lr_schedule`` names it (``lr_scaled``, ``lr_constant_final``,
  ``lr_constant_decay``, ``lr_continual_decay``; Appendix E.6), or ``standard`` for a ×1 row
  (each region scaled ×1 is the standard schedule).

``sparse_transformer/``:

- ``technique_comparison/transformer_baselines.csv``: dense runs, 500,000 steps, batch 2048.
- ``transformer_magnitude_pruning.csv`` / ``transformer_random_pruning.csv``: the measured
  sparsity, ``begin_pruning_step``, ``end_pruning_step``, ``pruning_frequency``,
  ``regularization`` (``threshold_decay`` is always 0 and dropped).
- ``transformer_variational_dropout.csv``: ``dkl_weight``, ``dkl_weight_fn``,
  ``dkl_weight_start``, ``dkl_weight_diff``, ``regularization``, then ``MOSES BLEU:τ`` and
  ``Sparsity:τ`` for τ = 0.0, 0.5, …, 5.0 (``log_alpha_threshold``).
- ``transformer_l0_regularization.csv``: ``l0_norm_weight``, ``l0_norm_weight_fn``, and the ramp
  in columns **named ``dkl_weight_start`` / ``dkl_weight_diff``** (the reference reused the
  hparam names): ``--l0_weight_start`` / ``--l0_weight_diff`` / ``--l0_weight_fn``.
- ``scratch_lotto/transformer_{lottery_ticket,scratche,scratchb,scratche_augmented_init,
  scratchb_augmented_init}.csv``: the mask-source MP run's schedule and regularization, the
  sparsity and BLEU of each of 25 repeats per level (first header ``HParams`` in the lottery
  file). Augmented-init runs rescale the initialization by 1/(1 − s) (``--initial_sparsity``).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import os

__all__ = ["DATA_DIR", "PaperRun", "load"]

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


@dataclasses.dataclass(frozen=True, eq=False)
class PaperRun:
    """One result of the paper.

    ``sparsity``: the target sparsity where the CSV records one (ResNet-50 MP / RP / scratch),
    else the measured global sparsity. ``file`` (relative to ``DATA_DIR``), ``line`` (1-based,
    the header being line 1) and ``column`` locate the metric's cell.
    """

    benchmark: str
    technique: str
    sparsity: float
    metric: float
    hparams: dict
    file: str | None
    line: int | None
    column: str | None
    mask_source: dict | None = None

    @property
    def source(self) -> str:
        if self.file is None:
            return "the paper's README (released checkpoints; no CSV)"
        return f"{os.path.basename(self.file)} line {self.line}"


def _read(file):
    with open(os.path.join(DATA_DIR, file), newline="") as f:
        header, *rows = csv.reader(f)
    return header, rows


def _rows(file):
    """(line, {header: cell}) per data row of ``file``."""
    header, rows = _read(file)
    return [(i + 2, dict(zip(header, row, strict=True))) for i, row in enumerate(rows)]


_RN50 = "sparse_rn50/technique_comparison/"
_RN50_SCRATCH = "sparse_rn50/scratch_lotto/"
_TRANSFORMER = "sparse_transformer/technique_comparison/"
_TRANSFORMER_SCRATCH = "sparse_transformer/scratch_lotto/"

# Extended magnitude pruning (spec §3.7, §8.1): (target, begin, end, freq, label smoothing,
# overall sparsity reported, top-1 %).
_EXTENDED = (
    (0.8, 12500, 40000, 2000, 0.1, 0.8, 76.52),
    (0.91, 12500, 36000, 2000, 0.1, 0.9, 75.16),
    (0.96, 7500, 36000, 1000, 0.0, 0.95, 72.71),
    (0.98, 12500, 36000, 500, 0.0, 0.965, 69.26),
)


def _rn50_pruning(file, technique, sparsity_column):
    for line, row in _rows(file):
        sparsity = float(row[sparsity_column])
        yield PaperRun(
            "resnet50",
            technique,
            sparsity,
            float(row["accuracy"]),
            {
                "end_sparsity": sparsity,
                "sparsity_begin_step": int(row["begin"]),
                "sparsity_end_step": int(row["end"]),
                "pruning_frequency": int(row["freq"]),
                "label_smoothing": float(row["label smoothing"]),
            },
            file,
            line,
            "accuracy",
        )


def _rn50():
    for line, row in _rows(_RN50 + "rn50_baselines.csv"):
        hparams = {
            "train_steps": int(row["Training Steps"]),
            "train_batch_size": int(row["Batch Size"]),
        }
        yield PaperRun(
            "resnet50",
            "dense",
            0.0,
            float(row["Accuracy"]) / 100,
            hparams,
            _RN50 + "rn50_baselines.csv",
            line,
            "Accuracy",
        )
    yield from _rn50_pruning(_RN50 + "rn50_magnitude_pruning.csv", "magnitude_pruning", "Sparsity")
    for target, begin, end, freq, ls, sparsity, top_1 in _EXTENDED:
        hparams = {
            "end_sparsity": target,
            "sparsity_begin_step": begin,
            "sparsity_end_step": end,
            "pruning_frequency": freq,
            "label_smoothing": ls,
            "prune_first_layer": False,
            "last_layer_sparsity": 0.8,
            "train_steps": 48000,
            "train_batch_size": 4096,
        }
        yield PaperRun(
            "resnet50",
            "magnitude_pruning_extended",
            sparsity,
            top_1 / 100,
            hparams,
            None,
            None,
            None,
        )
    yield from _rn50_pruning(_RN50 + "rn50_random_pruning.csv", "random_pruning", "Target Sparsity")
    file = _RN50 + "rn50_variational_dropout.csv"
    for line, row in _rows(file):
        hparams = {
            "sparsity_begin_step": int(row["DKL loss begin"]),
            "sparsity_end_step": int(row["DKL loss saturate"]),
            "reg_scalar": float(row["DKL loss coeff"]),
            "label_smoothing": float(row["label_smoothing"]),
            "log_alpha_threshold": 0.5,
        }
        yield PaperRun(
            "resnet50",
            "variational_dropout",
            float(row["global sparsity"]),
            float(row["Accuracy"]),
            hparams,
            file,
            line,
            "Accuracy",
        )
    file = _RN50 + "rn50_l0_regularization.csv"
    for line, row in _rows(file):
        hparams = {
            "log_alpha_init": float(row["initial_log_alpha"]),
            "reg_scalar": float(row["l0_norm_weight"]),
            "label_smoothing": float(row["weight_decay"]),  # the headers are swapped
            "weight_decay": float(row["label_smoothing"]),
        }
        yield PaperRun(
            "resnet50",
            "l0_regularization",
            float(row["global_sparsity"]),
            float(row["accuracy"]),
            hparams,
            file,
            line,
            "accuracy",
        )
    yield from _rn50_scratch()


def _rn50_mask_source(row, pruning_method):
    return {
        "pruning_method": pruning_method,
        "end_sparsity": float(row["sparsity"]),
        "sparsity_begin_step": int(row["begin"]),
        "sparsity_end_step": int(row["end"]),
        "pruning_frequency": int(row["freq"]),
        "label_smoothing": float(row["label smoothing"]),
    }


def _rn50_scratch():
    file = _RN50_SCRATCH + "rn50_lottery_ticket.csv"
    for line, row in _rows(file):
        sparsity = float(row["sparsity"])
        hparams = {"end_sparsity": sparsity, "label_smoothing": float(row["label smoothing"])}
        yield PaperRun(
            "resnet50",
            "lottery_ticket",
            sparsity,
            float(row["accuracy"]),
            hparams,
            file,
            line,
            "accuracy",
            _rn50_mask_source(row, "threshold"),
        )
    for schedule, masks in (
        ("scaled", "threshold"),
        ("constant_final", "threshold"),
        ("constant_decay", "random_pruning"),
        ("continual_decay", "random_pruning"),
    ):
        file = f"{_RN50_SCRATCH}rn50_scratch_lr_{schedule}.csv"
        for line, row in _rows(file):
            multiplier = int(row["time multiplier"])
            sparsity = float(row["sparsity"])
            hparams = {
                "end_sparsity": sparsity,
                "init_method": row.get("init method", row.get("")),  # unnamed in two files
                "label_smoothing": float(row["label smoothing"]),
                "time_multiplier": multiplier,
                "lr_schedule": f"lr_{schedule}" if multiplier > 1 else "standard",
            }
            technique = "scratch_e" if multiplier == 1 else "scratch_b"
            for column in [c for c in row if c.startswith("Run ")] or ["accuracy"]:
                yield PaperRun(
                    "resnet50",
                    technique,
                    sparsity,
                    float(row[column]),
                    hparams,
                    file,
                    line,
                    column,
                    _rn50_mask_source(row, masks),
                )


def _transformer():
    file = _TRANSFORMER + "transformer_baselines.csv"
    for line, row in _rows(file):
        hparams = {
            "train_steps": int(row["Training Steps"]),
            "batch_tokens": int(row["Batch Size"]),
        }
        yield PaperRun(
            "transformer", "dense", 0.0, float(row["MOSES BLEU"]), hparams, file, line, "MOSES BLEU"
        )
    for technique in ("magnitude_pruning", "random_pruning"):
        file = f"{_TRANSFORMER}transformer_{technique}.csv"
        for line, row in _rows(file):
            yield PaperRun(
                "transformer",
                technique,
                float(row["Sparsity"]),
                float(row["Moses BLEU"]),
                _transformer_schedule(row),
                file,
                line,
                "Moses BLEU",
            )
    file = _TRANSFORMER + "transformer_variational_dropout.csv"
    for line, row in _rows(file):
        for column in [c for c in row if c.startswith("MOSES BLEU:")]:
            threshold = column.split(":")[1]
            hparams = {
                "dkl_weight": float(row["dkl_weight"]),
                "dkl_weight_fn": row["dkl_weight_fn"],
                "dkl_weight_start": int(row["dkl_weight_start"]),
                "dkl_weight_diff": int(row["dkl_weight_diff"]),
                "regularization": row["regularization"],
                "log_alpha_threshold": float(threshold),
            }
            yield PaperRun(
                "transformer",
                "variational_dropout",
                float(row[f"Sparsity:{threshold}"]),
                float(row[column]),
                hparams,
                file,
                line,
                column,
            )
    file = _TRANSFORMER + "transformer_l0_regularization.csv"
    for line, row in _rows(file):
        hparams = {
            "l0_norm_weight": float(row["l0_norm_weight"]),
            "l0_weight_fn": row["l0_norm_weight_fn"],
            "l0_weight_start": int(row["dkl_weight_start"]),  # the reference's reused names
            "l0_weight_diff": int(row["dkl_weight_diff"]),
            "regularization": row["regularization"],
        }
        yield PaperRun(
            "transformer",
            "l0_regularization",
            float(row["Sparsity"]),
            float(row["MOSES BLEU"]),
            hparams,
            file,
            line,
            "MOSES BLEU",
        )
    for technique, name in (
        ("lottery_ticket", "lottery_ticket"),
        ("scratch_e", "scratche"),
        ("scratch_b", "scratchb"),
        ("scratch_e_augmented_init", "scratche_augmented_init"),
        ("scratch_b_augmented_init", "scratchb_augmented_init"),
    ):
        file = f"{_TRANSFORMER_SCRATCH}transformer_{name}.csv"
        for line, row in _rows(file):
            source = {"sparsity_technique": "magnitude_pruning", **_transformer_schedule(row)}
            yield PaperRun(
                "transformer",
                technique,
                float(row["Sparsity"]),
                float(row["MOSES BLEU"]),
                {"regularization": row["regularization"]},
                file,
                line,
                "MOSES BLEU",
                source,
            )


def _transformer_schedule(row):
    return {
        "begin_pruning_step": int(row["begin_pruning_step"]),
        "end_pruning_step": int(row["end_pruning_step"]),
        "pruning_frequency": int(row["pruning_frequency"]),
        "regularization": row["regularization"],
    }


@functools.cache
def _all() -> tuple[PaperRun, ...]:
    return (*_rn50(), *_transformer())


def load(benchmark: str | None = None, technique: str | None = None) -> tuple[PaperRun, ...]:
    """The paper's runs, in file order (files as listed in the module docstring), optionally
    those of one ``benchmark`` ("resnet50", "transformer") and ``technique`` ("dense",
    "magnitude_pruning", "magnitude_pruning_extended" (ResNet-50), "random_pruning",
    "variational_dropout", "l0_regularization", "lottery_ticket", "scratch_e", "scratch_b",
    "scratch_e_augmented_init", "scratch_b_augmented_init" (Transformer))."""
    return tuple(
        run
        for run in _all()
        if benchmark in (None, run.benchmark) and technique in (None, run.technique)
    )
