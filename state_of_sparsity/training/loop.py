"""Training to a step count with checkpoints, resume and a stop at exactly ``train_steps``."""

from __future__ import annotations

import contextlib
import math
import os

import keras
from keras import ops

from state_of_sparsity.training import checkpoints

__all__ = ["StopAtStep", "restore_or_initialize", "train_to_step"]


class StopAtStep(keras.callbacks.Callback):
    """Stops ``fit`` once the optimizer has taken ``train_steps`` steps in total."""

    def __init__(self, train_steps: int):
        super().__init__()
        self.train_steps = int(train_steps)
        self._step = None

    def on_train_begin(self, logs=None):
        self._step = None

    def on_train_batch_begin(self, batch, logs=None):
        if self._step is None:
            self._step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        self._begin = batch

    def on_train_batch_end(self, batch, logs=None):
        self._step += batch - self._begin + 1
        if self._step >= self.train_steps:
            self.model.stop_training = True


def restore_or_initialize(model, checkpoint_dir: str) -> int:
    """Loads the latest checkpoint of ``checkpoint_dir`` into the compiled ``model`` and returns
    its step; with none, writes ``model.json`` and the step-0 checkpoint and returns 0."""
    strategy = getattr(model, "distribute_strategy", None)  # TensorFlow backend only
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model.optimizer.build(model.trainable_variables)
    latest = checkpoints.latest_checkpoint(checkpoint_dir)
    if latest is not None:
        step, path = latest
        try:
            model.load_weights(path)
        except ValueError as error:
            raise ValueError(
                f"The checkpoint {path} does not match the model (was it written with other "
                f"flags, e.g. another depth, width or technique?): {error}"
            ) from None
        restored = int(ops.convert_to_numpy(model.optimizer.iterations))
        if restored != step:
            raise ValueError(f"{path} holds optimizer step {restored}, not {step}.")
        return step
    checkpoints.write_model_config(model, checkpoint_dir)
    saver = checkpoints.StepCheckpoint(checkpoint_dir, every=1)
    saver.set_model(model)
    saver.save(0)
    return 0


def train_to_step(
    model,
    make_train_data,
    *,
    train_steps: int,
    output_dir: str,
    steps_per_checkpoint: int,
    keep_checkpoint_max: int = 0,
    callbacks=(),
    verbose="auto",
) -> int:
    """Trains ``model`` (compiled) until the optimizer has taken ``train_steps`` steps.

    Resumes from ``<output_dir>/checkpoints`` when it holds a checkpoint; ``make_train_data
    (initial_step)`` must return the (infinite) training stream from that step on. A Keras
    "epoch" is one checkpoint interval. Returns the step reached.
    """
    checkpoint_dir = os.path.join(output_dir, "checkpoints")
    step = restore_or_initialize(model, checkpoint_dir)
    if step >= train_steps:
        return step
    chunk = min(steps_per_checkpoint, train_steps)
    initial_epoch = step // chunk
    saver = checkpoints.StepCheckpoint(checkpoint_dir, steps_per_checkpoint, keep_checkpoint_max)
    model.fit(
        make_train_data(step),
        steps_per_epoch=chunk,
        initial_epoch=initial_epoch,
        epochs=math.ceil(train_steps / chunk),
        callbacks=[*callbacks, saver, StopAtStep(train_steps)],
        shuffle=False,
        verbose=verbose,
    )
    return int(ops.convert_to_numpy(model.optimizer.iterations))
