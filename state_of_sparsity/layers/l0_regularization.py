"""L0 regularization with hard-concrete gates (Louizos et al. 2018) as a Keras wrapper (spec §2)."""

from __future__ import annotations

import math
import numbers

import keras
from keras import ops

from state_of_sparsity.layers.base import mix_seed
from state_of_sparsity.layers.penalized import PenalizedWrapper
from state_of_sparsity.ops import hard_concrete as hc

__all__ = ["L0Regularization"]


def _real(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
    return float(value)


@keras.saving.register_keras_serializable(package="state_of_sparsity")
class L0Regularization(PenalizedWrapper):
    """L0 regularization of one layer's kernel with hard-concrete gates (Louizos et al. 2018).

    Parameters: θ, the inner layer's kernel, and ``log_alpha`` (same shape, initialised from
    N(``log_alpha_init``, ``log_alpha_init_stddev``)); a layer with several kernels (separable
    convolutions, recurrent layers) has one ``log_alphas`` entry per kernel, each gated alike.

    Training: the layer's op with θ·z, z = clip(sigmoid((log(u + 1e-8) − log(1 − u) + log α)/β)
    ·(ζ − γ) + γ, 0, 1), u ~ U[0, 1): one gate per weight per step, shared by the whole batch
    (the weights are sampled, not the activations). An Embedding samples gates on the gathered
    rows, i.e. per token occurrence and dimension, as the paper's code.

    Eval: θ·ẑ with ẑ = clip(sigmoid(log α)(ζ − γ) + γ, 0, 1), no noise (β unused). ẑ is exactly 0
    for log α ≤ −2.398 with the defaults, and survivors are scaled by ẑ ≤ 1 (0.98 at init).

    ``penalty()`` is the expected L0 norm Σ sigmoid(log α − β·log(−γ/ζ)).

    ``weight_decay`` (default 0, off) adds the unramped term
    (weight_decay / sigmoid(log_alpha_init)) / 2 · Σ P(z ≠ 0)·θ², the expected L2 norm of the
    gated weights (Louizos et al. 2018, §3). The coefficient is divided by the initial keep
    probability to keep the initial length scale, as the paper's ResNet-50 L0 runs did
    (1e-4 / sigmoid(2.197) = 1.111e-4, spec §2.6). The original code only had plain L2 on θ,
    which an inner ``kernel_regularizer`` still provides.

    Args:
        layer: a registry layer (see ``sos.layers.supported_layer_types()``).
        log_alpha_init, log_alpha_init_stddev: the initial distribution of log α.
        beta: temperature β > 0. gamma: stretch γ < 0. zeta: stretch ζ > 1.
        weight_decay: see above; >= 0.
        regularizer_weight: a ``sos.Ramp`` for the penalty weight (usually set by the callback).
        seed: seed of the gate samples and of the log α initialisation.
    """

    technique = "l0_regularization"

    def __init__(
        self,
        layer,
        log_alpha_init: float = 2.197,
        log_alpha_init_stddev: float = 0.01,
        beta: float = 2.0 / 3.0,
        gamma: float = -0.1,
        zeta: float = 1.1,
        weight_decay: float = 0.0,
        regularizer_weight=None,
        seed=None,
        **kwargs,
    ):
        self.log_alpha_init = _real("log_alpha_init", log_alpha_init)
        self.log_alpha_init_stddev = _real("log_alpha_init_stddev", log_alpha_init_stddev)
        if self.log_alpha_init_stddev < 0:
            raise ValueError(f"`log_alpha_init_stddev` must be >= 0, got {log_alpha_init_stddev}.")
        self.beta = _real("beta", beta)
        if self.beta <= 0:
            raise ValueError(f"`beta` must be > 0, got {beta}.")
        self.gamma = _real("gamma", gamma)
        if self.gamma >= 0:
            raise ValueError(f"`gamma` must be < 0, got {gamma}.")
        self.zeta = _real("zeta", zeta)
        if self.zeta <= 1:
            raise ValueError(f"`zeta` must be > 1, got {zeta}.")
        self.weight_decay = _real("weight_decay", weight_decay)
        if self.weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay}.")
        super().__init__(layer, regularizer_weight=regularizer_weight, seed=seed, **kwargs)

    def _build_parameters(self, kernel_shapes):
        self.log_alphas = [
            self.add_weight(
                name=self._state_name(i, "log_alpha"),
                shape=shape,
                initializer=keras.initializers.RandomNormal(
                    self.log_alpha_init,
                    self.log_alpha_init_stddev,
                    seed=self.seed if i == 0 else mix_seed(self.seed, i),
                ),
                dtype=self.layer.variable_dtype,
                trainable=True,
            )
            for i, shape in enumerate(kernel_shapes)
        ]

    @property
    def log_alpha(self):
        """log α of the first (for most layers, the only) kernel."""
        return self.log_alphas[0]

    def _gate_args(self):
        return {"gamma": self.gamma, "zeta": self.zeta}

    def penalty(self):
        terms = [hc.expected_l0(a, self.beta, self.gamma, self.zeta) for a in self.log_alphas]
        return terms[0] if len(terms) == 1 else ops.sum(ops.stack(terms))

    def call(self, inputs, training=None, mask=None, reverse=False, **kwargs):
        call_kwargs = {"training": training, "mask": mask, **kwargs}
        if not training:
            gated = [
                theta * hc.eval_gates(a, **self._gate_args())
                for theta, a in zip(self.kernels, self.log_alphas, strict=True)
            ]
            return self._forward(inputs, gated, reverse, **call_kwargs)
        if not reverse:
            self._add_weighted_penalty()
            if self.weight_decay:
                self.add_loss(self._weight_decay_loss())
        spec, layer = self._spec(reverse), self.layer
        if spec.lookup:
            rows = spec.linear(layer, inputs, self.kernel)
            gates = hc.sample_gates(
                spec.linear(layer, inputs, self.log_alpha), self.seed_generator, self.beta,
                self.gamma, self.zeta,
            )  # fmt: skip
            return spec.finish(layer, rows * gates)
        gated = [
            theta * hc.sample_gates(a, self.seed_generator, self.beta, self.gamma, self.zeta)
            for theta, a in zip(self.kernels, self.log_alphas, strict=True)
        ]
        return self._forward(inputs, gated, reverse, **call_kwargs)

    def _weight_decay_loss(self):
        keep = 1.0 / (1.0 + math.exp(-self.log_alpha_init))
        expected_l2 = 0.0
        for theta, log_alpha in zip(self.kernels, self.log_alphas, strict=True):
            p = hc.prob_nonzero(log_alpha, self.beta, self.gamma, self.zeta)
            expected_l2 += ops.sum(ops.cast(p * ops.square(theta), "float32"))
        return (self.weight_decay / keep) * 0.5 * expected_l2

    def eval_kernels(self):
        return [
            theta.value * hc.eval_gates(a.value, **self._gate_args())
            for theta, a in zip(self.kernels, self.log_alphas, strict=True)
        ]

    def extra_report(self, index: int = 0) -> dict:
        p = hc.prob_nonzero(self.log_alphas[index].value, self.beta, self.gamma, self.zeta)
        return {"expected_density": float(ops.convert_to_numpy(ops.mean(p)))}

    def technique_config(self):
        return {
            "log_alpha_init": self.log_alpha_init,
            "log_alpha_init_stddev": self.log_alpha_init_stddev,
            "beta": self.beta,
            "gamma": self.gamma,
            "zeta": self.zeta,
            "weight_decay": self.weight_decay,
            **super().technique_config(),
        }
