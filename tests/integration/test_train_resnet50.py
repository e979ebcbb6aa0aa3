"""train_resnet50 end to end on the tiny ImageNet of testdata/ (TensorFlow backend).

The binaries run in this process (absl flags parsed per run) so the many short runs share one
TensorFlow start-up; the mirrored-strategy run is a real subprocess. Kills, reruns and bad
inputs: test_faults.py.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow_only

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANUAL = os.path.join(ROOT, "testdata", "imagenet", "manual")
TECHNIQUES = {
    "baseline": [],
    "threshold": ["--sparsity_begin_step=0", "--sparsity_end_step=4", "--pruning_frequency=2"],
    "random_pruning": ["--sparsity_begin_step=0", "--sparsity_end_step=4", "--pruning_frequency=2"],
    "variational_dropout": [
        "--reg_scalar=1e-4",
        "--log_alpha_threshold=0.5",
        "--sparsity_begin_step=0",
        "--sparsity_end_step=4",
    ],
    "l0_regularization": ["--reg_scalar=1e-4", "--sparsity_begin_step=0", "--sparsity_end_step=4"],
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module", autouse=True)
def deterministic_ops():
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def common(data_dir, output_dir, steps, *extra):
    return [
        f"--output_dir={output_dir}",
        f"--data_dir={data_dir}",
        f"--manual_dir={MANUAL}",
        "--image_size=32",
        "--width=0.125",
        "--resnet_depth=18",
        f"--train_steps={steps}",
        "--train_batch_size=8",
        "--eval_batch_size=4",
        "--steps_per_checkpoint=3",
        "--steps_per_eval=3",
        "--verbose=0",
        *extra,
    ]


def run_in_process(argv):
    from absl import flags

    from state_of_sparsity.paper.cli import train_resnet50

    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train_resnet50", *argv])
    return train_resnet50._main(["train_resnet50"])


def final_weights(output_dir, checkpoint=""):
    """(step, values) of ``checkpoint`` in the run's checkpoints/ (default: the latest)."""
    from state_of_sparsity.paper.training.checkpoints import load_model_from_checkpoint

    model, step = load_model_from_checkpoint(os.path.join(output_dir, "checkpoints", checkpoint))
    # Keyed by position and name: auto-generated paths (seed generators) differ between runs.
    return step, {f"{i}:{v.name}": np.asarray(v) for i, v in enumerate(model.weights)}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for path in a:
        if path.endswith("mask"):
            np.testing.assert_array_equal(a[path], b[path], err_msg=path)
        else:
            np.testing.assert_allclose(a[path], b[path], rtol=1e-5, atol=1e-6, err_msg=path)


# The four techniques (the dense path is what they add to; it trains in test_faults.py).
@pytest.mark.parametrize("method", sorted(set(TECHNIQUES) - {"baseline"}))
def test_trains_resumes_identically_evaluates_and_exports(method, data_dir, tmp_path):
    flags_ = ["--pruning_method=" + method, *TECHNIQUES[method]]
    straight, split = tmp_path / "straight", tmp_path / "split"
    # Only the final run exports (--export may change between invocations of a run).
    assert run_in_process(common(data_dir, straight, 6, *flags_, "--noexport")) == 0
    assert run_in_process(common(data_dir, split, 3, *flags_, "--noexport")) == 0  # stopped
    assert run_in_process(common(data_dir, split, 6, *flags_)) == 0  # the same command resumes
    step_a, a = final_weights(straight)
    step_b, b = final_weights(split)
    assert step_a == step_b == 6
    assert_same_weights(a, b)
    with open(split / "results.json") as f:
        results = json.load(f)
    assert results["step"] == 6 and set(results["eval"]) >= {"top_1", "top_5", "global_sparsity"}
    # The evaluation at step 3, made before the "interruption", survives the resume.
    straight_history = json.loads((straight / "results.json").read_text())["history"]
    assert (
        [h["step"] for h in results["history"]] == [h["step"] for h in straight_history] == [3, 6]
    )
    for got, want in zip(results["history"], straight_history, strict=True):
        assert got["top_1"] == pytest.approx(want["top_1"])
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    assert os.path.isfile(split / "saved_model" / "saved_model.pb")
    assert os.listdir(split / "logs")
    if method in ("threshold", "random_pruning"):
        assert results["eval"]["global_sparsity"] == pytest.approx(0.9, abs=0.01)


