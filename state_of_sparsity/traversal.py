"""Walking a model's layers: nested models, custom layers' sub-layers, wrappers."""

from __future__ import annotations

from collections.abc import Iterator

import keras

from state_of_sparsity import keras_compat
from state_of_sparsity.layers.base import SparsityWrapper
from state_of_sparsity.layers.nested import SparseSublayers

__all__ = ["children", "walk", "leaves", "wrappers"]


def children(layer) -> list:
    """The sub-layers a walk visits below ``layer`` (none below a wrapper)."""
    if isinstance(layer, SparsityWrapper):
        return []
    if isinstance(layer, SparseSublayers):  # transparent: its sub-layers are the inner layer's
        layer = layer.layer
    return keras_compat.child_layers(layer)


def walk(model, prefix: str = "") -> Iterator[tuple[str, keras.layers.Layer]]:
    """Yields ``(path, layer)`` depth-first for every layer under ``model`` (not ``model``).

    Paths join names with "/" (``"encoder/mha/query"``); a shared layer is yielded once, at
    its first path. A wrapper is yielded, its inner layer is not; a ``SparseSublayers`` is
    yielded and its inner layer's sub-layers appear below it.
    """
    seen: set[int] = set()

    def visit(layer, path):
        for child in children(layer):
            if id(child) in seen:
                continue
            seen.add(id(child))
            child_path = f"{path}/{child.name}" if path else child.name
            yield child_path, child
            yield from visit(child, child_path)

    yield from visit(model, prefix)


def leaves(model) -> Iterator[tuple[str, keras.layers.Layer]]:
    """The layers of ``walk`` that have no sub-layers of their own (wrappers count as leaves)."""
    for path, layer in walk(model):
        if not children(layer):
            yield path, layer


def wrappers(model) -> list[tuple[str, SparsityWrapper]]:
    """Every sparsity wrapper in ``model`` with its path, each once."""
    return [(path, layer) for path, layer in walk(model) if isinstance(layer, SparsityWrapper)]
