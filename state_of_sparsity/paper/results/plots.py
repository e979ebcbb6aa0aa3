"""The explorer's figures (matplotlib, Agg backend), written as PNG files atomically.

``results_figure``: one panel per benchmark, sparsity against its metric. On ResNet-50 and
Transformer panels, every paper run of the benchmark's front techniques is a faint point and
each technique's Pareto front (``selection.pareto_front``) a line, the paper's best dense run a
dashed gray line; the user's runs are drawn on top: a star per sparse run (a thin line through a
VD threshold sweep), a dotted line per dense run. ``train_lenet``'s ``results.png`` is a
LeNet panel drawn by this function (user runs only: LeNet has no paper data).

``layer_roles_figure``: a run's sparsity by layer role (``layer_roles``) and per layer in
model order, colored by role (the paper's Figures 2 and 4).
"""

from __future__ import annotations

import os

from state_of_sparsity.paper.results import layer_roles, paper_runs, selection

__all__ = ["NAMES", "layer_roles_figure", "results_figure"]

NAMES = {
    "dense": "dense",
    "magnitude_pruning": "magnitude pruning",
    "magnitude_pruning_extended": "magnitude pruning, extended",
    "random_pruning": "random pruning",
    "variational_dropout": "variational dropout",
    "l0_regularization": "L0 regularization",
    "lottery_ticket": "lottery ticket",
    "scratch_e": "scratch-e",
    "scratch_b": "scratch-b",
    "scratch_e_augmented_init": "scratch-e, augmented init",
    "scratch_b_augmented_init": "scratch-b, augmented init",
}
_COLORS = {
    "magnitude_pruning": "tab:blue",
    "magnitude_pruning_extended": "tab:cyan",
    "random_pruning": "tab:orange",
    "variational_dropout": "tab:green",
    "l0_regularization": "tab:red",
    "lottery_ticket": "tab:purple",
    "scratch_e": "tab:brown",
    "scratch_b": "tab:pink",
    "scratch_e_augmented_init": "tab:olive",
    "scratch_b_augmented_init": "tab:gray",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(f"{path}.tmp", dpi=120, format="png")
    _pyplot().close(fig)
    os.replace(f"{path}.tmp", path)


def _draw_paper(ax, benchmark):
    """The paper's faint points, fronts and dense line; returns the metrics drawn on fronts."""
    scale, drawn = benchmark.scale, []
    for technique in benchmark.front_techniques:
        runs = paper_runs.load(benchmark.name, technique)
        color = _COLORS[technique]
        ax.scatter(
            [r.sparsity for r in runs],
            [r.metric * scale for r in runs],
            s=6,
            color=color,
            alpha=0.15,
            linewidths=0,
        )
        front = selection.pareto_front(runs)
        ax.plot(
            [r.sparsity for r in front],
            [r.metric * scale for r in front],
            color=color,
            marker="o",
            markersize=3,
            linewidth=1.2,
            label=f"paper: {NAMES[technique]}",
        )
        drawn += [r.metric * scale for r in front]
    dense = max(r.metric for r in paper_runs.load(benchmark.name, "dense")) * scale
    ax.axhline(dense, color="gray", linestyle="--", linewidth=1, label="paper: dense (best)")
    return [*drawn, dense]


def _legend(path, what):
    return f"{path} ({what})" if path else what


def _draw_panel(ax, benchmark, runs):
    scale = benchmark.scale
    metrics = _draw_paper(ax, benchmark) if benchmark.front_techniques else []
    sparsities = [0.45] if benchmark.front_techniques else []
    for run in runs:
        if run.metric is None:
            continue
        color = _COLORS.get(run.technique, "black")
        metrics.append(run.metric * scale)
        if run.technique == "dense":
            ax.axhline(
                run.metric * scale,
                color="black",
                linestyle=":",
                linewidth=1.2,
                label=_legend(run.path, "dense"),
            )
            continue
        if run.sweep:
            ax.plot(
                [s for s, _ in run.sweep],
                [m * scale for _, m in run.sweep],
                color=color,
                linewidth=0.8,
                marker=".",
                zorder=4,
                label=_legend(run.path, "τ sweep"),
            )
            metrics += [m * scale for _, m in run.sweep]
            sparsities += [s for s, _ in run.sweep]
        ax.scatter(
            [run.sparsity],
            [run.metric * scale],
            marker="*",
            s=180,
            color=color,
            edgecolors="black",
            linewidths=0.8,
            zorder=5,
            label=_legend(run.path, NAMES.get(run.technique, run.technique)),
        )
        sparsities.append(run.sparsity)
    if sparsities:
        ax.set_xlim(min(sparsities) - 0.03, 1.0)
    if metrics:
        low, high = min(metrics), max(metrics)
        margin = 0.05 * (high - low) or 0.5 * scale / 100
        ax.set_ylim(low - margin, high + margin)
    title = benchmark.title + (f"\n({benchmark.note})" if benchmark.note else "")
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel("sparsity")
    ax.set_ylabel(benchmark.metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="lower left" if benchmark.front_techniques else "best")


def results_figure(panels, path: str) -> None:
    """Writes to ``path`` one panel per ``(benchmark, user_runs)`` of ``panels``, side by side."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(7.0 * len(panels), 5.0), squeeze=False)
    for ax, (benchmark, runs) in zip(axes[0], panels, strict=True):
        _draw_panel(ax, benchmark, runs)
    _save(fig, path)


def layer_roles_figure(run, path: str) -> None:
    """Writes to ``path`` the sparsity of ``run`` (a ResNet-50 or Transformer ``UserRun``) by
    layer role (with each role's share of the weights) and per layer in model order."""
    plt = _pyplot()
    depth = int(run.flags.get("resnet_depth", 50))
    roles = layer_roles.by_role(run.benchmark, run.layers, depth)
    colors = {row["role"]: f"C{i}" for i, row in enumerate(roles)}
    total = sum(row["weights"] for row in roles)
    fig, (bars, layers) = plt.subplots(
        1, 2, figsize=(13.0, 4.5), gridspec_kw={"width_ratios": [1, 2]}
    )
    positions = range(len(roles))[::-1]  # the first role on top
    bars.barh(
        positions, [row["sparsity"] for row in roles], color=[colors[row["role"]] for row in roles]
    )
    bars.set_yticks(positions)
    bars.set_yticklabels(
        [f"{r['role']} ({r['weights'] / total:.0%} of weights)" for r in roles], fontsize="small"
    )
    bars.set_xlim(0.0, 1.0)
    bars.set_xlabel("sparsity")
    bars.axvline(run.sparsity, color="black", linestyle=":", linewidth=1, label="global")
    bars.legend(fontsize="x-small")
    bars.set_title("by layer role", fontsize="medium")
    for i, layer in enumerate(run.layers):
        name = layer_roles.role(run.benchmark, layer["name"], depth)
        layers.bar(i, 1.0 - layer["nonzeros"] / layer["weights"], color=colors[name])
    layers.xaxis.get_major_locator().set_params(integer=True)
    layers.set_xlabel("layer (model order)")
    layers.set_ylabel("sparsity")
    layers.set_ylim(0.0, 1.0)
    layers.set_title("per layer", fontsize="medium")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[r["role"]]) for r in roles]
    layers.legend(handles, list(colors), fontsize="x-small", ncol=2)
    fig.suptitle(
        f"{run.path}: {NAMES.get(run.technique, run.technique)}, global sparsity "
        f"{run.sparsity:.2%}",
        fontsize="medium",
    )
    _save(fig, path)
