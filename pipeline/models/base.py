"""What a model is: a builder, its own hyperparameters, and the original's parameter count.

Every builder takes features of one clip (``[frames, bins]``, or ``[windows, 96]`` speech
embeddings) and returns logits ``[batch, labels]``; the train stage adds the softmax. A committee
of independent heads returns ``[batch, heads, labels]`` (``stack_heads``): training minimises each
head's own cross entropy (their sum, so no head leans on another, as if trained apart) and the
model's scores are the mean of the heads' softmaxes (``models/io.with_softmax``). A model is one
module that defines ``MODEL = ModelSpec(...)``, listed in ``pipeline/models/registry.py``. Its
hyperparameters are a :class:`~pipeline.core.schema.Section` (``options``) that params.yaml holds
under ``model.<name>``, validated like every other key. A model that can run frame by frame also
gives ``stream`` (see ``pipeline/models/streaming.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.core.schema import Section


@dataclass(frozen=True)
class NoOptions(Section):
    """A model with no hyperparameters besides dropout (the original topologies)."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable  # (inputs, num_labels, dropout, options) -> logits tensor
    description: str
    options: type[Section] = NoOptions
    # Trainable parameters of the original models.py graph for 98 x 40 input and 12 labels.
    original_parameters: int | None = None
    # How the model streams, if it can: (trained logits model, options) -> a StreamingModel that
    # takes one feature frame per call with explicit states (models/streaming.py); it raises
    # NotStreamable for options without an exact streaming form. None: whole clips only.
    stream: Callable | None = None


# Keras is imported inside the helpers: the registry (and params validation with it) stays cheap
# to import; only building a model loads Keras.


def truncated_normal(stddev: float = 0.01):
    import keras

    return keras.initializers.TruncatedNormal(stddev=stddev)


def dense(units: int, name: str, stddev: float = 0.01, activation=None):
    """The original's fully connected layer: truncated-normal weights, zero biases."""
    from keras import layers

    return layers.Dense(
        units,
        activation=activation,
        kernel_initializer=truncated_normal(stddev),
        bias_initializer="zeros",
        name=name,
    )


def conv2d(filters: int, kernel, strides, padding: str, name: str, activation="relu"):
    """The original's 2-D convolution: truncated-normal weights, zero biases."""
    from keras import layers

    return layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        activation=activation,
        kernel_initializer=truncated_normal(),
        bias_initializer="zeros",
        name=name,
    )


def stack_heads(heads):
    """Logits of independent heads, each ``[batch, labels]`` -> ``[batch, heads, labels]``."""
    from keras import layers

    rows = [layers.Reshape((1, int(h.shape[-1])), name=f"head{i}")(h) for i, h in enumerate(heads)]
    return layers.Concatenate(axis=1, name="heads")(rows)


def as_image(x):
    """[frames, bins] -> [frames, bins, 1] for the 2-D convolutions."""
    from keras import layers

    return layers.Reshape((*x.shape[1:], 1), name="to_image")(x)
