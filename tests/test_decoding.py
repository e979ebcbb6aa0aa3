"""Greedy and beam search (state_of_sparsity.paper.translation.decoding) against references
written from the formulas: exhaustive enumeration of all sequences, a plain-Python beam step,
and a NumPy greedy.

The toy model's logits depend on the whole prefix: a random table row indexed by the prefix's
hash (sum_j y_j * V**j) mod TABLE_ROWS. Generated tokens are never PAD = 0, so the hash is unique
for the short prefixes of the exhaustive test; collisions elsewhere are harmless (the references
use the same hash).
"""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from state_of_sparsity.paper.translation.decoding import (
    EOS_ID,
    PAD_ID,
    beam_search,
    greedy_search,
    length_penalty,
)

BACKEND = keras.backend.backend()


TABLE_ROWS = 509  # prime; small tables keep XLA compilation of the decoding loop fast


def random_tables(batch, vocab, scale=2.0, seed=0):
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal((batch, TABLE_ROWS, vocab))).astype("float32")


def prefix_logits_fn(tables, rows_per_element=1):
    """logits_fn whose row n reads tables[n // rows_per_element, code(prefix of row n)]."""
    batch, rows, vocab = tables.shape
    flat = ops.convert_to_tensor(tables.reshape(batch * rows, vocab))

    def logits_fn(decoded, i):
        powers = ops.convert_to_tensor(vocab ** np.arange(decoded.shape[1]), "int32")
        row = ops.mod(ops.sum(decoded * powers, axis=1), rows)
        element = ops.floor_divide(ops.arange(decoded.shape[0], dtype="int32"), rows_per_element)
        return ops.take(flat, element * rows + row, axis=0)

    return logits_fn


