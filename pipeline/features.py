"""Audio front ends: the features a model sees for one clip.

One place computes features for training (featurize), export (freeze) and inference, so the model
always sees exactly what it was trained on. The modes follow the original input_data.py:

- ``mfcc``: AudioSpectrogram (power) -> Mfcc (20-4000 Hz, 40 filterbank channels).
- ``average``: the power spectrogram's frequency bins average-pooled into buckets of
  ``floor(fft_bins / feature_bin_count)`` bins ("SAME" padding), so the width is
  ``ceil(fft_bins / that)`` -- 43, not 40, with the defaults, exactly as the original.
- ``micro``: the TFLite Micro audio front end (125-7500 Hz, PCAN, log), output * 10/256.
- ``embedding``: Google's speech embedding (see pipeline/embedding.py); not TF ops, computed once
  per clip by featurize with the TFLite interpreter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.config import ParamError, validate

MFCC_LOWER_HZ = 20.0
MFCC_UPPER_HZ = 4000.0
MFCC_CHANNELS = 40
MICRO_LOWER_HZ = 125.0
MICRO_UPPER_HZ = 7500.0
MICRO_OUTPUT_SCALE = 10.0 / 256.0


def _next_power_of_two(x: int) -> int:
    return 1 if x == 0 else 2 ** (int(x) - 1).bit_length()


@dataclass(frozen=True)
class FeatureConfig:
    """Feature parameters plus the sizes derived from them (as models.prepare_model_settings)."""

    sample_rate: int = 16000
    clip_duration_ms: int = 1000
    window_size_ms: float = 30
    window_stride_ms: float = 10
    feature_bin_count: int = 40
    preprocess: str = "mfcc"

    def __post_init__(self):
        if self.window_size_samples < 1 or self.window_stride_samples < 1:
            raise ParamError(
                "params: features.window_size_ms and window_stride_ms must give at least one "
                f"sample at {self.sample_rate} Hz"
            )
        if self.preprocess == "average" and self.average_window_width < 1:
            raise ParamError(
                f"params: features.feature_bin_count = {self.feature_bin_count} exceeds the "
                f"{self.fft_bin_count} spectrogram bins; 'average' needs at most that many"
            )
        if self.preprocess == "micro":
            for key in ("window_size_ms", "window_stride_ms"):
                ms = self.samples_to_ms(getattr(self, key.replace("_ms", "_samples")))
                if ms != int(ms):
                    raise ParamError(
                        f"params: features.{key} must be a whole number of milliseconds for "
                        f"'micro' (the TFLite Micro front end takes integer ms), got {ms}"
                    )
        if self.preprocess == "embedding" and self.sample_rate != 16000:
            raise ParamError("params: features.preprocess 'embedding' needs sample_rate 16000")

    @classmethod
    def from_params(cls, features: dict[str, Any]) -> "FeatureConfig":
        """Build from ``params["features"]`` (validated against the schema first)."""
        validate({"features": dict(features)}, ["features"])
        return cls(**features)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "clip_duration_ms": self.clip_duration_ms,
            "window_size_ms": self.window_size_ms,
            "window_stride_ms": self.window_stride_ms,
            "feature_bin_count": self.feature_bin_count,
            "preprocess": self.preprocess,
        }

    def samples_to_ms(self, samples: int) -> float:
        return samples * 1000 / self.sample_rate

    @property
    def desired_samples(self) -> int:
        return int(self.sample_rate * self.clip_duration_ms / 1000)

    @property
    def window_size_samples(self) -> int:
        return int(self.sample_rate * self.window_size_ms / 1000)

    @property
    def window_stride_samples(self) -> int:
        return int(self.sample_rate * self.window_stride_ms / 1000)

    def frames_for(self, samples: int) -> int:
        """Frames that ``samples`` of audio give: 1 + (samples - window) // stride (0 if short)."""
        if self.preprocess == "embedding":
            from pipeline import embedding

            return embedding.windows_for(samples)
        if samples < self.window_size_samples:
            return 0
        return 1 + (samples - self.window_size_samples) // self.window_stride_samples

    @property
    def spectrogram_length(self) -> int:
        return self.frames_for(self.desired_samples)

    @property
    def fft_bin_count(self) -> int:
        return 1 + _next_power_of_two(self.window_size_samples) // 2

    @property
    def average_window_width(self) -> int:
        return self.fft_bin_count // self.feature_bin_count

    @property
    def fingerprint_width(self) -> int:
        if self.preprocess == "average":
            return math.ceil(self.fft_bin_count / self.average_window_width)
        if self.preprocess == "embedding":
            from pipeline import embedding

            return embedding.EMBEDDING_DIM
        return self.feature_bin_count

    @property
    def feature_shape(self) -> tuple[int, int]:
        """Shape of one clip's features: (frames, bins), or (windows, 96) for embedding."""
        return (self.spectrogram_length, self.fingerprint_width)


def _spectrogram(audio, cfg: FeatureConfig):
    """Power spectrogram [batch, frames, fft_bins]: the batch rides on the op's channel axis."""
    import tensorflow as tf

    return tf.raw_ops.AudioSpectrogram(
        input=tf.transpose(audio),
        window_size=cfg.window_size_samples,
        stride=cfg.window_stride_samples,
        magnitude_squared=True,
    )


