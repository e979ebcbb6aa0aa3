"""Step checkpoints: writing them safely, finding and reading them, and the NaN guard.

A checkpoint is ``ckpt-<step>.weights.h5`` (``model.save_weights``: every model weight —
masks, VD/L0 parameters, their step counters and noise states included — and the optimizer
state) plus ``checkpoint.json`` naming the latest one (and the wall-clock seconds the run had
spent when each was written). Files are written under a temporary name and renamed, so a run
killed mid-write (even with SIGKILL) leaves the previous checkpoint intact. A checkpoint is only
written when the loss and every weight are finite (the NaN guard), so every checkpoint on disk
is one a run can continue from. The architecture is written once as ``model.json`` beside the
checkpoints, so tools can rebuild the model from a directory.

Reading: a corrupt ``checkpoint.json`` or ``model.json``, or a truncated checkpoint, is a
``UsageError`` naming the file (``CorruptCheckpoint`` for a checkpoint, so that resuming can fall
back to an older one); a checkpoint of another architecture is a one-line ``UsageError``.
"""

from __future__ import annotations

import contextlib
import json
import logging as std_logging
import math
import os
import re
import warnings

import keras
import numpy as np
from keras import ops

# The saved model configs name these classes (the model, its optimizer schedule, loss, metrics).
from state_of_sparsity.callbacks import StepCallback
from state_of_sparsity.paper.models import transformer  # noqa: F401
from state_of_sparsity.paper.training import faults, losses, lr_schedules, metrics  # noqa: F401
from state_of_sparsity.paper.training.errors import TrainingDiverged, UsageError, one_line

__all__ = [
    "CHECKPOINT_INDEX",
    "MODEL_CONFIG",
    "CorruptCheckpoint",
    "StepCheckpoint",
    "TrainingDiverged",
    "checkpoint_path",
    "latest_checkpoint",
    "load_model_from_checkpoint",
    "load_weights",
    "model_kind",
    "read_index",
    "read_json",
    "read_model_config",
    "resolve_checkpoint",
    "write_json",
    "write_model_config",
]

CHECKPOINT_INDEX = "checkpoint.json"
MODEL_CONFIG = "model.json"
_CHECKPOINT_NAME = re.compile(r"ckpt-(\d+)\.weights\.h5")


class CorruptCheckpoint(UsageError):
    """A checkpoint file that cannot be read (truncated, not HDF5, or missing)."""


def checkpoint_path(directory: str, step: int) -> str:
    return os.path.join(directory, f"ckpt-{step}.weights.h5")


def write_json(path, data) -> None:
    """Writes ``data`` as JSON to ``path`` atomically (a temporary file, then a rename); on
    failure the temporary file is removed and ``path`` is left as it was."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_json(path: str):
    """The JSON content of ``path``; ``UsageError`` naming the file when it is not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as error:
        raise UsageError(f"{path} is corrupt (not JSON: {one_line(error)}).") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a JSON file.") from None


