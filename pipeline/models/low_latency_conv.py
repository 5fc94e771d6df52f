"""``low_latency_conv``: "cnn-one-fstride4", a filter spanning all frames."""

from __future__ import annotations

from pipeline.models.base import ModelSpec, as_image, conv2d, dense


def build(x, num_labels, dropout, options):
    from keras import layers

    # As in the original, the two hidden dense layers are linear (no activation), each followed
    # by dropout.
    frames = x.shape[1]
    x = as_image(x)
    x = conv2d(186, (frames, 8), 1, "valid", "first_conv")(x)
    x = layers.Dropout(dropout, name="first_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = dense(128, "first_fc")(x)
    x = layers.Dropout(dropout, name="second_dropout")(x)
    x = dense(128, "second_fc")(x)
    x = layers.Dropout(dropout, name="final_dropout")(x)
    return dense(num_labels, "final_fc")(x)


MODEL = ModelSpec("low_latency_conv", build, '"cnn-one-fstride4"', original_parameters=949_862)
