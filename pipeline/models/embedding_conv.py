"""``embedding_conv``: a small head over the *sequence* of speech-embedding windows ([windows, 96]
per clip) rather than their flattened vector: layer norm, two 1-D convolutions along the windows,
the maximum over time, then logits. In speaker-disjoint 5-fold cross-validation on real speech it
beat the flat ``embedding_head`` on the same features (docs/experiments/real-speech-kfold.md)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.schema import Section, integer, number, param
from pipeline.models.base import ModelSpec, stack_heads


@dataclass(frozen=True)
class ConvHeadOptions(Section):
    section = "model.embedding_conv"

    channels: int = param(128, integer(1, 4096))
    kernel: int = param(3, integer(1, 64))
    # Dropout between the two convolutions (train.dropout is applied before the last layer).
    inner_dropout: float = param(0.3, number(0, 0.99))


def conv_over_windows(x, options: ConvHeadOptions, prefix: str = ""):
    """[windows, width] -> [channels]: the layers before the classifier (word_pair_conv reuses
    them; ``prefix`` names a committee head's layers apart)."""
    from keras import layers

    x = layers.LayerNormalization(name=f"{prefix}norm")(x)
    x = layers.Conv1D(
        options.channels, options.kernel, padding="same", activation="relu", name=f"{prefix}conv1"
    )(x)
    x = layers.Dropout(options.inner_dropout, name=f"{prefix}conv1_dropout")(x)
    x = layers.Conv1D(
        options.channels, options.kernel, padding="same", activation="relu", name=f"{prefix}conv2"
    )(x)
    return layers.GlobalMaxPooling1D(name=f"{prefix}max_over_time")(x)


def conv_classifier(x, num_labels, dropout, options: ConvHeadOptions, prefix: str = ""):
    """[windows, width] -> logits: the whole head (word_pair_mean reuses it with a ``prefix`` on
    the layer names)."""
    from keras import layers

    x = conv_over_windows(x, options, prefix)
    x = layers.Dropout(dropout, name=f"{prefix}dropout")(x)
    return layers.Dense(num_labels, name=f"{prefix}final_fc")(x)


@dataclass(frozen=True)
class EmbeddingConvOptions(ConvHeadOptions):
    section = "model.embedding_conv"

    # Heads trained side by side on the same batches, each with its own initialization and
    # dropout, their softmaxes averaged (one export): a mean over training's luck, for the cost
    # of the heads only (streaming pays for the speech embedding, computed once).
    members: int = param(1, integer(1, 16))


def build(x, num_labels, dropout, options: EmbeddingConvOptions):
    if options.members == 1:
        return conv_classifier(x, num_labels, dropout, options)
    return stack_heads(
        [
            conv_classifier(x, num_labels, dropout, options, prefix=f"m{member}_")
            for member in range(options.members)
        ]
    )


MODEL = ModelSpec(
    "embedding_conv",
    build,
    "1-D convolutions over the speech-embedding windows",
    EmbeddingConvOptions,
)
