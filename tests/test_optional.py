"""The library without its extras: Keras on JAX and NumPy only."""

import subprocess
import sys

import pytest

from state_of_sparsity.optional import MissingExtra, require

WITHOUT_TENSORFLOW = """
import sys
for name in ("tensorflow", "tensorflow_text", "tensorflow_datasets"):
    sys.modules[name] = None  # any import of these fails, as if not installed
import keras, numpy as np
import state_of_sparsity as sos
inputs = keras.Input((4,))
model = keras.Model(inputs, keras.layers.Dense(3, name="fc")(inputs))
schedule = sos.ConstantSparsity(0.5, 0, frequency=1)
sparse = sos.sparsify(model, "magnitude_pruning", schedule=schedule)
sos.update_masks(sparse, 1)
assert sos.sparsity_report(sparse)["fc"].nonzeros == 6
sos.strip(sparse)
try:
    sos.export_saved_model(sparse, "unused")
except sos.optional.MissingExtra as error:
    print(error)
"""


def test_the_library_runs_without_tensorflow():
    out = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW],
        capture_output=True,
        text=True,
        env={"KERAS_BACKEND": "jax", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == (
        "SavedModel export needs tensorflow, which is not installed: "
        'pip install "state-of-sparsity[tensorflow]".'
    )


def test_require_names_the_extra():
    message = r"BLEU needs sacrebleu.nothing, which is not installed: .*state-of-sparsity\[paper\]"
    with pytest.raises(MissingExtra, match=message):
        require("sacrebleu.nothing", "BLEU")
    assert require("numpy", "arrays").__name__ == "numpy"
