"""``sparsity_report``: per-layer and global sparsity of a model, printable and as plain data.

Counts are taken on the eval-time kernel of each wrapper (``wrapper.eval_kernel()``: for pruning,
kernel * mask), i.e. exactly the weights ``strip`` and ``export_saved_model`` write. The global
sparsity is zeros / size over the sparsified tensors only: biases, normalization parameters and
layers left dense are excluded, as in the paper's accounting (spec §1.8, §7).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from keras import ops

from state_of_sparsity import traversal
from state_of_sparsity.layers import registry
from state_of_sparsity.layers.base import SparsityWrapper
from state_of_sparsity.layers.techniques import check_eval_options, eval_options_for

__all__ = ["LayerSparsity", "SparsityReport", "sparsity_report"]


@dataclasses.dataclass(frozen=True)
class LayerSparsity:
    """One sparsified tensor: its layer path, technique, size, non-zeros and sparsity."""

    name: str
    technique: str
    weights: int
    nonzeros: int
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def sparsity(self) -> float:
        return 1.0 - self.nonzeros / self.weights if self.weights else 0.0

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "technique": self.technique,
            "weights": self.weights,
            "nonzeros": self.nonzeros,
            "sparsity": self.sparsity,
            **self.extra,
        }


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    """``sparsity_report`` output: sparsified ``layers``, and ``dense`` (name, reason) pairs."""

    layers: tuple[LayerSparsity, ...]
    dense: tuple[tuple[str, str], ...]

    @property
    def weights(self) -> int:
        return sum(row.weights for row in self.layers)

    @property
    def nonzeros(self) -> int:
        return sum(row.nonzeros for row in self.layers)

    @property
    def global_sparsity(self) -> float:
        return 1.0 - self.nonzeros / self.weights if self.weights else 0.0

    def __getitem__(self, name: str) -> LayerSparsity:
        for row in self.layers:
            if row.name == name:
                return row
        raise KeyError(name)

    def to_dict(self) -> dict:
        """Plain data (JSON-serializable)."""
        return {
            "layers": [row.to_dict() for row in self.layers],
            "global": {
                "weights": self.weights,
                "nonzeros": self.nonzeros,
                "sparsity": self.global_sparsity,
            },
            "dense": [{"name": n, "reason": r} for n, r in self.dense],
        }

    def __str__(self) -> str:
        extra_keys = sorted({k for row in self.layers for k in row.extra})
        header = ["layer", "technique", "weights", "non-zeros", "sparsity", *extra_keys]
        rows = [
            [
                row.name,
                row.technique,
                f"{row.weights:,}",
                f"{row.nonzeros:,}",
                f"{row.sparsity:.2%}",
                *[_fmt(row.extra.get(k)) for k in extra_keys],
            ]
            for row in self.layers
        ]
        rows.append(
            [
                "global",
                "",
                f"{self.weights:,}",
                f"{self.nonzeros:,}",
                f"{self.global_sparsity:.2%}",
                *[""] * len(extra_keys),
            ]
        )
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        if self.dense:
            lines.append("")
            lines.append("left dense:")
            lines += [f"  {name}: {reason}" for name, reason in self.dense]
        return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _dense_reason(layer) -> str:
    if type(layer) in registry.supported_layer_types():
        return "not sparsified (excluded, or target 0)"
    return f"unsupported layer type {type(layer).__name__}"


def sparsity_report(model, **options) -> SparsityReport:
    """Per-layer and global sparsity of ``model`` (a model or a single layer).

    ``options`` are eval options understood by some techniques (passed to ``eval_kernel``).
    """
    check_eval_options(options)
    rows, dense = [], []
    items = [(model.name, model)] if isinstance(model, SparsityWrapper) else traversal.leaves(model)
    for path, layer in items:
        if isinstance(layer, SparsityWrapper):
            layer_options = eval_options_for(layer, options)
            kernel = ops.convert_to_numpy(layer.eval_kernel(**layer_options))
            rows.append(
                LayerSparsity(
                    name=path,
                    technique=layer.technique,
                    weights=int(kernel.size),
                    nonzeros=int(np.count_nonzero(kernel)),
                    extra=layer.extra_report(**layer_options),
                )
            )
        elif layer.weights:
            dense.append((path, _dense_reason(layer)))
    return SparsityReport(tuple(rows), tuple(dense))
