"""``sos.export(model, path, format=...)``: strip, then Keras 3's exporter, then a reload check.

Formats are Keras' own (``model.export``): ``"tf_saved_model"`` (TensorFlow), ``"onnx"``
(tf2onnx on the TensorFlow backend; onnxruntime for the check), ``"litert"`` (the TFLite
converter; the ``ai-edge-litert`` interpreter, or TensorFlow's, for the check) and
``"openvino"``. Each export is reloaded in its own runtime before ``export`` returns: the
outputs on a sample batch must match the eval-mode model (|got − expected| ≤
atol·(1 + |expected|), see ``export.export_saved_model``) and the artifact's weight tensors must
hold at least as many exact zeros as the stripped model's kernels (nothing densified them; a
LiteRT file with sparse-encoded weights is checked by its outputs only). Otherwise
``RuntimeError`` and nothing is left at ``path``.

``format="litert", sparse=True`` asks the converter to store sparse weights
(``tf.lite.Optimize.EXPERIMENTAL_SPARSITY``; it encodes a tensor sparsely when that is smaller,
in blocks of 1×4 along the input dimension where it can, and adds DENSIFY ops that XNNPACK's
sparse inference path keys on).
The runtimes are optional: a missing one names the extra to install (``deploy``).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import keras
import numpy as np
from keras import ops, tree

from state_of_sparsity.callbacks import check_driven
from state_of_sparsity.export import _excess, _tolerance, export_saved_model, sample_inputs
from state_of_sparsity.optional import require
from state_of_sparsity.sparsify import strip_unchecked

__all__ = ["FORMATS", "export"]

FORMATS = ("tf_saved_model", "onnx", "litert", "openvino")
_SUFFIX = {"onnx": ".onnx", "litert": ".tflite", "openvino": ".xml"}


def _kernel_zeros(model) -> int:
    """Exact zeros in the weights of rank >= 2 of the (stripped) model."""
    return sum(
        int(np.count_nonzero(np.asarray(w) == 0)) for w in model.get_weights() if np.ndim(w) >= 2
    )


def _zeros(arrays) -> int:
    return sum(
        int(np.count_nonzero(a == 0))
        for a in arrays
        if a.ndim >= 2 and np.issubdtype(a.dtype, np.floating)
    )


def _flat_inputs(x):
    return [np.asarray(v) for v in tree.flatten(x)]


def _run_onnx(path, x):
    onnx = require("onnx", "ONNX export")
    ort = require("onnxruntime", "the ONNX export check")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {i.name: v for i, v in zip(session.get_inputs(), _flat_inputs(x), strict=True)}
    outputs = session.run(None, feeds)
    weights = [onnx.numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer]
    return outputs, _zeros(weights)


def _litert_interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        tf = require("tensorflow", "the LiteRT export check")
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=path)


def _run_litert(path, x):
    interpreter = _litert_interpreter(path)
    runner = interpreter.get_signature_runner()
    signature = interpreter.get_signature_list()["serving_default"]
    outputs = runner(**dict(zip(signature["inputs"], _flat_inputs(x), strict=True)))
    details = interpreter.get_tensor_details()
    if any(detail.get("sparsity_parameters") for detail in details):
        return [outputs[name] for name in signature["outputs"]], None  # stored sparse
    arrays = []
    for detail in details:
        try:
            arrays.append(np.asarray(interpreter.get_tensor(detail["index"])))
        except ValueError:  # tensors without data (intermediate buffers)
            continue
    return [outputs[name] for name in signature["outputs"]], _zeros(arrays)


def _run_openvino(path, x):
    ov = require("openvino", "OpenVINO export")
    model = ov.Core().read_model(path)
    compiled = ov.Core().compile_model(model, "CPU")
    result = compiled(_flat_inputs(x))
    outputs = [result[output] for output in compiled.outputs]
    constants = [op.get_data() for op in model.get_ops() if op.get_type_name() == "Constant"]
    return outputs, _zeros([np.asarray(c) for c in constants])


_RUN = {"onnx": _run_onnx, "litert": _run_litert, "openvino": _run_openvino}
# What each format needs besides Keras (checked first, so a missing one names its extra).
_RUNTIMES = {
    "onnx": ("onnx", "onnxruntime"),
    "litert": (),
    "openvino": ("openvino",),
}


def export(
    model,
    path,
    format: str = "tf_saved_model",
    *,
    sample_input=None,
    atol: float | None = None,
    sparse: bool = False,
    **options,
):
    """Strips ``model``, exports it with Keras' exporter in ``format`` and checks the reload.

    Args:
        model: a sparsified (or plain) Keras model.
        path: the artifact: a directory for ``"tf_saved_model"``, a file ending in ``.onnx``,
            ``.tflite`` or ``.xml`` (OpenVINO, with its ``.bin`` beside it) otherwise.
        format: one of ``FORMATS``.
        sample_input: a batch for the check (default: ``export.sample_inputs(model)``; float
            inputs ~ N(0, 1), integer inputs 0).
        atol: tolerance of the output check (default by compute dtype: 1e-5 for float32; the
            runtimes fuse and reorder operations, so tflite and OpenVINO get 1e-4).
        sparse: LiteRT only: store the weights in TFLite's sparse format.
        **options: eval options, as for ``strip`` (e.g. a VD ``threshold``).

    Returns:
        ``path``.
    """
    if format not in FORMATS:
        raise ValueError(f"`format` must be one of {', '.join(FORMATS)}, got {format!r}.")
    if sparse and format != "litert":
        raise ValueError(f"`sparse=True` applies to format='litert', not {format!r}.")
    if format == "tf_saved_model":
        path = export_saved_model(model, path, sample_input=sample_input, atol=atol, **options)
        tf = require("tensorflow", "SavedModel export")
        variables = tf.saved_model.load(path).variables
        zeros = _zeros([np.asarray(v.numpy()) for v in variables])
        needed = _kernel_zeros(strip_unchecked(model, **options))
        if zeros < needed:
            shutil.rmtree(path)
            raise RuntimeError(
                f"The SavedModel holds {zeros:,} zero weights, the stripped model's kernels "
                f"{needed:,}; it was removed from {path!r}."
            )
        return path
    path = os.fspath(path)
    if not path.endswith(_SUFFIX[format]):
        raise ValueError(
            f"format={format!r} writes a file ending in {_SUFFIX[format]!r}: {path!r}."
        )
    needs = _RUNTIMES[format]
    if keras.backend.backend() != "torch":  # Keras converts through TensorFlow graphs
        needs = (*needs, "tensorflow", *(("tf2onnx",) if format == "onnx" else ()))
    for module in needs:
        require(module, f"{format} export")
    check_driven(model, "export")
    stripped = strip_unchecked(model, **options)
    x = sample_inputs(model) if sample_input is None else sample_input
    expected = [np.asarray(ops.convert_to_numpy(y)) for y in tree.flatten(model(x, training=False))]
    if atol is None:
        atol = _tolerance(model) if format == "onnx" else max(_tolerance(model), 1e-4)
    kwargs = {}
    if sparse:
        tf = require("tensorflow", "LiteRT export")
        kwargs["optimizations"] = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]

    target = os.path.dirname(os.path.abspath(path))
    os.makedirs(target, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=target)
    try:
        staged = os.path.join(staging, os.path.basename(path))
        stripped(x, training=False)  # exporters need a model that has been called
        stripped.export(staged, format=format, verbose=False, **kwargs)
        got, zeros = _RUN[format](staged, x)
        diff = max(
            (_excess(np.asarray(g), e) for g, e in zip(got, expected, strict=True)), default=0.0
        )
        if not diff <= atol:
            raise RuntimeError(
                f"The reloaded {format} model differs from the eval-mode model by {diff:.3g} "
                f"(max |got - expected| / (1 + |expected|)) > atol={atol}; nothing was written "
                f"to {path!r}."
            )
        needed = _kernel_zeros(stripped)
        if zeros is not None and zeros < needed:
            raise RuntimeError(
                f"The {format} artifact holds {zeros:,} zero weights, the stripped model's "
                f"kernels {needed:,}: the export densified them; nothing was written to {path!r}."
            )
        for name in os.listdir(staging):  # the artifact (and OpenVINO's .bin beside it)
            os.replace(os.path.join(staging, name), os.path.join(target, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
