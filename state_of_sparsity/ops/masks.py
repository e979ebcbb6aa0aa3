"""Mask computations for magnitude and random pruning (pure NumPy functions).

Mask updates are rare events (every ``frequency`` steps) that run between train steps, never
inside the compiled step (see ``callbacks.SparsityCallback``). They run on the host with NumPy:
``np.partition`` finds the k-th largest magnitude in O(n), some hundred times faster on a CPU than
a device top-k with k near n (measured in ``bench/README.md``), and the copy of the kernel to the
host costs little next to it. Results are identical on every Keras backend, and random pruning
draws from NumPy's generator, so the same seed gives the same masks on TensorFlow and JAX.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["keep_count", "topk_mask", "magnitude_mask", "cumulative_random_mask"]


def keep_count(size: int, sparsity: float) -> int:
    """Number of weights kept at ``sparsity``: k = round(size * (1 - sparsity)) (spec §3.4).

    Rounding is half-to-even, as ``tf.round`` in the original. The original computed in float32;
    this uses float64, which can differ by one weight when size * (1 - s) is within float32
    rounding of a half-integer.
    """
    if not 0.0 <= sparsity <= 1.0 or math.isnan(sparsity):
        raise ValueError(f"`sparsity` must be in [0, 1], got {sparsity!r}.")
    return int(np.round(size * (1.0 - sparsity)))


def topk_mask(scores, k: int, dtype="float32") -> np.ndarray:
    """1 at the ``k`` largest entries of ``scores``, 0 elsewhere; exactly ``k`` ones.

    Ties at the k-th largest value are broken towards the lower flat (row-major) index, so the
    result is deterministic. (The TF ≥ 1.14 contrib library kept every entry >= the k-th value,
    so ties there kept more than k; the google-research fork broke ties at random.)
    """
    scores = np.asarray(scores)
    flat = scores.ravel()
    n = flat.size
    if k >= n:
        return np.ones(scores.shape, dtype)
    if k <= 0:
        return np.zeros(scores.shape, dtype)
    kth = np.partition(flat, n - k)[n - k]
    keep = flat > kth
    room = k - int(np.count_nonzero(keep))
    keep[np.flatnonzero(flat == kth)[:room]] = True
    return keep.reshape(scores.shape).astype(dtype)


def magnitude_mask(weights, sparsity: float, dtype="float32") -> np.ndarray:
    """Exact per-tensor top-k of |weights| with k = keep_count(size, sparsity) (spec §3.4)."""
    magnitudes = np.abs(np.asarray(weights, np.float32))
    return topk_mask(magnitudes, keep_count(magnitudes.size, sparsity), dtype)


def cumulative_random_mask(mask, sparsity: float, seed: int, dtype="float32") -> np.ndarray:
    """Prune, uniformly at random among the survivors of ``mask``, down to ``sparsity``.

    Spec §3.6: the number of zeros becomes size - keep_count(size, sparsity); the additional zeros
    are drawn uniformly among the currently unpruned positions, and pruned positions never come
    back (if ``sparsity`` is below the current sparsity nothing changes). A given (seed, mask,
    sparsity) always gives the same result.
    """
    mask = np.asarray(mask)
    survivors = np.flatnonzero(mask.ravel() > 0)
    k = min(keep_count(mask.size, sparsity), survivors.size)
    draws = np.random.default_rng(seed).random(survivors.size, np.float32)
    keep = np.zeros(mask.size, dtype)
    keep[survivors[topk_mask(draws, k, bool)]] = 1
    return keep.reshape(mask.shape)
