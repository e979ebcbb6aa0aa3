"""Whole-model transforms: ``sparsify`` (wrap every supported layer) and ``strip`` (unwrap).

Both copy the model and never modify it. Sequential and Functional models (``keras.ops`` nodes,
shared layers, nested models, several inputs and outputs) are copied with Keras' own cloning:
every layer is replaced by a fresh copy (or its sparse / plain version), Keras builds the copy by
running the graph on symbolic inputs, and the weights are copied across afterwards
(``transfer.copy_weights``). Layers with sub-layers (custom blocks, ``Bidirectional``, a
subclassed model used as a layer) are sparsified inside: see ``layers.nested``.

Subclassed models cannot be cloned generically. Those using the ``sos.layers.Sparsifiable``
protocol are rebuilt from their config with the planned wrappers (e.g. the paper's
``state_of_sparsity.paper.models.transformer.Transformer``). Others wrap their layers where they
create them (``self.fc = sos.layers.MagnitudePruning(keras.layers.Dense(10), schedule=...)``);
``strip`` then returns a copy whose wrappers are swapped for plain layers (for inference and
SavedModel export; see ``strip``).
"""

from __future__ import annotations

import collections
import dataclasses
import fnmatch
import inspect
import math
import numbers
import warnings

import keras

from state_of_sparsity import distributions, traversal
from state_of_sparsity.callbacks import check_driven
from state_of_sparsity.layers import nested, registry, sublayers
from state_of_sparsity.layers.attention import PROJECTIONS, SparseMultiHeadAttention
from state_of_sparsity.layers.base import SparsityWrapper, mix_seed
from state_of_sparsity.layers.pruning import PruningWrapper, check_distribution, pattern_misfit
from state_of_sparsity.layers.sparsifiable import Sparsifiable
from state_of_sparsity.layers.techniques import (
    check_eval_options,
    eval_options_for,
    wrapper_class,
)
from state_of_sparsity.layers.variational_dropout import VariationalDropout
from state_of_sparsity.ops import masks, patterns
from state_of_sparsity.schedules import PruningSchedule
from state_of_sparsity.transfer import copy_weights

__all__ = ["sparsify", "strip", "strip_unchecked", "set_threshold"]

# tfmot.sparsity.keras.prune_low_magnitude arguments -> what to use here.
_TFMOT_ARGUMENTS = {
    "pruning_schedule": "`schedule` (e.g. sos.PolynomialDecay(...), same arguments as tfmot's)",
    "block_size": "`pattern='RxC'` (e.g. pattern='1x4')",
    "block_pooling_type": "`pattern='RxC'` (blocks are ranked by their L2 norm)",
    "sparsity_m_by_n": "`pattern='N:M'` (e.g. pattern='2:4')",
    "pruning_policy": "`exclude` / `overrides` (layer names or glob patterns)",
    "to_prune": "`model`",
}


def _reject_tfmot_arguments(kwargs) -> None:
    for name in kwargs:
        if name in _TFMOT_ARGUMENTS:
            instead = _TFMOT_ARGUMENTS[name]
            raise ValueError(
                f"`{name}` is tensorflow-model-optimization's argument: use {instead}."
            )


def _check_model(model, what: str) -> None:
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model, got {type(model).__name__}.")
    if not model.built:
        raise ValueError(f"{what} needs a built model: call it once or give it an Input.")


@dataclasses.dataclass(frozen=True)
class _Candidate:
    """A layer ``sparsify`` could wrap: its path, the attention layer holding it (if a
    projection), and whether an attribute reaches it (else it cannot be swapped)."""

    path: str
    layer: keras.layers.Layer
    owner_path: str | None
    reachable: bool


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def _entries(layer, path, leaf, reachable=True):
    """The plan entry of ``layer`` (see ``layers.nested``), asking ``leaf(candidate)`` for the
    entry of every wrappable layer found below it; None if nothing changes."""
    if isinstance(layer, (SparsityWrapper, SparseMultiHeadAttention, nested.SparseSublayers)):
        raise ValueError(f"Layer {path!r} is already sparsified; sparsify the dense model.")
    if nested.is_graph_model(layer):
        planned = {}
        for index, child in enumerate(layer.layers):
            entry = _entries(child, _join(path, child.name), leaf, reachable)
            if entry is not None:
                planned[str(index)] = entry
        return {"layers": planned} if planned else None
    if type(layer) is keras.layers.MultiHeadAttention and layer.built:
        planned = {}
        for name, attribute in PROJECTIONS.items():
            candidate = _Candidate(f"{path}/{name}", getattr(layer, attribute), path, reachable)
            entry = leaf(candidate)
            if entry is not None:
                planned[name] = entry
        return {"projections": planned} if planned else None
    if registry.unsupported_reason(layer) is None:
        return leaf(_Candidate(path, layer, None, reachable))
    planned = {}
    for attribute, child in sublayers.attribute_paths(layer):
        entry = _entries(child, _join(path, child.name), leaf, reachable and attribute is not None)
        if entry is not None:
            planned[attribute] = entry
    return {"sublayers": planned} if planned else None


