"""``decode_transformer``: translate a file with a trained sparse Transformer; BLEU (spec §5.5).

Loads the latest checkpoint of a ``train_transformer`` run (``--checkpoint``: the run's output
directory, its ``checkpoints/`` directory or one ``ckpt-<step>.weights.h5``), translates
``--source_file`` (one sentence per line) with beam search (``--beam_size`` 4, length penalty
``--alpha`` 0.6: t2t's decode defaults; ``--beam_size 1`` is greedy) in eval mode (VD at
``--log_alpha_threshold``), writes the translations to ``--output_file`` in input order and,
with ``--reference_file``, prints two BLEU scores: sacreBLEU on the detokenized text, and the
paper's tokenized compound-split BLEU (its ``get_ende_bleu.sh``), the number comparable with its
table. Inputs are sorted by length for batching (as t2t) and the output order restored.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from state_of_sparsity.cli import launch  # noqa: E402
from state_of_sparsity.cli.launch import UsageError  # noqa: E402
from state_of_sparsity.training import decode_flags  # noqa: E402
from state_of_sparsity.training import flags as harness_flags  # noqa: E402, F401

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(decode_flags)
flags.declare_key_flag("log_alpha_threshold")  # defined with the harness flags

flags.DEFINE_string("checkpoint", None, "Run output_dir, its checkpoints/ dir or a ckpt file.")
flags.DEFINE_string("vocab", None, "Vocabulary (default: vocab.model of the run).")
flags.DEFINE_string("source_file", None, "Sentences to translate, one per line.")
flags.DEFINE_string("reference_file", None, "Reference translations (for BLEU).")
flags.DEFINE_string("output_file", None, "Translations (default: <source_file>.decodes).")
flags.DEFINE_integer("batch_size", 32, "Sentences per decoding batch.")
flags.DEFINE_integer("extra_length", 50, "Output length allowed beyond the source's (t2t: 50).")


def _read_lines(path, flag):
    if not path or not os.path.isfile(path):
        raise UsageError(f"--{flag}={path!r} is not a file.")
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    if not lines:
        raise UsageError(f"--{flag}={path!r} is empty.")
    return lines


def run() -> int:
    if not FLAGS.checkpoint:
        raise UsageError("--checkpoint is required.")
    for name in ("beam_size", "batch_size", "max_length"):
        if getattr(FLAGS, name) < 1:
            raise UsageError(f"--{name}={getattr(FLAGS, name)} must be >= 1.")
    if FLAGS.alpha < 0 or FLAGS.extra_length < 0:
        raise UsageError("--alpha and --extra_length must be >= 0.")
    sources = _read_lines(FLAGS.source_file, "source_file")
    references = None
    if FLAGS.reference_file:
        references = _read_lines(FLAGS.reference_file, "reference_file")
        if len(references) != len(sources):
            raise UsageError(
                f"--reference_file has {len(references)} lines, --source_file {len(sources)}."
            )

    import state_of_sparsity as sos
    from state_of_sparsity import bleu
    from state_of_sparsity.data.translation import Vocabulary
    from state_of_sparsity.training.checkpoints import load_model_from_checkpoint
    from state_of_sparsity.training.decode import translate_sentences

    checkpoint = FLAGS.checkpoint
    if os.path.isdir(os.path.join(checkpoint, "checkpoints")):
        checkpoint = os.path.join(checkpoint, "checkpoints")
    model, step = load_model_from_checkpoint(checkpoint)
    run_dir = os.path.dirname(os.path.abspath(checkpoint.rstrip("/")))
    if not os.path.isdir(checkpoint):
        run_dir = os.path.dirname(run_dir)
    vocab_path = FLAGS.vocab or os.path.join(run_dir, "vocab.model")
    if not os.path.isfile(vocab_path):
        raise UsageError(f"No vocabulary at {vocab_path!r}; pass --vocab.")
    vocab = Vocabulary.load(vocab_path)
    sos.set_threshold(model, FLAGS.log_alpha_threshold)
    print(f"decoding {len(sources)} sentences with the step-{step} model ...", flush=True)
    translations = translate_sentences(
        model, vocab, sources, beam_size=FLAGS.beam_size, alpha=FLAGS.alpha,
        max_length=FLAGS.max_length, extra_length=FLAGS.extra_length,
        batch_size=FLAGS.batch_size,
    )  # fmt: skip
    output_file = FLAGS.output_file or f"{FLAGS.source_file}.beam{FLAGS.beam_size}.decodes"
    tmp = output_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(t + "\n" for t in translations)
    os.replace(tmp, output_file)
    summary = {"step": step, "sentences": len(sources), "output_file": output_file}
    if references is not None:
        summary["bleu"] = bleu.sacrebleu_bleu(translations, references)
        summary["bleu_tokenized"] = bleu.tokenized_bleu(translations, references)
    report = sos.sparsity_report(model, threshold=FLAGS.log_alpha_threshold)
    summary["global_sparsity"] = report.global_sparsity
    print(json.dumps(summary, indent=1))
    return 0


def _main(argv):
    return launch.guarded(run, "decode_transformer", argv)


def main():
    launch.run(_main, __name__)


if __name__ == "__main__":
    main()
