"""A protocol that makes subclassed models sparsifiable by ``sos.sparsify`` and ``sos.strip``.

Keras cannot clone a subclassed model layer by layer, but it can rebuild one from its config.
A model using the ``Sparsifiable`` mixin takes a ``layer_wrappers`` argument (kept in its
config) and creates each sparsifiable sub-layer through ``self.sparsifiable(layer)`` and each
attention layer through ``self.attention(name, **kwargs)``; ``sparsify`` then rebuilds the model
from its config with the wrappers it plans and copies every weight across, as it does for
Functional models.
"""

from __future__ import annotations

import copy

import keras

from state_of_sparsity.layers.attention import PROJECTIONS, SparseMultiHeadAttention
from state_of_sparsity.layers.techniques import wrapper_class

__all__ = ["Sparsifiable"]


class Sparsifiable:
    """Mixin for a subclassed ``keras.Model`` (or layer) that ``sparsify`` can rebuild.

    The class must:

    * accept ``layer_wrappers=None`` in ``__init__``, pass it to ``init_wrappers`` and return it
      from ``get_config`` (``wrapper_config()`` gives the entry);
    * create each layer that may be sparsified as ``self.sparsifiable(keras.layers.Dense(...,
      name=...))`` and each attention as ``self.attention(name, num_heads=..., key_dim=...)``;
      layer names must be unique within the model (they are the keys of ``layer_wrappers``:
      a layer's name, or ``"<attention name>/<query|key|value|attention_output>"``);
    * implement ``dummy_inputs()``: inputs that build every weight when the model is called on
      them (in eval mode).
    """

    def init_wrappers(self, layer_wrappers) -> None:
        self.layer_wrappers = copy.deepcopy(dict(layer_wrappers or {}))
        for key, spec in self.layer_wrappers.items():
            if not isinstance(spec, dict) or set(spec) != {"technique", "config"}:
                raise ValueError(
                    f"`layer_wrappers[{key!r}]` must be {{'technique': ..., 'config': ...}}, "
                    f"got {spec!r}."
                )
            wrapper_class(spec["technique"])

    def wrapper_config(self) -> dict:
        return {"layer_wrappers": copy.deepcopy(self.layer_wrappers)}

    def sparsifiable(self, layer):
        """``layer``, wrapped as ``layer_wrappers[layer.name]`` says (if it says anything)."""
        spec = self.layer_wrappers.get(layer.name)
        if spec is None:
            return layer
        return wrapper_class(spec["technique"])(layer, **copy.deepcopy(spec["config"]))

    def attention(self, name: str, **kwargs):
        """A ``MultiHeadAttention`` named ``name``, with the projections ``layer_wrappers`` lists
        under ``"<name>/<projection>"`` wrapped (then a ``SparseMultiHeadAttention``)."""
        specs = {
            projection: self.layer_wrappers[f"{name}/{projection}"]
            for projection in PROJECTIONS
            if f"{name}/{projection}" in self.layer_wrappers
        }
        if not specs:
            return keras.layers.MultiHeadAttention(name=name, **kwargs)
        return SparseMultiHeadAttention(name=name, projection_wrappers=specs, **kwargs)

    def dummy_inputs(self):
        raise NotImplementedError
