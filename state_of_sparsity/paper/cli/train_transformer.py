"""``train_transformer``: the paper's sparse Transformer on WMT14 en→de (spec §5, flags §9.2-9.3).

One command per run: ``--sparsity_technique`` selects dense (``none``), ``magnitude_pruning``,
``random_pruning``, ``variational_dropout`` or ``l0_regularization``; the paper's flags set the
schedule (``--target_sparsity``, ``--begin_pruning_step``, ``--end_pruning_step``,
``--pruning_frequency``, ``--embedding_sparsity``) or the penalty weight ramp (``--dkl_weight``,
``--dkl_weight_start``, ``--dkl_weight_diff``, ``--dkl_weight_fn``; ``--l0_norm_weight``,
``--l0_weight_start``, ``--l0_weight_diff``, ``--l0_weight_fn``; both fns default to linear, the
reference's ``dkl_weight_fn`` default, which its L0 ramp shared). ``--vd_noise`` picks VD's
training noise. Scratch / lottery experiments (spec §6) take the fixed final masks of an MP run
(``--load_masks_from``):
- scratch-e / scratch-b (same / longer ``--train_steps``): a fresh random init, drawn from
  ``--seed`` moved by ``training.init_seed`` (the source run's own seed would rebuild its step-0
  weights: a lottery ticket by accident);
- lottery ticket: ``--load_weights_from`` = that run's step-0 checkpoint (``ckpt-0.weights.h5``);
- augmented init: ``--initial_sparsity=s`` (the masks' sparsity) scales the fresh init of every
  sparsified kernel by (1 − s)^(−1/2), i.e. its variance by 1 / (1 − s) (spec §6.4: glorot and
  the embedding's N(0, d^(−1/2)) with fans counted over surviving weights).

Reruns, as ``train_resnet50``: the same command resumes from the newest intact checkpoint
wherever the last run stopped, and a finished run's results are reprinted. The flags that fix
the model, vocabulary, data order and evaluation are recorded in ``run.json``; a rerun with
other values (another ``--vocab_size`` included) is a usage error naming them, before anything
is written. ``--train_steps``, where the data lives, how often to checkpoint and log, the
strategy and ``--export`` may change.

Data: tfds ``wmt14_translate/de-en`` from a prepared ``--data_dir`` (``--dataset``), or plain
parallel text (``--train_source/--train_target/--eval_source/--eval_target``, optionally
gzipped). Vocabulary: by default a sentencepiece vocabulary of ``--vocab_size`` trained on the
training text at the first run and kept as ``<output_dir>/vocab.model``; with
``--vocab_file=<name>.subwords`` a tensor2tensor subword file, copied to
``<output_dir>/vocab.subwords``. The paper's runs used t2t's
``vocab.translate_ende_wmt32k.32768.subwords`` (33,288 ids): that file reproduces their
tokenization and embedding size (``translation/subwords.py``); it needs ``--noexport``.

Outputs in ``--output_dir``: ``run.json``, ``vocab.model`` (or ``vocab.subwords``), ``checkpoints/``
(``ckpt-<step>.weights.h5``, ``model.json``, ``checkpoint.json``), ``logs/`` (TensorBoard),
``saved_model/`` (strings in, strings out: the tokenizer and beam search are inside the graph;
``--noexport`` skips it), ``results.json`` (written last: eval loss and token accuracy, BLEU on
the first ``--bleu_sentences`` eval pairs, sparsity report, the run's wall-clock ``seconds``
over all its invocations).

Deviations from the reference: Keras instead of tensor2tensor (same hparams, spec §5);
per-element VD noise by default (``--vd_noise=sequence``: the reference's, see
``VariationalDropout``); ``--load_weights_from`` works on every strategy (the reference
ignored it off-TPU, spec §6.2); separate ``--dkl_weight_fn`` / ``--l0_weight_fn`` (the
reference shared one).
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from state_of_sparsity.paper import techniques  # noqa: E402
from state_of_sparsity.paper.cli import launch  # noqa: E402
from state_of_sparsity.paper.training import flags as harness_flags  # noqa: E402
from state_of_sparsity.paper.training.errors import UsageError, usage_errors  # noqa: E402
from state_of_sparsity.paper.translation import flags as decode_flags  # noqa: E402

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(harness_flags)
flags.adopt_module_key_flags(decode_flags)
BINARY = "train_transformer"
DEFAULTS = {"dataset": "wmt14_translate/de-en", "train_steps": 500000, "pruning_frequency": 10000,
            "log_alpha_threshold": 3.0, "max_length": 256}  # fmt: skip
# Flags a rerun may change; every other flag is recorded in run.json and must match.
RERUN_MAY_CHANGE = frozenset({
    "output_dir", "data_dir", "train_source", "train_target", "eval_source", "eval_target",
    "train_steps", "steps_per_checkpoint", "keep_checkpoint_max", "distribution_strategy", "tpu",
    "logical_cpus", "verbose", "log_every_steps", "export", "bleu_sentences",
})  # fmt: skip

# Data.
flags.DEFINE_string("train_source", None, "Parallel text: training source file (.gz allowed).")
flags.DEFINE_string("train_target", None, "Parallel text: training target file.")
flags.DEFINE_string("eval_source", None, "Parallel text: eval source file.")
flags.DEFINE_string("eval_target", None, "Parallel text: eval target file.")
flags.DEFINE_integer("vocab_size", 32000, "Sentencepiece vocabulary size (shared en/de).")
flags.DEFINE_string(
    "vocab_file", "",
    "A tensor2tensor .subwords vocabulary (the paper's: vocab.translate_ende_wmt32k.32768."
    "subwords, 33,288 ids) instead of training a sentencepiece one; needs --noexport.",
)  # fmt: skip
flags.DEFINE_integer("vocab_sentences", 1_000_000, "Sentences read to train the vocabulary.")
flags.DEFINE_integer("batch_tokens", 2048, "Tokens per batch and side, padding included.")
# Model and optimisation.
flags.DEFINE_enum("preset", "base", ["base", "tiny"], "Model shape (sparse_transformer_*).")
flags.DEFINE_integer("hidden_size", None, "Overrides the preset's hidden size.")
flags.DEFINE_integer("filter_size", None, "Overrides the preset's FFN size.")
flags.DEFINE_integer("num_heads", None, "Overrides the preset's head count.")
flags.DEFINE_integer("num_layers", None, "Overrides the preset's layer count (each stack).")
flags.DEFINE_enum(
    "regularization", "dropout+label_smoothing",
    ["none", "label_smoothing", "dropout+label_smoothing", "moredropout+label_smoothing",
     "muchmoredropout+label_smoothing"],
    "Dropout / label-smoothing preset (spec §5.4).",
)  # fmt: skip
flags.DEFINE_float("learning_rate_constant", 2.0, "lr = c·min(1, t/w)·max(t, w)^-1/2·d^-1/2.")
flags.DEFINE_integer("learning_rate_warmup_steps", 8000, "w of the learning-rate schedule.")
flags.DEFINE_float("adam_beta2", 0.997, "Adam beta2 (beta1 0.9, epsilon 1e-9).")
flags.DEFINE_integer("bleu_sentences", 200, "Eval pairs decoded for the final BLEU (0: none).")
# Sparsity (spec §9.2-9.3; defaults of sparse_transformer_base_v1).
flags.DEFINE_enum(
    "sparsity_technique", "none", techniques.flag_values(), "Technique (none: dense)."
)
flags.DEFINE_float("target_sparsity", 0.9, "MP/RP final sparsity.")
flags.DEFINE_integer("begin_pruning_step", 0, "MP/RP schedule begin.")
flags.DEFINE_integer("end_pruning_step", 200000, "MP/RP schedule end.")
flags.DEFINE_float("embedding_sparsity", -1.0, ">= 0: the shared embedding's own MP/RP target.")
flags.DEFINE_float("dkl_weight", 1 / 4.5e6, "VD KL weight (1/N included).")
flags.DEFINE_integer("dkl_weight_start", 100000, "Step at which the KL weight ramp starts.")
flags.DEFINE_integer("dkl_weight_diff", 100000, "Length of the KL weight ramp.")
flags.DEFINE_enum("dkl_weight_fn", "linear", ["constant", "linear", "cubic"], "KL ramp shape.")
flags.DEFINE_float("l0_norm_weight", 1 / 4.5e6, "L0 penalty weight (1/N included).")
flags.DEFINE_integer("l0_weight_start", 100000, "Step at which the L0 weight ramp starts.")
flags.DEFINE_integer("l0_weight_diff", 100000, "Length of the L0 weight ramp.")
flags.DEFINE_enum(
    "l0_weight_fn", "linear", ["constant", "linear", "cubic"],
    "L0 ramp shape (the reference took it from dkl_weight_fn; the paper's CSV: l0_norm_weight_fn).",
)  # fmt: skip
flags.DEFINE_string("load_masks_from", "", "MP run (checkpoint file or directory): fixed masks.")
flags.DEFINE_string("load_weights_from", "", "With --load_masks_from: non-mask initial values.")
flags.DEFINE_float("initial_sparsity", 0.0, "With --load_masks_from: augmented-init sparsity.")
flags.DEFINE_enum(
    "vd_noise", "element", ["element", "sequence"],
    "VD training noise of the dense layers: element (exact local reparameterization) or "
    "sequence (the paper's: one noise vector per example, shared across positions).",
)  # fmt: skip


def validate():
    """Checks flag values and combinations; reads and writes nothing."""
    harness_flags.resolve_defaults(**DEFAULTS)
    text = [FLAGS.train_source, FLAGS.train_target, FLAGS.eval_source, FLAGS.eval_target]
    if any(text) and not all(text):
        raise UsageError(
            "Parallel text needs all of --train_source, --train_target, --eval_source and "
            "--eval_target."
        )
    if not any(text) and not FLAGS.data_dir:
        raise UsageError(
            "Give --data_dir (a prepared tfds dataset) or the parallel text files "
            "(--train_source/--train_target/--eval_source/--eval_target)."
        )
    for name in ("train_steps", "steps_per_checkpoint", "pruning_frequency", "vocab_sentences",
                 "learning_rate_warmup_steps", "beam_size", "batch_tokens"):  # fmt: skip
        if getattr(FLAGS, name) < 1:
            raise UsageError(f"--{name}={getattr(FLAGS, name)} must be >= 1.")
    for name in ("bleu_sentences", "keep_checkpoint_max", "log_every_steps", "begin_pruning_step",
                 "dkl_weight_start", "l0_weight_start", "alpha"):  # fmt: skip
        if getattr(FLAGS, name) < 0:
            raise UsageError(f"--{name}={getattr(FLAGS, name)} must be >= 0.")
    if FLAGS.vocab_file and not FLAGS.vocab_file.endswith(".subwords"):
        raise UsageError(
            f"--vocab_file={FLAGS.vocab_file} must be a tensor2tensor vocabulary, a file named "
            "*.subwords (without it a sentencepiece vocabulary is trained)."
        )
    if FLAGS.vocab_file and FLAGS.export:
        raise UsageError(
            f"--vocab_file={FLAGS.vocab_file} needs --noexport: the SavedModel tokenizes in its "
            "graph, with sentencepiece only (decode_transformer decodes the checkpoints)."
        )
    if FLAGS.vocab_size < 4:
        raise UsageError(f"--vocab_size={FLAGS.vocab_size} must be >= 4.")
    if FLAGS.max_length < 2:
        raise UsageError(f"--max_length={FLAGS.max_length} must be >= 2.")
    if FLAGS.batch_tokens < FLAGS.max_length:
        raise UsageError(
            f"--batch_tokens={FLAGS.batch_tokens} must be >= --max_length={FLAGS.max_length}: a "
            "batch must hold at least one example of the longest allowed length."
        )
    if FLAGS.learning_rate_constant <= 0:
        raise UsageError(f"--learning_rate_constant={FLAGS.learning_rate_constant} must be > 0.")
    if not 0.0 <= FLAGS.adam_beta2 < 1.0:
        raise UsageError(f"--adam_beta2={FLAGS.adam_beta2} must be in [0, 1).")
    if not 0.0 <= FLAGS.target_sparsity < 1.0:
        raise UsageError(f"--target_sparsity={FLAGS.target_sparsity} must be in [0, 1).")
    if FLAGS.embedding_sparsity >= 1.0:
        raise UsageError(f"--embedding_sparsity={FLAGS.embedding_sparsity} must be < 1.")
    if FLAGS.embedding_sparsity >= 0 and not technique().prunes:
        raise UsageError("--embedding_sparsity applies to magnitude or random pruning.")
    if technique().prunes and FLAGS.end_pruning_step <= FLAGS.begin_pruning_step:
        raise UsageError(
            f"--begin_pruning_step={FLAGS.begin_pruning_step} must be < "
            f"--end_pruning_step={FLAGS.end_pruning_step}."
        )
    if FLAGS.load_masks_from and technique().name != "magnitude_pruning":
        raise UsageError("--load_masks_from needs --sparsity_technique=magnitude_pruning.")
    if (FLAGS.load_weights_from or FLAGS.initial_sparsity) and not FLAGS.load_masks_from:
        raise UsageError("--load_weights_from / --initial_sparsity need --load_masks_from.")
    if not 0.0 <= FLAGS.initial_sparsity < 1.0:
        raise UsageError(f"--initial_sparsity={FLAGS.initial_sparsity} must be in [0, 1).")
    if FLAGS.vd_noise != "element" and technique().name != "variational_dropout":
        raise UsageError(
            f"--vd_noise={FLAGS.vd_noise} applies to --sparsity_technique=variational_dropout, "
            f"not {FLAGS.sparsity_technique}."
        )
    for weight, diff, fn in (
        ("dkl_weight", "dkl_weight_diff", FLAGS.dkl_weight_fn),
        ("l0_norm_weight", "l0_weight_diff", FLAGS.l0_weight_fn),
    ):
        if getattr(FLAGS, weight) < 0:
            raise UsageError(f"--{weight}={getattr(FLAGS, weight)} must be >= 0.")
        if fn != "constant" and getattr(FLAGS, diff) < 1:
            raise UsageError(f"--{diff}={getattr(FLAGS, diff)} must be >= 1 for a {fn} ramp.")
    with usage_errors():
        techniques.check_structure(
            technique(), FLAGS.sparsity_pattern, FLAGS.sparsity_distribution,
            FLAGS.target_sparsity, layer_overrides(), fixed=bool(FLAGS.load_masks_from),
        )  # fmt: skip


def check_schedules():
    """The schedule flags against --train_steps (see ``training.schedule_checks``)."""
    from state_of_sparsity.paper.training import schedule_checks

    def warn(message):
        launch.warn(BINARY, message)

    if technique().prunes and not FLAGS.load_masks_from:
        names = ("--target_sparsity", "--begin_pruning_step", "--end_pruning_step",
                 "--pruning_frequency")  # fmt: skip
        schedule_checks.check_pruning(pruning_schedule(), FLAGS.train_steps, names, warn)
    elif technique().penalized:
        _, start, diff, shape, prefix = penalty_flags()
        if shape != "constant":
            schedule_checks.check_ramp(
                start, start + diff, FLAGS.train_steps,
                (f"--{prefix}_start", f"--{prefix}_diff"), warn,
            )  # fmt: skip


def recorded_flags() -> dict:
    """The flags that fix the model, vocabulary, data order and evaluation: run.json's."""
    return {
        flag.name: flag.value
        for flag in FLAGS.get_key_flags_for_module(__name__)
        if flag.name not in RERUN_MAY_CHANGE
    }


