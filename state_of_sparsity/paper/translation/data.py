"""WMT-style translation input pipeline for the paper's Transformer benchmark (spec: WMT 2014
English→German, the Transformer "base" of Vaswani et al. 2017 trained with tensor2tensor).

Sources:
- a pair of parallel text files, plain or gzip (``read_parallel_files``): one sentence per line,
  UTF-8, line i of the source the translation of line i of the target — e.g. the toy corpus in
  ``testdata/translation`` or the WMT14 training data;
- tfds ``wmt14_translate/de-en`` (or any tfds translation dataset) from a prepared ``data_dir``
  (``tfds_pairs``); nothing is downloaded.

Vocabulary: like the paper's shared 32k wordpiece vocabulary (tensor2tensor's
``translate_ende_wmt32k``), one subword vocabulary for source and target — shared because the
Transformer ties its embeddings and softmax — by default a sentencepiece model trained in memory
(``Vocabulary``), with ids pad 0, EOS 1, UNK 2 and no BOS (t2t's reserved ids: PAD 0, EOS 1);
or the paper's own t2t vocabulary file (``subwords.SubwordVocabulary``, same PAD and EOS ids).

Batching (``make_dataset``), as tensor2tensor's ``data_reader.batching_scheme`` /
``bucket_by_sequence_length``: examples are grouped by length, length being max(source, target)
in tokens with EOS; the buckets' boundaries grow geometrically (t2t ``_bucket_boundaries``:
from 8 by ×1.1 up to ``max_length``) and a bucket whose lengths lie below a boundary b gets
``batch_tokens // b`` examples, so every batch holds at most ``batch_tokens`` tokens per side,
padding included — t2t's meaning of ``batch_size`` for text problems. The paper's Transformer
runs used ``batch_size`` 2048 tokens (t2t ``transformer_base``: ``max_length`` 256) and, on
TPUs, ``max_length`` 64.
"""

from __future__ import annotations

import codecs
import gzip
import io
import itertools
import re
from collections.abc import Iterable, Iterator

import numpy as np
import tensorflow as tf

from state_of_sparsity.paper.data.epochs import shuffled_epochs

__all__ = [
    "PAD_ID",
    "EOS_ID",
    "UNK_ID",
    "SHUFFLE_BUFFER",
    "read_parallel_files",
    "read_vocabulary_file",
    "tfds_pairs",
    "sentences_for_vocab",
    "Vocabulary",
    "clean_rows",
    "default_bucket_boundaries",
    "make_dataset",
]

# Sentencepiece ids (t2t's reserved ids: PAD 0, EOS 1). No BOS: the decoder starts from PAD.
PAD_ID, EOS_ID, UNK_ID = 0, 1, 2

SHUFFLE_BUFFER = 10_000  # training shuffle buffer, in sentence pairs
_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------
# Sources of sentence pairs


def _is_gzip(path) -> bool:
    return str(path).endswith(".gz")


