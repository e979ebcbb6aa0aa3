"""Walking a model's layers: nested models, MultiHeadAttention projections, wrappers."""

from __future__ import annotations

from collections.abc import Iterator

import keras

from state_of_sparsity.layers.base import SparsityWrapper

__all__ = ["walk", "leaves", "wrappers"]


def _children(layer) -> list:
    if isinstance(layer, SparsityWrapper):
        return []
    # Keras' own traversal (tracked sub-layers, in creation order); no public equivalent.
    return list(layer._flatten_layers(include_self=False, recursive=False))


def walk(model, prefix: str = "") -> Iterator[tuple[str, keras.layers.Layer]]:
    """Yields ``(path, layer)`` depth-first for every layer under ``model`` (not ``model``).

    Paths join names with "/" (``"encoder/mha/query"``); a shared layer is yielded once, at
    its first path. A wrapper is yielded, its inner layer is not.
    """
    seen: set[int] = set()

    def visit(layer, path):
        for child in _children(layer):
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
        if not _children(layer):
            yield path, layer


def wrappers(model) -> list[tuple[str, SparsityWrapper]]:
    """Every sparsity wrapper in ``model`` with its path, each once."""
    return [(path, layer) for path, layer in walk(model) if isinstance(layer, SparsityWrapper)]
