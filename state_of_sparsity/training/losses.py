"""Cross-entropy with label smoothing on integer labels."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["SmoothedSparseCategoricalCrossentropy"]


@keras.saving.register_keras_serializable(package="state_of_sparsity")
class SmoothedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Softmax cross-entropy of logits against integer labels smoothed as in TF's
    ``softmax_cross_entropy(label_smoothing=ls)``: targets = one_hot·(1 − ls) + ls / num_classes
    (the paper's ResNet-50 loss, spec §4.3). Mean over the batch."""

    def __init__(self, num_classes, label_smoothing=0.0, name="smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"`label_smoothing` must be in [0, 1), got {label_smoothing!r}.")
        self.num_classes = int(num_classes)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.num_classes)
        return keras.losses.categorical_crossentropy(
            labels, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "label_smoothing": self.label_smoothing,
        }