def pairs(split):
    """(source, target) string pairs of ``split`` ("train" or "eval")."""
    from state_of_sparsity.paper.translation import data as translation

    if FLAGS.train_source:
        if split == "train":
            return translation.read_parallel_files(FLAGS.train_source, FLAGS.train_target)
        return translation.read_parallel_files(FLAGS.eval_source, FLAGS.eval_target)
    tfds_split = "train" if split == "train" else "validation"
    return translation.tfds_pairs(tfds_split, FLAGS.data_dir, name=FLAGS.dataset)


def vocabulary(train_pairs):
    """The run's vocabulary and whether it is new: the one kept in ``--output_dir``, or the
    ``--vocab_file``, or a sentencepiece one trained in memory on ``train_pairs`` (the caller
    saves a new one once everything is checked)."""
    from state_of_sparsity.paper.translation import data as translation
    from state_of_sparsity.paper.translation.subwords import SubwordVocabulary

    if FLAGS.vocab_file:
        path = os.path.join(FLAGS.output_dir, SubwordVocabulary.FILE_NAME)
        new = not os.path.isfile(path)
        with usage_errors(f"--vocab_file={FLAGS.vocab_file}: " if new else f"{path}: "):
            return SubwordVocabulary.load(FLAGS.vocab_file if new else path), new
    path = os.path.join(FLAGS.output_dir, translation.Vocabulary.FILE_NAME)
    if os.path.isfile(path):
        with usage_errors(f"{path}: "):
            vocab = translation.Vocabulary.load(path)
        if vocab.size != FLAGS.vocab_size:
            raise UsageError(
                f"{path} has {vocab.size} pieces, not --vocab_size={FLAGS.vocab_size}; use "
                "another --output_dir for another vocabulary."
            )
        return vocab, False
    print(f"training a {FLAGS.vocab_size}-piece sentencepiece vocabulary ...", flush=True)
    with usage_errors():
        vocab = translation.Vocabulary.train(
            translation.sentences_for_vocab(train_pairs, FLAGS.vocab_sentences),
            FLAGS.vocab_size,
            seed=FLAGS.seed,
        )
    return vocab, True


