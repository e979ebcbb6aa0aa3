"""Sparsity plans for whole models and composite layers, and the ``SparseSublayers`` container.

``sparsify`` decides what to wrap as a *plan*: plain, JSON-serializable dicts, one entry per
layer that changes, so that a layer's plan can live in its config and be re-applied when a saved
model is loaded. An entry is one of:

- ``{"technique": name, "config": {...}}``: wrap a registry layer with that technique;
- ``{"projections": {"query": {"technique", "config"}, ...}}``: a ``MultiHeadAttention`` whose
  listed projections are wrapped (it becomes a ``SparseMultiHeadAttention``);
- ``{"layers": {"<index>": entry}}``: a Sequential or Functional model, by index in
  ``model.layers``;
- ``{"sublayers": {"<attribute path>": entry}}``: any other layer with sub-layers (a custom
  block, ``Bidirectional``, a subclassed model used as a layer), by the attribute holding each
  sub-layer (see ``sublayers``).

In a model's graph, a layer with a ``"sublayers"`` entry becomes a ``SparseSublayers``: the
layer itself (its class, config and ``call`` unchanged) inside a container that swaps the
planned sub-layers for their sparse versions once the layer is built. The container's config
holds the entry, so the model saves and reloads as a ``.keras`` file like any other.
"""

from __future__ import annotations

import copy
import inspect
import json

import keras

from state_of_sparsity import keras_compat
from state_of_sparsity.layers import sublayers as sublayers_lib
from state_of_sparsity.layers.attention import SparseMultiHeadAttention
from state_of_sparsity.layers.techniques import wrapper_class

__all__ = [
    "SparseSublayers",
    "apply_in_place",
    "check_entry",
    "clone_graph",
    "clone_model",
    "fresh_copy",
    "is_graph_model",
]

_KINDS = ("technique", "projections", "layers", "sublayers")


def is_graph_model(layer) -> bool:
    """Whether ``layer`` is a Sequential or Functional model (Keras can clone its graph)."""
    return isinstance(layer, keras.Sequential) or keras_compat.is_functional(layer)


def _kind(entry) -> str:
    kinds = [k for k in _KINDS if isinstance(entry, dict) and k in entry]
    if len(kinds) != 1:
        raise ValueError(
            f"A sparsity plan entry must have exactly one of the keys {list(_KINDS)}, "
            f"got {entry!r}."
        )
    return kinds[0]


def check_entry(entry) -> None:
    """Raises ``ValueError`` for a malformed plan entry (recursively)."""
    kind = _kind(entry)
    if kind == "technique":
        wrapper_class(entry["technique"])
    elif kind == "projections":
        for spec in entry["projections"].values():
            wrapper_class(spec["technique"])
    else:
        for child in entry[kind].values():
            check_entry(child)


def fresh_copy(layer):
    """A new, unbuilt layer of ``layer``'s class and config (an operation that is not a layer,
    i.e. a ``keras.ops`` node, is stateless and returned as is)."""
    if not isinstance(layer, keras.layers.Layer):
        return layer
    try:
        config = layer.get_config()
    except NotImplementedError:
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) cannot be copied: its get_config() "
            "is not implemented. Implement get_config() (Keras needs it to clone or save the "
            "model too)."
        ) from None
    return type(layer).from_config(config)


def _graph_copy(layer, entry):
    """The new, unbuilt layer that replaces ``layer`` in a cloned graph."""
    if entry is None:
        return clone_model(layer, None) if is_graph_model(layer) else fresh_copy(layer)
    kind = _kind(entry)
    if kind == "technique":
        return wrapper_class(entry["technique"])(
            fresh_copy(layer), **copy.deepcopy(entry["config"])
        )
    if kind == "projections":
        return SparseMultiHeadAttention.from_config(
            {**layer.get_config(), "projection_wrappers": entry["projections"]}
        )
    if kind == "layers":
        return clone_model(layer, entry)
    return SparseSublayers(fresh_copy(layer), entry["sublayers"])


def clone_graph(model, copy_layer):
    """A copy of the Sequential / Functional ``model`` made by Keras' cloning, each layer (and
    ``keras.ops`` node) replaced by ``copy_layer(layer, index)`` (``index``: its position in
    ``model.layers`` as a string, None for operations) and the copy built on symbolic inputs.
    Weights are not copied (see ``transfer.copy_weights``); the copy is uncompiled."""
    index = {id(layer): str(i) for i, layer in enumerate(model.layers)}
    kwargs = {} if isinstance(model, keras.Sequential) else {"call_function": _call}
    new = keras.models.clone_model(
        model, clone_function=lambda layer: copy_layer(layer, index.get(id(layer))), **kwargs
    )
    if new.compiled:  # clone_model compiles the copy like the original; ours is a new model
        new = _uncompiled(new)
    return new


