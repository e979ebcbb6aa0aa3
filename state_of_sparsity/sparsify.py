"""Whole-model transforms: ``sparsify`` (wrap every supported layer) and ``strip`` (unwrap).

Both clone the model with ``keras.models.clone_model`` (Sequential and Functional models, nested
ones recursively); every layer of the result is a new object holding a copy of the original's
weights, so the input model is never modified. Subclassed models cannot be cloned generically:
those using the ``sos.layers.Sparsifiable`` protocol are rebuilt from their config with the
planned wrappers (e.g. ``sos.models.transformer.Transformer``); for others, wrap their layers with
``sos.layers.MagnitudePruning(...)`` etc. where they are created.
"""

from __future__ import annotations

import fnmatch
import inspect
import numbers

import keras
from keras.src.models.functional import Functional  # no public name for "a Functional model"

from state_of_sparsity import traversal
from state_of_sparsity.layers import registry
from state_of_sparsity.layers.attention import PROJECTIONS, SparseMultiHeadAttention
from state_of_sparsity.layers.base import SparsityWrapper, copy_layer, mix_seed
from state_of_sparsity.layers.pruning import PruningWrapper
from state_of_sparsity.layers.sparsifiable import Sparsifiable
from state_of_sparsity.layers.techniques import (
    check_eval_options,
    eval_options_for,
    wrapper_class,
)
from state_of_sparsity.layers.variational_dropout import VariationalDropout
from state_of_sparsity.schedules import PruningSchedule

__all__ = ["sparsify", "strip", "set_threshold"]


def _check_clonable(model, what: str):
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model, got {type(model).__name__}.")
    if not isinstance(model, (keras.Sequential, Functional, Sparsifiable)):
        raise ValueError(
            f"{what} supports Sequential and Functional models (nested ones included) and "
            f"subclassed models using the `sos.layers.Sparsifiable` protocol; "
            f"{type(model).__name__} is a subclassed model, which Keras cannot clone. Use the "
            "protocol, or wrap its layers where you create them, e.g. "
            "`self.fc = sos.layers.MagnitudePruning(keras.layers.Dense(10), schedule=...)`."
        )
    if not model.built:
        raise ValueError(f"{what} needs a built model: call it once or give it an Input.")


def _is_plain_attention(layer) -> bool:
    return type(layer) is keras.layers.MultiHeadAttention and layer.built


def _candidates(model):
    """``(path, layer, owner_path)`` for every layer ``sparsify`` could wrap.

    ``owner_path`` is the path of the MultiHeadAttention holding a projection, else None.
    """
    found, projections = [], set()
    for path, layer in traversal.walk(model):
        if isinstance(layer, (SparsityWrapper, SparseMultiHeadAttention)):
            raise ValueError(f"Layer {path!r} is already sparsified; sparsify the dense model.")
        if _is_plain_attention(layer):
            for name, attr in PROJECTIONS.items():
                projection = getattr(layer, attr)
                projections.add(id(projection))
                found.append((f"{path}/{name}", projection, path))
        elif type(layer) in registry.supported_layer_types() and id(layer) not in projections:
            found.append((path, layer, None))
    return found


def _match(key: str, path: str, owner_path: str | None) -> bool:
    names = {path, path.rsplit("/", 1)[-1]}
    if owner_path is not None:
        names |= {owner_path, owner_path.rsplit("/", 1)[-1]}
    return any(fnmatch.fnmatchcase(name, key) for name in names)


def _check_keys(arg: str, keys, candidates) -> None:
    for key in keys:
        if not isinstance(key, str):
            raise ValueError(f"`{arg}` keys must be layer names or glob patterns, got {key!r}.")
        if not any(_match(key, p, o) for p, _, o in candidates):
            names = ", ".join(p for p, _, _ in candidates) or "(none)"
            raise ValueError(
                f"`{arg}` entry {key!r} matches no sparsifiable layer; "
                f"sparsifiable layers: {names}."
            )


def _check_target(key, value, uses_schedule: bool):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(
            f"`overrides[{key!r}]` must be a sparsity in [0, 1) or None (dense), got {value!r}."
        )
    if value != 0.0 and not uses_schedule:
        raise ValueError(
            f"`overrides[{key!r}]` = {value}: per-layer targets apply to the pruning techniques; "
            "for this technique an override can only be 0.0 or None (keep the layer dense)."
        )
    return float(value)


