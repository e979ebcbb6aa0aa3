"""Scratch and lottery-ticket runs: reuse the masks (and initial values) of a pruning run.

The mask always comes from a finished magnitude-pruning run (spec §6). Scratch-e / scratch-b:
its final masks, a fresh initialisation, the same or a longer training budget. Lottery ticket:
its final masks and its step-0 values. Both functions copy from a *source* model of the same
architecture (e.g. the pruning run's final model and its step-0 model; the paper's binaries load
them from the run's checkpoints).
"""

from __future__ import annotations

from keras import ops

from state_of_sparsity import traversal
from state_of_sparsity.layers.pruning import PruningWrapper

__all__ = ["copy_masks", "copy_initial_values"]


def _pruning_wrappers(model) -> dict:
    return {p: w for p, w in traversal.wrappers(model) if isinstance(w, PruningWrapper)}


def copy_masks(source, model, name: str = "the source model") -> int:
    """Copies every mask of ``source`` into the pruning wrappers of ``model`` (same paths and
    shapes); returns the number of layers whose masks were copied. ``name`` names the source in
    errors."""
    have, want = _pruning_wrappers(source), _pruning_wrappers(model)
    if set(have) != set(want):
        missing = sorted(set(want) - set(have))
        extra = sorted(set(have) - set(want))
        raise ValueError(
            f"The masks in {name} belong to another architecture: missing {missing}, "
            f"unexpected {extra}."
        )
    for path, wrapper in want.items():
        for mask, target in zip(have[path].masks, wrapper.masks, strict=True):
            if tuple(mask.shape) != tuple(target.shape):
                raise ValueError(
                    f"The mask of {path!r} in {name} has shape {tuple(mask.shape)}, the "
                    f"model's {tuple(target.shape)}: another depth or width?"
                )
            target.assign(ops.convert_to_numpy(mask))
    return len(want)


def _state_layers(model) -> dict:
    """path -> layer holding values: every leaf, with a wrapper's inner layer beside it."""
    layers = {}
    for path, layer in traversal.leaves(model):
        layers[path] = layer
        if hasattr(layer, "spec"):
            layers[f"{path}/inner"] = layer.layer
    return layers


def copy_initial_values(source, model, name: str = "the source model") -> int:
    """Copies every value except masks from ``source`` into ``model`` (kernels, biases,
    normalisation statistics); returns the number of variables copied. ``name`` names the
    source in errors."""
    have, want = _state_layers(source), _state_layers(model)
    copied = 0
    for path, layer in want.items():
        own = layer.layer.weights if hasattr(layer, "spec") else None
        mask_state = [*layer.masks, layer.last_update] if isinstance(layer, PruningWrapper) else []
        for variable in layer.weights:
            if own is not None and any(variable is v for v in own):
                continue  # the inner layer's weights are copied under "<path>/inner"
            if any(variable is v for v in mask_state):
                continue
            match = [v for v in have.get(path, layer).weights if v.name == variable.name]
            if path not in have or len(match) != 1 or match[0].shape != variable.shape:
                raise ValueError(f"{name} has no value for {path}/{variable.name} of "
                                 f"shape {tuple(variable.shape)}.")  # fmt: skip
            variable.assign(ops.convert_to_numpy(match[0]))
            copied += 1
    return copied
