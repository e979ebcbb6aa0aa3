"""The explorer's text tables.

``comparison``: per benchmark, each user run beside the paper's best run of its technique at the
level nearest its sparsity (``selection.best_by_level``; a dense run beside the paper's best
dense run), the difference, and the recipe that reproduces that paper run (or its CSV line where
no recipe does). ``roles``: a run's sparsity by layer role (``layer_roles.by_role``).
``aligned``: the column layout they (and ``list_recipes``) use.
"""

from __future__ import annotations

from state_of_sparsity.paper.recipes import catalog
from state_of_sparsity.paper.results import layer_roles, paper_runs, selection
from state_of_sparsity.paper.results.benchmarks import BENCHMARKS

__all__ = ["aligned", "comparison", "paper_match", "roles"]


def aligned(header, rows) -> list[str]:
    """``header`` and ``rows`` (lists of strings) as left-aligned columns under a rule."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines


def paper_match(run):
    """``(level, paper run)``: the paper's best run of ``run``'s technique at the level nearest
    its sparsity (level 0 and the best dense run for a dense run); None without paper runs of
    that technique (and for LeNet)."""
    benchmark = BENCHMARKS[run.benchmark]
    if not benchmark.levels:
        return None
    candidates = paper_runs.load(run.benchmark, run.technique)
    if run.technique == "dense":
        return (0.0, max(candidates, key=lambda r: r.metric)) if candidates else None
    best = selection.best_by_level(candidates, benchmark.levels)
    if not best:
        return None
    level = min(best, key=lambda level: abs(level - run.sparsity))
    return level, best[level]


def _paper_columns(run, scale):
    match = paper_match(run)
    if match is None:
        return ["-", "-", "-", "no paper runs"]
    level, paper = match
    recipe = catalog.find(run.benchmark, run.technique, level)
    where = f"recipe {recipe.name}" if recipe else paper.source
    delta = "-" if run.metric is None else f"{(run.metric - paper.metric) * scale:+.2f}"
    return [f"{level:.1%}", f"{paper.metric * scale:.2f}", delta, where]


def comparison(runs) -> str:
    """The table of ``runs`` (``run_dirs.UserRun`` s), one section per benchmark."""
    sections = []
    for name, benchmark in BENCHMARKS.items():
        mine = [run for run in runs if run.benchmark == name]
        if not mine:
            continue
        scale = benchmark.scale
        header = ["run", "technique", "sparsity", benchmark.short]
        if benchmark.levels:
            header += ["paper level", f"paper {benchmark.short}", "difference", "paper run"]
        rows = []
        for run in mine:
            row = [
                run.path,
                run.technique,
                f"{run.sparsity:.2%}",
                "-" if run.metric is None else f"{run.metric * scale:.2f}",
            ]
            if benchmark.levels:
                row += _paper_columns(run, scale)
            rows.append(row)
        title = f"{benchmark.title}: {benchmark.metric}"
        if benchmark.levels:
            title += "; paper: its best run of the technique at the nearest reported sparsity"
        sections.append("\n".join([title, *aligned(header, rows)]))
    return "\n\n".join(sections)


def roles(run) -> str:
    """``run``'s sparsity by layer role, with each role's tensors, weights and non-zeros."""
    depth = int(run.flags.get("resnet_depth", 50))
    rows = [
        [
            r["role"],
            str(r["tensors"]),
            f"{r['weights']:,}",
            f"{r['nonzeros']:,}",
            f"{r['sparsity']:.2%}",
        ]
        for r in layer_roles.by_role(run.benchmark, run.layers, depth)
    ]
    title = f"Sparsity by layer role: {run.path} ({run.technique}, global {run.sparsity:.2%})"
    return "\n".join(
        [title, *aligned(["role", "tensors", "weights", "non-zeros", "sparsity"], rows)]
    )
