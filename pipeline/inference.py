"""Load any model this project makes, or the original frozen graph, behind one interface.

Tools (label_wav, evaluate_dir, streaming, benchmarks) must not care which format they were given,
so ``load_model`` picks a backend from the path and every backend answers the same calls:
``labels``, ``sample_rate``, ``desired_samples``, ``predict_wav_bytes(bytes) -> scores[L]`` and
``predict_audio(float32[N, samples]) -> scores[N, L]``. Backends whose front end is a plain
frame-by-frame feature extractor also expose frame reuse for streaming: ``frame_features(audio_1d)
-> [frames, bins]``, ``frames_per_clip``, ``frame_stride_samples`` and
``predict_features(float32[N, frames, bins]) -> scores[N, L]`` (``supports_frames`` says which).

Formats: ``models/export/`` (or its ``saved_model/``), a ``.tflite`` file (front end from the
``frontend.json`` beside it), a ``.keras`` file or ``models/keras/`` folder, an embedding bundle
folder (``bundle.json``), and the original tutorial's frozen GraphDef (``.pb``).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.audio import decode_wav_bytes, fit_to_length
from pipeline.cli import StageError, quiet_tensorflow
from pipeline.labels import read_labels

log = logging.getLogger(__name__)

BATCH = 256
FEATURE_KEYS = (
    "sample_rate", "clip_duration_ms", "window_size_ms", "window_stride_ms", "feature_bin_count",
    "preprocess",
)
# Front ends whose features of a long signal equal, frame for frame, those of each clip.
FRAME_REUSE_PREPROCESS = ("mfcc", "average")


def _tf():
    quiet_tensorflow()
    import tensorflow as tf

    return tf


def tflite_interpreter(**kwargs):
    """tf.lite.Interpreter without its deprecation warning (ai_edge_litert is not a dependency)."""
    import warnings

    tf = _tf()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(**kwargs)


def as_scores(values: np.ndarray) -> np.ndarray:
    """Return probabilities: rows already summing to 1 pass through, logits get a softmax."""
    values = np.asarray(values, dtype=np.float32)
    if values.size and (values.min() >= 0) and np.allclose(values.sum(axis=-1), 1.0, atol=2e-2):
        return values
    shifted = values - values.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def feature_params(source: dict[str, Any]) -> dict[str, Any]:
    """The ``features`` params section out of a meta.json / frontend.json dict."""
    section = source.get("features", source)
    missing = [k for k in FEATURE_KEYS if k not in section]
    if missing:
        raise StageError(f"feature parameters are missing {missing}")
    return {k: section[k] for k in FEATURE_KEYS}


def feature_config(params: dict[str, Any]):
    from pipeline.features import FeatureConfig

    return FeatureConfig.from_params(feature_params(params))


class KwsModel:
    """Common behaviour; subclasses implement ``predict_audio`` (and the frame calls if able)."""

    kind = "model"
    labels: list[str]
    sample_rate: int
    desired_samples: int
    frames_per_clip: int | None = None
    frame_stride_samples: int | None = None

    @property
    def supports_frames(self) -> bool:
        return self.frames_per_clip is not None

    def decode(self, data: bytes, name: str = "<bytes>") -> np.ndarray:
        """WAV bytes -> float32 [desired_samples] (padded or truncated like the original)."""
        samples, _ = decode_wav_bytes(data, name, self.sample_rate)
        return fit_to_length(samples, self.desired_samples).astype(np.float32)

    def predict_wav_bytes(self, data: bytes, name: str = "<bytes>") -> np.ndarray:
        return self.predict_audio(self.decode(data, name)[None, :])[0]

    def predict_wav_file(self, path) -> np.ndarray:
        return self.predict_wav_bytes(Path(path).read_bytes(), str(path))

    def predict_audio(self, audio: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def frame_features(self, audio: np.ndarray) -> np.ndarray:
        raise StageError(f"{self.kind} model does not expose frame features")

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        raise StageError(f"{self.kind} model does not take features")

    def _check_audio(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 1:
            audio = audio[None, :]
        if audio.ndim != 2 or audio.shape[1] != self.desired_samples:
            raise StageError(
                f"audio must be [N, {self.desired_samples}] float32, got {list(audio.shape)}"
            )
        return audio

    def _check_labels(self, num_outputs: int, where) -> None:
        if len(self.labels) != num_outputs:
            raise StageError(
                f"{where}: the model has {num_outputs} outputs but its labels file lists "
                f"{len(self.labels)} labels"
            )


# --------------------------------------------------------------------------- feature-based models
class _FeatureModel(KwsModel):
    """A model whose input is features computed by pipeline.features (Keras, TFLite)."""

    def _setup_features(self, params: dict[str, Any]) -> None:
        self.feature_params = feature_params(params)
        self.cfg = feature_config(self.feature_params)
        self.sample_rate = int(self.cfg.sample_rate)
        self.desired_samples = int(self.cfg.desired_samples)
        self.feature_shape = tuple(int(v) for v in self.cfg.feature_shape)
        if self.cfg.preprocess in FRAME_REUSE_PREPROCESS:
            self.frames_per_clip = self.feature_shape[0]
            self.frame_stride_samples = int(self.cfg.window_stride_samples)
        self._features_fn = None

    def features(self, audio: np.ndarray) -> np.ndarray:
        """float32 [N, desired_samples] -> [N, frames, bins] with the training front end."""
        from pipeline.features import features_numpy

        return np.asarray(features_numpy(self._check_audio(audio), self.cfg), dtype=np.float32)

    def frame_features(self, audio: np.ndarray) -> np.ndarray:
        if not self.supports_frames:
            return super().frame_features(audio)
        from pipeline.features import compute_features

        audio = np.asarray(audio, dtype=np.float32).reshape(1, -1)
        return np.asarray(compute_features(audio, self.cfg))[0]

    def predict_audio(self, audio: np.ndarray) -> np.ndarray:
        audio = self._check_audio(audio)
        out = [self.predict_features(self.features(audio[i : i + BATCH]))
               for i in range(0, len(audio), BATCH)]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)


class KerasModel(_FeatureModel):
    kind = "keras"

    def __init__(self, path: Path, labels: list[str], params: dict[str, Any]):
        tf = _tf()
        from pipeline.models import load_model_file

        self.path = path
        self.model = load_model_file(path)
        self.labels = labels
        self._setup_features(params)
        self._check_labels(int(self.model.output_shape[-1]), path)
        self._call = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float32)
        out = [np.asarray(self._call(features[i : i + BATCH])) for i in range(0, len(features), BATCH)]
        return as_scores(np.concatenate(out)) if out else np.zeros((0, len(self.labels)), np.float32)


class TFLiteModel(_FeatureModel):
    """A .tflite whose input is either audio [1, desired_samples] or features [1, frames, bins]."""

    kind = "tflite"

    def __init__(self, path: Path, labels: list[str], params: dict[str, Any]):
        self.interpreter = tflite_interpreter(model_path=str(path), num_threads=1)
        self.interpreter.allocate_tensors()
        self.path = path
        self.labels = labels
        self._setup_features(params)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.takes_audio = len(self.input["shape"]) == 2
        if self.takes_audio:
            self.frames_per_clip = None
            self.frame_stride_samples = None
        self._check_labels(int(self.output["shape"][-1]), path)

    def _run(self, x: np.ndarray) -> np.ndarray:
        scale, zero = self.input["quantization"]
        if self.input["dtype"] != np.float32:
            info = np.iinfo(self.input["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        self.interpreter.set_tensor(self.input["index"], x.astype(self.input["dtype"])[None])
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])[0]
        scale, zero = self.output["quantization"]
        if self.output["dtype"] != np.float32:
            y = (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        if self.takes_audio:
            return super().predict_features(features)
        features = np.asarray(features, dtype=np.float32)
        rows = [self._run(f) for f in features]
        return as_scores(np.stack(rows)) if rows else np.zeros((0, len(self.labels)), np.float32)

    def predict_audio(self, audio: np.ndarray) -> np.ndarray:
        if not self.takes_audio:
            return super().predict_audio(audio)
        audio = self._check_audio(audio)
        rows = [self._run(a) for a in audio]
        return as_scores(np.stack(rows)) if rows else np.zeros((0, len(self.labels)), np.float32)


# ------------------------------------------------------------------------------------ SavedModel
class SavedModelModel(KwsModel):
    """The freeze stage's SavedModel: signatures serving_default (WAV bytes), audio, and, for
    frame-reusable front ends, features and frame_features."""

    kind = "saved_model"

    def __init__(self, path: Path, labels: list[str]):
        tf = _tf()
        self.tf = tf
        self.path = path
        self.loaded = tf.saved_model.load(str(path))
        sigs = self.loaded.signatures
        if "serving_default" not in sigs:
            raise StageError(f"{path}: SavedModel has no serving_default signature")
        self.labels = labels
        frontend_path = path / "assets" / "frontend.json"
        if not frontend_path.is_file():
            raise StageError(f"{path}: SavedModel lacks its assets/frontend.json")
        frontend = _read_json(frontend_path)
        self.frontend = frontend
        self.sample_rate = int(frontend["sample_rate"])
        self.desired_samples = int(frontend["desired_samples"])
        if "features" in sigs and "frame_features" in sigs:
            self.frames_per_clip = int(frontend["feature_shape"][0])
            self.frame_stride_samples = int(frontend["frame_stride_samples"])
        out = sigs["serving_default"].structured_outputs["labels_softmax"]
        self._check_labels(int(out.shape[-1]), path)

    def predict_wav_bytes(self, data: bytes, name: str = "<bytes>") -> np.ndarray:
        self.decode(data, name)  # validate the file (clear WavError) before TensorFlow sees it
        out = self.loaded.signatures["serving_default"](wav_data=self.tf.constant(data))
        return np.asarray(out["labels_softmax"])[0]

    def predict_audio(self, audio: np.ndarray) -> np.ndarray:
        audio = self._check_audio(audio)
        fn = self.loaded.signatures["audio"]
        out = [np.asarray(fn(audio=self.tf.constant(audio[i : i + BATCH]))["labels_softmax"])
               for i in range(0, len(audio), BATCH)]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

    def frame_features(self, audio: np.ndarray) -> np.ndarray:
        if not self.supports_frames:
            return super().frame_features(audio)
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        return np.asarray(self.loaded.signatures["frame_features"](audio=audio)["features"])

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        if not self.supports_frames:
            return super().predict_features(features)
        fn = self.loaded.signatures["features"]
        features = np.asarray(features, dtype=np.float32)
        out = [np.asarray(fn(features=self.tf.constant(features[i : i + BATCH]))["labels_softmax"])
               for i in range(0, len(features), BATCH)]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)


# ------------------------------------------------------------------------ original frozen graph
class FrozenGraphModel(KwsModel):
    """The original tutorial's frozen GraphDef (wav_data -> ... -> Mfcc -> labels_softmax).

    WAV bytes go through the graph's own input, as in the original label_wav. For batches and
    streaming the graph is imported a second time with its ``Mfcc:0`` tensor replaced by a
    [None, frames, bins] placeholder, and features are computed with the same AudioSpectrogram and
    Mfcc ops and attributes that the graph holds.
    """

    kind = "frozen_graph"
    INPUT = "wav_data:0"
    OUTPUT = "labels_softmax:0"

    def __init__(self, path: Path, labels: list[str]):
        tf = _tf()
        self.tf = tf
        self.path = path
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(path.read_bytes())
        except Exception as exc:  # protobuf raises its own DecodeError
            raise StageError(f"{path}: not a TensorFlow GraphDef ({exc})") from None
        nodes = {n.name: n for n in graph_def.node}
        for name in ("wav_data", "decoded_sample_data", "AudioSpectrogram", "Mfcc", "labels_softmax"):
            if name not in nodes:
                raise StageError(f"{path}: frozen graph has no node {name!r}; expected the "
                                 "original speech_commands freeze.py layout")
        decode, spec, mfcc = nodes["decoded_sample_data"], nodes["AudioSpectrogram"], nodes["Mfcc"]
        self.desired_samples = int(decode.attr["desired_samples"].i)
        self.spectrogram_attrs = dict(
            window_size=int(spec.attr["window_size"].i), stride=int(spec.attr["stride"].i),
            magnitude_squared=bool(spec.attr["magnitude_squared"].b),
        )
        self.mfcc_attrs = dict(
            upper_frequency_limit=float(mfcc.attr["upper_frequency_limit"].f),
            lower_frequency_limit=float(mfcc.attr["lower_frequency_limit"].f),
            filterbank_channel_count=int(mfcc.attr["filterbank_channel_count"].i),
            dct_coefficient_count=int(mfcc.attr["dct_coefficient_count"].i),
        )
        # The graph's DecodeWav reads the rate from the file; the model was trained at 16 kHz.
        self.sample_rate = 16000
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.import_graph_def(graph_def, name="")
            mfcc_shape = self.graph.get_tensor_by_name("Mfcc:0").shape
            self.features_in = tf.compat.v1.placeholder(
                tf.float32, [None, *mfcc_shape[1:]], name="batched_features")
            (self.features_out,) = tf.import_graph_def(
                graph_def, input_map={"Mfcc:0": self.features_in},
                return_elements=[self.OUTPUT], name="batched")
        self.session = tf.compat.v1.Session(graph=self.graph)
        self.frames_per_clip = int(mfcc_shape[1])
        self.feature_shape = (int(mfcc_shape[1]), int(mfcc_shape[2]))
        self.frame_stride_samples = self.spectrogram_attrs["stride"]
        self.labels = labels
        self._check_labels(int(self.graph.get_tensor_by_name(self.OUTPUT).shape[-1]), path)

    def predict_wav_bytes(self, data: bytes, name: str = "<bytes>") -> np.ndarray:
        self.decode(data, name)  # a clear WavError instead of a TensorFlow op error
        out = self.session.run(self.OUTPUT, {self.INPUT: data})
        return np.asarray(out, dtype=np.float32)[0]

    def _mfcc(self, audio_columns: np.ndarray) -> np.ndarray:
        """[samples, channels] -> [channels, frames, bins]; each channel is one signal."""
        tf = self.tf
        spectrogram = tf.raw_ops.AudioSpectrogram(input=audio_columns, **self.spectrogram_attrs)
        return np.asarray(tf.raw_ops.Mfcc(spectrogram=spectrogram, sample_rate=self.sample_rate,
                                          **self.mfcc_attrs))

    def features(self, audio: np.ndarray) -> np.ndarray:
        return self._mfcc(np.ascontiguousarray(self._check_audio(audio).T))

    def frame_features(self, audio: np.ndarray) -> np.ndarray:
        return self._mfcc(np.asarray(audio, dtype=np.float32).reshape(-1, 1))[0]

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float32)
        out = [self.session.run(self.features_out, {self.features_in: features[i : i + BATCH]})
               for i in range(0, len(features), BATCH)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, len(self.labels)), np.float32)

    def predict_audio(self, audio: np.ndarray) -> np.ndarray:
        audio = self._check_audio(audio)
        out = [self.predict_features(self.features(audio[i : i + BATCH]))
               for i in range(0, len(audio), BATCH)]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)


# ---------------------------------------------------------------------------------- load_model
def _find_labels(path: Path, labels_path, candidates: list[Path]) -> list[str]:
    if labels_path is not None:
        return read_labels(labels_path)
    for candidate in candidates:
        if candidate.is_file():
            return read_labels(candidate)
    raise StageError(
        f"{path}: no labels file found (looked for "
        + ", ".join(str(c) for c in candidates) + "); pass --labels"
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except ValueError as exc:
        raise StageError(f"{path}: not valid JSON ({exc})") from None


def _keras_feature_params(folder: Path) -> dict[str, Any]:
    """Feature params of a trained Keras model: its meta.json, else params.yaml."""
    meta = folder / "meta.json"
    if meta.is_file():
        data = _read_json(meta)
        for key in ("features", "feature_params"):
            if isinstance(data.get(key), dict):
                return feature_params(data[key])
    from pipeline.config import load_params

    log.warning("%s has no feature parameters; using params.yaml", meta)
    return load_params(sections=["features"])["features"]


def load_model(path, labels_path=None) -> KwsModel:
    """Open any of the project's model formats or the original frozen graph (see module doc)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path}")
    if path.is_dir():
        if (path / "bundle.json").is_file():
            # An export whose front end cannot live in a TF graph (speech embedding): its float
            # TFLite head plus the front end that pipeline.features computes.
            bundle = _read_json(path / "bundle.json")
            labels = _find_labels(path, labels_path, [path / bundle.get("labels", "labels.txt")])
            frontend = _read_json(path / bundle.get("frontend", "frontend.json"))
            return TFLiteModel(path / bundle.get("model", "model_float.tflite"), labels, frontend)
        if (path / "saved_model.pb").is_file():
            labels = _find_labels(path, labels_path, [path / "assets" / "labels.txt",
                                                      path / "labels.txt", path.parent / "labels.txt"])
            return SavedModelModel(path, labels)
        if (path / "saved_model" / "saved_model.pb").is_file():
            return load_model(path / "saved_model", labels_path or (
                path / "labels.txt" if (path / "labels.txt").is_file() else None))
        if (path / "model.keras").is_file():
            return load_model(path / "model.keras", labels_path)
        raise StageError(f"{path}: folder holds no saved_model.pb, saved_model/, model.keras "
                         "or bundle.json")
    suffix = path.suffix.lower()
    if suffix == ".keras":
        labels = _find_labels(path, labels_path, [path.parent / "labels.txt"])
        return KerasModel(path, labels, _keras_feature_params(path.parent))
    if suffix == ".tflite":
        labels = _find_labels(path, labels_path, [path.parent / "labels.txt"])
        frontend = path.parent / "frontend.json"
        if not frontend.is_file():
            raise StageError(f"{path}: no frontend.json beside it (the feature parameters)")
        return TFLiteModel(path, labels, _read_json(frontend))
    if suffix == ".pb":
        if path.name == "saved_model.pb":
            return load_model(path.parent, labels_path)
        stem = path.name[: -len(".pb")]
        candidates = [path.with_name(stem.replace("_frozen", "") + "_labels.txt"),
                      path.with_name(stem + "_labels.txt"), path.parent / "labels.txt"]
        return FrozenGraphModel(path, _find_labels(path, labels_path, candidates))
    raise StageError(f"{path}: unknown model format (expected a folder, .keras, .tflite or .pb)")
