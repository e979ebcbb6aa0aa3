"""The benchmarks the explorer knows: what each measures and the sparsity levels the paper reports.

``levels`` are the sparsities of the rows of the paper's result tables (its README's
best-checkpoint tables, spec §8.1): ResNet-50 50, 70, 80, 90, 95, 96.5 (extended magnitude
pruning only) and 98 %; the Transformer 50, 60, 70, 80, 90, 95 and 98 %. LeNet has no paper
data; it is drawn with the same code (``train_lenet``'s plot).
"""

from __future__ import annotations

import dataclasses

__all__ = ["BENCHMARKS", "Benchmark", "lenet"]


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """One benchmark.

    ``metric``: what its runs' ``metric`` values show as (the values are top-1 and test accuracy
    as fractions, Moses BLEU), ``short`` its column header; ``scale`` multiplies the values for
    display (100: percent).
    ``front_techniques``: the techniques whose Pareto fronts ``plot_results`` draws.
    """

    name: str
    title: str
    binary: str
    metric: str
    short: str
    scale: float
    levels: tuple[float, ...] = ()
    front_techniques: tuple[str, ...] = ()
    note: str = ""


BENCHMARKS = {
    "resnet50": Benchmark(
        name="resnet50",
        title="ResNet-50 on ImageNet",
        binary="train_resnet50",
        metric="top-1 accuracy (%)",
        short="top-1 %",
        scale=100.0,
        levels=(0.5, 0.7, 0.8, 0.9, 0.95, 0.965, 0.98),
        front_techniques=(
            "magnitude_pruning",
            "magnitude_pruning_extended",
            "random_pruning",
            "variational_dropout",
        ),
        note="L0 regularization: every paper run failed (top-1 < 41%), not drawn",
    ),
    "transformer": Benchmark(
        name="transformer",
        title="Transformer on WMT14 en-de",
        binary="train_transformer",
        metric="BLEU (Moses, tokenized)",
        short="BLEU",
        scale=1.0,
        levels=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98),
        front_techniques=(
            "magnitude_pruning",
            "random_pruning",
            "variational_dropout",
            "l0_regularization",
        ),
    ),
    "lenet": Benchmark(
        name="lenet",
        title="LeNet on MNIST-5k",
        binary="train_lenet",
        metric="test accuracy (%)",
        short="accuracy %",
        scale=100.0,
    ),
}


def lenet(model: str) -> Benchmark:
    """The LeNet benchmark titled for ``model`` (``train_lenet --model``)."""
    return dataclasses.replace(BENCHMARKS["lenet"], title=f"{model} on MNIST-5k")
