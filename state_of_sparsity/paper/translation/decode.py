"""Translating lists of sentences with a Transformer in batches (the binaries' decoder)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from state_of_sparsity.paper.models.transformer import translate_ids
from state_of_sparsity.paper.translation.data import EOS_ID

__all__ = ["translate_sentences"]


def translate_sentences(
    model, vocab, sentences, *, beam_size, alpha, max_length=256, extra_length=50, batch_size=32
):
    """Translations of ``sentences`` (strings), in order, by ``translate_ids`` in batches of
    similar length (sources cut to ``max_length`` − 1 tokens + EOS; outputs of at most
    min(max_length, source length + ``extra_length``) tokens, rounded up to 16)."""

    @tf.function(reduce_retracing=True)
    def run(source, length):
        return translate_ids(model, source, max_length=length, beam_size=beam_size, alpha=alpha)

    encoded = vocab.encode(list(sentences))
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    outputs = [None] * len(encoded)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        rows = [encoded[i][: max_length - 1] + [EOS_ID] for i in batch]
        width = max(len(r) for r in rows)
        source = np.zeros((len(rows), width), "int32")
        for i, row in enumerate(rows):
            source[i, : len(row)] = row
        length = min(max_length, 16 * -(-(width + extra_length) // 16))
        ids = run(tf.constant(source), length).numpy()
        for i, text in zip(batch, vocab.decode(ids), strict=True):
            outputs[i] = text
    return outputs
