"""The ImageNet pipeline: preprocessing, the tfds manual build from testdata, TFRecords."""

import io
import os
import shutil

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.tensorflow_only  # tf.data pipelines

MANUAL = os.path.join(os.path.dirname(os.path.dirname(__file__)), "testdata", "imagenet", "manual")


def jpeg(height, width, seed=0):
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def png(height, width):
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 200, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_eval_crop_geometry():
    import tensorflow as tf

    from state_of_sparsity.data import imagenet

    # side = size / (size + 32) * min(h, w); offsets ((h - side) + 1) // 2, ((w - side) + 1) // 2
    box = imagenet._center_box(tf.constant([375, 500, 3]), 224).numpy()
    side = int(224 / 256 * 375)
    assert list(box) == [(375 - side + 1) // 2, (500 - side + 1) // 2, side, side]


@pytest.mark.parametrize("encode", [lambda: jpeg(80, 60), lambda: png(50, 70)])
def test_preprocessing_shapes_and_ranges(encode):
    import tensorflow as tf

    from state_of_sparsity.data import imagenet

    data = tf.constant(encode())
    for image in (
        imagenet.preprocess_eval(data, 32),
        imagenet.preprocess_train(data, 32, seed=(1, 2)),
    ):
        assert image.shape == (32, 32, 3) and image.dtype == tf.float32
        assert float(tf.reduce_min(image)) >= 0.0 and float(tf.reduce_max(image)) <= 255.0


def test_train_preprocessing_is_a_function_of_the_seed():
    import tensorflow as tf

    from state_of_sparsity.data import imagenet

    data = tf.constant(jpeg(120, 90))
    first = imagenet.preprocess_train(data, 32, seed=(3, 4)).numpy()
    np.testing.assert_array_equal(first, imagenet.preprocess_train(data, 32, seed=(3, 4)).numpy())
    others = [imagenet.preprocess_train(data, 32, seed=(3, i)).numpy() for i in range(5, 10)]
    assert not any(np.array_equal(first, other) for other in others)


def test_tfds_manual_build_from_testdata(tmp_path):
    from state_of_sparsity.data import imagenet

    kwargs = {"batch_size": 4, "image_size": 24, "data_dir": str(tmp_path), "manual_dir": MANUAL}
    train, info = imagenet.load("train", seed=5, **kwargs)
    assert info.num_classes == 1000
    assert info.num_examples == {"train": 48, "validation": 8}
    batches = [b for b in train.take(3)]
    assert batches[0][0].shape == (4, 24, 24, 3)
    resumed, _ = imagenet.load("train", seed=5, initial_step=2, **kwargs)
    np.testing.assert_array_equal(next(iter(resumed))[0].numpy(), batches[2][0].numpy())
    validation, _ = imagenet.load("validation", **kwargs)
    labels = np.concatenate([y.numpy() for _, y in validation])
    assert len(labels) == 8 and labels.min() >= 0 and labels.max() < 1000
    # Prepared once: later loads need only the data_dir.
    again, _ = imagenet.load("validation", batch_size=8, image_size=24, data_dir=str(tmp_path))
    np.testing.assert_array_equal(next(iter(again))[1].numpy(), labels)


def test_tfrecord_format_with_one_based_labels(tmp_path):
    import tensorflow as tf

    from state_of_sparsity.data import imagenet

    path = str(tmp_path / "validation-00000-of-00001")
    with tf.io.TFRecordWriter(path) as writer:
        for label in (1, 2, 3):
            feature = {
                "image/encoded": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[jpeg(40, 40)])
                ),
                "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    ds, info = imagenet.load(
        "validation", batch_size=3, image_size=16, data_dir=str(tmp_path), data_format="tfrecord"
    )
    images, labels = next(iter(ds))
    assert images.shape == (3, 16, 16, 3) and list(labels.numpy()) == [0, 1, 2]
    assert info.num_classes == 1000


def test_clear_errors(tmp_path):
    from state_of_sparsity.data import imagenet

    empty = tmp_path / "empty"
    empty.mkdir()
    kwargs = {"batch_size": 2, "image_size": 16}
    with pytest.raises(ValueError, match="missing or empty"):
        imagenet.load("train", data_dir=str(tmp_path / "d"), manual_dir=str(empty), **kwargs)
    with pytest.raises(ValueError, match="not prepared"):
        imagenet.load("train", data_dir=str(tmp_path / "d"), **kwargs)
    with pytest.raises(ValueError, match="Unknown tfds dataset"):
        imagenet.load("train", dataset="no_such_dataset", data_dir=str(tmp_path), **kwargs)
    with pytest.raises(ValueError, match="No TFRecord files"):
        imagenet.load("train", data_dir=str(empty), data_format="tfrecord", **kwargs)
    with pytest.raises(ValueError, match="data_format"):
        imagenet.load("train", data_format="csv", **kwargs)
    shutil.rmtree(empty)
