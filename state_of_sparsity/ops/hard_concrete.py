"""Hard-concrete gates of L0 regularization (Louizos et al. 2018, arXiv 1712.01312; spec §2).

Pure ``keras.ops`` functions. Defaults are the paper code's: β = 2/3, γ = −0.1, ζ = 1.1, and
ε = 1e-8 inside log(u + ε) only.
"""

from __future__ import annotations

import math

from keras import ops, random

__all__ = [
    "BETA",
    "GAMMA",
    "ZETA",
    "EPSILON",
    "gates_from_uniform",
    "sample_gates",
    "eval_gates",
    "prob_nonzero",
    "expected_l0",
]

BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1
EPSILON = 1e-8


def gates_from_uniform(log_alpha, u, beta=BETA, gamma=GAMMA, zeta=ZETA):
    """z = clip(sigmoid((log(u + ε) − log(1 − u) + log α) / β)·(ζ − γ) + γ, 0, 1), u ~ U[0, 1)."""
    s = ops.sigmoid((ops.log(u + EPSILON) - ops.log(1.0 - u) + log_alpha) / beta)
    return ops.clip(s * (zeta - gamma) + gamma, 0.0, 1.0)


def sample_gates(log_alpha, seed, beta=BETA, gamma=GAMMA, zeta=ZETA):
    """One hard-concrete sample per entry of ``log_alpha`` (``seed``: int or SeedGenerator)."""
    u = random.uniform(ops.shape(log_alpha), dtype=log_alpha.dtype, seed=seed)
    return gates_from_uniform(log_alpha, u, beta, gamma, zeta)


def eval_gates(log_alpha, gamma=GAMMA, zeta=ZETA):
    """The test-time gate ẑ = clip(sigmoid(log α)·(ζ − γ) + γ, 0, 1); β is not used (spec §2.3).

    With the defaults ẑ = 0 exactly iff sigmoid(log α) ≤ −γ/(ζ − γ), i.e. log α ≤ −2.398.
    """
    return ops.clip(ops.sigmoid(log_alpha) * (zeta - gamma) + gamma, 0.0, 1.0)


def prob_nonzero(log_alpha, beta=BETA, gamma=GAMMA, zeta=ZETA):
    """P(z ≠ 0) = sigmoid(log α − β·log(−γ/ζ)), element-wise."""
    return ops.sigmoid(log_alpha - beta * math.log(-gamma / zeta))


def expected_l0(log_alpha, beta=BETA, gamma=GAMMA, zeta=ZETA):
    """The expected L0 norm Σ P(z ≠ 0), the penalty of Louizos et al. (eq. 12)."""
    return ops.sum(prob_nonzero(log_alpha, beta, gamma, zeta))
