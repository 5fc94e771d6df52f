"""``word_pair_conv``: for the joined word embeddings (``features.preprocess:
embedding_efficientword``, one flat ``[1, 9 * 96 + 2048]`` vector per clip). The speech
embedding's 9 windows go through ``embedding_conv``'s convolutions over the windows (its best head
in the k-fold bench, better than a flat head), EfficientWord-Net's 2,048 values are standardized
as ``linear_head`` standardizes them, and one dense layer reads both. It is the two models that
averaged best on streams (the mean of ``real-speech`` and ``real-speech-pair``,
docs/experiments/real-speech-streams.md), trained as one."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import ParamError
from pipeline.core.schema import integer, number, param
from pipeline.models.base import ModelSpec
from pipeline.models.embedding_conv import ConvHeadOptions, conv_over_windows


@dataclass(frozen=True)
class WordPairConvOptions(ConvHeadOptions):
    """embedding_conv's options for the convolutions, and where the speech embedding's part ends."""

    section = "model.word_pair_conv"

    # The speech embedding's part, first in the flat vector: windows x width values.
    windows: int = param(9, integer(1, 1024))
    width: int = param(96, integer(1, 4096))
    # L2 penalty of the dense layer (linear_head's).
    l2: float = param(0.001, number(0, 10))


def split_pair(x, options: WordPairConvOptions):
    """The flat joined vector, its speech-embedding part as ``[windows, width]``, and the rest
    (the other embedding's values)."""
    from keras import layers

    flat = layers.Flatten(name="flatten")(x)
    total, sequence = int(flat.shape[-1]), options.windows * options.width
    if total <= sequence:
        raise ParamError(
            f"{options.section.split('.')[-1]} needs features longer than {options.section}'s "
            f"windows x width = {sequence} values (the speech embedding's windows, then another "
            f"embedding's values); these have {total}: "
            "use features.preprocess: embedding_efficientword"
        )
    windows = layers.Reshape((options.windows, options.width), name="speech_windows")(
        flat[:, :sequence]
    )
    return flat, windows, flat[:, sequence:]


def build(x, num_labels, dropout, options: WordPairConvOptions):
    import keras
    from keras import layers

    _, windows, rest = split_pair(x, options)
    windows = conv_over_windows(windows, options)
    vector = layers.BatchNormalization(center=False, scale=False, momentum=0.9, name="standardize")(
        rest
    )
    joined = layers.Concatenate(name="joined")([windows, vector])
    joined = layers.Dropout(dropout, name="dropout")(joined)
    return layers.Dense(
        num_labels, kernel_regularizer=keras.regularizers.L2(options.l2), name="final_fc"
    )(joined)


MODEL = ModelSpec(
    "word_pair_conv",
    build,
    "embedding_conv over the speech embedding beside a linear map of EfficientWord-Net's",
    WordPairConvOptions,
)
