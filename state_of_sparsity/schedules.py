"""Sparsity schedules (magnitude / random pruning) and regularizer-weight ramps (VD / L0).

Pruning schedules follow Zhu & Gupta (2017) as used by the paper's TF-contrib pruning library
(spec §3.2-3.3):

    p(t) = clip((t - begin_step) / (end_step - begin_step), 0, 1)
    s(t) = final_sparsity + (initial_sparsity - final_sparsity) * (1 - p(t)) ** power

Constructor arguments mirror ``tfmot.sparsity.keras.PolynomialDecay`` / ``ConstantSparsity`` so
code migrates by changing the import. The *timing* of mask updates is the paper's, not tfmot's
(spec §3.3): with ``t`` the 0-based index of the optimizer step just taken and ``last_update``
the step of the previous update (starting at 0), a mask is recomputed iff

    begin_step <= t <= end_step   (end_step < 0: no end)   and   last_update + frequency <= t.

Consequences: with ``begin_step=0, frequency=1000`` the first update is at ``t = 1000`` (not 0);
an update at ``t = begin_step > 0`` applies ``s(begin_step) = initial_sparsity``; and a run with
``end_step = train_steps`` stops just short of the target, exactly as the paper's CSVs show.

``Ramp`` is the weight of the VD KL / L0 penalty (spec §1.7, §2.7): constant, a linear ramp, or
the Transformer's cubic ramp smoothed by an exponential moving average.
"""

from __future__ import annotations

import math
import numbers

import keras
from keras import ops

__all__ = ["PruningSchedule", "PolynomialDecay", "ConstantSparsity", "Ramp", "as_ramp"]

_PACKAGE = "state_of_sparsity"


def _check_int(name: str, value, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"`{name}` must be an integer, got {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}.")
    return int(value)


def _check_fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1), got {value!r}.")
    return float(value)


