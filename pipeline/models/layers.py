"""Custom Keras layers (registered so that ``.keras`` files load with this package imported)."""

from __future__ import annotations

import keras
from keras import layers

from pipeline.models.base import truncated_normal


@keras.saving.register_keras_serializable(package="kws")
class SVDF(layers.Layer):
    """Singular value decomposition filter (Nakkiran et al. 2015), as in the original models.py.

    Each of ``units * rank`` filters is a rank-one factorisation: a feature filter applied to
    every frame, then a time filter over all frames; the ``rank`` filters of a unit are summed and
    a bias added. Input ``[batch, frames, bins]``, output ``[batch, units]`` (before the ReLU).
    The original's streaming runtime memory is an inference optimisation with identical results
    on whole clips, so it is left out (the model here always sees whole clips).
    """

    def __init__(self, units: int = 1280, rank: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.rank = int(rank)

    def build(self, input_shape):
        frames, bins = int(input_shape[-2]), int(input_shape[-1])
        filters = self.units * self.rank
        self.weights_frequency = self.add_weight(
            name="weights_frequency", shape=(bins, filters), initializer=truncated_normal()
        )
        self.weights_time = self.add_weight(
            name="weights_time", shape=(filters, frames), initializer=truncated_normal()
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        ops = keras.ops
        # [batch, frames, bins] x [bins, filters] -> [batch, frames, filters]
        activations = ops.matmul(inputs, self.weights_frequency)
        # Time filter: weighted sum over frames -> [batch, filters]
        outputs = ops.sum(activations * ops.transpose(self.weights_time), axis=1)
        # Filter f = unit * rank + r, as the original's reshape [units, rank, batch].
        outputs = ops.reshape(outputs, (-1, self.units, self.rank))
        return ops.sum(outputs, axis=2) + self.bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "rank": self.rank}
