"""Every keras.applications architecture family (its smallest member, weights=None, tiny
inputs): sparsify, one mask update, exact per-tensor counts, coverage, and strip equal to the
eval-mode model (VD and L0 too on two of them); the whole user path (pipeline.run) on one.
The other techniques' whole path runs on the custom models (test_custom_models)."""

import warnings

import keras
import numpy as np
import pytest
from pipeline import SCHEDULE, run

import state_of_sparsity as sos
from state_of_sparsity.ops import masks

A = keras.applications
# name -> (constructor, smallest input side it accepts)
FAMILIES = {
    "ConvNeXtTiny": (A.ConvNeXtTiny, 32),
    "DenseNet121": (A.DenseNet121, 32),
    "EfficientNetB0": (A.EfficientNetB0, 32),
    "EfficientNetV2B0": (A.EfficientNetV2B0, 32),
    "InceptionResNetV2": (A.InceptionResNetV2, 75),
    "InceptionV3": (A.InceptionV3, 75),
    "MobileNet": (A.MobileNet, 32),
    "MobileNetV2": (A.MobileNetV2, 32),
    "MobileNetV3Small": (A.MobileNetV3Small, 32),
    "NASNetMobile": (A.NASNetMobile, 32),
    "ResNet50": (A.ResNet50, 32),
    "ResNet50V2": (A.ResNet50V2, 32),
    "VGG16": (A.VGG16, 32),
    "Xception": (A.Xception, 71),
}


def build(name, classes=10):
    constructor, side = FAMILIES[name]
    model = constructor(weights=None, input_shape=(side, side, 3), classes=classes)
    x = np.random.default_rng(0).standard_normal((2, side, side, 3)).astype("float32")
    return model, x


# On JAX every op of an eager call compiles on its own (a minute per family here): the
# applications run on TensorFlow, and the custom models cover the whole path on JAX.
pytestmark = pytest.mark.tensorflow_only


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_sparsifies_and_strips_exactly(name):
    model, x = build(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # every kernel is supported: no warning
        sparse = sos.sparsify(model, "magnitude_pruning", schedule=SCHEDULE)
    sos.update_masks(sparse, 1)
    report = sos.sparsity_report(sparse)
    for row in report.layers:
        assert row.nonzeros == masks.keep_count(row.weights, SCHEDULE.sparsity(1)), row.name
    kernels = sum(int(np.prod(w.shape)) for w in model.weights if len(w.shape) >= 2)
    assert report.weights == kernels  # every kernel of the model, and nothing else
    assert report.parameters == model.count_params()
    assert report.coverage == pytest.approx(kernels / model.count_params())
    assert {d.reason.split(" (")[0] for d in report.dense} <= {"no kernel"}
    expected = keras.ops.convert_to_numpy(sparse(x, training=False))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(sos.strip(sparse)(x)), expected)


@pytest.mark.parametrize(
    "name, technique",
    [("MobileNetV2", "variational_dropout"), ("Xception", "l0_regularization")],
)
def test_penalized_techniques_strip_exactly(name, technique):
    model, x = build(name)
    sparse = sos.sparsify(model, technique, seed=0)
    report = sos.sparsity_report(sparse)
    kernels = sum(int(np.prod(w.shape)) for w in model.weights if len(w.shape) >= 2)
    assert report.weights == kernels
    expected = keras.ops.convert_to_numpy(sparse(x, training=False))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(sos.strip(sparse)(x)), expected, rtol=1e-5, atol=1e-5
    )


def test_user_path(tmp_path):
    model, x = build("MobileNetV3Small", classes=3)
    loss = keras.losses.SparseCategoricalCrossentropy()
    run(model, "magnitude_pruning", x, np.array([0, 2]), loss, tmp_path)