class PruningSchedule:
    """Base class: a sparsity curve ``sparsity(step)`` plus the paper's update-timing rule.

    Subclasses implement ``sparsity`` and ``with_final_sparsity``; the timing rule and argument
    checks live here. ``begin_step``, ``end_step`` and ``frequency`` are in optimizer steps.
    """

    def __init__(self, begin_step: int, end_step: int, frequency: int, allow_no_end: bool):
        self.begin_step = _check_int("begin_step", begin_step, minimum=0)
        self.end_step = _check_int("end_step", end_step)
        self.frequency = _check_int("frequency", frequency, minimum=1)
        if self.end_step < 0:
            if not allow_no_end:
                raise ValueError(
                    f"`end_step` must be > begin_step={self.begin_step} for "
                    f"{type(self).__name__}, got {self.end_step}."
                )
            if self.end_step != -1:
                raise ValueError(f"`end_step` must be -1 (no end) or >= 0, got {self.end_step}.")
        elif self.end_step < self.begin_step:
            raise ValueError(
                f"`begin_step` ({self.begin_step}) must be <= `end_step` ({self.end_step}); "
                "use end_step=-1 for no end."
            )

    @property
    def final_sparsity(self) -> float:
        raise NotImplementedError

    def sparsity(self, step) -> float:
        """The target sparsity s(t) at optimizer step ``step`` (a Python float)."""
        raise NotImplementedError

    def with_final_sparsity(self, final_sparsity: float) -> PruningSchedule:
        """This schedule scaled by ``final_sparsity / self.final_sparsity`` (a per-layer target).

        The paper's ``weight_sparsity_map`` multiplies the global curve by target_layer / target
        (spec §3.2); both curves are linear in their end points, so scaling them is exact.
        """
        raise NotImplementedError

    def in_window(self, step: int) -> bool:
        """begin_step <= step <= end_step (end_step < 0: no end)."""
        return self.begin_step <= step and (self.end_step < 0 or step <= self.end_step)

    def should_update(self, step: int, last_update: int) -> bool:
        """The paper's rule: begin <= step <= end (end < 0: open) and last_update + freq <= step."""
        return self.in_window(step) and last_update + self.frequency <= step

    def first_update_step(self) -> int | None:
        """The step of a run's first mask update (max(begin_step, frequency)), or None if the
        window closes before it."""
        step = max(self.begin_step, self.frequency)
        return step if self.in_window(step) else None

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PolynomialDecay(PruningSchedule):
    """Zhu & Gupta gradual pruning: s(t) = s_f + (s_i - s_f)(1 - p(t))^power (spec §3.2).

    Args:
        initial_sparsity: s_i in [0, 1); the paper always uses 0.
        final_sparsity: s_f in [0, 1).
        begin_step: first step of the curve (and of mask updates), >= 0.
        end_step: last step of the curve and of mask updates, > begin_step.
        power: the exponent n; 3 in the paper.
        frequency: minimum number of steps between two mask updates, >= 1.
    """

    def __init__(
        self,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        power: float = 3,
        frequency: int = 100,
    ):
        super().__init__(begin_step, end_step, frequency, allow_no_end=False)
        if self.end_step <= self.begin_step:
            raise ValueError(
                f"`end_step` ({self.end_step}) must be > `begin_step` ({self.begin_step}) for "
                "PolynomialDecay; use ConstantSparsity for a one-shot target."
            )
        self.initial_sparsity = _check_fraction("initial_sparsity", initial_sparsity)
        self._final_sparsity = _check_fraction("final_sparsity", final_sparsity)
        if (
            isinstance(power, bool)
            or not isinstance(power, numbers.Real)
            or not math.isfinite(power)
            or power <= 0
        ):
            raise ValueError(f"`power` must be a finite number > 0, got {power!r}.")
        self.power = power

    @property
    def final_sparsity(self) -> float:
        return self._final_sparsity

    def sparsity(self, step) -> float:
        p = (float(step) - self.begin_step) / (self.end_step - self.begin_step)
        p = min(1.0, max(0.0, p))
        s_i, s_f = self.initial_sparsity, self._final_sparsity
        return s_f + (s_i - s_f) * (1.0 - p) ** self.power

    def with_final_sparsity(self, final_sparsity: float) -> PolynomialDecay:
        final_sparsity = _check_fraction("final_sparsity", final_sparsity)
        if self._final_sparsity == 0.0:
            raise ValueError("Cannot scale a schedule whose final_sparsity is 0 to a new target.")
        ratio = final_sparsity / self._final_sparsity
        return PolynomialDecay(
            initial_sparsity=self.initial_sparsity * ratio,
            final_sparsity=final_sparsity,
            begin_step=self.begin_step,
            end_step=self.end_step,
            power=self.power,
            frequency=self.frequency,
        )

    def get_config(self) -> dict:
        return {
            "initial_sparsity": self.initial_sparsity,
            "final_sparsity": self._final_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "power": self.power,
            "frequency": self.frequency,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ConstantSparsity(PruningSchedule):
    """A constant target: s(t) = target_sparsity, applied by updates from ``begin_step`` on.

    Args:
        target_sparsity: the sparsity in [0, 1).
        begin_step: first step at which a mask update may happen, >= 0.
        end_step: last step of mask updates; -1 (default) means no end.
        frequency: minimum number of steps between two mask updates, >= 1.
    """

    def __init__(
        self, target_sparsity: float, begin_step: int, end_step: int = -1, frequency: int = 100
    ):
        super().__init__(begin_step, end_step, frequency, allow_no_end=True)
        self.target_sparsity = _check_fraction("target_sparsity", target_sparsity)

    @property
    def final_sparsity(self) -> float:
        return self.target_sparsity

    def sparsity(self, step) -> float:
        return self.target_sparsity

    def with_final_sparsity(self, final_sparsity: float) -> ConstantSparsity:
        return ConstantSparsity(final_sparsity, self.begin_step, self.end_step, self.frequency)

    def get_config(self) -> dict:
        return {
            "target_sparsity": self.target_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "frequency": self.frequency,
        }


_RAMP_SHAPES = ("constant", "linear", "cubic")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Ramp:
    """Weight of the VD KL / L0 penalty as a function of the step (spec §1.7, §2.7).

    With x(t) = clip((t - begin_step) / (end_step - begin_step), 0, 1):

    - ``"constant"``: w(t) = value.
    - ``"linear"``:   w(t) = value * x(t)  (the RN50 ``is_warm_up`` ramp and the Transformer's
      ``dkl_weight_fn=linear``; ``end_step = begin_step + 1`` gives full weight one step in).
    - ``"cubic"``:    c(t) = value * (1 - (1 - x(t))^3), then an exponential moving average kept
      in a variable initialised to 0: v <- ema_decay * v + (1 - ema_decay) * c(t) on every step,
      and the loss uses the new v (the Transformer's ``dkl_weight_fn=cubic``). The original code
      let (1 - x)^3 go negative past ``end_step`` and clipped with a min; x is clamped here,
      which gives the same values.

    ``value`` carries any 1/N scaling: the RN50 ``reg_scalar`` flag already included 1/1,281,167
    and the Transformer used 1/4.5e6 with a per-token mean cross-entropy.
    """

    def __init__(
        self,
        value: float,
        begin_step: int = 0,
        end_step: int = 0,
        shape: str = "constant",
        ema_decay: float = 0.9,
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"`value` must be a finite number >= 0, got {value!r}.")
        if shape not in _RAMP_SHAPES:
            raise ValueError(f"`shape` must be one of {_RAMP_SHAPES}, got {shape!r}.")
        self.value = float(value)
        self.shape = shape
        self.begin_step = _check_int("begin_step", begin_step, minimum=0)
        self.end_step = _check_int("end_step", end_step)
        if shape != "constant" and self.end_step <= self.begin_step:
            raise ValueError(
                f"`end_step` ({self.end_step}) must be > `begin_step` ({self.begin_step}) for a "
                f"{shape} ramp."
            )
        if not isinstance(ema_decay, numbers.Real) or not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"`ema_decay` must be in [0, 1), got {ema_decay!r}.")
        self.ema_decay = float(ema_decay)

    @property
    def smoothed(self) -> bool:
        """Whether the weight is an EMA that needs a state variable (the cubic ramp)."""
        return self.shape == "cubic"

    def target(self, step):
        """The un-smoothed curve at ``step`` (a tensor or Python number); float32."""
        if self.shape == "constant":
            return ops.convert_to_tensor(self.value, "float32")
        step = ops.cast(step, "float32")
        x = ops.clip((step - self.begin_step) / (self.end_step - self.begin_step), 0.0, 1.0)
        if self.shape == "linear":
            return self.value * x
        return self.value * (1.0 - (1.0 - x) ** 3)

    def __call__(self, step, previous=None):
        """The weight used at ``step``; ``previous`` is the EMA state (required if cubic)."""
        target = self.target(step)
        if not self.smoothed:
            return target
        if previous is None:
            raise ValueError("A cubic Ramp needs the previous EMA value (`previous`).")
        return self.ema_decay * ops.cast(previous, "float32") + (1.0 - self.ema_decay) * target

    def get_config(self) -> dict:
        return {
            "value": self.value,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "shape": self.shape,
            "ema_decay": self.ema_decay,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(tuple(sorted(self.get_config().items())))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"Ramp({args})"


def as_ramp(value, name: str = "regularizer_weight"):
    """``value`` as a ``Ramp`` (accepting its serialized form) or None; else a ValueError."""
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if value is not None and not isinstance(value, Ramp):
        raise ValueError(f"`{name}` must be a sos.Ramp or None, got {value!r}.")
    return value
