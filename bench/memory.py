"""Peak train-step memory and flops (``--memory``, JAX): XLA's analysis of the compiled step.

Nothing is run or allocated: Keras' own train step is compiled for every variant and XLA's
``memory_analysis()`` and ``cost_analysis()`` are read, with ratios to dense.
"""

from __future__ import annotations

import time

import numpy as np
from variants import batch_for, batch_info, classes_for, first_input, ours_models

MEMORY_FIELDS = ("argument", "output", "alias", "temp", "generated_code")
WHAT = (
    "XLA memory analysis of Keras' compiled JAX train step (jax.jit(model.train_step, "
    "donate_argnums=0) lowered on (state, (x, y, None))), bytes: argument (state + batch), "
    "output (new state + logs), alias (outputs in donated arguments), temp (XLA's "
    "temporary allocation: activations for the backward pass, gradients, noise, "
    "workspaces; the peak of its heap simulation). total = argument + output - alias + "
    "temp; ratios to dense."
)


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


def analyse_model(name: str, args, selected) -> dict:
    """The train-step analysis of every selected variant of ours on model ``name``."""
    x, y = batch_for(name, args, classes_for(name, args))
    shape = first_input(x).shape
    print(f"\n[{name}] compiling the train step of {selected} (x {shape})", flush=True)
    models = ours_models(name, args, selected)
    res = {**batch_info(x), "variants": {}}
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
        mem["flops_ratio"] = mem["flops"] / ref["flops"] if mem["flops"] and ref["flops"] else None
    return res


def device() -> dict:
    """The JAX device whose compiler the analysis reads."""
    import jax

    first = jax.devices()[0]
    return {"platform": first.platform, "kind": first.device_kind}
