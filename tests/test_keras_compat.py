"""One test per private Keras API the library uses (state_of_sparsity.keras_compat): if a Keras
release changes one, this file says which."""

import keras
import numpy as np

from state_of_sparsity import keras_compat


def test_is_functional():
    inputs = keras.Input((3,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert keras_compat.is_functional(functional)
    assert not keras_compat.is_functional(sequential)
    assert not keras_compat.is_functional(Subclassed())


def test_child_layers_in_creation_order():
    attention = keras.layers.MultiHeadAttention(2, 4)
    x = np.zeros((1, 3, 8), "float32")
    attention(x, x)
    names = [layer.name for layer in keras_compat.child_layers(attention)]
    assert names[:3] == ["query", "key", "value"] and names[-1] == "attention_output"


def test_causal_padding_pads_the_time_axis_on_the_left():
    conv = keras.layers.Conv1D(2, 3, dilation_rate=2, padding="causal")
    conv.build((None, 10, 4))
    assert keras_compat.causal_padding(conv) == [[0, 0], [4, 0], [0, 0]]


def test_replace_child_keeps_the_position_and_the_weights():
    class Block(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.first = keras.layers.Dense(2)
            self.second = keras.layers.Dense(2)

        def call(self, x):
            return self.second(self.first(x))

    block = Block()
    block(np.zeros((1, 3), "float32"))
    new = keras.layers.Dense(2)
    new.build((None, 3))
    keras_compat.replace_child(block, block.first, new)
    block.first = new
    assert keras_compat.child_layers(block) == [new, block.second]
    assert [id(w) for w in block.weights] == [id(w) for w in new.weights + block.second.weights]
