"""Train-step time (and peak train-step memory) of MP / RP / VD / L0 vs dense, next to tfmot.

What is timed
-------------
For each model (``cnn``: a small CNN on 32x32x3; ``resnet50``:
``keras.applications.ResNet50(weights=None)``; ``resnet50_sos``: the repo's own ResNet-50 v1.5,
``state_of_sparsity.paper.models.resnet.resnet(50)``, with ``weight_decay=0``, its default, as the
other two have no weight decay either; both ResNets at ``--resnet_size`` / ``--resnet_batch`` /
``--resnet_classes``):

* ours, on the current Keras 3 backend: ``dense`` (the plain model), ``mp`` =
  ``sos.sparsify(model, "magnitude_pruning", schedule=...)``, ``rp`` =
  ``sos.sparsify(model, "random_pruning", ...)``, ``vd`` = ``sos.sparsify(model,
  "variational_dropout", seed=...)`` and ``l0`` = ``sos.sparsify(model, "l0_regularization",
  seed=...)``, the last two with their penalty weighted by ``sos.Ramp(--regularizer_weight)``
  (given to ``sparsify``, so every wrapper holds it when compiled: the penalty is part of the
  compiled step from the first step on);
* the peer (TensorFlow backend only): the same architecture built with legacy ``tf_keras``,
  ``tfk_dense``, and the same under ``tfmot.sparsity.keras.prune_low_magnitude``, ``tfmot``.
  Keras 3 and tf_keras coexist in one process (both on the same TensorFlow runtime), so the
  peer is interleaved with ours in the same process. ``resnet50_sos`` has no peer: it is
  written with Keras 3 layers only (no tf_keras port exists, and tfmot cannot wrap Keras 3
  layers); tfmot's overhead on a ResNet-50 is measured on ``resnet50``, the same network
  family. With the peer on, ``resnet50_sos`` runs ours only.

One *step* is one ``model.train_on_batch(x, y)`` on fixed host NumPy arrays (including the
host-to-device copy and the fetch of the loss, which synchronises), plus, for the ``mp`` /
``rp`` / ``vd`` / ``l0`` variants, the ``on_train_batch_begin`` / ``on_train_batch_end`` hooks
of a ``sos.SparsityCallback`` driven exactly as ``fit`` drives it (for VD / L0 the hooks find no
mask to update; their work is all inside the compiled step: VD samples output noise and runs
each layer's op a second time, on x^2 with sigma^2; L0 samples one hard-concrete gate per
weight; both add ``ramp(step) * penalty`` with ``add_loss``). Both libraries use the same
polynomial schedule (0 -> ``--sparsity`` over ``--end_step`` steps, ``--frequency`` steps between
mask updates, begin 0), so mask updates happen inside the timed region at the schedule's
frequency: ours between steps (eagerly, in the callback), tfmot's inside its compiled step
(``tf.cond``; tfmot's ``UpdatePruningStep.on_train_begin`` is called once to arm its step
counter). Hence per variant:

* ``median`` step: the steady state (masks applied in the forward pass, no update);
* ``mean`` step: the steady state plus the mask updates that fell in the timed steps.

Two clocks are recorded for every step: ``wall`` (``time.perf_counter``, what a GPU figure
means) and ``cpu`` (``time.process_time``: CPU seconds of all the process's threads, i.e. the
work done). On a shared or throttled VM the wall time of identical steps can vary several-fold
while their CPU time stays within a few percent, so on such a CPU box the ``cpu`` ratios are the
trustworthy ones; the ``wall`` ratios are the ones to quote on a dedicated machine / GPU.

Methodology: build and compile every variant, run ``--warmup`` steps of each (the first one
traces/compiles; its time is recorded separately), then ``--trials`` interleaved trials:
``for trial: for variant: time N consecutive steps``, the variant order rotating from trial to
trial (per-step times are recorded; Python's garbage collector is off inside a block). Ratios
are to the dense model of the same framework measured in the same run: ours ``mp/dense``,
``rp/dense``; peer ``tfmot/tfk_dense``. The ratio reported is the median over trials of
(variant median / dense median in that trial); the JSON also has ratios of overall medians and
of means.

Mask-update cost, timed separately: one mask update of *all* pruned layers of the model
(``wrapper.update_mask(step)`` for every wrapper, eager, as the callback does; on JAX it blocks
until the new masks are ready), at the schedule's first update step, its midpoint and its end
(the cost of the selection depends on the sparsity; masks are reset to all ones, untimed,
before each update, so random pruning does real work at every point); for the peer, tfmot's own
``pruning_obj.conditional_mask_update()`` of every layer inside one ``tf.function`` (the code
its train step runs, traced once before timing). Each is reported in ms and as a multiple of
the dense median step of its framework (same clock). Also timed: ``sos.update_masks(model,
step)`` when nothing is due (the per-step poll cost of a custom training loop).

Absolute times on a shared CPU mean little; compare ratios measured in the same run.

Peak memory (``--memory``, JAX backend): no step is timed. For every variant, Keras' own train
step is compiled as ``make_train_function`` compiles it (``jax.jit(model.train_step,
donate_argnums=0)``, lowered on the model's state and the benchmark batch), and XLA's
``compiled.memory_analysis()`` is read: ``argument`` (parameters, non-trainable state, optimizer
slots, metric state, the batch), ``output`` (the new state and the logs), ``alias`` (outputs
written in place of donated arguments), ``temp`` (XLA's single temporary allocation: activations
kept for the backward pass, gradients, noise, workspaces, its size is the peak of the heap
simulation over the step's schedule). ``total = argument + output - alias + temp`` is the device
memory the step needs; ratios are to ``dense``. Nothing is allocated or run, so any size can be
analysed on any machine (e.g. ``--resnet_size 224 --resnet_batch 128``), and the same code reads
the GPU compiler's buffer assignment on a GPU.

Usage::

    python bench/step_time.py --output_json /tmp/step_time.json          # TF backend + peer
    KERAS_BACKEND=jax python bench/step_time.py --output_json /tmp/jax.json   # ours only
    python bench/step_time.py --quick --no_peer                           # smoke run
    python bench/step_time.py --variants dense,vd,l0                       # a subset
    python bench/step_time.py --models resnet50_sos --no_peer              # the repo's RN50
    KERAS_BACKEND=jax python bench/step_time.py --memory --output_json /tmp/mem.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

MODELS = ("cnn", "resnet50", "resnet50_sos", "transformer")
PEER_MODELS = ("cnn", "resnet50")  # models with a tf_keras twin for the tfmot peer
OURS = ("dense", "mp", "rp", "vd", "l0")  # ours, on the current Keras 3 backend
PEER = ("tfk_dense", "tfmot")  # tf_keras + tfmot (TensorFlow backend only)
REFERENCE = {"mp": "dense", "rp": "dense", "vd": "dense", "l0": "dense", "tfmot": "tfk_dense"}
TECHNIQUE = {
    "mp": "magnitude_pruning",
    "rp": "random_pruning",
    "vd": "variational_dropout",
    "l0": "l0_regularization",
}
PRUNED = ("mp", "rp", "tfmot")  # variants with masks (mask-update timing, mask sparsity)
PENALIZED = ("vd", "l0")  # variants whose penalty is weighted by sos.Ramp(--regularizer_weight)
QUICK_DEFAULTS = {
    "trials": 2,
    "warmup": 2,
    "cnn_steps": 10,
    "resnet_steps": 3,
    "resnet_size": 32,
    "resnet_batch": 8,
    "update_repeats": 1,
    "peer": False,
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--models", default="cnn,resnet50", help=f"comma list of {MODELS}")
    p.add_argument(
        "--backend",
        default=None,
        help="Keras backend (sets KERAS_BACKEND); default: the environment's, else tensorflow",
    )
    p.add_argument(
        "--peer",
        dest="peer",
        action="store_true",
        default=None,
        help="time tfmot prune_low_magnitude on tf_keras (default: on with the TF backend)",
    )
    p.add_argument("--no_peer", dest="peer", action="store_false", help="skip the tfmot peer")
    p.add_argument(
        "--variants",
        default=None,
        help=(
            f"comma list of {OURS + PEER}; default: all of ours, plus the peer's when the peer "
            "is on; when given, the peer runs only if one of its variants is listed. The dense "
            "reference of a chosen variant is always added."
        ),
    )
    p.add_argument(
        "--regularizer_weight",
        type=float,
        default=1e-4,
        help="value of the constant sos.Ramp weighting the VD KL / L0 penalty (vd, l0)",
    )
    p.add_argument(
        "--memory",
        action="store_true",
        help=(
            "JAX backend: instead of timing, compile each variant's train step and report XLA's "
            "memory analysis (peak train-step memory) as a ratio to dense"
        ),
    )
    p.add_argument("--trials", type=int, default=10, help="interleaved trials")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per variant (>= 1)")
    p.add_argument("--cnn_steps", type=int, default=25, help="timed steps per trial, CNN")
    p.add_argument("--resnet_steps", type=int, default=10, help="timed steps per trial, RN50")
    p.add_argument(
        "--transformer_steps", type=int, default=10, help="timed steps per trial, Transformer"
    )
    p.add_argument(
        "--transformer_preset", default="base", help="Transformer preset (base: the paper's)"
    )
    p.add_argument("--transformer_vocab", type=int, default=33288, help="Transformer vocab size")
    p.add_argument(
        "--transformer_batch",
        default="32x64",
        help="Transformer batch as SENTENCESxLENGTH per side (32x64 = the paper's 2,048 tokens)",
    )
    p.add_argument("--cnn_batch", type=int, default=64)
    p.add_argument("--resnet_batch", type=int, default=16)
    p.add_argument("--resnet_size", type=int, default=64, help="ResNet-50 input resolution")
    p.add_argument("--resnet_classes", type=int, default=1000)
    p.add_argument("--sparsity", type=float, default=0.9, help="final sparsity of the schedule")
    p.add_argument("--frequency", type=int, default=100, help="steps between mask updates")
    p.add_argument("--end_step", type=int, default=10000, help="end of the pruning schedule")
    p.add_argument(
        "--update_repeats",
        type=int,
        default=3,
        help="timed repeats of the all-layer mask update per schedule point (0: skip)",
    )
    p.add_argument(
        "--dtype_policy",
        default=None,
        help="Keras dtype policy of every model, e.g. mixed_bfloat16 (GPU runs); default float32",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output_json", default=None, help="where to write all raw times")
    p.add_argument(
        "--quick",
        action="store_true",
        help=(
            "smoke run (~1 min): 2 trials of a few steps, ResNet-50 at 32x32 batch 8, one "
            "mask-update point, no peer unless --peer is given; explicit flags override these"
        ),
    )
    if p.parse_args(argv).quick:  # new defaults; flags given explicitly still win
        p.set_defaults(**QUICK_DEFAULTS)
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(args.models) - set(MODELS)
    if unknown:
        p.error(f"unknown --models {sorted(unknown)}; choose from {MODELS}")
    if args.warmup < 1 or args.trials < 1:
        p.error("--warmup and --trials must be >= 1")
    if args.frequency < 1 or args.end_step <= args.frequency:
        p.error("need 1 <= --frequency < --end_step")
    if args.variants is not None:
        args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = set(args.variants) - set(OURS + PEER)
        if unknown or not args.variants:
            p.error(f"bad --variants {sorted(unknown) or '(empty)'}; choose from {OURS + PEER}")
    return args


def resolve_variants(args, backend: str) -> list[str]:
    """The variants to run, in canonical order, each chosen one's dense reference included.

    Sets ``args.peer`` to whether any peer variant is run. Raises SystemExit on conflicts.
    """
    if args.memory and backend != "jax":
        raise SystemExit(
            "--memory reads XLA's memory analysis of the compiled train step: run it with "
            "KERAS_BACKEND=jax (or --backend jax)."
        )
    if args.peer and (backend != "tensorflow" or args.memory):
        raise SystemExit(
            "--peer needs KERAS_BACKEND=tensorflow (tfmot runs on tf_keras/TensorFlow) and no "
            "--memory; time the peer in a TensorFlow-backend run."
        )
    if args.peer is None:
        args.peer = backend == "tensorflow" and not args.memory
    if args.variants is None:
        chosen = set(OURS) | (set(PEER) if args.peer else set())
    else:
        chosen = set(args.variants)
        peer_chosen = chosen & set(PEER)
        if peer_chosen and not args.peer:
            raise SystemExit(
                f"--variants {sorted(peer_chosen)} need the peer: the TensorFlow backend, no "
                "--no_peer and no --memory."
            )
    chosen |= {REFERENCE[v] for v in chosen if v in REFERENCE}
    args.peer = bool(chosen & set(PEER))
    return [v for v in OURS + PEER if v in chosen]


# --------------------------------------------------------------------------------------------
# Models (the same definitions for keras 3 and tf_keras: ``K`` is either module)


def small_cnn(K, classes: int = 10):
    """3 x (Conv2D 3x3 + MaxPool) -> Dense(256) -> Dense(classes), on 32x32x3."""
    layers = K.layers
    return K.Sequential(
        [
            K.Input((32, 32, 3)),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(128, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dense(classes),
        ],
        name="small_cnn",
    )


def transformer_batch(args) -> tuple[int, int]:
    sentences, length = (int(v) for v in args.transformer_batch.lower().split("x"))
    return sentences, length


def build_arch(K, name: str, args):
    if name == "cnn":
        return small_cnn(K)
    if name == "transformer":  # Keras 3 only, like resnet50_sos; dropout 0.1 (base v3)
        from state_of_sparsity.paper.models.transformer import transformer

        return transformer(args.transformer_preset, args.transformer_vocab)
    size = args.resnet_size
    if name == "resnet50_sos":  # Keras 3 only (no tf_keras twin: see PEER_MODELS)
        from state_of_sparsity.paper.models.resnet import resnet

        # weight_decay=0 (the default): no L2 term, like the keras.applications ResNet50.
        return resnet(
            50, num_classes=args.resnet_classes, input_shape=(size, size, 3), weight_decay=0.0
        )
    return K.applications.ResNet50(
        weights=None, input_shape=(size, size, 3), classes=args.resnet_classes
    )


def from_logits(name: str) -> bool:
    """Whether the model outputs logits (keras.applications' ResNet50 ends in a softmax)."""
    return name != "resnet50"


def batch_for(name: str, args, classes: int):
    rng = np.random.default_rng(args.seed)
    if name == "transformer":  # no padding: every token counts
        sentences, length = transformer_batch(args)
        ids = rng.integers(3, classes, size=(3, sentences, length)).astype(np.int32)
        decoder_inputs = np.pad(ids[1][:, :-1], [[0, 0], [1, 0]])
        return (ids[0], decoder_inputs), ids[1]
    if name == "cnn":
        shape, batch = (32, 32, 3), args.cnn_batch
    else:
        shape, batch = (args.resnet_size, args.resnet_size, 3), args.resnet_batch
    x = rng.random((batch, *shape), dtype=np.float32)
    y = rng.integers(0, classes, size=(batch,)).astype(np.int32)
    return x, y


def _first(x):
    """The first input array (the Transformer's inputs are (source, decoder_inputs))."""
    return x[0] if isinstance(x, tuple) else x


def classes_for(name: str, args) -> int:
    if name == "transformer":
        return args.transformer_vocab
    return 10 if name == "cnn" else args.resnet_classes


def loss_for(name: str, classes: int):
    """The model's training loss: the Transformer's label-smoothed per-token cross-entropy."""
    import keras

    if name == "transformer":
        from state_of_sparsity.paper.training.losses import PaddedSequenceCrossentropy

        return PaddedSequenceCrossentropy(classes, label_smoothing=0.1)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits(name))


