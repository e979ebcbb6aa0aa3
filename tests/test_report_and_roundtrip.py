"""sparsity_report, .keras round trips, SavedModel export and TensorBoard summaries."""

import glob
import json
import os

import keras
import numpy as np
import pytest
from keras import ops

import state_of_sparsity as sos
from state_of_sparsity import traversal

BATCH = 8


def np_(x):
    return ops.convert_to_numpy(x)


def dense_cnn():
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="fc")(x))


def data(steps, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps * BATCH, 6, 6, 2)).astype("float32")
    return x, rng.integers(0, 3, steps * BATCH)


def compiled(model):
    model.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def test_report_counts_match_the_masks():
    schedule = sos.ConstantSparsity(0.6, begin_step=0, frequency=1)
    dense = dense_cnn()
    model = sos.sparsify(dense, "magnitude_pruning", schedule=schedule)
    sos.update_masks(model, 1)
    report = sos.sparsity_report(model)
    total = zeros = 0
    for path, wrapper in traversal.wrappers(model):
        effective = np_(wrapper.kernel) * np_(wrapper.mask)
        row = report[path]
        assert (row.weights, row.nonzeros) == (effective.size, np.count_nonzero(effective))
        assert row.technique == "magnitude_pruning"
        total += effective.size
        zeros += effective.size - np.count_nonzero(effective)
    assert report.global_sparsity == pytest.approx(zeros / total)
    assert [(d.name, d.type, d.weights) for d in report.dense] == [("bn", "BatchNormalization", 16)]
    assert report.dense[0].reason.startswith("no kernel")
    # Parameters are the dense model's (masks are not parameters); coverage and the pruned
    # share of all parameters follow from the counts.
    assert report.parameters == dense.count_params()
    assert report.coverage == pytest.approx(total / dense.count_params())
    assert report.model_sparsity == pytest.approx(zeros / dense.count_params())
    data_ = json.loads(json.dumps(report.to_dict()))
    assert data_["global"]["weights"] == total
    assert [r["name"] for r in data_["layers"]] == ["conv", "fc"]
    text = str(report)
    assert "global" in text and "fc" in text and "left dense" in text
    single = sos.sparsity_report(model.get_layer("fc"))
    assert single.layers[0].nonzeros == report["fc"].nonzeros
    with pytest.raises(ValueError, match="Unknown eval option"):
        sos.sparsity_report(model, treshold=2.0)


@pytest.mark.parametrize("technique", sorted(sos.TECHNIQUES))
def test_keras_file_round_trip_resumes_identically(technique, tmp_path):
    pruning = technique in ("magnitude_pruning", "random_pruning")
    kwargs = {"seed": 1}
    if pruning:
        kwargs["schedule"] = sos.PolynomialDecay(0.0, 0.8, begin_step=0, end_step=10, frequency=2)
    ramp = None if pruning else sos.Ramp(1e-3, begin_step=0, end_step=8, shape="cubic")
    dense = dense_cnn()
    x, y = data(6)
    fit = {"batch_size": BATCH, "shuffle": False, "verbose": 0}

    def callbacks():
        return [sos.SparsityCallback(regularizer_weight=ramp)]

    straight = compiled(sos.sparsify(dense, technique, **kwargs))
    straight.fit(x, y, epochs=2, callbacks=callbacks(), **fit)

    first = compiled(sos.sparsify(dense, technique, **kwargs))
    first.fit(x, y, epochs=1, callbacks=callbacks(), **fit)
    path = str(tmp_path / "model.keras")
    first.save(path)
    resumed = keras.models.load_model(path)
    resumed.fit(x, y, epochs=1, callbacks=callbacks(), **fit)

    assert int(np_(resumed.optimizer.iterations)) == 12
    pairs = zip(traversal.wrappers(straight), traversal.wrappers(resumed), strict=True)
    for (_, a), (_, b) in pairs:
        assert type(a) is type(b) and a.technique_config() == b.technique_config()
        for va, vb in zip(a.weights, b.weights, strict=True):
            assert va.name == vb.name
            np.testing.assert_allclose(np_(va), np_(vb), atol=1e-5, err_msg=va.path)
        if pruning:
            assert int(np_(a.last_update)) == 10
        else:
            assert int(np_(a.step)) == 12
            np.testing.assert_array_equal(np_(a.noise_state), np_(b.noise_state))


def test_stripped_model_round_trips_through_keras_file(tmp_path):
    model = sos.sparsify(
        dense_cnn(), "magnitude_pruning", schedule=sos.ConstantSparsity(0.5, 0, frequency=1)
    )
    sos.update_masks(model, 1)
    plain = sos.strip(model)
    path = str(tmp_path / "plain.keras")
    plain.save(path)
    again = keras.models.load_model(path)
    x, _ = data(1)
    np.testing.assert_allclose(np_(again(x)), np_(model(x, training=False)), atol=1e-5)
    assert (
        np.count_nonzero(np_(again.get_layer("fc").kernel))
        == sos.sparsity_report(model)["fc"].nonzeros
    )


@pytest.mark.saved_model
def test_saved_model_export_matches_eval_model(tmp_path):
    import tensorflow as tf

    model = sos.sparsify(
        dense_cnn(), "random_pruning", schedule=sos.ConstantSparsity(0.7, 0, frequency=1)
    )
    sos.update_masks(model, 1)
    path = sos.export_saved_model(model, tmp_path / "sm")
    reloaded = tf.saved_model.load(str(path))
    x, _ = data(2, seed=3)
    got = reloaded.serve(tf.constant(x)).numpy()
    assert np.max(np.abs(got - np_(model(x, training=False)))) <= 1e-5
    assert not glob.glob(str(tmp_path / ".export-*"))


@pytest.mark.saved_model
def test_failed_export_check_writes_nothing(tmp_path):
    model = sos.sparsify(dense_cnn(), "magnitude_pruning", schedule=sos.ConstantSparsity(0.5, 0))
    with pytest.raises(RuntimeError, match="nothing was written"):
        sos.export_saved_model(model, tmp_path / "sm", atol=-1.0)
    assert os.listdir(tmp_path) == []


def test_sparsity_summaries_write_per_layer_and_global(tmp_path):
    import tensorflow as tf

    schedule = sos.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=6, frequency=2)
    model = compiled(sos.sparsify(dense_cnn(), "magnitude_pruning", schedule=schedule))
    x, y = data(4)
    callbacks = [sos.SparsityCallback(), sos.SparsitySummaries(tmp_path, update_freq=2)]
    model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=callbacks)
    values = {}
    for path in glob.glob(str(tmp_path / "train" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                values.setdefault(value.tag, []).append(
                    (event.step, float(tf.make_ndarray(value.tensor)))
                )
    assert set(values) == {"sparsity/conv", "sparsity/fc", "sparsity/global", "learning_rate"}
    assert max(values["learning_rate"])[1] == pytest.approx(1e-2)
    report = sos.sparsity_report(model)
    step, last = max(values["sparsity/global"])
    assert step == 8
    assert last == pytest.approx(report.global_sparsity)
    assert max(values["sparsity/fc"])[1] == pytest.approx(report["fc"].sparsity)
    assert len(values["sparsity/global"]) == 4 + 2  # every 2 batches, plus each epoch end
