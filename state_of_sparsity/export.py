"""``export_saved_model``: strip, write a TensorFlow SavedModel, reload it and check its outputs.

TensorFlow is imported here only (the export format is TensorFlow's); the rest of the library
is backend-neutral.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
from keras import ops

from state_of_sparsity.sparsify import strip

__all__ = ["export_saved_model", "sample_inputs"]


def sample_inputs(model, batch_size: int = 2, seed: int = 0):
    """Random inputs matching ``model.inputs`` (floats ~ N(0, 1); integers 0), for checks."""
    rng = np.random.default_rng(seed)
    samples = []
    for tensor in model.inputs:
        shape = [batch_size if i == 0 else (d or 4) for i, d in enumerate(tensor.shape)]
        dtype = str(tensor.dtype)
        if "int" in dtype:
            samples.append(np.zeros(shape, dtype))
        else:
            samples.append(rng.standard_normal(shape).astype(dtype))
    return samples[0] if len(samples) == 1 else samples


def export_saved_model(model, path, sample_input=None, atol: float = 1e-5, **options):
    """Strips ``model`` and writes it as a SavedModel at ``path``; returns ``path``.

    The artifact has one endpoint, ``serve``, computing the eval-mode model. Before ``path``
    is written the export is reloaded with ``tf.saved_model.load`` and its output on
    ``sample_input`` (default: ``sample_inputs(model)``) compared with ``model(x, training=False)``;
    a max abs difference above ``atol`` raises ``RuntimeError`` and leaves ``path`` untouched.
    The export is written beside ``path`` first and moved into place only after the check,
    replacing an existing directory.

    ``options`` are eval options (e.g. a VD threshold), as for ``strip``.
    """
    import tensorflow as tf

    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    stripped = strip(model, **options)
    x = sample_inputs(model) if sample_input is None else sample_input
    expected = ops.convert_to_numpy(model(x, training=False))

    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        stripped.export(staging, format="tf_saved_model", verbose=False)
        reloaded = tf.saved_model.load(staging)
        inputs = x if isinstance(x, (list, tuple)) else [x]
        got = np.asarray(reloaded.serve(*[tf.constant(v) for v in inputs]))
        diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
        if not diff <= atol:
            raise RuntimeError(
                f"The reloaded SavedModel differs from the eval-mode model by {diff:.3g} "
                f"(max abs) > atol={atol}; nothing was written to {path!r}."
            )
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)
    return path
