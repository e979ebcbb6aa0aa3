"""``decode_transformer``: translate a file with a trained sparse Transformer; BLEU (spec §5.5).

Loads a checkpoint of a ``train_transformer`` run (``--checkpoint``: the run's output directory,
its ``checkpoints/`` directory — both meaning the latest checkpoint — or one
``ckpt-<step>.weights.h5``), translates ``--source_file`` (one sentence per line, UTF-8, plain or
``.gz``) with beam search (``--beam_size`` 4, length penalty ``--alpha`` 0.6: t2t's decode
defaults; ``--beam_size 1`` is greedy) in eval mode (VD at ``--log_alpha_threshold``, default
the model's own), writes the translations to ``--output_file`` in input order and, with
``--reference_file``, prints two BLEU scores: sacreBLEU on the detokenized text, and the
paper's tokenized compound-split BLEU (its ``get_ende_bleu.sh``), the number comparable with its
table. Inputs are sorted by length for batching (as t2t) and the output order restored.
``--max_length`` defaults to the run's own. Exit statuses as every binary (``cli/launch.py``).
"""

from __future__ import annotations

import gzip
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from state_of_sparsity.paper.cli import launch  # noqa: E402
from state_of_sparsity.paper.training import flags as harness_flags  # noqa: E402, F401
from state_of_sparsity.paper.training import tool_flags
from state_of_sparsity.paper.training.errors import UsageError, usage_errors  # noqa: E402
from state_of_sparsity.paper.translation import flags as decode_flags  # noqa: E402

FLAGS = flags.FLAGS
BINARY = "decode_transformer"
DEFAULT_MAX_LENGTH = 256
flags.adopt_module_key_flags(decode_flags)
flags.adopt_module_key_flags(tool_flags)
flags.declare_key_flag("log_alpha_threshold")  # defined with the harness flags

flags.DEFINE_string(
    "vocab", None,
    "Vocabulary: sentencepiece .model or t2t .subwords (default: the run's vocab.subwords, else "
    "vocab.model).",
)  # fmt: skip
flags.DEFINE_string("source_file", None, "Sentences to translate, one per line (.gz allowed).")
flags.DEFINE_string("reference_file", None, "Reference translations (for BLEU; .gz allowed).")
flags.DEFINE_string(
    "output_file", None,
    "Translations (default: <run output_dir>/<source file name, .gz dropped>.step<step>"
    ".beam<beam_size>.decodes).",
)  # fmt: skip
flags.DEFINE_integer("batch_size", 32, "Sentences per decoding batch.")
flags.DEFINE_integer("extra_length", 50, "Output length allowed beyond the source's (t2t: 50).")


def _read_lines(path, flag):
    if not path or not os.path.isfile(path):
        raise UsageError(f"--{flag}={path!r} is not a file.")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            lines = [line.rstrip("\r\n") for line in f]
    except UnicodeDecodeError as error:
        raise UsageError(f"--{flag}={path} is not UTF-8 text ({error.reason}).") from None
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise UsageError(f"--{flag}={path} cannot be read: {error}.") from None
    if not lines:
        raise UsageError(f"--{flag}={path!r} is empty.")
    return lines


def _run_flags(run_dir: str) -> dict:
    """The flags the run at ``run_dir`` was made with (run.json; results.json of older runs)."""
    from state_of_sparsity.paper.training.checkpoints import read_json

    for name in ("run.json", "results.json"):
        path = os.path.join(run_dir, name)
        if os.path.isfile(path):
            content = read_json(path)
            if isinstance(content, dict) and isinstance(content.get("flags"), dict):
                return content["flags"]
    return {}


def _source_name(path: str) -> str:
    name = os.path.basename(path)
    return name[: -len(".gz")] if name.endswith(".gz") else name


def run() -> int:
    if not FLAGS.checkpoint:
        raise UsageError("--checkpoint is required.")
    for name in ("beam_size", "batch_size"):
        if getattr(FLAGS, name) < 1:
            raise UsageError(f"--{name}={getattr(FLAGS, name)} must be >= 1.")
    if FLAGS.max_length is not None and FLAGS.max_length < 2:
        raise UsageError(f"--max_length={FLAGS.max_length} must be >= 2.")
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
    from state_of_sparsity.paper.training import checkpoints, run_dir
    from state_of_sparsity.paper.translation import bleu
    from state_of_sparsity.paper.translation.decode import translate_sentences
    from state_of_sparsity.paper.translation.subwords import SubwordVocabulary, load_vocabulary

    path, step = checkpoints.resolve_checkpoint(FLAGS.checkpoint)
    run_path = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    output_file = FLAGS.output_file or os.path.join(
        run_path, f"{_source_name(FLAGS.source_file)}.step{step}.beam{FLAGS.beam_size}.decodes"
    )
    run_dir.check_output_file(output_file, "output_file")
    model, step = checkpoints.load_model_from_checkpoint(path, kind="transformer")
    vocab_path = FLAGS.vocab or os.path.join(run_path, "vocab.model")
    subwords = os.path.join(run_path, SubwordVocabulary.FILE_NAME)
    if not FLAGS.vocab and os.path.isfile(subwords):
        vocab_path = subwords
    if not os.path.isfile(vocab_path):
        raise UsageError(f"No vocabulary at {vocab_path}; pass --vocab.")
    with usage_errors(f"{vocab_path}: "):
        vocab = load_vocabulary(vocab_path)
    max_length = FLAGS.max_length or _run_flags(run_path).get("max_length") or DEFAULT_MAX_LENGTH
    if model.vocab_size != vocab.size:
        raise UsageError(
            f"The vocabulary {vocab_path} has {vocab.size} pieces, the model {model.vocab_size}."
        )
    if FLAGS.log_alpha_threshold is not None:
        sos.set_threshold(model, FLAGS.log_alpha_threshold)
    print(f"decoding {len(sources)} sentences with the step-{step} model ...", flush=True)
    translations = translate_sentences(
        model, vocab, sources, beam_size=FLAGS.beam_size, alpha=FLAGS.alpha,
        max_length=max_length, extra_length=FLAGS.extra_length, batch_size=FLAGS.batch_size,
    )  # fmt: skip
    tmp = output_file + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(t + "\n" for t in translations)
        os.replace(tmp, output_file)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    summary = {"step": step, "sentences": len(sources), "max_length": max_length,
               "output_file": output_file}  # fmt: skip
    if references is not None:
        summary["bleu"] = bleu.sacrebleu_bleu(translations, references)
        summary["bleu_tokenized"] = bleu.tokenized_bleu(translations, references)
    options = {}
    if FLAGS.log_alpha_threshold is not None:
        options["threshold"] = FLAGS.log_alpha_threshold
    summary["global_sparsity"] = sos.sparsity_report(model, **options).global_sparsity
    print(json.dumps(summary, indent=1))
    return 0


def _main(argv):
    return launch.guarded(run, BINARY, argv, __name__)


def main():
    launch.run(_main, __name__)


if __name__ == "__main__":
    main()
