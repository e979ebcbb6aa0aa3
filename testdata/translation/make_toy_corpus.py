#!/usr/bin/env python3
"""Writes a small synthetic "en"→"de" parallel corpus for the Transformer tests and examples.

    train.en.gz, train.de.gz   20,000 sentence pairs (gzip with a fixed header: reproducible)
    dev.en, dev.de             200 pairs, none of whose sources occur in train

One sentence per line, UTF-8, lowercase. A tiny grammar over 51 English words:

    sentence := clause ["and" clause] ["."]
    clause   := np verb_t np [prep np] | np verb_i [adverb]
    np       := det adj{0,2} noun          noun: a word, or rarely a hyphenated compound "n1-n2"

of 3–12 words, translated word by word into invented German-like words (with umlauts) plus
three deterministic rules, so it is not pure word substitution:

1. verb-final: the verb moves to the end of its clause (after the object, the prepositional
   phrase, the adverb): "the dog sees a cat" → "der hund eine katze sieht";
2. gender agreement: each determiner takes the grammatical gender of its noun (the → der / die /
   das, a → ein / eine / ein, ...), whatever adjectives stand between them;
3. compounds: "n1-n2" → "t1-t2" (translations joined by the hyphen), with the gender of the last
   part, as in German.

A final period, when present, is attached to the last word on both sides. A Transformer with
two layers and d_model 128 learns this to high BLEU within minutes of CPU training.
Deterministic (``random.Random(SEED)``, stdlib only); run it again to get the same bytes:

    python testdata/translation/make_toy_corpus.py [output_dir]   # default: beside this file
"""

import os
import random
import struct
import sys
import zlib

SEED = 20190225  # the paper's arXiv date
TRAIN_PAIRS = 20_000
DEV_PAIRS = 200
MIN_WORDS, MAX_WORDS = 3, 12

# English determiner -> German forms by gender (masculine, feminine, neuter).
DETERMINERS = {
    "the": ("der", "die", "das"),
    "a": ("ein", "eine", "ein"),
    "this": ("dieser", "diese", "dieses"),
    "every": ("jeder", "jede", "jedes"),
}
ADJECTIVES = {
    "big": "groß",
    "small": "klein",
    "red": "rot",
    "green": "grün",
    "old": "alt",
    "young": "jung",
    "quick": "schnell",
    "slow": "langsam",
    "happy": "froh",
    "quiet": "still",
}
M, F, N = 0, 1, 2
NOUNS = {
    "dog": ("hund", M),
    "cat": ("katze", F),
    "bird": ("vogel", M),
    "house": ("haus", N),
    "tree": ("baum", M),
    "river": ("fluss", M),
    "child": ("kind", N),
    "farmer": ("bauer", M),
    "king": ("könig", M),
    "queen": ("königin", F),
    "horse": ("pferd", N),
    "book": ("buch", N),
    "garden": ("garten", M),
    "stone": ("stein", M),
    "ship": ("schiff", N),
    "bear": ("bär", M),
    "flower": ("blume", F),
    "door": ("tür", F),
}
TRANSITIVE = {
    "sees": "sieht",
    "likes": "mag",
    "finds": "findet",
    "follows": "folgt",
    "builds": "baut",
    "carries": "trägt",
    "paints": "malt",
    "hears": "hört",
}
INTRANSITIVE = {"sleeps": "schläft", "runs": "läuft", "sings": "singt", "waits": "wartet"}
PREPOSITIONS = {"near": "bei", "under": "unter", "behind": "hinter", "with": "mit"}
ADVERBS = {"today": "heute", "often": "oft"}
AND = ("and", "und")

COMPOUND_PROBABILITY = 0.01  # per noun: about 3% of the sentences hold a compound
PERIOD_PROBABILITY = 0.3


def _choice(rng, table):
    return rng.choice(sorted(table))


def _noun_phrase(rng):
    """(English words, German words) of det adj{0,2} noun, the determiner agreeing in gender."""
    det = _choice(rng, DETERMINERS)
    adjectives = rng.sample(sorted(ADJECTIVES), rng.choice((0, 0, 1, 1, 2)))
    head = _choice(rng, NOUNS)
    if rng.random() < COMPOUND_PROBABILITY:
        modifier = _choice(rng, sorted(set(NOUNS) - {head}))
        noun, target_noun = f"{modifier}-{head}", f"{NOUNS[modifier][0]}-{NOUNS[head][0]}"
    else:
        noun, target_noun = head, NOUNS[head][0]
    gender = NOUNS[head][1]
    source = [det, *adjectives, noun]
    target = [DETERMINERS[det][gender], *(ADJECTIVES[a] for a in adjectives), target_noun]
    return source, target


def _clause(rng):
    """(English words, German words) of one clause; the German verb goes last (rule 1)."""
    subject, subject_t = _noun_phrase(rng)
    if rng.random() < 0.75:
        verb = _choice(rng, TRANSITIVE)
        obj, obj_t = _noun_phrase(rng)
        source, target = [*subject, verb, *obj], [*subject_t, *obj_t]
        if rng.random() < 0.3:
            prep = _choice(rng, PREPOSITIONS)
            np_, np_t = _noun_phrase(rng)
            source += [prep, *np_]
            target += [PREPOSITIONS[prep], *np_t]
        return source, target + [TRANSITIVE[verb]]
    verb = _choice(rng, INTRANSITIVE)
    source, target = [*subject, verb], list(subject_t)
    if rng.random() < 0.4:
        adverb = _choice(rng, ADVERBS)
        source.append(adverb)
        target.append(ADVERBS[adverb])
    return source, target + [INTRANSITIVE[verb]]


def sentence_pair(rng):
    """One (English, German) sentence pair of MIN_WORDS..MAX_WORDS source words."""
    while True:
        source, target = _clause(rng)
        if rng.random() < 0.25:
            second, second_t = _clause(rng)
            source += [AND[0], *second]
            target += [AND[1], *second_t]
        if MIN_WORDS <= len(source) <= MAX_WORDS:
            break
    source, target = " ".join(source), " ".join(target)
    if rng.random() < PERIOD_PROBABILITY:
        source, target = source + ".", target + "."
    return source, target


def corpus(seed=SEED):
    """{file name: bytes} of the whole corpus."""
    rng = random.Random(seed)
    train = [sentence_pair(rng) for _ in range(TRAIN_PAIRS)]
    seen = {source for source, _ in train}
    dev = []
    while len(dev) < DEV_PAIRS:
        source, target = sentence_pair(rng)
        if source not in seen:
            seen.add(source)
            dev.append((source, target))

    def lines(pairs, side):
        return "".join(pair[side] + "\n" for pair in pairs).encode("utf-8")

    return {
        "train.en.gz": gzip_bytes(lines(train, 0)),
        "train.de.gz": gzip_bytes(lines(train, 1)),
        "dev.en": lines(dev, 0),
        "dev.de": lines(dev, 1),
    }


def gzip_bytes(data):
    """A gzip member of ``data`` with a fixed header (no name, mtime 0, OS unknown), so the bytes
    depend only on zlib's deflate (level 9), not on the Python version's gzip module."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = compressor.compress(data) + compressor.flush()
    header = b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + b"\x02\xff"
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return header + body + trailer


def main(output_dir):
    os.makedirs(output_dir, exist_ok=True)
    for name, data in corpus().items():
        with open(os.path.join(output_dir, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
