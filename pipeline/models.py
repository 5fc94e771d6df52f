"""The model zoo: the original tutorial's topologies in Keras, plus two modern small models.

Every builder takes features of one clip, ``[frames, bins]`` (or ``[windows, 96]`` speech
embeddings), and returns a Keras model that outputs logits; the train stage adds the softmax.
The original topologies keep the original's layer shapes, initialisers (truncated normal, zero
biases) and dropout placement, so their parameter counts equal the original's
(``ORIGINAL_PARAMETER_COUNTS``, for 98 x 40 MFCC input and 12 labels).
"""
from __future__ import annotations

import math

import keras
from keras import layers

# Trainable parameters of the original models.py graphs for 98 x 40 input and 12 labels,
# worked out from the shapes of its variables (the SVDF's non-trainable runtime memory excluded).
ORIGINAL_PARAMETER_COUNTS = {
    "single_fc": 47_052,
    "conv": 926_860,
    "low_latency_conv": 949_862,
    "low_latency_svdf": 751_372,
    "tiny_conv": 94_740,
    "tiny_embedding_conv": 7_804,
}

# Architectures added by this project (no original counterpart).
MODERN_ARCHITECTURES = ("ds_cnn", "embedding_head")
ARCHITECTURES = (*ORIGINAL_PARAMETER_COUNTS, *MODERN_ARCHITECTURES)


def _weights(stddev: float = 0.01):
    return keras.initializers.TruncatedNormal(stddev=stddev)


def _dense(units: int, name: str, stddev: float = 0.01, activation=None):
    return layers.Dense(
        units, activation=activation, kernel_initializer=_weights(stddev), bias_initializer="zeros", name=name
    )


def _conv(filters: int, kernel, strides, padding: str, name: str, activation="relu"):
    return layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        activation=activation,
        kernel_initializer=_weights(),
        bias_initializer="zeros",
        name=name,
    )