def _match(key: str, candidate: _Candidate) -> bool:
    names = {candidate.path, candidate.path.rsplit("/", 1)[-1]}
    if candidate.owner_path is not None:
        names |= {candidate.owner_path, candidate.owner_path.rsplit("/", 1)[-1]}
    return any(fnmatch.fnmatchcase(name, key) for name in names)


def _check_keys(arg: str, keys, candidates) -> None:
    for key in keys:
        if not isinstance(key, str):
            raise ValueError(f"`{arg}` keys must be layer names or glob patterns, got {key!r}.")
        if not any(_match(key, c) for c in candidates):
            names = ", ".join(c.path for c in candidates) or "(none)"
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


def _has_kernel(layer) -> bool:
    """Whether ``layer`` holds a weight of rank >= 2 (vectors are never sparsified)."""
    return any(len(w.shape) >= 2 for w in layer.weights)


def _init_args(cls) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters)


@dataclasses.dataclass(frozen=True)
class _Choice:
    """What ``sparsify`` does with one layer: wrap it (with ``schedule``, ``fixed`` if an
    override set its target) or leave it dense (warning with ``reason`` if there is one)."""

    wrap: bool
    schedule: PruningSchedule | None = None
    fixed: bool = False
    reason: str | None = None


def _kernel_shapes(layer) -> list[tuple]:
    spec = registry.spec_for(layer)
    return [tuple(registry.get_kernel(layer, path).shape) for path in spec.kernels]


