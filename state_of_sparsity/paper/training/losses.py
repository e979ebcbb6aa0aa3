"""Cross-entropy with label smoothing on integer labels."""

from __future__ import annotations

import math

import keras
from keras import ops

__all__ = ["PaddedSequenceCrossentropy", "SmoothedSparseCategoricalCrossentropy"]


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


@keras.saving.register_keras_serializable(package="state_of_sparsity")
class PaddedSequenceCrossentropy(keras.losses.Loss):
    """Label-smoothed cross-entropy of sequence logits, averaged over non-padding tokens (the
    paper's Transformer loss: t2t ``padded_cross_entropy`` with ``smoothing_cross_entropy``,
    spec §5.4).

    For V classes and smoothing ls, the target puts c = 1 − ls on the label and
    ls / (V − 1) on every other class; the loss per token is
    CE(softmax(logits), target) − H(target), H(target) = −c·log c − ls·log(ls / (V − 1)), so a
    perfect prediction scores 0. Tokens whose label is ``pad_id`` weigh 0; the loss of a batch
    is Σ loss·w / max(Σ w, 1). ``call`` returns it per token, as loss·w·size / max(Σ w, 1),
    whose mean (Keras' reduction) is that value: returning per-element values lets Keras scale
    the loss for ``tf.distribute`` as it does for its own losses (a scalar would be summed over
    the replicas). Under a distribution strategy each replica averages over its own tokens.
    """

    def __init__(
        self, vocab_size, label_smoothing=0.0, pad_id=0, name="padded_crossentropy", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"`label_smoothing` must be in [0, 1), got {label_smoothing!r}.")
        if int(vocab_size) < 2:
            raise ValueError(f"`vocab_size` must be >= 2, got {vocab_size!r}.")
        self.vocab_size = int(vocab_size)
        self.label_smoothing = float(label_smoothing)
        self.pad_id = int(pad_id)

    def call(self, y_true, y_pred):
        labels = ops.cast(y_true, "int32")
        logits = ops.cast(y_pred, "float32")
        ls, v = self.label_smoothing, self.vocab_size
        confidence, low = 1.0 - ls, ls / (v - 1)
        log_probs = ops.log_softmax(logits, axis=-1)
        on_label = ops.squeeze(ops.take_along_axis(log_probs, labels[..., None], axis=-1), -1)
        loss = -confidence * on_label
        if ls > 0:
            loss = loss - low * (ops.sum(log_probs, axis=-1) - on_label)
            entropy = -(confidence * math.log(confidence) + ls * math.log(low))
            loss = loss - entropy
        weights = ops.cast(ops.not_equal(labels, self.pad_id), "float32")
        scale = ops.cast(ops.size(weights), "float32") / ops.maximum(ops.sum(weights), 1.0)
        return loss * weights * scale

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "label_smoothing": self.label_smoothing,
            "pad_id": self.pad_id,
        }
