"""Pure, backend-neutral functions (``keras.ops`` only): masks, and the VD / L0 formulas."""

from state_of_sparsity.ops import hard_concrete, variational
from state_of_sparsity.ops.masks import (
    cumulative_random_mask,
    keep_count,
    magnitude_mask,
    topk_mask,
    zero_fraction,
)

__all__ = [
    "cumulative_random_mask",
    "hard_concrete",
    "keep_count",
    "magnitude_mask",
    "topk_mask",
    "variational",
    "zero_fraction",
]
