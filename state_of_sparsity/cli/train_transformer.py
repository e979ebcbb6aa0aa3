"""``train_transformer``: the paper's sparse Transformer on WMT14 en→de (spec §5, flags §9.2-9.3).

One command per run: ``--sparsity_technique`` selects dense (``none``), ``magnitude_pruning``,
``random_pruning``, ``variational_dropout`` or ``l0_regularization``; the paper's flags set the
schedule (``--target_sparsity``, ``--begin_pruning_step``, ``--end_pruning_step``,
``--pruning_frequency``, ``--embedding_sparsity``) or the penalty weight ramp (``--dkl_weight``,
``--dkl_weight_start``, ``--dkl_weight_diff``, ``--dkl_weight_fn``; ``--l0_norm_weight``,
``--l0_weight_start``, ``--l0_weight_diff``). ``--load_masks_from`` (fixed masks of an MP run)
with ``--load_weights_from`` (a lottery ticket: that run's step-0 values) and
``--initial_sparsity`` (augmented init) give the paper's scratch / lottery experiments. Rerunning
the same command resumes from the latest checkpoint in ``--output_dir``.

Data: tfds ``wmt14_translate/de-en`` from a prepared ``--data_dir`` (``--dataset``), or plain
parallel text (``--train_source/--train_target/--eval_source/--eval_target``, optionally
gzipped). A sentencepiece vocabulary of ``--vocab_size`` is trained on the training text at the
first run and kept as ``<output_dir>/vocab.model``.

Outputs in ``--output_dir``: ``vocab.model``, ``checkpoints/`` (``ckpt-<step>.weights.h5``,
``model.json``), ``logs/`` (TensorBoard), ``saved_model/`` (strings in, strings out: the
tokenizer and beam search are inside the graph), ``results.json`` (eval loss and token accuracy,
BLEU on the first ``--bleu_sentences`` eval pairs, sparsity report).

Deviations from the reference: no t2t; per-element VD noise (see ``VariationalDropout``);
``--load_weights_from`` works on every strategy (the reference ignored it off-TPU, spec §6.2).
"""

from __future__ import annotations

import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from state_of_sparsity.cli import launch  # noqa: E402
from state_of_sparsity.cli.launch import UsageError  # noqa: E402
from state_of_sparsity.training import decode_flags  # noqa: E402
from state_of_sparsity.training import flags as harness_flags  # noqa: E402

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(harness_flags)
flags.adopt_module_key_flags(decode_flags)
DEFAULTS = {"dataset": "wmt14_translate/de-en", "train_steps": 500000, "pruning_frequency": 10000}
TECHNIQUES = ("none", "magnitude_pruning", "random_pruning", "variational_dropout",
              "l0_regularization")  # fmt: skip

# Data.
flags.DEFINE_string("train_source", None, "Parallel text: training source file (.gz allowed).")
flags.DEFINE_string("train_target", None, "Parallel text: training target file.")
flags.DEFINE_string("eval_source", None, "Parallel text: eval source file.")
flags.DEFINE_string("eval_target", None, "Parallel text: eval target file.")
flags.DEFINE_integer("vocab_size", 32000, "Sentencepiece vocabulary size (shared en/de).")
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
flags.DEFINE_enum("sparsity_technique", "none", TECHNIQUES, "Technique.")
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
flags.DEFINE_integer("l0_weight_diff", 100000, "Length of the (linear) L0 weight ramp.")
flags.DEFINE_string("load_masks_from", "", "MP run (checkpoint file or directory): fixed masks.")
flags.DEFINE_string("load_weights_from", "", "With --load_masks_from: non-mask initial values.")
flags.DEFINE_float("initial_sparsity", 0.0, "With --load_masks_from: augmented-init sparsity.")

PRUNING = ("magnitude_pruning", "random_pruning")


