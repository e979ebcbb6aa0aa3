"""Magnitude pruning (Zhu & Gupta 2017) and cumulative random pruning (spec §3)."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from state_of_sparsity import schedules as schedules_lib
from state_of_sparsity.layers import registry
from state_of_sparsity.layers.base import SparsityWrapper, mix_seed, new_seed
from state_of_sparsity.ops import masks, patterns

__all__ = ["DISTRIBUTIONS", "PruningWrapper", "MagnitudePruning", "RandomPruning", "pattern_misfit"]

_PACKAGE = "state_of_sparsity"
_SCORE_TAG = 0x5C0E  # mixes into the seed of random pruning's fixed scores (patterns, global)

# How a model's sparsity is spread over its layers (see ``sparsify`` and ``distributions``).
DISTRIBUTIONS = ("uniform", "global", "erk")


def pattern_misfit(pattern, layer) -> str | None:
    """Why ``pattern`` cannot tile the kernels of ``layer`` (None if it can, or no pattern)."""
    if pattern is None:
        return None
    spec = registry.spec_for(layer)
    for index, path in enumerate(spec.kernels):
        shape = tuple(registry.get_kernel(layer, path).shape)
        reason = pattern.misfit(shape, spec.kernel_fan_axes(layer, index, len(shape)))
        if reason is not None:
            name = spec.kernel_names[index]
            return reason if len(spec.kernels) == 1 else f"{name}: {reason}"
    return None


def check_distribution(distribution, pattern) -> str:
    """``distribution`` if valid for ``pattern``; a ValueError otherwise."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"`distribution` must be one of {', '.join(map(repr, DISTRIBUTIONS))}, "
            f"got {distribution!r}."
        )
    if isinstance(pattern, patterns.NM) and distribution != "uniform":
        raise ValueError(
            f"pattern {pattern} fixes every layer's sparsity at {pattern.sparsity:g}; use "
            f"distribution='uniform' with it, got {distribution!r}."
        )
    return distribution


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

    ``pattern`` (see ``ops.patterns``): None (unstructured), ``"N:M"`` / ``(N, M)`` (at most N
    non-zeros in every M consecutive input channels; the schedule's final sparsity must be
    1 − N/M, and it ramps there), or ``"RxC"`` (whole blocks of R input × C output channels,
    ranked by L2 norm; sparsity comes in whole blocks). A kernel the pattern cannot tile is a
    ValueError when the wrapper is built.

    ``distribution``: ``"uniform"`` (each layer ranks its own weights), ``"global"`` (layers
    ranked together: ``sos.update_masks`` and ``SparsityCallback`` update every global wrapper
    of a model at once against one threshold; a wrapper updated alone is its own pool), or
    ``"erk"`` (a uniform update whose target ``sos.sparsify`` set from the Erdős–Rényi-kernel
    formula; recorded for the report).
    """

    def __init__(self, layer, schedule, pattern=None, distribution="uniform", **kwargs):
        if isinstance(schedule, dict):
            schedule = keras.saving.deserialize_keras_object(schedule)
        if not isinstance(schedule, schedules_lib.PruningSchedule):
            raise ValueError(
                "`schedule` must be a PruningSchedule (e.g. sos.PolynomialDecay or "
                f"sos.ConstantSparsity), got {schedule!r}."
            )
        pattern = patterns.parse_pattern(pattern)
        check_distribution(distribution, pattern)
        if isinstance(pattern, patterns.NM) and not math.isclose(
            schedule.final_sparsity, pattern.sparsity, abs_tol=1e-9
        ):
            raise ValueError(
                f"pattern {pattern} fixes the sparsity at 1 - {pattern.n}/{pattern.m} = "
                f"{pattern.sparsity:g}: the schedule's final_sparsity must be {pattern.sparsity:g}"
                f" (it ramps there), got {schedule.final_sparsity:g}."
            )
        super().__init__(layer, **kwargs)
        self.schedule = schedule
        self.pattern = pattern
        self.distribution = distribution

    def build(self, input_shape=None):
        super().build(input_shape)
        reason = pattern_misfit(self.pattern, self.layer)
        if reason is not None:
            raise ValueError(
                f"pattern {self.pattern} cannot be applied to layer {self.name!r}: {reason}."
            )

    def fan_axes(self, index: int) -> tuple[tuple, tuple]:
        """(input axes, output axes) of kernel ``index`` (see the registry's ``fan_axes``)."""
        return self.spec.kernel_fan_axes(self.layer, index, len(self.kernels[index].shape))

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

    def scores(self, index: int) -> np.ndarray:
        """Per-weight ranking scores of kernel ``index`` for patterns and global pools (larger
        is kept first)."""
        raise NotImplementedError

    def unit_scores(self, index: int) -> np.ndarray:
        """Flat scores of the units a global pool ranks: weights, or blocks (by L2 norm)."""
        scores = self.scores(index)
        if isinstance(self.pattern, patterns.Block):
            return self.pattern.unit_scores(scores, self.fan_axes(index))
        return scores.ravel()

    def units_to_mask(self, index: int, keep_units) -> np.ndarray:
        """The mask of kernel ``index`` keeping the units flagged in ``keep_units``."""
        shape = tuple(self.kernels[index].shape)
        dtype = self.masks[index].dtype
        if isinstance(self.pattern, patterns.Block):
            return self.pattern.units_to_mask(keep_units, shape, self.fan_axes(index), dtype)
        return np.asarray(keep_units, dtype).reshape(shape)

    def technique_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "pattern": None if self.pattern is None else str(self.pattern),
            "distribution": self.distribution,
        }

    def extra_report(self, index=0, **options):
        extra = {}
        if self.distribution != "uniform":
            extra["distribution"] = self.distribution
        if self.distribution == "erk":
            extra["target"] = self.schedule.final_sparsity
        if self.pattern is not None:
            extra["pattern"] = str(self.pattern)
        return extra


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MagnitudePruning(PruningWrapper):
    """Gradual magnitude pruning of one layer's kernel (Zhu & Gupta 2017; spec §3).

    At each update the mask keeps exactly k = round(n(1 - s(t))) entries of largest |w| of the
    *dense* kernel (ties to the lower flat index), so a pruned weight comes back if it outgrows
    a kept one (paper behaviour, spec §3.5). With a ``pattern`` the same scores |w| rank the
    weights within N:M groups, or the blocks by their L2 norm (``ops.patterns``).

    Args:
        layer: a registry layer (see ``sos.layers.supported_layer_types()``).
        schedule: a ``PruningSchedule``.
        pattern: None, ``"N:M"`` / ``(N, M)``, or ``"RxC"`` blocks (see ``PruningWrapper``).
        distribution: ``"uniform"``, ``"global"`` or ``"erk"`` (see ``PruningWrapper``).
    """

    technique = "magnitude_pruning"

    def scores(self, index):
        return np.abs(ops.convert_to_numpy(self.kernels[index].value).astype(np.float32))

    def _new_mask(self, index, sparsity, step):
        dtype = self.masks[index].dtype
        if self.pattern is None:
            kernel = ops.convert_to_numpy(self.kernels[index].value)
            return masks.magnitude_mask(kernel, sparsity, dtype=dtype)
        return self.pattern.mask(self.scores(index), sparsity, self.fan_axes(index), dtype)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RandomPruning(PruningWrapper):
    """Cumulative random pruning of one layer's kernel, on the MP schedule (spec §3.6).

    At each update the new zeros are drawn uniformly among the surviving entries; a pruned entry
    never returns. The draw at step t depends only on (seed, t) (NumPy's generator; a layer's
    further kernels mix in their index), so resumed runs, all replicas and all backends draw the
    same mask. With a ``pattern`` or the ``"global"`` distribution each weight instead gets one
    fixed uniform random score from (seed, kernel index), ranked like magnitudes: the pruned
    set only grows as the sparsity does, so pruned weights never return either.

    Args:
        layer: a registry layer (see ``sos.layers.supported_layer_types()``).
        schedule: a ``PruningSchedule``.
        seed: integer seed; ``None`` draws one (kept in the config, so reloads reuse it).
        pattern: None, ``"N:M"`` / ``(N, M)``, or ``"RxC"`` blocks (see ``PruningWrapper``).
        distribution: ``"uniform"``, ``"global"`` or ``"erk"`` (see ``PruningWrapper``).
    """

    technique = "random_pruning"

    def __init__(self, layer, schedule, seed=None, pattern=None, distribution="uniform", **kwargs):
        super().__init__(layer, schedule, pattern=pattern, distribution=distribution, **kwargs)
        if seed is None:
            seed = new_seed()
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer or None, got {seed!r}.")
        self.seed = int(seed)

    def scores(self, index):
        rng = np.random.default_rng(mix_seed(self.seed, _SCORE_TAG, index))
        return rng.random(tuple(self.kernels[index].shape), np.float32)

    def _new_mask(self, index, sparsity, step):
        dtype = self.masks[index].dtype
        if self.pattern is not None:
            return self.pattern.mask(self.scores(index), sparsity, self.fan_axes(index), dtype)
        if self.distribution == "global":  # alone: its own pool
            scores = self.scores(index)
            return masks.topk_mask(scores, masks.keep_count(scores.size, sparsity), dtype)
        mask = ops.convert_to_numpy(self.masks[index].value)
        seed = mix_seed(self.seed, step) if index == 0 else mix_seed(self.seed, step, index)
        return masks.cumulative_random_mask(mask, sparsity, seed=seed, dtype=dtype)

    def technique_config(self):
        return {**super().technique_config(), "seed": self.seed}
