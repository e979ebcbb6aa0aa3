"""Token accuracy over the non-padding targets of a batch of sequences."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["PaddedTokenAccuracy"]


@keras.saving.register_keras_serializable(package="state_of_sparsity")
class PaddedTokenAccuracy(keras.metrics.Mean):
    """Fraction of target tokens (label != ``pad_id``) whose argmax logit is the label."""

    def __init__(self, pad_id=0, name="token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pad_id = int(pad_id)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(y_true, "int32")
        correct = ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), labels), "float32")
        weights = ops.cast(ops.not_equal(labels, self.pad_id), "float32")
        return super().update_state(correct, sample_weight=weights)

    def get_config(self):
        return {**super().get_config(), "pad_id": self.pad_id}