def save_vocabulary(vocab) -> None:
    """Keeps ``vocab`` in ``--output_dir`` as ``vocab.model`` or ``vocab.subwords``."""
    path = os.path.join(FLAGS.output_dir, vocab.FILE_NAME)
    vocab.save(f"{path}.tmp")
    os.replace(f"{path}.tmp", path)


def model_kwargs():
    from state_of_sparsity.paper.models.transformer import REGULARIZATION

    kwargs = {
        name: getattr(FLAGS, name)
        for name in ("hidden_size", "filter_size", "num_heads", "num_layers")
        if getattr(FLAGS, name) is not None
    }
    preset = REGULARIZATION[FLAGS.regularization]
    kwargs.update({k: v for k, v in preset.items() if k != "label_smoothing"})
    return kwargs, preset["label_smoothing"]


def technique():
    """The technique of --sparsity_technique."""
    return techniques.resolve(FLAGS.sparsity_technique)


def pruning_schedule():
    """MP / RP: the flags' schedule, or one that never fires for masks of --load_masks_from."""
    return techniques.pruning_schedule(
        FLAGS.target_sparsity, FLAGS.begin_pruning_step, FLAGS.end_pruning_step,
        FLAGS.pruning_frequency, fixed=bool(FLAGS.load_masks_from),
    )  # fmt: skip


