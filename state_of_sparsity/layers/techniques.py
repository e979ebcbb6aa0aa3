"""Technique names (the paper's flag values) and the wrapper class of each."""

from __future__ import annotations

from state_of_sparsity.layers.l0_regularization import L0Regularization
from state_of_sparsity.layers.pruning import MagnitudePruning, RandomPruning
from state_of_sparsity.layers.variational_dropout import VariationalDropout

__all__ = ["TECHNIQUES", "wrapper_class", "check_eval_options", "eval_options_for"]

TECHNIQUES = {
    MagnitudePruning.technique: MagnitudePruning,
    RandomPruning.technique: RandomPruning,
    VariationalDropout.technique: VariationalDropout,
    L0Regularization.technique: L0Regularization,
}


def wrapper_class(technique: str):
    """The wrapper class for a technique name; a clear ``ValueError`` for unknown names."""
    try:
        return TECHNIQUES[technique]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown `technique` {technique!r}; allowed: {', '.join(sorted(TECHNIQUES))}."
        ) from None


def check_eval_options(options: dict) -> None:
    """Raises a ValueError for eval options no technique knows (e.g. a misspelt threshold)."""
    known = {name for cls in TECHNIQUES.values() for name in cls.eval_options}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"Unknown eval option(s) {unknown}; known: {sorted(known) or 'none'}.")


def eval_options_for(wrapper, options: dict) -> dict:
    """The subset of ``options`` that ``wrapper``'s technique understands.

    ``options`` are eval-time settings (e.g. a VD log-alpha threshold) passed to ``strip``,
    ``sparsity_report`` or ``export_saved_model``.
    """
    check_eval_options(options)
    return {k: v for k, v in options.items() if k in type(wrapper).eval_options}