# --------------------------------------------------------------------------------------------
# Variants


@dataclasses.dataclass
class Variant:
    name: str
    family: str  # "ours" or "peer"
    reference: str  # the dense variant its ratio is taken to
    model: object
    step: Callable[[], float]  # one timed train step; returns the loss (synchronised)
    info: dict = dataclasses.field(default_factory=dict)


def _loss(value) -> float:
    return float(np.asarray(value).reshape(-1)[0])


def ours_models(name: str, args, selected) -> dict:
    """{variant: compiled Keras 3 model} for the selected variants of ours (dense first).

    VD / L0 get ``penalty_ramp(args)`` on every wrapper at ``sparsify`` time, the ramp that
    ``SparsityCallback(regularizer_weight=...).on_train_begin`` would set, so the weighted
    penalty is in the compiled train step from the first step on.
    """
    import keras

    import state_of_sparsity as sos

    if not any(v in OURS for v in selected):
        return {}
    keras.utils.set_random_seed(args.seed)
    if args.dtype_policy:
        keras.config.set_dtype_policy(args.dtype_policy)
    dense = build_arch(keras, name, args)
    schedule = sos.PolynomialDecay(
        0.0, args.sparsity, begin_step=0, end_step=args.end_step, frequency=args.frequency
    )
    models = {}
    for vname in (v for v in OURS if v in selected):
        if vname == "dense":
            model = dense
        elif vname == "mp":
            model = sos.sparsify(dense, TECHNIQUE[vname], schedule=schedule)
        elif vname == "rp":
            model = sos.sparsify(dense, TECHNIQUE[vname], schedule=schedule, seed=args.seed)
        else:
            model = sos.sparsify(
                dense, TECHNIQUE[vname], seed=args.seed, regularizer_weight=penalty_ramp(args)
            )
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=loss_for(name, classes_for(name, args)),
        )
        models[vname] = model
    return models


