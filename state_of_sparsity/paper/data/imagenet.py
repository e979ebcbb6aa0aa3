"""ImageNet input pipeline with the paper's preprocessing (spec §4.5), on tf.data.

Sources:
- tfds ``imagenet2012`` from a prepared ``data_dir``, or built from the official tars in
  ``manual_dir`` (``ILSVRC2012_img_train.tar``, ``ILSVRC2012_img_val.tar``) on first use;
- any other tfds image-classification dataset (``dataset=``) with ``image`` and ``label``;
- the original TFRecord shards (``train-*``, ``validation-*``: ``image/encoded`` JPEG bytes and a
  1-based ``image/class/label``, as written by tensorflow/tpu's ``imagenet_to_gcs.py``).

Preprocessing, as the reference's ``resnet_preprocessing.py``:
- train: ``sample_distorted_bounding_box`` over the whole image (min_object_covered 0.1,
  aspect ratio [3/4, 4/3], area [0.08, 1], 10 attempts), falling back to the eval crop when the
  sampled box is essentially the whole image; bicubic resize; random horizontal flip.
- eval: central crop of side size/(size + 32)·min(h, w) (0.875 of the short side at 224) with
  offsets ((h − c) + 1) // 2, bicubic resize.
Images leave the pipeline as float32 in [0, 255] — the model normalises them — clipped to
[0, 255] after the bicubic resize (which overshoots; the reference did not clip).
"""

from __future__ import annotations

import os

import tensorflow as tf

from state_of_sparsity.paper.data.epochs import shuffled_epochs

__all__ = [
    "CROP_PADDING",
    "SHUFFLE_BUFFER",
    "DatasetInfo",
    "load",
    "preprocess_eval",
    "preprocess_train",
]

CROP_PADDING = 32
SHUFFLE_BUFFER = 1024  # training shuffle buffer, in examples (the reference's)


def _decode_and_crop(image_bytes, box):
    """Decodes ``image_bytes`` cropped to ``box`` = [y, x, h, w] (JPEG: without a full decode)."""

    def jpeg():
        return tf.image.decode_and_crop_jpeg(image_bytes, box, channels=3)

    def other():
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        return tf.image.crop_to_bounding_box(image, box[0], box[1], box[2], box[3])

    return tf.cond(tf.io.is_jpeg(image_bytes), jpeg, other)


def _image_shape(image_bytes):
    def jpeg():
        return tf.image.extract_jpeg_shape(image_bytes)

    def other():
        return tf.shape(tf.io.decode_image(image_bytes, channels=3, expand_animations=False))

    return tf.cond(tf.io.is_jpeg(image_bytes), jpeg, other)


def _resize(image, size):
    image = tf.image.resize(image, [size, size], method="bicubic")
    return tf.clip_by_value(image, 0.0, 255.0)