def _micro_one(clip, cfg: FeatureConfig):
    import tensorflow as tf
    from tensorflow.lite.experimental.microfrontend.python.ops import audio_microfrontend_op

    # The original casts audio * 32768 straight to int16, which wraps a full-scale +1.0 sample to
    # -32768; clipping to the int16 range first fixes that and changes nothing else.
    int16_input = tf.cast(tf.clip_by_value(clip * 32768.0, -32768.0, 32767.0), tf.int16)
    out = audio_microfrontend_op.audio_microfrontend(
        int16_input,
        sample_rate=cfg.sample_rate,
        window_size=int(cfg.samples_to_ms(cfg.window_size_samples)),
        window_step=int(cfg.samples_to_ms(cfg.window_stride_samples)),
        num_channels=cfg.feature_bin_count,
        upper_band_limit=MICRO_UPPER_HZ,
        lower_band_limit=MICRO_LOWER_HZ,
        enable_pcan=True,
        min_signal_remaining=0.05,
        out_scale=1,
        out_type=tf.float32,
    )
    if clip.shape[0] is None:
        # The op's shape function says 0 frames when the length is unknown; relax it to None so
        # that map_fn does not reject the real frames at run time.
        out = tf.compat.v1.placeholder_with_default(out, [None, cfg.feature_bin_count])
    return out * MICRO_OUTPUT_SCALE


def compute_features(audio, cfg: FeatureConfig):
    """Features of a batch: float32 ``[batch, samples]`` in [-1, 1] -> ``[batch, frames, bins]``.

    TensorFlow ops only, so it can run inside a tf.function or an exported SavedModel. Any number
    of samples >= one window is accepted; for mfcc and average a longer signal gives more frames,
    each identical to the per-clip frame at the same position.
    """
    import tensorflow as tf

    audio = tf.convert_to_tensor(audio, dtype=tf.float32)
    if cfg.preprocess == "embedding":
        raise ValueError(
            "compute_features: 'embedding' is not made of TensorFlow ops; use features_numpy "
            "(pipeline.embedding runs the TFLite speech-embedding models)"
        )
    if cfg.preprocess == "micro":
        frames = cfg.frames_for(int(audio.shape[-1])) if audio.shape[-1] is not None else None
        return tf.map_fn(
            lambda clip: _micro_one(clip, cfg),
            audio,
            fn_output_signature=tf.TensorSpec([frames, cfg.feature_bin_count], tf.float32),
        )
    spectrogram = _spectrogram(audio, cfg)
    if cfg.preprocess == "mfcc":
        return tf.raw_ops.Mfcc(
            spectrogram=spectrogram,
            sample_rate=tf.constant(cfg.sample_rate, tf.int32),
            upper_frequency_limit=MFCC_UPPER_HZ,
            lower_frequency_limit=MFCC_LOWER_HZ,
            filterbank_channel_count=MFCC_CHANNELS,
            dct_coefficient_count=cfg.feature_bin_count,
        )
    if cfg.preprocess == "average":
        width = cfg.average_window_width
        pooled = tf.nn.pool(
            input=tf.expand_dims(spectrogram, -1),
            window_shape=[1, width],
            strides=[1, width],
            pooling_type="AVG",
            padding="SAME",
        )
        return tf.squeeze(pooled, -1)
    raise ValueError(f"compute_features: unknown preprocess mode {cfg.preprocess!r}")


_TF_FUNCTIONS: dict[FeatureConfig, Any] = {}


def _tf_function(cfg: FeatureConfig):
    """One traced function per config (retracing per batch would dominate featurize time)."""
    import tensorflow as tf

    if cfg not in _TF_FUNCTIONS:
        _TF_FUNCTIONS[cfg] = tf.function(
            lambda audio: compute_features(audio, cfg),
            input_signature=[tf.TensorSpec([None, None], tf.float32)],
            reduce_retracing=True,
        )
    return _TF_FUNCTIONS[cfg]


def features_numpy(audio_np, cfg: FeatureConfig, batch_size: int = 256) -> np.ndarray:
    """``compute_features`` on a numpy batch ``[N, samples]`` (or one clip ``[samples]``)."""
    audio_np = np.asarray(audio_np, dtype=np.float32)
    single = audio_np.ndim == 1
    if single:
        audio_np = audio_np[None, :]
    if audio_np.ndim != 2:
        raise ValueError(f"features_numpy: expected [batch, samples] audio, got {audio_np.shape}")
    if audio_np.shape[1] < cfg.window_size_samples:
        raise ValueError(
            f"features_numpy: {audio_np.shape[1]} samples is shorter than one "
            f"{cfg.window_size_samples}-sample window"
        )
    if cfg.preprocess == "embedding":
        from pipeline import embedding

        out = embedding.embed(audio_np)
    else:
        fn = _tf_function(cfg)
        parts = [
            fn(audio_np[i : i + batch_size]).numpy()
            for i in range(0, len(audio_np), batch_size)
        ]
        frames = cfg.frames_for(audio_np.shape[1])
        out = (
            np.concatenate(parts)
            if parts
            else np.zeros((0, frames, cfg.fingerprint_width), np.float32)
        )
    out = out.astype(np.float32, copy=False)
    return out[0] if single else out
