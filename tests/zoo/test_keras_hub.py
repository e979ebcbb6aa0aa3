"""Two keras-hub backbones built from a config (random init, nothing downloaded), inside a
classifier: the whole user path (pipeline.run). keras-hub's encoder / decoder blocks are custom
layers holding a MultiHeadAttention subclass and Dense layers; GPT-2 ties its embedding."""

import keras
import numpy as np
import pytest
from pipeline import run

import state_of_sparsity as sos

pytestmark = pytest.mark.tensorflow_only  # slow on JAX (eager ops compile one by one)
keras_hub = pytest.importorskip("keras_hub")

LENGTH = 8


def classifier(backbone, inputs):
    features = backbone(inputs)
    if isinstance(features, dict):  # BERT: sequence and pooled outputs; GPT-2: the sequence
        features = features["sequence_output"]
    pooled = keras.layers.GlobalAveragePooling1D()(features)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(pooled))


def bert():
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
        max_sequence_length=LENGTH,
    )  # fmt: skip
    inputs = {
        "token_ids": keras.Input((LENGTH,), dtype="int32", name="token_ids"),
        "segment_ids": keras.Input((LENGTH,), dtype="int32", name="segment_ids"),
        "padding_mask": keras.Input((LENGTH,), dtype="int32", name="padding_mask"),
    }
    return classifier(backbone, inputs)


def gpt2():
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
        max_sequence_length=LENGTH,
    )  # fmt: skip
    inputs = {
        "token_ids": keras.Input((LENGTH,), dtype="int32", name="token_ids"),
        "padding_mask": keras.Input((LENGTH,), dtype="int32", name="padding_mask"),
    }
    return classifier(backbone, inputs)


def batch(names):
    rng = np.random.default_rng(0)
    x = {"token_ids": rng.integers(1, 50, (2, LENGTH)).astype("int32")}
    if "segment_ids" in names:
        x["segment_ids"] = np.zeros((2, LENGTH), "int32")
    x["padding_mask"] = np.ones((2, LENGTH), "int32")
    x["padding_mask"][0, 6:] = 0
    return x


@pytest.mark.parametrize(
    "build, technique", [(bert, "magnitude_pruning"), (gpt2, "l0_regularization")]
)
def test_keras_hub_backbone(build, technique, tmp_path):
    model = build()
    x = batch(model.input)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with pytest.warns(UserWarning, match="unsupported layer type PositionEmbedding"):
        _, report = run(model, technique, x, np.array([0, 1]), loss, tmp_path)
    names = {row.name.split("/")[-1] for row in report.layers}
    assert {"query", "key", "value", "attention_output", "token_embedding", "head"} <= names
    assert report.coverage > 0.85  # all but the learned position table, norms and biases
    assert sos.sparsity_report(model).layers == ()  # the input model is untouched
