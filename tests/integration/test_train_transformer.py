"""train_transformer / decode_transformer end to end on the toy corpus of testdata/ (TF backend).

The binaries run in this process (absl flags parsed per run) so the short runs share one
TensorFlow start-up; a flag-parsing error runs as a real process. Kills, reruns and bad inputs:
test_faults.py.
"""

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow_only

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "testdata", "translation")
TEXT = [
    f"--train_source={CORPUS}/train.en.gz",
    f"--train_target={CORPUS}/train.de.gz",
    f"--eval_source={CORPUS}/dev.en",
    f"--eval_target={CORPUS}/dev.de",
]
SMALL = ["--preset=tiny", "--hidden_size=32", "--filter_size=64", "--num_heads=2",
         "--num_layers=1", "--vocab_size=64", "--batch_tokens=256", "--max_length=32",
         "--learning_rate_warmup_steps=10", "--bleu_sentences=4", "--beam_size=2",
         "--regularization=label_smoothing", "--steps_per_checkpoint=3", "--verbose=0"]  # fmt: skip
PRUNING = ["--begin_pruning_step=0", "--end_pruning_step=4", "--pruning_frequency=2"]
TECHNIQUES = {
    "none": [],
    "magnitude_pruning": PRUNING,
    "random_pruning": PRUNING,
    "variational_dropout": ["--dkl_weight=1e-3", "--dkl_weight_start=0", "--dkl_weight_diff=4"],
    "l0_regularization": ["--l0_norm_weight=1e-3", "--l0_weight_start=0", "--l0_weight_diff=4"],
}


@pytest.fixture(scope="module", autouse=True)
def deterministic_ops():
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def run_in_process(argv):
    from absl import flags

    from state_of_sparsity.paper.cli import train_transformer

    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train_transformer", *argv])
    return train_transformer._main(["train_transformer"])


def train(output_dir, steps, *extra):
    return run_in_process([f"--output_dir={output_dir}", f"--train_steps={steps}", *TEXT,
                           *SMALL, *extra])  # fmt: skip


def run_subprocess(binary, argv):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, os.path.join(ROOT, "bin", f"{binary}.py"), *argv]
    return subprocess.run(command, env=env, capture_output=True, text=True)


def final_weights(output_dir):
    from state_of_sparsity.paper.training.checkpoints import load_model_from_checkpoint

    model, step = load_model_from_checkpoint(os.path.join(output_dir, "checkpoints"))
    return step, {f"{i}:{v.name}": np.asarray(v) for i, v in enumerate(model.weights)}


# Dense trains in test_tiny_preset_learns_the_toy_pair; random pruning's resume (its seeded
# scores) is the library's, checked through train_resnet50.
@pytest.mark.parametrize("technique", ["l0_regularization", "magnitude_pruning",
                                       "variational_dropout"])  # fmt: skip
def test_trains_resumes_identically_decodes_and_exports(technique, tmp_path):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    flags_ = [f"--sparsity_technique={technique}", *TECHNIQUES[technique]]
    straight, split = tmp_path / "straight", tmp_path / "split"
    # Only the final run exports and decodes for BLEU (--export and --bleu_sentences may change
    # between invocations of a run).
    quick = ["--noexport", "--bleu_sentences=0"]
    assert train(straight, 6, *flags_, *quick) == 0
    assert train(split, 3, *flags_, *quick) == 0  # interrupted at step 3
    assert train(split, 6, *flags_) == 0  # the same command resumes
    step_a, a = final_weights(straight)
    step_b, b = final_weights(split)
    assert step_a == step_b == 6
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)
    results = json.loads((split / "results.json").read_text())
    assert results["step"] == 6
    assert set(results["eval"]) >= {"loss", "token_accuracy", "bleu", "bleu_tokenized"}
    layers = {row["name"] for row in results["eval"]["sparsity"]["layers"]}
    if technique != "none":
        assert len(layers) == 17 and "shared_embedding" in layers  # 1 + 6 + 10
    if "pruning" in technique:
        assert results["eval"]["global_sparsity"] == pytest.approx(0.9, abs=0.01)
    translator = tf.saved_model.load(str(split / "saved_model"))
    out = translator.signatures["serving_default"](
        sentences=tf.constant(["the dog sees a cat", "every bird runs often"])
    )["translations"]
    assert out.shape == (2,) and out.dtype == tf.string


def run_tool(binary, argv):
    """A tool in this process (the tools' flags coexist with the trainers')."""
    import importlib

    from absl import flags

    module = importlib.import_module(f"state_of_sparsity.paper.cli.{binary}")
    flags.FLAGS.unparse_flags()
    flags.FLAGS([binary, *argv])
    return module._main([binary])


