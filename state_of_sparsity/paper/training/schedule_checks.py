"""Checks of the sparsity schedules' flags against ``--train_steps``.

A schedule that cannot act at all within the run (no mask update ever happens; a penalty weight
that stays 0 throughout) is a ``UsageError`` naming the flags; one that cannot finish (the run
stops before the pruning schedule or the weight ramp ends) gets a warning saying what the run
will reach instead. Steps are 0-based indices of the optimizer steps a run of ``train_steps``
takes, and mask updates follow the paper's rule (``schedules.PruningSchedule.should_update``):
the first at ``max(begin, frequency)``, then every ``frequency`` steps up to ``end``.
"""

from __future__ import annotations

from state_of_sparsity.paper.training.errors import UsageError

__all__ = ["check_pruning", "check_ramp"]


def check_pruning(schedule, train_steps: int, names, warn) -> None:
    """``schedule``: the run's ``PolynomialDecay``; ``names``: the flags of its (target, begin,
    end, frequency), e.g. ``("--target_sparsity", "--begin_pruning_step", ...)``."""
    target, begin, end, frequency = names
    last_step = train_steps - 1
    first = max(schedule.begin_step, schedule.frequency)
    stop = min(schedule.end_step, last_step)
    if first > stop:
        raise UsageError(
            f"No mask update would happen in this run: the first is due at step {first} "
            f"(max of {begin}={schedule.begin_step} and {frequency}={schedule.frequency}), after "
            f"{'--train_steps' if stop == last_step else end}="
            f"{train_steps if stop == last_step else schedule.end_step}; lower {begin} or "
            f"{frequency}."
        )
    last_update = first + (stop - first) // schedule.frequency * schedule.frequency
    reached = schedule.sparsity(last_update)
    if reached < schedule.final_sparsity - 1e-3:
        warn(
            f"the pruning schedule ({end}={schedule.end_step}, {frequency}="
            f"{schedule.frequency}) does not finish within --train_steps={train_steps}: its last "
            f"mask update (step {last_update}) reaches {reached:.1%} sparsity, not the "
            f"{target}={schedule.final_sparsity:g}."
        )


def check_ramp(begin_step: int, end_step: int, train_steps: int, names, warn) -> None:
    """A penalty weight ramping from 0 at ``begin_step`` to its full value at ``end_step``;
    ``names``: the flags of (begin, end), e.g. ``("--dkl_weight_start", "--dkl_weight_diff")``."""
    begin, end = names
    last_step = train_steps - 1
    if begin_step >= last_step:
        raise UsageError(
            f"The penalty weight would stay 0 throughout this run: its ramp starts at "
            f"{begin}={begin_step}, and the run's last step is {last_step} "
            f"(--train_steps={train_steps}); lower {begin}."
        )
    fraction = min(1.0, (last_step - begin_step) / (end_step - begin_step))
    if fraction < 1.0:
        warn(
            f"the penalty weight ramp (from step {begin_step} to step {end_step}, {begin} / {end}) "
            f"does not finish within --train_steps={train_steps}: it reaches {fraction:.1%} of "
            "its full value."
        )
