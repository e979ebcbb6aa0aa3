"""Clocks and timed loops: warm-up, interleaved trials of train steps, mask-update timing.

Every measurement is taken on two clocks, ``wall`` (``time.perf_counter``) and ``cpu``
(``time.process_time``: CPU seconds of all the process's threads).
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from collections.abc import Callable

import numpy as np
from variants import OURS_PRUNED, Variant, sos_wrappers, tfmot_pruned

CLOCKS = ("wall", "cpu")  # perf_counter; process_time (CPU seconds of all the process's threads)
WHAT = (
    "seconds per train step (clocks: wall = perf_counter, cpu = process_time of all "
    "threads): model.train_on_batch(x, y) on fixed host arrays, plus the "
    "SparsityCallback batch hooks for mp/rp/vd/l0 (vd/l0: noise, second op on x^2, gates "
    "and the ramp-weighted penalty are inside the compiled step); tfmot with its step "
    "counter armed by UpdatePruningStep.on_train_begin. Mask updates happen at the "
    "schedule's frequency inside the timed steps. mask_update: one update of every pruned "
    "layer, timed apart (masks reset to ones, untimed, before each)."
)


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _now()
    return wall - start[0], cpu - start[1]


def warm_up(variants: list[Variant], steps: int) -> dict:
    """Runs ``steps`` untimed steps per variant; returns {name: [wall seconds per step]}."""
    times = {}
    for v in variants:
        times[v.name] = []
        for _ in range(steps):
            t0 = time.perf_counter()
            loss = v.step()
            times[v.name].append(time.perf_counter() - t0)
        if not np.isfinite(loss):
            print(f"  note: {v.name} loss is {loss} after warm-up", flush=True)
        rest = statistics.median(times[v.name][1:] or [float("nan")])
        print(
            f"  warm-up {v.name:10s} first step {times[v.name][0]:7.2f} s, "
            f"then {rest * 1e3:8.1f} ms",
            flush=True,
        )
    return times


def time_block(step: Callable[[], float], n: int) -> tuple[list[float], list[float]]:
    """(wall, cpu) seconds of each of ``n`` consecutive steps; the GC is off meanwhile."""
    wall, cpu = [], []
    gc.collect()
    gc.disable()
    try:
        for _ in range(n):
            t0 = _now()
            step()
            w, c = _since(t0)
            wall.append(w)
            cpu.append(c)
    finally:
        gc.enable()
    return wall, cpu


def interleaved_trials(variants: list[Variant], trials: int, steps: int) -> dict:
    """{clock: {name: [[seconds per step] per trial]}}, variants interleaved in every trial.

    The order of the variants rotates from one trial to the next.
    """
    times = {clock: {v.name: [] for v in variants} for clock in CLOCKS}
    for trial in range(trials):
        shift = trial % len(variants)  # rotate the order: no variant always runs first
        for v in variants[shift:] + variants[:shift]:
            wall, cpu = time_block(v.step, steps)
            times["wall"][v.name].append(wall)
            times["cpu"][v.name].append(cpu)
        line = "  ".join(
            f"{v.name} {statistics.median(times['wall'][v.name][-1]) * 1e3:.0f}/"
            f"{statistics.median(times['cpu'][v.name][-1]) * 1e3:.0f}"
            for v in variants
        )
        print(f"  trial {trial + 1}/{trials} (median ms wall/cpu): {line}", flush=True)
    return times


# --------------------------------------------------------------------------------------------
# Mask updates, timed apart from the train step


def _block_until_ready(values) -> None:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        jax.block_until_ready(values)


def update_points(args) -> dict:
    """Schedule steps at which the all-layer mask update is timed (multiples of frequency)."""
    if args.quick:
        return {"final": args.end_step}
    mid = max(args.frequency, (args.end_step // 2) // args.frequency * args.frequency)
    return {"first": args.frequency, "mid": mid, "final": args.end_step}


def time_mask_updates(variants: list[Variant], args) -> dict:
    """Times one mask update of every pruned layer, per variant and schedule point."""
    points = update_points(args)
    updaters = {}
    for v in variants:
        if v.name in OURS_PRUNED:
            updaters[v.name] = _sos_updater(v.model)
        elif v.name == "tfmot":
            updaters[v.name] = _tfmot_updater(v.model)
    result = {
        name: {
            "layers": up.layers,
            "first_call_s": None,
            "sparsity": {},
            "wall": {label: [] for label in points},
            "cpu": {label: [] for label in points},
        }
        for name, up in updaters.items()
    }
    for name, up in updaters.items():  # first call: kernel setup, tf.function tracing
        t0 = time.perf_counter()
        up.run(args.end_step)
        result[name]["first_call_s"] = time.perf_counter() - t0
    for _ in range(args.update_repeats):
        for label, step in points.items():
            for name, up in updaters.items():
                up.reset()
                gc.collect()
                t0 = _now()
                sparsity = up.run(step)
                wall, cpu = _since(t0)
                result[name]["wall"][label].append(wall)
                result[name]["cpu"][label].append(cpu)
                result[name]["sparsity"][label] = sparsity
    return {"steps": points, "variants": result}


@dataclasses.dataclass
class _Updater:
    run: Callable[[int], float]  # update all masks for ``step``; returns the target sparsity
    layers: int
    reset: Callable[[], None] = lambda: None  # untimed: masks back to all ones


def _sos_updater(model) -> _Updater:
    import keras

    wrappers = sos_wrappers(model)

    def run(step):
        sparsity = 0.0
        for w in wrappers:
            sparsity = w.update_mask(step)
        _block_until_ready([w.mask.value for w in wrappers])
        return float(sparsity)

    def reset():
        # Random pruning only prunes among survivors: without a reset, an update at a low
        # sparsity after one at a high sparsity would be a cheap no-op, not a real update.
        for w in wrappers:
            w.mask.assign(keras.ops.ones(w.mask.shape, w.mask.dtype))
        _block_until_ready([w.mask.value for w in wrappers])

    return _Updater(run, len(wrappers), reset)


def _tfmot_updater(model) -> _Updater:
    import tensorflow as tf
    import tf_keras

    layers = tfmot_pruned(model)

    @tf.function
    def update_all():
        for layer in layers:
            layer.pruning_obj.conditional_mask_update()

    def run(step):
        # Every layer's step counter at ``step`` (a multiple of frequency: the update is due).
        tf_keras.backend.batch_set_value([(layer.pruning_step, step) for layer in layers])
        update_all()
        return float(layers[0].pruning_schedule(tf.constant(step, tf.int64))[1])

    return _Updater(run, len(layers))


def time_update_masks_poll(variant: Variant, repeats: int = 20) -> dict:
    """``sos.update_masks(model, step)`` when no wrapper is due (a custom loop's per-step call)."""
    import state_of_sparsity as sos

    wrappers = sos_wrappers(variant.model)
    last = max(int(np.asarray(w.last_update.value)) for w in wrappers)
    out = {clock: [] for clock in CLOCKS}
    for _ in range(repeats):
        t0 = _now()
        updated = sos.update_masks(variant.model, last + 1)
        wall, cpu = _since(t0)
        out["wall"].append(wall)
        out["cpu"].append(cpu)
        assert not updated, updated
    return out
