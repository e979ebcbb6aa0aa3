"""``export_saved_model``: strip, write a TensorFlow SavedModel, reload it and check its outputs.

TensorFlow is imported here only, when an export runs (the format is TensorFlow's; install the
``tensorflow`` extra); the rest of the library is backend-neutral.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import keras
import numpy as np
from keras import ops, tree

from state_of_sparsity.callbacks import check_driven
from state_of_sparsity.layers.nested import is_graph_model
from state_of_sparsity.optional import require
from state_of_sparsity.sparsify import strip_unchecked

__all__ = ["export_saved_model", "publish", "sample_inputs", "stage"]


def sample_inputs(model, batch_size: int = 2, seed: int = 0):
    """Random inputs of the model's input structure (floats ~ N(0, 1); integers 0), for checks.

    Lists and dicts of inputs keep their structure; unknown dimensions become 4. Functional and
    Sequential models give their ``model.input``; a subclassed model its recorded build shapes
    (float inputs).
    """
    rng = np.random.default_rng(seed)

    def sample(shape, dtype):
        shape = [batch_size if i == 0 else (d or 4) for i, d in enumerate(shape)]
        if "int" in dtype or dtype == "bool":
            return np.zeros(shape, dtype)
        return rng.standard_normal(shape).astype(dtype)

    if is_graph_model(model):
        return tree.map_structure(lambda t: sample(t.shape, str(t.dtype)), model.input)
    shape = (model.get_build_config() or {}).get("input_shape") if model.built else None
    if shape is None:
        raise ValueError(
            f"Cannot tell the inputs of {model.name!r}: pass `sample_input` (a batch the model "
            "accepts)."
        )
    return tree.map_shape_structure(lambda s: sample(s, keras.config.floatx()), shape)


def stage(path):
    """``(path, staging directory)``: a fresh directory beside ``path`` to write an export into."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    return path, tempfile.mkdtemp(prefix=".export-", dir=parent)


def publish(staging, path):
    """Moves the checked export ``staging`` into place at ``path`` (replacing a directory)."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.replace(staging, path)


# Tolerance of the reload check by compute dtype: the reloaded graph may run other kernels
# (fusions, accumulation order); half precision keeps ~3 (float16) or ~2 (bfloat16) digits.
_TOLERANCE = {"float16": 1e-2, "bfloat16": 5e-2}


def _tolerance(model) -> float:
    return _TOLERANCE.get(str(model.dtype_policy.compute_dtype), 1e-5)


def _input_signature(x):
    """One ``tf.TensorSpec`` structure for the model's single positional argument."""
    tf = require("tensorflow", "SavedModel export")

    def spec(value):
        value = np.asarray(value)
        return tf.TensorSpec((None, *value.shape[1:]), tf.as_dtype(value.dtype))

    return [tree.map_structure(spec, x)]


def export_saved_model(model, path, sample_input=None, atol: float | None = None, **options):
    """Strips ``model`` and writes it as a SavedModel at ``path``; returns ``path``.

    The artifact has one endpoint, ``serve``, computing the eval-mode model on the model's
    input structure (one tensor, a list, or a dict of tensors, as ``model`` takes it). Before
    ``path`` is written the export is reloaded with ``tf.saved_model.load`` and its outputs on
    ``sample_input`` (default: ``sample_inputs(model)``) compared with
    ``model(x, training=False)``: every output must satisfy
    |got − expected| ≤ atol·(1 + |expected|), with ``atol`` by default 1e-5, or 1e-2 / 5e-2
    for float16 / bfloat16 compute (mixed precision). Otherwise ``RuntimeError``, and
    ``path`` is untouched. The export is written beside ``path`` first and moved into place
    only after the check, replacing an existing directory.

    Works for Sequential, Functional (several inputs and outputs), ``Sparsifiable`` and other
    subclassed models (give ``sample_input`` if the model was not built by a call on inputs).
    ``options`` are eval options (e.g. a VD threshold), as for ``strip``.
    """
    tf = require("tensorflow", "SavedModel export")
    if keras.backend.backend() not in ("tensorflow", "jax"):
        raise ValueError(
            "SavedModel export needs the TensorFlow or JAX backend of Keras, not "
            f"{keras.backend.backend()!r} (set KERAS_BACKEND before importing keras)."
        )
    check_driven(model, "export_saved_model")
    stripped = strip_unchecked(model, **options)
    x = sample_inputs(model) if sample_input is None else sample_input
    expected = [np.asarray(ops.convert_to_numpy(y)) for y in tree.flatten(model(x, training=False))]
    atol = _tolerance(model) if atol is None else atol

    path, staging = stage(path)
    try:
        stripped.export(
            staging, format="tf_saved_model", verbose=False, input_signature=_input_signature(x)
        )
        reloaded = tf.saved_model.load(staging)
        got = tree.flatten(reloaded.serve(tree.map_structure(tf.constant, x)))
        diff = max(
            (_excess(np.asarray(g), e) for g, e in zip(got, expected, strict=True)), default=0.0
        )
        if not diff <= atol:
            raise RuntimeError(
                f"The reloaded SavedModel differs from the eval-mode model by {diff:.3g} "
                f"(max |got - expected| / (1 + |expected|)) > atol={atol}; nothing was "
                f"written to {path!r}."
            )
        publish(staging, path)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
    return path


def _excess(got, expected) -> float:
    """max |got − expected| / (1 + |expected|) in float64 (0 for empty outputs); equal values,
    NaN against NaN and inf against the same inf included, count as 0."""
    if not expected.size:
        return 0.0
    got, expected = got.astype(np.float64), expected.astype(np.float64)
    excess = np.abs(got - expected) / (1.0 + np.abs(expected))
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))  # NaN or inf alike
    return float(np.max(np.where(same, 0.0, excess)))
