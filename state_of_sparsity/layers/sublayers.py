"""Finding and replacing the sub-layers of a custom layer by the attributes that hold them.

A custom layer calls its sub-layers through its attributes (``self.att(x)``,
``self.blocks[2](x)``), so replacing the attribute's value replaces the sub-layer in every later
call. An attribute path names one: attribute names and list indices / dict keys joined by ".",
e.g. ``"att"``, ``"ffn"``, ``"blocks.2"``, ``"encoder._self_attention_layer"``.
"""

from __future__ import annotations

import keras

from state_of_sparsity import keras_compat

__all__ = ["attribute_paths", "get_at", "replace_at"]

# Attributes through which Keras (and TensorFlow's object tracking) refer to sub-layers for
# their own bookkeeping; the user's attributes are the others.
_BOOKKEEPING = {
    "_layers",
    "_operations",
    "_functional",
    "_tracker",
    "_self_unconditional_checkpoint_dependencies",
    "_self_unconditional_dependency_names",
    "_self_unconditional_deferred_dependencies",
}


def _held(value, path):
    """``(path, layer)`` for the layers in ``value``: a layer, or lists / tuples / dicts (with
    string keys) of them, nested to any depth."""
    if isinstance(value, keras.layers.Layer):
        yield path, value
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _held(item, f"{path}.{index}")
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "." not in key:
                yield from _held(item, f"{path}.{key}")


def _holders(layer):
    for name, value in vars(layer).items():
        if name not in _BOOKKEEPING:
            yield from _held(value, name)


def attribute_paths(layer) -> list[tuple[str | None, keras.layers.Layer]]:
    """``(path, child)`` for every sub-layer ``layer`` tracks, in Keras' order; ``path`` is the
    first attribute path holding the child, or None if no attribute does (it cannot be
    replaced)."""
    found: dict[int, str] = {}
    for path, child in _holders(layer):
        found.setdefault(id(child), path)
    return [(found.get(id(child)), child) for child in keras_compat.child_layers(layer)]


def _step(owner, name: str):
    if isinstance(owner, (list, tuple)):
        return owner[int(name)]
    return owner[name] if isinstance(owner, dict) else getattr(owner, name)


def _resolve(layer, path: str):
    """``(owning layer, holder, last name)``: the holder (a layer, list or dict) has the item
    ``last name``; the owning layer is the nearest layer at or above the holder."""
    *parents, last = path.split(".")
    owner = holder = layer
    for name in parents:
        holder = _step(holder, name)
        if isinstance(holder, keras.layers.Layer):
            owner = holder
    return owner, holder, last


def get_at(layer, path: str):
    """The sub-layer at attribute ``path`` of ``layer``."""
    _, holder, last = _resolve(layer, path)
    return _step(holder, last)


def replace_at(layer, path: str, new) -> None:
    """Puts ``new`` at attribute ``path`` of ``layer`` in place of the sub-layer there: the
    attribute (or list item) and the tracking of its owning layer both change, so ``new``
    takes the old sub-layer's place in calls, weights and saving."""
    owner, holder, last = _resolve(layer, path)
    if isinstance(holder, tuple):
        raise ValueError(f"Cannot replace the sub-layer at {path!r}: it is held in a tuple.")
    keras_compat.replace_child(owner, _step(holder, last), new)
    if isinstance(holder, list):
        holder[int(last)] = new
    elif isinstance(holder, dict):
        holder[last] = new
    else:
        setattr(holder, last, new)