def _center_box(shape, size):
    height, width = shape[0], shape[1]
    side = tf.cast(
        size / (size + CROP_PADDING) * tf.cast(tf.minimum(height, width), tf.float32), tf.int32
    )
    return tf.stack([((height - side) + 1) // 2, ((width - side) + 1) // 2, side, side])


def preprocess_eval(image_bytes, size: int = 224):
    """Central crop (0.875 of the short side at 224) and bicubic resize; float32 [0, 255]."""
    box = _center_box(_image_shape(image_bytes), size)
    image = _decode_and_crop(image_bytes, box)
    return tf.reshape(_resize(image, size), [size, size, 3])


def preprocess_train(image_bytes, size: int = 224, seed=(0, 0)):
    """Inception-style random crop, bicubic resize and random flip; float32 [0, 255].

    ``seed``: the stateless seed (two integers) of this example's crop and flip, so the result
    is a function of (image, seed) whatever the pipeline's parallelism.
    """
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    shape = _image_shape(image_bytes)
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, [1, 1, 4]),
        seed=seed,
        min_object_covered=0.1,
        aspect_ratio_range=(3.0 / 4.0, 4.0 / 3.0),
        area_range=(0.08, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    box = tf.stack([begin[0], begin[1], crop_size[0], crop_size[1]])
    # The reference falls back to the eval crop when >= 3 of the crop's shape entries equal the
    # image's (h, w, 3): the sampler returned the whole image.
    whole = tf.reduce_sum(tf.cast(tf.equal(shape, crop_size), tf.int32)) >= 3
    image = tf.cond(
        whole,
        lambda: _resize(_decode_and_crop(image_bytes, _center_box(shape, size)), size),
        lambda: _resize(_decode_and_crop(image_bytes, box), size),
    )
    image = tf.image.stateless_random_flip_left_right(image, seed=seed + [0, 1])
    return tf.reshape(image, [size, size, 3])


class DatasetInfo:
    """What a source provides: ``num_classes``, the examples per split (tfds) or the files
    (TFRecords)."""

    def __init__(self, num_classes: int, num_examples: dict, files: tuple = ()):
        self.num_classes = num_classes
        self.num_examples = num_examples
        self.files = files


# Per process: TFRecord files whose first record was checked, and record counts per file set
# (a train_and_eval run loads the training files again at every evaluation interval).
_CHECKED_FILES: set = set()
_RECORD_COUNTS: dict = {}


def _tfds(dataset, data_dir, manual_dir, split):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(dataset, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(f"Unknown tfds dataset {dataset!r}.") from None
    if manual_dir is not None:
        if not os.path.isdir(manual_dir) or not os.listdir(manual_dir):
            raise ValueError(f"--manual_dir={manual_dir!r} is missing or empty.")
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(
                manual_dir=manual_dir, try_download_gcs=False
            )
        )
    elif not builder.is_prepared():
        raise ValueError(
            f"tfds dataset {dataset!r} is not prepared in --data_dir={data_dir!r}; prepare it "
            "there, or give --manual_dir with the official archives (nothing is downloaded)."
        )
    if split not in builder.info.splits:
        raise ValueError(f"{dataset!r} has no split {split!r}; it has {list(builder.info.splits)}.")
    features = builder.info.features
    ds = builder.as_dataset(
        split=split, decoders={"image": tfds.decode.SkipDecoding()}, shuffle_files=False
    )
    ds = ds.map(lambda ex: (ex["image"], tf.cast(ex["label"], tf.int32)))
    info = DatasetInfo(
        features["label"].num_classes,
        {name: s.num_examples for name, s in builder.info.splits.items()},
    )
    return ds, info


def _tfrecords(data_dir, split, num_classes):
    prefix = "train" if split == "train" else "validation"
    files = sorted(tf.io.gfile.glob(os.path.join(data_dir, f"{prefix}-*")))
    if not files:
        raise ValueError(f"No TFRecord files {prefix}-* in --data_dir={data_dir!r}.")
    features = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.FixedLenFeature([], tf.int64),
    }

    def parse(record):
        ex = tf.io.parse_single_example(record, features)
        return ex["image/encoded"], tf.cast(ex["image/class/label"], tf.int32) - 1

    for path in files:  # a cheap check of every file (once per process): its first record parses
        if path in _CHECKED_FILES:
            continue
        try:
            for _ in tf.data.TFRecordDataset(path).take(1).map(parse):
                pass
        except tf.errors.OpError as error:
            reason = (error.message or type(error).__name__).strip().splitlines()[0][:200]
            raise ValueError(f"{path} is not a valid TFRecord file of examples: {reason}") from None
        _CHECKED_FILES.add(path)
    ds = tf.data.TFRecordDataset(files, buffer_size=8 << 20).map(parse)
    return ds, DatasetInfo(num_classes, {}, files=tuple(files))


def _epoch_size(ds, info, split) -> int:
    """Examples in an epoch of ``split``: the tfds metadata, or the TFRecords counted (read
    through once, undecoded; once per process and set of files)."""
    if info.num_examples.get(split):
        return info.num_examples[split]
    if info.files not in _RECORD_COUNTS:
        _RECORD_COUNTS[info.files] = int(
            ds.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1)
        )
    return _RECORD_COUNTS[info.files]


def load(
    split: str,
    *,
    batch_size: int,
    image_size: int = 224,
    dataset: str = "imagenet2012",
    data_dir: str | None = None,
    manual_dir: str | None = None,
    data_format: str = "tfds",
    num_classes: int = 1000,
    training: bool | None = None,
    seed: int | None = None,
    initial_step: int = 0,
):
    """A batched ``tf.data.Dataset`` of (images, labels) and its ``DatasetInfo``.

    ``training`` (default: split == "train") selects the train preprocessing, shuffling, infinite
    repetition and ``drop_remainder``; eval data is read once, in order. The training stream is a
    deterministic function of (``seed``, step): epochs follow each other, each shuffled with its
    own seed (``seed``, epoch), and every example's crop and flip use a stateless seed
    (``seed``, its index in the stream). ``initial_step`` starts the stream at that batch: at
    its epoch, skipping the examples before it within that epoch (undecoded), so a resumed run
    sees exactly the batches an uninterrupted one would and reads at most one epoch to get there,
    whatever the step (the epoch's size comes from the tfds metadata; TFRecord files are counted
    once, undecoded). ``seed=None`` draws one.
    """
    if data_format not in ("tfds", "tfrecord"):
        raise ValueError(f"`data_format` must be 'tfds' or 'tfrecord', got {data_format!r}.")
    if data_format == "tfrecord":
        if not data_dir:
            raise ValueError("The TFRecord format needs --data_dir.")
        ds, info = _tfrecords(data_dir, split, num_classes)
    else:
        ds, info = _tfds(dataset, data_dir, manual_dir, split)
    training = split == "train" if training is None else training
    options = tf.data.Options()
    options.deterministic = True
    ds = ds.with_options(options)
    if training:
        if seed is None:
            seed = int(tf.random.uniform([], maxval=2**31 - 1, dtype=tf.int64))
        epoch = offset = start = 0
        if initial_step:
            epoch_size = _epoch_size(ds, info, split)
            if not epoch_size:
                raise ValueError(f"The {split!r} split holds no examples.")
            epoch, offset = divmod(initial_step * batch_size, epoch_size)
            start = epoch * epoch_size
        ds = shuffled_epochs(ds, SHUFFLE_BUFFER, seed, epoch).enumerate(start=start).skip(offset)
        ds = ds.map(
            lambda index, example: (
                preprocess_train(
                    example[0], image_size, tf.stack([tf.cast(seed, tf.int64), index])
                ),
                example[1],
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        ds = ds.batch(batch_size, drop_remainder=True)
    else:
        ds = ds.map(
            lambda image, label: (preprocess_eval(image, image_size), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE), info