def validate():
    """Checks flag values and combinations before anything runs or is written."""
    harness_flags.resolve_defaults(**DEFAULTS)
    if not FLAGS.output_dir:
        raise UsageError("--output_dir is required.")
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
                 "learning_rate_warmup_steps", "beam_size"):  # fmt: skip
        if getattr(FLAGS, name) < 1:
            raise UsageError(f"--{name}={getattr(FLAGS, name)} must be >= 1.")
    if FLAGS.bleu_sentences < 0:
        raise UsageError(f"--bleu_sentences={FLAGS.bleu_sentences} must be >= 0.")
    technique = FLAGS.sparsity_technique
    if not 0.0 <= FLAGS.target_sparsity < 1.0:
        raise UsageError(f"--target_sparsity={FLAGS.target_sparsity} must be in [0, 1).")
    if FLAGS.embedding_sparsity >= 1.0:
        raise UsageError(f"--embedding_sparsity={FLAGS.embedding_sparsity} must be < 1.")
    if FLAGS.embedding_sparsity >= 0 and technique not in PRUNING:
        raise UsageError("--embedding_sparsity applies to magnitude or random pruning.")
    if technique in PRUNING and FLAGS.end_pruning_step <= FLAGS.begin_pruning_step:
        raise UsageError(
            f"--begin_pruning_step={FLAGS.begin_pruning_step} must be < "
            f"--end_pruning_step={FLAGS.end_pruning_step}."
        )
    if FLAGS.load_masks_from and technique != "magnitude_pruning":
        raise UsageError("--load_masks_from needs --sparsity_technique=magnitude_pruning.")
    if (FLAGS.load_weights_from or FLAGS.initial_sparsity) and not FLAGS.load_masks_from:
        raise UsageError("--load_weights_from / --initial_sparsity need --load_masks_from.")
    if not 0.0 <= FLAGS.initial_sparsity < 1.0:
        raise UsageError(f"--initial_sparsity={FLAGS.initial_sparsity} must be in [0, 1).")
    for weight, diff, fn in (
        ("dkl_weight", "dkl_weight_diff", FLAGS.dkl_weight_fn),
        ("l0_norm_weight", "l0_weight_diff", "linear"),
    ):
        if getattr(FLAGS, weight) < 0:
            raise UsageError(f"--{weight}={getattr(FLAGS, weight)} must be >= 0.")
        if fn != "constant" and getattr(FLAGS, diff) < 1:
            raise UsageError(f"--{diff}={getattr(FLAGS, diff)} must be >= 1 for a {fn} ramp.")


def pairs(split):
    """(source, target) string pairs of ``split`` ("train" or "eval")."""
    from state_of_sparsity.data import translation

    if FLAGS.train_source:
        if split == "train":
            return translation.read_parallel_files(FLAGS.train_source, FLAGS.train_target)
        return translation.read_parallel_files(FLAGS.eval_source, FLAGS.eval_target)
    tfds_split = "train" if split == "train" else "validation"
    return translation.tfds_pairs(tfds_split, FLAGS.data_dir, name=FLAGS.dataset)


