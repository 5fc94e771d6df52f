"""``ds_cnn`` (the default): a depthwise-separable temporal CNN.

In the style of kws_streaming's ds_tc_resnet / MatchboxNet: the feature bins are channels and
every block is a depthwise convolution along time, a pointwise (1x1) convolution, batch norm, a
residual connection (where the stride is 1) and ReLU, followed by global average pooling and one
dense layer. About 33k parameters with the defaults.

``padding``: ``same`` (the default) centres every kernel on its frame, so a window's last
frames see zeros after the window; ``causal`` pads only before (each output sees its own frame
and the past), the form that streams frame by frame with exactly the whole-clip model's scores at
the window's last frame (``stream``: ring buffers of past frames and a stride phase, see
models/streaming.py). A stride-2 block's outputs then sit at the even input frames, as with
``same``.

The 2-D DS-CNN of "Hello Edge" is as accurate but its depthwise 2-D gradients are ~25x slower on
a CPU with TensorFlow (measured: 2.4 s vs 0.09 s per batch of 100 on 2 cores).
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.schema import Section, integer, list_of, param, text
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
    # same | causal (streamable: each output sees only its frame and the past)
    padding: str = param("same", text(choices=("same", "causal")))


def _conv(layer, x, kernel: int, causal: bool, name: str):
    """``layer`` (made with padding 'valid' when causal) on ``x``, zero-padded before when causal."""
    from keras import layers

    if causal and kernel > 1:
        x = layers.ZeroPadding1D((kernel - 1, 0), name=f"{name}_pad")(x)
    return layer(x)


CONV0_KERNEL = 3


def build(x, num_labels, dropout, options: DsCnnOptions):
    from keras import layers

    channels = options.channels
    causal = options.padding == "causal"
    padding = "valid" if causal else "same"
    x = _conv(layers.Conv1D(channels, CONV0_KERNEL, padding=padding, use_bias=False, name="conv0"),
              x, CONV0_KERNEL, causal, "conv0")
    x = layers.BatchNormalization(name="conv0_bn")(x)
    x = layers.ReLU(name="conv0_relu")(x)
    for i, (kernel, stride) in enumerate(options.blocks, start=1):
        shortcut = x
        x = _conv(layers.DepthwiseConv1D(kernel, strides=stride, padding=padding, use_bias=False, name=f"dw{i}"),
                  x, kernel, causal, f"dw{i}")
        x = layers.Conv1D(channels, 1, use_bias=False, name=f"pw{i}")(x)
        x = layers.BatchNormalization(name=f"block{i}_bn")(x)
        if stride == 1:
            x = layers.Add(name=f"block{i}_residual")([x, shortcut])
        x = layers.ReLU(name=f"block{i}_relu")(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_labels, name="final_fc")(x)


def stream(trained, options: DsCnnOptions):
    """Causal ds_cnn, one feature frame per call (see the module doc and models/streaming.py)."""
    import keras
    import numpy as np

    from pipeline.models.streaming import NotStreamable, StreamingModel, append_frame, keep_if, logits_model

    if options.padding != "causal":
        raise NotStreamable("ds_cnn with padding 'same' sees frames after the window's end; train "
                            "with model.ds_cnn.padding: causal to stream it")
    model = logits_model(trained, "ds_cnn")
    ops = keras.ops
    bins = int(model.input_shape[-1])
    frames = int(model.input_shape[1])
    pooled = int(model.get_layer("pool").input.shape[1])  # outputs of the last block per window
    conv0, bn0 = model.get_layer("conv0"), model.get_layer("conv0_bn")
    blocks = [(kernel, stride, model.get_layer(f"dw{i}"), model.get_layer(f"pw{i}"),
               model.get_layer(f"block{i}_bn")) for i, (kernel, stride) in enumerate(options.blocks, start=1)]
    final = model.get_layer("final_fc")
    rates = list(np.cumprod([stride for _, stride, *_ in blocks]))  # input frames per output, after each block
    period = float(rates[-1])
    shapes = {"conv0_buffer": (CONV0_KERNEL - 1, bins)}
    shapes.update({f"dw{i}_buffer": (kernel - 1, options.channels)
                   for i, (kernel, *_) in enumerate(blocks, start=1) if kernel > 1})
    shapes["pool_buffer"] = (pooled, options.channels)
    shapes["phase"] = (1,)

    class DsCnnStreaming(StreamingModel):
        def step(self, frame, states):
            named = dict(zip(self.state_shapes, states))
            new = {}
            phase = named["phase"][:, 0]  # input frames since the last whole period, mod period
            window = append_frame(named["conv0_buffer"], frame[:, None, :])
            new["conv0_buffer"] = window[:, 1:]
            x = ops.relu(bn0(conv0(window), training=False))  # [batch, 1, channels]
            active = ops.ones_like(phase) > 0  # does x hold a new output at this frame?
            for i, (kernel, stride, dw, pw, bn) in enumerate(blocks, start=1):
                key = f"dw{i}_buffer"
                window = append_frame(named[key], x) if kernel > 1 else x
                if kernel > 1:
                    new[key] = keep_if(active, window[:, 1:], named[key])
                y = bn(pw(dw(window)), training=False)
                x = ops.relu(y + x if stride == 1 else y)
                active = ops.logical_and(active, ops.equal(ops.mod(phase, float(rates[i - 1])), 0.0))
            new["pool_buffer"] = keep_if(active, append_frame(named["pool_buffer"], x)[:, 1:],
                                         named["pool_buffer"])
            new["phase"] = ops.mod(named["phase"] + 1.0, period)
            logits = final(ops.mean(new["pool_buffer"], axis=1))
            return logits, [new[name] for name in self.state_shapes]

    return DsCnnStreaming(model, bins, frames, shapes, name="ds_cnn_streaming")


MODEL = ModelSpec("ds_cnn", build, "depthwise-separable convolutions along time", DsCnnOptions,
                  stream=stream)
