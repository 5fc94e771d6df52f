"""The freeze stage's SavedModel (WAV bytes in, TensorFlow alone)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.errors import StageError, first_line
from pipeline.core.tf import tensorflow
from pipeline.inference.base import BATCH, KwsModel
from pipeline.inference.export_files import features_of, read_frontend


class SavedModelModel(KwsModel):
    """The freeze stage's SavedModel: signatures serving_default (WAV bytes), audio, and, for
    frame-reusable front ends, features and frame_features."""

    kind = "saved_model"

    def __init__(self, path: Path, labels: list[str]):
        tf = tensorflow()
        self.tf = tf
        self.path = path
        try:
            self.loaded = tf.saved_model.load(str(path))
        except Exception as exc:  # protobuf DecodeError, OSError, ValueError, ...
            raise StageError(f"{path}: cannot load the SavedModel ({first_line(exc)})") from None
        sigs = self.loaded.signatures
        if "serving_default" not in sigs:
            raise StageError(f"{path}: SavedModel has no serving_default signature")
        self.labels = labels
        frontend_path = path / "assets" / "frontend.json"
        if not frontend_path.is_file():
            raise StageError(f"{path}: SavedModel lacks its assets/frontend.json")
        self.frontend = read_frontend(frontend_path)
        cfg = features_of(frontend_path, self.frontend)  # the sizes beside it agree with these
        self.sample_rate = int(cfg.sample_rate)
        self.desired_samples = int(cfg.desired_samples)
        if "features" in sigs and "frame_features" in sigs:
            self.frames_per_clip = int(cfg.feature_shape[0])
            self.frame_stride_samples = int(cfg.window_stride_samples)
        out = sigs["serving_default"].structured_outputs["labels_softmax"]
        self._check_labels(int(out.shape[-1]), path)

    def predict_wav_bytes(self, data: bytes, name: str = "<bytes>") -> np.ndarray:
        # Checked (a clear WavError) and re-encoded in the plain form DecodeWav accepts.
        wav = self.canonical_wav(data, name)
        out = self.loaded.signatures["serving_default"](wav_data=self.tf.constant(wav))
        return np.asarray(out["labels_softmax"])[0]

    def predict_audio(self, audio: np.ndarray) -> np.ndarray:
        audio = self._check_audio(audio)
        fn = self.loaded.signatures["audio"]
        out = [
            np.asarray(fn(audio=self.tf.constant(audio[i : i + BATCH]))["labels_softmax"])
            for i in range(0, len(audio), BATCH)
        ]
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
        out = [
            np.asarray(fn(features=self.tf.constant(features[i : i + BATCH]))["labels_softmax"])
            for i in range(0, len(features), BATCH)
        ]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)