def penalty_ramp(args):
    """The VD KL / L0 penalty weight: a constant ``sos.Ramp(--regularizer_weight)``."""
    import state_of_sparsity as sos

    return sos.Ramp(args.regularizer_weight)


def ours_variants(name: str, args, x, y, selected) -> list[Variant]:
    import state_of_sparsity as sos

    variants = []
    for vname, model in ours_models(name, args, selected).items():
        info = {"params": int(model.count_params())}
        if vname == "dense":
            step = _plain_step(model, x, y)
        else:
            wrappers = [w for _, w in sos.traversal.wrappers(model)]
            info["wrapped_layers"] = len(wrappers)
            if vname in PRUNED:
                info["pruned_layers"] = len(_sos_wrappers(model))
            ramp = None
            if vname in PENALIZED:
                ramp = penalty_ramp(args)
                # The weighted penalty the first step adds to the loss (shows it is there).
                info["weighted_penalty_at_start"] = float(
                    sum(float(np.asarray(w.penalty())) for w in wrappers) * ramp.value
                )
            # As fit(callbacks=[SparsityCallback(regularizer_weight=ramp)]) drives it. For VD /
            # L0 the layers already hold an equal ramp (set by sparsify): no rebuild happens.
            callback = sos.SparsityCallback(regularizer_weight=ramp)
            callback.set_model(model)
            callback.on_train_begin()
            step = _callback_step(model, callback, x, y)
        variants.append(Variant(vname, "ours", "dense", model, step, info))
    return variants


