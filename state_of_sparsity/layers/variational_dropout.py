"""Sparse variational dropout (Molchanov et al. 2017) as a Keras wrapper (spec §1)."""

from __future__ import annotations

import math
import numbers

import keras
from keras import ops, random

from state_of_sparsity.layers import registry
from state_of_sparsity.layers.penalized import PenalizedWrapper
from state_of_sparsity.ops import variational as vd

__all__ = ["NOISE", "NOT_APPLICABLE", "VariationalDropout"]

NOISE = ("element", "sequence")

NOT_APPLICABLE = (
    "its op is not one linear map of one kernel, so local reparameterization does not apply "
    "(magnitude_pruning, random_pruning and l0_regularization do)"
)


def _check_finite(name, value, positive=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
    if positive and value <= 0:
        raise ValueError(f"`{name}` must be > 0 (or None for no clipping), got {value!r}.")
    return float(value)


@keras.saving.register_keras_serializable(package="state_of_sparsity")
class VariationalDropout(PenalizedWrapper):
    """Sparse variational dropout of one layer's kernel (Molchanov et al. 2017; spec §1).

    Parameters: θ, the inner layer's kernel (the posterior mean), and ``log_sigma2`` (log σ²,
    same shape, initialised to ``log_sigma2_init``); log α = log σ² − log(θ² + 1e-8).

    Training (local reparameterization, with σ² recomputed from log α clipped to
    ±``clip_log_alpha``):

        out = f(op(x, θ) + sqrt(op(x², σ²) + 1e-8) · ε + b),   ε ~ N(0, 1),

    where ``op`` is the layer's linear op (matmul, einsum, convolution) and f its activation.
    With ``noise="element"`` (the default) ε has the full output shape: fresh noise per output
    element, the exact local reparameterization. ``noise="sequence"`` is the paper's Transformer
    code (``broadcast_matmul_train``, spec §1.4): for outputs of rank ≥ 3, ε has shape
    [batch, 1, …, 1, units], one noise vector per example shared by every position of its
    sequence (the last axis is the units / channels axis). It applies to the layer's forward op;
    an Embedding always gets additive noise on the gathered rows, θ[ids] + sqrt(σ²[ids] + 1e-8)·ε,
    fresh per token occurrence and dimension, and the reverse use of a tied embedding (the
    softmax) per element, both as in the paper.

    Eval: op(x, θ · 1[log α < threshold]) with **unclipped** log α and no noise. The threshold is
    an eval-time choice: ``sparsity_report``, ``strip`` and ``export_saved_model`` accept
    ``threshold=`` to evaluate another one without retraining (the paper swept 11 per run).

    ``penalty()`` is Σ KL over the kernel with log α clipped to ±8 (``ops.variational``).

    Args:
        layer: a registry layer whose op is one linear map of one kernel (Dense, EinsumDense,
            Conv1D/2D/3D, DepthwiseConv1D/2D, Conv1D/2D/3DTranspose, Embedding). Separable
            convolutions (two chained kernels) and recurrent layers (the op is applied at every
            time step to a state that depends on the noise) have no local reparameterization:
            use another technique for them.
        log_sigma2_init: initial log σ² (−10 in the layer defaults and the Transformer, −15 in
            the paper's ResNet-50).
        clip_log_alpha: training-time clip of log α (> 0), or None for none.
        threshold: eval-time log α threshold; a weight is pruned iff log α ≥ threshold.
        noise: ``"element"`` (exact local reparameterization) or ``"sequence"`` (the paper's
            Transformer: one noise vector per example, shared across positions).
        regularizer_weight: a ``sos.Ramp`` for the KL weight (usually set by the callback).
        seed: seed of the noise.
    """

    technique = "variational_dropout"
    eval_options = ("threshold",)

    def __init__(
        self,
        layer,
        log_sigma2_init: float = -10.0,
        clip_log_alpha: float | None = 8.0,
        threshold: float = 3.0,
        noise: str = "element",
        regularizer_weight=None,
        seed=None,
        **kwargs,
    ):
        if noise not in NOISE:
            raise ValueError(f"`noise` must be one of {NOISE}, got {noise!r}.")
        self.noise = noise
        self.log_sigma2_init = _check_finite("log_sigma2_init", log_sigma2_init)
        self.clip_log_alpha = (
            None
            if clip_log_alpha is None
            else _check_finite("clip_log_alpha", clip_log_alpha, True)
        )
        self.threshold = _check_finite("threshold", threshold)
        super().__init__(layer, regularizer_weight=regularizer_weight, seed=seed, **kwargs)
        if self.spec.linear is None:
            raise ValueError(
                f"Variational dropout does not apply to {layer.name!r} "
                f"({type(layer).__name__}): {NOT_APPLICABLE}."
            )

    @classmethod
    def not_applicable(cls, layer) -> str | None:
        reason = super().not_applicable(layer)
        if reason is None and registry.spec_for(layer).linear is None:
            return f"variational_dropout does not apply to {type(layer).__name__}"
        return reason

    def _build_parameters(self, kernel_shapes):
        (kernel_shape,) = kernel_shapes
        self.log_sigma2 = self.add_weight(
            name="log_sigma2",
            shape=kernel_shape,
            initializer=keras.initializers.Constant(self.log_sigma2_init),
            dtype=self.layer.variable_dtype,
            trainable=True,
        )

    def penalty(self):
        return vd.kl_divergence(self.log_sigma2, self.kernel)

    def log_alpha(self, clip: float | None = None):
        """log α of the kernel (unclipped unless ``clip`` is given)."""
        return vd.log_alpha(self.log_sigma2, self.kernel, clip)

    def call(self, inputs, training=None, reverse=False):
        theta = self.kernel
        if not training:
            mask = vd.threshold_mask(self.log_sigma2, theta, self.threshold, self.compute_dtype)
            return self._forward(inputs, [ops.multiply(theta, mask)], reverse)
        if not reverse:
            self._add_weighted_penalty()
        log_alpha = vd.log_alpha(self.log_sigma2, theta, self.clip_log_alpha)
        variance = ops.exp(vd.log_sigma2_from_log_alpha(log_alpha, theta))
        spec, layer = self._spec(reverse), self.layer
        mean = spec.linear(layer, inputs, theta)
        x2 = inputs if spec.lookup else ops.square(inputs)
        output_variance = spec.linear(layer, x2, variance)
        shape = ops.shape(mean)
        if self.noise == "sequence" and not spec.lookup and not reverse and len(shape) >= 3:
            shape = (shape[0],) + (1,) * (len(shape) - 2) + (shape[-1],)
        noise = random.normal(shape, dtype=mean.dtype, seed=self.seed_generator)
        return spec.finish(layer, mean + ops.sqrt(output_variance + vd.EPSILON) * noise)

    def set_threshold(self, threshold: float) -> None:
        """Sets the eval-time threshold (rebuild compiled functions; see ``sos.set_threshold``)."""
        self.threshold = _check_finite("threshold", threshold)

    def eval_kernels(self, threshold: float | None = None):
        threshold = self.threshold if threshold is None else _check_finite("threshold", threshold)
        theta = self.kernel.value
        mask = vd.threshold_mask(self.log_sigma2.value, theta, threshold, self.kernel.dtype)
        return [ops.multiply(theta, mask)]

    def extra_report(self, index: int = 0, threshold: float | None = None) -> dict:
        return {"threshold": self.threshold if threshold is None else float(threshold)}

    def technique_config(self):
        return {
            "log_sigma2_init": self.log_sigma2_init,
            "clip_log_alpha": self.clip_log_alpha,
            "threshold": self.threshold,
            "noise": self.noise,
            **super().technique_config(),
        }
