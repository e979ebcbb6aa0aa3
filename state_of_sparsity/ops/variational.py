"""Variational dropout formulas (Molchanov et al. 2017, arXiv 1701.05369; spec §1).

Pure ``keras.ops`` functions. The posterior of each weight is N(θ, σ²), the prior log-uniform,
and α = σ² / θ². ``EPSILON`` is the paper code's 1e-8, in log(θ² + ε) and inside the square
root of the output variance.
"""

from __future__ import annotations

from keras import ops

__all__ = [
    "EPSILON",
    "K1",
    "K2",
    "K3",
    "KL_CLIP",
    "log_alpha",
    "log_sigma2_from_log_alpha",
    "kl_approximation",
    "kl_divergence",
    "threshold_mask",
]

EPSILON = 1e-8
K1, K2, K3 = 0.63576, 1.8732, 1.48695
KL_CLIP = 8.0  # the KL always sees log α clipped to ±8 (spec §1.3)


def log_alpha(log_sigma2, theta, clip: float | None = None):
    """log α = log σ² − log(θ² + ε), clipped to [−clip, clip] when ``clip`` is not None."""
    value = ops.subtract(log_sigma2, ops.log(ops.square(theta) + EPSILON))
    if clip is not None:
        value = ops.clip(value, -clip, clip)
    return value


def log_sigma2_from_log_alpha(log_alpha_value, theta):
    """The inverse map: log σ² = log α + log(θ² + ε)."""
    return ops.add(log_alpha_value, ops.log(ops.square(theta) + EPSILON))


def kl_approximation(log_alpha_value):
    """Element-wise approximate KL(q || p) of Molchanov et al. (eq. 14), a positive quantity.

        −KL ≈ k1·sigmoid(k2 + k3·log α) − 0.5·log1p(exp(−log α)) − k1,
        k1 = 0.63576, k2 = 1.8732, k3 = 1.48695.

    The paper's ``negative_dkl`` returns −Σ of that bracket: the value added to the loss.
    ``log1p(exp(−x))`` is computed as softplus(−x), which is the same function without overflow.
    """
    negative_kl = (
        K1 * ops.sigmoid(K2 + K3 * log_alpha_value) - 0.5 * ops.softplus(-log_alpha_value) - K1
    )
    return -negative_kl


def kl_divergence(log_sigma2, theta):
    """Σ of ``kl_approximation`` over all weights, with log α clipped to ±8 as the paper's loss.

    The clip has zero gradient outside ±8, so weights with |log α| > 8 get no KL gradient.
    """
    return ops.sum(kl_approximation(log_alpha(log_sigma2, theta, clip=KL_CLIP)))


def threshold_mask(log_sigma2, theta, threshold: float, dtype: str = "float32"):
    """Eval-time mask 1[log α < threshold] with **unclipped** log α (a weight is pruned iff
    log α ≥ threshold; spec §1.5)."""
    return ops.cast(ops.less(log_alpha(log_sigma2, theta), threshold), dtype)