def layer_overrides():
    """The embedding's own target (--embedding_sparsity), or None."""
    if technique().prunes and FLAGS.embedding_sparsity >= 0:
        return {"shared_embedding": FLAGS.embedding_sparsity}
    return None


def sparsify(model):
    return techniques.sparsify(
        model,
        technique(),
        schedule=pruning_schedule(),
        overrides=layer_overrides(),
        seed=FLAGS.seed,
        pattern=FLAGS.sparsity_pattern,
        distribution=FLAGS.sparsity_distribution,
        clip_log_alpha=FLAGS.clip_log_alpha,
        threshold=FLAGS.log_alpha_threshold,
        noise=FLAGS.vd_noise,
    )


def penalty_flags():
    """(weight, ramp start, ramp length, ramp shape, flag prefix) of the VD or L0 penalty."""
    if technique().name == "variational_dropout":
        return (FLAGS.dkl_weight, FLAGS.dkl_weight_start, FLAGS.dkl_weight_diff,
                FLAGS.dkl_weight_fn, "dkl_weight")  # fmt: skip
    return (FLAGS.l0_norm_weight, FLAGS.l0_weight_start, FLAGS.l0_weight_diff,
            FLAGS.l0_weight_fn, "l0_weight")  # fmt: skip


def regularizer_weight():
    """The ``sos.Ramp`` of the VD / L0 penalty weight (None for the other techniques)."""
    if not technique().penalized:
        return None
    weight, start, diff, shape, _ = penalty_flags()
    return techniques.penalty_ramp(technique(), weight, start, start + diff, shape)