def _plain_step(model, x, y):
    def step():
        return _loss(model.train_on_batch(x, y))

    return step


def _callback_step(model, callback, x, y):
    """One ``fit``-like step: the SparsityCallback's batch hooks around ``train_on_batch``."""
    counter = [0]

    def step():
        batch = counter[0]
        callback.on_train_batch_begin(batch)
        loss = _loss(model.train_on_batch(x, y))
        callback.on_train_batch_end(batch)
        counter[0] += 1
        return loss

    return step


def _sos_wrappers(model):
    from state_of_sparsity import traversal
    from state_of_sparsity.layers.pruning import PruningWrapper

    return [w for _, w in traversal.wrappers(model) if isinstance(w, PruningWrapper)]


def peer_variants(name: str, args, x, y, selected) -> list[Variant]:
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    if not any(v in PEER for v in selected):
        return []
    tf.random.set_seed(args.seed)
    if args.dtype_policy:
        tf_keras.mixed_precision.set_global_policy(args.dtype_policy)
    dense = build_arch(tf_keras, name, args)
    pruned = None
    if "tfmot" in selected:
        pruned = build_arch(tf_keras, name, args)
        pruned.set_weights(dense.get_weights())
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            0.0, args.sparsity, begin_step=0, end_step=args.end_step, frequency=args.frequency
        )
        pruned = tfmot.sparsity.keras.prune_low_magnitude(pruned, pruning_schedule=schedule)
    variants = []
    for vname, model in (("tfk_dense", dense), ("tfmot", pruned)):
        if vname not in selected:
            continue
        model.compile(
            optimizer=tf_keras.optimizers.SGD(0.01, momentum=0.9),
            loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits(name)),
        )
        info = {"params": int(model.count_params())}
        if vname == "tfmot":
            # What fit(callbacks=[UpdatePruningStep()]) does before the first step: arm the
            # step counters. The counters then advance inside the compiled train step.
            callback = tfmot.sparsity.keras.UpdatePruningStep()
            callback.set_model(model)
            callback.on_train_begin()
            info["pruned_layers"] = len(_tfmot_pruned(model))
        variants.append(Variant(vname, "peer", "tfk_dense", model, _plain_step(model, x, y), info))
    return variants


