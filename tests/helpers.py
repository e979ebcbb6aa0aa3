"""Layers and inputs shared by the tests: one case per registry layer type."""

import keras
import numpy as np

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
}


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


def reference_output(layer, kernel, x):
    """Output of a fresh copy of ``layer`` whose kernel is replaced by ``kernel`` (NumPy)."""
    copy = type(layer).from_config(layer.get_config())
    copy(x)
    attr = "embeddings" if isinstance(layer, keras.layers.Embedding) else "kernel"
    for target, source in zip(copy.weights, layer.weights, strict=True):
        target.assign(source)
    getattr(copy, attr).assign(kernel)
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
    raise NotImplementedError(backend)