class _Planner:
    """Decides, for every candidate layer of a model, its wrapper (or that it stays dense)."""

    def __init__(
        self, technique, schedule, overrides, exclude, seed, pattern, distribution, kwargs
    ):
        self.cls = wrapper_class(technique)
        self.uses_schedule = issubclass(self.cls, PruningWrapper)
        self.pattern = patterns.parse_pattern(pattern)
        self.distribution = check_distribution(distribution, self.pattern)
        if not self.uses_schedule and (self.pattern is not None or distribution != "uniform"):
            raise ValueError(
                f"`pattern` and `distribution` apply to magnitude_pruning and random_pruning, "
                f"not {technique!r}; got pattern={pattern!r}, distribution={distribution!r}."
            )
        if (
            isinstance(self.pattern, patterns.NM)
            and isinstance(schedule, PruningSchedule)
            and not math.isclose(schedule.final_sparsity, self.pattern.sparsity, abs_tol=1e-9)
        ):
            raise ValueError(
                f"pattern {self.pattern} fixes the sparsity at {self.pattern.sparsity:g}: give a "
                f"schedule with final_sparsity={self.pattern.sparsity:g} (it ramps there), got "
                f"{schedule.final_sparsity:g}."
            )
        if self.uses_schedule and not isinstance(schedule, PruningSchedule):
            raise ValueError(
                f"`schedule` must be a PruningSchedule for {technique!r} "
                f"(e.g. sos.PolynomialDecay(...)), got {schedule!r}."
            )
        if not self.uses_schedule and schedule is not None:
            raise ValueError(f"{technique!r} takes no `schedule`; got {schedule!r}.")
        fixed_args = {"self", "layer", "kwargs", "schedule", "seed", "pattern", "distribution"}
        allowed = _init_args(self.cls) - fixed_args
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise ValueError(
                f"Unknown argument(s) {unknown} for {technique!r}; "
                f"allowed: {sorted(allowed) or 'none besides schedule, overrides, exclude, seed'}."
            )
        self.schedule, self.seed, self.kwargs = schedule, seed, dict(kwargs)
        if self.uses_schedule:
            self.kwargs["pattern"] = None if self.pattern is None else str(self.pattern)
            self.kwargs["distribution"] = self.distribution
        self.erk: dict[int, float] = {}
        self.overrides = dict(overrides or {})
        self.exclude = [exclude] if isinstance(exclude, str) else list(exclude or ())
        self.targets = {}
        self.skipped: list[tuple[_Candidate, str]] = []  # dense although wrappable, and why
        self.wrapped: dict[int, tuple[_Candidate, dict]] = {}

    def plan(self, model):
        """The plan entry of ``model``; fills ``wrapped`` and ``skipped``."""
        candidates = []
        _entries(model, "", lambda c: candidates.append(c))
        _check_keys("overrides", self.overrides, candidates)
        _check_keys("exclude", self.exclude, candidates)
        self.targets = {
            k: _check_target(k, v, self.uses_schedule) for k, v in self.overrides.items()
        }
        fixed = {k: v for k, v in self.targets.items() if v}
        if fixed and self.distribution == "global":
            raise ValueError(
                "distribution='global' ranks all sparsified layers together, so `overrides` can "
                f"only keep layers dense (0.0 or None); got per-layer targets {fixed}."
            )
        self._index = {id(c.layer): i for i, c in enumerate(candidates)}
        if self.distribution == "erk":
            self._plan_erk(candidates)
        for path, layer in traversal.walk(model):
            reason = registry.unsupported_reason(layer)
            if reason and not traversal.children(layer) and _has_kernel(layer):
                self.skipped.append((_Candidate(path, layer, None, True), reason))
        return _entries(model, "", self._decide)

    def _choose(self, candidate) -> _Choice:
        """Whether and how to wrap a candidate (met for the first time)."""
        layer = candidate.layer
        if any(_match(key, candidate) for key in self.exclude):
            return _Choice(False)
        matched = [k for k in self.targets if _match(k, candidate)]
        if len(matched) > 1:
            raise ValueError(
                f"Layer {candidate.path!r} matches several `overrides` entries: {matched}."
            )
        schedule = None
        if matched:
            target = self.targets[matched[0]]
            if not target:
                return _Choice(False)
            schedule = self.schedule.with_final_sparsity(target)
        elif self.uses_schedule:
            if self.schedule.final_sparsity == 0.0:
                return _Choice(False)
            schedule = self.schedule
        reason = self.cls.not_applicable(layer)
        if reason is None and not candidate.reachable:
            reason = "no attribute of its parent layer holds it, so it cannot be swapped"
        if reason is None and (misfit := pattern_misfit(self.pattern, layer)) is not None:
            reason = f"pattern {self.pattern} does not fit ({misfit})"
        if reason is not None:
            return _Choice(False, reason=reason)
        return _Choice(True, schedule, fixed=bool(matched))

    def _plan_erk(self, candidates) -> None:
        """The ERK target of every wrapped layer without an override (``self.erk``)."""
        shapes, fixed_size, fixed_kept, seen = {}, 0, 0, set()
        for candidate in candidates:
            if id(candidate.layer) in seen:
                continue
            seen.add(id(candidate.layer))
            choice = self._choose(candidate)
            if not choice.wrap:
                continue
            kernel_shapes = _kernel_shapes(candidate.layer)
            if choice.fixed:
                for shape in kernel_shapes:
                    size = math.prod(shape)
                    fixed_size += size
                    fixed_kept += masks.keep_count(size, choice.schedule.final_sparsity)
            else:
                shapes[id(candidate.layer)] = kernel_shapes
        self.erk = distributions.erk_sparsities(
            shapes, self.schedule.final_sparsity, fixed_size, fixed_kept
        )

    def _decide(self, candidate):
        layer = candidate.layer
        if id(layer) in self.wrapped:  # a shared layer met again
            return self.wrapped[id(layer)][1]
        choice = self._choose(candidate)
        if not choice.wrap:
            if choice.reason is not None:
                self.skipped.append((candidate, choice.reason))
            return None
        kwargs = dict(self.kwargs)
        if choice.schedule is not None:
            kwargs["schedule"] = choice.schedule
            if id(layer) in self.erk:
                kwargs["schedule"] = self.schedule.with_final_sparsity(self.erk[id(layer)])
        if "seed" in _init_args(self.cls):
            seed = self.seed
            kwargs["seed"] = None if seed is None else mix_seed(seed, self._index[id(layer)])
        entry = {
            "technique": self.cls.technique,
            "config": self.cls(layer, **kwargs).technique_config(),
        }
        self.wrapped[id(layer)] = (candidate, entry)
        return entry

    def layer_wrappers(self) -> dict:
        """The plan as the ``layer_wrappers`` argument of a ``Sparsifiable`` model (keyed by
        layer name, or ``"<attention name>/<projection>"``)."""
        specs = {}
        for candidate, entry in self.wrapped.values():
            if candidate.owner_path is None:
                key = candidate.layer.name
            else:
                key = (
                    f"{candidate.owner_path.rsplit('/', 1)[-1]}/{candidate.path.rsplit('/', 1)[-1]}"
                )
            if key in specs:
                raise ValueError(f"Two sparsifiable layers are named {key!r}.")
            specs[key] = entry
        return specs

    def warn_skipped(self) -> None:
        if not self.skipped:
            return
        by_reason = collections.defaultdict(list)
        for candidate, reason in self.skipped:
            by_reason[reason].append(candidate.path)
        lines = []
        for reason, paths in by_reason.items():
            more = f" (+{len(paths) - 4} more)" if len(paths) > 4 else ""
            lines.append(f"  {reason}: {', '.join(paths[:4])}{more}")
        warnings.warn(
            f"sparsify({self.cls.technique!r}) leaves {len(self.skipped)} layer(s) dense:\n"
            + "\n".join(lines),
            stacklevel=3,
        )


