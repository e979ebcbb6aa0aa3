"""Deployment benchmark: file sizes and LiteRT latency of dense vs pruned models.

    python bench/inference.py [--rounds 40] [--threads 1] [--size 224] [--out bench/out]

1. Sizes (90% magnitude pruning, one update): for MobileNet-v1 (below) and a Transformer FFN
   block (512 -> 2048 -> 512, the paper's Transformer base), the stripped ``.keras``, its gzip,
   ``sos.save_sparse``, ``model.quantize("int8")`` after ``strip`` as ``.keras`` and through
   ``save_sparse``, and ``sos.export(format="litert")`` dense and ``sparse=True``.
2. Latency: MobileNet-v1 (width 1.0, 224×224) with its 1×1 convolutions pruned to 0, 50, 75,
   90 and 95% (the stem and the depthwise convolutions stay dense, as in Elsen et al. 2020 and
   tfmot's ``PruneForLatencyOnXNNPack``), each exported with ``sos.export(format="litert",
   sparse=True)`` (dense: ``sparse=False``) and run by the ``ai-edge-litert`` interpreter
   (XNNPACK) on batch 1. The model follows XNNPACK's documented sparse-inference rules: a
   3×3 stride-2 stem with padding 1 on each side (explicit ``ZeroPadding2D``), depthwise 3×3
   with padding 1, 1×1 convolutions, ReLU6, and a global mean. Trials are interleaved (one
   invoke of each model per round, order rotated each round); medians and ratios to dense.
3. A sparse matrix product for the FFN: ``tf.sparse.sparse_dense_matmul`` of the 2048 × 512
   kernel (a COO ``tf.SparseTensor``) against ``tf.matmul``, batch 1 and 16, one thread,
   interleaved, medians.
"""

from __future__ import annotations

import argparse
import gzip
import os
import time
import warnings

import keras
import numpy as np

import state_of_sparsity as sos

L = keras.layers
SPARSITIES = (0.5, 0.75, 0.9, 0.95)
# (filters, stride) of MobileNet-v1's 13 depthwise-separable blocks (Howard et al. 2017)
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5
BLOCKS += [(1024, 2), (1024, 1)]


def mobilenet_v1(size: int) -> keras.Model:
    """MobileNet-v1 with XNNPACK-compatible padding (explicit, 1 on each side)."""
    inputs = keras.Input((size, size, 3))
    x = L.ZeroPadding2D(1)(inputs)
    x = L.Conv2D(32, 3, strides=2, use_bias=False, name="stem")(x)
    x = L.ReLU(6.0)(L.BatchNormalization()(x))
    for i, (filters, stride) in enumerate(BLOCKS):
        x = L.ZeroPadding2D(1)(x)
        x = L.DepthwiseConv2D(3, strides=stride, use_bias=False, name=f"dw_{i}")(x)
        x = L.ReLU(6.0)(L.BatchNormalization()(x))
        x = L.Conv2D(filters, 1, use_bias=False, name=f"pw_{i}")(x)
        x = L.ReLU(6.0)(L.BatchNormalization()(x))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(1000, name="logits")(x))


def ffn_block() -> keras.Model:
    """The Transformer base feed-forward block: 512 -> 2048 (ReLU) -> 512."""
    inputs = keras.Input((64, 512))
    x = L.Dense(2048, activation="relu", name="ffn_in")(inputs)
    return keras.Model(inputs, L.Dense(512, name="ffn_out")(x))


def pruned(model, sparsity, **kwargs):
    """``model`` sparsified by MP at ``sparsity`` after one mask update."""
    schedule = sos.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    sparse = sos.sparsify(model, "magnitude_pruning", schedule=schedule, **kwargs)
    sos.update_masks(sparse, 1)
    return sparse


def sizes(name, model, out):
    """Rows (format, bytes) for ``model`` pruned to 90%."""
    sparse = pruned(model, 0.9)
    stripped = sos.strip(sparse)
    rows = []
    model.save(f"{out}/{name}_dense.keras")
    rows.append(("dense .keras", os.path.getsize(f"{out}/{name}_dense.keras")))
    stripped.save(f"{out}/{name}.keras")
    with open(f"{out}/{name}.keras", "rb") as file:
        data = file.read()
    rows.append(("stripped .keras (90% zeros)", len(data)))
    rows.append(("  gzip -9", len(gzip.compress(data, 9))))
    rows.append(("sos.save_sparse", sos.save_sparse(stripped, f"{out}/{name}.sos").bytes))
    dense_litert = sos.export(sparse, f"{out}/{name}.tflite", format="litert")
    rows.append(("sos.export litert", os.path.getsize(dense_litert)))
    sparse_litert = sos.export(sparse, f"{out}/{name}_s.tflite", format="litert", sparse=True)
    rows.append(("sos.export litert, sparse=True", os.path.getsize(sparse_litert)))
    stripped.quantize("int8")  # Dense / EinsumDense / Embedding in Keras 3.15, not Conv
    stripped.save(f"{out}/{name}_int8.keras")
    rows.append(("int8 .keras (quantize after strip)", os.path.getsize(f"{out}/{name}_int8.keras")))
    rows.append(("int8 + sos.save_sparse", sos.save_sparse(stripped, f"{out}/{name}_i8.sos").bytes))
    return rows


