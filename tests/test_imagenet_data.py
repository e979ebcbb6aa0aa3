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

    from state_of_sparsity.paper.data import imagenet

    # side = size / (size + 32) * min(h, w); offsets ((h - side) + 1) // 2, ((w - side) + 1) // 2
    box = imagenet._center_box(tf.constant([375, 500, 3]), 224).numpy()
    side = int(224 / 256 * 375)
    assert list(box) == [(375 - side + 1) // 2, (500 - side + 1) // 2, side, side]


@pytest.mark.parametrize("encode", [lambda: jpeg(80, 60), lambda: png(50, 70)])
def test_preprocessing_shapes_and_ranges(encode):
    import tensorflow as tf

    from state_of_sparsity.paper.data import imagenet

    data = tf.constant(encode())
    for image in (
        imagenet.preprocess_eval(data, 32),
        imagenet.preprocess_train(data, 32, seed=(1, 2)),
    ):
        assert image.shape == (32, 32, 3) and image.dtype == tf.float32
        assert float(tf.reduce_min(image)) >= 0.0 and float(tf.reduce_max(image)) <= 255.0


def test_train_preprocessing_is_a_function_of_the_seed():
    import tensorflow as tf

    from state_of_sparsity.paper.data import imagenet

    data = tf.constant(jpeg(120, 90))
    first = imagenet.preprocess_train(data, 32, seed=(3, 4)).numpy()
    np.testing.assert_array_equal(first, imagenet.preprocess_train(data, 32, seed=(3, 4)).numpy())
    others = [imagenet.preprocess_train(data, 32, seed=(3, i)).numpy() for i in range(5, 10)]
    assert not any(np.array_equal(first, other) for other in others)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A tfds data_dir the first load builds from the tars of testdata (48 train images)."""
    return str(tmp_path_factory.mktemp("tfds"))


def test_tfds_manual_build_from_testdata(prepared):
    from state_of_sparsity.paper.data import imagenet

    kwargs = {"batch_size": 4, "image_size": 24, "data_dir": prepared, "manual_dir": MANUAL}
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
    again, _ = imagenet.load("validation", batch_size=8, image_size=24, data_dir=prepared)
    np.testing.assert_array_equal(next(iter(again))[1].numpy(), labels)


def test_resuming_far_into_training_reads_at_most_an_epoch(prepared, monkeypatch):
    """Resuming at step 245 (20 epochs of 12 batches, then 5 batches) gives the uninterrupted
    stream's batches and reads the current epoch's records, not the ~1,000 before them."""
    import tensorflow as tf

    from state_of_sparsity.paper.data import imagenet

    kwargs = {"batch_size": 4, "image_size": 16, "data_dir": prepared, "manual_dir": MANUAL,
              "seed": 7}  # fmt: skip
    records_per_epoch, step = 48, 20 * 12 + 5
    straight, _ = imagenet.load("train", **kwargs)
    expected = list(straight.skip(step).take(2).as_numpy_iterator())

    reads = tf.Variable(0, dtype=tf.int64)
    source = imagenet._tfds

    def counted(*args):
        ds, info = source(*args)

        def count(image, label):
            reads.assign_add(1)
            return image, label

        return ds.map(count), info

    monkeypatch.setattr(imagenet, "_tfds", counted)
    resumed, _ = imagenet.load("train", initial_step=step, **kwargs)
    got = list(resumed.take(2).as_numpy_iterator())
    for (x, y), (x_ref, y_ref) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(x, x_ref)
    # The epoch of step 245 fills the shuffle buffer (1,024 > 48); read-ahead may fill the next.
    assert int(reads.numpy()) <= 2 * records_per_epoch, int(reads.numpy())


def _tfrecord_file(path, labels):
    import tensorflow as tf

    with tf.io.TFRecordWriter(path) as writer:
        for label in labels:
            feature = {
                "image/encoded": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[jpeg(40, 40)])
                ),
                "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())


def test_tfrecord_format_with_one_based_labels(tmp_path):

    from state_of_sparsity.paper.data import imagenet

    _tfrecord_file(str(tmp_path / "validation-00000-of-00001"), (1, 2, 3))
    ds, info = imagenet.load(
        "validation", batch_size=3, image_size=16, data_dir=str(tmp_path), data_format="tfrecord"
    )
    images, labels = next(iter(ds))
    assert images.shape == (3, 16, 16, 3) and list(labels.numpy()) == [0, 1, 2]
    assert info.num_classes == 1000
    # Resuming counts the TFRecords (no metadata) and continues the uninterrupted stream.
    _tfrecord_file(str(tmp_path / "train-00000-of-00001"), range(1, 6))
    kwargs = {"batch_size": 2, "image_size": 16, "data_dir": str(tmp_path),
              "data_format": "tfrecord", "seed": 3}  # fmt: skip
    straight, _ = imagenet.load("train", **kwargs)
    resumed, _ = imagenet.load("train", initial_step=7, **kwargs)
    for (x, y), (x_ref, y_ref) in zip(resumed.take(2), straight.skip(7).take(2), strict=True):
        np.testing.assert_array_equal(y.numpy(), y_ref.numpy())
        np.testing.assert_array_equal(x.numpy(), x_ref.numpy())


def test_corrupt_tfrecord_file_is_named(tmp_path):
    from state_of_sparsity.paper.data import imagenet

    _tfrecord_file(str(tmp_path / "validation-00000-of-00002"), (1, 2))
    bad = tmp_path / "validation-00001-of-00002"
    bad.write_bytes(b"not a tfrecord file at all")
    with pytest.raises(ValueError, match="validation-00001-of-00002 is not a valid TFRecord"):
        imagenet.load("validation", batch_size=2, data_dir=str(tmp_path), data_format="tfrecord")


def test_clear_errors(tmp_path):
    from state_of_sparsity.paper.data import imagenet

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