def build_model(vocab_size):
    """The (sparsified, compiled) model; call inside the strategy's scope."""
    import keras

    from state_of_sparsity.paper.models import transformer
    from state_of_sparsity.paper.training import losses, lr_schedules, metrics
    from state_of_sparsity.paper.training.init_seed import init_seed

    keras.utils.set_random_seed(
        init_seed(FLAGS.seed, fixed_masks=bool(FLAGS.load_masks_from),
                  initial_values=bool(FLAGS.load_weights_from))
    )  # fmt: skip
    kwargs, label_smoothing = model_kwargs()
    with usage_errors():
        model = transformer.transformer(FLAGS.preset, vocab_size, **kwargs)
    model = sparsify(model)
    model.compile(
        optimizer=keras.optimizers.Adam(
            lr_schedules.TransformerLearningRate(
                FLAGS.learning_rate_constant, FLAGS.learning_rate_warmup_steps, model.hidden_size
            ),
            beta_1=0.9,
            beta_2=FLAGS.adam_beta2,
            epsilon=1e-9,
        ),
        loss=losses.PaddedSequenceCrossentropy(vocab_size, label_smoothing),
        metrics=[metrics.PaddedTokenAccuracy()],
    )
    return model


def load_masks(model):
    """``--load_masks_from`` (+ ``--load_weights_from``, ``--initial_sparsity``) at step 0."""
    from keras import ops

    import state_of_sparsity as sos
    from state_of_sparsity import experiments
    from state_of_sparsity.paper.training.checkpoints import load_model_from_checkpoint

    with usage_errors("--load_masks_from: "):
        source, _ = load_model_from_checkpoint(FLAGS.load_masks_from)
        experiments.copy_masks(source, model, repr(FLAGS.load_masks_from))
    if FLAGS.load_weights_from:
        with usage_errors("--load_weights_from: "):
            source, _ = load_model_from_checkpoint(FLAGS.load_weights_from)
            experiments.copy_initial_values(source, model, repr(FLAGS.load_weights_from))
    elif FLAGS.initial_sparsity > 0:
        # Augmented init (spec §6.4): glorot and N(0, d^-1/2) with fan-in and fan-out counted
        # over the surviving weights, i.e. the dense init scaled by 1 / sqrt(1 - s).
        scale = (1.0 - FLAGS.initial_sparsity) ** -0.5
        for _, wrapper in sos.traversal.wrappers(model):
            wrapper.kernel.assign(ops.convert_to_numpy(wrapper.kernel) * scale)


