"""The paper's sparse Transformer (spec §5): encoder-decoder, pre-norm, tied embedding/softmax.

``sparse_transformer_base`` (spec §5.1, the paper's v3 hparams): 6 + 6 layers, hidden 512, filter
2048, 8 heads, layer norm before each sub-layer and dropout + residual after it (t2t's
``layer_preprocess "n"``, ``layer_postprocess "da"``), a final layer norm on each stack,
sinusoidal positions (t2t's ``add_timing_signal_1d``), one embedding table for the source
lookup, the target lookup and the softmax, scaled by sqrt(hidden) on lookup with the rows of
padding (id 0) zeroed. Attention q/k/v/output projections have no bias; q is scaled by
head_dim^-1/2 (Keras' MultiHeadAttention does both). The FFN is dense-ReLU-dense with biases.

Sparsifiable (``sos.sparsify``): every attention projection, both FFN layers and the shared
embedding (one wrapper, so one mask or one set of VD / L0 parameters, used three times; its
penalty counted once per step: the training call looks up the source and target ids in one call,
and the softmax is the same wrapper in reverse). Layer norms and biases stay dense.

Initialisation follows the paper's *sparse* variants (spec §5.3): glorot-uniform for every
dense kernel (for the attention projections computed on their 2-D [hidden, heads·head_dim]
shape, which Keras' default on the 3-D EinsumDense kernel would not do) and N(0, hidden^-1/2)
for the embedding.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from state_of_sparsity.layers.registry import TiedEmbedding
from state_of_sparsity.layers.sparsifiable import Sparsifiable
from state_of_sparsity.paper.translation import decoding

__all__ = [
    "PRESETS",
    "REGULARIZATION",
    "Transformer",
    "timing_signal",
    "transformer",
    "translate_ids",
]

PAD_ID = 0

# Model shapes of the paper's hparams sets (spec §5.1).
PRESETS = {
    "base": {"num_layers": 6, "hidden_size": 512, "filter_size": 2048, "num_heads": 8},
    "tiny": {"num_layers": 2, "hidden_size": 128, "filter_size": 512, "num_heads": 4},
}

# The trainer's ``--regularization`` presets (spec §5.4): (prepostprocess, attention, relu)
# dropout and label smoothing. "dropout+label_smoothing" is the base v2/v3 setting.
REGULARIZATION = {
    "none": {"dropout": 0.0, "attention_dropout": 0.0, "relu_dropout": 0.0, "label_smoothing": 0.0},
    "label_smoothing": {
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "relu_dropout": 0.0,
        "label_smoothing": 0.1,
    },
    "dropout+label_smoothing": {
        "dropout": 0.1,
        "attention_dropout": 0.1,
        "relu_dropout": 0.1,
        "label_smoothing": 0.1,
    },
    "moredropout+label_smoothing": {
        "dropout": 0.3,
        "attention_dropout": 0.1,
        "relu_dropout": 0.1,
        "label_smoothing": 0.1,
    },
    "muchmoredropout+label_smoothing": {
        "dropout": 0.5,
        "attention_dropout": 0.1,
        "relu_dropout": 0.1,
        "label_smoothing": 0.1,
    },
}


def timing_signal(length, channels: int, min_timescale=1.0, max_timescale=1.0e4):
    """Sinusoidal positions [length, channels] (Vaswani et al. 2017; t2t add_timing_signal_1d).

    With n = channels // 2 timescales, inv_k = min_timescale · exp(−k · log(max/min) / (n − 1)),
    signal[p] = [sin(p · inv_0..n−1), cos(p · inv_0..n−1)] (zero-padded if channels is odd).
    """
    n = channels // 2
    increment = math.log(max_timescale / min_timescale) / max(n - 1, 1)
    inv = min_timescale * ops.exp(ops.arange(n, dtype="float32") * -increment)
    scaled = ops.arange(length, dtype="float32")[:, None] * inv[None, :]
    signal = ops.concatenate([ops.sin(scaled), ops.cos(scaled)], axis=1)
    if channels % 2:
        signal = ops.pad(signal, [[0, 0], [0, 1]])
    return signal


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be in [0, 1), got {value!r}.")
    return float(value)


@keras.saving.register_keras_serializable(package="state_of_sparsity")
class Transformer(Sparsifiable, keras.Model):
    """Encoder-decoder Transformer with a tied embedding/softmax (see the module docstring).

    ``model((inputs, decoder_inputs), training=...)`` returns the logits [B, T, vocab] of the
    targets; ``decoder_inputs`` are the targets shifted right with 0 in front. For decoding,
    ``encode``, ``decode`` and ``logits`` run the pieces (see ``translate``).

    Args:
        vocab_size: size of the shared vocabulary (id 0 is padding and the start symbol).
        num_layers, hidden_size, filter_size, num_heads: the shape (see ``PRESETS``).
        dropout: dropout after each sub-layer and on the embedded inputs
            (t2t's layer_prepostprocess_dropout). attention_dropout: on attention weights.
            relu_dropout: after the FFN's ReLU.
        layer_wrappers: set by ``sos.sparsify`` (the ``Sparsifiable`` protocol).
    """

    def __init__(
        self,
        vocab_size: int,
        num_layers: int = 6,
        hidden_size: int = 512,
        filter_size: int = 2048,
        num_heads: int = 8,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        relu_dropout: float = 0.1,
        layer_wrappers=None,
        **kwargs,
    ):
        kwargs.setdefault("name", "transformer")
        super().__init__(**kwargs)
        for name, value in (
            ("vocab_size", vocab_size),
            ("num_layers", num_layers),
            ("hidden_size", hidden_size),
            ("filter_size", filter_size),
            ("num_heads", num_heads),
        ):
            _check_positive_int(name, value)
        if hidden_size % num_heads:
            raise ValueError(
                f"`hidden_size` ({hidden_size}) must be a multiple of `num_heads` ({num_heads})."
            )
        self.vocab_size = vocab_size
        self.num_layers = num_layers
        self.hidden_size = hidden_size
        self.filter_size = filter_size
        self.num_heads = num_heads
        self.dropout_rate = _check_rate("dropout", dropout)
        self.attention_dropout = _check_rate("attention_dropout", attention_dropout)
        self.relu_dropout = _check_rate("relu_dropout", relu_dropout)
        self.init_wrappers(layer_wrappers)

        self.embedding = self.sparsifiable(
            TiedEmbedding(
                vocab_size,
                hidden_size,
                embeddings_initializer=keras.initializers.RandomNormal(0.0, hidden_size**-0.5),
                name="shared_embedding",
            )
        )
        self.encoder_layers = [self._block(f"encoder_{i}", cross=False) for i in range(num_layers)]
        self.decoder_layers = [self._block(f"decoder_{i}", cross=True) for i in range(num_layers)]
        self.encoder_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")
        self.decoder_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="decoder_norm")
        self.input_dropout = keras.layers.Dropout(self.dropout_rate, name="input_dropout")

    def _block(self, name, cross):
        d, heads = self.hidden_size, self.num_heads
        limit = math.sqrt(6.0 / (d + d))  # glorot on the 2-D [d, heads * head_dim] projection
        attention_args = {
            "num_heads": heads,
            "key_dim": d // heads,
            "use_bias": False,
            "dropout": self.attention_dropout,
            "kernel_initializer": keras.initializers.RandomUniform(-limit, limit),
        }
        block = {
            "self_norm": keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_self_norm"),
            "self_attention": self.attention(f"{name}_self_attention", **attention_args),
            "ffn_norm": keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_ffn_norm"),
            "ffn_1": self.sparsifiable(
                keras.layers.Dense(self.filter_size, activation="relu", name=f"{name}_ffn_1")
            ),
            "ffn_2": self.sparsifiable(keras.layers.Dense(d, name=f"{name}_ffn_2")),
            "relu_dropout": keras.layers.Dropout(self.relu_dropout, name=f"{name}_relu_dropout"),
            "dropout": keras.layers.Dropout(self.dropout_rate, name=f"{name}_dropout"),
        }
        if cross:
            block["cross_norm"] = keras.layers.LayerNormalization(
                epsilon=1e-6, name=f"{name}_cross_norm"
            )
            block["cross_attention"] = self.attention(f"{name}_cross_attention", **attention_args)
        return block

    # -- pieces -------------------------------------------------------------------------------

    def _embed(self, ids, embedded, training):
        """Scale by sqrt(hidden), zero the padding rows, add positions, dropout."""
        valid = ops.cast(ops.not_equal(ids, PAD_ID), embedded.dtype)[..., None]
        x = embedded * ops.cast(math.sqrt(self.hidden_size), embedded.dtype) * valid
        x = x + ops.cast(timing_signal(ops.shape(ids)[1], self.hidden_size), x.dtype)
        return self.input_dropout(x, training=training)

    def _ffn(self, block, x, training):
        h = block["relu_dropout"](block["ffn_1"](x), training=training)
        return block["dropout"](block["ffn_2"](h), training=training)

    def _encode(self, embedded, src_mask, training):
        x = embedded
        attention_mask = src_mask[:, None, :]
        for block in self.encoder_layers:
            y = block["self_norm"](x)
            y = block["self_attention"](y, y, attention_mask=attention_mask, training=training)
            x = x + block["dropout"](y, training=training)
            x = x + self._ffn(block, block["ffn_norm"](x), training)
        return self.encoder_norm(x)

    def _decode(self, embedded, memory, src_mask, training):
        x = embedded
        memory_mask = src_mask[:, None, :]
        for block in self.decoder_layers:
            y = block["self_norm"](x)
            y = block["self_attention"](y, y, use_causal_mask=True, training=training)
            x = x + block["dropout"](y, training=training)
            y = block["cross_norm"](x)
            y = block["cross_attention"](y, memory, attention_mask=memory_mask, training=training)
            x = x + block["dropout"](y, training=training)
            x = x + self._ffn(block, block["ffn_norm"](x), training)
        return self.decoder_norm(x)

    def encode(self, inputs, training=False):
        """``(memory [B, S, d], source mask [B, S] bool)`` of source ids [B, S]."""
        src_mask = ops.not_equal(inputs, PAD_ID)
        embedded = self._embed(inputs, self.embedding(inputs, training=training), training)
        return self._encode(embedded, src_mask, training), src_mask

    def decode(self, decoder_inputs, memory, src_mask, training=False):
        """Decoder states [B, T, d] (before the softmax) of ``decoder_inputs`` [B, T]."""
        embedded = self.embedding(decoder_inputs, training=training)
        embedded = self._embed(decoder_inputs, embedded, training)
        return self._decode(embedded, memory, src_mask, training)

    def logits(self, states, training=False):
        """``states · Eᵀ``: the tied softmax's logits (float32)."""
        return ops.cast(self.embedding(states, training=training, reverse=True), "float32")

    def call(self, inputs, training=None):
        source, decoder_inputs = inputs
        # One lookup of both id tensors: a penalized embedding adds its penalty once per step.
        both = ops.concatenate([source, decoder_inputs], axis=1)
        embedded = self.embedding(both, training=training)
        length = ops.shape(source)[1]
        src_mask = ops.not_equal(source, PAD_ID)
        memory = self._encode(
            self._embed(source, embedded[:, :length], training), src_mask, training
        )
        states = self._decode(
            self._embed(decoder_inputs, embedded[:, length:], training), memory, src_mask, training
        )
        return self.logits(states, training=training)

    # -- protocol and config ------------------------------------------------------------------

    def dummy_inputs(self):
        return (ops.ones((1, 2), dtype="int32"), ops.ones((1, 2), dtype="int32"))

    def build(self, input_shape=None):
        if not self.built:
            self.call(self.dummy_inputs(), training=False)
        self.built = True

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "num_layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "filter_size": self.filter_size,
            "num_heads": self.num_heads,
            "dropout": self.dropout_rate,
            "attention_dropout": self.attention_dropout,
            "relu_dropout": self.relu_dropout,
            **self.wrapper_config(),
        }

    @classmethod
    def from_config(cls, config):
        model = cls(**config)
        model.build()  # its weights exist at once, so load_weights works on the result
        return model


