"""``conv``: the tutorial's default, "cnn-trad-fpool3" (Sainath & Parada 2015)."""

from __future__ import annotations

from pipeline.models.base import ModelSpec, as_image, conv2d, dense


def build(x, num_labels, dropout, options):
    from keras import layers

    # The original's docstring shows a second max-pool, its code has none.
    x = as_image(x)
    x = conv2d(64, (20, 8), 1, "same", "first_conv")(x)
    x = layers.Dropout(dropout, name="first_dropout")(x)
    x = layers.MaxPooling2D(2, 2, padding="same", name="max_pool")(x)
    x = conv2d(64, (10, 4), 1, "same", "second_conv")(x)
    x = layers.Dropout(dropout, name="second_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    return dense(num_labels, "final_fc")(x)


MODEL = ModelSpec(
    "conv", build, 'the tutorial\'s default, "cnn-trad-fpool3"', original_parameters=926_860
)
