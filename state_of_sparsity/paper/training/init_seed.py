"""The seed of a run's random initialisation: scratch runs must not reuse the mask source's.

Spec §6.1: a scratch-e / scratch-b run trains the final masks of a magnitude-pruning run from a
*fresh* random init; a lottery ticket trains them from that run's step-0 values (loaded from a
checkpoint). Seeding the init of a scratch run with the mask source's ``--seed`` (the same value
by default) would rebuild exactly the source's step-0 weights: a lottery ticket by accident. So
a scratch run without initial values draws its init from ``seed + SCRATCH_SEED_OFFSET``
(mod 2^32, the range NumPy's seed accepts); every other run, and everything else in a scratch
run (data order, noise), keeps ``seed``.
"""

from __future__ import annotations

__all__ = ["SCRATCH_SEED_OFFSET", "init_seed"]

# Any fixed nonzero offset works; a large prime keeps scratch inits clear of the small seeds
# (0, 1, 2, ...) users give their mask-source runs.
SCRATCH_SEED_OFFSET = 1_000_003


def init_seed(seed: int, *, fixed_masks: bool, initial_values: bool) -> int:
    """The seed of the model's random initialisation.

    ``fixed_masks``: the masks come from another run (``--load_masks_from`` /
    ``--load_mask_dir``); ``initial_values``: the other values too (``--load_weights_from`` /
    ``--initial_value_checkpoint``, a lottery ticket, whose init is then overwritten anyway).
    Scratch (fixed masks, no initial values): ``(seed + SCRATCH_SEED_OFFSET) mod 2^32``;
    otherwise ``seed``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"--seed must be an integer, got {seed!r}.")
    if fixed_masks and not initial_values:
        return (seed + SCRATCH_SEED_OFFSET) % 2**32
    return seed