def test_decode_transformer_writes_translations_and_bleu(tmp_path, capsys):
    out = tmp_path / "vd"
    assert train(out, 3, "--sparsity_technique=variational_dropout",
                 *TECHNIQUES["variational_dropout"]) == 0  # fmt: skip
    source = tmp_path / "source.en"
    reference = tmp_path / "reference.de"
    with open(f"{CORPUS}/dev.en") as f:
        source.write_text("".join(f.readlines()[:5]))
    with open(f"{CORPUS}/dev.de") as f:
        reference.write_text("".join(f.readlines()[:5]))
    decodes = tmp_path / "decodes.de"
    capsys.readouterr()
    assert run_tool("decode_transformer", [
        f"--checkpoint={out}", f"--source_file={source}", f"--reference_file={reference}",
        f"--output_file={decodes}", "--beam_size=2", "--log_alpha_threshold=-2"]) == 0  # fmt: skip
    stdout = capsys.readouterr().out
    summary = json.loads(stdout[stdout.index("{") :])
    assert summary["step"] == 3 and summary["sentences"] == 5
    assert 0.0 <= summary["bleu"] <= 100.0 and 0.0 <= summary["bleu_tokenized"] <= 100.0
    assert summary["global_sparsity"] > 0.0  # threshold -2 prunes weights of a fresh VD model
    assert len(decodes.read_text().splitlines()) == 5
    argv = [f"--checkpoint={out}/checkpoints", "--log_alpha_threshold=-2"]
    assert run_tool("checkpoint_sparsity", argv) == 0
    percent = float(capsys.readouterr().out.strip().split("= ")[-1].rstrip("%"))
    assert percent == pytest.approx(100 * summary["global_sparsity"])


def test_tiny_preset_learns_the_toy_pair(tmp_path):
    """The acceptance floor: the tiny preset (2 layers, d 128) reaches BLEU >= 40 on 100 dev
    sentences after 400 steps of 2,048 tokens (~1.5 min on 2 CPU cores; 68 at 600 steps)."""
    argv = [f"--output_dir={tmp_path}", "--train_steps=400", *TEXT, "--preset=tiny",
            "--vocab_size=160", "--batch_tokens=2048", "--max_length=64",
            "--learning_rate_warmup_steps=300", "--regularization=none", "--bleu_sentences=100",
            "--steps_per_checkpoint=400", "--verbose=0", "--noexport"]  # fmt: skip
    assert run_in_process(argv) == 0
    results = json.loads((tmp_path / "results.json").read_text())["eval"]
    assert results["bleu"] >= 40.0, results["examples"]
    assert results["token_accuracy"] >= 0.85


def test_fixed_masks_and_lottery_ticket(tmp_path):
    mp = tmp_path / "mp"
    assert train(mp, 6, "--sparsity_technique=magnitude_pruning", *PRUNING, "--noexport") == 0
    _, masks = final_weights(mp)
    ticket = tmp_path / "ticket"
    argv = ["--sparsity_technique=magnitude_pruning", f"--load_masks_from={mp}/checkpoints",
            f"--load_weights_from={mp}/checkpoints/ckpt-0.weights.h5"]  # fmt: skip
    assert train(ticket, 3, *argv, "--noexport") == 0
    _, got = final_weights(ticket)
    mask_keys = [k for k in masks if k.endswith("mask")]
    assert mask_keys
    for key in mask_keys:
        np.testing.assert_array_equal(got[key], masks[key], err_msg=key)
    assert train(tmp_path / "wrong", 3, *argv, "--hidden_size=48") == 2  # masks of another shape


def _write_gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)


@pytest.mark.parametrize(
    "case, message",
    [
        ("mismatched", "line"),
        ("empty", "empty"),
        ("vocab_too_small", "--vocab_size"),
        ("target_sparsity", "--target_sparsity"),
        ("half_text", "--train_source"),
        ("pattern", "--sparsity_pattern='2:4'"),
    ],
)
def test_bad_inputs_are_clear_errors(case, message, tmp_path, capsys):
    argv = [f"--output_dir={tmp_path / 'out'}", "--train_steps=2", *SMALL]
    text = list(TEXT)
    if case == "mismatched":
        _write_gz(tmp_path / "s.gz", ["a b", "c d", "e f"])
        _write_gz(tmp_path / "t.gz", ["a b", "c d"])
        text[:2] = [f"--train_source={tmp_path}/s.gz", f"--train_target={tmp_path}/t.gz"]
    elif case == "empty":
        (tmp_path / "empty.de").write_text("")
        text[3] = f"--eval_target={tmp_path}/empty.de"
    elif case == "vocab_too_small":
        argv.append("--vocab_size=8")
    elif case == "target_sparsity":
        argv += ["--sparsity_technique=magnitude_pruning", "--target_sparsity=1.0"]
    elif case == "half_text":
        text = text[:1]
    elif case == "pattern":
        argv += ["--sparsity_technique=l0_regularization", "--sparsity_pattern=2:4"]
    assert run_in_process([*argv, *text]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_unknown_preset_is_a_clear_error(tmp_path):
    """absl rejects the value while parsing the flags (a real process): still a usage error."""
    done = run_subprocess("train_transformer", [f"--output_dir={tmp_path}", "--preset=huge"])
    assert done.returncode == 2
    assert "train_transformer: error: flag --preset=huge: value should be one of <base|tiny>" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr and not os.listdir(tmp_path)
