"""``ds_cnn`` (the default): a depthwise-separable temporal CNN.

In the style of kws_streaming's ds_tc_resnet / MatchboxNet: the feature bins are channels and
every block is a depthwise convolution along time, a pointwise (1x1) convolution, batch norm, a
residual connection (where the stride is 1) and ReLU, followed by global average pooling and one
dense layer. About 33k parameters with the defaults.

``padding``:

- ``same`` centres every kernel on its frame, zero-padded at both ends, so a window's last
  frames see zeros after the window: it does not stream.
- ``valid`` pads nothing: every output sees only frames of the window, and every convolution is
  right-aligned to the window's last frame (before a strided layer the first ``(n - k) mod s``
  frames are cropped, so that its last output ends at the window's last frame; a residual
  shortcut takes the last frames of its input). The window's scores then depend on its own
  frames only, so a stream gives them at every frame of a continuous recording, whatever the
  window's phase against the model's total stride (``stream``: the layers after a stride-``s``
  block run at the full frame rate, dilated by ``s``; see models/streaming.py). The blocks'
  receptive field (``receptive_field``: 97 frames with the defaults) must fit the window; the
  average pooling covers the last block's outputs that remain (1 of them with the defaults and
  98 frames). It is less accurate than ``same`` (on the embedded test set and in 5-fold
  cross-validation on real speech: docs/export.md, "Streaming export"), so ``same`` stays the
  default.
- ``causal`` pads only before (each output sees its own frame and the past); it streams with the
  whole-clip model's scores at a clip's last frame, from zero states (``stream``: ring buffers and
  a stride phase). On a continuous recording its windows differ from the window model's, which
  saw zeros before the window's start.

The 2-D DS-CNN of "Hello Edge" is as accurate but its depthwise 2-D gradients are far slower on
a CPU with TensorFlow (docs/training.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import ParamError
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
    # same | valid | causal (see the module doc; valid and causal stream frame by frame)
    padding: str = param("same", text(choices=("same", "valid", "causal")))


CONV0_KERNEL = 3


def dilations(blocks) -> list[int]:
    """Input frames between two consecutive inputs of each block (the strides before it)."""
    out, rate = [], 1
    for _, stride in blocks:
        out.append(rate)
        rate *= stride
    return out


def receptive_field(blocks) -> int:
    """Frames one output of the last block sees with ``valid`` padding."""
    return CONV0_KERNEL + sum((kernel - 1) * d for (kernel, _), d in zip(blocks, dilations(blocks)))


def _conv(layer, x, kernel: int, causal: bool, name: str):
    """``layer`` (made with padding 'valid' when causal) on ``x``, zero-padded before when
    causal."""
    from keras import layers

    if causal and kernel > 1:
        x = layers.ZeroPadding1D((kernel - 1, 0), name=f"{name}_pad")(x)
    return layer(x)


def _right_aligned(x, kernel: int, stride: int, name: str):
    """``x`` less its first ``(n - kernel) mod stride`` frames: a valid strided convolution's
    last output then ends at the last frame."""
    from keras import layers

    crop = (int(x.shape[1]) - kernel) % stride
    return layers.Cropping1D((crop, 0), name=f"{name}_crop")(x) if crop else x


def build(x, num_labels, dropout, options: DsCnnOptions):
    from keras import layers

    channels = options.channels
    causal, valid = options.padding == "causal", options.padding == "valid"
    padding = "same" if options.padding == "same" else "valid"
    if valid and int(x.shape[1]) < receptive_field(options.blocks):
        raise ParamError(
            f"model.ds_cnn.padding: valid needs windows of at least "
            f"{receptive_field(options.blocks)} frames (the receptive field of "
            f"model.ds_cnn.blocks {options.blocks}); the features have {int(x.shape[1])}"
        )
    x = _conv(
        layers.Conv1D(channels, CONV0_KERNEL, padding=padding, use_bias=False, name="conv0"),
        x,
        CONV0_KERNEL,
        causal,
        "conv0",
    )
    x = layers.BatchNormalization(name="conv0_bn")(x)
    x = layers.ReLU(name="conv0_relu")(x)
    for i, (kernel, stride) in enumerate(options.blocks, start=1):
        shortcut = x
        if valid and stride > 1:
            x = _right_aligned(x, kernel, stride, f"dw{i}")
        x = _conv(
            layers.DepthwiseConv1D(
                kernel, strides=stride, padding=padding, use_bias=False, name=f"dw{i}"
            ),
            x,
            kernel,
            causal,
            f"dw{i}",
        )
        x = layers.Conv1D(channels, 1, use_bias=False, name=f"pw{i}")(x)
        x = layers.BatchNormalization(name=f"block{i}_bn")(x)
        if stride == 1:
            if valid and kernel > 1:  # the outputs line up with the input's last frames
                shortcut = layers.Cropping1D((kernel - 1, 0), name=f"block{i}_shortcut")(shortcut)
            x = layers.Add(name=f"block{i}_residual")([x, shortcut])
        x = layers.ReLU(name=f"block{i}_relu")(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_labels, name="final_fc")(x)


def stream(trained, options: DsCnnOptions):
    """ds_cnn one feature frame per call (see the module doc and models/streaming.py)."""
    from pipeline.models.streaming import NotStreamable, logits_model

    if options.padding == "same":
        raise NotStreamable(
            "ds_cnn with padding 'same' sees frames after the window's end; train "
            "with model.ds_cnn.padding: valid (or causal) to stream it"
        )
    model = logits_model(trained, "ds_cnn")
    return (_stream_valid if options.padding == "valid" else _stream_causal)(model, options)


def _layers(model, options: DsCnnOptions):
    return (
        model.get_layer("conv0"),
        model.get_layer("conv0_bn"),
        [
            (
                kernel,
                stride,
                model.get_layer(f"dw{i}"),
                model.get_layer(f"pw{i}"),
                model.get_layer(f"block{i}_bn"),
            )
            for i, (kernel, stride) in enumerate(options.blocks, start=1)
        ],
        model.get_layer("final_fc"),
    )


def _stream_valid(model, options: DsCnnOptions):
    """Valid ds_cnn at the full frame rate: after each frame, the window model's scores of the
    window that ends at that frame. Every convolution keeps the last ``(kernel - 1) * dilation``
    of its inputs (a block after stride-``s`` blocks takes every ``s``-th of them, as the window
    model's strided outputs are spaced), and the pooling the last block's outputs."""
    import keras

    from pipeline.models.streaming import StreamingModel, append_frame

    ops = keras.ops
    bins, frames = int(model.input_shape[-1]), int(model.input_shape[1])
    pooled = int(model.get_layer("pool").input.shape[1])  # outputs of the last block per window
    conv0, bn0, blocks, final = _layers(model, options)
    rates = dilations(options.blocks)
    period = rates[-1] * options.blocks[-1][1]  # input frames between two outputs of the last block
    shapes = {"conv0_buffer": (CONV0_KERNEL - 1, bins)}
    shapes.update(
        {
            f"dw{i}_buffer": ((kernel - 1) * rate, options.channels)
            for i, ((kernel, *_), rate) in enumerate(zip(blocks, rates), start=1)
            if kernel > 1
        }
    )
    if pooled > 1:
        shapes["pool_buffer"] = ((pooled - 1) * period, options.channels)

    class DsCnnValidStreaming(StreamingModel):
        def step(self, frame, states):
            named = dict(zip(self.state_shapes, states))
            new = {}
            window = append_frame(named["conv0_buffer"], frame[:, None, :])
            new["conv0_buffer"] = window[:, 1:]
            x = ops.relu(bn0(conv0(window), training=False))  # [batch, 1, channels]
            for i, ((kernel, stride, dw, pw, bn), rate) in enumerate(zip(blocks, rates), start=1):
                taps = x
                if kernel > 1:
                    window = append_frame(named[f"dw{i}_buffer"], x)
                    new[f"dw{i}_buffer"] = window[:, 1:]
                    taps = window[:, ::rate] if rate > 1 else window  # kernel inputs: one output
                y = bn(pw(dw(taps)), training=False)
                x = ops.relu(y + x if stride == 1 else y)
            if pooled > 1:
                window = append_frame(named["pool_buffer"], x)
                new["pool_buffer"] = window[:, 1:]
                x = window[:, ::period]
            logits = final(ops.mean(x, axis=1))
            return logits, [new[name] for name in self.state_shapes]

    return DsCnnValidStreaming(model, bins, frames, shapes, name="ds_cnn_streaming")


def _stream_causal(model, options: DsCnnOptions):
    """Causal ds_cnn: ring buffers of past frames and a stride phase; the states after a clip's
    last frame are what the whole-clip model computed on that clip."""
    import keras
    import numpy as np

    from pipeline.models.streaming import StreamingModel, append_frame, keep_if

    ops = keras.ops
    bins = int(model.input_shape[-1])
    frames = int(model.input_shape[1])
    pooled = int(model.get_layer("pool").input.shape[1])  # outputs of the last block per window
    conv0, bn0, blocks, final = _layers(model, options)
    rates = list(
        np.cumprod([stride for _, stride, *_ in blocks])
    )  # input frames per output, after each block
    period = float(rates[-1])
    shapes = {"conv0_buffer": (CONV0_KERNEL - 1, bins)}
    shapes.update(
        {
            f"dw{i}_buffer": (kernel - 1, options.channels)
            for i, (kernel, *_) in enumerate(blocks, start=1)
            if kernel > 1
        }
    )
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
                active = ops.logical_and(
                    active, ops.equal(ops.mod(phase, float(rates[i - 1])), 0.0)
                )
            new["pool_buffer"] = keep_if(
                active, append_frame(named["pool_buffer"], x)[:, 1:], named["pool_buffer"]
            )
            new["phase"] = ops.mod(named["phase"] + 1.0, period)
            logits = final(ops.mean(new["pool_buffer"], axis=1))
            return logits, [new[name] for name in self.state_shapes]

    return DsCnnStreaming(model, bins, frames, shapes, name="ds_cnn_streaming")


MODEL = ModelSpec(
    "ds_cnn", build, "depthwise-separable convolutions along time", DsCnnOptions, stream=stream
)
