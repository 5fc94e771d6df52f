"""Model files: canonical ``.keras`` saving, loading with clear errors, the softmax wrapper."""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from pathlib import Path

import keras
from keras import layers

from pipeline.core.errors import StageError, first_line
from pipeline.models import layers as _custom_layers  # noqa: F401  (registers SVDF for loading)

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def count_parameters(model: keras.Model) -> int:
    """Trainable parameters (what the original's figures count)."""
    return int(sum(math.prod(v.shape) for v in model.trainable_weights))


def with_softmax(logits_model: keras.Model) -> keras.Model:
    """Wrap a logits model so that it outputs class scores, like the original's labels_softmax.

    A committee's ``[batch, heads, labels]`` logits give the mean of the heads' softmaxes."""
    inputs = keras.Input(shape=logits_model.input_shape[1:], name="features")
    logits = logits_model(inputs)
    if len(logits.shape) == 3:
        per_head = layers.Softmax(axis=-1, name="head_softmax")(logits)
        scores = layers.GlobalAveragePooling1D(name="labels_softmax")(per_head)
    else:
        scores = layers.Softmax(name="labels_softmax")(logits)
    return keras.Model(inputs, scores, name=f"{logits_model.name}_scores")


def save_model_file(model: keras.Model, path) -> None:
    """Save a ``.keras`` file that is byte-identical whenever the weights are.

    Keras stamps the file with the save time, zip member times and Python object ids
    (``shared_object_id``), so identical training runs would give different files and DVC would
    see a changed model. This rewrites those three things canonically; the file loads as before.
    """
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


def check_keras_file(path: Path) -> None:
    """A StageError naming ``path`` unless it is a whole ``.keras`` archive.

    Keras answers a damaged or truncated file with "File not found", which misleads: check the
    zip (every member's CRC) and that it holds a model config first.
    """
    try:
        if not path.stat().st_size:
            raise StageError(f"{path}: empty file, not a .keras model")
        if not zipfile.is_zipfile(path):
            raise StageError(
                f"{path}: not a .keras model (not a zip archive: damaged, truncated "
                "or another format)"
            )
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                raise StageError(f"{path}: not a .keras model (a zip archive without config.json)")
            bad = archive.testzip()
    except StageError:
        raise
    except PermissionError as exc:
        raise StageError(f"{path}: cannot read ({exc.strerror})") from None
    except Exception as exc:  # BadZipFile, zlib.error, EOFError, OSError ... of a damaged archive
        raise StageError(f"{path}: damaged .keras archive ({type(exc).__name__}: {exc})") from None
    if bad is not None:
        raise StageError(f"{path}: damaged .keras archive (member {bad!r} fails its checksum)")


def load_model_file(path) -> keras.Model:
    """Load a ``.keras`` file (custom layers registered), with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (run the train stage first)")
    check_keras_file(path)
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for a damaged archive
        raise StageError(f"{path}: cannot load the model ({first_line(exc)})") from None


def batch_predictor(model: keras.Model):
    """A function ``(x, batch_size) -> outputs`` that runs ``model`` (inference mode) compiled,
    batch by batch, on a numpy array."""
    import numpy as np
    import tensorflow as tf

    call = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)

    def predict(x, batch_size: int):
        x = np.asarray(x, dtype=np.float32)
        if not len(x):
            return np.zeros((0, int(model.output_shape[-1])), np.float32)
        return np.concatenate(
            [
                np.asarray(call(tf.constant(x[i : i + batch_size])))
                for i in range(0, len(x), batch_size)
            ]
        )

    return predict