def sparsify(
    model,
    technique: str,
    schedule: PruningSchedule | None = None,
    *,
    overrides: dict | None = None,
    exclude=(),
    seed: int | None = None,
    pattern=None,
    distribution: str = "uniform",
    **technique_kwargs,
):
    """Returns a copy of ``model`` with every supported layer wrapped by ``technique``.

    Supported layers (``sos.layers.supported_layer_types()``): Dense, EinsumDense,
    Conv1D/2D/3D, DepthwiseConv1D/2D, SeparableConv1D/2D, Conv1D/2D/3DTranspose, Embedding,
    SimpleRNN / LSTM / GRU (and ``RNN`` over their cells), subclasses of these that keep their
    ``call``, and registered types; the q/k/v/output projections of ``MultiHeadAttention``
    (which becomes a ``SparseMultiHeadAttention``). They are found anywhere in the model: in
    nested models and inside custom layers (which become ``SparseSublayers``). Variational
    dropout applies to the single-kernel linear ones only (not separable or recurrent layers).
    Layers that stay dense although they hold a kernel are named in a warning; the report
    summarizes all dense layers with the reason.

    Args:
        model: a built Sequential or Functional model, or a ``Sparsifiable`` subclassed one; it
            is not modified.
        technique: ``"magnitude_pruning"``, ``"random_pruning"``, ``"variational_dropout"`` or
            ``"l0_regularization"``.
        schedule: the ``PruningSchedule`` of every pruned layer (required for pruning).
        overrides: ``{name: target}`` per-layer targets. A target in (0, 1) scales the
            schedule by target / final_sparsity (the paper's ``weight_sparsity_map``); 0.0 or
            None keeps the layer dense. Keys are layer names or paths (``"block/conv"``,
            ``"mha/query"``; an attention layer's name covers its four projections), or glob
            patterns (``"conv*"``). A key matching no layer, or a layer matched by two keys, is
            an error.
        exclude: names, paths or patterns of layers to keep dense.
        seed: base seed for random pruning and the VD / L0 noise; each layer gets a distinct
            seed derived from it. None draws fresh seeds (stored in the configs).
        pattern: pruning only. None (unstructured); ``"N:M"`` or ``(N, M)``: at most N
            non-zeros in every M consecutive input channels (e.g. ``"2:4"``; the schedule's
            final sparsity must be 1 − N/M); ``"RxC"``: whole blocks of R input × C output
            channels ranked by L2 norm (e.g. ``"1x4"``, ``"4x4"``). Layers the pattern cannot
            tile (e.g. 3 input channels for 2:4, a depthwise 3×3 window) stay dense, with a
            warning. See ``ops.patterns``.
        distribution: pruning only. ``"uniform"`` (every layer at the target), ``"global"``
            (one magnitude threshold over all sparsified weights, meeting the target exactly;
            overrides can only keep layers dense), or ``"erk"`` (Erdős–Rényi-kernel per-layer
            targets meeting the global target exactly; layers that would be denser than 1 stay
            dense; overrides are fixed targets counted in the budget). See ``distributions``.
        **technique_kwargs: further arguments of the technique's wrapper.

    Returns:
        A new, uncompiled model: compile it, then train with ``sos.SparsityCallback()``.
    """
    _reject_tfmot_arguments(technique_kwargs)
    _check_model(model, "sparsify")
    if not (nested.is_graph_model(model) or isinstance(model, Sparsifiable)):
        raise ValueError(
            f"sparsify supports Sequential and Functional models (nested ones included) and "
            f"subclassed models using the `sos.layers.Sparsifiable` protocol; "
            f"{type(model).__name__} is a subclassed model, which Keras cannot clone. Use the "
            "protocol, or wrap its layers where you create them, e.g. "
            "`self.fc = sos.layers.MagnitudePruning(keras.layers.Dense(10), schedule=...)`."
        )
    planner = _Planner(
        technique, schedule, overrides, exclude, seed, pattern, distribution, technique_kwargs
    )
    entry = planner.plan(model)
    planner.warn_skipped()
    if isinstance(model, Sparsifiable):
        new = _rebuild(model, planner.layer_wrappers())
    else:
        new = nested.clone_model(model, entry)
    copy_weights(model, new)
    return new


