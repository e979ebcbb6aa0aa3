"""``export_saved_model``: strip, write a TensorFlow SavedModel, reload it and check its outputs.

TensorFlow is imported here only (the export format is TensorFlow's); the rest of the library
is backend-neutral.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
from keras import ops

from state_of_sparsity.sparsify import strip

__all__ = ["export_saved_model", "export_translator", "sample_inputs"]


def sample_inputs(model, batch_size: int = 2, seed: int = 0):
    """Random inputs matching ``model.inputs`` (floats ~ N(0, 1); integers 0), for checks."""
    rng = np.random.default_rng(seed)
    samples = []
    for tensor in model.inputs:
        shape = [batch_size if i == 0 else (d or 4) for i, d in enumerate(tensor.shape)]
        dtype = str(tensor.dtype)
        if "int" in dtype:
            samples.append(np.zeros(shape, dtype))
        else:
            samples.append(rng.standard_normal(shape).astype(dtype))
    return samples[0] if len(samples) == 1 else samples


def _stage(path):
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    return path, tempfile.mkdtemp(prefix=".export-", dir=parent)


def _publish(staging, path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.replace(staging, path)


def export_saved_model(model, path, sample_input=None, atol: float = 1e-5, **options):
    """Strips ``model`` and writes it as a SavedModel at ``path``; returns ``path``.

    The artifact has one endpoint, ``serve``, computing the eval-mode model. Before ``path``
    is written the export is reloaded with ``tf.saved_model.load`` and its output on
    ``sample_input`` (default: ``sample_inputs(model)``) compared with ``model(x, training=False)``;
    a max abs difference above ``atol`` raises ``RuntimeError`` and leaves ``path`` untouched.
    The export is written beside ``path`` first and moved into place only after the check,
    replacing an existing directory.

    ``options`` are eval options (e.g. a VD threshold), as for ``strip``.
    """
    import tensorflow as tf

    stripped = strip(model, **options)
    x = sample_inputs(model) if sample_input is None else sample_input
    expected = ops.convert_to_numpy(model(x, training=False))

    path, staging = _stage(path)
    try:
        stripped.export(staging, format="tf_saved_model", verbose=False)
        reloaded = tf.saved_model.load(staging)
        inputs = x if isinstance(x, (list, tuple)) else [x]
        got = np.asarray(reloaded.serve(*[tf.constant(v) for v in inputs]))
        diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
        if not diff <= atol:
            raise RuntimeError(
                f"The reloaded SavedModel differs from the eval-mode model by {diff:.3g} "
                f"(max abs) > atol={atol}; nothing was written to {path!r}."
            )
        _publish(staging, path)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
    return path


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

    path, staging = _stage(path)
    try:
        tf.saved_model.save(module, staging, signatures={"serving_default": module.serving_default})
        reloaded = tf.saved_model.load(staging)
        got = [t.decode() for t in reloaded.translate(samples).numpy()]
        if got != expected:
            raise RuntimeError(
                f"The reloaded translator gives {got!r}, the model {expected!r}; nothing was "
                f"written to {path!r}."
            )
        _publish(staging, path)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
    return path


def _translator_module(model, proto, max_length, beam_size, alpha):
    import tensorflow as tf
    import tensorflow_text as tf_text

    from state_of_sparsity.decoding import EOS_ID
    from state_of_sparsity.models.transformer import translate_ids

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
