"""Shared test setup. The backend is Keras' (KERAS_BACKEND; TensorFlow by default).

Tests that need TensorFlow itself (tf.distribute, the tfmot oracle, TensorBoard files, the
binaries) carry ``@pytest.mark.tensorflow_only`` and are skipped on other backends; tests that
export a SavedModel carry ``@pytest.mark.saved_model`` and run on TensorFlow and JAX (Keras
exports a JAX model through jax2tf; the torch backend cannot).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

BACKEND = keras.backend.backend()

if BACKEND == "tensorflow":
    # Two logical CPU devices for the tf.distribute.MirroredStrategy tests; this must happen
    # before TensorFlow initializes its devices, i.e. before any test runs an op.
    import tensorflow as tf

    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


TF_HARNESS = {
    "test_bleu", "test_imagenet_data", "test_layout", "test_paper_results", "test_subwords",
    "test_techniques", "test_train_transformer_options", "test_translation_data",
}  # fmt: skip


def pytest_collection_modifyitems(config, items):
    if BACKEND == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"needs the TensorFlow backend (running {BACKEND})")
    harness = pytest.mark.skip(reason="the paper's harness: tested on TensorFlow, its backend")
    no_export = pytest.mark.skip(reason=f"SavedModel export needs TF or JAX (running {BACKEND})")
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)
        elif item.module.__name__.rpartition(".")[2] in TF_HARNESS:
            item.add_marker(harness)
        elif "saved_model" in item.keywords and BACKEND not in ("jax",):
            item.add_marker(no_export)


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {BACKEND}"


@pytest.fixture(autouse=True)
def _seed_and_clear():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
