"""Fault injection for the binaries: bad flags and inputs, corrupt files, kills at every phase,
reruns (TensorFlow backend).

The contract (README, "Exit statuses and reruns"): status 0 done, 1 diverged, 2 a usage or
input error reported in exactly one stderr line naming the flag or file, 3 an internal error
reported in one line pointing to a log file that keeps the traceback; a run that fails leaves
every file it found byte-identical (a failed validation writes nothing at all); a run killed at
any phase and rerun ends with the files of an uninterrupted run; a finished run is never
replaced. Most runs happen in this process (absl flags parsed per run; stderr, Python warnings
and log records all count as stderr lines); kills are real processes that SIGKILL themselves at
a named phase (``STATE_OF_SPARSITY_FAULT``), and the reruns happen here.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow_only

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANUAL = os.path.join(ROOT, "testdata", "imagenet", "manual")
CORPUS = os.path.join(ROOT, "testdata", "translation")
FAULT = "STATE_OF_SPARSITY_FAULT"
TEXT = [f"--train_source={CORPUS}/train.en.gz", f"--train_target={CORPUS}/train.de.gz",
        f"--eval_source={CORPUS}/dev.en", f"--eval_target={CORPUS}/dev.de"]  # fmt: skip
TRANSFORMER = ["--preset=tiny", "--hidden_size=32", "--filter_size=64", "--num_heads=2",
               "--num_layers=1", "--vocab_size=64", "--batch_tokens=256", "--max_length=32",
               "--learning_rate_warmup_steps=10", "--bleu_sentences=2", "--beam_size=2",
               "--regularization=label_smoothing", "--steps_per_checkpoint=3", "--verbose=0",
               "--train_steps=3", *TEXT]  # fmt: skip
# TensorFlow's C++ start-up lines (before absl logging is initialised; not the binaries' own).
START_UP_NOISE = re.compile(
    r"^([IW]\d{4} |WARNING: All log messages before absl::InitializeLog|To enable the following)"
)


def resnet_argv(data_dir, output_dir, *extra):
    return [f"--output_dir={output_dir}", f"--data_dir={data_dir}", "--image_size=32",
            "--width=0.125", "--resnet_depth=18", "--train_steps=4", "--train_batch_size=8",
            "--eval_batch_size=4", "--steps_per_checkpoint=2", "--mode=train", "--verbose=0",
            "--pruning_method=threshold", "--sparsity_begin_step=0", "--sparsity_end_step=3",
            "--pruning_frequency=1", *extra]  # fmt: skip


def transformer_argv(output_dir, *extra):
    return [f"--output_dir={output_dir}", *TRANSFORMER, *extra]


class Outcome:
    def __init__(self, status, out, lines):
        self.status, self.out, self.lines = status, out, lines

    def __repr__(self):
        return f"Outcome(status={self.status}, lines={self.lines}, out={self.out[-500:]!r})"


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(f"{record.name}: {record.getMessage()}")


def invoke(binary, argv, capsys=None, env=None, monkeypatch=None) -> Outcome:
    """Runs ``binary`` in this process as its console script would; stderr lines, Python
    warnings (under Python's default filters) and log records >= WARNING are its lines."""
    from absl import flags

    module = importlib.import_module(f"state_of_sparsity.paper.cli.{binary}")
    flags.FLAGS.unparse_flags()
    flags.FLAGS([binary, *argv])
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    if capsys is not None:
        capsys.readouterr()
    records = _Records()
    logging.getLogger().addHandler(records)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.resetwarnings()
            warnings.simplefilter("default")
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning,
                             ResourceWarning):  # fmt: skip
                warnings.filterwarnings("ignore", category=category)
            status = module._main([binary])
    finally:
        logging.getLogger().removeHandler(records)
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    lines = [line for line in err.splitlines() if line.strip()]
    lines += [f"warning: {w.message}" for w in caught] + records.lines
    return Outcome(status, out, lines)


def invoke_subprocess(binary, argv, env=None) -> Outcome:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_DETERMINISTIC_OPS": "1",
                   **(env or {})}  # fmt: skip
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bin", f"{binary}.py"), *argv],
        env=environment, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return Outcome(done.returncode, done.stdout, [x for x in lines if not START_UP_NOISE.match(x)])


