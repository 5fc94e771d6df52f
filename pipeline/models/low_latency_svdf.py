"""``low_latency_svdf``: a rank-2 SVDF layer of 1280 units, then two dense layers."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.schema import Section, integer, param
from pipeline.models.base import ModelSpec, dense


@dataclass(frozen=True)
class SvdfOptions(Section):
    section = "model.low_latency_svdf"

    units: int = param(1280, integer(1, 100000))
    rank: int = param(2, integer(1, 64))


def build(x, num_labels, dropout, options: SvdfOptions):
    from keras import layers

    from pipeline.models.layers import SVDF

    x = SVDF(options.units, options.rank, name="svdf")(x)
    x = layers.ReLU(name="first_relu")(x)
    x = layers.Dropout(dropout, name="first_dropout")(x)
    x = dense(256, "first_fc")(x)
    x = layers.Dropout(dropout, name="second_dropout")(x)
    x = dense(256, "second_fc")(x)
    x = layers.Dropout(dropout, name="final_dropout")(x)
    return dense(num_labels, "final_fc")(x)


def stream(trained, options: SvdfOptions):
    """The SVDF with its runtime memory: one feature frame per call (see models/streaming.py)."""
    import keras

    from pipeline.models.streaming import StreamingModel, append_frame, logits_model

    model = logits_model(trained, "low_latency_svdf")
    svdf = model.get_layer("svdf")
    dense = [model.get_layer(name) for name in ("first_fc", "second_fc", "final_fc")]
    bins, filters = (int(d) for d in svdf.weights_frequency.shape)
    frames = int(svdf.weights_time.shape[1])

    class SvdfStreaming(StreamingModel):
        def step(self, frame, states):
            ops = keras.ops
            (memory,) = (
                states  # [batch, frames, filters]: feature-filter outputs of the last frames
            )
            newest = ops.matmul(frame, svdf.weights_frequency)[:, None, :]
            memory = append_frame(memory, newest)[:, 1:]
            # Time filter over the memory: the whole-clip SVDF's sum over frames.
            out = ops.sum(memory * ops.transpose(svdf.weights_time)[None], axis=1)
            out = ops.sum(ops.reshape(out, (-1, svdf.units, svdf.rank)), axis=2) + svdf.bias
            x = ops.relu(out)
            for layer in dense:
                x = layer(x)
            return x, [memory]

    return SvdfStreaming(
        model, bins, frames, {"svdf_memory": (frames, filters)}, name="low_latency_svdf_streaming"
    )


MODEL = ModelSpec(
    "low_latency_svdf",
    build,
    "rank-2 SVDF, 1280 units (whole-clip training, streams with its memory)",
    SvdfOptions,
    original_parameters=751_372,
    stream=stream,
)