def vocabulary(train_pairs):
    """The run's vocabulary: ``<output_dir>/vocab.model``, trained on ``train_pairs`` at the
    first run."""
    from state_of_sparsity.data import translation

    path = os.path.join(FLAGS.output_dir, "vocab.model")
    if os.path.isfile(path):
        return translation.Vocabulary.load(path)
    print(f"training a {FLAGS.vocab_size}-piece sentencepiece vocabulary ...", flush=True)
    try:
        vocab = translation.Vocabulary.train(
            translation.sentences_for_vocab(train_pairs, FLAGS.vocab_sentences),
            FLAGS.vocab_size,
            seed=FLAGS.seed,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    vocab.save(path)
    return vocab


def model_kwargs():
    from state_of_sparsity.models.transformer import REGULARIZATION

    kwargs = {
        name: getattr(FLAGS, name)
        for name in ("hidden_size", "filter_size", "num_heads", "num_layers")
        if getattr(FLAGS, name) is not None
    }
    preset = REGULARIZATION[FLAGS.regularization]
    kwargs.update({k: v for k, v in preset.items() if k != "label_smoothing"})
    return kwargs, preset["label_smoothing"]


def sparsify(model):
    import state_of_sparsity as sos

    technique = FLAGS.sparsity_technique
    if technique == "none":
        return model
    kwargs = {"seed": FLAGS.seed}
    if FLAGS.load_masks_from:  # fixed masks: a schedule that never fires
        kwargs["schedule"] = sos.ConstantSparsity(FLAGS.target_sparsity, 0, 0, 1)
    elif technique in PRUNING:
        kwargs["schedule"] = sos.PolynomialDecay(
            0.0, FLAGS.target_sparsity, FLAGS.begin_pruning_step, FLAGS.end_pruning_step,
            frequency=FLAGS.pruning_frequency,
        )  # fmt: skip
        if FLAGS.embedding_sparsity >= 0:
            kwargs["overrides"] = {"shared_embedding": FLAGS.embedding_sparsity}
    elif technique == "variational_dropout":
        kwargs.update(clip_log_alpha=FLAGS.clip_log_alpha, threshold=FLAGS.log_alpha_threshold)
    return sos.sparsify(model, technique, **kwargs)


def regularizer_weight():
    import state_of_sparsity as sos

    if FLAGS.sparsity_technique == "variational_dropout":
        value, start, diff, fn = (FLAGS.dkl_weight, FLAGS.dkl_weight_start,
                                  FLAGS.dkl_weight_diff, FLAGS.dkl_weight_fn)  # fmt: skip
    elif FLAGS.sparsity_technique == "l0_regularization":
        value, start, diff, fn = (FLAGS.l0_norm_weight, FLAGS.l0_weight_start,
                                  FLAGS.l0_weight_diff, "linear")  # fmt: skip
    else:
        return None
    if fn == "constant":
        return sos.Ramp(value)
    return sos.Ramp(value, start, start + diff, fn)


def build_model(vocab_size):
    """The (sparsified, compiled) model; call inside the strategy's scope."""
    import keras

    from state_of_sparsity.models import transformer
    from state_of_sparsity.training import losses, lr_schedules, metrics

    keras.utils.set_random_seed(FLAGS.seed)
    kwargs, label_smoothing = model_kwargs()
    try:
        model = transformer.transformer(FLAGS.preset, vocab_size, **kwargs)
    except ValueError as error:
        raise UsageError(str(error)) from None
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

    experiments.copy_masks(FLAGS.load_masks_from, model)
    if FLAGS.load_weights_from:
        experiments.copy_initial_values(FLAGS.load_weights_from, model)
    elif FLAGS.initial_sparsity > 0:
        # Augmented init (spec §6.4): glorot and N(0, d^-1/2) with fan-in and fan-out counted
        # over the surviving weights, i.e. the dense init scaled by 1 / sqrt(1 - s).
        scale = (1.0 - FLAGS.initial_sparsity) ** -0.5
        for _, wrapper in sos.traversal.wrappers(model):
            wrapper.kernel.assign(ops.convert_to_numpy(wrapper.kernel) * scale)


def evaluate(model, vocab, eval_pairs):
    import state_of_sparsity as sos
    from state_of_sparsity import bleu
    from state_of_sparsity.data import translation
    from state_of_sparsity.training.decode import translate_sentences

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


def run() -> int:
    validate()
    import keras

    import state_of_sparsity as sos
    from state_of_sparsity.data import translation
    from state_of_sparsity.export import export_translator
    from state_of_sparsity.training import checkpoints, loop, strategy

    if FLAGS.logical_cpus > 1:
        strategy.split_cpu(FLAGS.logical_cpus)
    strategy_ = strategy.make_strategy(FLAGS.distribution_strategy, FLAGS.tpu)
    print(f"{FLAGS.distribution_strategy} strategy: {strategy_.num_replicas_in_sync} replicas")
    train_pairs, eval_pairs = pairs("train"), pairs("eval")
    vocab = vocabulary(train_pairs)
    output_dir = FLAGS.output_dir
    checkpoint_dir = os.path.join(output_dir, "checkpoints")
    with strategy_.scope():
        model = build_model(vocab.size)
    started = time.time()
    if checkpoints.latest_checkpoint(checkpoint_dir) is None and FLAGS.load_masks_from:
        load_masks(model)
    callbacks = [
        keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")),
        sos.SparsitySummaries(os.path.join(output_dir, "logs")),
    ]
    if FLAGS.sparsity_technique != "none" and not FLAGS.load_masks_from:
        callbacks.insert(0, sos.SparsityCallback(regularizer_weight=regularizer_weight()))
    step = loop.train_to_step(
        model,
        lambda initial: translation.make_dataset(
            train_pairs,
            vocab,
            batch_tokens=FLAGS.batch_tokens,
            max_length=FLAGS.max_length,
            training=True,
            seed=FLAGS.seed,
            initial_step=initial,
        ),  # fmt: skip
        train_steps=FLAGS.train_steps,
        output_dir=output_dir,
        steps_per_checkpoint=FLAGS.steps_per_checkpoint,
        keep_checkpoint_max=FLAGS.keep_checkpoint_max,
        callbacks=callbacks,
        verbose=FLAGS.verbose,
    )
    final = evaluate(model, vocab, eval_pairs)
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
    results = {
        "flags": {f.name: f.value for f in FLAGS.get_key_flags_for_module(__name__)},
        "step": step,
        "vocab_size": vocab.size,
        "eval": final,
        "saved_model": saved_model,
        "seconds": time.time() - started,
    }
    results_path = os.path.join(output_dir, "results.json")
    checkpoints.write_json(results_path, results)
    bleu = f", BLEU {final['bleu']:.2f}" if "bleu" in final else ""
    print(
        f"step {step}: eval loss {final['loss']:.4f}, token accuracy "
        f"{final['token_accuracy']:.4f}{bleu}, global sparsity {final['global_sparsity']:.4f}; "
        f"results in {results_path}"
    )
    return 0


def _main(argv):
    return launch.guarded(run, "train_transformer", argv)


def main():
    launch.run(_main, __name__)


if __name__ == "__main__":
    main()