def tree(path) -> dict:
    """Relative path -> sha256 of every file under ``path`` ({} when it does not exist)."""
    hashes = {}
    for directory, _, names in os.walk(path):
        for name in names:
            full = os.path.join(directory, name)
            with open(full, "rb") as f:
                hashes[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
    return hashes


def assert_usage_error(outcome, binary, *needles):
    assert outcome.status == 2, outcome
    assert len(outcome.lines) == 1, outcome
    line = outcome.lines[0]
    assert line.startswith(f"{binary}: error: ") and len(line) < 600, line
    for needle in needles:
        assert needle in line, line


def truncate(path, keep=0.5):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))


def copy_run(source, tmp_path, name="run"):
    target = tmp_path / name
    shutil.copytree(source, target)
    return target


def weights(checkpoint):
    from state_of_sparsity.paper.training.checkpoints import load_model_from_checkpoint

    model, step = load_model_from_checkpoint(str(checkpoint))
    return step, {f"{i}:{v.name}": np.asarray(v) for i, v in enumerate(model.weights)}


def assert_same_run(got, want):
    """``got`` ends with the files of ``want``: the same paths (TensorBoard logs, which hold one
    file per invocation, aside), run and model records byte-identical, the same weights in
    every checkpoint, the same results (wall-clock seconds aside)."""

    def paths(run):
        return {p for p in tree(run) if not p.startswith("logs" + os.sep)}

    assert paths(got) == paths(want)
    for name in ("run.json", os.path.join("checkpoints", "model.json")):
        assert (got / name).read_bytes() == (want / name).read_bytes(), name
    for name in sorted(os.listdir(want / "checkpoints")):
        if name.endswith(".weights.h5"):
            step_a, a = weights(got / "checkpoints" / name)
            step_b, b = weights(want / "checkpoints" / name)
            assert step_a == step_b and a.keys() == b.keys()
            for key in a:
                np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)
    results_a = json.loads((got / "results.json").read_text())
    results_b = json.loads((want / "results.json").read_text())
    for results in (results_a, results_b):
        assert results.pop("seconds") > 0
    assert results_a["step"] == results_b["step"]
    assert results_a["eval"]["global_sparsity"] == pytest.approx(
        results_b["eval"]["global_sparsity"]
    )
    assert results_a["eval"]["loss"] == pytest.approx(results_b["eval"]["loss"], rel=1e-4)


@pytest.fixture(scope="module", autouse=True)
def deterministic_ops():
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """tfds imagenet2012 built once from the tars of testdata."""
    from state_of_sparsity.paper.data import imagenet

    path = str(tmp_path_factory.mktemp("tfds"))
    imagenet.load("validation", batch_size=4, data_dir=path, manual_dir=MANUAL)
    return path


@pytest.fixture(scope="module")
def resnet_run(data_dir, tmp_path_factory):
    """A finished, uninterrupted magnitude-pruning run of 4 steps (checkpoints 0, 2, 4)."""
    out = tmp_path_factory.mktemp("resnet") / "run"
    assert invoke("train_resnet50", resnet_argv(data_dir, out)).status == 0
    return out


@pytest.fixture(scope="module")
def transformer_run(tmp_path_factory):
    """A finished dense Transformer run of 3 steps."""
    out = tmp_path_factory.mktemp("transformer") / "run"
    assert invoke("train_transformer", transformer_argv(out)).status == 0
    return out


# --------------------------------------------------------------------------------------------
# Bad flags and inputs: exit status 2, one line, nothing written


@pytest.mark.parametrize(
    "binary, extra, needle",
    [
        ("train_resnet50", ["--base_learning_rate=inf"], "--base_learning_rate=inf"),
        ("train_resnet50", ["--base_learning_rate=nan"], "--base_learning_rate=nan"),
        ("train_resnet50", ["--end_sparsity=1.0"], "--end_sparsity"),
        ("train_resnet50", ["--pruning_frequency=100"], "No mask update"),
        (
            "train_resnet50",
            [
                "--pruning_method=variational_dropout",
                "--reg_scalar=1e-4",
                "--sparsity_begin_step=5",
                "--sparsity_end_step=8",
            ],
            "--sparsity_begin_step=5",
        ),  # fmt: skip
        ("train_resnet50", ["--mode=eval"], "no checkpoint"),
        (
            "train_resnet50",
            ["--pruning_method=scratch", "--load_mask_dir=/no/such/dir"],
            "/no/such/dir",
        ),  # fmt: skip
        ("train_transformer", ["--batch_tokens=0"], "--batch_tokens=0"),
        ("train_transformer", ["--batch_tokens=32", "--max_length=64"], "--batch_tokens=32"),
        ("train_transformer", ["--learning_rate_constant=inf"], "--learning_rate_constant"),
        ("train_transformer", ["--vocab_size=8"], "--vocab_size=8"),
        # The paper's WMT-scale schedules in a short run: pruning would never start ...
        (
            "train_transformer",
            ["--sparsity_technique=magnitude_pruning", "--train_steps=600"],
            "--pruning_frequency=10000",
        ),  # fmt: skip
        # ... and the KL weight would stay 0.
        (
            "train_transformer",
            ["--sparsity_technique=variational_dropout", "--train_steps=600"],
            "--dkl_weight_start=100000",
        ),  # fmt: skip
    ],
)
def test_bad_flags_are_one_line_and_write_nothing(binary, extra, needle, data_dir, tmp_path,
                                                  capsys):  # fmt: skip
    out = tmp_path / "out"
    if binary == "train_resnet50":
        argv = resnet_argv(data_dir, out, *extra)
    else:
        argv = transformer_argv(out, *extra)
    assert_usage_error(invoke(binary, argv, capsys), binary, needle)
    assert not out.exists()


