"""``linear_head``: logistic regression on frozen embeddings as a Keras model: per-feature
normalization (batch statistics while training, their moving averages after), dropout, one dense
layer with an L2 penalty. On the joined word embeddings (``embedding_efficientword``) a plain
logistic regression beat the two-layer ``embedding_head`` in the k-fold bench
(docs/experiments/real-speech-kfold.md); this is that
classifier in a form the pipeline trains and exports (TFLite float and int8)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.schema import Section, number, param
from pipeline.models.base import ModelSpec


@dataclass(frozen=True)
class LinearOptions(Section):
    section = "model.linear_head"

    l2: float = param(0.001, number(0, 10))


def logistic_regression(flat, num_labels, dropout, l2: float, prefix: str = ""):
    """[values] -> logits: standardize, dropout, one dense layer with an L2 penalty (word_pair_mean
    reuses it with a ``prefix`` on the layer names)."""
    import keras
    from keras import layers

    x = layers.BatchNormalization(
        center=False, scale=False, momentum=0.9, name=f"{prefix}standardize"
    )(flat)
    x = layers.Dropout(dropout, name=f"{prefix}dropout")(x)
    return layers.Dense(
        num_labels, kernel_regularizer=keras.regularizers.L2(l2), name=f"{prefix}final_fc"
    )(x)


def build(x, num_labels, dropout, options: LinearOptions):
    from keras import layers

    return logistic_regression(layers.Flatten(name="flatten")(x), num_labels, dropout, options.l2)


MODEL = ModelSpec("linear_head", build, "logistic regression on frozen embeddings", LinearOptions)
