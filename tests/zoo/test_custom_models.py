"""The whole user path on models written without this library in mind (see zoo_models)."""

import warnings

import keras
import numpy as np
import pytest
import zoo_models
from keras import ops
from pipeline import SCHEDULE, TENSORFLOW, assert_same, run

import state_of_sparsity as sos
from state_of_sparsity import traversal
from state_of_sparsity.ops import masks

RNG = np.random.default_rng(0)
CCE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def ids(shape, vocab):
    return RNG.integers(1, vocab, shape).astype("int32")


TF_ONLY = pytest.mark.tensorflow_only  # a slow JAX run (eager ops compile one by one)


# Keras' torch backend cannot train a Functional graph with a layer applied to a constant (the
# position embedding of ops.arange): backward runs twice through the constant's graph, dense too.
NOT_TORCH = pytest.mark.skipif(
    keras.backend.backend() == "torch", reason="Keras' torch trainer and constant graph inputs"
)


@NOT_TORCH
@pytest.mark.parametrize(
    "technique", [pytest.param("magnitude_pruning", marks=TF_ONLY), "variational_dropout"]
)
def test_bert_style_encoder_with_ops_nodes(technique, tmp_path):
    model = zoo_models.bert_encoder()
    x = ids((4, 8), 40)
    x[0, 5:] = 0  # padding, masked through keras.ops nodes
    _, report = run(model, technique, x, np.array([0, 1, 0, 1]), CCE, tmp_path)
    names = {row.name for row in report.layers}
    assert {"attention_1/query", "ffn_1_out", "token_embedding", "classifier"} <= names
    assert report.coverage > 0.9


@pytest.mark.parametrize(
    "technique", ["magnitude_pruning", pytest.param("l0_regularization", marks=TF_ONLY)]
)
def test_keras_io_transformer_custom_blocks(technique, tmp_path):
    model = zoo_models.keras_io_transformer()
    sparse, report = run(model, technique, ids((4, 10), 50), np.array([0, 1, 1, 0]), CCE, tmp_path)
    assert type(sparse.get_layer("block")) is sos.layers.SparseSublayers
    block = sparse.get_layer("block").layer
    assert type(block) is zoo_models.TransformerBlock
    assert isinstance(block.att, sos.layers.SparseMultiHeadAttention)
    assert all(isinstance(layer, sos.layers.SparsityWrapper) for layer in block.ffn.layers)
    # Every kernel of the model is sparsified: only LayerNorms and biases are left.
    assert {d.type for d in report.dense} == {"LayerNormalization"}
    assert len(report.layers) == 2 + 4 + 2 + 2


def test_lazily_built_custom_layer(tmp_path):
    x = RNG.standard_normal((4, 6)).astype("float32")
    sparse, report = run(
        zoo_models.lazy_model(), "random_pruning", x, np.array([0, 1, 2, 0]), CCE, tmp_path
    )
    assert [row.name for row in report.layers] == ["lazy/dense", "out"]
    # The block's own weight is copied (not re-initialized) and reported as a vector.
    assert [(d.name, d.type, d.weights) for d in report.dense] == [("lazy", "LazyBlock", 8)]


@pytest.mark.parametrize("dict_inputs", [False, True], ids=["list", "dict"])
def test_multi_input_multi_output_with_a_shared_layer(dict_inputs, tmp_path):
    model = zoo_models.two_tower(dict_inputs)
    left, right = RNG.standard_normal((2, 4, 5)).astype("float32")
    x = {"left": left, "right": right} if dict_inputs else [left, right]
    y = (np.zeros((4, 1), "float32"), np.array([0, 1, 2, 0]))
    sparse, report = run(model, "magnitude_pruning", x, y, ["mse", CCE], tmp_path)
    assert [row.name for row in report.layers] == ["shared", "score", "label"]
    assert sparse.get_layer("shared") is not None  # one wrapper, used by both towers


def test_subclassed_model_with_wrappers_in_init(tmp_path):
    """fit without a first call; strip and export through the documented route."""
    model = zoo_models.Subclassed()
    x = RNG.standard_normal((4, 6, 6, 2)).astype("float32")
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss=CCE, jit_compile=False)
    model.fit(x, np.array([0, 1, 2, 0]), batch_size=4, epochs=2, verbose=0,
              callbacks=[sos.SparsityCallback()])  # fmt: skip
    for row in sos.sparsity_report(model).layers:
        assert row.nonzeros == masks.keep_count(row.weights, SCHEDULE.sparsity(1))
    plain = sos.strip(model)
    assert type(plain) is zoo_models.Subclassed and not traversal.wrappers(plain)
    assert type(plain.conv) is keras.layers.Conv2D
    assert_same(plain(x), model(x, training=False))
    path = str(tmp_path / "subclassed.keras")
    model.save(path)
    assert_same(keras.models.load_model(path)(x), model(x, training=False))
    if TENSORFLOW:
        sos.export_saved_model(model, tmp_path / "sm", sample_input=x)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_export(policy, tmp_path):
    keras.config.set_dtype_policy(policy)
    try:
        inputs = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(inputs, keras.layers.Dense(4, name="out", dtype="float32")(x))
    finally:
        keras.config.set_dtype_policy("float32")
    sparse = sos.sparsify(model, "magnitude_pruning", schedule=SCHEDULE)
    sos.update_masks(sparse, 1)
    assert sparse.get_layer("conv").compute_dtype == policy.split("_")[1]
    sos.export_saved_model(sparse, tmp_path / "sm")