def _tfmot_pruned(model):
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

    return [
        layer
        for layer in pruning_wrapper.collect_prunable_layers(model)
        if getattr(layer, "pruning_vars", None)
    ]


# --------------------------------------------------------------------------------------------
# Timing

CLOCKS = ("wall", "cpu")  # perf_counter; process_time (CPU seconds of all the process's threads)


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
        if v.name in ("mp", "rp"):
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

    wrappers = _sos_wrappers(model)

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

    layers = _tfmot_pruned(model)

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


def mask_sparsity(variant: Variant) -> float | None:
    """Fraction of zeros over all the masks of a pruned variant (None for a dense one)."""
    if variant.name in ("mp", "rp"):
        masks = [np.asarray(w.mask.value) for w in _sos_wrappers(variant.model)]
    elif variant.name == "tfmot":
        masks = [
            m.numpy() for layer in _tfmot_pruned(variant.model) for _, m, _ in layer.pruning_vars
        ]
    else:
        return None
    return float(sum(int((m == 0).sum()) for m in masks) / sum(m.size for m in masks))


def time_update_masks_poll(variant: Variant, repeats: int = 20) -> dict:
    """``sos.update_masks(model, step)`` when no wrapper is due (a custom loop's per-step call)."""
    import state_of_sparsity as sos

    wrappers = _sos_wrappers(variant.model)
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


# --------------------------------------------------------------------------------------------
# Peak train-step memory (--memory, JAX backend)

MEMORY_FIELDS = ("argument", "output", "alias", "temp", "generated_code")


