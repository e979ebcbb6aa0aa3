"""plot_results on run directories made by train_resnet50 and train_transformer on testdata/.

The binaries run in this process (as in test_train_resnet50.py / test_train_transformer.py), once
per module. The table's paper columns are checked against the CSVs read here with the csv
module; the figures against a paper-only figure and by their pixels.
"""

import csv
import json
import os
import pathlib
import re

import numpy as np
import pytest
from absl import flags

pytestmark = pytest.mark.tensorflow_only

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "state_of_sparsity" / "paper" / "results" / "data"
MANUAL = ROOT / "testdata" / "imagenet" / "manual"
CORPUS = ROOT / "testdata" / "translation"


def run_binary(module, argv):
    flags.FLAGS.unparse_flags()
    try:
        flags.FLAGS([module.BINARY, *argv])
        return module._main([module.BINARY])
    finally:
        flags.FLAGS.unparse_flags()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A magnitude-pruning run (90 %) of each binary, a few steps on testdata."""
    from state_of_sparsity.paper.cli import train_resnet50, train_transformer

    root = tmp_path_factory.mktemp("runs")
    resnet, transformer = str(root / "resnet"), str(root / "transformer")
    assert run_binary(train_resnet50, [
        f"--output_dir={resnet}", f"--data_dir={root / 'tfds'}", f"--manual_dir={MANUAL}",
        "--image_size=32", "--width=0.125", "--resnet_depth=18", "--train_steps=3",
        "--train_batch_size=8", "--eval_batch_size=4", "--mode=train", "--noexport",
        "--verbose=0", "--pruning_method=threshold", "--end_sparsity=0.9",
        "--sparsity_begin_step=0", "--sparsity_end_step=2", "--pruning_frequency=1",
    ]) == 0  # fmt: skip
    assert run_binary(train_transformer, [
        f"--output_dir={transformer}", f"--train_source={CORPUS}/train.en.gz",
        f"--train_target={CORPUS}/train.de.gz", f"--eval_source={CORPUS}/dev.en",
        f"--eval_target={CORPUS}/dev.de", "--preset=tiny", "--hidden_size=32",
        "--filter_size=64", "--num_heads=2", "--num_layers=1", "--vocab_size=64",
        "--batch_tokens=256", "--max_length=32", "--bleu_sentences=2", "--beam_size=1",
        "--train_steps=3", "--noexport", "--verbose=0",
        "--sparsity_technique=magnitude_pruning", "--target_sparsity=0.9",
        "--begin_pruning_step=0", "--end_pruning_step=2", "--pruning_frequency=1",
    ]) == 0  # fmt: skip
    return resnet, transformer


def plot(*argv):
    from state_of_sparsity.paper.cli import plot_results

    return run_binary(plot_results, list(argv))


@pytest.fixture(scope="module")
def plotted(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("plot")
    assert plot(f"--runs={','.join(runs)}", "--layers", f"--output_dir={out}") == 0
    return out


def results(run):
    with open(os.path.join(run, "results.json")) as f:
        return json.load(f)["eval"]


def best_in_csv(name, metric, sparsity, level):
    """The best metric among the rows of ``name`` whose sparsity is ``level`` (to 0.5 %)."""
    (path,) = DATA.rglob(name)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return max(float(r[metric]) for r in rows if abs(float(r[sparsity]) - level) < 0.005)


def table_row(text, label):
    (line,) = [line for line in text.splitlines() if line.startswith(label + " ")]
    return re.split(r"\s{2,}", line.strip())


def test_table_sets_each_run_beside_the_papers_best(runs, plotted):
    text = (plotted / "results.txt").read_text()
    resnet, transformer = runs
    top_1, sparsity = results(resnet)["top_1"], results(resnet)["global_sparsity"]
    paper = 100 * best_in_csv("rn50_magnitude_pruning.csv", "accuracy", "Sparsity", 0.9)
    assert paper == pytest.approx(73.91, abs=0.005)
    assert table_row(text, resnet) == [
        resnet, "magnitude_pruning", f"{sparsity:.2%}", f"{100 * top_1:.2f}", "90.0%",
        f"{paper:.2f}", f"{100 * top_1 - paper:+.2f}", "recipe resnet50/magnitude_pruning_90",
    ]  # fmt: skip
    bleu, sparsity = results(transformer)["bleu_tokenized"], results(transformer)["global_sparsity"]
    paper = best_in_csv("transformer_magnitude_pruning.csv", "Moses BLEU", "Sparsity", 0.9)
    assert paper == 23.26
    assert table_row(text, transformer) == [
        transformer, "magnitude_pruning", f"{sparsity:.2%}", f"{bleu:.2f}", "90.0%",
        f"{paper:.2f}", f"{bleu - paper:+.2f}", "recipe transformer/magnitude_pruning_90",
    ]  # fmt: skip


def rgb(path):
    import matplotlib.image

    return matplotlib.image.imread(str(path))[..., :3]


def test_the_figure_draws_the_runs_over_the_paper(runs, plotted, tmp_path):
    image = rgb(plotted / "results.png")
    assert image.shape == (600, 1680, 3)  # two panels
    assert (image < 0.95).any(axis=-1).mean() > 0.05  # far from blank
    assert len(np.unique((image * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 200
    # The same panels without the runs: the runs change the picture.
    assert plot("--benchmarks=resnet50,transformer", f"--output_dir={tmp_path}") == 0
    assert not (tmp_path / "results.txt").exists()
    paper_only = rgb(tmp_path / "results.png")
    assert paper_only.shape == image.shape
    assert (np.abs(paper_only - image).max(axis=-1) > 0.2).mean() > 0.005


def role_sparsity(layers, pattern):
    rows = [r for r in layers if re.fullmatch(pattern, r["name"])]
    return 1 - sum(r["nonzeros"] for r in rows) / sum(r["weights"] for r in rows)


def test_sparsity_by_layer_role(runs, plotted):
    text = (plotted / "results.txt").read_text()
    resnet, transformer = runs
    for i, (run, patterns) in enumerate([
        (resnet, {"stem": "initial_conv", "3x3": r"group\d_block\d_conv\d",
                  "projection": r"group\d_block1_proj", "fc": "final_dense"}),
        (transformer, {"embedding": "shared_embedding", "attention q": r".*attention/query",
                       "attention k": r".*attention/key", "attention v": r".*attention/value",
                       "attention output": r".*attention_output", "ffn in": r".*_ffn_1",
                       "ffn out": r".*_ffn_2"}),
    ]):  # fmt: skip
        layers = results(run)["sparsity"]["layers"]
        section = text[text.index(f"Sparsity by layer role: {run} ") :].split("\n\n")[0]
        lines = section.splitlines()[3:]  # after the title, the header and the rule
        roles = {cells[0]: cells[-1] for cells in (re.split(r"\s{2,}", line) for line in lines)}
        assert roles == {
            role: f"{role_sparsity(layers, pattern):.2%}" for role, pattern in patterns.items()
        }
        assert all(abs(float(v.rstrip("%")) - 90) < 1.5 for v in roles.values())
        figure = rgb(plotted / f"layers_{i}.png")
        assert (figure < 0.95).any(axis=-1).mean() > 0.05


def test_bad_inputs_are_one_line_errors(runs, tmp_path, capsys):
    resnet, _ = runs
    (tmp_path / "empty").mkdir()
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "run.json").write_text(pathlib.Path(resnet, "run.json").read_text())
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "run.json").write_text(pathlib.Path(resnet, "run.json").read_text())
    (corrupt / "results.json").write_text("{not json")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "run.json").write_text(pathlib.Path(resnet, "run.json").read_text())
    (foreign / "results.json").write_text('{"eval": {}}')
    out = tmp_path / "out"
    for argv, message in [
        ([f"--runs={tmp_path / 'missing'}"], f"{tmp_path / 'missing'} is not a directory"),
        ([f"--runs={tmp_path / 'empty'}"], "is not a run directory (no run.json)"),
        ([f"--runs={resnet},{unfinished}"], f"{unfinished} has no results.json"),
        ([f"--runs={corrupt}"], f"{corrupt / 'results.json'} is corrupt (not JSON"),
        ([f"--runs={foreign}"], f"{foreign / 'results.json'} is corrupt (not train_resnet50's"),
        ([], "Give --runs"),
        (["--benchmarks=lenet"], "--benchmarks: 'lenet' is unknown"),
    ]:
        assert plot(*argv, f"--output_dir={out}") == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("plot_results: error: ") and message in err, err
        assert "\n" not in err
        assert not out.exists()