def evaluate(model, vocab, eval_pairs):
    import state_of_sparsity as sos
    from state_of_sparsity.paper.translation import bleu
    from state_of_sparsity.paper.translation import data as translation
    from state_of_sparsity.paper.translation.decode import translate_sentences

    eval_data = translation.make_dataset(
        eval_pairs, vocab, batch_tokens=FLAGS.batch_tokens, max_length=FLAGS.max_length,
        training=False,
    )  # fmt: skip
    with warnings.catch_warnings():
        # Keras warns "Your input ran out of data" at the end of any finite dataset of unknown
        # cardinality (length bucketing hides it); the whole eval set is meant to be read.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        metrics = model.evaluate(eval_data, verbose=0, return_dict=True)
    result = {
        "loss": float(metrics["loss"]),
        "token_accuracy": float(metrics["token_accuracy"]),
    }
    if FLAGS.bleu_sentences:
        sample = [
            (s.decode(), t.decode())
            for s, t in eval_pairs.take(FLAGS.bleu_sentences).as_numpy_iterator()
        ]
        sources, references = zip(*sample, strict=True)
        hypotheses = translate_sentences(
            model, vocab, sources, beam_size=FLAGS.beam_size, alpha=FLAGS.alpha,
            max_length=FLAGS.max_length,
        )  # fmt: skip
        result.update(
            bleu_sentences=len(sample),
            bleu=bleu.sacrebleu_bleu(hypotheses, list(references)),
            bleu_tokenized=bleu.tokenized_bleu(hypotheses, list(references)),
            examples=[
                {"source": s, "reference": r, "translation": h}
                for s, r, h in list(zip(sources, references, hypotheses, strict=True))[:5]
            ],
        )
    report = sos.sparsity_report(model, threshold=FLAGS.log_alpha_threshold)
    result["global_sparsity"] = report.global_sparsity
    result["sparsity"] = report.to_dict()
    return result


def summary(step, final, path) -> str:
    bleu = f", BLEU {final['bleu']:.2f}" if "bleu" in final else ""
    return (
        f"step {step}: eval loss {final['loss']:.4f}, token accuracy "
        f"{final['token_accuracy']:.4f}{bleu}, global sparsity {final['global_sparsity']:.4f}; "
        f"results in {path}"
    )


def finished_results(output_dir, step):
    """The results of this run when it is finished at ``step`` (results.json of that step,
    with its SavedModel when --export), else None."""
    from state_of_sparsity.paper.training import checkpoints

    path = os.path.join(output_dir, "results.json")
    if step < FLAGS.train_steps or not os.path.isfile(path):
        return None
    results = checkpoints.read_json(path)
    if not isinstance(results, dict) or results.get("step") != step:
        return None
    saved_model = os.path.join(output_dir, "saved_model")
    if FLAGS.export and not (results.get("saved_model") and os.path.isdir(saved_model)):
        return None
    return results


