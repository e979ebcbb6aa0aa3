"""Step checkpoints with automatic resume, and the NaN guard.

A checkpoint is ``ckpt-<step>.weights.h5`` (``model.save_weights``: every model weight —
masks, VD/L0 parameters, their step counters and noise states included — and the optimizer
state) plus ``checkpoint.json`` naming the latest one. Files are written under a temporary name
and renamed, so a run killed mid-write (even with SIGKILL) leaves the previous checkpoint
intact; rerunning the same command restores the latest checkpoint, and with a data stream that
is a deterministic function of the step (``data.imagenet.load(..., seed=, initial_step=)``)
continues to the same result as an uninterrupted run. The architecture is written once as
``model.json`` beside the checkpoints, so tools can rebuild the model from a directory.
"""

from __future__ import annotations

import json
import math
import os

import keras
from keras import ops

# The saved model configs name these classes (the model, its optimizer schedule, loss, metrics).
from state_of_sparsity.models import transformer  # noqa: F401
from state_of_sparsity.training import losses, lr_schedules, metrics  # noqa: F401

__all__ = [
    "CHECKPOINT_INDEX",
    "StepCheckpoint",
    "TrainingDiverged",
    "checkpoint_path",
    "latest_checkpoint",
    "load_model_from_checkpoint",
    "write_json",
    "write_model_config",
]

CHECKPOINT_INDEX = "checkpoint.json"
MODEL_CONFIG = "model.json"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the last good checkpoint."""


def checkpoint_path(directory: str, step: int) -> str:
    return os.path.join(directory, f"ckpt-{step}.weights.h5")


def write_json(path, data) -> None:
    """Writes ``data`` as JSON to ``path`` atomically (a temporary file, then a rename)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def _index(directory):
    path = os.path.join(directory, CHECKPOINT_INDEX)
    if not os.path.isfile(path):
        return {"latest": None, "steps": []}
    with open(path) as f:
        return json.load(f)


def latest_checkpoint(directory: str) -> tuple[int, str] | None:
    """``(step, path)`` of the newest checkpoint in ``directory``, or None."""
    index = _index(directory)
    if index["latest"] is None:
        return None
    step = int(index["latest"])
    return step, checkpoint_path(directory, step)


def write_model_config(model, directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    write_json(os.path.join(directory, MODEL_CONFIG), json.loads(model.to_json()))


def load_model_from_checkpoint(path: str):
    """Rebuilds the model from ``model.json`` beside ``path`` (a checkpoint file or directory,
    meaning its latest checkpoint) and loads the weights; returns ``(model, step)``."""
    if os.path.isdir(path):
        latest = latest_checkpoint(path)
        if latest is None:
            raise ValueError(f"No checkpoint in {path!r} (no {CHECKPOINT_INDEX}).")
        step, path = latest
    else:
        name = os.path.basename(path)
        if not (name.startswith("ckpt-") and name.endswith(".weights.h5")):
            raise ValueError(f"{path!r} is not a checkpoint (ckpt-<step>.weights.h5).")
        step = int(name[len("ckpt-") : -len(".weights.h5")])
    if not os.path.isfile(path):
        raise ValueError(f"Checkpoint {path!r} does not exist.")
    config_path = os.path.join(os.path.dirname(path), MODEL_CONFIG)
    if not os.path.isfile(config_path):
        raise ValueError(f"No {MODEL_CONFIG} beside {path!r}: cannot rebuild the model.")
    with open(config_path) as f:
        model = keras.models.model_from_json(f.read())
    model.load_weights(path)
    return model, step


class StepCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint every ``every`` optimizer steps and at the end of training.

    Before saving, the loss of the batch just run is checked (the NaN guard): a NaN or infinite
    loss stops training without saving, so the latest checkpoint stays the last good one, and
    ``fit`` raises ``TrainingDiverged`` naming it. ``keep`` > 0 keeps only that many recent
    checkpoints (plus step 0, the initial values a lottery-ticket run needs).
    """

    def __init__(self, directory: str, every: int, keep: int = 0):
        super().__init__()
        if every < 1:
            raise ValueError(f"`every` must be >= 1, got {every}.")
        self.directory = directory
        self.every = int(every)
        self.keep = int(keep)
        self._step = None
        self._diverged = False

    def save(self, step: int) -> str:
        os.makedirs(self.directory, exist_ok=True)
        path = checkpoint_path(self.directory, step)
        tmp = os.path.join(self.directory, f".tmp-{step}.weights.h5")
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, path)
        index = _index(self.directory)
        steps = sorted(set(index["steps"]) | {step})
        if self.keep > 0:
            stale = [s for s in steps if s != 0][: -self.keep]
            for old in stale:
                if os.path.exists(checkpoint_path(self.directory, old)):
                    os.remove(checkpoint_path(self.directory, old))
            steps = [s for s in steps if s not in stale]
        write_json(os.path.join(self.directory, CHECKPOINT_INDEX), {"latest": step, "steps": steps})
        return path

    def on_train_begin(self, logs=None):
        self._step = None
        self._diverged = False

    def on_train_batch_begin(self, batch, logs=None):
        if self._step is None:
            self._step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        self._begin = batch

    def _check(self, logs, step):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(ops.convert_to_numpy(loss))):
            latest = latest_checkpoint(self.directory)
            where = f"{latest[1]} (step {latest[0]})" if latest else "none"
            self.model.stop_training = True
            self._diverged = True
            raise TrainingDiverged(
                f"The training loss is {float(ops.convert_to_numpy(loss))} at step {step}; "
                f"stopped without saving. Last good checkpoint: {where}."
            )

    def on_train_batch_end(self, batch, logs=None):
        self._step += batch - self._begin + 1
        if self._step % self.every == 0:
            self._check(logs, self._step)
            self.save(self._step)

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, self._step)

    def on_train_end(self, logs=None):
        if self._step is None or self._diverged:
            return
        latest = latest_checkpoint(self.directory)
        if latest is None or latest[0] != self._step:
            self.save(self._step)
