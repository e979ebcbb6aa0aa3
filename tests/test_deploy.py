"""Deploying a pruned model: the sparse file format (exact round trip, size), int8 after strip,
and ``sos.export`` to every Keras format with its reload check."""

import gzip
import os

import keras
import numpy as np
import pytest
from keras import ops

import state_of_sparsity as sos
from state_of_sparsity import optional


def np_(x):
    return ops.convert_to_numpy(x)


def pruned_cnn(sparsity=0.9):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(64, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(256, activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x))
    schedule = sos.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    sparse = sos.sparsify(model, "magnitude_pruning", schedule=schedule)
    sos.update_masks(sparse, 1)
    return sparse


X = np.random.default_rng(0).standard_normal((4, 8, 8, 3)).astype("float32")


def test_sparse_file_round_trip_is_exact_and_small(tmp_path):
    sparse = pruned_cnn()
    stripped = sos.strip(sparse)
    written = sos.save_sparse(sparse, tmp_path / "m.sos")
    back = sos.load_sparse(tmp_path / "m.sos")
    np.testing.assert_array_equal(np_(back(X)), np_(stripped(X)))
    for got, expected in zip(back.get_weights(), stripped.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)
    dense_bytes = sum(w.nbytes for w in stripped.get_weights())
    assert written.dense_bytes == dense_bytes and written.bytes == os.path.getsize(written.path)
    # 90% zeros: about 0.1 * 32 + 1 bits per kernel weight (7.6x), less the config's bytes
    assert written.ratio > 4.0, written
    stripped.save(tmp_path / "m.keras")
    gzipped = len(gzip.compress((tmp_path / "m.keras").read_bytes()))
    assert written.bytes < gzipped


def test_a_dense_model_is_stored_densely_and_back(tmp_path):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    written = sos.save_sparse(model, tmp_path / "d.sos")
    x = np.ones((2, 5), "float32")
    np.testing.assert_array_equal(np_(sos.load_sparse(written.path)(x)), np_(model(x)))
    assert written.ratio < 1.0  # the zip's headers: nothing to gain
    with pytest.raises(ValueError, match="not a state_of_sparsity sparse file"):
        (tmp_path / "x.zip").write_bytes(b"")
        import zipfile

        with zipfile.ZipFile(tmp_path / "x.zip", "w") as z:
            z.writestr("weights.json", "{}")
        sos.load_sparse(tmp_path / "x.zip")


def test_int8_after_strip_keeps_the_zeros_and_stores_smaller(tmp_path):
    sparse = pruned_cnn()
    stripped = sos.strip(sparse)
    zeros = {
        layer.name: np_(layer.kernel) == 0
        for layer in stripped.layers
        if isinstance(layer, keras.layers.Dense)
    }
    stripped.quantize("int8")
    for layer in stripped.layers:
        if layer.name in zeros:
            kernel = np_(layer._kernel)
            assert kernel.dtype == np.int8
            np.testing.assert_array_equal(kernel == 0, zeros[layer.name])
    float_file = sos.save_sparse(sos.strip(sparse), tmp_path / "f.sos")
    int8_file = sos.save_sparse(stripped, tmp_path / "q.sos")
    np.testing.assert_array_equal(np_(sos.load_sparse(int8_file.path)(X)), np_(stripped(X)))
    assert int8_file.bytes < float_file.bytes


@pytest.mark.tensorflow_only
@pytest.mark.parametrize(
    "format, name, kwargs",
    [
        ("tf_saved_model", "sm", {}),
        ("onnx", "m.onnx", {}),
        ("litert", "m.tflite", {}),
        ("litert", "s.tflite", {"sparse": True}),
        ("openvino", "m.xml", {}),
    ],
)
def test_export_formats_reload_with_zeros_and_outputs(tmp_path, format, name, kwargs):
    for module in {"onnx": ("onnx", "onnxruntime", "tf2onnx"), "openvino": ("openvino",)}.get(
        format, ()
    ):
        pytest.importorskip(module)
    sparse = pruned_cnn()
    path = sos.export(sparse, tmp_path / "out" / name, format=format, **kwargs)
    assert os.path.exists(path)
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".export")] == []
    if kwargs.get("sparse"):
        dense = sos.export(sparse, tmp_path / "out" / "d.tflite", format="litert")
        assert os.path.getsize(path) < 0.5 * os.path.getsize(dense)


def test_export_errors_are_clear(tmp_path, monkeypatch):
    sparse = pruned_cnn()
    with pytest.raises(ValueError, match="`format` must be one of"):
        sos.export(sparse, tmp_path / "m", format="coreml")
    with pytest.raises(ValueError, match="ending in '.onnx'"):
        sos.export(sparse, tmp_path / "m.tflite", format="onnx")
    with pytest.raises(ValueError, match="sparse=True"):
        sos.export(sparse, tmp_path / "m.onnx", format="onnx", sparse=True)
    real = optional.importlib.import_module

    def missing(name, *args):
        if name == "onnxruntime":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(optional.importlib, "import_module", missing)
    with pytest.raises(optional.MissingExtra, match=r"state-of-sparsity\[deploy\]"):
        sos.export(sparse, tmp_path / "m.onnx", format="onnx")
