"""What is benchmarked: the architectures, their batches and losses, and the variants built on them.

Ours are built with Keras 3 on the current backend (``dense`` and ``sos.sparsify`` of it for
each technique); the peer's with legacy ``tf_keras`` (``tfk_dense`` and tfmot's
``prune_low_magnitude`` of it). Every variant comes with the step the timing drives: one
``train_on_batch``, with our ``SparsityCallback`` batch hooks around it for the sparsified ones.
Keras, TensorFlow and the library are imported lazily, once the backend is chosen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

MODELS = ("cnn", "resnet50", "resnet50_sos", "transformer")
PEER_MODELS = ("cnn", "resnet50")  # models with a tf_keras twin for the tfmot peer
OURS = ("dense", "mp", "rp", "vd", "l0")  # ours, on the current Keras 3 backend
PEER = ("tfk_dense", "tfmot")  # tf_keras + tfmot (TensorFlow backend only)
REFERENCE = {"mp": "dense", "rp": "dense", "vd": "dense", "l0": "dense", "tfmot": "tfk_dense"}
TECHNIQUE = {
    "mp": "magnitude_pruning",
    "rp": "random_pruning",
    "vd": "variational_dropout",
    "l0": "l0_regularization",
}
PRUNED = ("mp", "rp", "tfmot")  # variants with masks (mask-update timing, mask sparsity)
OURS_PRUNED = ("mp", "rp")  # ours among them: masks held by sos PruningWrappers
PENALIZED = ("vd", "l0")  # variants whose penalty is weighted by sos.Ramp(--regularizer_weight)


# --------------------------------------------------------------------------------------------
# Models (the same definitions for keras 3 and tf_keras: ``K`` is either module)


def small_cnn(K, classes: int = 10):
    """3 x (Conv2D 3x3 + MaxPool) -> Dense(256) -> Dense(classes), on 32x32x3."""
    layers = K.layers
    return K.Sequential(
        [
            K.Input((32, 32, 3)),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(128, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dense(classes),
        ],
        name="small_cnn",
    )


def transformer_batch(args) -> tuple[int, int]:
    sentences, length = (int(v) for v in args.transformer_batch.lower().split("x"))
    return sentences, length


def build_arch(K, name: str, args):
    if name == "cnn":
        return small_cnn(K)
    if name == "transformer":  # Keras 3 only, like resnet50_sos; dropout 0.1 (base v3)
        from state_of_sparsity.paper.models.transformer import transformer

        return transformer(args.transformer_preset, args.transformer_vocab)
    size = args.resnet_size
    if name == "resnet50_sos":  # Keras 3 only (no tf_keras twin: see PEER_MODELS)
        from state_of_sparsity.paper.models.resnet import resnet

        # weight_decay=0 (the default): no L2 term, like the keras.applications ResNet50.
        return resnet(
            50, num_classes=args.resnet_classes, input_shape=(size, size, 3), weight_decay=0.0
        )
    return K.applications.ResNet50(
        weights=None, input_shape=(size, size, 3), classes=args.resnet_classes
    )


def from_logits(name: str) -> bool:
    """Whether the model outputs logits (keras.applications' ResNet50 ends in a softmax)."""
    return name != "resnet50"


def batch_for(name: str, args, classes: int):
    rng = np.random.default_rng(args.seed)
    if name == "transformer":  # no padding: every token counts
        sentences, length = transformer_batch(args)
        ids = rng.integers(3, classes, size=(3, sentences, length)).astype(np.int32)
        decoder_inputs = np.pad(ids[1][:, :-1], [[0, 0], [1, 0]])
        return (ids[0], decoder_inputs), ids[1]
    if name == "cnn":
        shape, batch = (32, 32, 3), args.cnn_batch
    else:
        shape, batch = (args.resnet_size, args.resnet_size, 3), args.resnet_batch
    x = rng.random((batch, *shape), dtype=np.float32)
    y = rng.integers(0, classes, size=(batch,)).astype(np.int32)
    return x, y


def first_input(x):
    """The first input array (the Transformer's inputs are (source, decoder_inputs))."""
    return x[0] if isinstance(x, tuple) else x


def batch_info(x) -> dict:
    """The batch size and per-example input shape of ``x``, as the JSON records them."""
    shape = first_input(x).shape
    return {"batch": int(shape[0]), "input_shape": list(shape[1:])}


def classes_for(name: str, args) -> int:
    if name == "transformer":
        return args.transformer_vocab
    return 10 if name == "cnn" else args.resnet_classes


def loss_for(name: str, classes: int):
    """The model's training loss: the Transformer's label-smoothed per-token cross-entropy."""
    import keras

    if name == "transformer":
        from state_of_sparsity.paper.training.losses import PaddedSequenceCrossentropy

        return PaddedSequenceCrossentropy(classes, label_smoothing=0.1)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits(name))


# --------------------------------------------------------------------------------------------
# Variants


@dataclasses.dataclass
class Variant:
    name: str
    family: str  # "ours" or "peer"
    reference: str  # the dense variant its ratio is taken to
    model: object
    step: Callable[[], float]  # one timed train step; returns the loss (synchronised)
    info: dict = dataclasses.field(default_factory=dict)


def _loss(value) -> float:
    return float(np.asarray(value).reshape(-1)[0])


