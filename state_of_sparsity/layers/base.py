"""The base class shared by every sparsity wrapper."""

from __future__ import annotations

import keras
import numpy as np

from state_of_sparsity.layers import registry

__all__ = ["SparsityWrapper", "copy_layer", "new_seed", "mix_seed"]


def copy_layer(layer):
    """A new layer of the same class and config, built like ``layer`` and with its weights."""
    new = type(layer).from_config(layer.get_config())
    build_config = layer.get_build_config() if layer.built else None
    if build_config:
        new.build_from_config(build_config)
        new.set_weights(layer.get_weights())
    return new


def new_seed() -> int:
    """A fresh random 31-bit seed (stored in the wrapper's config, so reloads keep it)."""
    return int(np.random.SeedSequence().generate_state(1)[0] >> 1)


def mix_seed(seed: int, *values: int) -> int:
    """A well-mixed 31-bit seed derived from ``seed`` and ``values`` (e.g. a step)."""
    return int(np.random.SeedSequence([seed, *values]).generate_state(1)[0] >> 1)


class SparsityWrapper(keras.layers.Wrapper):
    """Wraps one registry layer (Dense, EinsumDense, Conv1D/2D/3D, Embedding).

    The inner layer keeps its own weights (its kernel is the dense underlying weight, θ for VD
    and L0); the wrapper adds the technique's state as its own weights and replaces the layer's
    forward pass by the registry's ``linear`` op on a technique-specific kernel followed by the
    layer's bias and activation. The wrapper takes the inner layer's name and dtype policy unless
    given others, so ``model.get_layer(name)`` finds it under the original name.

    A wrapper of an embedding also runs in reverse, ``wrapper(x, reverse=True)`` = x · Kᵀ with
    the technique's kernel (the softmax of a tied embedding, see ``registry.TiedEmbedding``).

    Subclasses set ``technique`` and implement ``_build_state``, ``call`` and ``eval_kernel``.
    """

    technique: str = ""
    eval_options: tuple[str, ...] = ()  # keyword options of ``eval_kernel``

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(f"`layer` must be a keras Layer, got {layer!r}.")
        if isinstance(layer, SparsityWrapper):
            raise ValueError(f"Layer {layer.name!r} is already wrapped by {type(layer).__name__}.")
        self.spec = registry.spec_for(layer)
        kwargs.setdefault("name", layer.name)
        kwargs.setdefault("dtype", layer.dtype_policy)
        super().__init__(layer, **kwargs)
        self.supports_masking = layer.supports_masking

    @property
    def kernel(self):
        """The inner layer's kernel variable (θ for VD / L0; the dense weight under a mask)."""
        return getattr(self.layer, self.spec.kernel)

    def build(self, input_shape=None):
        super().build(input_shape)
        self._build_state(tuple(self.kernel.shape))
        self.built = True

    def _build_state(self, kernel_shape):
        raise NotImplementedError

    def _add_state(self, name, shape, initializer, dtype=None, trainable=False):
        return self.add_weight(
            name=name,
            shape=shape,
            initializer=initializer,
            dtype=dtype or self.layer.variable_dtype,
            trainable=trainable,
            aggregation="none" if trainable else "only_first_replica",
        )

    def _spec(self, reverse: bool) -> registry.LayerSpec:
        """The registry spec of this call: the layer's own, or its reverse (x · Kᵀ)."""
        return registry.reverse_spec(self.spec) if reverse else self.spec

    def _forward(self, inputs, kernel, reverse=False):
        spec = self._spec(reverse)
        return spec.finish(self.layer, spec.linear(self.layer, inputs, kernel))

    def technique_config(self) -> dict:
        """The technique's constructor arguments (serializable), without the inner layer."""
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), **self.technique_config()}

    def eval_kernel(self, **options):
        """The kernel of the eval-mode layer, with exact zeros (what ``strip`` exports)."""
        raise NotImplementedError

    def extra_report(self, **options) -> dict:
        """Technique-specific columns for ``sparsity_report`` (none by default)."""
        return {}

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def compute_mask(self, inputs, mask=None):
        return self.layer.compute_mask(inputs, mask)

    def stripped_layer(self, **options):
        """A fresh plain copy of the inner layer whose kernel is ``eval_kernel(**options)``."""
        plain = copy_layer(self.layer)
        getattr(plain, self.spec.kernel).assign(self.eval_kernel(**options))
        return plain
