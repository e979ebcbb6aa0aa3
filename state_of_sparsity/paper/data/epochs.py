"""Endless training streams made of epochs, each shuffled with its own seed, startable at any
epoch without reading the ones before it (what makes resuming cost at most an epoch)."""

from __future__ import annotations

import tensorflow as tf

__all__ = ["shuffled_epochs"]

# The graph-level seed pinned inside each epoch's function (see ``shuffled_epochs``).
_GRAPH_SEED = 0x5EED


def shuffled_epochs(ds, buffer_size: int, seed: int, first_epoch: int = 0, transform=None):
    """Epochs ``first_epoch``, ``first_epoch + 1``, ... of the finite ``ds``, one after the other:
    epoch e is ``ds`` shuffled with a buffer of ``buffer_size`` and the seed (``seed``, e), then
    ``transform``-ed (e.g. batched) on its own. Its order is a function of (``seed``, e) only:
    the graph-level seed of the epoch's function is pinned, so TensorFlow's global seed plays no
    part (and a tensor seed works even when the global seed is 0, which tf.data's seed helper
    cannot compare)."""

    def epoch(e):
        tf.random.set_seed(_GRAPH_SEED)  # this function's graph only
        order = tf.constant(int(seed), tf.int64) * 1_000_003 + e
        shuffled = ds.shuffle(buffer_size, seed=order, reshuffle_each_iteration=False)
        return shuffled if transform is None else transform(shuffled)

    return tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch)
