"""``ds_cnn`` (the default): a depthwise-separable temporal CNN.

In the style of kws_streaming's ds_tc_resnet / MatchboxNet: the feature bins are channels and
every block is a depthwise convolution along time, a pointwise (1x1) convolution, batch norm, a
residual connection (where the stride is 1) and ReLU, followed by global average pooling and one
dense layer. About 33k parameters with the defaults.

The 2-D DS-CNN of "Hello Edge" is as accurate but its depthwise 2-D gradients are ~25x slower on
a CPU with TensorFlow (measured: 2.4 s vs 0.09 s per batch of 100 on 2 cores).
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.schema import Section, integer, list_of, param
from pipeline.models.base import ModelSpec


def _pairs(blocks) -> str | None:
    if any(len(block) != 2 for block in blocks):
        return "each block is a [kernel, stride] pair"
    return None


@dataclass(frozen=True)
class DsCnnOptions(Section):
    section = "model.ds_cnn"

    channels: int = param(64, integer(1, 4096))
    # [kernel, stride] of each depthwise-separable block; residual where the stride is 1.
    blocks: list = param(
        [[5, 1], [7, 2], [9, 1], [11, 2], [13, 1]], list_of(list_of(integer(1, 1000)), check=_pairs)
    )


def build(x, num_labels, dropout, options: DsCnnOptions):
    from keras import layers

    channels = options.channels
    x = layers.Conv1D(channels, 3, padding="same", use_bias=False, name="conv0")(x)
    x = layers.BatchNormalization(name="conv0_bn")(x)
    x = layers.ReLU(name="conv0_relu")(x)
    for i, (kernel, stride) in enumerate(options.blocks, start=1):
        shortcut = x
        x = layers.DepthwiseConv1D(kernel, strides=stride, padding="same", use_bias=False, name=f"dw{i}")(x)
        x = layers.Conv1D(channels, 1, use_bias=False, name=f"pw{i}")(x)
        x = layers.BatchNormalization(name=f"block{i}_bn")(x)
        if stride == 1:
            x = layers.Add(name=f"block{i}_residual")([x, shortcut])
        x = layers.ReLU(name=f"block{i}_relu")(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_labels, name="final_fc")(x)


MODEL = ModelSpec("ds_cnn", build, "depthwise-separable convolutions along time", DsCnnOptions)
