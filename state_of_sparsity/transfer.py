"""Copying weights between two models of the same structure, up to sparsity wrapping.

``sparsify`` and ``strip`` clone a model into fresh, unbuilt layers, let Keras build them by
running the model's graph on symbolic inputs (so every layer, lazily built custom ones included,
is built with its real call arguments), and only then copy the weights across with
``copy_weights``. The two models are walked in parallel: where one side has a sparsity wrapper
(or a ``SparseSublayers`` container) and the other the plain layer, the walk continues into the
wrapped layer; a wrapper facing a plain layer (``strip``) gives its eval-time weights. Each layer
of the copy takes the name of its source (sub-layers created by a custom layer's ``__init__``
get fresh automatic names in a copy).
"""

from __future__ import annotations

from collections.abc import Callable

from keras import ops

from state_of_sparsity import keras_compat
from state_of_sparsity.layers.base import SparsityWrapper
from state_of_sparsity.layers.nested import SparseSublayers, is_graph_model

__all__ = ["copy_weights"]


def _own_weights(layer, children) -> list:
    inherited = {id(w) for child in children for w in child.weights}
    return [w for w in layer.weights if id(w) not in inherited]


def copy_weights(source, target, stripped: Callable | None = None, path: str = "") -> None:
    """Copies the weights of ``source`` into ``target``.

    ``target`` must have ``source``'s structure, except that layers may be wrapped on one side
    (a ``SparsityWrapper`` or ``SparseSublayers``) and plain on the other. A wrapper of
    ``source`` facing a plain layer of ``target`` gives ``stripped(wrapper)`` (its eval-time
    weights, in ``get_weights`` order). A mismatch raises ``ValueError`` naming the layer.
    """
    seen: set[tuple[int, int]] = set()

    def visit(src, dst, where):
        if (id(src), id(dst)) in seen:  # a shared layer, met again
            return
        seen.add((id(src), id(dst)))
        # Sub-layers of a layer copied from its config got fresh automatic names; the copy
        # keeps the source's (a wrapper and what it wraps share one name).
        dst.name = src.name
        src_wrapped, dst_wrapped = (
            isinstance(src, SparsityWrapper),
            isinstance(dst, SparsityWrapper),
        )
        if src_wrapped and not dst_wrapped:
            if stripped is None:
                raise ValueError(f"{where}: a sparsity wrapper faces a plain layer.")
            dst.set_weights(stripped(src))
            return
        if dst_wrapped and not src_wrapped:
            return visit(src, dst.layer, where)
        if isinstance(src, SparseSublayers) and not isinstance(dst, SparseSublayers):
            return visit(src.layer, dst, where)
        if isinstance(dst, SparseSublayers) and not isinstance(src, SparseSublayers):
            return visit(src, dst.layer, where)
        src_children = keras_compat.child_layers(src)
        dst_children = keras_compat.child_layers(dst)
        if src_wrapped or not src_children:
            _assign(src.weights, dst.weights, where)
            return
        if len(src_children) != len(dst_children):
            raise ValueError(
                f"{where}: {len(src_children)} sub-layers in the source, "
                f"{len(dst_children)} in the copy."
            )
        _assign(_own_weights(src, src_children), _own_weights(dst, dst_children), where, own=True)
        if is_graph_model(src):
            src_children, dst_children = _pair_by_name(src_children, dst_children, where)
        for s, d in zip(src_children, dst_children, strict=True):
            visit(s, d, f"{where}/{s.name}")

    visit(source, target, path or source.name)


def _pair_by_name(sources, targets, where):
    """The sub-layers of a model and of its copy that hold weights, paired: by name (unique in
    a model; a clone keeps them, while its inputs and layer order may differ), or by order when
    the copy was made from a config and its layers got fresh automatic names."""
    sources = [c for c in sources if c.weights]
    targets = [c for c in targets if c.weights]
    by_name = {c.name: c for c in targets}
    if all(c.name in by_name for c in sources):
        return sources, [by_name[c.name] for c in sources]
    if len(sources) != len(targets):
        raise ValueError(
            f"{where}: {len(sources)} sub-layers with weights in the source, {len(targets)} "
            "in the copy."
        )
    return sources, targets


def _assign(sources, targets, where, own=False) -> None:
    if len(sources) != len(targets):
        what = "own weights" if own else "weights"
        raise ValueError(
            f"{where}: {len(sources)} {what} in the source, {len(targets)} in the copy."
        )
    for s, t in zip(sources, targets, strict=True):
        if tuple(s.shape) != tuple(t.shape):
            raise ValueError(
                f"{where}: weight {s.name!r} has shape {tuple(s.shape)}, the copy's "
                f"{t.name!r} {tuple(t.shape)}."
            )
        t.assign(ops.convert_to_numpy(s.value))
