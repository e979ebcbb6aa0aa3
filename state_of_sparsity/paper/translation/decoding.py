"""Batched autoregressive decoding for a seq2seq model: greedy and beam search (spec §5.5).

The paper decodes its Transformer with tensor2tensor's beam search (beam 4, length penalty
α = 0.6). This module reproduces that algorithm with ``keras.ops`` only, so one implementation runs
eagerly, inside ``tf.function`` (SavedModel serving signatures) and inside ``jax.jit``. All shapes
are static and the position loop is a ``keras.ops.while_loop``.

The model is seen through ``logits_fn(decoded, i)``:

- ``decoded``: int32 ``[N, max_length]``, the tokens generated so far at positions ``< i`` and
  ``PAD_ID`` at positions ``>= i``;
- ``i``: scalar int32 tensor, the output position being decoded;
- returns float logits ``[N, vocab]`` for the token at position ``i``; ``vocab`` is read from their
  static last dimension. Shifting right (``PAD_ID`` is also the start symbol) and causal masking are
  the caller's business.

Scoring, common to both searches: ``log p = log_softmax(float32(logits))`` over the whole
vocabulary, with ``log p(PAD_ID) = -inf`` afterwards (0 is padding and the start symbol, never an
output; the other tokens' log-probabilities are *not* renormalised). A hypothesis ends with
``eos_id``, which is part of it; positions after it hold ``PAD_ID``.
"""

from __future__ import annotations

import numbers

from keras import ops

__all__ = ["PAD_ID", "EOS_ID", "length_penalty", "greedy_search", "beam_search"]

PAD_ID = 0  # padding, and the start symbol fed at decoder position 0
EOS_ID = 1

_NEG_INF = float("-inf")


def length_penalty(length, alpha):
    """GNMT length penalty (Wu et al. 2016), as in tensor2tensor's beam search:

        lp(L) = ((5 + L) / 6) ** alpha

    ``length``/``alpha`` may be Python numbers (returns a float) or tensors (returns float32).
    """
    if isinstance(length, numbers.Real) and isinstance(alpha, numbers.Real):
        return ((5.0 + length) / 6.0) ** alpha
    return ops.power((5.0 + ops.cast(length, "float32")) / 6.0, alpha)


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")


def _check_batch_size(batch_size):
    """A Python int >= 1, or a scalar integer tensor (a dynamic batch inside ``tf.function``)."""
    if isinstance(batch_size, numbers.Integral) or not hasattr(batch_size, "dtype"):
        _check_int("batch_size", batch_size, 1)


def _check_eos(eos_id):
    _check_int("eos_id", eos_id, 0)
    if eos_id == PAD_ID:
        raise ValueError(f"`eos_id` must differ from PAD_ID={PAD_ID}.")


def _log_probs(logits, eos_id):
    """float32 ``log_softmax(logits)`` [N, vocab] with the PAD_ID column set to -inf."""
    vocab = logits.shape[-1]
    if vocab is None or vocab <= eos_id:
        raise ValueError(
            f"logits need a static vocabulary dimension > eos_id={eos_id}, got {vocab}."
        )
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    return ops.where(ops.equal(ops.arange(vocab, dtype="int32"), PAD_ID), _NEG_INF, log_probs)


def _write(seqs, i, tokens):
    """``seqs[..., i] = tokens`` without scatter: seqs [..., T], tokens [...]."""
    at_i = ops.equal(ops.arange(seqs.shape[-1], dtype="int32"), i)
    return ops.where(at_i, ops.expand_dims(tokens, -1), seqs)


def greedy_search(logits_fn, batch_size, max_length, eos_id=EOS_ID):
    """Greedy decoding: ``y_i = argmax_{v != PAD_ID} logits_fn(y_<i, i)[v]``.

    A row stops at its first ``eos_id`` (kept in the output; ``PAD_ID`` after it); the loop ends
    when every row has stopped or after ``max_length`` tokens.

    Returns int32 ids ``[batch_size, max_length]``.
    """
    _check_batch_size(batch_size)
    _check_int("max_length", max_length, 1)
    _check_eos(eos_id)

    def cond(i, ids, done):
        return ops.logical_and(ops.less(i, max_length), ops.logical_not(ops.all(done)))

    def body(i, ids, done):
        log_probs = _log_probs(logits_fn(ids, i), eos_id)
        tokens = ops.cast(ops.argmax(log_probs, axis=-1), "int32")
        tokens = ops.where(done, PAD_ID, tokens)
        return i + 1, _write(ids, i, tokens), ops.logical_or(done, ops.equal(tokens, eos_id))

    init = (
        ops.convert_to_tensor(0, "int32"),
        ops.zeros((batch_size, max_length), "int32"),
        ops.zeros((batch_size,), "bool"),
    )
    return ops.while_loop(cond, body, init)[1]