def test_first_and_last_layer_targets_together(data_dir, tmp_path):
    out = tmp_path / "out"
    argv = common(data_dir, out, 5, "--pruning_method=threshold", "--sparsity_begin_step=0",
                  "--sparsity_end_step=4", "--pruning_frequency=2", "--prune_first_layer=false",
                  "--last_layer_sparsity=0.8", "--end_sparsity=0.5", "--mode=train",
                  "--noexport")  # fmt: skip
    assert run_in_process(argv) == 0
    with open(out / "results.json") as f:
        layers = {r["name"]: r for r in json.load(f)["eval"]["sparsity"]["layers"]}
    assert "initial_conv" not in layers
    assert layers["final_dense"]["sparsity"] == pytest.approx(0.8, abs=1e-3)
    assert layers["group1_block1_conv1"]["sparsity"] == pytest.approx(0.5, abs=0.02)


def test_n_m_pattern_flag(data_dir, tmp_path):
    out = tmp_path / "out"
    argv = common(data_dir, out, 5, "--pruning_method=threshold", *TECHNIQUES["threshold"],
                  "--sparsity_pattern=2:4", "--end_sparsity=0.5", "--mode=train",
                  "--noexport")  # fmt: skip
    assert run_in_process(argv) == 0
    _, weights = final_weights(out)
    masks = {p: m for p, m in weights.items() if p.endswith("mask")}
    assert masks
    for path, mask in masks.items():
        # At most 2 non-zeros in every 4 consecutive input channels of one output at one
        # kernel position (the input channels are the second-to-last axis).
        *position, fan_in, fan_out = mask.shape
        groups = mask.reshape(*position, fan_in // 4, 4, fan_out)
        assert groups.sum(axis=-2).max() <= 2, path
        assert mask.mean() == pytest.approx(0.5), path


def run_subprocess(binary, argv):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, os.path.join(ROOT, "bin", f"{binary}.py"), *argv]
    return subprocess.run(command, env=env, capture_output=True, text=True)


def test_mirrored_strategy_gives_the_same_masks(data_dir, tmp_path):
    argv = ["--pruning_method=random_pruning", *TECHNIQUES["random_pruning"], "--mode=train",
            "--noexport"]  # fmt: skip
    assert run_in_process(common(data_dir, tmp_path / "one", 6, *argv)) == 0
    # Its own process: two MirroredStrategy objects in one process share collective keys.
    mirrored = common(data_dir, tmp_path / "two", 6, *argv, "--distribution_strategy=mirrored",
                      "--logical_cpus=2")  # fmt: skip
    done = run_subprocess("train_resnet50", mirrored)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "2 replicas" in done.stdout
    _, one = final_weights(tmp_path / "one")
    _, two = final_weights(tmp_path / "two")
    masks = [p for p in one if p.endswith("mask")]
    assert masks
    for path in masks:
        np.testing.assert_array_equal(one[path], two[path], err_msg=path)


def test_scratch_and_lottery_ticket(data_dir, tmp_path):
    source = tmp_path / "mp"
    mp = ["--pruning_method=threshold", *TECHNIQUES["threshold"], "--mode=train", "--noexport"]
    assert run_in_process(common(data_dir, source, 6, *mp)) == 0
    _, masks = final_weights(source)
    checkpoints = source / "checkpoints"
    lottery = tmp_path / "lottery"
    argv = ["--pruning_method=scratch", f"--load_mask_dir={checkpoints}", "--mode=train",
            f"--initial_value_checkpoint={checkpoints / 'ckpt-0.weights.h5'}",
            "--noexport"]  # fmt: skip
    assert run_in_process(common(data_dir, lottery, 3, *argv)) == 0
    _, ticket = final_weights(lottery)
    for path, value in masks.items():
        if path.endswith("mask"):
            np.testing.assert_array_equal(ticket[path], value)  # fixed masks throughout
    # A lottery ticket starts from the source's step-0 values (scratch-e: test_scratch_e_...).
    _, ticket_start = final_weights(lottery, "ckpt-0.weights.h5")
    _, source_start = final_weights(source, "ckpt-0.weights.h5")
    kernels = [p for p in source_start if p.endswith("kernel")]
    assert kernels
    for path in kernels:
        np.testing.assert_array_equal(ticket_start[path], source_start[path], err_msg=path)
    wrong = tmp_path / "wrong"
    bad = common(data_dir, wrong, 3, *argv)
    bad[bad.index("--resnet_depth=18")] = "--resnet_depth=34"
    assert run_in_process(bad) == 2


