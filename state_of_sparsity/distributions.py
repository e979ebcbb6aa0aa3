"""How a model's sparsity is spread over its layers: ERK targets and global mask updates.

- ``"uniform"``: every layer gets the model's target (today's default; the paper's).
- ``"erk"``: Erdős–Rényi-kernel targets (Evci et al. 2020, RigL's ``sparse_utils`` and
  jaxpruner's ``erk`` distribution): the density of layer l is ε · score_l with
  score_l = Σ(dims of its kernel) / Π(dims of its kernel) (e.g. (n_in + n_out + k_h + k_w) /
  (n_in · n_out · k_h · k_w) for a convolution), one ε for the model, so that the kept weights
  add up to round(N · (1 − s)) over the N sparsified weights. A layer whose density ε · score_l
  would exceed 1 stays dense (density 1), and ε is recomputed over the others until none does
  (RigL's loop). ``erk_sparsities`` then rounds the kept counts to whole weights with the
  largest-remainder rule, so the global target is met exactly (each layer's target is
  1 − kept_l / n_l). A layer with several kernels is one unit scored Σ dims / Σ sizes.
- ``"global"``: one magnitude threshold across all sparsified tensors (Han et al. 2015;
  torch's ``global_unstructured``): at every update the round(N · (1 − s(t))) weights of
  largest score over the whole pool are kept (``update_global``). Random pruning pools fixed
  random scores; block patterns pool block norms.
"""

from __future__ import annotations

import collections
import math

import numpy as np

from state_of_sparsity.ops.masks import keep_count, topk_mask

__all__ = ["erk_score", "erk_sparsities", "update_global", "update_wrappers"]


def erk_score(shapes) -> float:
    """Σ dims / Σ sizes over the kernel ``shapes`` of one layer (the ERK score of a single
    kernel: sum(shape) / prod(shape))."""
    return sum(sum(s) for s in shapes) / sum(math.prod(s) for s in shapes)


def erk_sparsities(shapes: dict, target: float, fixed_size: int = 0, fixed_kept: int = 0):
    """Per-layer ERK sparsities meeting ``target`` exactly over all sparsified weights.

    Args:
        shapes: ``{key: [kernel shapes]}`` of the layers to distribute over.
        target: the global sparsity, over these layers plus the fixed ones.
        fixed_size, fixed_kept: weights and kept weights of layers with targets of their own
            (``overrides``), which count in the global budget but are not redistributed.

    Returns:
        ``{key: sparsity}`` with Σ_l round(n_l (1 − s_l)) = round(N (1 − target)) − fixed_kept,
        N = Σ n_l + fixed_size.
    """
    sizes = {key: sum(math.prod(s) for s in kernel_shapes) for key, kernel_shapes in shapes.items()}
    scores = {key: erk_score(kernel_shapes) for key, kernel_shapes in shapes.items()}
    budget = keep_count(sum(sizes.values()) + fixed_size, target) - fixed_kept
    if not 0 <= budget <= sum(sizes.values()):
        raise ValueError(
            f"The per-layer targets in `overrides` keep {fixed_kept:,} of {fixed_size:,} weights; "
            f"with the others the global target {target} cannot be met (ERK would need to keep "
            f"{budget:,} of {sum(sizes.values()):,})."
        )
    dense: set = set()
    while True:
        free = [key for key in shapes if key not in dense]
        remaining = budget - sum(sizes[key] for key in dense)
        weighted = sum(scores[key] * sizes[key] for key in free)
        epsilon = remaining / weighted if weighted else 0.0
        top = max((scores[key] for key in free), default=0.0)
        if top * epsilon <= 1.0:
            break
        dense |= {key for key in free if scores[key] == top}
    kept = {key: sizes[key] for key in dense}
    exact = {key: epsilon * scores[key] * sizes[key] for key in free}
    kept.update({key: math.floor(value) for key, value in exact.items()})
    shortfall = budget - sum(kept.values())
    by_remainder = sorted(free, key=lambda key: -(exact[key] - math.floor(exact[key])))
    for key in by_remainder[:shortfall]:
        kept[key] += 1
    return {key: 1.0 - kept[key] / sizes[key] for key in shapes}


def update_global(wrappers, step: int) -> float:
    """Updates the masks of a pool of ``wrappers`` (same technique, pattern and schedule)
    together after step ``step``: the round(U · (1 − s(step))) units of largest score among the
    pool's U units (weights, or blocks) are kept; returns s(step)."""
    sparsity = wrappers[0].schedule.sparsity(step)
    parts = [(w, i, w.unit_scores(i)) for w in wrappers for i in range(len(w.kernels))]
    pooled = np.concatenate([scores for _, _, scores in parts])
    keep = topk_mask(pooled, keep_count(pooled.size, sparsity), bool)
    offset = 0
    for wrapper, index, scores in parts:
        units = keep[offset : offset + scores.size]
        wrapper.masks[index].assign(wrapper.units_to_mask(index, units))
        offset += scores.size
    for wrapper in wrappers:
        wrapper.last_update.assign(int(step))
    return sparsity


def update_wrappers(wrappers, step: int) -> None:
    """Updates pruning ``wrappers`` that are due at ``step``: each uniform / ERK one on its own,
    the ``"global"`` ones pooled by (technique, pattern, schedule)."""
    pools = collections.defaultdict(list)
    for wrapper in wrappers:
        if wrapper.distribution == "global":
            pools[(type(wrapper), wrapper.pattern, wrapper.schedule)].append(wrapper)
        else:
            wrapper.update_mask(step)
    for pool in pools.values():
        update_global(pool, step)