def np_log_probs(logits):
    """float64 log-softmax over the whole vocabulary, then log p(PAD) = -inf."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max()
    log_probs = shifted - np.log(np.exp(shifted).sum())
    log_probs[PAD_ID] = -np.inf
    return log_probs


def code(prefix, vocab):
    return sum(token * vocab**j for j, token in enumerate(prefix)) % TABLE_ROWS


def log_prob(table, seq):
    """sum_j log p(y_j | y_<j) of a sequence (a tuple of tokens)."""
    vocab = table.shape[1]
    return sum(np_log_probs(table[code(seq[:j], vocab)])[seq[j]] for j in range(len(seq)))


def np_score(table, seq, alpha):
    """score = sum log p / ((5 + L) / 6) ** alpha for a sequence of L tokens."""
    return log_prob(table, seq) / ((5 + len(seq)) / 6) ** alpha


def padded(seq, max_length):
    return list(seq) + [PAD_ID] * (max_length - len(seq))


def trimmed(ids):
    """Tokens up to and including the first EOS (all of them if there is none)."""
    ids = list(ids)
    return tuple(ids[: ids.index(EOS_ID) + 1] if EOS_ID in ids else ids)


def exhaustive(table, max_length, alpha):
    """Every complete sequence (ends in EOS, or max_length tokens without EOS), best first."""
    vocab = table.shape[1]
    words = [v for v in range(vocab) if v not in (PAD_ID, EOS_ID)]
    seqs = [p + (EOS_ID,) for n in range(max_length) for p in itertools.product(words, repeat=n)]
    seqs += list(itertools.product(words, repeat=max_length))
    return sorted(((np_score(table, s, alpha), s) for s in seqs), reverse=True)


def reference_beam(table, max_length, beam_size, alpha):
    """The documented beam step in plain Python (no early stop): [(score, seq)], best first."""
    vocab = table.shape[1]
    alive, finished = [(0.0, ())], []
    for i in range(max_length):
        candidates = [
            (lp + np_log_probs(table[code(seq, vocab)])[v], seq + (v,))
            for lp, seq in alive
            for v in range(1, vocab)
        ]
        candidates = sorted(candidates, reverse=True)[: 2 * beam_size]
        ends = [c for c in candidates if c[1][-1] == EOS_ID or i == max_length - 1]
        finished += [(lp / ((5 + i + 1) / 6) ** alpha, seq) for lp, seq in ends]
        finished = sorted(finished, reverse=True)[:beam_size]
        alive = [c for c in candidates if c not in ends][:beam_size]
    return finished


def assert_matches(ids, scores, expected):
    max_length = ids.shape[-1]
    np.testing.assert_array_equal(ids, [padded(seq, max_length) for _, seq in expected])
    np.testing.assert_allclose(scores, [score for score, _ in expected], rtol=1e-5, atol=1e-5)


def run_beam(tables, max_length, beam_size, alpha):
    logits_fn = prefix_logits_fn(tables, beam_size)
    ids, scores = beam_search(logits_fn, len(tables), max_length, beam_size, alpha)
    return ops.convert_to_numpy(ids), ops.convert_to_numpy(scores)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.5])
def test_beam_search_equals_exhaustive_search(alpha):
    # V = 4 (PAD, EOS, 2 words), T = 4: 16 alive hypotheses at most and 3 * 8 = 24 <= 2k
    # candidates per step, so a beam of 16 never prunes and must return the exact top 16.
    max_length, beam_size = 4, 16
    tables = random_tables(3, 4)
    ids, scores = run_beam(tables, max_length, beam_size, alpha)
    assert ids.dtype == np.int32 and scores.dtype == np.float32
    for b, table in enumerate(tables):
        ranked = exhaustive(table, max_length, alpha)
        assert min(ranked[j][0] - ranked[j + 1][0] for j in range(beam_size)) > 1e-4  # no ties
        assert_matches(ids[b], scores[b], ranked[:beam_size])


@pytest.mark.parametrize(("beam_size", "alpha"), [(1, 0.0), (1, 0.6), (2, 0.6), (3, 1.5)])
def test_small_beams_follow_the_documented_step(beam_size, alpha):
    # Small beams prune; a sharp model (scale 3) makes hypotheses end early, so the early stop
    # fires for some rows and must not change the result.
    max_length = 6
    tables = random_tables(4, 4, scale=3.0, seed=1)
    ids, scores = run_beam(tables, max_length, beam_size, alpha)
    for b, table in enumerate(tables):
        assert_matches(ids[b], scores[b], reference_beam(table, max_length, beam_size, alpha))


def test_beam_search_stops_early_once_no_alive_hypothesis_can_win():
    # EOS is ~e^20 times likelier than any word: with alpha = 0 after 2 steps the finished set
    # holds [EOS] and [w, EOS] (log p ~ -20) while every alive prefix has log p ~ -40.
    vocab, max_length = 4, 8
    tables = random_tables(2, vocab, scale=0.1)
    tables[..., EOS_ID] += 20.0
    calls = []
    logits_fn = prefix_logits_fn(tables, 2)

    def counting_logits_fn(decoded, i):
        calls.append(i)
        return logits_fn(decoded, i)

    ids, scores = beam_search(counting_logits_fn, 2, max_length, beam_size=2, alpha=0.0)
    for b, table in enumerate(tables):
        expected = reference_beam(table, max_length, 2, 0.0)
        assert_matches(ops.convert_to_numpy(ids)[b], ops.convert_to_numpy(scores)[b], expected)
        assert [len(seq) for _, seq in expected] == [1, 2]
    if BACKEND == "tensorflow":  # eager tf.while_loop runs the body in Python once per step
        assert len(calls) == 2


def np_greedy(table, max_length):
    seq = ()
    while len(seq) < max_length and EOS_ID not in seq:
        seq += (int(np.argmax(np_log_probs(table[code(seq, table.shape[1])]))),)
    return seq


def test_greedy_search_takes_the_argmax_and_never_pad():
    max_length = 5
    tables = random_tables(6, 4, seed=2)
    tables[..., PAD_ID] += 10.0  # PAD is the likeliest token everywhere, yet never generated
    ids = ops.convert_to_numpy(greedy_search(prefix_logits_fn(tables), 6, max_length))
    assert ids.shape == (6, max_length) and ids.dtype == np.int32
    expected = [padded(np_greedy(table, max_length), max_length) for table in tables]
    np.testing.assert_array_equal(ids, expected)
    assert any(EOS_ID in row for row in expected) and any(EOS_ID not in row for row in expected)


def eos_never_runner_up(tables, seed=3):
    """EOS's logit made the largest (p = 0.3) or the smallest of the non-PAD tokens per prefix."""
    tables = tables.copy()
    words = tables[..., 2:]
    top = np.random.default_rng(seed).random(tables.shape[:2]) < 0.3
    tables[..., EOS_ID] = np.where(top, words.max(-1) + 1.0, words.min(-1) - 1.0)
    return tables


