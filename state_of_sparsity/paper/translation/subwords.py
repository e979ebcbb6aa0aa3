"""tensor2tensor's subword vocabulary files (``*.subwords``), the paper's vocabulary.

The paper's Transformer runs used t2t's ``translate_ende_wmt32k`` vocabulary,
``vocab.translate_ende_wmt32k.32768.subwords`` (33,288 ids; spec §0, §5.2, §5.5, shipped with
the reference's decode scripts). Training with that file (``train_transformer
--vocab_file=...subwords``) reproduces the paper's tokenization, hence its BLEU setting and the
embedding's share of the sparsified weights (33,288 × 512); the default sentencepiece vocabulary
(``data.Vocabulary``) is a stand-in for users without the file.

Why a reader of our own: tfds's ``deprecated.text.SubwordTextEncoder`` descends from t2t's but
does not read this format (it wants a ``### SubwordTextEncoder`` header line, shifts every id by
one for its padding id and encodes unknown characters as bytes), and tensor2tensor itself is
unmaintained (TF 1). The format and algorithm, as t2t's ``text_encoder.SubwordTextEncoder``:

- File: one subword per line, optionally wrapped in single or double quotes; the id of a subword
  is its line number from 0. t2t's reserved ids come first: ``<pad>_`` (0) and ``<EOS>_`` (1),
  which are ``PAD_ID`` and ``EOS_ID`` of this pipeline.
- Encode: split the text into maximal runs of alphanumeric (Unicode categories L*, N*) and
  other characters, dropping a single-space run between two words; escape each token (``\\`` →
  ``\\\\``, ``_`` → ``\\u``, a character outside the alphabet — the characters of all subwords
  plus ``\\_u;0123456789`` — → ``\\<code point>;``) and end it with ``_``; split it greedily
  into the longest subwords from the left.
- Decode: concatenate the subwords, split at ``_``, unescape each piece, and join the tokens,
  with a space between two alphanumeric ones.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np
import tensorflow as tf

from state_of_sparsity.paper.translation.data import (
    EOS_ID,
    PAD_ID,
    Vocabulary,
    clean_rows,
    read_vocabulary_file,
)

__all__ = ["RESERVED", "SubwordVocabulary", "load_vocabulary"]

RESERVED = ("<pad>_", "<EOS>_")  # t2t's reserved subwords: ids PAD_ID 0 and EOS_ID 1
_ESCAPE_CHARS = frozenset("\\_u;0123456789")
_UNESCAPE = re.compile(r"\\u|\\\\|\\([0-9]+);")


@functools.lru_cache(maxsize=1 << 16)
def _is_alnum(char: str) -> bool:
    return unicodedata.category(char)[0] in "LN"


def _tokenize(text: str) -> list[str]:
    """t2t ``tokenizer.encode``: runs of alphanumeric / other characters; a one-space run
    between two words is dropped (it is restored on decoding)."""
    if not text:
        return []
    tokens, start = [], 0
    for pos in range(1, len(text)):
        if _is_alnum(text[pos]) != _is_alnum(text[pos - 1]):
            token = text[start:pos]
            if token != " " or start == 0:
                tokens.append(token)
            start = pos
    tokens.append(text[start:])
    return tokens


def _detokenize(tokens: list[str]) -> str:
    """t2t ``tokenizer.decode``: a space between two alphanumeric tokens."""
    out = []
    for i, token in enumerate(tokens):
        if i and _is_alnum(tokens[i - 1][0]) and _is_alnum(token[0]):
            out.append(" ")
        out.append(token)
    return "".join(out)


def _escape(token: str, alphabet) -> str:
    token = token.replace("\\", "\\\\").replace("_", "\\u")
    return "".join(c if c in alphabet and c != "\n" else f"\\{ord(c)};" for c in token) + "_"


def _unescape(piece: str) -> str:
    def replace(match):
        if match.group(1) is None:
            return "_" if match.group(0) == "\\u" else "\\"
        try:
            return chr(int(match.group(1)))
        except (ValueError, OverflowError):
            return "\u3013"  # t2t's "undefined character"

    return _UNESCAPE.sub(replace, piece[:-1] if piece.endswith("_") else piece)


class SubwordVocabulary:
    """A t2t ``.subwords`` vocabulary with ``Vocabulary``'s interface (``size``, ``encode``,
    ``decode``, ``tf_tokenizer``, ``save``). Ids: ``PAD_ID`` 0, ``EOS_ID`` 1 (the file's first
    two lines must be t2t's ``<pad>_``, ``<EOS>_``); no UNK: unknown characters are escaped.
    ``name`` names the vocabulary in errors."""

    FILE_NAME = "vocab.subwords"  # its name in a run directory

    def __init__(self, subwords: list[str], name: str = "the subword vocabulary"):
        subwords = list(subwords)
        if tuple(subwords[:2]) != RESERVED:
            raise ValueError(
                f"{name} starts with {subwords[:2]!r}, not t2t's reserved {list(RESERVED)!r} "
                f"(ids PAD_ID={PAD_ID}, EOS_ID={EOS_ID}): not a tensor2tensor .subwords file?"
            )
        self.name = name
        self._subwords = subwords
        self._ids = {s: i for i, s in enumerate(subwords) if s}
        self._max_length = max(len(s) for s in subwords)
        self._alphabet = {c for s in subwords for c in s} | _ESCAPE_CHARS
        self._token_ids = functools.lru_cache(maxsize=1 << 20)(self._encode_token)

    @classmethod
    def load(cls, path) -> SubwordVocabulary:
        """The vocabulary of a t2t ``.subwords`` file (quotes around a line are removed)."""
        path = str(path)
        try:
            lines = read_vocabulary_file(path).decode("utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise ValueError(f"{path!r} is not UTF-8 text: {e.reason}.") from None
        subwords = []
        for line in lines:
            line = line.rstrip()
            if line[:1] == line[-1:] and line[:1] in ("'", '"'):
                line = line[1:-1]
            subwords.append(line)
        return cls(subwords, name=repr(path))

    def save(self, path) -> None:
        """Writes the vocabulary as a t2t ``.subwords`` file (one quoted subword a line)."""
        with tf.io.gfile.GFile(str(path), "wb") as f:
            f.write("".join(f"'{s}'\n" for s in self._subwords).encode("utf-8"))

    @property
    def size(self) -> int:
        """Number of ids, reserved ones included (the embedding/softmax size)."""
        return len(self._subwords)

    def __eq__(self, other):
        return isinstance(other, SubwordVocabulary) and self._subwords == other._subwords

    def __hash__(self):
        return hash(tuple(self._subwords))

    def __repr__(self):
        return f"SubwordVocabulary(size={self.size})"

    def _encode_token(self, token: str) -> tuple[int, ...]:
        escaped, ids, start = _escape(token, self._alphabet), [], 0
        while start < len(escaped):
            for end in range(min(len(escaped), start + self._max_length), start, -1):
                if escaped[start:end] in self._ids:
                    ids.append(self._ids[escaped[start:end]])
                    start = end
                    break
            else:
                raise ValueError(
                    f"{self.name} has no subword for {escaped[start]!r} (in the token "
                    f"{token!r}); a t2t vocabulary holds every character of its alphabet."
                )
        return tuple(ids)

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Ids of each text, without EOS."""
        if isinstance(texts, (str, bytes)):
            raise ValueError("`texts` must be a list of strings, not one string.")
        out = []
        for text in texts:
            text = text.decode("utf-8") if isinstance(text, bytes) else text
            out.append([i for token in _tokenize(text) for i in self._token_ids(token)])
        return out

    def decode(self, ids) -> list[str]:
        """Texts of a 2-D batch of ids: each row is cut at its first ``EOS_ID``; ``PAD_ID``s are
        dropped."""
        texts = []
        for row in clean_rows(ids, self.size):
            pieces = "".join(self._subwords[i] for i in row).split("_")
            tokens = [t for t in (_unescape(p + "_") for p in pieces if p) if t]
            texts.append(_detokenize(tokens))
        return texts

    def tf_tokenizer(self):
        """A tokenizer for tf.data graphs: ``tokenize(string scalar)`` -> int32 ids (no EOS),
        ``encode`` run in Python (``tf.py_function``), like t2t's own Python encoder. Not
        serializable into a SavedModel."""
        return _PyTokenizer(self)


class _PyTokenizer:
    def __init__(self, vocab: SubwordVocabulary):
        self._vocab = vocab

    def _encode(self, text):
        return np.asarray(self._vocab.encode([text.numpy()])[0], np.int32)

    def tokenize(self, text):
        ids = tf.py_function(self._encode, [text], tf.int32)
        ids.set_shape([None])
        return ids


def load_vocabulary(path):
    """The vocabulary file at ``path``: a t2t ``SubwordVocabulary`` when its name ends in
    ``.subwords``, else a sentencepiece ``Vocabulary``."""
    if str(path).endswith(".subwords"):
        return SubwordVocabulary.load(path)
    return Vocabulary.load(path)
