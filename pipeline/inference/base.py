"""The one interface every model format answers (see loader.py for the formats).

Tools (label_wav, evaluate_dir, streaming, benchmarks) must not care which format they were given,
so ``load_model`` picks a backend from the path and every backend answers the same calls:
``labels``, ``sample_rate``, ``desired_samples``, ``predict_wav_bytes(bytes) -> scores[L]`` and
``predict_audio(float32[N, samples]) -> scores[N, L]``. Backends whose front end is a plain
frame-by-frame feature extractor also expose frame reuse for streaming: ``frame_features(audio_1d)
-> [frames, bins]``, ``frames_per_clip``, ``frame_stride_samples`` and
``predict_features(float32[N, frames, bins]) -> scores[N, L]`` (``supports_frames`` says which).
Where a recording's frames cannot be computed piece by piece (``frames_are_local`` false),
``frame_stream()`` may give them for audio in chunks (the front end's FrameStream).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.audio import canonical_wav_bytes, decode_wav_bytes, fit_to_length
from pipeline.core.errors import StageError
from pipeline.frontends import FeatureConfig, features_numpy
from pipeline.frontends.base import FrontEnd, ViewStreams, side_by_side

BATCH = 256
# The keys of the ``features`` section, as meta.json and frontend.json record them.
FEATURE_KEYS = tuple(f.name for f in dataclasses.fields(FeatureConfig))


def feature_params(source: dict[str, Any]) -> dict[str, Any]:
    """The ``features`` params section out of a meta.json / frontend.json dict."""
    section = source.get("features", source)
    missing = [k for k in FEATURE_KEYS if k not in section]
    if missing:
        raise StageError(f"feature parameters are missing {missing}")
    return {k: section[k] for k in FEATURE_KEYS}


def feature_config(params: dict[str, Any]) -> FeatureConfig:
    return FeatureConfig.from_dict(feature_params(params))


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

    @property
    def frames_are_local(self) -> bool:
        """True when each frame of ``frame_features`` comes from its own analysis window alone,
        so that the frames of a piece of a recording (starting at a frame) are the whole
        recording's: a long recording's frames can then be computed piece by piece. True of the
        spectrogram front ends every backend but FeatureModel computes in a graph."""
        return self.supports_frames

    def frame_stream(self):
        """A FrameStream (frontends/base.py) of ``frame_features`` for audio given in chunks, for
        a model whose frames are not local; None when there is none (or no need: local frames)."""
        return None

    def decode(self, data: bytes, name: str = "<bytes>") -> np.ndarray:
        """WAV bytes -> float32 [desired_samples] (padded or truncated like the original)."""
        samples, _ = decode_wav_bytes(data, name, self.sample_rate)
        return fit_to_length(samples, self.desired_samples).astype(np.float32)

    def canonical_wav(self, data: bytes, name: str = "<bytes>") -> bytes:
        """The WAV's samples as plain PCM WAV bytes, for backends whose graph decodes WAV bytes
        (TensorFlow's DecodeWav rejects valid forms that pipeline.core.audio reads)."""
        return canonical_wav_bytes(data, name, self.sample_rate)

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


class FeatureModel(KwsModel):
    """A model whose input is features computed by pipeline.frontends (Keras, TFLite).

    ``views`` (an export's frontend.json; [1.0] otherwise): the vocal-tract views its scores are
    averaged over (``export.views``). With more than one, ``features`` and ``frame_features`` hold
    every view's features side by side (``[..., bins x views]``) and ``predict_features`` takes
    them so, the mean of ``head_scores`` over the views; features of one view (``bins`` wide, as
    featurize stores them) get ``head_scores`` alone."""

    views: tuple[float, ...] = (1.0,)

    def _setup_features(self, params: dict[str, Any]) -> None:
        self.feature_params = feature_params(params)
        self.cfg = feature_config(self.feature_params)
        self.sample_rate = int(self.cfg.sample_rate)
        self.desired_samples = int(self.cfg.desired_samples)
        self.feature_shape = tuple(int(v) for v in self.cfg.feature_shape)
        self.set_views(params.get("views", [1.0]))
        if self.cfg.frontend.frame_reuse:
            self.frames_per_clip = self.feature_shape[0]
            self.frame_stride_samples = int(self.cfg.frontend.stream_stride_samples(self.cfg))

    def set_views(self, views) -> None:
        """Score with the vocal-tract ``views`` (e.g. a trained model as its export will)."""
        self.views = tuple(float(v) for v in views)
        self.view_frontends = [self.cfg.frontend.with_view(v) for v in self.views]

    @property
    def frames_are_local(self) -> bool:
        # A front end with its own stream_features (the speech embedding: padding, a level
        # clamped against the loudest frame so far) sees more than each frame's window.
        own = type(self.cfg.frontend).stream_features is not FrontEnd.stream_features
        return self.supports_frames and not own

    def frame_stream(self):
        if not self.supports_frames or self.frames_are_local:
            return None
        streams = [fe.frame_stream(self.cfg) for fe in self.view_frontends]
        return streams[0] if len(streams) == 1 else ViewStreams(streams)

    def features(self, audio: np.ndarray) -> np.ndarray:
        """float32 [N, desired_samples] -> [N, frames, bins x views] with the training front end."""
        audio = self._check_audio(audio)
        return side_by_side(
            [features_numpy(audio, self.cfg, frontend=fe) for fe in self.view_frontends]
        )

    def frame_features(self, audio: np.ndarray) -> np.ndarray:
        if not self.supports_frames:
            return super().frame_features(audio)
        return side_by_side([fe.stream_features(audio, self.cfg) for fe in self.view_frontends])

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float32)
        width, count = self.feature_shape[-1], len(self.views)
        if count == 1 or features.shape[-1] != width * count:
            return self.head_scores(features)
        return np.mean(
            [self.head_scores(features[..., v * width : (v + 1) * width]) for v in range(count)],
            axis=0,
        ).astype(np.float32)

    def head_scores(self, features: np.ndarray) -> np.ndarray:
        """The model's scores of features of one view ``[N, frames, bins]``."""
        return KwsModel.predict_features(self, features)

    def predict_audio(self, audio: np.ndarray) -> np.ndarray:
        audio = self._check_audio(audio)
        out = [
            self.predict_features(self.features(audio[i : i + BATCH]))
            for i in range(0, len(audio), BATCH)
        ]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)
