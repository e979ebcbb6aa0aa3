"""The Transformer as a SavedModel translating raw strings to raw strings (sentencepiece and
beam search in the graph; load it with ``import tensorflow_text`` first)."""

from __future__ import annotations

import os
import shutil

from state_of_sparsity.export import publish, stage
from state_of_sparsity.paper.models.transformer import translate_ids
from state_of_sparsity.paper.translation.decoding import EOS_ID
from state_of_sparsity.sparsify import strip

__all__ = ["export_translator"]


def export_translator(
    model,
    vocab_model_proto: bytes,
    path,
    *,
    sample_sentences,
    max_length: int,
    beam_size: int = 4,
    alpha: float = 0.6,
    **options,
):
    """Writes a Transformer as a SavedModel translating raw strings to raw strings.

    Signature ``serving_default`` (and the function ``translate``): ``sentences`` string [B] ->
    ``translations`` string [B]. Inside the graph: sentencepiece tokenization (tensorflow-text,
    the vocabulary's model proto is stored in the SavedModel), truncation to ``max_length`` − 1
    tokens + EOS, ``translate_ids`` on the stripped eval-mode model (beam search or greedy,
    at most ``max_length`` output tokens), detokenization. The export is reloaded and its
    translations of ``sample_sentences`` compared with the in-process model's (they must be
    identical) before ``path`` is written. ``options`` are eval options (a VD threshold).
    """
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the sentencepiece ops for the reload)

    stripped = strip(model, **options)
    module = _translator_module(stripped, vocab_model_proto, max_length, beam_size, alpha)
    samples = tf.constant(list(sample_sentences), dtype=tf.string)
    expected = [t.decode() for t in module.translate(samples).numpy()]

    path, staging = stage(path)
    try:
        tf.saved_model.save(module, staging, signatures={"serving_default": module.serving_default})
        reloaded = tf.saved_model.load(staging)
        got = [t.decode() for t in reloaded.translate(samples).numpy()]
        if got != expected:
            raise RuntimeError(
                f"The reloaded translator gives {got!r}, the model {expected!r}; nothing was "
                f"written to {path!r}."
            )
        publish(staging, path)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
    return path


def _translator_module(model, proto, max_length, beam_size, alpha):
    import tensorflow as tf
    import tensorflow_text as tf_text

    class Translator(tf.Module):
        def __init__(self):
            super().__init__(name="translator")
            self.model = model
            # Keras 3 variables are not tracked through the model: list their tf.Variables.
            self.model_variables = [v.value for v in model.variables]
            self.tokenizer = tf_text.SentencepieceTokenizer(model=proto, out_type=tf.int32)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def translate(self, sentences):
            ids = self.tokenizer.tokenize(sentences)[:, : max_length - 1]
            eos_column = tf.RaggedTensor.from_tensor(tf.fill([tf.shape(sentences)[0], 1], EOS_ID))
            source = tf.concat([ids, eos_column], axis=1).to_tensor(default_value=0)
            out = translate_ids(
                self.model, source, max_length=max_length, beam_size=beam_size, alpha=alpha
            )
            out = tf.where(tf.equal(out, EOS_ID), tf.zeros_like(out), out)
            return self.tokenizer.detokenize(tf.RaggedTensor.from_tensor(out, padding=0))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentences")])
        def serving_default(self, sentences):
            return {"translations": self.translate(sentences)}

    return Translator()
