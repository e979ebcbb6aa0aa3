"""The user's path through the library, end to end, for any model: sparsify, two train steps
with the callback, report, strip, ``.keras`` round trips and SavedModel export."""

import keras
import numpy as np
from keras import ops, tree

import state_of_sparsity as sos
from state_of_sparsity import traversal
from state_of_sparsity.ops import masks

# Updates after steps 1 and 2; two train steps (0 and 1) reach s(1) = 0.4375.
SCHEDULE = sos.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=2, frequency=1)
PRUNING = ("magnitude_pruning", "random_pruning")
TENSORFLOW = keras.backend.backend() == "tensorflow"


def outputs(y):
    return [np.asarray(ops.convert_to_numpy(v)) for v in tree.flatten(y)]


def assert_same(got, expected, atol=1e-5):
    for g, e in zip(outputs(got), outputs(expected), strict=True):
        np.testing.assert_allclose(g, e, atol=atol, rtol=atol)


def batch_size(x):
    return int(tree.flatten(x)[0].shape[0])


def run(model, technique, x, y, loss, tmp_path, export=True, **kwargs):
    """Runs the whole path and checks what the user relies on; returns (sparse model, report)."""
    pruning = technique in PRUNING
    if pruning:
        kwargs["schedule"] = SCHEDULE
    sparse = sos.sparsify(model, technique, seed=0, **kwargs)
    if pruning:  # all masks are ones before the first update: the dense model's outputs
        assert_same(sparse(x, training=False), model(x, training=False))
    sparse.compile(optimizer=keras.optimizers.SGD(1e-3), loss=loss, jit_compile=False)
    ramp = None if pruning else sos.Ramp(1e-4)
    sparse.fit(
        x,
        y,
        batch_size=batch_size(x),
        epochs=2,
        verbose=0,
        callbacks=[sos.SparsityCallback(regularizer_weight=ramp)],
    )
    wrappers = [w for _, w in traversal.wrappers(sparse)]
    assert wrappers
    report = sos.sparsity_report(sparse)
    if pruning:
        for row in report.layers:
            assert row.nonzeros == masks.keep_count(row.weights, SCHEDULE.sparsity(1)), row.name
    else:
        assert all(int(ops.convert_to_numpy(w.step)) == 2 for w in wrappers)
    assert report.parameters == model.count_params()
    assert 0 < report.coverage <= 1

    expected = sparse(x, training=False)
    plain = sos.strip(sparse)
    assert not traversal.wrappers(plain) and not plain.compiled
    assert_same(plain(x), expected)
    for name, saved in (("sparse", sparse), ("plain", plain)):
        path = str(tmp_path / f"{name}.keras")
        saved.save(path)
        loaded = keras.models.load_model(path)
        assert_same(loaded(x, training=False), expected)
        if saved is sparse:  # masks and VD / L0 state survive (names inside custom layers
            again = sos.sparsity_report(loaded)  # are automatic, so may differ)
            assert _counts(again) == _counts(report)
    if export and TENSORFLOW:
        sos.export_saved_model(sparse, tmp_path / "saved_model", sample_input=x)
    return sparse, report


def _counts(report):
    rows = [(row.technique, row.weights, row.nonzeros) for row in report.layers]
    return rows, report.to_dict()["global"]
