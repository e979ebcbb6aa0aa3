"""ResNet v1.5 as in the paper's ``sparse_rn50/resnet_model.py`` (spec §4.1), plain Keras layers.

- Depths 18 / 34 (basic blocks) and 50 / 101 / 152 / 200 (bottlenecks), ``width`` multiplies
  every channel count.
- Stem ``initial_conv`` 7×7/2 (64·width) + BN + ReLU + 3×3/2 max-pool (SAME).
- Bottleneck with the stride on the 3×3 (v1.5): 1×1 → BN-ReLU → 3×3/s → BN-ReLU → 1×1 (4f) →
  BN with γ initialised to 0 → + shortcut → ReLU. The first block of each group has a
  projection shortcut (1×1/s conv + BN, no ReLU), as the reference (also for basic blocks).
- Convolutions have no bias. Stride 1 uses SAME padding; stride > 1 pads (k − 1) // 2 before and
  the rest after explicitly, then VALID — the reference's ``fixed_padding``.
- BatchNormalization momentum 0.9, epsilon 1e-5. Conv kernels: variance scaling (scale 1,
  fan_in, truncated normal). ``final_dense`` kernel N(0, 0.01), bias 0.
- The model takes images in [0, 255] and normalises them with the ImageNet mean / std (×255)
  as its first layer, as the reference's model_fn.

Every convolution (stem, blocks, projections) and ``final_dense`` is sparsifiable with
``sos.sparsify``; ``--prune_first_layer`` / ``--prune_last_layer`` map to overrides on
``initial_conv`` / ``final_dense``.
"""

from __future__ import annotations

import math

import keras

__all__ = ["BLOCKS", "resnet", "sparse_initializers", "MEAN_RGB", "STDDEV_RGB"]

BLOCKS = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
    101: ("bottleneck", [3, 4, 23, 3]),
    152: ("bottleneck", [3, 8, 36, 3]),
    200: ("bottleneck", [3, 24, 36, 3]),
}
MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
BN_MOMENTUM, BN_EPSILON = 0.9, 1e-5


def _conv_init():
    return keras.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")


def _conv(x, filters, kernel_size, strides, name, kernel_initializer, regularizer):
    if strides > 1:
        total = kernel_size - 1
        before = total // 2
        x = keras.layers.ZeroPadding2D(((before, total - before),) * 2, name=f"{name}_pad")(x)
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same" if strides == 1 else "valid",
        use_bias=False,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=regularizer,
        name=name,
    )(x)


