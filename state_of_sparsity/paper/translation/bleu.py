"""BLEU: sacreBLEU on detokenized text, and the paper's tokenized "MOSES BLEU" (spec §5.5).

The paper scores newstest2014 with tensor2tensor's ``get_ende_bleu.sh``:

1. ``replace-unicode-punctuation.perl``;
2. ``tokenizer.perl -l de``;
3. compound splitting, ``perl -ple 's{(\\S)-(\\S)}{$1 ##AT##-##AT## $2}g'``, on hypothesis and
   reference;
4. ``multi-bleu.perl`` (case-sensitive corpus BLEU-4, brevity penalty, no smoothing).

``tokenized_bleu`` does the same with the Moses perl scripts replaced by sacremoses
(``MosesPunctNormalizer.replace_unicode_punct``, ``MosesTokenizer``) and multi-bleu.perl by
sacreBLEU with ``tokenize="none", smooth_method="none"``, which computes the same formula.
Unlike the paper, which used a shipped pre-tokenized reference, the raw reference goes through
steps 1-3 too. Moses' default HTML escaping is skipped: it maps tokens one to one on both sides,
so it cannot change the score.
"""

from __future__ import annotations

import functools
import re

import sacrebleu
from sacremoses import MosesPunctNormalizer, MosesTokenizer

__all__ = ["compound_split", "sacrebleu_bleu", "tokenized_bleu"]

_COMPOUND = re.compile(r"(\S)-(\S)")


def _check(hypotheses, references):
    for name, texts in (("hypotheses", hypotheses), ("references", references)):
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"`{name}` must be a list of strings.")
    if not hypotheses or len(hypotheses) != len(references):
        raise ValueError(
            "need as many hypotheses as references, at least one: "
            f"got {len(hypotheses)} and {len(references)}."
        )


def sacrebleu_bleu(hypotheses: list[str], references: list[str]) -> float:
    """``sacrebleu.corpus_bleu`` (default 13a tokenization and settings) on detokenized text, in
    [0, 100]; one reference per hypothesis."""
    _check(hypotheses, references)
    return sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score


def compound_split(text: str) -> str:
    """``X-Y`` -> ``X ##AT##-##AT## Y``, as get_ende_bleu.sh's Perl substitution
    ``s{(\\S)-(\\S)}{$1 ##AT##-##AT## $2}g``.

    Matches do not overlap, as in Perl: ``"a-b-c"`` becomes ``"a ##AT##-##AT## b-c"``; a hyphen
    next to a space (``"a - b"``) is left alone.
    """
    return _COMPOUND.sub(r"\1 ##AT##-##AT## \2", text)


@functools.cache
def _moses(lang):
    return MosesPunctNormalizer(lang=lang), MosesTokenizer(lang=lang)


def _tokenize(text, lang):
    normalizer, tokenizer = _moses(lang)
    text = normalizer.replace_unicode_punct(text)
    return compound_split(tokenizer.tokenize(text, escape=False, return_str=True))


def tokenized_bleu(hypotheses: list[str], references: list[str], lang: str = "de") -> float:
    """The paper's "MOSES BLEU" (get_ende_bleu.sh, spec §5.5), in [0, 100].

    Both sides: unicode punctuation replacement, Moses tokenization (``lang``), compound split.
    Then multi-bleu.perl's corpus BLEU over the whitespace tokens, case-sensitive:

        p_n  = sum_s sum_g min(count_hyp(g), count_ref(g)) / sum_s (#n-grams of hyp s), n = 1..4
        BP   = exp(1 - r / c) if c < r else 1     (c, r: total hypothesis / reference tokens)
        BLEU = 100 * BP * exp(mean_n log p_n)     (0 if any p_n = 0; no smoothing)
    """
    _check(hypotheses, references)
    hyp = [_tokenize(text, lang) for text in hypotheses]
    ref = [_tokenize(text, lang) for text in references]
    return sacrebleu.corpus_bleu(
        hyp, [ref], tokenize="none", smooth_method="none", force=True
    ).score
