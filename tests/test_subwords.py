"""t2t .subwords vocabularies (paper/translation/subwords.py): the paper's vocabulary format,
its ids (PAD 0, EOS 1), and train_transformer's --vocab_file."""

import numpy as np
import pytest
from absl import flags

from state_of_sparsity.paper.translation import data, subwords

pytestmark = pytest.mark.tensorflow_only

WORDS = ["Hello_", "world_", "cat_", ", _", "._"]
CHARS = sorted(set("Hello, world! The cat sat.") | set("\\_u;0123456789"))
LINES = [*subwords.RESERVED, *WORDS, *CHARS]
SENTENCE = "Hello, world! The cat sat in the café_bar."


@pytest.fixture
def vocab_file(tmp_path):
    """A t2t-style file: quoted lines, reserved ids first, every alphabet character alone."""
    path = tmp_path / "vocab.toy.subwords"
    path.write_text("".join(f"'{line}'\n" for line in LINES), encoding="utf-8")
    return str(path)


def test_ids_are_the_file_lines_and_pad_eos_are_reserved(vocab_file):
    vocab = subwords.SubwordVocabulary.load(vocab_file)
    assert vocab.size == len(LINES)
    assert LINES.index("<pad>_") == data.PAD_ID and LINES.index("<EOS>_") == data.EOS_ID
    # "Hello", ", ", "world" escape to "Hello_", ", _", "world_": one subword each; "The" has
    # no subword of its own: greedy single characters, then the end-of-token "_".
    got = vocab.encode(["Hello, world The"])[0]
    want = [LINES.index(s) for s in ("Hello_", ", _", "world_", "T", "h", "e", "_")]
    assert got == want


def test_round_trip_with_escapes_and_unknown_characters(vocab_file):
    """ "é" is outside the alphabet (escaped as \\233;) and "_" is escaped as \\u."""
    vocab = subwords.SubwordVocabulary.load(vocab_file)
    (ids,) = vocab.encode([SENTENCE])
    assert min(ids) > data.EOS_ID  # text never encodes to PAD or EOS
    assert vocab.decode([ids]) == [SENTENCE]
    padded = [[data.PAD_ID, *ids, data.EOS_ID, *ids], ids]
    assert vocab.decode(padded) == [SENTENCE, SENTENCE]  # cut at EOS, PAD dropped
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([[vocab.size]])


def test_save_load_and_format_errors(vocab_file, tmp_path):
    vocab = subwords.SubwordVocabulary.load(vocab_file)
    vocab.save(tmp_path / "copy.subwords")
    assert subwords.load_vocabulary(tmp_path / "copy.subwords") == vocab
    (tmp_path / "bad.subwords").write_text("'the_'\n'<pad>_'\n")
    with pytest.raises(ValueError, match="not t2t's reserved"):
        subwords.SubwordVocabulary.load(tmp_path / "bad.subwords")
    few = subwords.SubwordVocabulary([*subwords.RESERVED, "a", "_"], name="few")
    # "b" is outside few's alphabet, so escaped as \98; whose "\" few lacks.
    with pytest.raises(ValueError, match=r"few has no subword for '\\\\' \(in the token 'ab'\)"):
        few.encode(["ab"])


def test_make_dataset_tokenizes_with_it(vocab_file):
    import tensorflow as tf

    vocab = subwords.SubwordVocabulary.load(vocab_file)
    pairs = tf.data.Dataset.from_tensor_slices(([SENTENCE], ["Hello, world."]))
    ((inputs, decoder_inputs), targets), *_ = data.make_dataset(
        pairs, vocab, batch_tokens=64, max_length=64, training=False
    ).as_numpy_iterator()
    np.testing.assert_array_equal(inputs[0], [*vocab.encode([SENTENCE])[0], data.EOS_ID])
    np.testing.assert_array_equal(targets[0], [*vocab.encode(["Hello, world."])[0], data.EOS_ID])
    assert decoder_inputs[0, 0] == data.PAD_ID


def test_train_transformer_vocab_file(vocab_file, tmp_path):
    from state_of_sparsity.paper.cli import train_transformer
    from state_of_sparsity.paper.training.errors import UsageError

    def parse(*argv):
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["train_transformer", f"--output_dir={tmp_path / 'run'}",
                     "--data_dir=/nonexistent", *argv])  # fmt: skip
        train_transformer.validate()

    try:
        parse(f"--vocab_file={vocab_file}", "--noexport")
        vocab, new = train_transformer.vocabulary(None)  # no text read: the file is the vocabulary
        assert isinstance(vocab, subwords.SubwordVocabulary) and new
        (tmp_path / "run").mkdir()
        train_transformer.save_vocabulary(vocab)
        assert train_transformer.vocabulary(None) == (vocab, False)  # the run's copy
        assert (tmp_path / "run" / "vocab.subwords").is_file()
        with pytest.raises(UsageError, match="needs --noexport"):
            parse(f"--vocab_file={vocab_file}")
        with pytest.raises(UsageError, match=r"--vocab_file=vocab.txt must be .*\*\.subwords"):
            parse("--vocab_file=vocab.txt", "--noexport")
    finally:
        flags.FLAGS.unparse_flags()