@pytest.mark.parametrize("binary", ["train_resnet50", "train_transformer"])
def test_output_dir_that_is_a_file(binary, data_dir, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    for out in (blocker, blocker / "sub"):
        argv = resnet_argv(data_dir, out) if binary == "train_resnet50" else transformer_argv(out)
        assert_usage_error(invoke(binary, argv, capsys), binary, f"--output_dir={out}")
    assert blocker.read_text() == "not a directory"


def test_corrupt_tfrecords_are_named(tmp_path, capsys):
    import tensorflow as tf

    records = tmp_path / "records"
    records.mkdir()
    with tf.io.TFRecordWriter(str(records / "validation-00000-of-00001")) as writer:
        writer.write(b"not an Example proto")
    (records / "train-00000-of-00001").write_bytes(b"\x00garbage, not a TFRecord file")
    out = tmp_path / "out"
    argv = resnet_argv(records, out, "--data_format=tfrecord", "--num_label_classes=10")
    assert_usage_error(
        invoke("train_resnet50", argv, capsys), "train_resnet50", "validation-00000-of-00001"
    )
    (records / "validation-00000-of-00001").unlink()
    shutil.copy(records / "train-00000-of-00001", records / "validation-00000-of-00001")
    assert_usage_error(
        invoke("train_resnet50", argv, capsys), "train_resnet50", "is not a valid TFRecord"
    )
    assert not out.exists()


def test_rerun_with_other_flags_names_them_and_changes_nothing(resnet_run, data_dir, tmp_path,
                                                               capsys):  # fmt: skip
    run = copy_run(resnet_run, tmp_path)
    before = tree(run)
    outcome = invoke("train_resnet50", resnet_argv(data_dir, run, "--width=0.25"), capsys)
    assert_usage_error(outcome, "train_resnet50", "--width=0.125 (now 0.25)")
    outcome = invoke("train_transformer", transformer_argv(run), capsys)
    assert_usage_error(outcome, "train_transformer", "holds a train_resnet50 run")
    # A run directory without run.json (made before it existed): the checkpoint itself does
    # not match; still one short line.
    (run / "run.json").unlink()
    del before["run.json"]
    outcome = invoke("train_resnet50", resnet_argv(data_dir, run, "--width=0.25"), capsys)
    assert_usage_error(outcome, "train_resnet50", "does not match the model")
    assert tree(run) == before


def test_transformer_rerun_with_another_vocabulary_size(transformer_run, tmp_path, capsys):
    run = copy_run(transformer_run, tmp_path)
    before = tree(run)
    outcome = invoke("train_transformer", transformer_argv(run, "--vocab_size=80"), capsys)
    assert_usage_error(outcome, "train_transformer", "--vocab_size=64 (now 80)")
    (run / "run.json").unlink()  # an older run: its vocab.model is checked instead
    outcome = invoke("train_transformer", transformer_argv(run, "--vocab_size=80"), capsys)
    assert_usage_error(outcome, "train_transformer", "vocab.model has 64 pieces")
    del before["run.json"]
    assert tree(run) == before


@pytest.mark.parametrize(
    "corrupt, binary, needle",
    [
        ("checkpoints/checkpoint.json", "train_resnet50", "checkpoint.json is corrupt"),
        ("run.json", "train_resnet50", "run.json is corrupt"),
        ("checkpoints/model.json", "checkpoint_sparsity", "model.json is corrupt"),
        ("checkpoints/ckpt-4.weights.h5", "checkpoint_sparsity", "ckpt-4.weights.h5 is corrupt"),
        ("checkpoints/ckpt-4.weights.h5", "evaluate_resnet50", "ckpt-4.weights.h5 is corrupt"),
    ],
)
def test_corrupt_files_are_named(corrupt, binary, needle, resnet_run, data_dir, tmp_path,
                                 capsys):  # fmt: skip
    run = copy_run(resnet_run, tmp_path)
    if corrupt.endswith(".json"):
        (run / corrupt).write_text('{"latest": 4, "st')
    else:
        truncate(run / corrupt)
    before = tree(run)
    if binary == "train_resnet50":
        argv = resnet_argv(data_dir, run)
    else:
        argv = [f"--checkpoint={run / 'checkpoints'}"]
        if binary == "evaluate_resnet50":
            argv.append(f"--data_dir={data_dir}")
    assert_usage_error(invoke(binary, argv, capsys), binary, needle)
    assert tree(run) == before


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--log_alpha_threshold=nan"], "--log_alpha_threshold=nan"),
        (["--checkpoint=/no/such/ckpt-3.weights.h5"], "/no/such/ckpt-3.weights.h5"),
        (["--checkpoint=OTHER"], "not of a resnet model"),
        (["--output_json=DIRECTORY"], "is a directory"),
    ],
)
def test_evaluate_resnet50_bad_inputs(argv, needle, resnet_run, transformer_run, data_dir,
                                      tmp_path, capsys):  # fmt: skip
    directory = tmp_path / "results"
    directory.mkdir()
    argv = [a.replace("OTHER", str(transformer_run)).replace("DIRECTORY", str(directory))
            for a in argv]  # fmt: skip
    base = [f"--checkpoint={resnet_run}", f"--data_dir={data_dir}"]
    before = tree(tmp_path)
    assert_usage_error(invoke("evaluate_resnet50", [*base, *argv], capsys), "evaluate_resnet50",
                       needle)  # fmt: skip
    assert tree(tmp_path) == before  # no stray .tmp beside --output_json


