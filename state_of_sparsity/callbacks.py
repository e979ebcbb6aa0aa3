"""``SparsityCallback``: drives the wrappers from ``model.fit``; ``update_masks`` for custom loops.

Where updates run. A mask update is a rare event (every ``frequency`` steps) and costs a sort of
the kernel, so it runs eagerly *between* train steps rather than as a conditional inside every
compiled step: the compiled step stays exactly ``op(x, kernel * mask)``, with no per-step
branch or host sync. The callback counts steps in Python from ``optimizer.iterations`` (read
at the first batch of each ``fit``, after any restore), decides with the paper's rule which
wrappers are due, and only on those steps touches the model:

- JAX: the trainer keeps the live state outside the Keras variables during ``fit``; the callback
  first calls ``model.jax_state_sync()`` so the kernels it reads are current, and the trainer
  re-reads the variables (with the new masks) before the next step.
- TensorFlow with ``tf.distribute``: the callback runs in cross-replica context, so each
  assignment reaches every replica and all replicas hold the same mask.

With ``steps_per_execution = k > 1`` the callback only sees every k-th step; a due update then
happens at the end of the k-step block (use k = 1, the default, for the paper's exact timing).
"""

from __future__ import annotations

import warnings

import keras
from keras import ops

from state_of_sparsity import traversal
from state_of_sparsity.distributions import update_wrappers
from state_of_sparsity.layers.penalized import PenalizedWrapper
from state_of_sparsity.layers.pruning import PruningWrapper
from state_of_sparsity.schedules import as_ramp

__all__ = ["SparsityCallback", "StepCallback", "check_driven", "update_masks"]


def _pruning_wrappers(model) -> list[tuple[str, PruningWrapper]]:
    return [(p, w) for p, w in traversal.wrappers(model) if isinstance(w, PruningWrapper)]


def _as_int(value) -> int:
    return int(ops.convert_to_numpy(value))


def _trained_steps(model) -> int | None:
    optimizer = getattr(model, "optimizer", None)
    iterations = getattr(optimizer, "iterations", None)
    return None if iterations is None else _as_int(iterations)


def check_driven(model, action: str) -> None:
    """Warns if ``model`` was trained without what drives its wrappers: masks that its
    schedules say should have changed but never did (``SparsityCallback`` forgotten), or VD / L0
    layers trained with no penalty weight. ``action`` names what the user is doing."""
    wrappers = [w for _, w in traversal.wrappers(model) if w.built]
    steps = _trained_steps(model)
    stale = []
    for wrapper in wrappers:
        if isinstance(wrapper, PruningWrapper) and steps is not None:
            first = wrapper.schedule.first_update_step()
            if first is not None and first < steps and _as_int(wrapper.last_update.value) == 0:
                stale.append(wrapper.name)
    if stale:
        warnings.warn(
            f"{action}: the model was trained for {steps} steps but the masks of "
            f"{len(stale)} layer(s) ({', '.join(stale[:3])}{', ...' if len(stale) > 3 else ''})"
            " never changed, although their schedules asked for updates: train with "
            "callbacks=[sos.SparsityCallback()] (or call sos.update_masks in a custom loop).",
            stacklevel=3,
        )
    unweighted = [
        w.name
        for w in wrappers
        if isinstance(w, PenalizedWrapper)
        and w.regularizer_weight is None
        and _as_int(w.step.value) > 0
    ]
    if unweighted:
        warnings.warn(
            f"{action}: {len(unweighted)} variational dropout / L0 layer(s) "
            f"({', '.join(unweighted[:3])}{', ...' if len(unweighted) > 3 else ''}) were trained "
            "with no penalty weight, so nothing pushed them towards sparsity: pass "
            "SparsityCallback(regularizer_weight=sos.Ramp(...)).",
            stacklevel=3,
        )


