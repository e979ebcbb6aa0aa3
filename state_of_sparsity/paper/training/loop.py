"""Resuming and training to a step count, with checkpoints and a stop at exactly ``train_steps``.

A binary restores once (``restore``), before it trains, evaluates or exports anything, so a
rerun of a finished run evaluates the trained model, never a fresh one; then ``train_to_step``
continues from the optimizer's step.
"""

from __future__ import annotations

import contextlib
import math
import os
import time

from keras import ops

from state_of_sparsity.callbacks import StepCallback
from state_of_sparsity.paper.training import checkpoints
from state_of_sparsity.paper.training.errors import UsageError

__all__ = ["ProgressLog", "StopAtStep", "checkpoint_dir", "initialize", "restore", "train_to_step"]


def checkpoint_dir(output_dir: str) -> str:
    return os.path.join(output_dir, "checkpoints")


class StopAtStep(StepCallback):
    """Stops ``fit`` once the optimizer has taken ``train_steps`` steps in total."""

    def __init__(self, train_steps: int):
        super().__init__()
        self.train_steps = int(train_steps)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.step >= self.train_steps:
            self.model.stop_training = True


class ProgressLog(StepCallback):
    """Prints ``step <n>/<total>: loss <l>, <r> steps/s`` every ``every`` optimizer steps,
    independently of checkpoints and of Keras' per-"epoch" lines. Each ``fit``
    (``train_and_eval``: between evaluations) times its own steps."""

    def __init__(self, every: int, train_steps: int):
        super().__init__()
        self.every = int(every)
        self.train_steps = int(train_steps)

    def on_first_batch(self):
        self._since = (self.step, time.monotonic())

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.step % self.every:
            return
        loss = float(ops.convert_to_numpy((logs or {}).get("loss", math.nan)))
        step0, t0 = self._since
        rate = (self.step - step0) / max(time.monotonic() - t0, 1e-9)
        self._since = (self.step, time.monotonic())
        print(f"step {self.step}/{self.train_steps}: loss {loss:.4f}, {rate:.2f} steps/s",
              flush=True)  # fmt: skip


def _build_optimizer(model) -> None:
    strategy = getattr(model, "distribute_strategy", None)  # TensorFlow backend only
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model.optimizer.build(model.trainable_variables)


def restore(model, directory: str, warn=None) -> tuple[int, float] | None:
    """Loads the newest intact checkpoint of ``directory`` into the compiled ``model``.

    Returns ``(step, seconds)`` — the checkpoint's step and the wall-clock seconds the run had
    spent when it was written — or None when ``directory`` holds no checkpoint. A checkpoint
    that cannot be read (truncated, missing) is skipped with ``warn(message)`` naming it, and
    the next older one is tried; ``UsageError`` when none is intact, or when they hold another
    architecture. Writes nothing.
    """
    index = checkpoints.read_index(directory)
    if index["latest"] is None:
        return None
    _build_optimizer(model)
    candidates = sorted((s for s in index["steps"] if s <= index["latest"]), reverse=True)
    if index["latest"] not in candidates:
        candidates.insert(0, index["latest"])
    for step in candidates:
        path = checkpoints.checkpoint_path(directory, step)
        try:
            checkpoints.load_weights(model, path)
        except checkpoints.CorruptCheckpoint as error:
            if warn is not None:
                warn(f"{error} Trying the previous checkpoint.")
            continue
        restored = int(ops.convert_to_numpy(model.optimizer.iterations))
        if restored != step:
            raise UsageError(f"Checkpoint {path} holds optimizer step {restored}, not {step}.")
        return step, index["seconds"].get(step, 0.0)
    raise UsageError(f"No intact checkpoint in {directory} (all {len(candidates)} are corrupt).")


def initialize(model, directory: str) -> None:
    """Writes ``model.json`` and the step-0 checkpoint of a fresh run into ``directory``."""
    _build_optimizer(model)
    checkpoints.write_model_config(model, directory)
    saver = checkpoints.StepCheckpoint(directory, every=1)
    saver.set_model(model)
    saver.save(0)


def train_to_step(
    model,
    make_train_data,
    *,
    train_steps: int,
    output_dir: str,
    steps_per_checkpoint: int,
    keep_checkpoint_max: int = 0,
    callbacks=(),
    clock=None,
    verbose="auto",
) -> int:
    """Trains ``model`` (compiled, restored or initialized) from its optimizer's step until it
    has taken ``train_steps`` steps, checkpointing into ``<output_dir>/checkpoints``.

    ``make_train_data(initial_step)`` must return the (infinite) training stream from that step
    on. A Keras "epoch" is one checkpoint interval. ``clock()``: the run's seconds so far,
    recorded with each checkpoint. Returns the step reached.
    """
    step = int(ops.convert_to_numpy(model.optimizer.iterations))
    if step >= train_steps:
        return step
    chunk = min(steps_per_checkpoint, train_steps)
    saver = checkpoints.StepCheckpoint(
        checkpoint_dir(output_dir), steps_per_checkpoint, keep_checkpoint_max, clock=clock
    )
    model.fit(
        make_train_data(step),
        steps_per_epoch=chunk,
        initial_epoch=step // chunk,
        epochs=math.ceil(train_steps / chunk),
        callbacks=[*callbacks, saver, StopAtStep(train_steps)],
        shuffle=False,
        verbose=verbose,
    )
    return int(ops.convert_to_numpy(model.optimizer.iterations))
