"""MultiHeadAttention whose EinsumDense projections are sparsity wrappers."""

from __future__ import annotations

import copy

import keras

from state_of_sparsity.layers.techniques import wrapper_class

__all__ = ["SparseMultiHeadAttention", "PROJECTIONS"]

# Public projection name (the EinsumDense's own name) -> attribute inside MultiHeadAttention.
PROJECTIONS = {
    "query": "_query_dense",
    "key": "_key_dense",
    "value": "_value_dense",
    "attention_output": "_output_dense",
}
_ATTRIBUTE_TO_PROJECTION = {attr: name for name, attr in PROJECTIONS.items()}


@keras.saving.register_keras_serializable(package="state_of_sparsity")
class SparseMultiHeadAttention(keras.layers.MultiHeadAttention):
    """``keras.layers.MultiHeadAttention`` with some of its q/k/v/output projections wrapped.

    ``projection_wrappers`` maps a projection name (``"query"``, ``"key"``, ``"value"``,
    ``"attention_output"``) to ``{"technique": name, "config": wrapper arguments}``. Each
    projection is wrapped the moment MultiHeadAttention creates it in ``build``, so the layer is
    exactly Keras' attention with sparse projections, and it saves and reloads as one layer.
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
        self.projection_wrappers = projection_wrappers

    def _setattr_hook(self, name, value):
        projection = _ATTRIBUTE_TO_PROJECTION.get(name)
        specs = getattr(self, "projection_wrappers", None) or {}
        if projection in specs and isinstance(value, keras.layers.EinsumDense):
            spec = specs[projection]
            value = wrapper_class(spec["technique"])(value, **copy.deepcopy(spec["config"]))
        return super()._setattr_hook(name, value)

    def projection(self, name: str):
        """The (possibly wrapped) projection layer ``name``; the layer must be built."""
        return getattr(self, PROJECTIONS[name])

    def get_config(self):
        return {
            **super().get_config(),
            "projection_wrappers": copy.deepcopy(self.projection_wrappers),
        }