def _plan(model, technique, schedule, overrides, exclude, seed, technique_kwargs):
    """Decides, for every candidate layer, the wrapper arguments (or None: keep dense)."""
    cls = wrapper_class(technique)
    uses_schedule = issubclass(cls, PruningWrapper)
    if uses_schedule and not isinstance(schedule, PruningSchedule):
        raise ValueError(
            f"`schedule` must be a PruningSchedule for {technique!r} "
            f"(e.g. sos.PolynomialDecay(...)), got {schedule!r}."
        )
    if not uses_schedule and schedule is not None:
        raise ValueError(f"{technique!r} takes no `schedule`; got {schedule!r}.")
    allowed = _init_args(cls) - {"self", "layer", "kwargs", "schedule", "seed"}
    unknown = sorted(set(technique_kwargs) - allowed)
    if unknown:
        raise ValueError(
            f"Unknown argument(s) {unknown} for {technique!r}; "
            f"allowed: {sorted(allowed) or 'none besides schedule, overrides, exclude, seed'}."
        )
    overrides = dict(overrides or {})
    exclude = [exclude] if isinstance(exclude, str) else list(exclude or ())
    candidates = _candidates(model)
    _check_keys("overrides", overrides, candidates)
    _check_keys("exclude", exclude, candidates)
    targets = {k: _check_target(k, v, uses_schedule) for k, v in overrides.items()}

    plan = {}
    for index, (path, layer, owner_path) in enumerate(candidates):
        if any(_match(key, path, owner_path) for key in exclude):
            continue
        matched = [k for k in targets if _match(k, path, owner_path)]
        if len(matched) > 1:
            raise ValueError(f"Layer {path!r} matches several `overrides` entries: {matched}.")
        kwargs = dict(technique_kwargs)
        if matched:
            target = targets[matched[0]]
            if not target:
                continue
            kwargs["schedule"] = schedule.with_final_sparsity(target)
        elif uses_schedule:
            if schedule.final_sparsity == 0.0:
                continue
            kwargs["schedule"] = schedule
        if "seed" in _init_args(cls):
            kwargs["seed"] = None if seed is None else mix_seed(seed, index)
        plan[id(layer)] = (cls, kwargs)
    return plan


def _init_args(cls) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters)


def sparsify(
    model,
    technique: str,
    schedule: PruningSchedule | None = None,
    *,
    overrides: dict | None = None,
    exclude=(),
    seed: int | None = None,
    **technique_kwargs,
):
    """Returns a copy of ``model`` with every supported layer wrapped by ``technique``.

    Supported layers: Dense, EinsumDense, Conv1D/2D/3D, Embedding, and the q/k/v/output
    EinsumDense projections of ``keras.layers.MultiHeadAttention`` (which becomes a
    ``SparseMultiHeadAttention``), in Sequential and Functional models, nested ones included.
    Other layers stay dense; ``sparsity_report`` lists them with the reason.

    Args:
        model: a built Sequential or Functional model; it is not modified.
        technique: ``"magnitude_pruning"`` or ``"random_pruning"``.
        schedule: the ``PruningSchedule`` of every pruned layer (required for pruning).
        overrides: ``{name: target}`` per-layer targets. A target in (0, 1) scales the
            schedule by target / final_sparsity (the paper's ``weight_sparsity_map``); 0.0 or
            None keeps the layer dense. Keys are layer names or paths (``"block/conv"``,
            ``"mha/query"``; an attention layer's name covers its four projections), or glob
            patterns (``"conv*"``). A key matching no layer, or a layer matched by two keys, is
            an error.
        exclude: names, paths or patterns of layers to keep dense.
        seed: base seed for random pruning; each layer gets a distinct seed derived from it.
            None draws fresh seeds (stored in the configs).
        **technique_kwargs: further arguments of the technique's wrapper.

    Returns:
        A new, uncompiled model: compile it, then train with ``sos.SparsityCallback()``.
    """
    _check_clonable(model, "sparsify")
    plan = _plan(model, technique, schedule, overrides, exclude, seed, technique_kwargs)
    if isinstance(model, Sparsifiable):
        return _rebuild(model, _layer_wrappers(model, plan), _copy_into_wrapper)

    def clone(layer):
        if id(layer) in plan:
            cls, kwargs = plan[id(layer)]
            return cls(copy_layer(layer), **kwargs)
        if _is_plain_attention(layer):
            return _sparse_attention(layer, plan)
        return copy_layer(layer)

    return keras.models.clone_model(model, clone_function=clone, recursive=True)


