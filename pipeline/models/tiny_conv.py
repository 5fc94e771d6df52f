"""``tiny_conv``: the original's model for microcontrollers."""

from __future__ import annotations

from pipeline.models.base import ModelSpec, as_image, conv2d, dense


def build(x, num_labels, dropout, options):
    from keras import layers

    x = as_image(x)
    x = conv2d(8, (10, 8), 2, "same", "first_conv")(x)
    x = layers.Dropout(dropout, name="first_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    return dense(num_labels, "final_fc")(x)


MODEL = ModelSpec("tiny_conv", build, "for microcontrollers", original_parameters=94_740)
