"""Mask computations for magnitude and random pruning (pure functions on ``keras.ops``).

All functions run eagerly on any Keras backend; they are called between train steps, never
inside the compiled step (mask updates are rare events, see ``callbacks.SparsityCallback``).
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops, random

__all__ = ["keep_count", "topk_mask", "magnitude_mask", "cumulative_random_mask", "zero_fraction"]


def keep_count(size: int, sparsity: float) -> int:
    """Number of weights kept at ``sparsity``: k = round(size * (1 - sparsity)) (spec §3.4).

    Rounding is half-to-even, as ``tf.round`` in the original. The original computed in float32;
    this uses float64, which can differ by one weight when size * (1 - s) is within float32
    rounding of a half-integer.
    """
    if not 0.0 <= sparsity <= 1.0 or math.isnan(sparsity):
        raise ValueError(f"`sparsity` must be in [0, 1], got {sparsity!r}.")
    return int(np.round(size * (1.0 - sparsity)))


def topk_mask(scores, k: int, dtype: str = "float32"):
    """1 at the ``k`` largest entries of ``scores``, 0 elsewhere; exactly ``k`` ones.

    Ties at the k-th largest value are broken towards the lower flat (row-major) index, so the
    result is deterministic and identical on every backend and replica. (The TF ≥ 1.14 contrib
    library kept every entry >= the k-th value, so ties there kept more than k; the
    google-research fork broke ties at random.)
    """
    shape = ops.shape(scores)
    flat = ops.reshape(scores, (-1,))
    n = int(flat.shape[0])
    if k >= n:
        return ops.ones(shape, dtype)
    if k <= 0:
        return ops.zeros(shape, dtype)
    kth = ops.top_k(flat, k, sorted=True)[0][k - 1]
    greater = ops.greater(flat, kth)
    equal = ops.equal(flat, kth)
    room = k - ops.sum(ops.cast(greater, "int32"))
    tie_rank = ops.cumsum(ops.cast(equal, "int32"))
    keep = ops.logical_or(greater, ops.logical_and(equal, ops.less_equal(tie_rank, room)))
    return ops.reshape(ops.cast(keep, dtype), shape)


def magnitude_mask(weights, sparsity: float, dtype: str = "float32"):
    """Exact per-tensor top-k of |weights| with k = keep_count(size, sparsity) (spec §3.4)."""
    size = int(np.prod(weights.shape))
    return topk_mask(ops.abs(ops.cast(weights, "float32")), keep_count(size, sparsity), dtype)


def cumulative_random_mask(mask, sparsity: float, seed: int, dtype: str = "float32"):
    """Prune, uniformly at random among the survivors of ``mask``, down to ``sparsity``.

    Spec §3.6: the number of zeros becomes size - keep_count(size, sparsity); the additional zeros
    are drawn uniformly among the currently unpruned positions, and pruned positions never come
    back (if ``sparsity`` is below the current sparsity nothing changes). ``seed`` is an integer,
    so a given (seed, mask, sparsity) always gives the same result on a backend.
    """
    size = int(np.prod(mask.shape))
    alive = ops.greater(mask, 0)
    survivors = int(ops.convert_to_numpy(ops.sum(ops.cast(alive, "int32"))))
    k = min(keep_count(size, sparsity), survivors)
    draws = random.uniform(ops.shape(mask), seed=seed)
    scores = ops.where(alive, draws, -1.0)
    return topk_mask(scores, k, dtype)


def zero_fraction(x) -> float:
    """Fraction of exact zeros in ``x`` (a Python float)."""
    x = ops.convert_to_numpy(x)
    return float(np.mean(x == 0)) if x.size else 0.0