def ours_models(name: str, args, selected) -> dict:
    """{variant: compiled Keras 3 model} for the selected variants of ours (dense first).

    VD / L0 get ``penalty_ramp(args)`` on every wrapper at ``sparsify`` time, the ramp that
    ``SparsityCallback(regularizer_weight=...).on_train_begin`` would set, so the weighted
    penalty is in the compiled train step from the first step on.
    """
    import keras

    import state_of_sparsity as sos

    if not any(v in OURS for v in selected):
        return {}
    keras.utils.set_random_seed(args.seed)
    if args.dtype_policy:
        keras.config.set_dtype_policy(args.dtype_policy)
    dense = build_arch(keras, name, args)
    schedule = sos.PolynomialDecay(
        0.0, args.sparsity, begin_step=0, end_step=args.end_step, frequency=args.frequency
    )
    models = {}
    for vname in (v for v in OURS if v in selected):
        if vname == "dense":
            model = dense
        elif vname == "mp":
            model = sos.sparsify(dense, TECHNIQUE[vname], schedule=schedule)
        elif vname == "rp":
            model = sos.sparsify(dense, TECHNIQUE[vname], schedule=schedule, seed=args.seed)
        else:
            model = sos.sparsify(
                dense, TECHNIQUE[vname], seed=args.seed, regularizer_weight=penalty_ramp(args)
            )
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=loss_for(name, classes_for(name, args)),
        )
        models[vname] = model
    return models


def penalty_ramp(args):
    """The VD KL / L0 penalty weight: a constant ``sos.Ramp(--regularizer_weight)``."""
    import state_of_sparsity as sos

    return sos.Ramp(args.regularizer_weight)


def ours_variants(name: str, args, x, y, selected) -> list[Variant]:
    import state_of_sparsity as sos

    variants = []
    for vname, model in ours_models(name, args, selected).items():
        info = {"params": int(model.count_params())}
        if vname == "dense":
            step = _plain_step(model, x, y)
        else:
            wrappers = [w for _, w in sos.traversal.wrappers(model)]
            info["wrapped_layers"] = len(wrappers)
            if vname in PRUNED:
                info["pruned_layers"] = len(sos_wrappers(model))
            ramp = None
            if vname in PENALIZED:
                ramp = penalty_ramp(args)
                # The weighted penalty the first step adds to the loss (shows it is there).
                info["weighted_penalty_at_start"] = float(
                    sum(float(np.asarray(w.penalty())) for w in wrappers) * ramp.value
                )
            # As fit(callbacks=[SparsityCallback(regularizer_weight=ramp)]) drives it. For VD /
            # L0 the layers already hold an equal ramp (set by sparsify): no rebuild happens.
            callback = sos.SparsityCallback(regularizer_weight=ramp)
            callback.set_model(model)
            callback.on_train_begin()
            step = _callback_step(model, callback, x, y)
        variants.append(Variant(vname, "ours", "dense", model, step, info))
    return variants


def _plain_step(model, x, y):
    def step():
        return _loss(model.train_on_batch(x, y))

    return step


def _callback_step(model, callback, x, y):
    """One ``fit``-like step: the SparsityCallback's batch hooks around ``train_on_batch``."""
    counter = [0]

    def step():
        batch = counter[0]
        callback.on_train_batch_begin(batch)
        loss = _loss(model.train_on_batch(x, y))
        callback.on_train_batch_end(batch)
        counter[0] += 1
        return loss

    return step


def sos_wrappers(model):
    """The library's pruning wrappers in ``model`` (those that hold a mask)."""
    from state_of_sparsity import traversal
    from state_of_sparsity.layers.pruning import PruningWrapper

    return [w for _, w in traversal.wrappers(model) if isinstance(w, PruningWrapper)]


def peer_variants(name: str, args, x, y, selected) -> list[Variant]:
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras

    if not any(v in PEER for v in selected):
        return []
    tf.random.set_seed(args.seed)
    if args.dtype_policy:
        tf_keras.mixed_precision.set_global_policy(args.dtype_policy)
    dense = build_arch(tf_keras, name, args)
    pruned = None
    if "tfmot" in selected:
        pruned = build_arch(tf_keras, name, args)
        pruned.set_weights(dense.get_weights())
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            0.0, args.sparsity, begin_step=0, end_step=args.end_step, frequency=args.frequency
        )
        pruned = tfmot.sparsity.keras.prune_low_magnitude(pruned, pruning_schedule=schedule)
    variants = []
    for vname, model in (("tfk_dense", dense), ("tfmot", pruned)):
        if vname not in selected:
            continue
        model.compile(
            optimizer=tf_keras.optimizers.SGD(0.01, momentum=0.9),
            loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits(name)),
        )
        info = {"params": int(model.count_params())}
        if vname == "tfmot":
            # What fit(callbacks=[UpdatePruningStep()]) does before the first step: arm the
            # step counters. The counters then advance inside the compiled train step.
            callback = tfmot.sparsity.keras.UpdatePruningStep()
            callback.set_model(model)
            callback.on_train_begin()
            info["pruned_layers"] = len(tfmot_pruned(model))
        variants.append(Variant(vname, "peer", "tfk_dense", model, _plain_step(model, x, y), info))
    return variants


def tfmot_pruned(model):
    """tfmot's pruning wrappers in ``model`` that prune something."""
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

    return [
        layer
        for layer in pruning_wrapper.collect_prunable_layers(model)
        if getattr(layer, "pruning_vars", None)
    ]


def mask_sparsity(variant: Variant) -> float | None:
    """Fraction of zeros over all the masks of a pruned variant (None for a dense one)."""
    if variant.name in OURS_PRUNED:
        masks = [np.asarray(w.mask.value) for w in sos_wrappers(variant.model)]
    elif variant.name == "tfmot":
        masks = [
            m.numpy() for layer in tfmot_pruned(variant.model) for _, m, _ in layer.pruning_vars
        ]
    else:
        return None
    return float(sum(int((m == 0).sum()) for m in masks) / sum(m.size for m in masks))