def _sparse_attention(layer, plan):
    specs = {}
    for name, attr in PROJECTIONS.items():
        entry = plan.get(id(getattr(layer, attr)))
        if entry is not None:
            cls, kwargs = entry
            wrapper = cls(copy_layer(getattr(layer, attr)), **kwargs)
            specs[name] = {"technique": cls.technique, "config": wrapper.technique_config()}
    if not specs:
        return copy_layer(layer)
    new = SparseMultiHeadAttention.from_config({**layer.get_config(), "projection_wrappers": specs})
    new.build_from_config(layer.get_build_config())
    for name in PROJECTIONS:
        target = new.projection(name)
        target = target.layer if isinstance(target, SparsityWrapper) else target
        target.set_weights(getattr(layer, PROJECTIONS[name]).get_weights())
    return new


def strip(model, **options):
    """Returns a copy of ``model`` made of plain Keras layers with eval-time weights.

    Each wrapper becomes its inner layer type with kernel ``wrapper.eval_kernel(**options)``
    (for pruning, kernel * mask, with exact zeros); a ``SparseMultiHeadAttention`` becomes a
    ``MultiHeadAttention``. Other layers are copied with their weights.
    """
    _check_clonable(model, "strip")
    check_eval_options(options)
    if isinstance(model, Sparsifiable):
        return _rebuild(model, {}, lambda old, new: _copy_stripped(old, new, options))

    def clone(layer):
        if isinstance(layer, SparsityWrapper):
            return layer.stripped_layer(**eval_options_for(layer, options))
        if isinstance(layer, SparseMultiHeadAttention):
            return _plain_attention(layer, options)
        return copy_layer(layer)

    return keras.models.clone_model(model, clone_function=clone, recursive=True)


def _layer_wrappers(model, plan) -> dict:
    """``plan`` as the ``layer_wrappers`` argument of a ``Sparsifiable`` model (keyed by name)."""
    specs = {}
    for path, layer, owner_path in _candidates(model):
        if owner_path is None:
            key = layer.name
        else:
            key = f"{owner_path.rsplit('/', 1)[-1]}/{path.rsplit('/', 1)[-1]}"
        if key in specs:
            raise ValueError(f"Two sparsifiable layers of {model.name!r} are named {key!r}.")
        entry = plan.get(id(layer))
        specs[key] = None
        if entry is not None:
            cls, kwargs = entry
            config = cls(copy_layer(layer), **kwargs).technique_config()
            specs[key] = {"technique": cls.technique, "config": config}
    return {key: spec for key, spec in specs.items() if spec is not None}


def _rebuild(model, layer_wrappers, transfer):
    """A new instance of the ``Sparsifiable`` ``model`` with ``layer_wrappers``, built, with
    ``transfer(old_leaf, new_leaf)`` applied to every pair of leaf layers with weights at the
    same path (leaves without weights, such as Keras' auto-named softmax, are skipped)."""
    new = type(model).from_config({**model.get_config(), "layer_wrappers": layer_wrappers})
    new(new.dummy_inputs(), training=False)
    new_leaves = dict(traversal.leaves(new))
    for path, old in traversal.leaves(model):
        if not old.weights:
            continue
        if path not in new_leaves:
            raise ValueError(f"Rebuilding {model.name!r} lost the layer {path!r}.")
        transfer(old, new_leaves[path])
    return new


def _copy_into_wrapper(old, new):
    (new.layer if isinstance(new, SparsityWrapper) else new).set_weights(old.get_weights())


def _copy_stripped(old, new, options):
    if isinstance(old, SparsityWrapper):
        old = old.stripped_layer(**eval_options_for(old, options))
    new.set_weights(old.get_weights())


def _plain_attention(layer, options):
    config = layer.get_config()
    config.pop("projection_wrappers")
    plain = keras.layers.MultiHeadAttention.from_config(config)
    plain.build_from_config(layer.get_build_config())
    for name, attr in PROJECTIONS.items():
        source = layer.projection(name)
        if isinstance(source, SparsityWrapper):
            source = source.stripped_layer(**eval_options_for(source, options))
        getattr(plain, attr).set_weights(source.get_weights())
    return plain


def set_threshold(model, threshold: float) -> int:
    """Makes every variational-dropout layer of ``model`` evaluate at log α ``threshold``.

    Changes the layers' ``threshold`` (also in their configs, so a saved model keeps it) and
    drops the model's compiled predict / test functions so that ``model.predict`` and
    ``model.evaluate`` use the new value. Returns the number of layers changed.
    """
    layers = [w for _, w in traversal.wrappers(model) if isinstance(w, VariationalDropout)]
    for layer in layers:
        layer.set_threshold(threshold)
    for attribute in ("predict_function", "test_function"):
        if getattr(model, attribute, None) is not None:
            setattr(model, attribute, None)
    return len(layers)
