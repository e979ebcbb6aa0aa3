"""``sparsity_report``: per-tensor and global sparsity of a model, printable and as plain data.

Counts are taken on the eval-time kernels of each wrapper (``wrapper.eval_kernels()``: for
pruning, kernel * mask), i.e. exactly the weights ``strip`` and ``export_saved_model`` write;
a layer with several kernels (separable convolution, LSTM) has one row per kernel. The global
sparsity is zeros / size over the sparsified tensors only: biases, normalization parameters and
layers left dense are excluded, as in the paper's accounting (spec §1.8, §7). Next to it the
report states the *coverage*, the share of the model's parameters that the sparsified tensors
are, and the *model sparsity*, the pruned share of all parameters; parameters are those of the
stripped model (no masks or VD / L0 state). Layers left dense are listed with the reason and
printed grouped by type and reason.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np
from keras import ops

from state_of_sparsity import traversal
from state_of_sparsity.callbacks import check_driven
from state_of_sparsity.layers import registry
from state_of_sparsity.layers.base import SparsityWrapper
from state_of_sparsity.layers.nested import SparseSublayers
from state_of_sparsity.layers.techniques import check_eval_options, eval_options_for

__all__ = ["DenseLayer", "LayerSparsity", "SparsityReport", "sparsity_report"]


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
class DenseLayer:
    """A layer with weights that is not sparsified, with the reason."""

    name: str
    type: str
    weights: int
    reason: str


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    """``sparsity_report`` output: the sparsified tensors (``layers``), the layers left dense
    (``dense``) and the number of parameters of the whole (stripped) model."""

    layers: tuple[LayerSparsity, ...]
    dense: tuple[DenseLayer, ...]
    parameters: int

    @property
    def weights(self) -> int:
        """Size of the sparsified tensors."""
        return sum(row.weights for row in self.layers)

    @property
    def nonzeros(self) -> int:
        return sum(row.nonzeros for row in self.layers)

    @property
    def global_sparsity(self) -> float:
        """Zeros / size over the sparsified tensors (the paper's number)."""
        return 1.0 - self.nonzeros / self.weights if self.weights else 0.0

    @property
    def coverage(self) -> float:
        """Share of the model's parameters that are sparsified."""
        return self.weights / self.parameters if self.parameters else 0.0

    @property
    def model_sparsity(self) -> float:
        """Zeros of the sparsified tensors / all parameters of the model: the share of the
        whole model that is pruned."""
        return (self.weights - self.nonzeros) / self.parameters if self.parameters else 0.0

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
                "parameters": self.parameters,
                "coverage": self.coverage,
                "model_sparsity": self.model_sparsity,
            },
            "dense": [dataclasses.asdict(layer) for layer in self.dense],
        }

    def headline(self) -> str:
        """One line: global sparsity, coverage and the sparsity over all parameters."""
        return (
            f"global sparsity {self.global_sparsity:.2%} over the sparsified weights, which are "
            f"{self.coverage:.1%} of the model's {self.parameters:,} parameters "
            f"({self.model_sparsity:.2%} of all parameters pruned)"
        )

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
        lines = [self.headline(), ""]
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)))
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        if self.dense:
            groups = collections.defaultdict(lambda: [0, 0])
            for layer in self.dense:
                groups[(layer.type, layer.reason)][0] += 1
                groups[(layer.type, layer.reason)][1] += layer.weights
            total = sum(layer.weights for layer in self.dense)
            lines.append("")
            lines.append(f"left dense: {len(self.dense)} layer(s), {total:,} parameters")
            for (type_name, reason), (count, weights) in sorted(
                groups.items(), key=lambda item: -item[1][1]
            ):
                lines.append(f"  {type_name} x{count} ({weights:,}): {reason}")
        return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _size(weights) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


def _dense_reason(layer, own) -> str:
    if registry.unsupported_reason(layer) is None:
        return "left dense by sparsify (excluded, a 0.0 target, or the technique does not apply)"
    if all(len(w.shape) <= 1 for w in own):
        return "no kernel (vectors only: scales, shifts, biases, statistics)"
    return registry.unsupported_reason(layer)


def sparsity_report(model, **options) -> SparsityReport:
    """Per-tensor and global sparsity of ``model`` (a model or a single layer), its coverage
    and the layers left dense.

    ``options`` are eval options understood by some techniques (passed to ``eval_kernels``).
    """
    check_eval_options(options)
    check_driven(model, "sparsity_report")
    rows, dense, state, inside = [], [], set(), []
    if isinstance(model, SparsityWrapper):
        items = [(model.name, model)]
    else:
        items = list(traversal.walk(model))
    for path, layer in items:
        if isinstance(layer, SparsityWrapper):
            layer_options = eval_options_for(layer, options)
            kernels = layer.eval_kernels(**layer_options)
            names = layer.kernel_names
            for index, kernel in enumerate(kernels):
                kernel = ops.convert_to_numpy(kernel)
                rows.append(
                    LayerSparsity(
                        name=path if len(names) == 1 else f"{path}/{names[index]}",
                        technique=layer.technique,
                        weights=int(kernel.size),
                        nonzeros=int(np.count_nonzero(kernel)),
                        extra=layer.extra_report(index, **layer_options),
                    )
                )
            inner = {id(w) for w in layer.layer.weights}
            state |= {id(w) for w in layer.weights if id(w) not in inner}
            continue
        if any(path.startswith(prefix) for prefix in inside):
            continue  # counted with the supported layer that holds it (an RNN's cell)
        if registry.unsupported_reason(layer) is None:
            inside.append(f"{path}/")
            own = layer.weights
        else:
            children = traversal.children(layer)
            inherited = {id(w) for child in children for w in child.weights}
            own = [w for w in layer.weights if id(w) not in inherited]
        if own:
            plain = layer.layer if isinstance(layer, SparseSublayers) else layer
            reason = _dense_reason(plain, own)
            dense.append(DenseLayer(path, type(plain).__name__, _size(own), reason))
    parameters = _size(w for w in model.weights if id(w) not in state)
    return SparsityReport(tuple(rows), tuple(dense), parameters)
