"""Magnitude pruning (Zhu & Gupta 2017) and cumulative random pruning (spec §3)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from state_of_sparsity import schedules as schedules_lib
from state_of_sparsity.layers.base import SparsityWrapper, mix_seed, new_seed
from state_of_sparsity.ops import masks

__all__ = ["PruningWrapper", "MagnitudePruning", "RandomPruning"]

_PACKAGE = "state_of_sparsity"


class PruningWrapper(SparsityWrapper):
    """Common part of MP and RP: a 0/1 mask over each dense kernel and the update state.

    Forward (training and eval): the layer's op with ``kernel * mask`` for each kernel. The
    kernels stay dense underneath; pruned entries get zero gradient but keep their values. Masks
    change only in ``update_mask``, which ``SparsityCallback`` calls between train steps when the
    schedule says so (the paper's timing rule, see ``schedules``); every kernel of a layer (e.g.
    an LSTM's kernel and recurrent kernel) is pruned to the same sparsity, each on its own.
    State, all layer weights (so ``.keras`` files, checkpoints and BackupAndRestore carry it):
    ``masks`` (``mask`` for a single kernel, ``<kernel name>_mask`` for several) and
    ``last_update`` (the step of the latest update, 0 before the first).
    """

    def __init__(self, layer, schedule, **kwargs):
        if isinstance(schedule, dict):
            schedule = keras.saving.deserialize_keras_object(schedule)
        if not isinstance(schedule, schedules_lib.PruningSchedule):
            raise ValueError(
                "`schedule` must be a PruningSchedule (e.g. sos.PolynomialDecay or "
                f"sos.ConstantSparsity), got {schedule!r}."
            )
        super().__init__(layer, **kwargs)
        self.schedule = schedule

    def _build_state(self, kernel_shapes):
        self.masks = [
            self._add_state(self._state_name(i, "mask"), shape, "ones")
            for i, shape in enumerate(kernel_shapes)
        ]
        self.last_update = self._add_state("last_update", (), "zeros", dtype="int32")

    @property
    def mask(self):
        """The mask of the first (for most layers, the only) kernel."""
        return self.masks[0]

    def call(self, inputs, training=None, mask=None, reverse=False, **kwargs):
        kernels = [ops.multiply(k, m) for k, m in zip(self.kernels, self.masks, strict=True)]
        return self._forward(inputs, kernels, reverse, training=training, mask=mask, **kwargs)

    def eval_kernels(self):
        return [
            ops.multiply(k.value, ops.cast(m.value, k.dtype))
            for k, m in zip(self.kernels, self.masks, strict=True)
        ]

    def due(self, step: int, last_update: int | None = None) -> bool:
        """Whether the paper's rule asks for a mask update after optimizer step ``step``.

        ``last_update`` defaults to the layer's variable, read (a host sync) only when ``step``
        is inside the schedule's window.
        """
        if not self.schedule.in_window(step):
            return False
        if last_update is None:
            last_update = int(ops.convert_to_numpy(self.last_update.value))
        return self.schedule.should_update(step, last_update)

    def update_mask(self, step: int) -> float:
        """Recomputes every mask for step ``step`` and records the update; returns s(step).

        Runs eagerly (between train steps); on a distributed variable the assignment reaches
        every replica, so all replicas hold the same mask.
        """
        sparsity = self.schedule.sparsity(step)
        for index, mask in enumerate(self.masks):
            mask.assign(self._new_mask(index, sparsity, int(step)))
        self.last_update.assign(int(step))
        return sparsity

    def _new_mask(self, index: int, sparsity: float, step: int):
        """The new mask of kernel ``index`` at sparsity ``sparsity``."""
        raise NotImplementedError

    def technique_config(self):
        return {"schedule": keras.saving.serialize_keras_object(self.schedule)}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MagnitudePruning(PruningWrapper):
    """Gradual magnitude pruning of one layer's kernel (Zhu & Gupta 2017; spec §3).

    At each update the mask keeps exactly k = round(n(1 - s(t))) entries of largest |w| of the
    *dense* kernel (ties to the lower flat index), so a pruned weight comes back if it outgrows
    a kept one (paper behaviour, spec §3.5).

    Args:
        layer: a registry layer (see ``sos.layers.supported_layer_types()``).
        schedule: a ``PruningSchedule``.
    """

    technique = "magnitude_pruning"

    def _new_mask(self, index, sparsity, step):
        kernel = ops.convert_to_numpy(self.kernels[index].value)
        return masks.magnitude_mask(kernel, sparsity, dtype=self.masks[index].dtype)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RandomPruning(PruningWrapper):
    """Cumulative random pruning of one layer's kernel, on the MP schedule (spec §3.6).

    At each update the new zeros are drawn uniformly among the surviving entries; a pruned entry
    never returns. The draw at step t depends only on (seed, t) (NumPy's generator; a layer's
    further kernels mix in their index), so resumed runs, all replicas and all backends draw the
    same mask.

    Args:
        layer: a registry layer (see ``sos.layers.supported_layer_types()``).
        schedule: a ``PruningSchedule``.
        seed: integer seed; ``None`` draws one (kept in the config, so reloads reuse it).
    """

    technique = "random_pruning"

    def __init__(self, layer, schedule, seed=None, **kwargs):
        super().__init__(layer, schedule, **kwargs)
        if seed is None:
            seed = new_seed()
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer or None, got {seed!r}.")
        self.seed = int(seed)

    def _new_mask(self, index, sparsity, step):
        mask = ops.convert_to_numpy(self.masks[index].value)
        seed = mix_seed(self.seed, step) if index == 0 else mix_seed(self.seed, step, index)
        return masks.cumulative_random_mask(
            mask, sparsity, seed=seed, dtype=self.masks[index].dtype
        )

    def technique_config(self):
        return {**super().technique_config(), "seed": self.seed}