def test_beam_size_one_equals_greedy_when_alpha_is_zero_and_eos_is_never_runner_up():
    # beam_size = 1 still keeps 2 candidates per step: the alive hypothesis is the greedy path
    # with EOS forbidden, and each time EOS is the runner-up a hypothesis ending there joins the
    # finished set. If EOS is never the runner-up, the only EOS candidate is greedy's own; with
    # alpha = 0 a later (longer) candidate cannot beat it, since log p only decreases.
    max_length = 6
    tables = eos_never_runner_up(random_tables(8, 5, seed=3))
    greedy = ops.convert_to_numpy(greedy_search(prefix_logits_fn(tables), 8, max_length))
    ids, _ = run_beam(tables, max_length, 1, 0.0)
    np.testing.assert_array_equal(ids[:, 0], greedy)


def test_beam_size_one_scores_at_least_greedy():
    # Greedy's sequence is always among beam-1's finished candidates (its tokens rank first), so
    # beam-1's normalized score is >= greedy's, for any alpha; it may differ in ids (next test).
    max_length = 6
    tables = random_tables(8, 5, seed=4)
    greedy = ops.convert_to_numpy(greedy_search(prefix_logits_fn(tables), 8, max_length))
    for alpha in [0.0, 0.6, 1.5]:
        _, scores = run_beam(tables, max_length, 1, alpha)
        for b, table in enumerate(tables):
            assert scores[b, 0] >= np_score(table, trimmed(greedy[b]), alpha) - 1e-5


def test_beam_size_one_differs_from_greedy_when_eos_is_runner_up():
    # Root: p(w2) = 0.5 > p(EOS) = 0.4; after [w2]: p(w2) = 0.45; after [w2, w2]: p(EOS) = 0.9.
    # Greedy: [w2, w2, EOS], p = 0.2025; beam-1 also finishes [EOS] (runner-up at step 0), p = 0.4.
    vocab, max_length = 4, 3
    probs = np.full((1, TABLE_ROWS, vocab), 1.0 / 3)
    probs[0, code((), vocab), 1:] = [0.4, 0.5, 0.1]
    probs[0, code((2,), vocab), 1:] = [0.3, 0.45, 0.25]
    probs[0, code((2, 2), vocab), 1:] = [0.9, 0.05, 0.05]
    probs[..., PAD_ID] = 1e-30
    tables = np.log(probs).astype("float32")
    greedy = ops.convert_to_numpy(greedy_search(prefix_logits_fn(tables), 1, max_length))
    np.testing.assert_array_equal(greedy, [[2, 2, EOS_ID]])
    ids, scores = run_beam(tables, max_length, 1, 0.0)
    np.testing.assert_array_equal(ids, [[[EOS_ID, PAD_ID, PAD_ID]]])
    np.testing.assert_allclose(scores, [[np.log(0.4)]], rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0, 2.5])
def test_length_penalty_formula(alpha):
    lengths = [1, 2, 7, 50, 256]
    expected = [((5 + n) / 6) ** alpha for n in lengths]
    np.testing.assert_allclose([length_penalty(n, alpha) for n in lengths], expected, rtol=1e-12)
    tensor = length_penalty(ops.convert_to_tensor(lengths, "int32"), alpha)
    assert ops.convert_to_numpy(tensor).dtype == np.float32
    np.testing.assert_allclose(ops.convert_to_numpy(tensor), expected, rtol=1e-6)
    assert length_penalty(1, alpha) == 1.0


def compiled(fn):
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    pytest.skip(f"no compiler wrapper for backend {BACKEND}")


def test_decoding_inside_jax_jit_or_tf_function():
    max_length, beam_size = 5, 3
    tables = random_tables(2, 5, seed=5)
    beam_fn = prefix_logits_fn(tables, beam_size)
    greedy_fn = prefix_logits_fn(tables)

    def decode():
        ids, scores = beam_search(beam_fn, 2, max_length, beam_size, 0.6)
        return ids, scores, greedy_search(greedy_fn, 2, max_length)

    for eager, traced in zip(decode(), compiled(decode)(), strict=True):
        np.testing.assert_allclose(
            ops.convert_to_numpy(traced), ops.convert_to_numpy(eager), rtol=1e-5
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"beam_size": 0}, "beam_size"),
        ({"max_length": 0}, "max_length"),
        ({"alpha": -0.1}, "alpha"),
        ({"eos_id": PAD_ID}, "eos_id"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_invalid_arguments_raise(kwargs, match):
    args = {"batch_size": 1, "max_length": 3, **kwargs}
    logits_fn = prefix_logits_fn(random_tables(1, 4))
    with pytest.raises(ValueError, match=match):
        beam_search(logits_fn, **args)
    if "beam_size" not in kwargs and "alpha" not in kwargs:
        with pytest.raises(ValueError, match=match):
            greedy_search(logits_fn, **args)
