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

This file holds the command line and the run of each model; the parts it drives sit next to
it: ``variants.py`` (models, batches, losses, the variants of ours and of the peer),
``timing.py`` (clocks, warm-up, interleaved trials, mask-update timing), ``memory.py`` (XLA's
analysis of the compiled train step) and ``report.py`` (versions, machine, statistics, tables,
JSON).

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
import datetime
import gc
import os
import sys

import memory
import report
import timing
from variants import (
    MODELS,
    OURS,
    OURS_PRUNED,
    PEER,
    PEER_MODELS,
    PRUNED,
    REFERENCE,
    batch_for,
    batch_info,
    classes_for,
    first_input,
    mask_sparsity,
    ours_variants,
    peer_variants,
)

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


def time_model(name: str, args, selected) -> dict:
    """Builds the selected variants on model ``name``, times them and summarises the times."""
    classes = classes_for(name, args)
    x, y = batch_for(name, args, classes)
    steps = {"cnn": args.cnn_steps, "transformer": args.transformer_steps}.get(
        name, args.resnet_steps
    )
    print(
        f"\n[{name}] building variants (x {first_input(x).shape}, {steps} steps x "
        f"{args.trials} trials)"
    )
    variants = ours_variants(name, args, x, y, selected)
    if args.peer and name in PEER_MODELS:
        variants += peer_variants(name, args, x, y, selected)
    elif args.peer:
        print(f"  note: {name} has no tf_keras twin; the peer is skipped for it", flush=True)
    warm = timing.warm_up(variants, args.warmup)
    trials = timing.interleaved_trials(variants, args.trials, steps)
    for v in variants:  # shows that the schedule's updates did happen in the timed steps
        v.info["mask_sparsity_after_trials"] = mask_sparsity(v)
    res = {
        **batch_info(x),
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
        "summary": report.summarize(variants, trials),
    }
    if args.update_repeats > 0 and any(v.name in PRUNED for v in variants):
        print(f"  timing the all-layer mask update ({args.update_repeats} repeats)", flush=True)
        res["mask_update"] = timing.time_mask_updates(variants, args)
        ours_pruned = [v for v in variants if v.name in OURS_PRUNED]
        if ours_pruned:
            res["update_masks_poll_s"] = timing.time_update_masks_poll(ours_pruned[0])
    return res


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
    source = report.source_revision()  # before the library is imported
    print(
        f"backend={backend} peer={args.peer} models={args.models} variants={selected} "
        f"memory={args.memory} quick={args.quick} commit={source['commit']} "
        f"library_modified={source['library_modified']}"
    )
    measure, what = (
        (memory.analyse_model, memory.WHAT) if args.memory else (time_model, timing.WHAT)
    )
    results = {}
    for name in args.models:
        results[name] = measure(name, args, selected)
        gc.collect()
    out = report.make_report(what, args, backend, started, source, results)
    if args.memory:
        out["device"] = memory.device()
        report.print_memory_tables(results, out["device"])
    else:
        report.print_tables(results, backend)
    report.write_json(out, args.output_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
