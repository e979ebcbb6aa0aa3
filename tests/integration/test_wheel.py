"""The package as users install it: a wheel, installed outside the repository, runs train_lenet
from another directory on the MNIST-5k copy it ships (package data)."""

import configparser
import glob
import os
import subprocess
import sys
import zipfile

import pytest

pytestmark = pytest.mark.tensorflow_only

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out), ROOT],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    (path,) = glob.glob(str(out / "state_of_sparsity-*.whl"))
    return path


def test_wheel_ships_the_data_and_the_console_scripts(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
        scripts = configparser.ConfigParser()
        scripts.read_string(archive.read(entry_points).decode())
    assert "state_of_sparsity/paper/data/mnist5k_files/mnist_5k.csv.gz" in names
    assert not [n for n in names if n.startswith("tests/")]
    assert (
        scripts["console_scripts"]["train_lenet"] == "state_of_sparsity.paper.cli.train_lenet:main"
    )


def test_installed_train_lenet_runs_from_another_directory(wheel, tmp_path):
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
         "--target", str(target), wheel],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "2"}
    code = (
        "import state_of_sparsity; open('where.txt', 'w').write(state_of_sparsity.__file__)\n"
        "from state_of_sparsity.paper.cli.train_lenet import main; main()"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, "--technique=dense", "--epochs=1", "--verbose=0",
         "--output_dir=out"],
        capture_output=True, text=True, cwd=elsewhere, env=env, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert (elsewhere / "out" / "results.json").is_file()
    assert (elsewhere / "where.txt").read_text().startswith(str(target))  # not the repository