def _bn(x, name, relu=True, zero_gamma=False):
    x = keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        gamma_initializer="zeros" if zero_gamma else "ones",
        name=name,
    )(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _block(x, kind, filters, strides, projection, name, init, reg):
    """One residual block; ``init(name, kernel_size, filters)`` gives each conv's initializer."""
    shortcut = x
    out_filters = 4 * filters if kind == "bottleneck" else filters

    def conv(x, filters, kernel_size, strides, suffix):
        conv_name = f"{name}_{suffix}"
        kernel_init = init(conv_name, kernel_size, filters)
        return _conv(x, filters, kernel_size, strides, conv_name, kernel_init, reg)

    if projection:
        shortcut = conv(x, out_filters, 1, strides, "proj")
        shortcut = _bn(shortcut, f"{name}_proj_bn", relu=False)
    if kind == "bottleneck":
        x = _bn(conv(x, filters, 1, 1, "conv1"), f"{name}_bn1")
        x = _bn(conv(x, filters, 3, strides, "conv2"), f"{name}_bn2")
        x = _bn(conv(x, out_filters, 1, 1, "conv3"), f"{name}_bn3", relu=False, zero_gamma=True)
    else:
        x = _bn(conv(x, filters, 3, strides, "conv1"), f"{name}_bn1")
        x = _bn(conv(x, filters, 3, 1, "conv2"), f"{name}_bn2", relu=False, zero_gamma=True)
    x = keras.layers.Add(name=f"{name}_add")([x, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(x)


def sparse_initializers(sparsity: float):
    """The reference's ``init_method=sparse`` (spec §6.3) for a target ``sparsity``.

    Conv: a (non-truncated) normal with std sqrt(2 / n), n = kh·kw·c_out·(1 − s) — He init on
    the fan-out over the surviving weights. Dense: uniform ±sqrt(6 / (nnz/fan_out + nnz/fan_in))
    with nnz = fan_in·fan_out·(1 − s), i.e. Glorot scaled by 1/sqrt(1 − s).
    Returns ``(conv_initializer(kernel_size, filters), dense_initializer(fan_in, fan_out))``.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"`sparsity` must be in [0, 1), got {sparsity!r}.")
    keep = 1.0 - sparsity

    def conv(kernel_size, filters):
        return keras.initializers.RandomNormal(
            0.0, math.sqrt(2.0 / (kernel_size**2 * filters * keep))
        )

    def dense(fan_in, fan_out):
        nnz = fan_in * fan_out * keep
        limit = math.sqrt(6.0 / (nnz / fan_out + nnz / fan_in))
        return keras.initializers.RandomUniform(-limit, limit)

    return conv, dense


def resnet(
    depth: int = 50,
    num_classes: int = 1000,
    width: float = 1.0,
    input_shape=(224, 224, 3),
    init_sparsity: float | None = None,
    weight_decay: float = 0.0,
    name: str | None = None,
    init_overrides: dict | None = None,
) -> keras.Model:
    """ResNet v1.5 of ``depth`` with ``width``× channels; logits over ``num_classes``.

    ``init_sparsity``: use the reference's sparse initialisation for that sparsity
    (``--init_method=sparse``); None: the baseline initialisers. ``init_overrides`` (with
    ``init_sparsity``): layer name -> its own sparsity, as ``sos.sparsify``'s ``overrides``; 0
    or None gives the layer the baseline initialiser, as the reference, which builds a layer it
    does not prune (a dense stem or head) as a plain layer (spec §4.2, §6.3). A per-layer
    target scales that layer's init (the reference used ``--end_sparsity`` for every pruned
    layer; its scratch runs had no per-layer targets). ``weight_decay``: adds
    weight_decay · Σw² / 2 over every convolution and dense kernel (not BN, not biases), the
    reference's L2 regulariser; it stays on θ when a technique wraps the layer.
    """
    if depth not in BLOCKS:
        raise ValueError(f"`depth` must be one of {sorted(BLOCKS)}, got {depth!r}.")
    if not width > 0:
        raise ValueError(f"`width` must be > 0, got {width!r}.")
    if not (isinstance(num_classes, int) and num_classes >= 2):
        raise ValueError(f"`num_classes` must be an integer >= 2, got {num_classes!r}.")
    if not weight_decay >= 0:
        raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay!r}.")
    reg = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    kind, counts = BLOCKS[depth]
    overrides = dict(init_overrides or {})

    def sparsity_of(layer_name):
        """The layer's initialisation sparsity; None: the baseline initialiser."""
        if init_sparsity is None:
            return None
        return overrides.get(layer_name, init_sparsity) or None

    def init(layer_name, kernel_size, filters):
        sparsity = sparsity_of(layer_name)
        if sparsity is None:
            return _conv_init()
        return sparse_initializers(sparsity)[0](kernel_size, filters)

    # Unseeded initialisers draw their seeds when created: the baseline head's is created
    # first, as it always was, so that a --seed keeps giving the same initial values.
    if sparsity_of("final_dense") is None:
        dense_init = keras.initializers.RandomNormal(0.0, 0.01)
    channels = [max(1, int(c * width)) for c in (64, 128, 256, 512)]

    inputs = keras.Input(input_shape, name="image")
    x = keras.layers.Normalization(
        mean=MEAN_RGB, variance=[s**2 for s in STDDEV_RGB], name="normalize"
    )(inputs)
    x = _conv(x, channels[0], 7, 2, "initial_conv", init("initial_conv", 7, channels[0]), reg)
    x = _bn(x, "initial_bn")
    x = keras.layers.MaxPooling2D(3, 2, padding="same", name="initial_pool")(x)
    for group, (filters, count, strides) in enumerate(
        zip(channels, counts, (1, 2, 2, 2), strict=True)
    ):
        for block in range(count):
            x = _block(
                x,
                kind,
                filters,
                strides if block == 0 else 1,
                block == 0,
                f"group{group + 1}_block{block + 1}",
                init,
                reg,
            )
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if sparsity_of("final_dense") is not None:
        make_dense = sparse_initializers(sparsity_of("final_dense"))[1]
        dense_init = make_dense(int(x.shape[-1]), num_classes)
    outputs = keras.layers.Dense(
        num_classes, kernel_initializer=dense_init, kernel_regularizer=reg, name="final_dense"
    )(x)
    return keras.Model(inputs, outputs, name=name or f"resnet{depth}")
