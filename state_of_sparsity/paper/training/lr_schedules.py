"""Learning-rate schedules of the paper's two benchmarks (``keras.ops``, evaluated in-graph).

ResNet-50 (spec §4.4), parametrised so that the paper's other ResNet schedules are presets::

    scaled = base_learning_rate · batch_size / 256
    e      = step · batch_size / num_train_images / epoch_scale      (the epoch, rescaled)
    lr     = scaled · m(e) · min(1, e / warmup_epochs)               (no factor if warm-up is 0)

where m(e) is the multiplier of the last region (multiplier, start epoch) with start ≤ e. The
reference's ``LR_SCHEDULE = [(1.0, 5), (0.1, 30), (0.01, 60), (0.001, 80)]`` is warm-up 5 and
regions ((1, 0), (0.1, 30), (0.01, 60), (0.001, 80)): the defaults, so a schedule saved before
the parameters existed loads unchanged.

``RESNET_LR_PRESETS`` (``train_resnet50 --lr_schedule``), in epochs of the run; ``length`` is the
run's length relative to the paper's standard 128,000 steps at batch 1024 (102.3 epochs):

- ``standard``: the above; length 1.
- ``extended`` (paper §5.2, Figure 5: magnitude pruning trained 1.5× longer by extending the LR
  region in which pruning starts and ends, the phase before the second drop): the 0.1× region
  lengthened by 51 epochs (153.5 − 102.3, rounded down), so the drops come at 30, 111, 131;
  length 1.5. [inferred: the paper gives the idea, not the epochs; the released extended runs
  prune from epoch 24–40 to 115–128 at batch 4096, spec §3.7]
- Scratch-b (Appendix E.6, length 2; CSVs ``scratch_lotto/rn50_scratch_lr_<name>.csv``):
  ``lr_scaled``: every region, the warm-up included, twice as long (epoch_scale 2: warm-up 10,
  drops at 60, 120, 160); ``lr_constant_final``: the standard schedule, its final LR held for the
  extra epochs; ``lr_continual_decay``: the standard schedule, then ×0.1 every 30 epochs
  (110, 140, 170, 200); ``lr_constant_decay``: no warm-up, ×0.1 every 30 epochs (30, 60, …, 180).
  The decays are listed up to the 2× run's 204.6 epochs; past the last region the LR stays.
"""

from __future__ import annotations

from typing import NamedTuple

import keras
from keras import ops

__all__ = [
    "RESNET_LR_PRESETS",
    "ResNetLrPreset",
    "ResNetLearningRate",
    "TransformerLearningRate",
    "resnet_lr_preset",
]


def _decays(starts):
    """Regions ×0.1, ×0.01, … starting at each of ``starts``."""
    return tuple((10.0 ** -(i + 1), start) for i, start in enumerate(starts))


class ResNetLrPreset(NamedTuple):
    """A named ResNet schedule: ``ResNetLearningRate``'s shape arguments, and ``length``, the
    run's length relative to the paper's standard run (128,000 steps at batch 1024)."""

    warmup_epochs: float
    regions: tuple
    epoch_scale: float
    length: float

    def arguments(self) -> dict:
        """The keyword arguments of ``ResNetLearningRate`` this preset sets."""
        return {k: getattr(self, k) for k in ("warmup_epochs", "regions", "epoch_scale")}


_STANDARD = ((1.0, 0), (0.1, 30), (0.01, 60), (0.001, 80))
RESNET_LR_PRESETS = {
    "standard": ResNetLrPreset(5, _STANDARD, 1.0, 1.0),
    "extended": ResNetLrPreset(5, ((1.0, 0), (0.1, 30), (0.01, 111), (0.001, 131)), 1.0, 1.5),
    "lr_scaled": ResNetLrPreset(5, _STANDARD, 2.0, 2.0),
    "lr_constant_final": ResNetLrPreset(5, _STANDARD, 1.0, 2.0),
    "lr_continual_decay": ResNetLrPreset(
        5, ((1.0, 0), *_decays((30, 60, 80, 110, 140, 170, 200))), 1.0, 2.0
    ),
    "lr_constant_decay": ResNetLrPreset(
        0, ((1.0, 0), *_decays((30, 60, 90, 120, 150, 180))), 1.0, 2.0
    ),
}


