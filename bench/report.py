"""The run's record: versions, machine, source revision, statistics, printed tables and JSON."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys

from timing import CLOCKS
from variants import Variant

DISTRIBUTIONS = (
    "keras",
    "tensorflow",
    "jax",
    "jaxlib",
    "tf-keras",
    "tensorflow-model-optimization",
    "numpy",
    "state-of-sparsity",
)


def versions() -> dict:
    out = {}
    for dist in DISTRIBUTIONS:
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


# --------------------------------------------------------------------------------------------
# Statistics of the timed steps


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


# --------------------------------------------------------------------------------------------
# Tables


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
                ref = res["summary"][res["summary"][name]["reference"]]
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
# JSON


def make_report(what, args, backend, started, source, results) -> dict:
    """The JSON record of a run that started at ``started`` (UTC) and measured ``results``."""
    return {
        "what": what,
        "date": started.isoformat(timespec="seconds"),
        "elapsed_s": (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds(),
        "backend": backend,
        "machine": machine(),
        "versions": versions(),
        "source": source,
        "flags": dict(vars(args)),
        "results": results,
    }


def write_json(report: dict, path: str | None) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(report, f, indent=1, default=str)
        print(f"wrote {path}")
