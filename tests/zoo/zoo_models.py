"""Models as users write them, none built with this library in mind.

- ``bert_encoder``: a BERT-style encoder whose positions and attention mask come from
  ``keras.ops`` calls in the Functional graph (ops nodes, not layers).
- ``keras_io_transformer``: the keras.io "Text classification with Transformer" example: a
  custom ``TransformerBlock`` (MultiHeadAttention and a Sequential FFN as attributes) and a
  ``TokenAndPositionEmbedding`` with two Embeddings.
- ``lazy_model``: a custom layer that creates its Dense and a weight of its own in ``build``.
- ``two_tower``: list inputs and dict inputs, a layer shared by both towers, two outputs.
- ``Subclassed``: a subclassed model whose wrappers are created in ``__init__``.
"""

import keras
from keras import layers, ops

import state_of_sparsity as sos


@keras.saving.register_keras_serializable(package="zoo")
class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim, self.num_heads, self.ff_dim, self.rate = embed_dim, num_heads, ff_dim, rate
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential(
            [layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)]
        )
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(rate)
        self.dropout2 = layers.Dropout(rate)

    def call(self, inputs, training=False):
        attn_output = self.dropout1(self.att(inputs, inputs), training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.dropout2(self.ffn(out1), training=training)
        return self.layernorm2(out1 + ffn_output)

    def get_config(self):
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
            "ff_dim": self.ff_dim,
            "rate": self.rate,
        }


@keras.saving.register_keras_serializable(package="zoo")
class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.maxlen, self.vocab_size, self.embed_dim = maxlen, vocab_size, embed_dim
        self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        positions = ops.arange(start=0, stop=ops.shape(x)[-1], step=1)
        return self.token_emb(x) + self.pos_emb(positions)

    def get_config(self):
        return {
            **super().get_config(),
            "maxlen": self.maxlen,
            "vocab_size": self.vocab_size,
            "embed_dim": self.embed_dim,
        }


def keras_io_transformer(maxlen=10, vocab_size=50, embed_dim=16):
    inputs = layers.Input(shape=(maxlen,), dtype="int32")
    x = TokenAndPositionEmbedding(maxlen, vocab_size, embed_dim, name="embedding")(inputs)
    x = TransformerBlock(embed_dim, 2, 32, name="block")(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dense(20, activation="relu", name="hidden")(x)
    return keras.Model(inputs=inputs, outputs=layers.Dense(2, name="head")(x))


def bert_encoder(vocab=40, length=8, width=16, heads=2, depth=2):
    ids = keras.Input((length,), dtype="int32", name="token_ids")
    positions = ops.expand_dims(ops.arange(length), 0)  # ops nodes in the graph
    x = layers.Embedding(vocab, width, name="token_embedding")(ids)
    x = x + layers.Embedding(length, width, name="position_embedding")(positions)
    mask = ops.cast(ops.not_equal(ids, 0), "bool")
    attention_mask = ops.logical_and(mask[:, None, :], mask[:, :, None])
    for i in range(depth):
        y = layers.MultiHeadAttention(heads, width // heads, name=f"attention_{i}")(
            x, x, attention_mask=attention_mask
        )
        x = layers.LayerNormalization(name=f"norm_{i}a")(x + y)
        y = layers.Dense(2 * width, activation="gelu", name=f"ffn_{i}_in")(x)
        y = layers.Dense(width, name=f"ffn_{i}_out")(y)
        x = layers.LayerNormalization(name=f"norm_{i}b")(x + y)
    pooled = ops.mean(x, axis=1)
    return keras.Model(ids, layers.Dense(2, name="classifier")(pooled), name="bert")


@keras.saving.register_keras_serializable(package="zoo")
class LazyBlock(layers.Layer):
    """Creates its sub-layer and a weight of its own in ``build``."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.dense = layers.Dense(self.units, activation="relu")
        self.dense.build(input_shape)
        self.scale = self.add_weight(shape=(self.units,), initializer="ones", name="scale")

    def call(self, x):
        return self.dense(x) * self.scale

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def lazy_model():
    inputs = keras.Input((6,))
    x = LazyBlock(8, name="lazy")(inputs)
    return keras.Model(inputs, layers.Dense(3, name="out")(x))


def two_tower(dict_inputs=False):
    left, right = keras.Input((5,), name="left"), keras.Input((5,), name="right")
    shared = layers.Dense(8, activation="relu", name="shared")
    merged = layers.Concatenate()([shared(left), shared(right)])
    score = layers.Dense(1, name="score")(merged)
    label = layers.Dense(3, name="label")(merged)
    inputs = {"left": left, "right": right} if dict_inputs else [left, right]
    return keras.Model(inputs, [score, label], name="two_tower")


@keras.saving.register_keras_serializable(package="zoo")
class Subclassed(keras.Model):
    """Wrappers created where the layers are created; never called before ``fit``."""

    def __init__(self, schedule=None, **kwargs):
        super().__init__(**kwargs)
        self.schedule = schedule or sos.PolynomialDecay(
            0.0, 0.5, begin_step=0, end_step=2, frequency=1
        )
        self.conv = sos.layers.MagnitudePruning(layers.Conv2D(4, 3), schedule=self.schedule)
        self.pool = layers.GlobalAveragePooling2D()
        self.fc = sos.layers.MagnitudePruning(layers.Dense(3), schedule=self.schedule)

    def call(self, x):
        return self.fc(self.pool(self.conv(x)))

    def get_config(self):
        return {
            **super().get_config(),
            "schedule": keras.saving.serialize_keras_object(self.schedule),
        }

    @classmethod
    def from_config(cls, config):
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)
