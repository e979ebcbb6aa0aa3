"""The sparse Transformer: tied embedding used three times, penalty counted once, masking,
positions, loss, sparsify / strip / save round trips, greedy translation (spec §5)."""

import math

import keras
import numpy as np
import pytest
from keras import ops

import state_of_sparsity as sos
from state_of_sparsity.layers.registry import TiedEmbedding
from state_of_sparsity.paper.models.transformer import (
    PRESETS,
    Transformer,
    timing_signal,
    transformer,
    translate_ids,
)
from state_of_sparsity.paper.training.losses import PaddedSequenceCrossentropy

VOCAB = 23
SCHEDULE = sos.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=10, frequency=1)


def small(**kwargs):
    keras.utils.set_random_seed(0)
    args = {"num_layers": 1, "hidden_size": 16, "filter_size": 32, "num_heads": 2}
    args.update(dropout=0.0, attention_dropout=0.0, relu_dropout=0.0)
    return transformer("tiny", VOCAB, **{**args, **kwargs})


def batch():
    source = np.array([[5, 6, 7, 8, 1, 0], [9, 10, 1, 0, 0, 0]], "int32")
    decoder_inputs = np.array([[0, 11, 12, 13], [0, 14, 15, 0]], "int32")
    return source, decoder_inputs


def np_(x):
    return ops.convert_to_numpy(x)


def test_timing_signal_matches_formula():
    length, channels = 7, 10
    n = channels // 2
    inv = np.exp(np.arange(n) * -(math.log(1e4) / (n - 1)))
    scaled = np.arange(length)[:, None] * inv[None, :]
    expected = np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1)
    np.testing.assert_allclose(np_(timing_signal(length, channels)), expected, atol=1e-5)


@pytest.mark.tensorflow_only  # 61M weights to initialise: counted once, on the default backend
def test_presets_and_base_sparsifiable_count():
    assert PRESETS["tiny"] == {
        "num_layers": 2, "hidden_size": 128, "filter_size": 512, "num_heads": 4,
    }  # fmt: skip
    # Spec §5.2: 72 attention matrices of 512², 24 FFN matrices, embedding 33,288 x 512.
    model = sos.sparsify(transformer("base", 33288), "variational_dropout", seed=0)
    report = sos.sparsity_report(model)
    assert len(report.layers) == 72 + 24 + 1
    expected = 72 * 512 * 512 + 24 * 512 * 2048 + 33288 * 512
    assert report.weights == expected
    assert abs(expected - 61.1e6) < 0.05e6


def test_shared_embedding_is_one_tensor_with_one_mask_used_three_times():
    model = sos.sparsify(small(), "magnitude_pruning", schedule=SCHEDULE)
    wrappers = dict(sos.traversal.wrappers(model))
    embedding = wrappers["shared_embedding"]
    assert isinstance(embedding.layer, TiedEmbedding)
    tables = [v for v in model.weights if tuple(v.shape) == (VOCAB, 16)]
    assert {v.name for v in tables} == {"embeddings", "mask"}
    rng = np.random.default_rng(0)
    mask = (rng.random((VOCAB, 16)) > 0.5).astype("float32")
    embedding.mask.assign(mask)
    table = np_(embedding.kernel) * mask
    ids = np.array([[3, 4, 0]], "int32")
    np.testing.assert_allclose(np_(embedding(ids)), table[ids], atol=1e-6)
    x = rng.standard_normal((2, 5, 16)).astype("float32")
    np.testing.assert_allclose(np_(embedding(x, reverse=True)), x @ table.T, atol=1e-5)
    # The model's logits are the masked table in reverse; both lookups use it too: a token whose
    # row is masked out entirely looks like padding to the model except for its position.
    states = rng.standard_normal((3, 16)).astype("float32")
    np.testing.assert_allclose(np_(model.logits(states)), states @ table.T, atol=1e-5)
    source, decoder_inputs = batch()
    before = np_(model((source, decoder_inputs), training=False))
    mask[11] = 0.0  # token 11 appears only in the decoder inputs
    embedding.mask.assign(mask)
    after = np_(model((source, decoder_inputs), training=False))
    assert not np.allclose(before[0, 1:], after[0, 1:])  # the decoder lookup uses the mask
    np.testing.assert_array_equal(after[..., 11], 0.0)  # so does the softmax: logit 11 is 0
    keep = np.arange(VOCAB) != 11
    np.testing.assert_allclose(before[1][:, keep], after[1][:, keep], atol=1e-4)  # no token 11


@pytest.mark.parametrize("technique", ["variational_dropout", "l0_regularization"])
def test_penalty_counted_once_per_step(technique):
    model = sos.sparsify(small(), technique, seed=1)
    wrappers = [w for _, w in sos.traversal.wrappers(model)]
    for w in wrappers:
        w.set_regularizer_weight(sos.Ramp(1.0))
    source, decoder_inputs = batch()
    model((source, decoder_inputs), training=True)
    expected = sum(float(np_(w.penalty())) for w in wrappers)
    got = sum(float(np_(loss)) for loss in model.losses)
    assert len(model.losses) == len(wrappers)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert all(int(np_(w.step)) == 1 for w in wrappers)


