"""Every use of a private Keras API, in one place (each has a test in tests/test_keras_compat.py).

Keras 3 has no public names for these; if a Keras release moves one, this module is the only
one to change. The supported Keras range is pinned in pyproject.toml.
"""

from __future__ import annotations

import keras
from keras.src.models.functional import Functional

__all__ = ["causal_padding", "child_layers", "is_functional", "replace_child"]


def is_functional(model) -> bool:
    """Whether ``model`` is a Functional model (``keras.Model(inputs, outputs)`` or a subclass
    built that way); Sequential models are not."""
    return isinstance(model, Functional) and not isinstance(model, keras.Sequential)


def child_layers(layer) -> list:
    """The sub-layers ``layer`` tracks directly, in creation order (Keras' own traversal)."""
    return list(layer._flatten_layers(include_self=False, recursive=False))


def causal_padding(layer) -> list:
    """The ``ops.pad`` widths of a causal ``Conv1D``'s input (left padding of the time axis)."""
    return layer._compute_causal_padding()


def replace_child(owner, old, new) -> None:
    """Makes ``owner`` track the layer ``new`` in place of ``old`` (same position).

    Only the tracking changes: callers set the attribute (or list item) that holds the layer.
    Without this, ``old`` would stay among ``owner``'s sub-layers and its weights.
    """
    owner._tracker.replace_tracked_value("layers", old, new)
