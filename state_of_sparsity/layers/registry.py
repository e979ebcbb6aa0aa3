"""The registry of layer types a sparsity wrapper can hold.

One entry per layer type says which weights are sparsified (``kernels``: attribute paths such as
``"kernel"`` or ``"cell.recurrent_kernel"``) and how to run the layer with replacement kernels
(``apply``). Techniques never branch on layer types: magnitude / random pruning and L0 call
``apply(layer, x, kernels)`` with ``kernel * mask`` or ``θ · z``. Variational dropout needs the
layer's op as one linear map of one kernel, ``linear``, followed by the bias and activation,
``finish``: it runs ``linear`` twice (on x with θ, on x² with σ²), so it applies only to entries
that have ``linear`` (Dense, EinsumDense, convolutions, depthwise and transposed convolutions,
Embedding). ``lookup`` marks layers whose linear op gathers rows (Embedding). ``fan_axes`` says
which axes of each kernel are its inputs (reduced by the op) and which its outputs, for
structured patterns (``ops.patterns``: N:M runs along the input channels, blocks tile inputs ×
outputs).

Lookup follows the class hierarchy: a subclass of a registered type that does not override
``call`` is driven like its parent (its op is the parent's). A subclass with its own ``call`` is
not assumed to compute the parent's op; register it with ``register_layer``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

import keras
from keras import ops

from state_of_sparsity import keras_compat

__all__ = [
    "LayerSpec",
    "TiedEmbedding",
    "register_layer",
    "reverse_spec",
    "spec_for",
    "supported_layer_types",
    "unsupported_reason",
]


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """How a wrapper drives one layer type.

    Attributes:
        kernels: attribute paths of the sparsified weights, e.g. ``("kernel",)`` or
            ``("cell.kernel", "cell.recurrent_kernel")``; one mask (or one set of VD / L0
            parameters) per entry.
        apply: ``apply(layer, inputs, kernels, **call_kwargs) -> outputs``: the layer's forward
            pass with the weights of ``kernels`` replaced by the given tensors (same order).
        linear: ``linear(layer, x, kernel) -> y``: the layer's op without bias or activation, for
            single-kernel layers whose op is one linear map (None otherwise).
        finish: ``finish(layer, y) -> output``: adds the bias and applies the activation.
        lookup: True if ``linear`` gathers rows of the kernel (an embedding lookup).
        check: ``check(layer) -> str | None``: why this particular layer cannot be wrapped
            (None if it can), for entries that accept only some configurations.
        fan_axes: ``fan_axes(layer, index, rank) -> (input_axes, output_axes)``: a partition
            of the axes of kernel ``index`` into the axes its op reduces over (fan-in, the
            input channels last) and the output axes (fan-out). None: every axis but the last
            is an input axis (Dense, convolutions, recurrent kernels).
    """

    kernels: tuple[str, ...]
    apply: Callable
    linear: Callable | None = None
    finish: Callable | None = None
    lookup: bool = False
    check: Callable | None = None
    fan_axes: Callable | None = None

    @property
    def kernel_names(self) -> tuple[str, ...]:
        """Short names of the kernels (the last component of each path)."""
        return tuple(path.rsplit(".", 1)[-1] for path in self.kernels)

    def kernel_fan_axes(self, layer, index: int, rank: int) -> tuple[tuple, tuple]:
        """(input axes, output axes) of kernel ``index`` (rank ``rank``) of ``layer``."""
        if self.fan_axes is not None:
            return self.fan_axes(layer, index, rank)
        return _dense_fan_axes(rank)


_REGISTRY: dict[type, LayerSpec] = {}


def _linear_apply(linear, finish):
    def apply(layer, inputs, kernels, **_):
        return finish(layer, linear(layer, inputs, kernels[0]))

    return apply


def register_layer(
    layer_type: type,
    *,
    kernel: str | None = None,
    kernels: tuple[str, ...] | None = None,
    linear: Callable | None = None,
    finish: Callable | None = None,
    apply: Callable | None = None,
    lookup: bool = False,
    check: Callable | None = None,
    fan_axes: Callable | None = None,
) -> None:
    """Makes ``layer_type`` (and its subclasses that keep its ``call``) wrappable.

    Either one ``kernel`` with ``linear`` and ``finish`` (every technique applies), or
    ``kernels`` with ``apply`` (magnitude / random pruning and L0; ``linear`` and ``finish``
    may be given too for a single kernel, which enables variational dropout). ``fan_axes``
    (optional) tells structured patterns which kernel axes are inputs. See ``LayerSpec``.
    """
    if not (isinstance(layer_type, type) and issubclass(layer_type, keras.layers.Layer)):
        raise ValueError(f"`layer_type` must be a keras Layer class, got {layer_type!r}.")
    if (kernel is None) == (kernels is None):
        raise ValueError("Give exactly one of `kernel` (a name) and `kernels` (a tuple).")
    kernels = (kernel,) if kernel is not None else tuple(kernels)
    if not kernels or not all(isinstance(k, str) and k for k in kernels):
        raise ValueError(f"`kernels` must be attribute names, got {kernels!r}.")
    if (linear is None) != (finish is None):
        raise ValueError("Give `linear` and `finish` together.")
    if linear is not None and len(kernels) != 1:
        raise ValueError("`linear` describes a single-kernel op; give `apply` for several.")
    if apply is None:
        if linear is None:
            raise ValueError("Give `apply`, or `linear` and `finish`.")
        apply = _linear_apply(linear, finish)
    _REGISTRY[layer_type] = LayerSpec(kernels, apply, linear, finish, lookup, check, fan_axes)


def supported_layer_types() -> tuple[type, ...]:
    return tuple(_REGISTRY)


def _names(types) -> str:
    return ", ".join(sorted(t.__name__ for t in types))


def _registered_base(layer) -> type | None:
    """The registered class whose op ``layer`` computes: its own, or an ancestor's whose
    ``call`` it inherits unchanged."""
    for cls in type(layer).__mro__:
        if cls in _REGISTRY:
            return cls if cls is type(layer) or type(layer).call is cls.call else None
    return None


def unsupported_reason(layer) -> str | None:
    """Why ``layer`` cannot be wrapped (None if it can), in a few words."""
    base = _registered_base(layer)
    if base is None:
        for cls in type(layer).__mro__[1:]:
            if cls in _REGISTRY:
                return (
                    f"{type(layer).__name__} subclasses {cls.__name__} with its own call(); "
                    "register it with sos.layers.register_layer"
                )
        return f"unsupported layer type {type(layer).__name__}"
    if getattr(layer, "lora_enabled", False):
        return "LoRA is enabled (sparsify before LoRA)"
    if getattr(layer, "quantization_mode", None):
        return "quantized (sparsify before quantizing)"
    check = _REGISTRY[base].check
    return check(layer) if check is not None else None


def spec_for(layer) -> LayerSpec:
    """The registry entry for ``layer``; a clear ``ValueError`` if it cannot be wrapped."""
    reason = unsupported_reason(layer)
    if reason is not None:
        raise ValueError(
            f"Layer {getattr(layer, 'name', layer)!r} cannot be sparsified: {reason}. Supported "
            f"layer types: {_names(_REGISTRY)} (and subclasses that keep their call), and the "
            "projections of MultiHeadAttention through `sparsify`."
        )
    return _REGISTRY[_registered_base(layer)]


def get_kernel(layer, path: str):
    """The variable at attribute ``path`` (``"kernel"``, ``"cell.recurrent_kernel"``)."""
    for name in path.split("."):
        layer = getattr(layer, name)
    return layer


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
        x = ops.pad(x, keras_compat.causal_padding(layer))
        padding = "valid"
    return ops.conv(
        x,
        kernel,
        strides=list(layer.strides),
        padding=padding,
        dilation_rate=layer.dilation_rate,
        data_format=layer.data_format,
    )


def _depthwise_linear(layer, x, kernel):
    return ops.depthwise_conv(
        x,
        kernel,
        strides=layer.strides,
        padding=layer.padding,
        dilation_rate=layer.dilation_rate,
        data_format=layer.data_format,
    )


def _transpose_linear(layer, x, kernel):
    return ops.conv_transpose(
        x,
        kernel,
        strides=list(layer.strides),
        padding=layer.padding,
        output_padding=layer.output_padding,
        dilation_rate=layer.dilation_rate,
        data_format=layer.data_format,
    )


def _channel_bias_activation(layer, y):
    """Bias on the channel axis (convolutions of any rank), then the activation."""
    if layer.use_bias:
        channel_axis = -1 if layer.data_format == "channels_last" else 1
        shape = [1] * len(y.shape)
        shape[channel_axis] = y.shape[channel_axis]
        y = ops.add(y, ops.reshape(layer.bias, shape))
    if layer.activation is not None:
        y = layer.activation(y)
    return y


def _separable_apply(layer, x, kernels, **_):
    y = ops.separable_conv(
        x,
        kernels[0],
        kernels[1],
        strides=layer.strides,
        padding=layer.padding,
        dilation_rate=layer.dilation_rate,
        data_format=layer.data_format,
    )
    return _channel_bias_activation(layer, y)


def _embedding_linear(layer, ids, kernel):
    if ids.dtype not in ("int32", "int64"):
        ids = ops.cast(ids, "int32")
    return ops.cast(ops.take(kernel, ids, axis=0), layer.compute_dtype)


def _identity_finish(layer, y):
    return y


def _transposed_linear(layer, x, kernel):
    return ops.matmul(x, ops.transpose(ops.cast(kernel, x.dtype)))


@contextlib.contextmanager
def _kernels_replaced(layer, paths, values):
    """Within the block, the attributes at ``paths`` hold ``values`` instead of the variables.

    The layer's own ``call`` then computes with the replacement kernels; the variables stay
    tracked by their layer (only the attribute is swapped, without Keras' tracking hook).
    """
    saved = []
    try:
        for path, value in zip(paths, values, strict=True):
            *parents, name = path.split(".")
            owner = layer
            for parent in parents:
                owner = getattr(owner, parent)
            saved.append((owner, name, owner.__dict__[name]))
            object.__setattr__(owner, name, value)
        yield
    finally:
        for owner, name, variable in reversed(saved):
            object.__setattr__(owner, name, variable)


_RNN_CELLS = (keras.layers.SimpleRNNCell, keras.layers.LSTMCell, keras.layers.GRUCell)
_RNN_KERNELS = ("cell.kernel", "cell.recurrent_kernel")


def _rnn_apply(layer, inputs, kernels, training=None, mask=None, initial_state=None, **_):
    with _kernels_replaced(layer, _RNN_KERNELS, kernels):
        return layer.call(inputs, initial_state=initial_state, mask=mask, training=training)


def _rnn_check(layer):
    if not isinstance(layer.cell, _RNN_CELLS):
        return f"RNN over a {type(layer.cell).__name__} (supported cells: {_names(_RNN_CELLS)})"
    return None


def reverse_spec(spec: LayerSpec) -> LayerSpec:
    """The spec of a lookup layer used in reverse: ``x · Kᵀ`` (the softmax of a tied embedding).

    Techniques treat it as a plain matmul (``lookup`` False): VD's local reparameterization runs
    x·θᵀ and x²·(σ²)ᵀ, L0 samples a gate per weight of the whole table.
    """
    if not spec.lookup:
        raise ValueError("Only embedding (lookup) layers can be used in reverse.")
    return LayerSpec(
        spec.kernels,
        _linear_apply(_transposed_linear, _identity_finish),
        _transposed_linear,
        _identity_finish,
        fan_axes=spec.fan_axes,
    )


def _einsum_fan_axes(layer, index, rank):
    """Kernel axes whose letter is not in the output are reduced (inputs); the others are
    outputs. ``"abc,cde->abde"`` (an attention query): inputs (0,), outputs (1, 2)."""
    operands, output = layer.equation.split("->")
    kernel = operands.split(",")[1]
    inputs = tuple(i for i, letter in enumerate(kernel) if letter not in output)
    return inputs, tuple(i for i in range(rank) if i not in inputs)


def _depthwise_fan_axes(layer, index, rank):
    """(k..., channels, multiplier): each output reduces over the kernel window only."""
    return tuple(range(rank - 2)), (rank - 2, rank - 1)


def _transpose_fan_axes(layer, index, rank):
    """(k..., filters, input channels): the input channels are the last axis."""
    return tuple(i for i in range(rank) if i != rank - 2), (rank - 2,)


def _separable_fan_axes(layer, index, rank):
    return _depthwise_fan_axes(layer, index, rank) if index == 0 else _dense_fan_axes(rank)


def _dense_fan_axes(rank):
    return tuple(range(rank - 1)), (rank - 1,)


def _embedding_fan_axes(layer, index, rank):
    """(vocabulary, dim): the tied softmax x · Eᵀ reduces over dim."""
    return (1,), (0,)


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
    keras.layers.EinsumDense,
    kernel="kernel",
    linear=_einsum_linear,
    finish=_bias_activation,
    fan_axes=_einsum_fan_axes,
)
for _conv in (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D):
    register_layer(_conv, kernel="kernel", linear=_conv_linear, finish=_channel_bias_activation)
for _depthwise in (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D):
    register_layer(
        _depthwise,
        kernel="kernel",
        linear=_depthwise_linear,
        finish=_channel_bias_activation,
        fan_axes=_depthwise_fan_axes,
    )
for _transpose in (
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
):
    register_layer(
        _transpose,
        kernel="kernel",
        linear=_transpose_linear,
        finish=_channel_bias_activation,
        fan_axes=_transpose_fan_axes,
    )
for _separable in (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D):
    register_layer(
        _separable,
        kernels=("depthwise_kernel", "pointwise_kernel"),
        apply=_separable_apply,
        fan_axes=_separable_fan_axes,
    )
for _rnn in (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU):
    register_layer(_rnn, kernels=_RNN_KERNELS, apply=_rnn_apply)
register_layer(keras.layers.RNN, kernels=_RNN_KERNELS, apply=_rnn_apply, check=_rnn_check)


def _reversible_check(layer):
    if not layer.tie_weights or layer.logit_soft_cap is not None or layer.reverse_dtype:
        return "ReversibleEmbedding with untied weights, a logit soft cap or a reverse dtype"
    if layer.mask_zero:
        return "ReversibleEmbedding with mask_zero"
    return None


for _embedding in (keras.layers.Embedding, TiedEmbedding, keras.layers.ReversibleEmbedding):
    register_layer(
        _embedding,
        kernel="embeddings",
        linear=_embedding_linear,
        finish=_identity_finish,
        lookup=True,
        check=_reversible_check if _embedding is keras.layers.ReversibleEmbedding else None,
        fan_axes=_embedding_fan_axes,
    )
