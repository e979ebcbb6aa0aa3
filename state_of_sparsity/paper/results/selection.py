"""Which paper run is "the best" at a sparsity, and the Pareto fronts the plots draw.

**Levels** (bucketing): a run belongs to the level L (one of its benchmark's reported
sparsities, ``benchmarks.Benchmark.levels``) when its density 1 − s is within ±5 % (relative)
of the level's density 1 − L: 90 % means 9.5–10.5 % of the weights left, 98 % means
1.9–2.1 %. Targets (ResNet-50 MP / RP) and the measured sparsities of pruned Transformers
(0.4995 for a 50 % target) fall on their level; a VD or L0 run, whose sparsity is measured,
counts at a level only when it lands that close, and otherwise is drawn but never chosen.

**Best**: at each level, the run with the highest metric (top-1, BLEU); on a tie, the first in
file order. A VD Transformer row evaluated at eleven thresholds gives eleven candidates, a
repeated scratch configuration one per repeat. The paper's README tables chose among released
checkpoints and differ from this rule in some VD / L0 cells (e.g. Transformer VD at 60 %: 25.37
BLEU there; here 26.45, the model of the 50 % cell evaluated at τ = 0); the magnitude and random
pruning cells agree.

**Pareto front**: the runs that no other run beats with at least the same sparsity: the best
metric reachable at each sparsity. Sparsities are compared to 0.1 % (``round(s, 3)``): the
measured sparsities of one target differ in the seventh digit (0.980001211, 0.980001330), which
must not put a failed run on the front.
"""

from __future__ import annotations

__all__ = ["DENSITY_TOLERANCE", "best_by_level", "level_of", "pareto_front"]

DENSITY_TOLERANCE = 0.05


def level_of(sparsity: float, levels) -> float | None:
    """The level of ``levels`` whose density is within ``DENSITY_TOLERANCE`` (relative) of
    ``1 - sparsity``; None when there is none."""
    for level in levels:
        if abs((1.0 - sparsity) - (1.0 - level)) <= DENSITY_TOLERANCE * (1.0 - level) + 1e-12:
            return level
    return None


def best_by_level(runs, levels) -> dict:
    """``{level: the run with the highest metric at that level}`` over ``runs`` (first wins a
    tie), for the levels where some run falls, in the order of ``levels``."""
    best = {}
    for run in runs:
        level = level_of(run.sparsity, levels)
        if level is not None and (level not in best or run.metric > best[level].metric):
            best[level] = run
    return {level: best[level] for level in levels if level in best}


def pareto_front(runs) -> list:
    """The runs not beaten by any run of at least their sparsity (to 0.1 %), by increasing
    sparsity."""
    front, best = [], float("-inf")
    for run in sorted(runs, key=lambda r: (-round(r.sparsity, 3), -r.metric)):
        if run.metric > best:
            front.append(run)
            best = run.metric
    return front[::-1]