def test_reverse_of_penalized_wrappers():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 8)).astype("float32")
    vd = sos.layers.VariationalDropout(
        TiedEmbedding(11, 8), log_sigma2_init=-30.0, clip_log_alpha=None, seed=0
    )
    vd.build((None,))
    theta = np_(vd.kernel)
    # log sigma^2 = -30, unclipped: the noise std is sqrt(x²·σ² + 1e-8) ~ 1e-4.
    np.testing.assert_allclose(np_(vd(x, training=True, reverse=True)), x @ theta.T, atol=1e-3)
    log_alpha = -30.0 - np.log(theta**2 + 1e-8)
    keep = (log_alpha < 3.0).astype("float32")
    np.testing.assert_allclose(np_(vd(x, reverse=True)), x @ (theta * keep).T, atol=1e-5)
    assert int(np_(vd.step)) == 0  # reverse calls add no penalty and do not tick
    l0 = sos.layers.L0Regularization(TiedEmbedding(11, 8), seed=0)
    l0.build((None,))
    gate = np.clip(1 / (1 + np.exp(-np_(l0.log_alpha))) * 1.2 - 0.1, 0, 1)
    expected = x @ (np_(l0.kernel) * gate).T
    np.testing.assert_allclose(np_(l0(x, reverse=True)), expected, atol=1e-5)


def test_decoder_is_causal_and_source_padding_is_ignored():
    model = small()
    source, decoder_inputs = batch()
    logits = np_(model((source, decoder_inputs), training=False))
    changed = decoder_inputs.copy()
    changed[:, 3] = 20
    other = np_(model((source, changed), training=False))
    np.testing.assert_allclose(logits[:, :3], other[:, :3], atol=1e-5)
    assert not np.allclose(logits[:, 3], other[:, 3])
    padded = np.pad(source, [[0, 0], [0, 3]])
    np.testing.assert_allclose(np_(model((padded, decoder_inputs))), logits, atol=1e-5)


def test_padded_sequence_crossentropy_matches_t2t_formula():
    rng = np.random.default_rng(2)
    v, ls = 7, 0.1
    logits = rng.standard_normal((2, 4, v)).astype("float32")
    labels = np.array([[3, 1, 0, 0], [2, 5, 6, 1]])
    confidence, low = 1 - ls, ls / (v - 1)
    target = np.full((2, 4, v), low)
    np.put_along_axis(target, labels[..., None], confidence, axis=-1)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    xent = -(target * log_p).sum(-1)
    xent -= -(confidence * np.log(confidence) + (v - 1) * low * np.log(low))
    weights = labels != 0
    expected = (xent * weights).sum() / weights.sum()
    got = PaddedSequenceCrossentropy(v, ls)(labels, logits)
    np.testing.assert_allclose(float(np_(got)), expected, rtol=1e-5)
    perfect = np.where(target > 0.5, 50.0, 0.0).astype("float32")
    assert float(np_(PaddedSequenceCrossentropy(v, 0.0)(labels, perfect))) < 1e-6


@pytest.mark.parametrize(
    "technique", ["magnitude_pruning", "random_pruning", "variational_dropout", "l0_regularization"]
)
def test_sparsify_strip_and_keras_round_trip(technique, tmp_path):
    dense = small()
    kwargs = {"schedule": SCHEDULE} if "pruning" in technique else {}
    model = sos.sparsify(dense, technique, seed=3, **kwargs)
    assert isinstance(model, Transformer) and dense.layer_wrappers == {}
    assert len(sos.traversal.wrappers(model)) == 4 + 2 + 4 + 4 + 2 + 1
    for _, w in sos.traversal.wrappers(model):
        if isinstance(w, sos.layers.PruningWrapper):
            w.update_mask(10)
    source, decoder_inputs = batch()
    expected = np_(model((source, decoder_inputs), training=False))
    stripped = sos.strip(model)
    assert sos.traversal.wrappers(stripped) == []
    np.testing.assert_allclose(np_(stripped((source, decoder_inputs))), expected, atol=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(np_(reloaded((source, decoder_inputs))), expected, atol=1e-5)


def test_greedy_translation_equals_step_by_step_argmax():
    model = small()
    source, _ = batch()
    got = np_(translate_ids(model, source, max_length=5, beam_size=1))
    decoded = np.zeros((2, 5), "int32")
    done = np.zeros(2, bool)
    for i in range(5):
        decoder_inputs = np.pad(decoded[:, :-1], [[0, 0], [1, 0]])
        logits = np_(model((source, decoder_inputs), training=False))[:, i]
        logits[:, 0] = -np.inf
        token = np.where(done, 0, logits.argmax(-1))
        decoded[:, i] = token
        done |= token == 1
    np.testing.assert_array_equal(got, decoded)


def test_clear_errors():
    with pytest.raises(ValueError, match="preset"):
        transformer("huge", 10)
    with pytest.raises(ValueError, match="multiple of `num_heads`"):
        Transformer(10, hidden_size=10, num_heads=4)
    with pytest.raises(ValueError, match="dropout"):
        Transformer(10, dropout=1.0)
    with pytest.raises(ValueError, match="lookup"):
        sos.layers.MagnitudePruning(keras.layers.Dense(3), schedule=SCHEDULE)(
            np.ones((1, 2), "float32"), reverse=True
        )
