"""``single_fc``: one fully connected layer, the original's simplest model."""

from __future__ import annotations

from pipeline.models.base import ModelSpec, dense


def build(x, num_labels, dropout, options):
    from keras import layers

    x = layers.Flatten(name="flatten")(x)
    return dense(num_labels, "final_fc", stddev=0.001)(x)


MODEL = ModelSpec("single_fc", build, "one dense layer", original_parameters=47_052)
