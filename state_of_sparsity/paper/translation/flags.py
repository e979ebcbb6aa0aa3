"""The absl flags ``train_transformer`` and ``decode_transformer`` share (beam search, lengths).

Defined once here, so the two binaries can live in one process (see ``training/flags.py``).
"""

from __future__ import annotations

from absl import flags

flags.DEFINE_integer("beam_size", 4, "Beam size (1: greedy decoding).")
flags.DEFINE_float("alpha", 0.6, "Length penalty exponent: ((5 + len) / 6)^alpha.")
flags.DEFINE_integer(
    "max_length", None,
    "Longest sequence in tokens, EOS included: training pairs beyond it are dropped; decoding "
    "cuts sources to it and produces at most that many tokens (default: 256 for "
    "train_transformer, the run's own for decode_transformer).",
)  # fmt: skip