def test_checkpoint_sparsity_bad_threshold(resnet_run, capsys):
    argv = [f"--checkpoint={resnet_run}", "--log_alpha_threshold=nan"]
    assert_usage_error(invoke("checkpoint_sparsity", argv, capsys), "checkpoint_sparsity",
                       "--log_alpha_threshold=nan")  # fmt: skip


def test_decode_transformer_bad_inputs(transformer_run, resnet_run, tmp_path, capsys):
    source = tmp_path / "source.en"
    source.write_text("the dog sees a cat\n")
    latin = tmp_path / "latin1.en"
    latin.write_bytes("der Bär läuft\n".encode("latin-1"))
    before = tree(transformer_run)
    cases = [
        ([f"--checkpoint={resnet_run}", f"--source_file={source}"], "not of a transformer model"),
        ([f"--checkpoint={transformer_run}", f"--source_file={latin}"], f"{latin} is not UTF-8"),
        (
            [
                f"--checkpoint={transformer_run}",
                f"--source_file={source}",
                f"--output_file={tmp_path}",
            ],
            "is a directory",
        ),  # fmt: skip
        (
            [f"--checkpoint={transformer_run}", f"--source_file={tmp_path / 'none.en'}"],
            "--source_file",
        ),  # fmt: skip
    ]
    for argv, needle in cases:
        assert_usage_error(invoke("decode_transformer", argv, capsys), "decode_transformer", needle)
    assert tree(transformer_run) == before
    assert sorted(os.listdir(tmp_path)) == ["latin1.en", "source.en"]


def test_decode_transformer_reads_gzip_and_defaults_to_the_run(transformer_run, tmp_path, capsys):
    run = copy_run(transformer_run, tmp_path)
    source = tmp_path / "news.en.gz"
    with gzip.open(source, "wt", encoding="utf-8") as f:
        f.write("the dog sees a cat\nevery bird runs often\n")
    outcome = invoke("decode_transformer", [f"--checkpoint={run}", f"--source_file={source}"],
                     capsys)  # fmt: skip
    assert outcome.status == 0 and outcome.lines == [], outcome
    summary = json.loads(outcome.out[outcome.out.index("{") :])
    # Written into the run's directory (not beside the source), under the name --help gives.
    assert summary["output_file"] == str(run / "news.en.step3.beam4.decodes")
    assert summary["max_length"] == 32  # the run's own --max_length
    assert len((run / "news.en.step3.beam4.decodes").read_text().splitlines()) == 2
    assert sorted(os.listdir(tmp_path)) == ["news.en.gz", "run"]


