"""Layers and inputs shared by the tests: one case per registry layer type."""

import keras
import numpy as np


class PlainDense(keras.layers.Dense):
    """A subclass that keeps Dense's call (sparsified as a Dense)."""


# name -> (layer factory, input shape without batch, integer input?)
LAYER_CASES = {
    "dense": (lambda: keras.layers.Dense(12, activation="relu"), (9,), False),
    "dense_rank3": (lambda: keras.layers.Dense(6, use_bias=False), (5, 7), False),
    "einsum_dense": (
        lambda: keras.layers.EinsumDense("abc,cde->abde", (5, 3, 4), bias_axes="de"),
        (5, 6),
        False,
    ),
    "conv1d_causal": (lambda: keras.layers.Conv1D(4, 3, padding="causal"), (10, 3), False),
    "conv2d": (lambda: keras.layers.Conv2D(5, 3, strides=2, activation="tanh"), (9, 9, 3), False),
    "conv3d": (lambda: keras.layers.Conv3D(3, 2, padding="same"), (4, 4, 4, 2), False),
    "embedding": (lambda: keras.layers.Embedding(30, 8), (6,), True),
    "depthwise_conv1d": (
        lambda: keras.layers.DepthwiseConv1D(3, depth_multiplier=2),
        (9, 3),
        False,
    ),
    "depthwise_conv2d": (
        lambda: keras.layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu"),
        (7, 7, 3),
        False,
    ),
    "conv1d_transpose": (lambda: keras.layers.Conv1DTranspose(4, 3, strides=2), (5, 3), False),
    "conv2d_transpose": (
        lambda: keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1),
        (4, 4, 2),
        False,
    ),
    "conv3d_transpose": (lambda: keras.layers.Conv3DTranspose(2, 2), (3, 3, 3, 2), False),
    "dense_subclass": (lambda: PlainDense(5, activation="tanh"), (4,), False),
}

# Layers with several kernels (no variational dropout): name -> (factory, input shape, kernel
# attribute paths in the registry's order).
MULTI_KERNEL_CASES = {
    "separable_conv1d": (
        lambda: keras.layers.SeparableConv1D(4, 3, depth_multiplier=2),
        (9, 3),
        ("depthwise_kernel", "pointwise_kernel"),
    ),
    "separable_conv2d": (
        lambda: keras.layers.SeparableConv2D(5, 3, strides=2, activation="relu"),
        (8, 8, 3),
        ("depthwise_kernel", "pointwise_kernel"),
    ),
    "simple_rnn": (
        lambda: keras.layers.SimpleRNN(5, return_sequences=True),
        (6, 3),
        ("cell.kernel", "cell.recurrent_kernel"),
    ),
    "lstm": (lambda: keras.layers.LSTM(4), (6, 3), ("cell.kernel", "cell.recurrent_kernel")),
    "gru": (
        lambda: keras.layers.GRU(4, go_backwards=True),
        (6, 3),
        ("cell.kernel", "cell.recurrent_kernel"),
    ),
    "rnn_lstm_cell": (
        lambda: keras.layers.RNN(keras.layers.LSTMCell(3), return_sequences=True),
        (5, 2),
        ("cell.kernel", "cell.recurrent_kernel"),
    ),
}


def attribute(layer, path):
    for name in path.split("."):
        layer = getattr(layer, name)
    return layer


def make_input(shape, integer, batch=4, seed=0):
    rng = np.random.default_rng(seed)
    if integer:
        return rng.integers(0, 30, (batch, *shape)).astype("int32")
    return rng.standard_normal((batch, *shape)).astype("float32")


def built(layer, shape, integer):
    """Calls ``layer`` once on a sample so that it is built; returns the sample."""
    x = make_input(shape, integer)
    layer(x)
    return x


def reference_output(layer, kernel, x, kernels=None):
    """Output of a fresh copy of ``layer`` (Keras' own forward pass) whose kernel is replaced by
    ``kernel``, or whose kernels at attribute paths are replaced by ``kernels`` (NumPy)."""
    copy = type(layer).from_config(layer.get_config())
    copy(x)
    for target, source in zip(copy.weights, layer.weights, strict=True):
        target.assign(source)
    if kernels is None:
        kernels = {"embeddings" if isinstance(layer, keras.layers.Embedding) else "kernel": kernel}
    for path, value in kernels.items():
        attribute(copy, path).assign(value)
    return keras.ops.convert_to_numpy(copy(x))


def gradients(fn, variables):
    """Gradients of the scalar ``fn()`` with respect to Keras ``variables`` on any backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = fn()
        return [np.asarray(g) for g in tape.gradient(value, [v.value for v in variables])]
    if backend == "jax":
        import jax

        def f(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
                return fn()

        return [np.asarray(g) for g in jax.grad(f)([v.value for v in variables])]
    if backend == "torch":
        import torch

        values = [v.value for v in variables]
        return [g.detach().cpu().numpy() for g in torch.autograd.grad(fn(), values)]
    raise NotImplementedError(backend)


def update_steps(schedule, num_steps):
    """The steps in [0, num_steps) at which ``schedule.should_update`` fires on a run from
    scratch (what the callback does)."""
    last, out = 0, []
    for t in range(num_steps):
        if schedule.should_update(t, last):
            out.append(t)
            last = t
    return out
