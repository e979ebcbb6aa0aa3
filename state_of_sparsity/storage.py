"""A compact file for sparse models: ``save_sparse`` (strip, then values + bitmask per tensor)
and ``load_sparse`` (the exact model back).

Why: a ``.keras`` file stores every weight densely, so a 90%-sparse model is no smaller than
its dense twin until it is compressed (gzip squeezes the runs of zeros but not the values).
Here each weight tensor of the stripped model is stored either densely or, when smaller, as
its non-zero values (C order, the tensor's own dtype) plus a bitmask of the non-zero positions
(1 bit per entry, ``np.packbits``): n·(1 − s)·b + n/8 bytes instead of n·b for n entries of b
bytes at sparsity s, so 4.2 bits instead of 32 per float32 weight at s = 0.9 (7.6× smaller),
1.8 bits instead of 8 for an int8 kernel. A bitmask beats index lists (COO / CSR) down to a
density of about 1/16 for float32 with 16-bit indices (Hoefler et al. 2021, §2.2), which is
where the paper's sparsities lie.

The file is a zip archive (``ZIP_DEFLATED``): ``model.json`` (the stripped model's Keras
config, as in a ``.keras`` file), ``weights.json`` (per tensor: shape, dtype, encoding) and one
``.npy`` member per stored array. ``load_sparse`` rebuilds the model from its config and sets
the weights: the outputs equal the stripped model's exactly. A zero is stored as +0.0 (the
sign of a pruned weight's zero carries no information). Quantized models (``model.quantize``
after ``strip``, e.g. int8 Dense / EinsumDense / Embedding kernels) store their integer
kernels the same way.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile

import keras
import numpy as np

from state_of_sparsity import traversal
from state_of_sparsity.callbacks import check_driven
from state_of_sparsity.sparsify import strip_unchecked

__all__ = ["SparseFile", "load_sparse", "save_sparse"]

_FORMAT = "state_of_sparsity.sparse/1"


@dataclasses.dataclass(frozen=True)
class SparseFile:
    """What ``save_sparse`` wrote: the file's size and the size of the same weights stored
    densely (``dense_bytes``, the raw weights of a ``.keras`` file)."""

    path: str
    bytes: int
    dense_bytes: int

    @property
    def ratio(self) -> float:
        """dense_bytes / bytes: how many times smaller than the dense weights."""
        return self.dense_bytes / self.bytes if self.bytes else float("inf")

    def __str__(self):
        return (
            f"{self.path}: {self.bytes:,} bytes, {self.ratio:.2f}x smaller than its "
            f"{self.dense_bytes:,} bytes of dense weights"
        )


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _encode(value: np.ndarray):
    """(entry for weights.json, {member suffix: array}) of one weight tensor."""
    nonzero = value.ravel() != 0
    entry = {"shape": list(value.shape), "dtype": value.dtype.name}
    sparse_bytes = int(nonzero.sum()) * value.dtype.itemsize + (value.size + 7) // 8
    if sparse_bytes < value.nbytes:
        entry["encoding"] = "bitmask"
        return entry, {"values": value.ravel()[nonzero], "mask": np.packbits(nonzero)}
    entry["encoding"] = "dense"
    return entry, {"dense": value}


def _decode(entry, arrays) -> np.ndarray:
    shape, dtype = tuple(entry["shape"]), np.dtype(entry["dtype"])
    if entry["encoding"] == "dense":
        return arrays["dense"].reshape(shape)
    size = int(np.prod(shape))
    nonzero = np.unpackbits(arrays["mask"], count=size).astype(bool)
    value = np.zeros(size, dtype)
    value[nonzero] = arrays["values"]
    return value.reshape(shape)


def save_sparse(model, path, **options) -> SparseFile:
    """Writes ``model`` as a compact sparse file at ``path``; returns its ``SparseFile``.

    A model holding sparsity wrappers is stripped first (``options`` are eval options, e.g.
    a VD ``threshold``); a plain model (already stripped, possibly quantized) is stored as is.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model, got {type(model).__name__}.")
    if traversal.wrappers(model):
        check_driven(model, "save_sparse")
        model = strip_unchecked(model, **options)
    elif options:
        raise ValueError(f"eval options {sorted(options)} apply to sparsified models only.")
    config = keras.saving.serialize_keras_object(model)
    weights = [np.asarray(w) for w in model.get_weights()]
    entries, dense_bytes = [], 0
    path = os.fspath(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.json", json.dumps(config))
        for index, value in enumerate(weights):
            entry, arrays = _encode(value)
            entries.append(entry)
            dense_bytes += value.nbytes
            for suffix, array in arrays.items():
                archive.writestr(f"{index}.{suffix}.npy", _npy(array))
        archive.writestr("weights.json", json.dumps({"format": _FORMAT, "weights": entries}))
    return SparseFile(path, os.path.getsize(path), dense_bytes)


def load_sparse(path, custom_objects=None) -> keras.Model:
    """The model ``save_sparse`` wrote at ``path`` (uncompiled), with its exact weights."""
    with zipfile.ZipFile(os.fspath(path)) as archive:
        manifest = json.loads(archive.read("weights.json"))
        if manifest.get("format") != _FORMAT:
            raise ValueError(f"{path!r} is not a state_of_sparsity sparse file.")
        config = json.loads(archive.read("model.json"))
        members = set(archive.namelist())
        weights = []
        for index, entry in enumerate(manifest["weights"]):
            arrays = {
                suffix: np.load(io.BytesIO(archive.read(f"{index}.{suffix}.npy")))
                for suffix in ("dense", "values", "mask")
                if f"{index}.{suffix}.npy" in members
            }
            weights.append(_decode(entry, arrays))
    model = keras.saving.deserialize_keras_object(config, custom_objects=custom_objects)
    model.set_weights(weights)
    return model