def read_index(directory: str) -> dict:
    """``{"latest": step or None, "steps": [...], "seconds": {step: seconds}}`` of
    ``directory``: its ``checkpoint.json`` or, without one, the checkpoint files present."""
    path = os.path.join(directory, CHECKPOINT_INDEX)
    if not os.path.isfile(path):
        names = os.listdir(directory) if os.path.isdir(directory) else []
        steps = sorted(int(m.group(1)) for m in map(_CHECKPOINT_NAME.fullmatch, names) if m)
        return {"latest": steps[-1] if steps else None, "steps": steps, "seconds": {}}
    index = read_json(path)
    try:
        steps = sorted(int(s) for s in index["steps"])
        latest = None if index["latest"] is None else int(index["latest"])
        seconds = {int(k): float(v) for k, v in index.get("seconds", {}).items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UsageError(f"{path} is corrupt (not a checkpoint index).") from None
    return {"latest": latest, "steps": steps, "seconds": seconds}


def latest_checkpoint(directory: str) -> tuple[int, str] | None:
    """``(step, path)`` of the newest checkpoint in ``directory``, or None."""
    latest = read_index(directory)["latest"]
    return None if latest is None else (latest, checkpoint_path(directory, latest))


def write_model_config(model, directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    write_json(os.path.join(directory, MODEL_CONFIG), json.loads(model.to_json()))


def read_model_config(directory: str) -> dict:
    """The ``model.json`` of ``directory`` (``UsageError`` naming it when missing or corrupt)."""
    path = os.path.join(directory, MODEL_CONFIG)
    if not os.path.isfile(path):
        raise UsageError(f"No {MODEL_CONFIG} in {directory}: cannot rebuild the model.")
    config = read_json(path)
    if not isinstance(config, dict) or "class_name" not in config:
        raise UsageError(f"{path} is corrupt (not a Keras model config).")
    return config


@contextlib.contextmanager
def _quiet():
    """Keras' and absl's warnings while loading (dozens of lines on a mismatch) are dropped:
    the caller reports the outcome in one line."""
    logger = std_logging.getLogger("absl")
    level = logger.level
    logger.setLevel(std_logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def load_weights(model, path: str) -> None:
    """``model.load_weights(path)`` with one-line errors: ``CorruptCheckpoint`` when the file
    is missing or unreadable, ``UsageError`` when it holds another architecture."""
    if not os.path.isfile(path):
        raise CorruptCheckpoint(f"Checkpoint {path} is missing.")
    try:
        with _quiet():
            model.load_weights(path)
    except (OSError, KeyError, RuntimeError) as error:  # h5py: truncated, not HDF5, bad nodes
        raise CorruptCheckpoint(
            f"Checkpoint {path} is corrupt (truncated or not a weights file: "
            f"{one_line(error, 120)})."
        ) from None
    except ValueError as error:
        raise UsageError(
            f"Checkpoint {path} does not match the model (written with other flags, e.g. "
            f"another depth, width or technique?): {one_line(error, 120)}"
        ) from None


def model_kind(config: dict) -> str:
    """The kind of model a ``model.json`` config describes: "transformer", "resnet" or its
    name."""
    if config.get("class_name") == "Transformer":
        return "transformer"
    name = str((config.get("config") or {}).get("name", ""))
    return "resnet" if name.startswith("resnet") else name or "unknown"


def resolve_checkpoint(path: str) -> tuple[str, int]:
    """``(file, step)`` of the checkpoint ``path`` names: a checkpoint file, or a checkpoint
    directory or a run's output directory (meaning its latest checkpoint). Reads no weights."""
    if os.path.isdir(os.path.join(path, "checkpoints")):
        path = os.path.join(path, "checkpoints")
    if os.path.isdir(path):
        latest = latest_checkpoint(path)
        if latest is None:
            raise UsageError(f"No checkpoint in {path} (no {CHECKPOINT_INDEX}).")
        step, path = latest
    else:
        match = _CHECKPOINT_NAME.fullmatch(os.path.basename(path))
        if not match:
            raise UsageError(f"{path} is not a checkpoint (ckpt-<step>.weights.h5).")
        step = int(match.group(1))
    if not os.path.isfile(path):
        raise UsageError(f"Checkpoint {path} does not exist.")
    return path, step


def load_model_from_checkpoint(path: str, kind: str | None = None):
    """Rebuilds the model from ``model.json`` beside the checkpoint ``path`` names (see
    ``resolve_checkpoint``) and loads the weights; returns ``(model, step)``. ``kind``
    ("resnet", "transformer"): the model must be of it."""
    path, step = resolve_checkpoint(path)
    config_path = os.path.join(os.path.dirname(path), MODEL_CONFIG)
    config = read_model_config(os.path.dirname(path))
    if kind is not None and model_kind(config) != kind:
        raise UsageError(
            f"{path} is a checkpoint of a {model_kind(config)} model, not of a {kind} model."
        )
    try:
        with _quiet():
            model = keras.models.model_from_json(json.dumps(config))
    except (ValueError, TypeError, KeyError) as error:
        raise UsageError(f"{config_path} is corrupt ({one_line(error, 120)}).") from None
    load_weights(model, path)
    return model, step


def _non_finite(model) -> str | None:
    """The path of a model or optimizer variable holding a NaN or infinity, or None."""
    for variable in [*model.weights, *model.optimizer.variables]:
        if not np.all(np.isfinite(ops.convert_to_numpy(variable))):
            return variable.path
    return None


class StepCheckpoint(StepCallback):
    """Saves a checkpoint every ``every`` optimizer steps and at the end of training.

    The NaN guard: before saving, the loss of the batch just run and every model and optimizer
    variable are checked; anything NaN or infinite stops training without saving, so the latest
    checkpoint stays the last good one, and ``fit`` raises ``TrainingDiverged`` naming it.
    ``keep`` > 0 keeps only that many recent checkpoints (plus step 0, the initial values a
    lottery-ticket run needs). ``clock()``, when given, is the run's wall-clock seconds so far;
    they are recorded with each checkpoint.
    """

    def __init__(self, directory: str, every: int, keep: int = 0, clock=None):
        super().__init__()
        if every < 1:
            raise ValueError(f"`every` must be >= 1, got {every}.")
        self.directory = directory
        self.every = int(every)
        self.keep = int(keep)
        self.clock = clock
        self._diverged = False

    def _diverge(self, what: str, step: int):
        latest = latest_checkpoint(self.directory)
        where = f"{latest[1]} (step {latest[0]})" if latest else "none"
        self.model.stop_training = True
        self._diverged = True
        raise TrainingDiverged(
            f"{what} at step {step}; stopped without saving. Last good checkpoint: {where}."
        )

    def save(self, step: int, loss=None) -> str:
        """Writes checkpoint ``step`` (after the NaN guard's checks) and updates the index."""
        if loss is not None and not math.isfinite(loss):
            self._diverge(f"The training loss is {loss}", step)
        bad = _non_finite(self.model)
        if bad is not None:
            self._diverge(f"The variable {bad} is not finite", step)
        os.makedirs(self.directory, exist_ok=True)
        path = checkpoint_path(self.directory, step)
        tmp = os.path.join(self.directory, f".tmp-{step}.weights.h5")
        self.model.save_weights(tmp, overwrite=True)
        faults.point("checkpoint", step)
        os.replace(tmp, path)
        index = read_index(self.directory)
        steps = sorted(set(index["steps"]) | {step})
        seconds = index["seconds"]
        if self.clock is not None:
            seconds[step] = round(float(self.clock()), 3)
        if self.keep > 0:
            stale = [s for s in steps if s != 0][: -self.keep]
            for old in stale:
                if os.path.exists(checkpoint_path(self.directory, old)):
                    os.remove(checkpoint_path(self.directory, old))
            steps = [s for s in steps if s not in stale]
        seconds = {str(s): seconds[s] for s in steps if s in seconds}
        write_json(
            os.path.join(self.directory, CHECKPOINT_INDEX),
            {"latest": step, "steps": steps, "seconds": seconds},
        )
        return path

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._diverged = False

    @staticmethod
    def _loss(logs):
        loss = (logs or {}).get("loss")
        return None if loss is None else float(ops.convert_to_numpy(loss))

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        faults.point("train", self.step)
        if self.step % self.every == 0:
            self.save(self.step, self._loss(logs))

    def on_epoch_end(self, epoch, logs=None):
        loss = self._loss(logs)
        if loss is not None and not math.isfinite(loss):
            self._diverge(f"The training loss is {loss}", self.step)

    def on_train_end(self, logs=None):
        if self.step is None or self._diverged:
            return
        latest = latest_checkpoint(self.directory)
        if latest is None or latest[0] != self.step:
            self.save(self.step)