def resnet_lr_preset(name: str) -> ResNetLrPreset:
    """The preset ``name``; ``ValueError`` naming the allowed presets otherwise."""
    if name not in RESNET_LR_PRESETS:
        raise ValueError(f"{name!r} is not a preset; use one of {', '.join(RESNET_LR_PRESETS)}.")
    return RESNET_LR_PRESETS[name]


@keras.saving.register_keras_serializable(package="state_of_sparsity")
class ResNetLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """The paper's ResNet-50 learning rate: linear scaling, warm-up, piecewise-constant regions.

    lr = scaled · m(e) · min(1, e / warmup_epochs), scaled = base_learning_rate · batch_size /
    256, e = step · batch_size / num_train_images / epoch_scale, m(e) the multiplier of the last
    of ``regions`` ((multiplier, start epoch), the first starting at 0) with start ≤ e. The
    defaults are the reference's (spec §4.4); ``resnet_lr_preset`` gives the paper's others.
    """

    def __init__(
        self,
        base_learning_rate=0.1,
        batch_size=1024,
        num_train_images=1_281_167,
        warmup_epochs=5,
        regions=_STANDARD,
        epoch_scale=1.0,
    ):
        if not base_learning_rate > 0 or batch_size < 1 or num_train_images < 1:
            raise ValueError(
                "base_learning_rate must be > 0 and batch_size, num_train_images >= 1; got "
                f"{base_learning_rate}, {batch_size}, {num_train_images}."
            )
        regions = tuple((float(m), float(start)) for m, start in regions)
        starts = [start for _, start in regions]
        if not regions or starts[0] != 0 or starts != sorted(set(starts)):
            raise ValueError(
                f"regions must start at epoch 0 and increase strictly; got {list(regions)}."
            )
        if any(not m > 0 for m, _ in regions) or not warmup_epochs >= 0 or not epoch_scale > 0:
            raise ValueError(
                "region multipliers and epoch_scale must be > 0 and warmup_epochs >= 0; got "
                f"{list(regions)}, {epoch_scale}, {warmup_epochs}."
            )
        self.base_learning_rate = float(base_learning_rate)
        self.batch_size = int(batch_size)
        self.num_train_images = int(num_train_images)
        self.warmup_epochs = float(warmup_epochs)
        self.regions = regions
        self.epoch_scale = float(epoch_scale)

    def __call__(self, step):
        scaled = self.base_learning_rate * self.batch_size / 256.0
        rate = self.batch_size / self.num_train_images / self.epoch_scale
        epoch = ops.cast(step, "float32") * rate
        lr = scaled * self.regions[0][0] * ops.ones_like(epoch)
        for multiplier, start in self.regions[1:]:
            lr = ops.where(epoch < start, lr, scaled * multiplier)
        if self.warmup_epochs:
            lr = lr * ops.minimum(1.0, epoch / self.warmup_epochs)
        return lr

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "batch_size": self.batch_size,
            "num_train_images": self.num_train_images,
            "warmup_epochs": self.warmup_epochs,
            "regions": [list(region) for region in self.regions],
            "epoch_scale": self.epoch_scale,
        }


@keras.saving.register_keras_serializable(package="state_of_sparsity")
class TransformerLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """lr(t) = constant · min(1, t / warmup_steps) · max(t, warmup_steps)^−½ · hidden_size^−½.

    The paper's ``sparse_transformer_base`` (t2t ``constant*linear_warmup*rsqrt_decay*
    rsqrt_hidden_size``, constant 2.0, warm-up 8000; spec §5.1): peak ≈ 9.88e-4 at t = 8000.
    """

    def __init__(self, constant=2.0, warmup_steps=8000, hidden_size=512):
        if not constant > 0 or warmup_steps < 1 or hidden_size < 1:
            raise ValueError(
                "constant must be > 0 and warmup_steps, hidden_size >= 1; got "
                f"{constant}, {warmup_steps}, {hidden_size}."
            )
        self.constant = float(constant)
        self.warmup_steps = int(warmup_steps)
        self.hidden_size = int(hidden_size)

    def __call__(self, step):
        t = ops.cast(step, "float32")
        warmup = ops.minimum(1.0, t / self.warmup_steps)
        decay = ops.rsqrt(ops.maximum(t, float(self.warmup_steps)))
        return self.constant * warmup * decay * self.hidden_size**-0.5

    def get_config(self):
        return {
            "constant": self.constant,
            "warmup_steps": self.warmup_steps,
            "hidden_size": self.hidden_size,
        }