# --------------------------------------------------------------------------------------------
# Reruns, corrupt checkpoints, kills


def test_rerun_of_a_finished_run_changes_nothing(resnet_run, transformer_run, data_dir,
                                                 tmp_path, capsys):  # fmt: skip
    resnet = copy_run(resnet_run, tmp_path, "resnet")
    before = tree(resnet)
    outcome = invoke("train_resnet50", resnet_argv(data_dir, resnet), capsys)
    assert outcome.status == 0 and outcome.lines == [], outcome
    assert "already finished" in outcome.out and "global sparsity 0.9000" in outcome.out
    assert tree(resnet) == before
    transformer = copy_run(transformer_run, tmp_path, "transformer")
    before = tree(transformer)
    outcome = invoke("train_transformer", transformer_argv(transformer), capsys)
    assert outcome.status == 0 and outcome.lines == [], outcome
    assert "already finished" in outcome.out
    assert tree(transformer) == before


def test_truncated_latest_checkpoint_falls_back_to_an_intact_one(resnet_run, data_dir, tmp_path,
                                                                 capsys):  # fmt: skip
    run = copy_run(resnet_run, tmp_path)
    truncate(run / "checkpoints" / "ckpt-4.weights.h5")
    outcome = invoke("train_resnet50", resnet_argv(data_dir, run), capsys)
    assert outcome.status == 0, outcome
    assert len(outcome.lines) == 1 and "warning" in outcome.lines[0], outcome
    assert "ckpt-4.weights.h5 is corrupt" in outcome.lines[0]
    assert_same_run(run, resnet_run)


