"""Imports of optional dependencies, with the extra that provides each.

The library needs only Keras and NumPy. TensorFlow (SavedModel export, TensorBoard summaries)
comes with ``pip install "state-of-sparsity[tensorflow]"``; the paper's binaries need
``state-of-sparsity[paper]``; the export runtimes (ONNX, LiteRT, OpenVINO) come with
``state-of-sparsity[deploy]``.
"""

from __future__ import annotations

import importlib

__all__ = ["MissingExtra", "require"]

# module -> the pip extra that installs it
_EXTRAS = {
    "tensorflow": "tensorflow",
    "tensorflow_text": "paper",
    "tensorflow_datasets": "paper",
    "sentencepiece": "paper",
    "sacrebleu": "paper",
    "sacremoses": "paper",
    "matplotlib": "paper",
    "onnx": "deploy",
    "onnxruntime": "deploy",
    "tf2onnx": "deploy",
    "ai_edge_litert": "deploy",
    "openvino": "deploy",
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, purpose: str):
    """Imports and returns ``module``, or raises ``MissingExtra`` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = _EXTRAS.get(module.split(".")[0], "paper")
        raise MissingExtra(
            f"{purpose} needs {module}, which is not installed: "
            f'pip install "state-of-sparsity[{extra}]".'
        ) from None