def latency(size, rounds, threads, out):
    from ai_edge_litert.interpreter import Interpreter

    model = mobilenet_v1(size)
    paths = {0.0: sos.export(model, f"{out}/mnv1_0.tflite", format="litert")}
    for s in SPARSITIES:
        sparse = pruned(model, s, exclude=["stem", "dw_*"])
        paths[s] = sos.export(sparse, f"{out}/mnv1_{s}.tflite", format="litert", sparse=True)
    x = np.random.default_rng(0).standard_normal((1, size, size, 3)).astype("float32")
    runners = {}
    for s, path in paths.items():
        interpreter = Interpreter(model_path=path, num_threads=threads)
        runner = interpreter.get_signature_runner()
        name = list(interpreter.get_signature_list()["serving_default"]["inputs"])[0]
        for _ in range(3):  # warm-up (XNNPACK packs weights on the first invoke)
            runner(**{name: x})
        runners[s] = (runner, name)
    times = {s: [] for s in runners}
    keys = list(runners)
    for r in range(rounds):
        for s in keys[r % len(keys) :] + keys[: r % len(keys)]:
            runner, name = runners[s]
            start = time.perf_counter()
            runner(**{name: x})
            times[s].append(time.perf_counter() - start)
    return {s: float(np.median(t)) for s, t in times.items()}, {
        s: os.path.getsize(p) for s, p in paths.items()
    }


def ffn_matmul(rounds):
    """{(batch, sparsity): dense median / sparse median} for the FFN's 2048 x 512 product."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    ratios = {}
    for batch in (1, 16):
        for s in (0.9, 0.95):
            kernel = rng.standard_normal((2048, 512)).astype("float32")
            kernel[rng.random(kernel.shape) < s] = 0
            x = tf.constant(rng.standard_normal((512, batch)).astype("float32"))
            dense_kernel = tf.constant(kernel)
            sparse_kernel = tf.sparse.from_dense(dense_kernel)
            runs = {
                "dense": tf.function(lambda k=dense_kernel, x=x: tf.matmul(k, x)),
                "sparse": tf.function(
                    lambda k=sparse_kernel, x=x: tf.sparse.sparse_dense_matmul(k, x)
                ),
            }
            times = {name: [] for name in runs}
            for _ in range(3):
                for run in runs.values():
                    run()
            for _ in range(rounds * 5):
                for name, run in runs.items():
                    start = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - start)
            ratios[(batch, s)] = np.median(times["dense"]) / np.median(times["sparse"])
    return ratios


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--out", default="bench/out")
    args = parser.parse_args()
    import tensorflow as tf  # one thread for TensorFlow's own ops, set before any op runs

    tf.config.threading.set_intra_op_parallelism_threads(1)
    os.makedirs(args.out, exist_ok=True)
    warnings.filterwarnings("ignore")
    for name, model in (("mobilenet_v1", mobilenet_v1(args.size)), ("ffn_512_2048", ffn_block())):
        rows = sizes(name, model, args.out)
        dense = rows[0][1]
        print(f"\n{name}, 90% magnitude pruning: file sizes")
        for label, size in rows:
            print(f"  {label:38s} {size:>12,d} B  {dense / size:6.2f}x smaller than dense")
    medians, file_sizes = latency(args.size, args.rounds, args.threads, args.out)
    print(
        f"\nMobileNet-v1 {args.size}x{args.size}, LiteRT (XNNPACK), batch 1, {args.threads} "
        f"thread(s), median of {args.rounds} interleaved trials; 1x1 convolutions pruned"
    )
    print(f"  {'sparsity':>8s} {'ms':>8s} {'speed-up':>9s} {'.tflite bytes':>14s}")
    for s, median in medians.items():
        speedup = medians[0.0] / median
        print(f"  {s:8.0%} {median * 1e3:8.2f} {speedup:8.2f}x {file_sizes[s]:14,d}")
    print("\nFFN 2048x512 kernel, tf.sparse.sparse_dense_matmul vs tf.matmul, 1 thread")
    for (batch, s), ratio in ffn_matmul(args.rounds).items():
        print(f"  batch {batch:2d}, sparsity {s:.0%}: sparse speed-up {ratio:.2f}x")


if __name__ == "__main__":
    main()
