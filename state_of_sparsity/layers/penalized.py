"""Base of the wrappers trained with a penalty (variational dropout, L0 regularization)."""

from __future__ import annotations

import warnings

import keras
from keras import ops

from state_of_sparsity.layers.base import SparsityWrapper, new_seed
from state_of_sparsity.schedules import as_ramp

__all__ = ["PenalizedWrapper"]


class PenalizedWrapper(SparsityWrapper):
    """A wrapper whose technique adds ``weight(t) * penalty()`` to the training loss.

    ``penalty()`` is the technique's unweighted regularizer over this layer's weights (the VD
    KL, or the expected L0 norm). ``regularizer_weight`` is a ``sos.Ramp``; usually
    ``sos.SparsityCallback(regularizer_weight=...)`` sets it on every such wrapper. Any 1/N
    (number of training examples or tokens) belongs in the ramp's value, as in the paper.

    Each training-mode call is one training step: it adds the weighted penalty once with
    ``add_loss`` and advances ``step``, the layer's step counter (a weight, so checkpoints and
    ``.keras`` files resume the ramp). The ramp is computed inside the compiled step, so it
    follows every step whatever ``steps_per_execution`` is. Call a wrapper once per step: a
    weight shared by several uses is one wrapper, called once, so its penalty counts once. The
    reverse use of a tied embedding (``reverse=True``: the softmax) adds no penalty and does not
    advance the step, so a table used for the source lookup, the target lookup (one call on the
    concatenated ids) and the softmax is penalized once per step, as in the paper (spec §10.27).

    State (weights): ``step`` (int32), ``regularizer_value`` (the weight last used; the EMA
    state of a cubic ramp) and ``noise_state``, the state of ``seed_generator`` (seeded by
    ``seed``) that draws the noise.
    """

    def __init__(self, layer, regularizer_weight=None, seed=None, **kwargs):
        super().__init__(layer, **kwargs)
        self.regularizer_weight = as_ramp(regularizer_weight)
        if seed is None:
            seed = new_seed()
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"`seed` must be a non-negative integer or None, got {seed!r}.")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Keras does not save seed-generator states; tracking the state as a weight of this
        # layer puts it in checkpoints, so a resumed run continues the same noise stream.
        self.noise_state = self.seed_generator.state

    def _build_state(self, kernel_shapes):
        self._build_parameters(kernel_shapes)
        self.step = self._add_state("step", (), "zeros", dtype="int32")
        self.regularizer_value = self._add_state("regularizer_value", (), "zeros", dtype="float32")

    def _build_parameters(self, kernel_shapes):
        raise NotImplementedError

    def penalty(self):
        """The unweighted penalty of this layer (a scalar tensor)."""
        raise NotImplementedError

    def set_regularizer_weight(self, ramp) -> bool:
        """Sets the penalty's weight schedule; returns whether it changed."""
        ramp = as_ramp(ramp)
        changed = ramp != self.regularizer_weight
        self.regularizer_weight = ramp
        return changed

    def _add_weighted_penalty(self):
        step = ops.convert_to_tensor(self.step)  # a snapshot: the variable changes below
        if self.regularizer_weight is None:  # Python: warns when the train step is traced
            warnings.warn(
                f"{type(self).__name__} layer {self.name!r} is trained with no penalty weight, "
                "so nothing pushes it towards sparsity: train with "
                "callbacks=[sos.SparsityCallback(regularizer_weight=sos.Ramp(...))].",
                stacklevel=2,
            )
        else:
            previous = ops.convert_to_tensor(self.regularizer_value)
            weight = self.regularizer_weight(step, previous=previous)
            self.regularizer_value.assign(weight)
            self.add_loss(ops.cast(weight, "float32") * ops.cast(self.penalty(), "float32"))
        self.step.assign(step + 1)

    def technique_config(self):
        return {
            "regularizer_weight": keras.saving.serialize_keras_object(self.regularizer_weight),
            "seed": self.seed,
        }