def test_strip_returns_an_uncompiled_model_no_larger_than_the_dense_one(tmp_path):
    model = zoo_models.keras_io_transformer()
    sparse = sos.sparsify(model, "magnitude_pruning", schedule=SCHEDULE)
    sparse.compile(optimizer="adam", loss=CCE)
    sparse.fit(ids((4, 10), 50), np.array([0, 1, 1, 0]), epochs=1, verbose=0,
               callbacks=[sos.SparsityCallback()])  # fmt: skip
    plain = sos.strip(sparse)
    assert not plain.compiled and getattr(plain, "optimizer", None) is None
    model.save(tmp_path / "dense.keras")
    plain.save(tmp_path / "plain.keras")
    assert (tmp_path / "plain.keras").stat().st_size <= (tmp_path / "dense.keras").stat().st_size


def test_forgotten_callback_is_reported(recwarn):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, name="fc")(inputs))
    sparse = sos.sparsify(model, "magnitude_pruning", schedule=SCHEDULE)
    sparse.compile(optimizer="sgd", loss="mse")
    x = RNG.standard_normal((8, 4)).astype("float32")
    sparse.fit(x, np.zeros((8, 3)), batch_size=2, epochs=1, verbose=0)  # no SparsityCallback
    for action in (sos.sparsity_report, sos.strip):
        with pytest.warns(
            UserWarning,
            match=r"trained for 4 steps but the masks of 1 layer\(s\) \(fc\) never changed",
        ):
            action(sparse)
    vd = sos.sparsify(model, "variational_dropout")
    vd.compile(optimizer="sgd", loss="mse")
    with pytest.warns(UserWarning, match="no penalty weight"):
        vd.fit(x, np.zeros((8, 3)), batch_size=2, epochs=1, verbose=0)
    with pytest.warns(UserWarning, match="trained with no penalty weight"):
        sos.sparsity_report(vd)
    # Driven properly: no warning.
    sparse = sos.sparsify(model, "magnitude_pruning", schedule=SCHEDULE)
    sparse.compile(optimizer="sgd", loss="mse")
    sparse.fit(x, np.zeros((8, 3)), batch_size=2, epochs=1, verbose=0,
               callbacks=[sos.SparsityCallback()])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        sos.sparsity_report(sparse)
        sos.strip(sparse)


def test_layers_that_stay_dense_are_named_at_sparsify_time():
    inputs = keras.Input((6, 4))
    x = keras.layers.SeparableConv1D(4, 3, name="separable")(inputs)
    x = keras.layers.LSTM(3, name="lstm")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    with pytest.warns(
        UserWarning, match="variational_dropout does not apply to SeparableConv1D: separable"
    ) as record:
        sparse = sos.sparsify(model, "variational_dropout")
    assert "LSTM: lstm" in str(record[0].message)
    assert [w.name for _, w in traversal.wrappers(sparse)] == ["out"]
    report = sos.sparsity_report(sparse)
    assert {d.name: d.reason for d in report.dense}["lstm"].startswith("left dense by sparsify")


@pytest.mark.parametrize(
    "argument, message",
    [
        ("pruning_schedule", "use `schedule`"),
        ("block_size", r"use `pattern='RxC'`"),
        ("sparsity_m_by_n", r"use `pattern='N:M'`"),
        ("pruning_policy", "use `exclude` / `overrides`"),
    ],
)
def test_tfmot_argument_names_get_a_pointer(argument, message):
    model = zoo_models.lazy_model()
    with pytest.raises(
        ValueError, match=f"`{argument}` is tensorflow-model-optimization's.*{message}"
    ):
        sos.sparsify(model, "magnitude_pruning", **{argument: SCHEDULE})


def test_summary_counts_parameters_not_masks():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, name="fc")(inputs))
    for technique, extra in (
        ("magnitude_pruning", 0),
        ("variational_dropout", 12),
        ("l0_regularization", 12),
    ):
        kwargs = {"schedule": SCHEDULE} if technique == "magnitude_pruning" else {}
        wrapper = sos.sparsify(model, technique, **kwargs).get_layer("fc")
        assert wrapper.count_params() == 15 + extra  # log σ² / log α are parameters
        assert wrapper.units == 3  # the inner layer's attributes read through
    assert ops.convert_to_numpy(wrapper.layer.kernel).shape == (4, 3)
