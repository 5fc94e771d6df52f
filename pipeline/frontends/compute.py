"""Compute features with the configured front end, as TensorFlow ops or on numpy batches."""

from __future__ import annotations

import numpy as np

from pipeline.frontends.base import FrontEnd
from pipeline.frontends.config import FeatureConfig


def compute_features(audio, cfg: FeatureConfig):
    """Features of a batch: float32 ``[batch, samples]`` in [-1, 1] -> ``[batch, frames, bins]``.

    TensorFlow ops only, so it can run inside a tf.function or an exported SavedModel (front ends
    with ``in_graph``). Any number of samples >= one window is accepted; for front ends with
    ``frame_reuse`` a longer signal gives more frames, each identical to the per-clip frame at the
    same position.
    """
    return cfg.frontend.compute(audio, cfg)


def features_numpy(
    audio_np, cfg: FeatureConfig, batch_size: int = 256, frontend: FrontEnd | None = None
) -> np.ndarray:
    """Features of a numpy batch ``[N, samples]`` (or one clip ``[samples]``), float32, by
    ``cfg``'s front end (or ``frontend``: the same front end computing another view)."""
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
    frontend = frontend or cfg.frontend
    out = frontend.compute_numpy(audio_np, cfg, batch_size).astype(np.float32, copy=False)
    return out[0] if single else out