def _rebuild(model, layer_wrappers):
    """A new, built instance of the ``Sparsifiable`` ``model`` with ``layer_wrappers``."""
    new = type(model).from_config({**model.get_config(), "layer_wrappers": layer_wrappers})
    new(new.dummy_inputs(), training=False)
    return new


def _plain_copy(layer, index=None):
    """The fresh, unbuilt plain layer ``strip`` puts in place of ``layer`` in a graph."""
    if isinstance(layer, (SparsityWrapper, nested.SparseSublayers)):
        return nested.fresh_copy(layer.layer)
    if isinstance(layer, SparseMultiHeadAttention):
        config = layer.get_config()
        config.pop("projection_wrappers")
        return keras.layers.MultiHeadAttention.from_config(config)
    if nested.is_graph_model(layer):
        return nested.clone_graph(layer, _plain_copy)
    return nested.fresh_copy(layer)


def strip(model, **options):
    """Returns a copy of ``model`` made of plain Keras layers with eval-time weights.

    Each wrapper becomes its inner layer type with kernels ``wrapper.eval_kernels(**options)``
    (for pruning, kernel * mask, with exact zeros); a ``SparseMultiHeadAttention`` becomes a
    ``MultiHeadAttention`` and a ``SparseSublayers`` its plain inner layer. Other layers are
    copied with their weights. The result is uncompiled, so its ``.keras`` file holds no
    optimizer state.

    Sequential, Functional and ``Sparsifiable`` models give the same kind of model. Any other
    subclassed model (wrappers created in its ``__init__``) gives a copy of its class whose
    wrappers are swapped for plain layers: use it for ``predict`` and SavedModel export
    (``sos.export_saved_model``); its config still describes the wrappers, so save the
    *sparsified* model as ``.keras`` (or use the ``Sparsifiable`` protocol, whose stripped
    model saves plainly).

    ``options`` are eval options (e.g. ``threshold=`` for variational dropout). Warns if the
    model was trained without ``SparsityCallback`` (masks never updated, no VD / L0 penalty).
    """
    check_driven(model, "strip")
    return strip_unchecked(model, **options)


def strip_unchecked(model, **options):
    """``strip`` without the warning about a model trained without ``SparsityCallback`` (for
    callers that give it themselves)."""
    _check_model(model, "strip")
    check_eval_options(options)

    def stripped(wrapper):
        return wrapper.stripped_weights(**eval_options_for(wrapper, options))

    if nested.is_graph_model(model):
        new = nested.clone_graph(model, _plain_copy)
    elif isinstance(model, Sparsifiable):
        new = _rebuild(model, {})
    else:
        return _strip_subclassed(model, stripped)
    copy_weights(model, new, stripped)
    return new


def _strip_subclassed(model, stripped):
    try:
        new = nested.fresh_copy(model)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"strip copies the subclassed model {model.name!r} from its config, which failed "
            f"({error}). Give {type(model).__name__} a get_config() matching its __init__."
        ) from None
    build_config = model.get_build_config()
    if not build_config:
        raise ValueError(f"strip needs {model.name!r} built by a call on inputs.")
    new.build_from_config(build_config)  # runs its call on symbolic inputs of those shapes
    new.built = True  # (Keras leaves a model built that way marked unbuilt)
    copy_weights(model, new)
    _unwrap_in_place(new, stripped)
    return new


def _unwrap_in_place(layer, stripped) -> None:
    """Swaps every wrapper below ``layer`` for a plain copy with its eval-time weights."""
    for attribute, child in sublayers.attribute_paths(layer):
        if attribute is None:
            continue
        if isinstance(child, SparsityWrapper):
            plain = nested.fresh_copy(child.layer)
            plain.build_from_config(child.layer.get_build_config())
            plain.set_weights(stripped(child))
            sublayers.replace_at(layer, attribute, plain)
        elif isinstance(child, SparseMultiHeadAttention) or nested.is_graph_model(child):
            plain = _plain_copy(child)
            if isinstance(plain, keras.layers.MultiHeadAttention):
                plain.build_from_config(child.get_build_config())
            copy_weights(child, plain, stripped)
            sublayers.replace_at(layer, attribute, plain)
        else:
            _unwrap_in_place(child, stripped)


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
