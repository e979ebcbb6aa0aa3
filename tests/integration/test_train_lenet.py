"""End to end: the train_lenet binary, every technique, on the embedded MNIST-5k."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from state_of_sparsity.paper.data import mnist5k

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(ROOT, "bin", "train_lenet.py")
TECHNIQUES = [
    "dense",
    "magnitude_pruning",
    "random_pruning",
    "variational_dropout",
    "l0_regularization",
]


def run(*flags):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, BINARY, *flags], capture_output=True, text=True, env=env, timeout=900
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("lenet") / "out")
    proc = run(
        "--technique=all",
        "--epochs=2",
        "--end_pruning_step=40",
        "--pruning_frequency=10",
        "--kl_weight=3e-4",
        "--l0_weight=3e-3",
        "--log_alpha_threshold=3,0.5",
        "--learning_rate=0.01",
        "--verbose=0",
        f"--output_dir={out}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


def test_outputs_exist(tiny_run):
    out, stdout = tiny_run
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)["results"]
    assert list(results) == TECHNIQUES
    for technique in TECHNIQUES:
        assert os.path.isfile(os.path.join(out, "saved_model", technique, "saved_model.pb"))
        logs = os.path.join(out, "logs", technique, "train")
        assert any(name.startswith("events.out") for name in os.listdir(logs))
        assert technique in stdout
    with open(os.path.join(out, "results.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert set(results["variational_dropout"]["thresholds"]) == {"3.0", "0.5"}
    assert not [n for n in os.listdir(os.path.join(out, "saved_model")) if n.startswith(".")]


@pytest.mark.tensorflow_only
def test_reported_numbers_match_the_exported_models(tiny_run):
    import tensorflow as tf

    out, _ = tiny_run
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)["results"]
    _, (x_test, y_test) = mnist5k.load()
    for technique, result in results.items():
        reloaded = tf.saved_model.load(os.path.join(out, "saved_model", technique))
        kernels = {
            v.name.split("/")[0]: v.numpy() for v in reloaded.variables if "kernel" in v.name
        }
        nonzeros = sum(np.count_nonzero(k) for k in kernels.values())
        assert nonzeros == result["nonzeros"], technique
        assert sum(k.size for k in kernels.values()) == result["weights"] == 266_200
        for layer in result.get("layers", []):
            assert np.count_nonzero(kernels[layer["name"]]) == layer["nonzeros"]
        logits = reloaded.serve(tf.constant(x_test)).numpy()
        accuracy = float(np.mean(np.argmax(logits, 1) == y_test))
        assert accuracy == pytest.approx(result["accuracy"], abs=1e-6), technique
    pruned = results["magnitude_pruning"]
    assert pruned["global_sparsity"] == pytest.approx(0.95, abs=1e-4)


def test_plot_results_reads_the_table_and_draws_it_as_train_lenet(tiny_run, tmp_path, capsys):
    """train_lenet's results.png is a LeNet panel of plot_results (one drawing code): both are
    real figures, and plot_results' table holds the run's rows."""
    import matplotlib.image
    from absl import flags as absl_flags

    from state_of_sparsity.paper.cli import plot_results

    out, _ = tiny_run
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)["results"]
    absl_flags.FLAGS.unparse_flags()
    try:
        absl_flags.FLAGS(["plot_results", f"--runs={out}", f"--output_dir={tmp_path}", "--layers"])
        assert plot_results._main(["plot_results"]) == 0
    finally:
        absl_flags.FLAGS.unparse_flags()
    captured = capsys.readouterr()
    assert "--layers:" in captured.err  # no layer roles for LeNet: a warning, not an error
    rows = [line.split() for line in (tmp_path / "results.txt").read_text().splitlines()[3:]]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (out, t, f"{results[t]['global_sparsity']:.2%}", f"{100 * results[t]['accuracy']:.2f}")
        for t in TECHNIQUES
    ]
    for path in (os.path.join(out, "results.png"), tmp_path / "results.png"):
        image = matplotlib.image.imread(str(path))[..., :3]
        assert (image < 0.95).any(axis=-1).mean() > 0.03
        assert len(np.unique((image * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--technique=pruning", "--technique"),
        ("--target_sparsity=1.0", "--target_sparsity"),
        ("--epochs=-1", "--epochs"),
        ("--log_alpha_threshold=abc", "--log_alpha_threshold"),
    ],
)
def test_bad_flags_fail_cleanly_and_write_nothing(tmp_path, flag, message):
    out = tmp_path / "out"
    proc = run(flag, f"--output_dir={out}")
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = run("--technique=dense", "--epochs=1", f"--output_dir={blocker}")
    assert proc.returncode == 2 and "--output_dir" in proc.stderr
    assert blocker.read_text() == "not a directory"
    proc = run("--technique=dense", "--epochs=1", f"--output_dir={blocker}/sub")
    assert proc.returncode == 2 and f"--output_dir={blocker}/sub cannot be created" in proc.stderr


MOCK_MNIST = """
import sys
import tensorflow_datasets as tfds
from state_of_sparsity.paper.cli import train_lenet
with tfds.testing.mock_data(num_examples=200):
    sys.argv = ["train_lenet", *sys.argv[1:]]
    train_lenet.main()
"""


def test_appendix_b_setup_on_full_mnist_from_tfds(tmp_path):
    """``--setup=appendix_b`` (Table 3) on tfds ``mnist`` (mock data: 200 random digits, nothing
    read or downloaded), one epoch; its settings land in run.json, the τ sweep in the table."""
    out = tmp_path / "out"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", MOCK_MNIST, "--setup=appendix_b", "--epochs=1",
         "--reg_begin_step=0", "--reg_end_step=1", f"--output_dir={out}",
         "--data_dir=/nonexistent", "--verbose=0"],  # fmt: skip
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "lenet_300_100 on MNIST (200 train / 200 test)" in proc.stdout
    config = json.loads((out / "results.json").read_text())
    flags_ = config["config"]
    assert (flags_["dataset"], flags_["technique"], flags_["batch_size"]) == (
        "mnist", "variational_dropout", 100)  # fmt: skip
    assert flags_["kl_weight"] == pytest.approx(1 / 60000)
    assert flags_["learning_rate_decay"] == "linear_second_half"
    assert config["train_steps"] == 2
    row = config["results"]["variational_dropout"]
    assert sorted(map(float, row["thresholds"])) == [0.1, 2.0, 3.0] and row["threshold"] == 3.0