def test_a_diverged_run_names_a_finite_checkpoint(data_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = resnet_argv(data_dir, out, "--base_learning_rate=1e30", "--steps_per_checkpoint=1",
                       "--pruning_method=baseline")  # fmt: skip
    outcome = invoke("train_resnet50", argv, capsys)
    assert outcome.status == 1, outcome
    assert len(outcome.lines) == 1 and outcome.lines[0].startswith("train_resnet50: diverged: ")
    named = re.search(r"Last good checkpoint: (\S+\.weights\.h5)", outcome.lines[0])
    assert named, outcome.lines
    _, values = weights(named.group(1))
    assert all(np.all(np.isfinite(v)) for v in values.values())
    saved = json.loads((out / "checkpoints" / "checkpoint.json").read_text())
    assert named.group(1).endswith(f"ckpt-{saved['latest']}.weights.h5")


def test_internal_errors_exit_3_with_the_traceback_in_a_log(resnet_run, data_dir, tmp_path,
                                                           capsys, monkeypatch):  # fmt: skip
    run = copy_run(resnet_run, tmp_path)
    (run / "results.json").unlink()  # the rerun must evaluate again
    before = tree(run)
    outcome = invoke("train_resnet50", resnet_argv(data_dir, run), capsys,
                     env={FAULT: "raise:eval"}, monkeypatch=monkeypatch)  # fmt: skip
    assert outcome.status == 3, outcome
    assert len(outcome.lines) == 1 and "internal error" in outcome.lines[0], outcome
    log = run / "train_resnet50-error.log"
    assert str(log) in outcome.lines[0]
    assert "Traceback" in log.read_text() and "fault injected at eval" in log.read_text()
    after = tree(run)
    del after["train_resnet50-error.log"]
    assert after == before


def test_killed_at_every_phase_then_rerun_ends_as_uninterrupted(resnet_run, data_dir, tmp_path,
                                                                capsys):  # fmt: skip
    """One run, killed (SIGKILL) in turn in training, mid-write of a checkpoint, in the final
    evaluation and right after the export; each kill followed by a rerun of the same command."""
    run = tmp_path / "run"
    argv = resnet_argv(data_dir, run)
    for phase, left in (
        ("train@3", "checkpoints/ckpt-2.weights.h5"),
        ("checkpoint@4", "checkpoints/.tmp-4.weights.h5"),
        ("eval", "checkpoints/ckpt-4.weights.h5"),
        ("export", "saved_model/saved_model.pb"),
    ):
        killed = invoke_subprocess("train_resnet50", argv, env={FAULT: f"kill:{phase}"})
        assert killed.status == -9, (phase, killed)
        assert (run / left).exists() and not (run / "results.json").exists(), phase
    # As if a kill had also cut an export short: its staging directory is left behind.
    (run / ".export-leftover").mkdir()
    (run / ".export-leftover" / "saved_model.pb").write_bytes(b"partial")
    started = time.monotonic()
    outcome = invoke("train_resnet50", argv, capsys)
    last = time.monotonic() - started
    assert outcome.status == 0, outcome
    assert len(outcome.lines) == 1 and ".export-leftover, left by a killed run" in outcome.lines[0]
    # seconds: every invocation's time up to the checkpoint it resumed from, plus the last one.
    seconds = json.loads((run / "checkpoints" / "checkpoint.json").read_text())["seconds"]
    total = json.loads((run / "results.json").read_text())["seconds"]
    assert (
        0 < seconds["2"] < seconds["4"] and seconds["4"] + 0.9 * last < total < seconds["4"] + last
    )
    assert_same_run(run, resnet_run)


def test_eval_mode_evaluates_the_newest_checkpoint_into_eval_json(resnet_run, data_dir,
                                                                  tmp_path, capsys):  # fmt: skip
    run = copy_run(resnet_run, tmp_path)
    before = tree(run)
    outcome = invoke("train_resnet50", resnet_argv(data_dir, run, "--mode=eval"), capsys)
    assert outcome.status == 0 and outcome.lines == [], outcome
    evaluation = json.loads((run / "eval.json").read_text())
    results = json.loads((run / "results.json").read_text())
    assert evaluation["step"] == 4
    assert evaluation["eval"]["top_1"] == pytest.approx(results["eval"]["top_1"])
    assert evaluation["eval"]["global_sparsity"] == pytest.approx(0.9, abs=0.01)
    after = tree(run)
    del after["eval.json"]
    assert after == before


# --------------------------------------------------------------------------------------------
# train_lenet (its flags clash with the harness's: real processes)


def test_train_lenet_bad_data_files(tmp_path):
    columns = tmp_path / "columns.csv.gz"
    with gzip.open(columns, "wt") as f:
        f.write("1,2,3\n4,5,6\n")
    plain = tmp_path / "plain.csv.gz"
    plain.write_text("0," * 784 + "7\n")
    for path, needle in ((columns, "expected 5000 rows of 785 values"), (plain, "gzip")):
        out = tmp_path / "out"
        outcome = invoke_subprocess("train_lenet", [f"--data_path={path}", f"--output_dir={out}"])
        assert outcome.status == 2, outcome
        assert len(outcome.lines) == 1, outcome  # no traceback, no CUDA start-up error line
        assert f"--data_path={path}" in outcome.lines[0] and needle in outcome.lines[0]
        assert not out.exists()


def test_train_lenet_merges_a_technique_into_the_table(tmp_path):
    out = tmp_path / "out"
    argv = [f"--output_dir={out}", "--epochs=1", "--verbose=0"]
    done = invoke_subprocess("train_lenet", [*argv, "--technique=dense"])
    assert done.status == 0, done
    dense = json.loads((out / "results.json").read_text())["results"]["dense"]
    done = invoke_subprocess(
        "train_lenet",
        [*argv, "--technique=random_pruning", "--end_pruning_step=20", "--pruning_frequency=5"],
    )
    assert done.status == 2 and "--end_pruning_step=-1 (now 20)" in done.lines[0], done
    done = invoke_subprocess("train_lenet", [*argv, "--technique=random_pruning"])
    assert done.status == 0, done
    results = json.loads((out / "results.json").read_text())["results"]
    assert list(results) == ["dense", "random_pruning"] and results["dense"] == dense
    assert "dense" in done.out and "random_pruning" in done.out  # the whole table
    assert sorted(os.listdir(out / "saved_model")) == ["dense", "random_pruning"]


def test_a_binary_without_the_paper_extra_says_which_extra_to_install(tmp_path):
    """Modules of the paper extra made unimportable: one line, exit 2, nothing written."""
    code = (
        "import sys, runpy\n"
        "sys.modules['sacrebleu'] = None\n"
        "sys.argv = ['train_lenet', '--output_dir=out']\n"
        "runpy.run_module('state_of_sparsity.paper.cli.train_lenet', run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)  # fmt: skip
    assert done.returncode == 2
    lines = [x for x in done.stderr.splitlines() if x.strip() and not START_UP_NOISE.match(x)]
    assert lines == [
        "train_lenet: error: the paper's binaries need sacrebleu: pip install "
        '"state-of-sparsity[paper]".'
    ]
    assert os.listdir(tmp_path) == []