def train_step_memory(model, x, y) -> dict:
    """XLA's memory (and cost) analysis of ``model``'s train step, compiled as Keras' JAX
    trainer compiles it.

    ``make_train_function`` jits ``model.train_step`` with ``donate_argnums=0`` (the state) and
    ``train_on_batch`` calls it on ``(state, (x, y, None))``; the same function is lowered here
    on the same arguments and compiled (nothing runs, nothing is allocated).
    """
    import jax

    data = (x, y, None)
    symbolic_build = getattr(model, "_symbolic_build", None)  # what train_on_batch does first
    if symbolic_build is not None:
        symbolic_build(data_batch=data)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    state = (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        [v.value for v in model.metrics_variables],
    )
    t0 = time.perf_counter()
    compiled = jax.jit(model.train_step, donate_argnums=0).lower(state, data).compile()
    compile_s = time.perf_counter() - t0
    stats = compiled.memory_analysis()
    out = {f"{k}_bytes": int(getattr(stats, f"{k}_size_in_bytes")) for k in MEMORY_FIELDS}
    out["total_bytes"] = (
        out["argument_bytes"] + out["output_bytes"] - out["alias_bytes"] + out["temp_bytes"]
    )
    # XLA's own figure; on the CPU backend it leaves out the temporaries (kept for reference).
    peak = getattr(stats, "peak_memory_in_bytes", None)
    out["xla_peak_memory_bytes"] = None if peak is None else int(peak)
    nbytes = [[int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in part] for part in state]
    out["params_bytes"] = sum(nbytes[0]) + sum(nbytes[1])
    out["optimizer_bytes"] = sum(nbytes[2])
    # XLA's op count of the optimized step (a convolution counts 2 flops per multiply-add, an
    # element-wise op 1 per element): what the step computes, whatever the hardware.
    cost = compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax: one dict per computation
        cost = cost[0] if cost else {}
    for key in ("flops", "transcendentals", "bytes accessed"):
        value = (cost or {}).get(key)
        out[key.replace(" ", "_")] = None if value is None else float(value)
    out["compile_s"] = compile_s
    return out


def memory_main(args, backend, selected, started, source) -> int:
    import jax

    results = {}
    for name in args.models:
        classes = classes_for(name, args)
        x, y = batch_for(name, args, classes)
        shape = _first(x).shape
        print(f"\n[{name}] compiling the train step of {selected} (x {shape})", flush=True)
        models = ours_models(name, args, selected)
        res = {
            "batch": int(_first(x).shape[0]),
            "input_shape": list(_first(x).shape[1:]),
            "variants": {},
        }
        for vname, model in models.items():
            mem = train_step_memory(model, x, y)
            mem["params"] = int(model.count_params())
            res["variants"][vname] = mem
            print(
                f"  {vname:6s} total {mem['total_bytes'] / 2**20:10.1f} MiB, temp "
                f"{mem['temp_bytes'] / 2**20:10.1f} MiB (compiled in {mem['compile_s']:.1f} s)",
                flush=True,
            )
        ref = res["variants"]["dense"]
        for mem in res["variants"].values():
            mem["total_ratio"] = mem["total_bytes"] / ref["total_bytes"]
            mem["temp_ratio"] = mem["temp_bytes"] / ref["temp_bytes"]
            mem["flops_ratio"] = (
                mem["flops"] / ref["flops"] if mem["flops"] and ref["flops"] else None
            )
        results[name] = res
        del models
        gc.collect()
    report = _report(
        "XLA memory analysis of Keras' compiled JAX train step (jax.jit(model.train_step, "
        "donate_argnums=0) lowered on (state, (x, y, None))), bytes: argument (state + batch), "
        "output (new state + logs), alias (outputs in donated arguments), temp (XLA's "
        "temporary allocation: activations for the backward pass, gradients, noise, "
        "workspaces; the peak of its heap simulation). total = argument + output - alias + "
        "temp; ratios to dense.",
        args,
        backend,
        started,
        source,
        results,
    )
    device = jax.devices()[0]
    report["device"] = {"platform": device.platform, "kind": device.device_kind}
    print_memory_tables(results, report["device"])
    _write_json(report, args.output_json)
    return 0


