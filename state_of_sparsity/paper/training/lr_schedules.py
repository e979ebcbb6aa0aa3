"""Learning-rate schedules of the paper's two benchmarks (``keras.ops``, evaluated in-graph)."""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["ResNetLearningRate", "TransformerLearningRate", "RESNET_LR_SCHEDULE"]

# (multiplier, start epoch): the reference's LR_SCHEDULE (spec §4.4).
RESNET_LR_SCHEDULE = ((1.0, 5), (0.1, 30), (0.01, 60), (0.001, 80))


@keras.saving.register_keras_serializable(package="state_of_sparsity")
class ResNetLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """The paper's ResNet-50 learning rate (spec §4.4).

    scaled = base_learning_rate · batch_size / 256; epoch = step / (num_train_images /
    batch_size); lr = scaled · epoch / 5 during the first 5 epochs (linear warm-up), then
    scaled × 1 until epoch 30, × 0.1 until 60, × 0.01 until 80 and × 0.001 after.
    """

    def __init__(self, base_learning_rate=0.1, batch_size=1024, num_train_images=1_281_167):
        if not base_learning_rate > 0 or batch_size < 1 or num_train_images < 1:
            raise ValueError(
                "base_learning_rate must be > 0 and batch_size, num_train_images >= 1; got "
                f"{base_learning_rate}, {batch_size}, {num_train_images}."
            )
        self.base_learning_rate = float(base_learning_rate)
        self.batch_size = int(batch_size)
        self.num_train_images = int(num_train_images)

    def __call__(self, step):
        scaled = self.base_learning_rate * self.batch_size / 256.0
        epoch = ops.cast(step, "float32") * (self.batch_size / self.num_train_images)
        first_multiplier, warmup_epochs = RESNET_LR_SCHEDULE[0]
        lr = scaled * first_multiplier * epoch / warmup_epochs
        for multiplier, start in RESNET_LR_SCHEDULE:
            lr = ops.where(epoch < start, lr, scaled * multiplier)
        return lr

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "batch_size": self.batch_size,
            "num_train_images": self.num_train_images,
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
