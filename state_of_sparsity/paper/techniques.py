"""The techniques as the paper's binaries name them, in one place.

A flag value — the library's names, or the paper's aliases (``baseline`` and ``none`` for no
sparsity, ``threshold`` for magnitude pruning) — resolves to a ``Technique``. ``sparsify`` turns
a model and a binary's settings into the sparsified model, ``pruning_schedule`` gives the MP / RP
schedule and ``penalty_ramp`` the VD / L0 weight. Binaries ask a technique what it does
(``prunes``, ``penalized``) rather than comparing names.
"""

from __future__ import annotations

import dataclasses
import inspect

import state_of_sparsity as sos
from state_of_sparsity.layers.pruning import check_distribution
from state_of_sparsity.ops import patterns

__all__ = [
    "ALIASES",
    "DENSE",
    "TECHNIQUES",
    "Technique",
    "check_structure",
    "flag_values",
    "penalty_ramp",
    "pruning_schedule",
    "resolve",
    "sparsify",
]


@dataclasses.dataclass(frozen=True)
class Technique:
    """A technique: its library name, and whether it prunes on a schedule (MP, RP) or trains
    with a penalty (VD, L0). ``dense`` does neither."""

    name: str
    prunes: bool = False
    penalized: bool = False

    @property
    def sparse(self) -> bool:
        return self.prunes or self.penalized


DENSE = Technique("dense")
TECHNIQUES = {
    t.name: t
    for t in (
        DENSE,
        Technique("magnitude_pruning", prunes=True),
        Technique("random_pruning", prunes=True),
        Technique("variational_dropout", penalized=True),
        Technique("l0_regularization", penalized=True),
    )
}
# The paper's flag values: train_resnet50's ``baseline`` / ``threshold``, train_transformer's
# ``none``.
ALIASES = {"baseline": "dense", "none": "dense", "threshold": "magnitude_pruning"}


def resolve(name: str) -> Technique:
    """The technique a flag value names; a ``ValueError`` listing the accepted values."""
    technique = TECHNIQUES.get(ALIASES.get(name, name))
    if technique is None:
        raise ValueError(f"Unknown technique {name!r}; allowed: {', '.join(flag_values())}.")
    return technique


def flag_values() -> list[str]:
    """Every accepted flag value: the library's names, then the paper's aliases."""
    return [*TECHNIQUES, *ALIASES]


def pruning_schedule(final_sparsity, begin_step, end_step, frequency, fixed=False):
    """The paper's schedule (cubic, from 0 to ``final_sparsity`` between the steps), or, with
    ``fixed``, one that never fires: masks copied from another run stay as they are."""
    if fixed:  # the update rule needs last_update + frequency <= t <= end_step = 0: never
        return sos.ConstantSparsity(final_sparsity, 0, 0, 1)
    return sos.PolynomialDecay(0.0, final_sparsity, begin_step, end_step, frequency=frequency)


def check_structure(technique, pattern, distribution, final_sparsity, overrides=None, fixed=False):
    """Raises a ``ValueError`` naming the flag when ``--sparsity_pattern`` (``""``: none) or
    ``--sparsity_distribution`` cannot apply: they shape MP / RP's own mask updates, so not
    the penalized techniques nor masks copied from another run (``fixed``); an N:M pattern fixes
    the sparsity at 1 − N/M; ``global`` ranks every layer together, so per-layer targets in
    ``overrides`` (other than 0: dense) do not fit it. The library's own checks, as flags."""
    if not pattern and distribution == "uniform":
        return
    flags = f"--sparsity_pattern={pattern!r} --sparsity_distribution={distribution}"
    if not technique.prunes or fixed:
        what = "fixed masks copied from another run" if fixed else technique.name
        raise ValueError(f"{flags}: patterns and distributions shape MP / RP pruning, not {what}.")
    try:
        parsed = patterns.parse_pattern(pattern or None)
        check_distribution(distribution, parsed)
    except ValueError as error:
        raise ValueError(f"{flags}: {error}") from None
    if isinstance(parsed, patterns.NM) and abs(final_sparsity - parsed.sparsity) > 1e-9:
        raise ValueError(
            f"--sparsity_pattern={pattern} sets the sparsity at {parsed.sparsity:g}; set the "
            f"target sparsity to it (got {final_sparsity:g})."
        )
    targets = {k: v for k, v in (overrides or {}).items() if v}
    if distribution == "global" and targets:
        raise ValueError(
            f"--sparsity_distribution=global ranks all layers together, so per-layer targets "
            f"cannot apply (got {targets}); keep those layers dense or use uniform / erk."
        )


def sparsify(
    model, technique: Technique, *, schedule=None, overrides=None, seed=None, pattern="",
    distribution="uniform", **options,
):  # fmt: skip
    """``model`` sparsified by ``technique`` (unchanged for ``dense``).

    ``schedule``, ``pattern`` (``""``: unstructured) and ``distribution`` are used by the
    pruning techniques (see ``check_structure``); ``options`` are wrapper arguments of any
    technique (``log_sigma2_init``, ``clip_log_alpha``, ``threshold``, ``log_alpha_init``,
    ``noise``...): each technique takes those its wrapper accepts, so a binary can pass all of
    its settings.
    """
    if not technique.sparse:
        return model
    accepted = inspect.signature(sos.TECHNIQUES[technique.name].__init__).parameters
    kwargs = {k: v for k, v in options.items() if k in accepted}
    if technique.prunes:
        kwargs.update(schedule=schedule, pattern=pattern or None, distribution=distribution)
    return sos.sparsify(model, technique.name, overrides=overrides, seed=seed, **kwargs)


def penalty_ramp(technique: Technique, weight, begin_step, end_step, shape="linear"):
    """The ``sos.Ramp`` of a penalized technique's weight (None for the others): ``weight``
    from ``begin_step`` to ``end_step`` in ``shape`` (``"constant"``: the full weight from step
    0)."""
    if not technique.penalized:
        return None
    if shape == "constant":
        return sos.Ramp(weight)
    return sos.Ramp(weight, begin_step, end_step, shape)
