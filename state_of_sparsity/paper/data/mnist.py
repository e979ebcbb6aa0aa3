"""Full MNIST (60,000 train / 10,000 test digits) from tfds ``mnist``, for the paper's Appendix B
(Table 3: VD on LeNet-300-100 and LeNet-5-Caffe, after Molchanov et al. 2017).

The dataset must be prepared in ``data_dir`` already (``tfds build mnist --data_dir=DIR`` on a
machine with network access): nothing is downloaded here. Same arrays as ``mnist5k.load``:
pixels scaled to [0, 1] (float32), images 28×28×1, labels int32 0–9, in tfds's file order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NAME", "load"]

NAME = "mnist"


def load(data_dir=None):
    """Returns ``(x_train, y_train), (x_test, y_test)`` of tfds ``mnist`` in ``data_dir``
    (None: tfds's default directory). ValueError when it is not prepared there."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(NAME, data_dir=data_dir)
    try:
        splits = [builder.as_dataset(split=s, shuffle_files=False) for s in ("train", "test")]
    except AssertionError:  # tfds: "could not find data in ..." (not prepared there)
        raise ValueError(
            f"tfds dataset {NAME!r} is not prepared in --data_dir={data_dir!r}; prepare it there "
            f"(`tfds build {NAME} --data_dir=...` with network access): nothing is downloaded "
            "here."
        ) from None

    def arrays(split):
        batches = list(tfds.as_numpy(split.batch(10_000)))
        images = np.concatenate([b["image"] for b in batches])
        labels = np.concatenate([b["label"] for b in batches])
        return images.astype(np.float32) / 255.0, labels.astype(np.int32)

    return arrays(splits[0]), arrays(splits[1])
