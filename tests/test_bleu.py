"""BLEU (state_of_sparsity.paper.translation.bleu) against multi-bleu.perl's formula, written
out independently."""

import math
from collections import Counter

import numpy as np
import pytest

from state_of_sparsity.paper.translation.bleu import compound_split, sacrebleu_bleu, tokenized_bleu


def multi_bleu(hypotheses, references):
    """multi-bleu.perl on whitespace tokens: corpus p_1..p_4, BP = exp(1 - r/c) if c < r."""
    correct, total, c, r = np.zeros(4), np.zeros(4), 0, 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        hyp, ref = hyp.split(), ref.split()
        c, r = c + len(hyp), r + len(ref)
        for n in range(1, 5):
            hyp_grams = Counter(tuple(hyp[j : j + n]) for j in range(len(hyp) - n + 1))
            ref_grams = Counter(tuple(ref[j : j + n]) for j in range(len(ref) - n + 1))
            correct[n - 1] += sum(min(k, ref_grams[g]) for g, k in hyp_grams.items())
            total[n - 1] += max(len(hyp) - n + 1, 0)
    if not correct.all():
        return 0.0
    brevity = math.exp(1 - r / c) if c < r else 1.0
    return 100 * brevity * math.exp(np.mean(np.log(correct / total)))


def test_hand_computed_example():
    hyps = ["the cat sat on the mat", "a b c d e"]
    refs = ["the cat is on the mat", "a b c d e f g"]
    # p1 = (5+5)/(6+5), p2 = (3+4)/(5+4), p3 = (1+3)/(4+3), p4 = (0+2)/(3+2); c = 11, r = 13.
    expected = 100 * math.exp(1 - 13 / 11) * (10 / 11 * 7 / 9 * 4 / 7 * 2 / 5) ** 0.25
    assert multi_bleu(hyps, refs) == pytest.approx(expected, rel=1e-12)
    assert tokenized_bleu(hyps, refs) == pytest.approx(expected, rel=1e-9)


def test_tokenized_bleu_equals_the_multi_bleu_formula_on_random_corpora():
    # Lower-case words without punctuation: Moses tokenization leaves them unchanged.
    rng = np.random.default_rng(0)
    words = np.array(["der", "die", "das", "und", "ist", "ein", "haus", "katze", "hund", "gut"])
    for _ in range(5):
        refs = [" ".join(rng.choice(words, rng.integers(4, 15))) for _ in range(8)]
        hyps = []
        for ref in refs:
            tokens = ref.split()
            keep = rng.random(len(tokens)) > 0.2
            edited = [t if k else str(rng.choice(words)) for t, k in zip(tokens, keep, strict=True)]
            hyps.append(" ".join(edited[: rng.integers(2, len(edited) + 3)]))
        assert tokenized_bleu(hyps, refs) == pytest.approx(multi_bleu(hyps, refs), rel=1e-9)


def test_perfect_match_is_100_and_a_missing_4gram_is_0():
    texts = ["Das ist ein Test.", "„Jean-Paul“ kam um 10:30 Uhr – pünktlich!"]
    assert tokenized_bleu(texts, texts) == pytest.approx(100.0)
    assert sacrebleu_bleu(texts, texts) == pytest.approx(100.0)
    assert tokenized_bleu(["a b c d e"], ["a b c x e"]) == 0.0  # p4 = 0, no smoothing


def test_tokenization_and_unicode_punctuation_are_applied_to_both_sides():
    assert tokenized_bleu(["Das ist gut, oder?"], ["Das ist gut , oder ?"]) == pytest.approx(100)
    assert tokenized_bleu(["Er sagte：“Ja”！"], ['Er sagte:"Ja"!']) == pytest.approx(100)
    # Case-sensitive, like multi-bleu.perl without -lc.
    assert tokenized_bleu(["das ist ein kleiner Test"], ["Das ist ein kleiner Test"]) < 100


def test_compound_split():
    assert compound_split("Jean-Paul") == "Jean ##AT##-##AT## Paul"
    assert compound_split("a - b") == "a - b"
    assert compound_split("ein 3-D-Film") == "ein 3 ##AT##-##AT## D-Film"  # Perl: no overlap
    assert compound_split("x -y z- w") == "x -y z- w"
    # The split compound counts as three tokens, the middle one matching nothing.
    hyp, ref = "das Haus-Boot ist hier sehr schön", "das Haus Boot ist hier sehr schön"
    expected = multi_bleu(["das Haus ##AT##-##AT## Boot ist hier sehr schön"], [ref])
    assert 0 < expected < 100
    assert tokenized_bleu([hyp], [ref]) == pytest.approx(expected, rel=1e-9)


def test_sacrebleu_bleu_uses_13a_tokenization():
    assert sacrebleu_bleu(["Hello, world!"], ["Hello , world !"]) == pytest.approx(100)
    assert 0 < sacrebleu_bleu(["the cat sat on the mat"], ["the cat is on the mat"]) < 100


@pytest.mark.parametrize("score", [sacrebleu_bleu, tokenized_bleu])
def test_invalid_inputs_raise(score):
    with pytest.raises(ValueError, match="as many"):
        score(["a b"], ["a b", "c d"])
    with pytest.raises(ValueError, match="at least one"):
        score([], [])
    with pytest.raises(ValueError, match="list of strings"):
        score("a b", "a b")
