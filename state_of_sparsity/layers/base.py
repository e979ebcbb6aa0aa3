"""The base class shared by every sparsity wrapper."""

from __future__ import annotations

import keras
import numpy as np

from state_of_sparsity.layers import registry

__all__ = ["SparsityWrapper", "new_seed", "mix_seed"]


def new_seed() -> int:
    """A fresh random 31-bit seed (stored in the wrapper's config, so reloads keep it)."""
    return int(np.random.SeedSequence().generate_state(1)[0] >> 1)


def mix_seed(seed: int, *values: int) -> int:
    """A well-mixed 31-bit seed derived from ``seed`` and ``values`` (e.g. a step)."""
    return int(np.random.SeedSequence([seed, *values]).generate_state(1)[0] >> 1)


class SparsityWrapper(keras.layers.Wrapper):
    """Wraps one registry layer (see ``registry``: Dense, EinsumDense, convolutions of every
    kind, Embedding, SimpleRNN / LSTM / GRU, and registered custom types).

    The inner layer keeps its own weights (its kernels are the dense underlying weights, θ for
    VD and L0); the wrapper adds the technique's state as its own weights, one set per kernel
    (``spec.kernels``: e.g. a separable convolution's depthwise and pointwise kernels, an LSTM's
    kernel and recurrent kernel), and replaces the layer's forward pass by the registry's
    ``apply`` with technique-specific kernels. The wrapper takes the inner layer's name and dtype
    policy unless given others, so ``model.get_layer(name)`` finds it under the original name,
    and exposes the inner layer's public attributes (``wrapper.units``).

    A wrapper of an embedding also runs in reverse, ``wrapper(x, reverse=True)`` = x · Kᵀ with
    the technique's kernel (the softmax of a tied embedding, see ``registry.TiedEmbedding``).

    Subclasses set ``technique`` and implement ``_build_state``, ``call`` and ``eval_kernels``.
    """

    technique: str = ""
    eval_options: tuple[str, ...] = ()  # keyword options of ``eval_kernels``

    @classmethod
    def not_applicable(cls, layer) -> str | None:
        """Why this technique cannot wrap ``layer``, in a few words (None if it can)."""
        return registry.unsupported_reason(layer)

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

    def __getattr__(self, name):
        # Only called when normal lookup fails: the inner layer's public attributes (``units``,
        # ``go_backwards``, ``return_sequences``...) read through the wrapper, so code that
        # inspects the layer it holds (e.g. ``Bidirectional``) keeps working.
        parent = getattr(super(), "__getattr__", None)
        if parent is not None:  # torch.nn.Module keeps sub-modules outside __dict__
            try:
                return parent(name)
            except AttributeError:
                pass
        if name.startswith("_") or name == "layer":
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(self.layer, name)

    @property
    def kernel_names(self) -> tuple[str, ...]:
        """Short names of the sparsified kernels (``("kernel",)`` for most layers)."""
        return self.spec.kernel_names

    @property
    def kernels(self) -> list:
        """The inner layer's kernel variables (θ for VD / L0; dense weights under masks)."""
        return [registry.get_kernel(self.layer, path) for path in self.spec.kernels]

    @property
    def kernel(self):
        """The first (for most layers, the only) kernel variable."""
        return self.kernels[0]

    def build(self, input_shape=None):
        super().build(input_shape)
        self._build_state([tuple(k.shape) for k in self.kernels])
        self.built = True

    def _build_state(self, kernel_shapes):
        raise NotImplementedError

    def _state_name(self, index: int, name: str) -> str:
        """``name`` for a single-kernel layer, ``"<kernel name>_<name>"`` for several."""
        if len(self.spec.kernels) == 1:
            return name
        return f"{self.kernel_names[index]}_{name}"

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

    def _forward(self, inputs, kernels, reverse=False, **call_kwargs):
        return self._spec(reverse).apply(self.layer, inputs, kernels, **call_kwargs)

    def technique_config(self) -> dict:
        """The technique's constructor arguments (serializable), without the inner layer."""
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), **self.technique_config()}

    def eval_kernels(self, **options) -> list:
        """The kernels of the eval-mode layer, with exact zeros (what ``strip`` exports)."""
        raise NotImplementedError

    def eval_kernel(self, **options):
        """The eval-mode kernel of a single-kernel layer (see ``eval_kernels``)."""
        if len(self.spec.kernels) != 1:
            raise ValueError(
                f"{self.name!r} has several kernels {self.kernel_names}; use eval_kernels()."
            )
        return self.eval_kernels(**options)[0]

    def extra_report(self, index: int = 0, **options) -> dict:
        """Technique-specific columns of kernel ``index`` for ``sparsity_report`` (none by
        default)."""
        return {}

    def count_params(self):
        """The inner layer's parameters plus the technique's trainable ones (log σ², log α);
        masks, step counters and noise states are state, not parameters."""
        inner = {id(w) for w in self.layer.weights}
        own = [w for w in self.trainable_weights if id(w) not in inner]
        return self.layer.count_params() + sum(int(np.prod(w.shape)) for w in own)

    def compute_output_shape(self, input_shape, *args, **kwargs):
        return self.layer.compute_output_shape(input_shape, *args, **kwargs)

    def compute_mask(self, inputs, mask=None):
        return self.layer.compute_mask(inputs, mask)

    def stripped_weights(self, **options) -> list:
        """The inner layer's weights (``get_weights`` order) with each kernel replaced by its
        eval-mode value: the weights of the plain layer ``strip`` makes."""
        values = self.layer.get_weights()
        positions = {id(w): i for i, w in enumerate(self.layer.weights)}
        for variable, value in zip(self.kernels, self.eval_kernels(**options), strict=True):
            values[positions[id(variable)]] = keras.ops.convert_to_numpy(value)
        return values
