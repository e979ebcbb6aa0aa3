"""The registry of layer types a sparsity wrapper can hold.

One entry per layer type says which weight is the kernel and how to apply the layer's linear op
with a replacement kernel (``linear``) and then its bias and activation (``finish``). Techniques
never branch on layer types: magnitude / random pruning call ``linear(layer, x, kernel * mask)``,
variational dropout calls ``linear`` twice (once on x with θ, once on x² with σ²). ``lookup``
marks layers whose linear op gathers rows (Embedding) instead of forming products.

Lookup is by exact type: a subclass of ``Dense`` may change ``call`` and is not assumed to be a
``Dense``. Register it with ``register_layer`` if its linear op is the parent's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
from keras import ops

__all__ = [
    "LayerSpec",
    "TiedEmbedding",
    "register_layer",
    "reverse_spec",
    "spec_for",
    "supported_layer_types",
]


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """How a wrapper drives one layer type.

    Attributes:
        kernel: attribute name of the weight that is sparsified.
        linear: ``linear(layer, x, kernel) -> y``: the layer's op without bias or activation.
        finish: ``finish(layer, y) -> output``: adds the bias and applies the activation.
        lookup: True if ``linear`` gathers rows of the kernel (an embedding lookup).
    """

    kernel: str
    linear: Callable
    finish: Callable
    lookup: bool = False


_REGISTRY: dict[type, LayerSpec] = {}


def register_layer(
    layer_type: type,
    *,
    kernel: str,
    linear: Callable,
    finish: Callable,
    lookup: bool = False,
) -> None:
    """Makes ``layer_type`` wrappable by every technique (see ``LayerSpec``)."""
    if not (isinstance(layer_type, type) and issubclass(layer_type, keras.layers.Layer)):
        raise ValueError(f"`layer_type` must be a keras Layer class, got {layer_type!r}.")
    _REGISTRY[layer_type] = LayerSpec(kernel, linear, finish, lookup)


def supported_layer_types() -> tuple[type, ...]:
    return tuple(_REGISTRY)


def _names(types) -> str:
    return ", ".join(sorted(t.__name__ for t in types))


def spec_for(layer) -> LayerSpec:
    """The registry entry for ``layer``; a clear ``ValueError`` if it cannot be wrapped."""
    spec = _REGISTRY.get(type(layer))
    if spec is None:
        raise ValueError(
            f"Layer {getattr(layer, 'name', layer)!r} of type {type(layer).__name__} cannot be "
            f"sparsified. Supported layer types: {_names(_REGISTRY)} (and the projections of "
            "MultiHeadAttention through `sparsify`). Register other types with "
            "`state_of_sparsity.layers.register_layer`."
        )
    if getattr(layer, "lora_enabled", False):
        raise ValueError(f"Layer {layer.name!r} has LoRA enabled; sparsify it before LoRA.")
    if getattr(layer, "quantization_mode", None):
        raise ValueError(f"Layer {layer.name!r} is quantized; sparsify it before quantizing.")
    return spec


def _bias_activation(layer, y):
    if layer.bias is not None:
        y = ops.add(y, layer.bias)
    if layer.activation is not None:
        y = layer.activation(y)
    return y


def _dense_linear(layer, x, kernel):
    return ops.matmul(x, kernel)


def _einsum_linear(layer, x, kernel):
    return ops.einsum(layer.equation, x, kernel)


def _conv_linear(layer, x, kernel):
    padding = layer.padding
    if padding == "causal":  # Conv1D only: left-pad the time axis, then a valid convolution.
        x = ops.pad(x, layer._compute_causal_padding())
        padding = "valid"
    return ops.conv(
        x,
        kernel,
        strides=list(layer.strides),
        padding=padding,
        dilation_rate=layer.dilation_rate,
        data_format=layer.data_format,
    )


def _conv_finish(layer, y):
    if layer.use_bias:
        if layer.data_format == "channels_last":
            shape = (1,) * (layer.rank + 1) + (layer.filters,)
        else:
            shape = (1, layer.filters) + (1,) * layer.rank
        y = ops.add(y, ops.reshape(layer.bias, shape))
    if layer.activation is not None:
        y = layer.activation(y)
    return y


def _embedding_linear(layer, ids, kernel):
    if ids.dtype not in ("int32", "int64"):
        ids = ops.cast(ids, "int32")
    return ops.cast(ops.take(kernel, ids, axis=0), layer.compute_dtype)


def _identity_finish(layer, y):
    return y


def _transposed_linear(layer, x, kernel):
    return ops.matmul(x, ops.transpose(ops.cast(kernel, x.dtype)))


def reverse_spec(spec: LayerSpec) -> LayerSpec:
    """The spec of a lookup layer used in reverse: ``x · Kᵀ`` (the softmax of a tied embedding).

    Techniques treat it as a plain matmul (``lookup`` False): VD's local reparameterization runs
    x·θᵀ and x²·(σ²)ᵀ, L0 samples a gate per weight of the whole table.
    """
    if not spec.lookup:
        raise ValueError("Only embedding (lookup) layers can be used in reverse.")
    return LayerSpec(spec.kernel, _transposed_linear, _identity_finish, lookup=False)


@keras.saving.register_keras_serializable(package="state_of_sparsity")
class TiedEmbedding(keras.layers.Embedding):
    """An ``Embedding`` that is also the output projection: ``call(ids)`` looks rows up,
    ``call(x, reverse=True)`` returns the logits ``x · Eᵀ`` (Press & Wolf 2017; the paper's
    shared embedding/softmax, spec §5.3).

    Sparsity wrappers hold it like an Embedding and accept the same ``reverse`` argument, so one
    mask (or one set of VD / L0 parameters) serves the lookup and the softmax. A penalized
    wrapper adds its penalty and advances its step only on the forward (lookup) call: call the
    lookup once per training step (e.g. on the source and target ids concatenated).
    """

    def call(self, inputs, reverse=False):
        if reverse:
            return _transposed_linear(self, inputs, self.embeddings)
        return super().call(inputs)


register_layer(keras.layers.Dense, kernel="kernel", linear=_dense_linear, finish=_bias_activation)
register_layer(
    keras.layers.EinsumDense, kernel="kernel", linear=_einsum_linear, finish=_bias_activation
)
for _conv in (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D):
    register_layer(_conv, kernel="kernel", linear=_conv_linear, finish=_conv_finish)
for _embedding in (keras.layers.Embedding, TiedEmbedding):
    register_layer(
        _embedding,
        kernel="embeddings",
        linear=_embedding_linear,
        finish=_identity_finish,
        lookup=True,
    )