def beam_search(logits_fn, batch_size, max_length, beam_size=4, alpha=0.6, eos_id=EOS_ID):
    """tensor2tensor's beam search (``t2t beam_search.beam_search``; spec §5.5: beam 4, α 0.6).

    ``logits_fn`` sees ``N = batch_size * beam_size`` rows, row ``b * beam_size + k`` being
    hypothesis ``k`` of batch element ``b`` (repeat encoder outputs with
    ``ops.repeat(x, beam_size, axis=0)``).

    A finished hypothesis ``y`` of ``L`` tokens (EOS included) scores

        score(y) = sum_{j < L} log p(y_j | y_<j) / lp(L),    lp(L) = ((5 + L) / 6) ** alpha.

    Step ``i`` (hypotheses of ``i`` tokens -> ``i + 1``), per batch element, with ``k = beam_size``:

    1. extend each of the ``k`` alive hypotheses by every token: ``k * vocab`` candidates with
       raw log-probability ``logp(prefix) + log p(token)``;
    2. keep the best ``2k`` by raw log-probability;
    3. those ending in EOS join the finished set, competing with it by ``score``; the set keeps
       its best ``k``;
    4. the best ``k`` of the others become the alive hypotheses.

    At the last step (``i = max_length - 1``) every kept candidate is treated as finished with
    ``L = max_length``, EOS or not (t2t instead falls back to the alive hypotheses only when none
    finished). The loop also stops early, as t2t's ``_is_finished``, once for every batch element
    no alive hypothesis can beat the worst of the ``k`` finished ones (-inf while fewer than ``k``
    finished): since ``log p <= 0`` and ``lp`` grows with ``L`` (alpha >= 0),
    ``logp(best alive) / lp(max_length)`` bounds every future score, so stopping changes nothing.

    Returns ``(ids, scores)``: int32 ``[batch_size, beam_size, max_length]`` and float32
    ``[batch_size, beam_size]``, best first. Slots without a hypothesis (only when ``beam_size``
    exceeds the number of possible sequences) have score ``-inf`` and ids ``PAD_ID``.
    """
    _check_batch_size(batch_size)
    _check_int("max_length", max_length, 1)
    _check_int("beam_size", beam_size, 1)
    _check_eos(eos_id)
    if not isinstance(alpha, numbers.Real) or not alpha >= 0:
        raise ValueError(f"`alpha` must be a number >= 0, got {alpha!r}.")
    k = beam_size
    best_possible_penalty = length_penalty(max_length, alpha)

    def gather(seqs, index):
        """seqs [B, n, T], index [B, m] -> seqs[b, index[b, j]] as [B, m, T]."""
        n, m = seqs.shape[1], index.shape[1]
        rows = index + ops.expand_dims(ops.arange(batch_size, dtype="int32") * n, 1)
        flat = ops.take(
            ops.reshape(seqs, (batch_size * n, max_length)), ops.reshape(rows, (-1,)), 0
        )
        return ops.reshape(flat, (batch_size, m, max_length))

    def cond(i, alive_seqs, alive_log_probs, finished_seqs, finished_scores):
        bound = alive_log_probs[:, 0] / best_possible_penalty
        can_improve = ops.greater(bound, finished_scores[:, -1])
        return ops.logical_and(ops.less(i, max_length), ops.any(can_improve))

    def body(i, alive_seqs, alive_log_probs, finished_seqs, finished_scores):
        decoded = ops.reshape(alive_seqs, (batch_size * k, max_length))
        log_probs = _log_probs(logits_fn(decoded, i), eos_id)
        vocab = log_probs.shape[-1]
        candidates = ops.expand_dims(alive_log_probs, 2) + ops.reshape(
            log_probs, (batch_size, k, vocab)
        )
        top_log_probs, top = ops.top_k(ops.reshape(candidates, (batch_size, k * vocab)), 2 * k)
        top = ops.cast(top, "int32")
        tokens = ops.mod(top, vocab)
        top_seqs = _write(gather(alive_seqs, ops.floor_divide(top, vocab)), i, tokens)
        ends = ops.logical_or(ops.equal(tokens, eos_id), ops.equal(i, max_length - 1))

        alive_log_probs, index = ops.top_k(ops.where(ends, _NEG_INF, top_log_probs), k)
        alive_seqs = gather(top_seqs, ops.cast(index, "int32"))

        new_scores = ops.where(ends, top_log_probs / length_penalty(i + 1, alpha), _NEG_INF)
        finished_scores, index = ops.top_k(ops.concatenate([finished_scores, new_scores], 1), k)
        finished_seqs = gather(
            ops.concatenate([finished_seqs, top_seqs], 1), ops.cast(index, "int32")
        )
        return i + 1, alive_seqs, alive_log_probs, finished_seqs, finished_scores

    seqs = ops.zeros((batch_size, k, max_length), "int32")
    first_alive = ops.where(ops.equal(ops.arange(k, dtype="int32"), 0), 0.0, _NEG_INF)
    init = (
        ops.convert_to_tensor(0, "int32"),
        seqs,
        ops.tile(ops.expand_dims(ops.cast(first_alive, "float32"), 0), (batch_size, 1)),
        seqs,
        ops.full((batch_size, k), _NEG_INF, "float32"),
    )
    _, _, _, ids, scores = ops.while_loop(cond, body, init)
    ids = ops.where(ops.expand_dims(ops.isfinite(scores), 2), ids, PAD_ID)
    return ids, scores
