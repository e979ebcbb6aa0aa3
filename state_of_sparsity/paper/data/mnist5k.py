"""MNIST-5k: 5,000 real MNIST digits shipped with the package in ``mnist5k_files/`` (package
data; see the README there for their source and licences).

Fixed split: in file order, the first ``TRAIN_PER_CLASS`` = 400 digits of each class form the
training set (4,000 images) and the remaining 100 of each class the test set (1,000 images).
Pixels are scaled to [0, 1] (float32), images shaped 28×28×1, labels int32 0–9.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_PATH", "TRAIN_PER_CLASS", "load"]

DEFAULT_PATH = Path(__file__).resolve().parent / "mnist5k_files" / "mnist_5k.csv.gz"
TRAIN_PER_CLASS = 400
_ROWS, _PIXELS = 5000, 784


def load(path: str | os.PathLike | None = None):
    """Returns ``(x_train, y_train), (x_test, y_test)`` from the MNIST-5k CSV.

    ``path`` defaults to the copy shipped with the package.
    """
    path = Path(path) if path is not None else DEFAULT_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"MNIST-5k file not found at {str(path)!r}; pass the path of mnist_5k.csv.gz "
            f"(the package's copy is {str(DEFAULT_PATH)!r})."
        )
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.float32)
    if data.shape != (_ROWS, _PIXELS + 1):
        raise ValueError(
            f"{path}: expected {_ROWS} rows of {_PIXELS + 1} values, got {data.shape}."
        )
    images = (data[:, :_PIXELS] / 255.0).reshape(-1, 28, 28, 1)
    labels = data[:, _PIXELS].astype(np.int32)
    rank = np.zeros(len(labels), np.int64)  # position of each digit within its class
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        rank[members] = np.arange(len(members))
    train = rank < TRAIN_PER_CLASS
    return (images[train], labels[train]), (images[~train], labels[~train])
