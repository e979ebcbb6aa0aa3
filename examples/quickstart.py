"""Quickstart: prune a small CNN to 90% sparsity with magnitude and random pruning.

Runs in about a minute on a laptop CPU with no downloads. The task is synthetic: 16x16 images
of noise with one brighter quadrant; the label is that quadrant. A dense CNN is trained first,
then each technique prunes a copy of it gradually (PolynomialDecay, the paper's schedule) while
training continues; the script prints the sparsity report and the accuracies, and exports the
magnitude-pruned model as a SavedModel.

    python examples/quickstart.py [output_dir]
"""

import os
import sys

import keras
import numpy as np

import state_of_sparsity as sos


def quadrant_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (n, 16, 16, 1)).astype("float32")
    y = rng.integers(0, 4, n)
    for i, q in enumerate(y):
        r, c = divmod(q, 2)
        x[i, 8 * r : 8 * r + 8, 8 * c : 8 * c + 8] += 0.5
    return x, y


def cnn():
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(32, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu", name="fc1")(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="predictions")(x))


def compile_(model):
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def main(output_dir):
    keras.utils.set_random_seed(0)
    x, y = quadrant_data(4096, seed=0)
    x_test, y_test = quadrant_data(1024, seed=1)
    batch, epochs = 64, 6
    steps = epochs * len(x) // batch

    dense = compile_(cnn())
    dense.fit(x, y, batch_size=batch, epochs=3, verbose=2)
    results = {"dense": dense.evaluate(x_test, y_test, verbose=0)[1]}

    schedule = sos.PolynomialDecay(0.0, 0.9, begin_step=0, end_step=steps // 2, frequency=20)
    for technique in ("magnitude_pruning", "random_pruning"):
        # The stem stays dense; everything else follows the schedule to 90%.
        model = compile_(
            sos.sparsify(dense, technique, schedule=schedule, overrides={"conv1": 0.0}, seed=0)
        )
        model.fit(
            x, y, batch_size=batch, epochs=epochs, verbose=2, callbacks=[sos.SparsityCallback()]
        )
        report = sos.sparsity_report(model)
        print(f"\n{technique}\n{report}\n")
        results[technique] = model.evaluate(x_test, y_test, verbose=0)[1]
        if technique == "magnitude_pruning":
            path = sos.export_saved_model(model, os.path.join(output_dir, "saved_model"))
            print(f"SavedModel written to {path} (reload checked)\n")

    print("test accuracy:", ", ".join(f"{k} {v:.3f}" for k, v in results.items()))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/quickstart")
