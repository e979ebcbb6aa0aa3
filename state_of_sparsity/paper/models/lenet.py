"""LeNet-300-100 and LeNet-5-Caffe, the MNIST networks of the paper's VD verification.

Both are Functional models of plain Keras layers, so ``sos.sparsify`` wraps every Dense and Conv2D
with any technique. Inputs are 28×28×1 images in [0, 1]; outputs are 10 logits.
"""

from __future__ import annotations

import keras

__all__ = ["MODELS", "lenet_300_100", "lenet5_caffe", "build"]


def lenet_300_100() -> keras.Model:
    """Fully connected 784-300-100-10 with ReLU (LeCun et al. 1998; 266,200 weights)."""
    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(300, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(100, activation="relu", name="fc2")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="fc3")(x), name="lenet_300_100")


def lenet5_caffe() -> keras.Model:
    """Caffe's LeNet-5: conv 20@5×5, max-pool 2, conv 50@5×5, max-pool 2, FC 500 + ReLU, FC 10.

    As in Caffe's ``lenet_train_test.prototxt`` the convolutions have no nonlinearity of their
    own (430,500 weights: 500 + 25,000 + 400,000 + 5,000).
    """
    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(20, 5, name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(50, 5, name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(500, activation="relu", name="fc1")(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="fc2")(x), name="lenet5_caffe")


MODELS = {"lenet_300_100": lenet_300_100, "lenet5_caffe": lenet5_caffe}


def build(name: str) -> keras.Model:
    """The model called ``name`` (one of ``MODELS``)."""
    try:
        return MODELS[name]()
    except KeyError:
        raise ValueError(f"Unknown model {name!r}; allowed: {', '.join(MODELS)}.") from None