def transformer(preset: str, vocab_size: int, **kwargs) -> Transformer:
    """A built ``Transformer`` of ``PRESETS[preset]`` (``kwargs`` override any argument)."""
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose from {sorted(PRESETS)}.")
    model = Transformer(vocab_size, **{**PRESETS[preset], **kwargs})
    model.build()
    return model


def translate_ids(
    model: Transformer, source, *, max_length: int, beam_size: int = 4, alpha: float = 0.6
):
    """Token ids [B, max_length] of the translations of ``source`` ids [B, S] (EOS-terminated,
    zero-padded), in eval mode.

    ``beam_size`` 1 decodes greedily, otherwise beam search with the length penalty
    ((5 + len) / 6)^alpha keeps the best hypothesis (t2t's defaults: beam 4, alpha 0.6, spec
    §5.5). Each step re-runs the decoder on the whole fixed-size prefix buffer (static shapes, so
    it compiles in ``tf.function`` and ``jax.jit``; no key/value cache: the cost grows with
    max_length², fine for max_length up to a few hundred).
    """
    memory, src_mask = model.encode(source, training=False)
    batch = source.shape[0] or ops.shape(source)[0]  # a tensor only for a dynamic batch
    if beam_size > 1:
        memory = ops.repeat(memory, beam_size, axis=0)
        src_mask = ops.repeat(src_mask, beam_size, axis=0)

    def logits_fn(decoded, i):
        decoder_inputs = ops.pad(decoded[:, :-1], [[0, 0], [1, 0]])  # shift right, 0 in front
        states = model.decode(decoder_inputs, memory, src_mask, training=False)
        return model.logits(ops.take(states, i, axis=1))

    if beam_size == 1:
        return decoding.greedy_search(logits_fn, batch, max_length)
    ids, _ = decoding.beam_search(logits_fn, batch, max_length, beam_size=beam_size, alpha=alpha)
    return ids[:, 0]