def _count_lines(path) -> int:
    """Lines of a plain or gzip UTF-8 text file, streaming; a last line without "\\n" counts.

    Counts b"\\n" like ``tf.data.TextLineDataset`` splits; raises ValueError on bytes that are
    not UTF-8 or a corrupt gzip stream.
    """
    lines, last = 0, b"\n"
    decoder = codecs.getincrementaldecoder("utf-8")()
    with tf.io.gfile.GFile(path, "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if _is_gzip(path) else raw
        try:
            while chunk := stream.read(_CHUNK):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as e:
                    line = lines + chunk[: max(e.start, 0)].count(b"\n") + 1
                    raise ValueError(
                        f"{path!r} is not UTF-8 text (invalid bytes near line {line}: {e.reason})."
                    ) from None
                lines += chunk.count(b"\n")
                last = chunk[-1:]
            decoder.decode(b"", final=True)
        except (OSError, EOFError, tf.errors.OpError) as e:  # gzip.BadGzipFile: an OSError
            kind = "gzip file" if _is_gzip(path) else "file"
            raise ValueError(f"{path!r} is not a readable {kind}: {e}") from None
        except UnicodeDecodeError as e:
            raise ValueError(
                f"{path!r} is not UTF-8 text (it ends inside a character: {e.reason})."
            ) from None
    return lines + (last != b"\n")


def _text_lines(path) -> tf.data.Dataset:
    ds = tf.data.TextLineDataset(path, compression_type="GZIP" if _is_gzip(path) else "")
    # TextLineDataset splits at "\n" and drops it; also drop "\r" and other trailing blanks.
    return ds.map(lambda line: tf.strings.regex_replace(line, r"\s+$", ""))


def read_parallel_files(source_path, target_path) -> tf.data.Dataset:
    """A dataset of (source, target) ``tf.string`` scalars read from two parallel text files.

    Files: plain, or gzip when the name ends in ``.gz``; UTF-8, one sentence per line, line i of
    ``source_path`` translated by line i of ``target_path``; trailing whitespace (the newline,
    "\\r") is stripped. Any path ``tf.io.gfile`` reads works (local, ``gs://``). Both files are
    read once in Python first (streaming) to check them; ValueError, naming both paths, when a
    file is missing, empty, not UTF-8 or corrupt, or when their line counts differ.
    """
    source_path, target_path = str(source_path), str(target_path)
    names = f"source {source_path!r} and target {target_path!r}"
    for path in (source_path, target_path):
        if not tf.io.gfile.exists(path):
            raise ValueError(f"Parallel files {names}: {path!r} does not exist.")
        if tf.io.gfile.isdir(path):
            raise ValueError(f"Parallel files {names}: {path!r} is a directory, not a file.")
    source_lines, target_lines = _count_lines(source_path), _count_lines(target_path)
    if source_lines == 0 or target_lines == 0:
        raise ValueError(
            f"Parallel files {names}: empty ({source_lines} source lines, {target_lines} target "
            "lines); each needs one sentence per line."
        )
    if source_lines != target_lines:
        raise ValueError(
            f"Parallel files {names} have different line counts: {source_lines} source lines, "
            f"{target_lines} target lines; line i of one must be the translation of line i of "
            "the other."
        )
    return tf.data.Dataset.zip(_text_lines(source_path), _text_lines(target_path))


def tfds_pairs(
    split, data_dir, name="wmt14_translate/de-en", source="en", target="de"
) -> tf.data.Dataset:
    """(source, target) ``tf.string`` pairs of a tfds translation dataset in ``data_dir``.

    The dataset must be prepared in ``data_dir`` already (e.g. ``tfds build
    wmt14_translate/de-en --data_dir=...`` on a machine with network access): nothing is
    downloaded here. ``wmt14_translate/de-en`` holds ~4.5M training pairs, newstest2013 as
    ``validation`` and newstest2014 as ``test``; its features are the languages ``de`` and ``en``.
    Read in file order (``shuffle_files=False``), so the stream is deterministic.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(f"Unknown tfds dataset {name!r}.") from None
    languages = list(builder.info.features.keys())
    for argument, language in (("source", source), ("target", target)):
        if language not in languages:
            raise ValueError(
                f"`{argument}`={language!r} is not a language of tfds dataset {name!r}; it has "
                f"{languages}."
            )
    try:
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except AssertionError:  # tfds: "could not find data in ..." (not prepared there)
        raise ValueError(
            f"tfds dataset {name!r} is not prepared in --data_dir={data_dir!r}; prepare it there "
            f"(e.g. `tfds build {name} --data_dir=...` with network access): nothing is "
            "downloaded here."
        ) from None
    return ds.map(lambda ex: (ex[source], ex[target]), num_parallel_calls=tf.data.AUTOTUNE)


def sentences_for_vocab(pairs: tf.data.Dataset, max_sentences: int) -> Iterator[str]:
    """Source and target sentences of ``pairs``, interleaved (s0, t0, s1, t1, ...), at most
    ``max_sentences`` of them: the text a shared vocabulary is trained on."""
    if not isinstance(max_sentences, (int, np.integer)) or max_sentences < 1:
        raise ValueError(f"`max_sentences` must be a positive integer, got {max_sentences!r}.")
    count = 0
    batches = pairs.take((max_sentences + 1) // 2).batch(1024)  # batched: fewer Python steps
    for sources, targets in batches.as_numpy_iterator():
        for source, target in zip(sources, targets, strict=True):
            for sentence in (source, target):
                if count >= max_sentences:
                    return
                yield sentence.decode("utf-8")
                count += 1


# --------------------------------------------------------------------------------------------
# Vocabulary


def read_vocabulary_file(path) -> bytes:
    """The bytes of the vocabulary file ``path`` (any tf.io.gfile path); ValueError if it does
    not exist."""
    path = str(path)
    if not tf.io.gfile.exists(path):
        raise ValueError(f"Vocabulary file {path!r} does not exist.")
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


class Vocabulary:
    """A shared source/target sentencepiece model (the paper used one shared 32k wordpiece vocab;
    shared because embedding and softmax are tied).

    Ids: ``PAD_ID`` 0, ``EOS_ID`` 1, ``UNK_ID`` 2, no BOS. ``encode`` appends no EOS;
    ``make_dataset`` does. Build one with ``Vocabulary.train`` or ``Vocabulary.load``, or from a
    serialized model: ``Vocabulary(model_proto)``. (t2t's own ``.subwords`` files, the paper's
    vocabulary: ``subwords.SubwordVocabulary``.)
    """

    FILE_NAME = "vocab.model"  # its name in a run directory

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm

        if not isinstance(model_proto, (bytes, bytearray)) or not model_proto:
            raise ValueError("`model_proto` must be the non-empty bytes of a sentencepiece model.")
        processor = spm.SentencePieceProcessor()
        try:
            processor.load_from_serialized_proto(bytes(model_proto))
        except (RuntimeError, OSError) as e:
            raise ValueError(f"`model_proto` is not a sentencepiece model: {e}") from None
        ids = (processor.pad_id(), processor.eos_id(), processor.unk_id(), processor.bos_id())
        if ids != (PAD_ID, EOS_ID, UNK_ID, -1):
            raise ValueError(
                f"The sentencepiece model has pad/eos/unk/bos ids {ids}; this pipeline needs "
                f"{(PAD_ID, EOS_ID, UNK_ID, -1)} (pad 0, eos 1, unk 2, no bos)."
            )
        self._model_proto = bytes(model_proto)
        self._processor = processor

    @classmethod
    def train(
        cls,
        sentences: Iterable[str],
        vocab_size: int = 32000,
        *,
        model_type="unigram",
        character_coverage=1.0,
        max_sentences=1_000_000,
        seed=0,
    ) -> Vocabulary:
        """Trains a sentencepiece model on (at most ``max_sentences`` of) ``sentences``.

        Deterministic: the first ``max_sentences`` sentences are used, in order (sentencepiece's
        random sampling and shuffling of its input are off), with a fixed number of threads (16,
        sentencepiece's default: the unigram model depends on it) and sentencepiece's random
        generator seeded with ``seed``; the same text gives the same model bytes. In memory:
        nothing is written. ``character_coverage`` 1.0 keeps every character (right for
        European languages; sentencepiece suggests 0.9995 for CJK). ValueError, naming
        --vocab_size, when ``vocab_size`` is below what the text needs (its characters plus the 3
        special pieces) or above what it can give (sentencepiece's hard limit), with the allowed
        bound sentencepiece reports; or when there are no sentences.
        """
        import sentencepiece as spm

        if not isinstance(vocab_size, (int, np.integer)) or vocab_size < 4:
            raise ValueError(f"--vocab_size must be an integer >= 4, got {vocab_size!r}.")
        if model_type not in ("unigram", "bpe", "char", "word"):
            raise ValueError(
                f"`model_type` must be 'unigram', 'bpe', 'char' or 'word', got {model_type!r}."
            )
        if not 0.0 < character_coverage <= 1.0:
            raise ValueError(f"`character_coverage` must be in (0, 1], got {character_coverage!r}.")
        if not isinstance(max_sentences, (int, np.integer)) or max_sentences < 1:
            raise ValueError(f"`max_sentences` must be a positive integer, got {max_sentences!r}.")
        if isinstance(sentences, str):
            raise ValueError("`sentences` must be an iterable of sentences, not one string.")
        count = 0

        def stream():
            nonlocal count
            for sentence in itertools.islice(sentences, max_sentences):
                if isinstance(sentence, bytes):
                    sentence = sentence.decode("utf-8")
                if sentence:
                    count += 1
                    yield sentence

        spm.set_random_generator_seed(int(seed))
        writer = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=stream(),
                model_writer=writer,
                vocab_size=int(vocab_size),
                model_type=model_type,
                character_coverage=float(character_coverage),
                pad_id=PAD_ID,
                eos_id=EOS_ID,
                unk_id=UNK_ID,
                bos_id=-1,
                input_sentence_size=0,  # use every sentence given: no random sampling
                shuffle_input_sentence=False,
                num_threads=16,
                minloglevel=1,
            )
        except RuntimeError as e:
            raise _vocab_error(str(e), vocab_size, count) from None
        return cls(writer.getvalue())

    @classmethod
    def load(cls, path) -> Vocabulary:
        """The vocabulary saved at ``path`` (a sentencepiece ``.model`` file)."""
        return cls(read_vocabulary_file(path))

    def save(self, path) -> None:
        """Writes the serialized sentencepiece model to ``path`` (e.g. ``vocab.model``)."""
        with tf.io.gfile.GFile(str(path), "wb") as f:
            f.write(self._model_proto)

    @property
    def model_proto(self) -> bytes:
        """The serialized sentencepiece ``ModelProto``."""
        return self._model_proto

    @property
    def size(self) -> int:
        """Number of ids, specials included (the embedding/softmax size)."""
        return self._processor.get_piece_size()

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and self._model_proto == other._model_proto

    def __hash__(self):
        return hash(self._model_proto)

    def __repr__(self):
        return f"Vocabulary(size={self.size})"

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Ids of each text, without EOS."""
        if isinstance(texts, (str, bytes)):
            raise ValueError("`texts` must be a list of strings, not one string.")
        texts = [t.decode("utf-8") if isinstance(t, bytes) else t for t in texts]
        return self._processor.encode(texts, out_type=int)

    def decode(self, ids) -> list[str]:
        """Texts of a 2-D batch of ids: each row is cut at its first ``EOS_ID``; ``PAD_ID``s are
        dropped. Rows may be of different lengths (a list of lists)."""
        return self._processor.decode(clean_rows(ids, self.size))

    def tf_tokenizer(self):
        """``tensorflow_text.SentencepieceTokenizer`` of this model (int32 ids, no EOS), for use
        in graphs: tf.data, SavedModel serving. Gives the same ids as ``encode``."""
        import tensorflow_text as tf_text

        # A new one each call: its TF resource would not outlive keras.backend.clear_session().
        return tf_text.SentencepieceTokenizer(model=self._model_proto, out_type=tf.int32)


def clean_rows(ids, size: int) -> list[list[int]]:
    """The rows of a 2-D batch of ids (a list of lists or an array/tensor) as lists of ints, each
    cut at its first ``EOS_ID`` and without ``PAD_ID``s; ValueError for an id outside
    [0, ``size``)."""
    if hasattr(ids, "numpy"):
        ids = ids.numpy()
    rows = []
    for row in ids:
        row = np.asarray(row)
        if row.ndim != 1:
            raise ValueError(f"`ids` must be 2-D (a batch of id sequences); got a row {row!r}.")
        row = row.astype(np.int64).tolist()
        if EOS_ID in row:
            row = row[: row.index(EOS_ID)]
        row = [i for i in row if i != PAD_ID]
        bad = [i for i in row if not 0 <= i < size]
        if bad:
            raise ValueError(f"Ids {bad} are outside the vocabulary [0, {size}).")
        rows.append(row)
    return rows


def _vocab_error(message, vocab_size, count) -> ValueError:
    """A ValueError for sentencepiece's training error ``message``."""
    if count == 0:
        return ValueError("No sentences to train the vocabulary on (the input is empty).")
    low = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", message)
    if low:
        return ValueError(
            f"--vocab_size={vocab_size} is too small for this text: it needs at least "
            f"{low.group(2)} (its characters plus the 3 special pieces); lower "
            "`character_coverage` to drop rare characters."
        )
    high = re.search(
        r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", message
    )
    if high:
        return ValueError(
            f"--vocab_size={vocab_size} is too large for this text: sentencepiece made only "
            f"{high.group(2)} pieces from it; use --vocab_size <= {high.group(2)}, or more text."
        )
    return ValueError(f"Training the vocabulary (--vocab_size={vocab_size}) failed: {message}")


# --------------------------------------------------------------------------------------------
# Batching


def default_bucket_boundaries(max_length, min_length=8, length_bucket_step=1.1) -> list[int]:
    """tensor2tensor's ``data_reader._bucket_boundaries``: min_length, then ×step (at least +1)
    while below ``max_length``."""
    if length_bucket_step <= 1.0:
        raise ValueError(f"`length_bucket_step` must be > 1, got {length_bucket_step!r}.")
    x, boundaries = min_length, []
    while x < max_length:
        boundaries.append(x)
        x = max(x + 1, int(x * length_bucket_step))
    return boundaries


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"--{name} must be an integer >= {minimum}, got {value!r}.")


def make_dataset(
    pairs,
    vocab,
    *,
    batch_tokens=2048,
    max_length=256,
    training=True,
    seed=0,
    initial_step=0,
    bucket_boundaries=None,
) -> tf.data.Dataset:
    """Token-count batches ``((inputs, decoder_inputs), targets)`` of (source, target) ``pairs``.

    Each is int32 [batch, length], zero-padded (``PAD_ID``) to the longest row of its batch:
    ``inputs`` the source ids + EOS, ``targets`` the target ids + EOS, ``decoder_inputs`` the
    targets shifted right by one with ``PAD_ID`` in front (``[0] + targets[:-1]``), as t2t's
    ``shift_right``; source and target lengths differ. Sentences are tokenized in the graph
    (``vocab.tf_tokenizer()``, parallel map).

    Pairs where either side, EOS included, is longer than ``max_length`` tokens are dropped —
    in training, like t2t, and also in evaluation (unlike t2t's eval, which keeps them): an eval
    set read this way holds only the pairs within ``max_length``; score translation on the raw
    sentences instead.

    Batching as t2t's ``batching_scheme``: examples are bucketed
    (``tf.data.Dataset.bucket_by_sequence_length``) by max(source, target) length. The bucket
    [b_{i-1}, b_i) of ``bucket_boundaries`` (default ``default_bucket_boundaries``: t2t's 8,
    ×1.1, ... up to ``max_length``) gets batches of max(1, ``batch_tokens`` // b_i) examples, the
    last bucket [b_last, ``max_length``] batches of ``batch_tokens`` // ``max_length``, so a
    batch has at most ``batch_tokens`` tokens per side, padding included (t2t's ``batch_size``
    of text problems; t2t also rounds batch sizes down to divisors of a common window size,
    which this does not). Spec: ``batch_tokens`` 2048; ``max_length`` 256 (t2t
    ``transformer_base``) or 64 (the paper's TPU runs).

    ``training``: epoch after epoch forever, each shuffled with its own seed (a buffer of
    ``SHUFFLE_BUFFER`` pairs, seeded with (``seed``, epoch)) and batched on its own (the partial
    batches left in the buckets at the end of an epoch are emitted then, so an epoch gives the
    same number of batches whatever its order); the stream of batches is a deterministic
    function of (``pairs``, ``seed``) (see ``epochs.shuffled_epochs``). ``initial_step=N``
    resumes exactly where step N of an uninterrupted run was, at a cost bounded by the epoch,
    whatever N: at most one pass over the pairs counts an epoch's batches (tokenizing, without
    batching; it stops early when N lies in the first epoch), then the batches of N's epoch
    before N are skipped.
    Evaluation: one pass, no shuffle, a deterministic order (the bucketing reorders pairs;
    partial batches are kept).
    """
    _check_int("batch_tokens", batch_tokens, 1)
    _check_int("max_length", max_length, 2)
    _check_int("initial_step", initial_step, 0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"--seed must be an integer, got {seed!r}.")
    if batch_tokens < max_length:
        raise ValueError(
            f"--batch_tokens={batch_tokens} must be >= --max_length={max_length}: a batch must "
            "hold at least one example of the longest allowed length."
        )
    from state_of_sparsity.paper.translation.subwords import SubwordVocabulary

    if not isinstance(vocab, (Vocabulary, SubwordVocabulary)):
        raise ValueError(
            f"`vocab` must be a Vocabulary or SubwordVocabulary, got {type(vocab).__name__}."
        )
    if not isinstance(pairs, tf.data.Dataset):
        raise ValueError(f"`pairs` must be a tf.data.Dataset, got {type(pairs).__name__}.")
    scalar = tf.TensorSpec([], tf.string)
    spec = pairs.element_spec
    if not (
        isinstance(spec, tuple)
        and len(spec) == 2
        and all(isinstance(s, tf.TensorSpec) and scalar.is_compatible_with(s) for s in spec)
    ):
        raise ValueError(
            f"`pairs` must yield (source, target) tf.string scalars, got element_spec {spec}."
        )
    if bucket_boundaries is None:
        boundaries = default_bucket_boundaries(max_length)
    else:
        boundaries = list(bucket_boundaries)
        integers = all(
            isinstance(b, (int, np.integer)) and not isinstance(b, bool) for b in boundaries
        )
        if (
            not integers
            or any(not 1 <= b <= max_length for b in boundaries)
            or any(a >= b for a, b in zip(boundaries, boundaries[1:], strict=False))
        ):
            raise ValueError(
                f"`bucket_boundaries` must be strictly increasing integers in [1, --max_length="
                f"{max_length}], got {boundaries!r}."
            )
        boundaries = [int(b) for b in boundaries]
    batch_sizes = [max(1, batch_tokens // b) for b in boundaries] + [batch_tokens // max_length]

    tokenizer = vocab.tf_tokenizer()
    eos = tf.constant([EOS_ID], tf.int32)

    def tokenize(source, target):
        return (
            tf.concat([tokenizer.tokenize(source), eos], 0),
            tf.concat([tokenizer.tokenize(target), eos], 0),
        )

    def short_enough(source, target):
        return tf.logical_and(tf.size(source) <= max_length, tf.size(target) <= max_length)

    def as_model_inputs(inputs, targets):
        decoder_inputs = tf.pad(targets, [[0, 0], [1, 0]])[:, :-1]
        return (inputs, decoder_inputs), targets

    def batched(ds):
        ds = ds.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.filter(short_enough)
        ds = ds.bucket_by_sequence_length(
            lambda source, target: tf.maximum(tf.size(source), tf.size(target)),
            bucket_boundaries=boundaries,
            bucket_batch_sizes=batch_sizes,
            padded_shapes=([None], [None]),
            padding_values=(PAD_ID, PAD_ID),
        )
        return ds.map(as_model_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    options = tf.data.Options()
    options.deterministic = True
    ds = pairs.with_options(options)
    if not training:
        return batched(ds).prefetch(tf.data.AUTOTUNE)
    epoch = offset = 0
    if initial_step:
        lengths = ds.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        lengths = lengths.filter(short_enough).map(
            lambda source, target: tf.maximum(tf.size(source), tf.size(target))
        )
        epoch, offset = _locate(initial_step, lengths, boundaries, batch_sizes, max_length)

    stream = shuffled_epochs(ds, SHUFFLE_BUFFER, seed, epoch, transform=batched)
    if offset:
        stream = stream.skip(offset)
    return stream.with_options(options).prefetch(tf.data.AUTOTUNE)


def _locate(step, lengths, boundaries, batch_sizes, max_length) -> tuple[int, int]:
    """(epoch, batch within it) of batch ``step`` of the training stream. An epoch's batch count
    depends only on how many pairs fall in each bucket — ceil(count / batch size) per bucket, the
    last batch of each flushed, partial, at the epoch's end — not on their order, so it is
    counted from the ``lengths`` of the pairs, read until the epoch is known to hold more than
    ``step`` batches (then ``step`` lies in epoch 0), or to its end."""
    counts = np.zeros(len(batch_sizes), np.int64)
    sizes = np.asarray(batch_sizes, np.int64)
    for chunk in lengths.batch(1024).as_numpy_iterator():
        np.add.at(counts, np.searchsorted(boundaries, chunk, side="right"), 1)
        if int((counts // sizes).sum()) > step:
            return 0, step
    per_epoch = int((-(-counts // sizes)).sum())
    if not per_epoch:
        raise ValueError(f"No training pair fits in --max_length={max_length} tokens.")
    return divmod(step, per_epoch)