def update_masks(model, step: int) -> list[str]:
    """Applies every mask update due after optimizer step ``step`` (0-based); returns their paths.

    For custom training loops: call it after each optimizer step with the index of the step just
    taken (``int(optimizer.iterations) - 1``). ``SparsityCallback`` does this for ``fit``.
    Wrappers with the ``"global"`` distribution are updated together (one threshold).
    """
    step = int(step)
    due = [(path, wrapper) for path, wrapper in _pruning_wrappers(model) if wrapper.due(step)]
    update_wrappers([wrapper for _, wrapper in due], step)
    return [path for path, _ in due]


class StepCallback(keras.callbacks.Callback):
    """Base of the callbacks that act on optimizer steps: ``self.step`` is the number of steps
    the optimizer has taken (``optimizer.iterations``) at the end of each batch.

    It is read once, at the first batch of each ``fit`` (so after any restore, e.g. by
    ``BackupAndRestore`` or a checkpoint loaded between fits), and counted in Python afterwards:
    no step costs a host sync. With ``steps_per_execution = k`` Keras reports every k-th batch
    and ``self.step`` advances by k. Subclasses extend ``on_train_batch_end`` (calling
    ``super()`` first) and read ``self.step``; ``self.steps_taken`` is how many steps the batch
    call covered.
    """

    def __init__(self):
        super().__init__()
        self.step = None
        self.steps_taken = 0

    def on_train_begin(self, logs=None):
        self.step = None

    def on_first_batch(self) -> None:
        """Called once per ``fit``, when ``self.step`` has just been read."""

    def on_train_batch_begin(self, batch, logs=None):
        if self.step is None:
            optimizer = getattr(self.model, "optimizer", None)
            if optimizer is None:
                raise ValueError(
                    f"{type(self).__name__} needs a compiled model (model.optimizer is None)."
                )
            self.step = _as_int(optimizer.iterations)
            self.on_first_batch()
        self._batch_begin = batch

    def on_train_batch_end(self, batch, logs=None):
        self.steps_taken = max(1, batch - self._batch_begin + 1)
        self.step += self.steps_taken


class SparsityCallback(StepCallback):
    """Drives every sparsity wrapper of the model during ``model.fit``.

    - Magnitude / random pruning: updates the masks when their schedules say so (without this
      callback masks never change); ``"global"`` wrappers are updated together.
    - Variational dropout / L0: sets ``regularizer_weight`` (a ``sos.Ramp``) as the weight of
      their penalties. The ramp itself is evaluated inside the compiled train step on every
      step (see ``layers.PenalizedWrapper``); setting a different ramp than the layers hold
      rebuilds the train function once.

    Its place in the callback list does not matter (e.g. before or after
    ``keras.callbacks.BackupAndRestore``): step state is read lazily at the first batch, after
    any restore.

    Args:
        regularizer_weight: a ``sos.Ramp`` for the VD KL / L0 penalty weight, including any
            1/N; None keeps the ramps the layers already have.
    """

    def __init__(self, regularizer_weight=None):
        super().__init__()
        self.regularizer_weight = as_ramp(regularizer_weight)
        self._wrappers = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        wrappers = [w for _, w in traversal.wrappers(self.model)]
        self._wrappers = _pruning_wrappers(self.model)
        penalized = [w for w in wrappers if isinstance(w, PenalizedWrapper)]
        if not wrappers:
            warnings.warn(
                "SparsityCallback: the model has no sparsity wrappers, so it has nothing to do. "
                "Did you train the model returned by sos.sparsify?",
                stacklevel=2,
            )
        if self.regularizer_weight is not None:
            changed = [w.set_regularizer_weight(self.regularizer_weight) for w in penalized]
            if any(changed):
                self.model.make_train_function(force=True)

    def on_first_batch(self):
        # A subclassed model whose wrappers were created in __init__ is built by its first
        # train step, after this: an unbuilt wrapper has never been updated.
        self._last = [_as_int(w.last_update.value) if w.built else 0 for _, w in self._wrappers]

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        step = self.step - 1  # the index of the step just taken
        due = [
            i
            for i, (_, w) in enumerate(self._wrappers)
            if w.schedule.should_update(step, self._last[i])
        ]
        if not due:
            return
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        update_wrappers([self._wrappers[i][1] for i in due], step)
        for i in due:
            self._last[i] = step
