"""Structured sparsity patterns: N:M along the input channels, and blocks ranked by norm.

A kernel is seen as a matrix W of shape (fan-in, fan-out): its input axes (the axes its op
reduces over, the input channels last; see the registry's ``fan_axes``) flattened into rows, its
output axes into columns. For a Dense kernel W is the kernel itself; for a Conv2D kernel
(kh, kw, in, out) a row is one (kh, kw, in) position, input channels fastest.

- ``NM(n, m)`` (NVIDIA's 2:4, Mishra et al. 2021; tfmot's ``sparsity_m_by_n``): in every group
  of m consecutive rows of a column (m consecutive input channels feeding one output at one
  kernel position) at most n weights are non-zero. The pattern fixes the final sparsity at
  1 − n/m. A gradual schedule ramps to it: at sparsity s ≤ 1 − n/m the pruned weights are the
  round(size · s) of lowest score among the weights the pattern would prune now (those ranked
  below n in their group), so at s = 1 − n/m the mask is exactly n:m. Requires 0 < n < m and m
  dividing the number of input channels (the innermost input axis).
- ``Block(r, c)`` (block sparsity, Gray et al. 2017, Elsen et al. 2020; tfmot's ``block_size``):
  W is tiled into r × c blocks (r input rows, c output columns) and the round(B · (1 − s)) blocks
  of largest L2 norm are kept, B the number of blocks, so sparsity comes in whole blocks (the
  achieved sparsity is 1 − kept / B). Requires r dividing the number of input channels and c the
  innermost output axis.

Scores are |w| for magnitude pruning and fixed random numbers for random pruning. Ties go to the
lower index (row-major in W, or in the block grid), as ``masks.topk_mask``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re

import numpy as np

from state_of_sparsity.ops.masks import keep_count, topk_mask

__all__ = ["Pattern", "NM", "Block", "parse_pattern", "to_matrix", "from_matrix"]


class Pattern:
    """Base class of structured patterns; see the module docstring."""

    def check(self, shape, fan_axes, where: str) -> None:
        """Raises ValueError if the pattern cannot tile a kernel of ``shape``."""
        reason = self.misfit(shape, fan_axes)
        if reason is not None:
            raise ValueError(f"pattern {self} cannot be applied to {where}: {reason}.")

    def misfit(self, shape, fan_axes) -> str | None:
        """Why the pattern cannot tile a kernel of ``shape`` (None if it can)."""
        raise NotImplementedError

    def mask(self, scores, sparsity: float, fan_axes, dtype="float32") -> np.ndarray:
        """The mask of a kernel with per-weight ``scores`` at ``sparsity``."""
        raise NotImplementedError


def _shape_of(shape, fan_axes):
    inputs, outputs = fan_axes
    if not inputs or not outputs:
        return None
    return shape[inputs[-1]], shape[outputs[-1]]


@dataclasses.dataclass(frozen=True)
class NM(Pattern):
    """At most ``n`` non-zeros in every group of ``m`` consecutive input channels."""

    n: int
    m: int

    def __post_init__(self):
        for name in ("n", "m"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"N:M pattern: `{name}` must be an integer, got {value!r}.")
        if not 0 < self.n < self.m:
            raise ValueError(f"N:M pattern needs 0 < N < M, got {self.n}:{self.m}.")

    def __str__(self):
        return f"{self.n}:{self.m}"

    @property
    def sparsity(self) -> float:
        """The sparsity the pattern fixes: 1 − n/m."""
        return 1.0 - self.n / self.m

    def misfit(self, shape, fan_axes):
        sizes = _shape_of(shape, fan_axes)
        if sizes is None:
            return f"the kernel of shape {tuple(shape)} has no input axis"
        if sizes[0] % self.m:
            return f"its {sizes[0]} input channels are not a multiple of M={self.m}"
        return None

    def mask(self, scores, sparsity, fan_axes, dtype="float32"):
        if sparsity > self.sparsity + 1e-9:
            raise ValueError(
                f"pattern {self} reaches at most sparsity {self.sparsity:g}, asked for {sparsity}."
            )
        scores = np.asarray(scores, np.float64)
        matrix = to_matrix(scores, fan_axes)
        rows, cols = matrix.shape
        groups = matrix.reshape(rows // self.m, self.m, cols)
        # Rank within each group of m rows: 0 for the largest score, ties to the lower row.
        order = np.argsort(-groups, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(self.m)[None, :, None], axis=1)
        candidate = (rank >= self.n).reshape(rows, cols)
        keep_priority = np.where(candidate, matrix, np.inf)
        keep = topk_mask(keep_priority, keep_count(matrix.size, sparsity), dtype)
        return from_matrix(keep, np.shape(scores), fan_axes)


@dataclasses.dataclass(frozen=True)
class Block(Pattern):
    """Whole ``rows`` × ``cols`` blocks of W (inputs × outputs), ranked by L2 norm."""

    rows: int
    cols: int

    def __post_init__(self):
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"Block pattern: `{name}` must be an integer >= 1, got {value!r}.")
        if self.rows * self.cols == 1:
            raise ValueError("Block pattern 1x1 is unstructured pruning: use pattern=None.")

    def __str__(self):
        return f"{self.rows}x{self.cols}"

    def misfit(self, shape, fan_axes):
        sizes = _shape_of(shape, fan_axes)
        if sizes is None:
            return f"the kernel of shape {tuple(shape)} has no input or no output axis"
        if sizes[0] % self.rows:
            return f"its {sizes[0]} input channels are not a multiple of {self.rows} (block rows)"
        if sizes[1] % self.cols:
            return f"its {sizes[1]} output channels are not a multiple of {self.cols} (block cols)"
        return None

    def _blocks(self, matrix):
        rows, cols = matrix.shape
        grid = matrix.reshape(rows // self.rows, self.rows, cols // self.cols, self.cols)
        return grid.transpose(0, 2, 1, 3)  # (block row, block col, r, c)

    def unit_scores(self, scores, fan_axes):
        """The L2 norm of the scores of each block, flat over the block grid (row-major)."""
        blocks = self._blocks(to_matrix(np.asarray(scores, np.float64), fan_axes))
        return np.sqrt(np.sum(blocks * blocks, axis=(2, 3))).ravel()

    def units_to_mask(self, keep_units, shape, fan_axes, dtype="float32"):
        """The kernel mask keeping the blocks flagged in ``keep_units`` (flat block grid)."""
        inputs, outputs = fan_axes
        rows = math.prod(shape[a] for a in inputs)
        cols = math.prod(shape[a] for a in outputs)
        grid = np.asarray(keep_units, dtype).reshape(rows // self.rows, cols // self.cols)
        matrix = np.repeat(np.repeat(grid, self.rows, axis=0), self.cols, axis=1)
        return from_matrix(matrix, shape, fan_axes)

    def mask(self, scores, sparsity, fan_axes, dtype="float32"):
        units = self.unit_scores(scores, fan_axes)
        keep = topk_mask(units, keep_count(units.size, sparsity), dtype)
        return self.units_to_mask(keep, np.shape(scores), fan_axes, dtype)


_NM = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")
_BLOCK = re.compile(r"^\s*(\d+)\s*[x×]\s*(\d+)\s*$")


def parse_pattern(pattern) -> Pattern | None:
    """``None``; ``"n:m"`` or ``(n, m)`` for N:M; ``"RxC"`` for blocks; or a ``Pattern``."""
    if pattern is None or isinstance(pattern, Pattern):
        return pattern
    if isinstance(pattern, str):
        if match := _NM.match(pattern):
            return NM(int(match[1]), int(match[2]))
        if match := _BLOCK.match(pattern):
            return Block(int(match[1]), int(match[2]))
    elif isinstance(pattern, (tuple, list)) and len(pattern) == 2:
        return NM(*pattern)
    raise ValueError(
        f"`pattern` must be None, 'N:M' or (N, M) for N:M sparsity (e.g. '2:4'), or 'RxC' for "
        f"blocks of R input by C output channels (e.g. '1x4', '4x4'); got {pattern!r}."
    )


def to_matrix(kernel, fan_axes) -> np.ndarray:
    """The (fan-in, fan-out) matrix view of ``kernel`` (a copy when axes move)."""
    inputs, outputs = fan_axes
    kernel = np.asarray(kernel)
    rows = math.prod(kernel.shape[a] for a in inputs)
    return np.transpose(kernel, (*inputs, *outputs)).reshape(rows, -1)


def from_matrix(matrix, shape, fan_axes) -> np.ndarray:
    """The inverse of ``to_matrix``: a kernel of ``shape`` from its matrix view."""
    perm = (*fan_axes[0], *fan_axes[1])
    moved = np.reshape(matrix, [shape[a] for a in perm])
    return np.transpose(moved, np.argsort(perm))
