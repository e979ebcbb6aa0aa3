"""The translation pipeline: the toy corpus, parallel files, tfds pairs, the sentencepiece
vocabulary and t2t-style token batching."""

import collections
import gzip
import importlib.util
import os

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow_only  # tf.data pipelines

TOY = os.path.join(os.path.dirname(os.path.dirname(__file__)), "testdata", "translation")
FILES = ("train.en.gz", "train.de.gz", "dev.en", "dev.de")
VOCAB_SIZE = 128  # the toy corpus allows about 35..185 unigram pieces


def toy(name):
    return os.path.join(TOY, name)


def read_lines(name):
    opener = gzip.open if name.endswith(".gz") else open
    with opener(toy(name), "rt", encoding="utf-8") as f:
        return f.read().splitlines()


@pytest.fixture(scope="module")
def vocab():
    from state_of_sparsity.paper.translation import data as translation

    sentences = [
        s
        for pair in zip(read_lines("train.en.gz"), read_lines("train.de.gz"), strict=True)
        for s in pair
    ]
    return translation.Vocabulary.train(sentences, VOCAB_SIZE)


def train_pairs(count=3000):
    from state_of_sparsity.paper.translation import data as translation

    return translation.read_parallel_files(toy("train.en.gz"), toy("train.de.gz")).take(count)


def dev_pairs():
    from state_of_sparsity.paper.translation import data as translation

    return translation.read_parallel_files(toy("dev.en"), toy("dev.de"))


def unpad(row):
    row = list(row)
    while row and row[-1] == 0:
        row.pop()
    return row


# --------------------------------------------------------------------------------------------
# The toy corpus