def _call(layer, *args, **kwargs):
    """Calls ``layer`` as the original graph did, without a ``mask`` argument its ``call`` does
    not take: Keras records ``mask=`` for layers whose ``call`` has one (wrappers do), and the
    plain layer that ``strip`` puts in their place may not (its input's mask still reaches it
    the usual way)."""
    if "mask" in kwargs and isinstance(layer, keras.layers.Layer):
        parameters = inspect.signature(layer.call).parameters.values()
        if not any(p.name == "mask" or p.kind is p.VAR_KEYWORD for p in parameters):
            del kwargs["mask"]
    return layer(*args, **kwargs)


def clone_model(model, entry):
    """``clone_graph`` of ``model`` with the plan ``entry`` (a ``"layers"`` entry, or None)."""
    planned = (entry or {}).get("layers", {})
    return clone_graph(model, lambda layer, index: _graph_copy(layer, planned.get(index)))


def _uncompiled(model):
    if isinstance(model, keras.Sequential):
        (inputs,) = model.inputs
        head = keras.Input(batch_shape=inputs.shape, dtype=inputs.dtype)
        return keras.Sequential([head, *model.layers], name=model.name)
    return keras.Model(model.inputs, model.outputs, name=model.name)


def apply_in_place(layer, sublayers: dict) -> None:
    """Swaps the sub-layers of the built ``layer`` at the attribute paths of ``sublayers`` for
    their sparse versions (built, with fresh state; callers copy weights afterwards)."""
    for path, entry in sublayers.items():
        old = sublayers_lib.get_at(layer, path)
        kind = _kind(entry)
        if kind == "sublayers":
            apply_in_place(old, entry["sublayers"])
            continue
        if kind == "technique":
            new = wrapper_class(entry["technique"])(old, **copy.deepcopy(entry["config"]))
            new.build()
        elif kind == "projections":
            new = SparseMultiHeadAttention.from_config(
                {**old.get_config(), "projection_wrappers": entry["projections"]}
            )
            new.build_from_config(old.get_build_config())
        else:
            new = clone_model(old, entry)
        sublayers_lib.replace_at(layer, path, new)


@keras.saving.register_keras_serializable(package="state_of_sparsity")
class SparseSublayers(keras.layers.Wrapper):
    """A layer whose sub-layers are sparsified in place: a custom block, ``Bidirectional``, or
    a subclassed model used as a layer.

    The inner layer keeps its class, config and ``call``; once it is built (by its first call,
    with its real arguments), the sub-layers at the attribute paths of ``sublayers`` (a plan
    entry each, see the module docstring) are swapped for their sparse versions, which its
    ``call`` then uses. ``sparsify`` makes these; the entry is in the config, so the layer saves
    and reloads like any other (the inner layer's class must be loadable, as without sparsity).
    Masks, VD / L0 parameters and the report work on the swapped sub-layers as anywhere else.
    """

    def __init__(self, layer, sublayers, **kwargs):
        if not isinstance(sublayers, dict) or not sublayers:
            raise ValueError(
                f"`sublayers` must be a non-empty dict of plan entries, got {sublayers!r}."
            )
        for entry in sublayers.values():
            check_entry(entry)
        kwargs.setdefault("name", layer.name)
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)
        # Kept as JSON text: Keras would track a dict attribute (and deep-copy its tracker).
        self._sublayers_json = json.dumps(sublayers)
        self.supports_masking = layer.supports_masking
        self._swapped = False

    @property
    def sublayers(self) -> dict:
        """The plan entries, by attribute path of the inner layer."""
        return json.loads(self._sublayers_json)

    def build(self, input_shape=None):
        # The inner layer is built by its first call (in ``call``), where its real arguments
        # are known; shapes alone cannot build a layer whose call takes several inputs.
        self.built = True

    def call(self, *args, **kwargs):
        if not self._swapped:
            if not self.layer.built:
                self.layer(*args, **kwargs)
            apply_in_place(self.layer, self.sublayers)
            self._swapped = True
        return self.layer(*args, **kwargs)

    def compute_mask(self, inputs, mask=None):
        return self.layer.compute_mask(inputs, mask)

    def get_config(self):
        return {**super().get_config(), "sublayers": self.sublayers}
