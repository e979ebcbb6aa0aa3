"""MultiHeadAttention whose EinsumDense projections are sparsity wrappers."""

from __future__ import annotations

import copy
import json

import keras

from state_of_sparsity.layers import sublayers
from state_of_sparsity.layers.techniques import wrapper_class

__all__ = ["SparseMultiHeadAttention", "PROJECTIONS"]

# Public projection name (the EinsumDense's own name) -> attribute inside MultiHeadAttention.
PROJECTIONS = {
    "query": "_query_dense",
    "key": "_key_dense",
    "value": "_value_dense",
    "attention_output": "_output_dense",
}


@keras.saving.register_keras_serializable(package="state_of_sparsity")
class SparseMultiHeadAttention(keras.layers.MultiHeadAttention):
    """``keras.layers.MultiHeadAttention`` with some of its q/k/v/output projections wrapped.

    ``projection_wrappers`` maps a projection name (``"query"``, ``"key"``, ``"value"``,
    ``"attention_output"``) to ``{"technique": name, "config": wrapper arguments}``. ``build``
    builds Keras' attention, then wraps each listed projection in place, so the layer is exactly
    Keras' attention with sparse projections, and it saves and reloads as one layer.
    ``sparsify`` builds these for you; other arguments are MultiHeadAttention's.
    """

    def __init__(self, *args, projection_wrappers=None, **kwargs):
        projection_wrappers = copy.deepcopy(projection_wrappers or {})
        unknown = sorted(set(projection_wrappers) - set(PROJECTIONS))
        if unknown:
            raise ValueError(
                f"Unknown projection(s) {unknown} in `projection_wrappers`; allowed: "
                f"{sorted(PROJECTIONS)}."
            )
        for spec in projection_wrappers.values():
            wrapper_class(spec["technique"])
        super().__init__(*args, **kwargs)
        # Kept as JSON text: Keras would track a dict attribute (and deep-copy its tracker).
        self._projection_wrappers_json = json.dumps(projection_wrappers)

    @property
    def projection_wrappers(self) -> dict:
        """``{projection name: {"technique": ..., "config": ...}}``."""
        return json.loads(self._projection_wrappers_json)

    def build(self, query_shape, value_shape, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        for name, spec in self.projection_wrappers.items():
            wrapper = wrapper_class(spec["technique"])(self.projection(name), **spec["config"])
            wrapper.build()
            sublayers.replace_at(self, PROJECTIONS[name], wrapper)

    def projection(self, name: str):
        """The (possibly wrapped) projection layer ``name``; the layer must be built."""
        return getattr(self, PROJECTIONS[name])

    def get_config(self):
        return {
            **super().get_config(),
            "projection_wrappers": self.projection_wrappers,
        }
