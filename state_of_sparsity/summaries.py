"""``SparsitySummaries``: per-layer and global sparsity written to TensorBoard.

Uses TensorFlow's summary writer (the TensorBoard format), imported when the callback starts.
"""

from __future__ import annotations

import os

import keras
from keras import ops

from state_of_sparsity import traversal
from state_of_sparsity.layers.penalized import PenalizedWrapper
from state_of_sparsity.optional import require
from state_of_sparsity.report import sparsity_report

__all__ = ["SparsitySummaries"]


class SparsitySummaries(keras.callbacks.Callback):
    """Writes ``sparsity/<layer path>``, ``sparsity/global``, ``learning_rate`` and, with VD / L0
    layers, ``regularizer_weight`` (the penalty weight used in the last step) to ``log_dir``.

    Values are those of ``sos.sparsity_report(model)`` (eval-time kernels), logged against the
    optimizer step at the end of every epoch, and also every ``update_freq`` batches if
    ``update_freq`` is an integer. Use beside ``keras.callbacks.TensorBoard`` with the same
    ``log_dir`` to see them next to the loss.

    Args:
        log_dir: directory of the event files (a ``train`` subdirectory is used, as Keras'
            TensorBoard callback does).
        update_freq: ``"epoch"`` or a number of batches.
    """

    def __init__(self, log_dir, update_freq="epoch"):
        super().__init__()
        if update_freq != "epoch" and not (
            isinstance(update_freq, int) and not isinstance(update_freq, bool) and update_freq > 0
        ):
            raise ValueError(
                f"`update_freq` must be 'epoch' or an integer > 0, got {update_freq!r}."
            )
        self.log_dir = str(log_dir)
        self.update_freq = update_freq
        self._writer = None
        self._batches = 0

    def on_train_begin(self, logs=None):
        self._tf = require("tensorflow", "SparsitySummaries (TensorBoard files)")
        self._writer = self._tf.summary.create_file_writer(os.path.join(self.log_dir, "train"))

    def _write(self):
        tf = self._tf
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        optimizer = self.model.optimizer
        step = int(ops.convert_to_numpy(optimizer.iterations))
        report = sparsity_report(self.model)
        penalized = [
            w for _, w in traversal.wrappers(self.model) if isinstance(w, PenalizedWrapper)
        ]
        with self._writer.as_default(step=step):
            for row in report.layers:
                tf.summary.scalar(f"sparsity/{row.name}", row.sparsity)
            tf.summary.scalar("sparsity/global", report.global_sparsity)
            tf.summary.scalar("learning_rate", float(ops.convert_to_numpy(optimizer.learning_rate)))
            if penalized:
                weight = ops.convert_to_numpy(penalized[0].regularizer_value)
                tf.summary.scalar("regularizer_weight", float(weight))
        self._writer.flush()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch":
            return
        self._batches += 1
        if self._batches % self.update_freq == 0:
            self._write()

    def on_epoch_end(self, epoch, logs=None):
        self._write()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
