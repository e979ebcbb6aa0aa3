"""Translation for the Transformer benchmark: parallel text and vocabularies (``data``),
decoding (``decoding``, ``decode``), BLEU (``bleu``), decoding flags (``flags``) and the
strings-in, strings-out SavedModel (``export``)."""