@keras.saving.register_keras_serializable(package="kws")
class SVDF(layers.Layer):
    """Singular value decomposition filter (Nakkiran et al. 2015), as in the original models.py.

    Each of ``units * rank`` filters is a rank-one factorisation: a feature filter applied to
    every frame, then a time filter over all frames; the ``rank`` filters of a unit are summed and
    a bias added. Input ``[batch, frames, bins]``, output ``[batch, units]`` (before the ReLU).
    The original's streaming runtime memory is an inference optimisation with identical results
    on whole clips, so it is left out (the model here always sees whole clips).
    """

    def __init__(self, units: int = 1280, rank: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.rank = int(rank)

    def build(self, input_shape):
        frames, bins = int(input_shape[-2]), int(input_shape[-1])
        filters = self.units * self.rank
        self.weights_frequency = self.add_weight(
            name="weights_frequency", shape=(bins, filters), initializer=_weights()
        )
        self.weights_time = self.add_weight(
            name="weights_time", shape=(filters, frames), initializer=_weights()
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        ops = keras.ops
        # [batch, frames, bins] x [bins, filters] -> [batch, frames, filters]
        activations = ops.matmul(inputs, self.weights_frequency)
        # Time filter: weighted sum over frames -> [batch, filters]
        outputs = ops.sum(activations * ops.transpose(self.weights_time), axis=1)
        # Filter f = unit * rank + r, as the original's reshape [units, rank, batch].
        outputs = ops.reshape(outputs, (-1, self.units, self.rank))
        return ops.sum(outputs, axis=2) + self.bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "rank": self.rank}


def _single_fc(x, num_labels, dropout):
    x = layers.Flatten(name="flatten")(x)
    return _dense(num_labels, "final_fc", stddev=0.001)(x)


def _conv_model(x, num_labels, dropout):
    # cnn-trad-fpool3. The original's docstring shows a second max-pool, its code has none.
    x = layers.Reshape((*x.shape[1:], 1), name="to_image")(x)
    x = _conv(64, (20, 8), 1, "same", "first_conv")(x)
    x = layers.Dropout(dropout, name="first_dropout")(x)
    x = layers.MaxPooling2D(2, 2, padding="same", name="max_pool")(x)
    x = _conv(64, (10, 4), 1, "same", "second_conv")(x)
    x = layers.Dropout(dropout, name="second_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    return _dense(num_labels, "final_fc")(x)


def _low_latency_conv(x, num_labels, dropout):
    # cnn-one-fstride4: the filter spans all frames. As in the original, the two hidden dense
    # layers are linear (no activation), each followed by dropout.
    frames = x.shape[1]
    x = layers.Reshape((*x.shape[1:], 1), name="to_image")(x)
    x = _conv(186, (frames, 8), 1, "valid", "first_conv")(x)
    x = layers.Dropout(dropout, name="first_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = _dense(128, "first_fc")(x)
    x = layers.Dropout(dropout, name="second_dropout")(x)
    x = _dense(128, "second_fc")(x)
    x = layers.Dropout(dropout, name="final_dropout")(x)
    return _dense(num_labels, "final_fc")(x)


def _low_latency_svdf(x, num_labels, dropout, svdf_units=1280, svdf_rank=2):
    x = SVDF(svdf_units, svdf_rank, name="svdf")(x)
    x = layers.ReLU(name="first_relu")(x)
    x = layers.Dropout(dropout, name="first_dropout")(x)
    x = _dense(256, "first_fc")(x)
    x = layers.Dropout(dropout, name="second_dropout")(x)
    x = _dense(256, "second_fc")(x)
    x = layers.Dropout(dropout, name="final_dropout")(x)
    return _dense(num_labels, "final_fc")(x)


def _tiny_conv(x, num_labels, dropout):
    x = layers.Reshape((*x.shape[1:], 1), name="to_image")(x)
    x = _conv(8, (10, 8), 2, "same", "first_conv")(x)
    x = layers.Dropout(dropout, name="first_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    return _dense(num_labels, "final_fc")(x)


def _tiny_embedding_conv(x, num_labels, dropout):
    x = layers.Reshape((*x.shape[1:], 1), name="to_image")(x)
    x = _conv(8, (10, 8), 2, "same", "first_conv")(x)
    x = layers.Dropout(dropout, name="first_dropout")(x)
    x = _conv(8, (10, 8), 8, "same", "second_conv")(x)
    x = layers.Dropout(dropout, name="second_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    return _dense(num_labels, "final_fc")(x)


# (kernel, stride) of the depthwise-separable blocks of ds_cnn; residual where stride is 1.
DS_BLOCKS = ((5, 1), (7, 2), (9, 1), (11, 2), (13, 1))


def _ds_cnn(x, num_labels, dropout, ds_channels=64, ds_blocks=DS_BLOCKS):
    """Depthwise-separable temporal CNN in the style of kws_streaming's ds_tc_resnet /
    MatchboxNet: the feature bins are channels and every block is a depthwise convolution along
    time, a pointwise (1x1) convolution, batch norm, a residual connection and ReLU, followed by
    global average pooling and one dense layer. About 33k parameters with the defaults.

    The 2-D DS-CNN of "Hello Edge" is as accurate but its depthwise 2-D gradients are ~25x
    slower on a CPU with TensorFlow (measured: 2.4 s vs 0.09 s per batch of 100 on 2 cores)."""
    x = layers.Conv1D(ds_channels, 3, padding="same", use_bias=False, name="conv0")(x)
    x = layers.BatchNormalization(name="conv0_bn")(x)
    x = layers.ReLU(name="conv0_relu")(x)
    for i, (kernel, stride) in enumerate(ds_blocks, start=1):
        shortcut = x
        x = layers.DepthwiseConv1D(kernel, strides=stride, padding="same", use_bias=False, name=f"dw{i}")(x)
        x = layers.Conv1D(ds_channels, 1, use_bias=False, name=f"pw{i}")(x)
        x = layers.BatchNormalization(name=f"block{i}_bn")(x)
        if stride == 1:
            x = layers.Add(name=f"block{i}_residual")([x, shortcut])
        x = layers.ReLU(name=f"block{i}_relu")(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_labels, name="final_fc")(x)


def _embedding_head(x, num_labels, dropout, head_units=128):
    """A small trainable head on frozen speech embeddings ([windows, 96] per clip), in the spirit
    of openWakeWord's classifier: flatten, two dense layers with layer norm, then logits."""
    x = layers.Flatten(name="flatten")(x)
    for i in (1, 2):
        x = layers.Dense(head_units, name=f"fc{i}")(x)
        x = layers.LayerNormalization(name=f"fc{i}_norm")(x)
        x = layers.ReLU(name=f"fc{i}_relu")(x)
        x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    return layers.Dense(num_labels, name="final_fc")(x)


_BUILDERS = {
    "single_fc": _single_fc,
    "conv": _conv_model,
    "low_latency_conv": _low_latency_conv,
    "low_latency_svdf": _low_latency_svdf,
    "tiny_conv": _tiny_conv,
    "tiny_embedding_conv": _tiny_embedding_conv,
    "ds_cnn": _ds_cnn,
    "embedding_head": _embedding_head,
}


def build_model(architecture: str, feature_shape, num_labels: int, dropout: float = 0.5, **options) -> keras.Model:
    """Build ``architecture`` for inputs ``[frames, bins]``; the model outputs logits.

    ``options`` are architecture-specific sizes (``svdf_units``, ``svdf_rank``, ``ds_channels``,
    ``ds_blocks`` ((kernel, stride) pairs), ``head_units``); the defaults are the original's / the documented ones.
    """
    if architecture not in _BUILDERS:
        raise ValueError(f"unknown model architecture {architecture!r}; expected one of {', '.join(_BUILDERS)}")
    feature_shape = tuple(int(d) for d in feature_shape)
    if len(feature_shape) != 2 or min(feature_shape) < 1:
        raise ValueError(f"feature_shape must be [frames, bins] with positive sizes, got {feature_shape}")
    if num_labels < 2:
        raise ValueError(f"num_labels must be at least 2, got {num_labels}")
    inputs = keras.Input(shape=feature_shape, name="features")
    logits = _BUILDERS[architecture](inputs, num_labels, float(dropout), **options)
    return keras.Model(inputs, logits, name=architecture)


def count_parameters(model: keras.Model) -> int:
    """Trainable parameters (what the original's figures count)."""
    return int(sum(math.prod(v.shape) for v in model.trainable_weights))


def with_softmax(logits_model: keras.Model) -> keras.Model:
    """Wrap a logits model so that it outputs class scores, like the original's labels_softmax."""
    inputs = keras.Input(shape=logits_model.input_shape[1:], name="features")
    scores = layers.Softmax(name="labels_softmax")(logits_model(inputs))
    return keras.Model(inputs, scores, name=f"{logits_model.name}_scores")


_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def save_model_file(model: keras.Model, path) -> None:
    """Save a ``.keras`` file that is byte-identical whenever the weights are.

    Keras stamps the file with the save time, zip member times and Python object ids
    (``shared_object_id``), so identical training runs would give different files and DVC would
    see a changed model. This rewrites those three things canonically; the file loads as before.
    """
    import io
    import json
    import re
    import zipfile

    buffer = io.BytesIO()
    model.save(path)
    with zipfile.ZipFile(path) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    ids: dict[str, int] = {}

    def renumber(match: re.Match) -> str:
        """Object ids in order of first appearance: same sharing, no memory addresses."""
        return f'"shared_object_id": {ids.setdefault(match.group(1), len(ids) + 1)}'

    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info, data in members:
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta.pop("date_saved", None)
                data = json.dumps(meta, sort_keys=True).encode()
            elif info.filename == "config.json":
                text = re.sub(r'"shared_object_id": (\d+)', renumber, data.decode())
                data = text.encode()
            member = zipfile.ZipInfo(info.filename, date_time=_ZIP_EPOCH)
            member.external_attr = 0o644 << 16
            target.writestr(member, data, compress_type=info.compress_type)
    with open(path, "wb") as handle:
        handle.write(buffer.getvalue())


def load_model_file(path) -> keras.Model:
    """Load a ``.keras`` file (this module registers the custom layers), with clear errors."""
    from pathlib import Path

    from pipeline.cli import StageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (run the train stage first)")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for a damaged archive
        raise StageError(f"{path}: cannot load the model ({exc})") from None
