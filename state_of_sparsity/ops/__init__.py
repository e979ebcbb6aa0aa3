"""Pure functions: masks and structured patterns (NumPy, on the host between train steps) and
the VD / L0 formulas (``keras.ops``, backend-neutral, inside the compiled step)."""

from state_of_sparsity.ops import hard_concrete, patterns, variational
from state_of_sparsity.ops.masks import (
    cumulative_random_mask,
    keep_count,
    magnitude_mask,
    topk_mask,
)

__all__ = [
    "cumulative_random_mask",
    "hard_concrete",
    "keep_count",
    "magnitude_mask",
    "patterns",
    "topk_mask",
    "variational",
]