def print_memory_tables(results: dict, device: dict) -> None:
    print("\n" + "=" * 100)
    print(
        f"Peak train-step memory, XLA memory analysis on {device['platform']} "
        f"({device['kind']}); MiB.\ntotal = argument + output - alias + temp; x dense = "
        "total / dense total; params/opt = model variables / optimizer slots;\nGflop = XLA "
        "cost analysis of the compiled step."
    )
    for model_name, res in results.items():
        print(f"\n{model_name}  (batch {res['batch']}, input {res['input_shape']})")
        print(
            f"  {'variant':8s} {'params':>10s} {'opt':>9s} {'argument':>10s} {'temp':>10s}"
            f" {'total':>10s} {'x dense':>8s} {'temp x':>7s} {'Gflop':>9s} {'x dense':>8s}"
        )
        for name, m in res["variants"].items():
            gflop = float("nan") if m["flops"] is None else m["flops"] / 1e9
            flops_ratio = float("nan") if m["flops_ratio"] is None else m["flops_ratio"]
            print(
                f"  {name:8s} {m['params_bytes'] / 2**20:10.1f} {m['optimizer_bytes'] / 2**20:9.1f}"
                f" {m['argument_bytes'] / 2**20:10.1f} {m['temp_bytes'] / 2**20:10.1f}"
                f" {m['total_bytes'] / 2**20:10.1f} {m['total_ratio']:8.3f} {m['temp_ratio']:7.3f}"
                f" {gflop:9.2f} {flops_ratio:8.3f}"
            )
    print("=" * 100)


# --------------------------------------------------------------------------------------------
# Summary


def _stats(per_trial: list[list[float]], ref: list[list[float]]) -> dict:
    flat = [t for block in per_trial for t in block]
    ref_flat = [t for block in ref for t in block]
    trial_ratios = [
        statistics.median(a) / statistics.median(b) for a, b in zip(per_trial, ref, strict=True)
    ]
    return {
        "median_ms": statistics.median(flat) * 1e3,
        "mean_ms": statistics.fmean(flat) * 1e3,
        "max_ms": max(flat) * 1e3,
        "ratio": statistics.median(trial_ratios),
        "ratio_of_medians": statistics.median(flat) / statistics.median(ref_flat),
        "ratio_of_means": statistics.fmean(flat) / statistics.fmean(ref_flat),
        "trial_ratios": trial_ratios,
    }


def summarize(variants: list[Variant], trials: dict) -> dict:
    return {
        v.name: {
            "family": v.family,
            "reference": v.reference,
            **{c: _stats(trials[c][v.name], trials[c][v.reference]) for c in CLOCKS},
        }
        for v in variants
    }


