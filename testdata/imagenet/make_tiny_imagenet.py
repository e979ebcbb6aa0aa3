#!/usr/bin/env python3
"""Writes a tiny ImageNet in the layout tfds's manual ``imagenet2012`` build expects.

    manual/ILSVRC2012_img_train.tar   one tar per synset (``n01751748.tar``), each holding
                                      ``<synset>_<i>.JPEG`` files
    manual/ILSVRC2012_img_val.tar     flat ``ILSVRC2012_val_<8 digits>.JPEG`` files

tfds labels the validation images by zipping their sorted file names with its bundled
``validation_labels.txt``, so validation image i gets the i-th synset of that file; the training
synsets are chosen as those same synsets, so every split uses the same few classes. Images are
small synthetic JPEGs (a class-specific colour and stripe pattern plus noise, of varied sizes and
aspect ratios) so a small network can learn them. Deterministic: run it again to get the same
bytes.

    python testdata/imagenet/make_tiny_imagenet.py [output_dir]   # default: beside this file
"""

import io
import os
import sys
import tarfile

import numpy as np
from PIL import Image

VAL_IMAGES = 8
TRAIN_PER_CLASS = 6
_MTIME = 1_700_000_000


def _validation_synsets(count):
    import tensorflow_datasets as tfds

    path = tfds.core.tfds_path("datasets/imagenet2012/validation_labels.txt")
    with open(path) as f:
        return f.read().split()[:count]


def _jpeg(rng, synset_index, height, width):
    base = np.array([(k * synset_index) % 256 for k in (37, 91, 151)])
    rows = np.arange(height)[:, None, None]
    stripes = 60 * np.sin(rows * (0.15 + 0.1 * synset_index))
    image = base + stripes + rng.normal(0, 20, (height, width, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), _MTIME
    tar.addfile(info, io.BytesIO(data))


def _tar_bytes(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members:
            _add(tar, name, data)
    return buffer.getvalue()


def main(output_dir):
    rng = np.random.default_rng(0)
    val_synsets = _validation_synsets(VAL_IMAGES)
    synsets = sorted(set(val_synsets))
    manual = os.path.join(output_dir, "manual")
    os.makedirs(manual, exist_ok=True)

    def size():
        return int(rng.integers(40, 90)), int(rng.integers(40, 90))

    with tarfile.open(os.path.join(manual, "ILSVRC2012_img_train.tar"), "w") as train:
        for synset in synsets:
            index = synsets.index(synset)
            images = [
                (f"{synset}_{i}.JPEG", _jpeg(rng, index, *size())) for i in range(TRAIN_PER_CLASS)
            ]
            _add(train, f"{synset}.tar", _tar_bytes(images))
    with tarfile.open(os.path.join(manual, "ILSVRC2012_img_val.tar"), "w") as val:
        for i, synset in enumerate(val_synsets):
            image = _jpeg(rng, synsets.index(synset), *size())
            _add(val, f"ILSVRC2012_val_{i + 1:08d}.JPEG", image)
    print(
        f"{len(synsets)} classes, {len(synsets) * TRAIN_PER_CLASS} train and {VAL_IMAGES} "
        f"validation images in {manual}"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