def _warn(message):
    launch.warn(BINARY, message)


def run() -> int:
    from state_of_sparsity.paper.training import run_dir

    clock = run_dir.RunClock()
    validate()
    output_dir = FLAGS.output_dir
    run_dir.check_output_dir(output_dir)

    import keras

    import state_of_sparsity as sos
    from state_of_sparsity.paper.training import checkpoints, faults, loop, strategy
    from state_of_sparsity.paper.translation import data as translation

    checkpoint_dir = loop.checkpoint_dir(output_dir)
    checkpoints.read_index(checkpoint_dir)  # a corrupt index is an error before anything else
    recorded = run_dir.check_record(output_dir, BINARY, recorded_flags())
    check_schedules()
    if FLAGS.logical_cpus > 1:
        strategy.split_cpu(FLAGS.logical_cpus)
    strategy_ = strategy.make_strategy(FLAGS.distribution_strategy, FLAGS.tpu)
    print(f"{FLAGS.distribution_strategy} strategy: {strategy_.num_replicas_in_sync} replicas")
    with usage_errors():
        train_pairs, eval_pairs = pairs("train"), pairs("eval")
    vocab, new_vocab = vocabulary(train_pairs)
    with strategy_.scope():
        model = build_model(vocab.size)
    restored = loop.restore(model, checkpoint_dir, warn=_warn)
    if restored is None and FLAGS.load_masks_from:
        load_masks(model)
    # Everything is checked: from here on files are written.
    run_dir.create(output_dir)
    for path in run_dir.remove_stale_temporaries(output_dir):
        _warn(f"removed {path}, left by a killed run.")
    if not recorded:
        run_dir.write_record(output_dir, BINARY, recorded_flags())
    if new_vocab:
        save_vocabulary(vocab)
    if restored is None:
        loop.initialize(model, checkpoint_dir)
        step = 0
    else:
        step, clock.base = restored
    results_path = os.path.join(output_dir, "results.json")
    finished = finished_results(output_dir, step)
    if finished is not None:
        print(f"already finished; {summary(step, finished['eval'], results_path)}")
        return 0

    callbacks = [
        keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")),
        sos.SparsitySummaries(os.path.join(output_dir, "logs")),
    ]
    if FLAGS.log_every_steps:
        callbacks.append(loop.ProgressLog(FLAGS.log_every_steps, FLAGS.train_steps))
    if technique().sparse and not FLAGS.load_masks_from:
        callbacks.insert(0, sos.SparsityCallback(regularizer_weight=regularizer_weight()))

    def train_data(initial_step):
        with usage_errors():
            return translation.make_dataset(
                train_pairs, vocab, batch_tokens=FLAGS.batch_tokens, max_length=FLAGS.max_length,
                training=True, seed=FLAGS.seed, initial_step=initial_step,
            )  # fmt: skip

    step = loop.train_to_step(
        model,
        train_data,
        train_steps=FLAGS.train_steps,
        output_dir=output_dir,
        steps_per_checkpoint=FLAGS.steps_per_checkpoint,
        keep_checkpoint_max=FLAGS.keep_checkpoint_max,
        callbacks=callbacks,
        clock=clock,
        verbose=FLAGS.verbose,
    )
    faults.point("eval")
    final = evaluate(model, vocab, eval_pairs)
    saved_model = None
    if FLAGS.export:
        from state_of_sparsity.paper.translation.export import export_translator

        samples = [s.decode() for s, _ in eval_pairs.take(2).as_numpy_iterator()]
        saved_model = export_translator(
            model,
            vocab.model_proto,
            os.path.join(output_dir, "saved_model"),
            sample_sentences=samples,
            max_length=FLAGS.max_length,
            beam_size=FLAGS.beam_size,
            alpha=FLAGS.alpha,
            threshold=FLAGS.log_alpha_threshold,
        )
        faults.point("export")
    results = {
        "flags": {f.name: f.value for f in FLAGS.get_key_flags_for_module(__name__)},
        "step": step,
        "vocab_size": vocab.size,
        "eval": final,
        "saved_model": saved_model,
        "seconds": clock(),
    }
    checkpoints.write_json(results_path, results)
    print(summary(step, final, results_path))
    return 0


def _main(argv):
    return launch.guarded(run, BINARY, argv, __name__)


def main():
    launch.run(_main, __name__)


if __name__ == "__main__":
    main()