def test_toy_corpus_exists_and_regenerates_byte_identically(tmp_path):
    spec = importlib.util.spec_from_file_location("make_toy_corpus", toy("make_toy_corpus.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(str(tmp_path))
    for name in FILES:
        with open(toy(name), "rb") as f, open(tmp_path / name, "rb") as g:
            committed, regenerated = f.read(), g.read()
        if name.endswith(".gz"):
            assert gzip.decompress(committed) == gzip.decompress(regenerated), name
        assert committed == regenerated, name
    assert len(read_lines("train.en.gz")) == len(read_lines("train.de.gz")) == 20_000
    dev_en, dev_de = read_lines("dev.en"), read_lines("dev.de")
    assert len(dev_en) == len(dev_de) == 200
    assert not set(dev_en) & set(read_lines("train.en.gz"))
    assert any("-" in s for s in dev_en) and any(s.endswith(".") for s in dev_en)
    assert all(3 <= len(s.split()) <= 12 for s in dev_en)
    assert any(c in "".join(dev_de) for c in "äöüß")  # UTF-8 beyond ASCII


# --------------------------------------------------------------------------------------------
# Parallel files


def test_read_parallel_files_plain_and_gzip():
    pairs = list(dev_pairs().as_numpy_iterator())
    assert len(pairs) == 200
    assert [s.decode() for s, _ in pairs] == read_lines("dev.en")
    assert [t.decode() for _, t in pairs] == read_lines("dev.de")
    train = train_pairs(-1)  # all
    count = sum(len(s) for s, _ in train.batch(8192).as_numpy_iterator())
    assert count == 20_000
    first = next(train.as_numpy_iterator())
    assert first == tuple(
        s.encode() for s in (read_lines("train.en.gz")[0], read_lines("train.de.gz")[0])
    )


def test_read_parallel_files_strips_trailing_whitespace(tmp_path):
    from state_of_sparsity.paper.translation import data as translation

    (tmp_path / "a.en").write_bytes(b"one \r\ntwo\t\r\nthree")  # no final newline
    with gzip.open(tmp_path / "a.de.gz", "wb") as f:
        f.write("eins\ngrün  \ndrei\n".encode())
    pairs = translation.read_parallel_files(tmp_path / "a.en", tmp_path / "a.de.gz")
    assert list(pairs.as_numpy_iterator()) == [
        (b"one", b"eins"),
        (b"two", "grün".encode()),
        (b"three", b"drei"),
    ]


def test_read_parallel_files_errors(tmp_path):
    from state_of_sparsity.paper.translation import data as translation

    source, target, empty = tmp_path / "s.en", tmp_path / "t.de.gz", tmp_path / "e.de"
    source.write_text("a\nb\nc\n")
    with gzip.open(target, "wt") as f:
        f.write("x\ny\n")
    empty.write_text("")
    with pytest.raises(ValueError, match=r"different line counts: 3 source lines, 2 target") as e:
        translation.read_parallel_files(source, target)
    assert str(source) in str(e.value) and str(target) in str(e.value)
    with pytest.raises(ValueError, match=r"empty \(3 source lines, 0 target lines\)") as e:
        translation.read_parallel_files(source, empty)
    assert str(empty) in str(e.value)
    missing = tmp_path / "missing.de"
    with pytest.raises(ValueError, match="does not exist") as e:
        translation.read_parallel_files(source, missing)
    assert str(missing) in str(e.value) and str(source) in str(e.value)
    (tmp_path / "bad.de").write_bytes(b"ok\n\xff\xfe\n")
    with pytest.raises(ValueError, match="not UTF-8 text .*line 2"):
        translation.read_parallel_files(tmp_path / "bad.de", source)
    (tmp_path / "bad.de.gz").write_bytes(b"not gzip\n")
    with pytest.raises(ValueError, match="not a readable gzip file"):
        translation.read_parallel_files(source, tmp_path / "bad.de.gz")


def test_sentences_for_vocab_interleaves_and_limits():
    from state_of_sparsity.paper.translation import data as translation

    en, de = read_lines("dev.en"), read_lines("dev.de")
    assert list(translation.sentences_for_vocab(dev_pairs(), 5)) == [
        en[0],
        de[0],
        en[1],
        de[1],
        en[2],
    ]
    assert len(list(translation.sentences_for_vocab(dev_pairs(), 10_000))) == 400
    with pytest.raises(ValueError, match="max_sentences"):
        next(translation.sentences_for_vocab(dev_pairs(), 0))


def test_tfds_pairs_with_mock_data_and_unprepared_dir(tmp_path):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from state_of_sparsity.paper.translation import data as translation

    with tfds.testing.mock_data(num_examples=4):
        pairs = translation.tfds_pairs("train", str(tmp_path))
        assert pairs.element_spec == (tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.string))
        examples = list(pairs.as_numpy_iterator())
        assert len(examples) == 4 and all(s and t for s, t in examples)
        reverse = translation.tfds_pairs("test", str(tmp_path), source="de", target="en")
        assert len(list(reverse.as_numpy_iterator())) == 4
        with pytest.raises(ValueError, match=r"`source`='fr' is not a language .*\['de', 'en'\]"):
            translation.tfds_pairs("train", str(tmp_path), source="fr")
    with pytest.raises(ValueError, match="not prepared in --data_dir=.*nothing is downloaded"):
        translation.tfds_pairs("train", str(tmp_path))


# --------------------------------------------------------------------------------------------
# Vocabulary


def test_vocabulary_specials_and_round_trip(vocab):
    import sentencepiece as spm

    from state_of_sparsity.paper.translation import data as translation

    assert (translation.PAD_ID, translation.EOS_ID, translation.UNK_ID) == (0, 1, 2)
    assert vocab.size == VOCAB_SIZE
    processor = spm.SentencePieceProcessor(model_proto=vocab.model_proto)
    assert [processor.id_to_piece(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
    assert processor.bos_id() == -1
    dev = read_lines("dev.en") + read_lines("dev.de")
    ids = vocab.encode(dev)
    assert all(ids) and all(0 < i < VOCAB_SIZE and i != 1 for row in ids for i in row)
    assert vocab.decode(ids) == dev
    # Rows are cut at the first EOS; PAD is dropped.
    padded = [row + [1, 5, 0, 0] for row in ids[:3]]
    assert vocab.decode(np.array([r + [0] * (60 - len(r)) for r in padded])) == dev[:3]
    assert vocab.decode([[0] + ids[0]]) == dev[:1]
    assert 2 in vocab.encode(["der Ω hund"])[0]  # unseen character: UNK
    with pytest.raises(ValueError, match="not one string"):
        vocab.encode("the dog")
    with pytest.raises(ValueError, match="2-D"):
        vocab.decode([[[3]]])
    with pytest.raises(ValueError, match=r"outside the vocabulary \[0, 128\)"):
        vocab.decode([[3, 128]])


def test_vocabulary_save_load_and_deterministic_training(vocab, tmp_path):
    from state_of_sparsity.paper.translation import data as translation

    path = tmp_path / "vocab.model"
    vocab.save(path)
    loaded = translation.Vocabulary.load(path)
    assert loaded == vocab and loaded.model_proto == vocab.model_proto == path.read_bytes()
    # Same text, same model bytes: sentencepiece's input sampling and shuffling are off.
    text = read_lines("dev.en") + read_lines("dev.de")
    first = translation.Vocabulary.train(iter(text), 64, max_sentences=300)
    second = translation.Vocabulary.train(list(text), 64, max_sentences=300)
    assert first.model_proto == second.model_proto
    with pytest.raises(ValueError, match="does not exist"):
        translation.Vocabulary.load(tmp_path / "nothing.model")


def test_vocabulary_size_errors():
    from state_of_sparsity.paper.translation import data as translation

    text = read_lines("dev.en") + read_lines("dev.de")
    with pytest.raises(ValueError, match=r"--vocab_size=10 is too small .*at least \d+"):
        translation.Vocabulary.train(text, 10)
    with pytest.raises(ValueError, match=r"--vocab_size=50000 is too large .*<= \d+"):
        translation.Vocabulary.train(text, 50_000)
    with pytest.raises(ValueError, match="input is empty"):
        translation.Vocabulary.train([], 100)
    with pytest.raises(ValueError, match="--vocab_size must be an integer >= 4"):
        translation.Vocabulary.train(text, 0)


def test_tf_tokenizer_matches_encode(vocab):
    import tensorflow as tf

    texts = read_lines("dev.en")[:50] + read_lines("dev.de")[:50] + ["", "größe Ω x-y."]
    ragged = vocab.tf_tokenizer().tokenize(tf.constant(texts))
    assert ragged.dtype == tf.int32
    assert ragged.to_list() == vocab.encode(texts)


# --------------------------------------------------------------------------------------------
# Batching


def test_default_bucket_boundaries_are_t2ts():
    from state_of_sparsity.paper.translation import data as translation

    # t2t's data_reader._bucket_boundaries(64): 8, then max(x + 1, int(1.1 x)) while < 64.
    assert translation.default_bucket_boundaries(64) == [
        *range(8, 21),
        *(22, 24, 26, 28, 30, 33, 36, 39, 42, 46, 50, 55, 60),
    ]
    assert translation.default_bucket_boundaries(8) == []


def check_batch(batch, batch_tokens, max_length):
    (inputs, decoder_inputs), targets = batch
    assert inputs.dtype == decoder_inputs.dtype == targets.dtype == "int32"
    inputs, decoder_inputs, targets = inputs.numpy(), decoder_inputs.numpy(), targets.numpy()
    assert inputs.shape[0] == targets.shape[0] == decoder_inputs.shape[0] >= 1
    assert decoder_inputs.shape == targets.shape
    assert inputs.size <= batch_tokens and targets.size <= batch_tokens
    assert inputs.shape[1] <= max_length and targets.shape[1] <= max_length
    np.testing.assert_array_equal(decoder_inputs[:, 0], 0)
    np.testing.assert_array_equal(decoder_inputs[:, 1:], targets[:, :-1])
    for array in (inputs, targets):
        for row in array:
            row = unpad(row)
            assert row and row[-1] == 1 and 1 not in row[:-1] and 0 not in row
        assert array[:, -1].any()  # padded to the longest row of the batch, no further


def test_make_dataset_batches(vocab):
    from state_of_sparsity.paper.translation import data as translation

    ds = translation.make_dataset(train_pairs(), vocab, batch_tokens=256, max_length=24)
    assert ds.element_spec[1].shape.as_list() == [None, None]
    sizes = collections.Counter()
    for batch in ds.take(60):
        check_batch(batch, 256, 24)
        sizes[batch[1].shape[0]] += 1
    assert len(sizes) > 3  # several buckets


def test_make_dataset_is_deterministic_and_resumes(vocab):
    from state_of_sparsity.paper.translation import data as translation

    def batches(seed=0, initial_step=0, count=6):
        ds = translation.make_dataset(
            train_pairs(1500),
            vocab,
            batch_tokens=256,
            max_length=32,
            seed=seed,
            initial_step=initial_step,
        )
        return [tuple(x.numpy() for x in (i, d, t)) for (i, d), t in ds.take(count)]

    def same(a, b):
        return len(a) == len(b) and all(
            all(np.array_equal(x, y) for x, y in zip(p, q, strict=True))
            for p, q in zip(a, b, strict=True)
        )

    first = batches()
    assert same(first, batches())
    assert same(first[4:], batches(initial_step=4, count=2))
    assert not same(first[:2], batches(seed=1, count=2))


def test_resuming_far_into_training_reads_at_most_two_epochs(vocab):
    """Resuming at a step 20 epochs in gives the uninterrupted stream's batches, reading one
    epoch to count its batches and then the current one — not the 20 before it."""
    import tensorflow as tf

    from state_of_sparsity.paper.translation import data as translation

    tf.random.set_seed(0)  # the binaries' default; tf.data's seed helper trips on 0
    pairs = train_pairs(120)
    # One boundary at max_length: every batch holds 256 // 32 = 8 pairs, except the last of
    # each of the two buckets (lengths < 32, and 32), flushed at the end of an epoch.
    kwargs = {"batch_tokens": 256, "max_length": 32, "bucket_boundaries": [32], "seed": 3}
    lengths = [
        max(len(vocab.encode([s.decode()])[0]), len(vocab.encode([t.decode()])[0])) + 1
        for s, t in pairs.as_numpy_iterator()
    ]
    buckets = collections.Counter(length == 32 for length in lengths if length <= 32)
    per_epoch = sum(-(-count // 8) for count in buckets.values())
    step = 20 * per_epoch + per_epoch // 2

    straight = translation.make_dataset(pairs, vocab, **kwargs)
    expected = list(straight.skip(step).take(3).as_numpy_iterator())
    reads = tf.Variable(0, dtype=tf.int64)

    def count(source, target):
        reads.assign_add(1)
        return source, target

    resumed = translation.make_dataset(pairs.map(count), vocab, initial_step=step, **kwargs)
    got = list(resumed.take(3).as_numpy_iterator())
    assert len(got) == len(expected) == 3
    for ((i, d), t), ((i_ref, d_ref), t_ref) in zip(got, expected, strict=True):
        for x, y in ((i, i_ref), (d, d_ref), (t, t_ref)):
            np.testing.assert_array_equal(x, y)
    # One pass to count an epoch's batches, the current epoch (the shuffle buffer of 10,000
    # holds it whole), and read-ahead into the next.
    assert int(reads.numpy()) <= 3 * 120, int(reads.numpy())


def test_make_dataset_eval_has_every_pair_once(vocab):
    from state_of_sparsity.paper.translation import data as translation

    en, de = read_lines("dev.en"), read_lines("dev.de")
    expected = collections.Counter(
        (tuple(s + [1]), tuple(t + [1]))
        for s, t in zip(vocab.encode(en), vocab.encode(de), strict=True)
    )
    ds = translation.make_dataset(
        dev_pairs(), vocab, batch_tokens=512, max_length=64, training=False
    )
    seen = collections.Counter()
    for batch in ds:
        check_batch(batch, 512, 64)
        (inputs, _), targets = batch
        for s, t in zip(inputs.numpy(), targets.numpy(), strict=True):
            seen[(tuple(unpad(s)), tuple(unpad(t)))] += 1
    assert max(len(s) for s, _ in expected) <= 64 and max(len(t) for _, t in expected) <= 64
    assert seen == expected
    # Pairs longer than max_length are dropped in evaluation too.
    short = translation.make_dataset(
        dev_pairs(), vocab, batch_tokens=512, max_length=16, training=False
    )
    kept = sum(b[1].shape[0] for b in short)
    assert kept == sum(max(len(s), len(t)) <= 16 for s, t in expected.elements()) < 200


def test_make_dataset_errors(vocab):
    import tensorflow as tf

    from state_of_sparsity.paper.translation import data as translation

    pairs = dev_pairs()
    with pytest.raises(ValueError, match="--batch_tokens=32 must be >= --max_length=64"):
        translation.make_dataset(pairs, vocab, batch_tokens=32, max_length=64)
    with pytest.raises(ValueError, match="--max_length must be an integer >= 2, got 1"):
        translation.make_dataset(pairs, vocab, max_length=1)
    with pytest.raises(ValueError, match="--initial_step must be an integer >= 0"):
        translation.make_dataset(pairs, vocab, initial_step=-1)
    with pytest.raises(ValueError, match="`bucket_boundaries` must be strictly increasing"):
        translation.make_dataset(pairs, vocab, max_length=64, bucket_boundaries=[8, 8, 16])
    with pytest.raises(ValueError, match="`bucket_boundaries` must be strictly increasing"):
        translation.make_dataset(pairs, vocab, max_length=64, bucket_boundaries=[8, 100])
    with pytest.raises(ValueError, match="element_spec"):
        translation.make_dataset(tf.data.Dataset.range(3), vocab)
    ds = translation.make_dataset(
        pairs, vocab, batch_tokens=128, max_length=32, bucket_boundaries=[16]
    )
    sizes = {b[1].shape[0] for b in ds.take(20)}
    assert sizes <= {128 // 16, 128 // 32}