def versions() -> dict:
    out = {}
    for dist in (
        "keras",
        "tensorflow",
        "jax",
        "jaxlib",
        "tf-keras",
        "tensorflow-model-optimization",
        "numpy",
        "state-of-sparsity",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def source_revision() -> dict:
    """The git commit of the library being timed, and whether its sources differ from it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*cmd):
        out = subprocess.run(["git", *cmd], cwd=root, capture_output=True, text=True, timeout=30)
        return out.stdout.strip() if out.returncode == 0 else None

    try:
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--", "state_of_sparsity")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "library_modified": None}
    return {"commit": commit, "library_modified": None if status is None else bool(status)}


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if "model name" in ln), cpu)
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "python": sys.version.split()[0],
    }


def print_tables(results: dict, backend: str) -> None:
    print("\n" + "=" * 100)
    print(
        f"Train step, backend={backend}. wall = perf_counter, cpu = process CPU time (all "
        "threads).\nmedian = steady state (masks applied in the forward, no update; vd/l0: "
        "noise, x^2 op, gates,\npenalty, all in the compiled step); x dense = median over "
        "trials of variant/dense (same\nframework, same trial); 'mean' ratios include the mask "
        "updates that fell in the timed steps."
    )
    for model_name, res in results.items():
        print(f"\n{model_name}  (batch {res['batch']}, input {res['input_shape']})")
        print(
            f"  {'variant':10s} {'wall ms':>8s} {'cpu ms':>8s} {'x dense':>8s} {'x dense':>8s}"
            f" {'x dense':>9s}  ratio to"
        )
        print(f"  {'':10s} {'median':>8s} {'median':>8s} {'wall':>8s} {'cpu':>8s} {'cpu mean':>9s}")
        for name, s in res["summary"].items():
            w, c = s["wall"], s["cpu"]
            print(
                f"  {name:10s} {w['median_ms']:8.1f} {c['median_ms']:8.1f} {w['ratio']:8.3f}"
                f" {c['ratio']:8.3f} {c['ratio_of_means']:9.3f}  {s['reference']}"
            )
        updates = res.get("mask_update")
        if updates:
            print(
                "  one mask update of all pruned layers (median; x step = / the dense median "
                "step, same clock):"
            )
            print(
                f"  {'variant':8s} {'layers':>6s} {'point':>6s} {'sparsity':>8s} {'wall ms':>9s}"
                f" {'x step':>7s} {'cpu ms':>9s} {'x step':>7s}"
            )
            for name, u in updates["variants"].items():
                ref = res["summary"]["dense" if name in ("mp", "rp") else "tfk_dense"]
                for label in updates["steps"]:
                    if not u["wall"][label]:
                        continue
                    wall = statistics.median(u["wall"][label]) * 1e3
                    cpu = statistics.median(u["cpu"][label]) * 1e3
                    print(
                        f"  {name:8s} {u['layers']:6d} {label:>6s} {u['sparsity'][label]:8.3f}"
                        f" {wall:9.1f} {wall / ref['wall']['median_ms']:7.1f}"
                        f" {cpu:9.1f} {cpu / ref['cpu']['median_ms']:7.1f}"
                    )
        poll = res.get("update_masks_poll_s")
        if poll is not None:
            print(
                "  sos.update_masks(model, step) with nothing due: "
                f"{statistics.median(poll['wall']) * 1e3:.2f} ms wall, "
                f"{statistics.median(poll['cpu']) * 1e3:.2f} ms cpu"
            )
    print("=" * 100)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.backend:
        if "keras" in sys.modules:
            raise SystemExit("--backend must be set before keras is imported")
        os.environ["KERAS_BACKEND"] = args.backend
    import keras

    backend = keras.backend.backend()
    selected = resolve_variants(args, backend)

    started = datetime.datetime.now(datetime.timezone.utc)
    source = source_revision()  # before the library is imported
    print(
        f"backend={backend} peer={args.peer} models={args.models} variants={selected} "
        f"memory={args.memory} quick={args.quick} commit={source['commit']} "
        f"library_modified={source['library_modified']}"
    )
    if args.memory:
        return memory_main(args, backend, selected, started, source)
    results = {}
    for name in args.models:
        classes = classes_for(name, args)
        x, y = batch_for(name, args, classes)
        steps = {"cnn": args.cnn_steps, "transformer": args.transformer_steps}.get(
            name, args.resnet_steps
        )
        print(
            f"\n[{name}] building variants (x {_first(x).shape}, {steps} steps x "
            f"{args.trials} trials)"
        )
        variants = ours_variants(name, args, x, y, selected)
        if args.peer and name in PEER_MODELS:
            variants += peer_variants(name, args, x, y, selected)
        elif args.peer:
            print(f"  note: {name} has no tf_keras twin; the peer is skipped for it", flush=True)
        warm = warm_up(variants, args.warmup)
        trials = interleaved_trials(variants, args.trials, steps)
        for v in variants:  # shows that the schedule's updates did happen in the timed steps
            v.info["mask_sparsity_after_trials"] = mask_sparsity(v)
        res = {
            "batch": int(_first(x).shape[0]),
            "input_shape": list(_first(x).shape[1:]),
            "classes": classes,
            "steps_per_trial": steps,
            "variants": {
                v.name: {
                    **v.info,
                    "family": v.family,
                    "jit_compile": getattr(v.model, "jit_compile", None),
                }
                for v in variants
            },
            "warmup_s": warm,
            "trials_s": trials,  # {clock: {variant: [[seconds per step] per trial]}}
            "summary": summarize(variants, trials),
        }
        if args.update_repeats > 0 and any(v.name in PRUNED for v in variants):
            print(f"  timing the all-layer mask update ({args.update_repeats} repeats)", flush=True)
            res["mask_update"] = time_mask_updates(variants, args)
            ours_pruned = [v for v in variants if v.name in ("mp", "rp")]
            if ours_pruned:
                res["update_masks_poll_s"] = time_update_masks_poll(ours_pruned[0])
        results[name] = res
        del variants
        gc.collect()

    report = _report(
        "seconds per train step (clocks: wall = perf_counter, cpu = process_time of all "
        "threads): model.train_on_batch(x, y) on fixed host arrays, plus the "
        "SparsityCallback batch hooks for mp/rp/vd/l0 (vd/l0: noise, second op on x^2, gates "
        "and the ramp-weighted penalty are inside the compiled step); tfmot with its step "
        "counter armed by UpdatePruningStep.on_train_begin. Mask updates happen at the "
        "schedule's frequency inside the timed steps. mask_update: one update of every pruned "
        "layer, timed apart (masks reset to ones, untimed, before each).",
        args,
        backend,
        started,
        source,
        results,
    )
    print_tables(results, backend)
    _write_json(report, args.output_json)
    return 0


def _report(what, args, backend, started, source, results) -> dict:
    return {
        "what": what,
        "date": started.isoformat(timespec="seconds"),
        "elapsed_s": (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(),
        "backend": backend,
        "machine": machine(),
        "versions": versions(),
        "source": source,
        "flags": {k: v for k, v in vars(args).items()},
        "results": results,
    }


def _write_json(report: dict, path: str | None) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(report, f, indent=1, default=str)
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