def parse(*argv):
    """train_resnet50 with ``argv`` parsed and validated (nothing run)."""
    from absl import flags

    from state_of_sparsity.paper.cli import train_resnet50

    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train_resnet50", *argv])
    train_resnet50.validate()
    return train_resnet50


def test_paper_defaults_vd_threshold_and_train_steps_of_the_lr_schedule():
    assert parse().FLAGS.log_alpha_threshold == 0.5  # every ResNet-50 VD number of the paper
    assert parse().FLAGS.train_steps == 128000
    assert parse("--lr_schedule=extended").FLAGS.train_steps == 192000  # 1.5x
    assert parse("--lr_schedule=lr_constant_decay").FLAGS.train_steps == 256000  # scratch-b: 2x
    assert parse("--lr_schedule=lr_scaled", "--train_steps=7").FLAGS.train_steps == 7


def test_scratch_e_initialises_afresh():
    tiny = ["--resnet_depth=18", "--width=0.125", "--image_size=32", "--num_train_images=64"]
    source = parse(*tiny, "--pruning_method=threshold").build_model(10)
    scratch = parse(*tiny, "--pruning_method=scratch", "--load_mask_dir=mp").build_model(10)
    pairs = [(a, b) for a, b in zip(source.weights, scratch.weights, strict=True)
             if a.name == "kernel"]  # fmt: skip
    assert len(pairs) == 22  # 21 convolutions (4 projections) and the head
    for a, b in pairs:  # the same --seed, yet a fresh initialisation
        assert not np.allclose(np.asarray(a), np.asarray(b)), a.path


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--lr_schedule=lr_bogus"],
            "--lr_schedule: 'lr_bogus' is not a preset; use one of standard, extended, lr_scaled, "
            "lr_constant_final, lr_continual_decay, lr_constant_decay.",
        ),  # fmt: skip
        (["--end_sparsity=1.0"], "--end_sparsity"),
        (["--pruning_method=scratch"], "--load_mask_dir"),
        (["--init_method=sparse", "--pruning_method=variational_dropout"], "--init_method"),
        (["--manual_dir=/no/such/dir"], "--manual_dir"),
        (["--dataset=no_such_dataset"], "Unknown tfds dataset"),
        (["--sparsity_pattern=2:4", "--pruning_method=threshold"], "sets the sparsity at 0.5"),
        (["--sparsity_pattern=3-4", "--pruning_method=threshold"], "'N:M' or (N, M)"),
        (["--sparsity_distribution=erk", "--pruning_method=l0_regularization"], "not l0_"),
        (
            [
                "--sparsity_distribution=global",
                "--pruning_method=threshold",
                "--last_layer_sparsity=0.8",
            ],
            "per-layer targets",
        ),  # fmt: skip
    ],
)
def test_bad_flags_are_clear_errors(extra, message, data_dir, tmp_path, capsys):
    argv = common(data_dir, tmp_path / "out", 3, *extra)
    assert run_in_process(argv) == 2
    assert message in capsys.readouterr().err


def run_tool(binary, argv):
    """A tool in this process (the tools' flags coexist with the trainers')."""
    import importlib

    from absl import flags

    module = importlib.import_module(f"state_of_sparsity.paper.cli.{binary}")
    flags.FLAGS.unparse_flags()
    flags.FLAGS([binary, *argv])
    return module._main([binary])


def test_evaluate_and_checkpoint_sparsity_tools(data_dir, tmp_path, capsys):
    out = tmp_path / "vd"
    argv = ["--pruning_method=variational_dropout", *TECHNIQUES["variational_dropout"],
            "--log_alpha_threshold=3"]  # fmt: skip
    assert run_in_process(common(data_dir, out, 3, *argv, "--mode=train", "--noexport")) == 0
    checkpoint = out / "checkpoints" / "ckpt-3.weights.h5"
    assert run_tool("evaluate_resnet50", [
        f"--checkpoint={checkpoint}", f"--data_dir={data_dir}", "--eval_batch_size=4",
        f"--output_json={tmp_path / 'eval.json'}"]) == 0  # fmt: skip
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["step"] == 3 and result["threshold"] == 0.5  # the paper's, not the model's 3
    assert 0.0 <= result["top_1"] <= result["top_5"] <= 1.0
    capsys.readouterr()
    assert run_tool("checkpoint_sparsity",
                    [f"--checkpoint={checkpoint}", "--log_alpha_threshold=0.5"]) == 0  # fmt: skip
    percent = float(capsys.readouterr().out.strip().split("= ")[-1].rstrip("%"))
    assert percent == pytest.approx(100 * result["global_sparsity"])
