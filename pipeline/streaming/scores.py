"""Score every window of a long recording with a model, reusing features across windows.

As the original test_streaming_accuracy: the model scores the clip starting every
``clip_stride_ms`` (``range(0, samples - clip_samples, stride)``, time = window start in whole ms).
When the model's front end allows it and the clip stride is a whole number of feature frames,
features are computed once for the whole recording and each window is a slice of them (frame for
frame what the per-clip front end computes), scored in large batches; otherwise each window's
audio goes through ``predict_audio``, still batched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from pipeline.core.errors import StageError

BATCH = 512


@dataclass
class StreamScores:
    """The model's scores of every window: start times (ms) and [windows, labels]."""

    times_ms: np.ndarray
    scores: np.ndarray
    frame_reuse: bool
    seconds: float


def window_offsets(num_samples: int, clip_samples: int, stride_samples: int) -> np.ndarray:
    """Start samples of the windows, as the original: range(0, samples - clip, stride)."""
    if stride_samples < 1:
        raise StageError(f"clip stride of {stride_samples} samples; it must be at least one sample")
    return np.arange(0, max(0, num_samples - clip_samples), stride_samples, dtype=np.int64)


def can_reuse_frames(model, stride_samples: int) -> bool:
    """True when windows can be cut from one feature computation over the whole recording."""
    supports = getattr(
        model, "supports_frames", getattr(model, "frames_per_clip", None) is not None
    )
    frame_stride = getattr(model, "frame_stride_samples", None)
    return bool(supports) and bool(frame_stride) and stride_samples % frame_stride == 0


def stream_scores(
    model,
    audio: np.ndarray,
    clip_stride_ms: float,
    frame_reuse: bool = True,
    batch_size: int = BATCH,
    progress: bool = True,
) -> StreamScores:
    """Score every window of ``audio`` (float32 1-D at the model's rate)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    rate, clip = int(model.sample_rate), int(model.desired_samples)
    stride = int(clip_stride_ms * rate / 1000)
    offsets = window_offsets(len(audio), clip, stride)
    times_ms = offsets * 1000 // rate
    labels = len(model.labels)
    start = time.perf_counter()
    reuse = frame_reuse and can_reuse_frames(model, stride)
    batches = range(0, len(offsets), batch_size)
    bar = tqdm(total=len(offsets), desc="windows", unit="win", disable=not progress)
    out = []
    if reuse:
        features = np.asarray(model.frame_features(audio), dtype=np.float32)
        step = stride // int(model.frame_stride_samples)
        frames = int(model.frames_per_clip)
        needed = (len(offsets) - 1) * step + frames if len(offsets) else 0
        if features.shape[0] < needed:
            raise StageError(
                f"frame_features gave {features.shape[0]} frames for {len(audio)} samples; "
                f"{needed} are needed (the model's frame_stride_samples / frames_per_clip disagree)"
            )
        span = np.arange(frames)
        for first in batches:
            rows = np.arange(first, min(first + batch_size, len(offsets))) * step
            out.append(np.asarray(model.predict_features(features[rows[:, None] + span])))
            bar.update(len(rows))
    else:
        out.append(score_windows(model, audio, offsets, batch_size, bar))
    bar.close()
    scores = np.concatenate(out).astype(np.float32) if out else np.zeros((0, labels), np.float32)
    return StreamScores(times_ms, scores, reuse, time.perf_counter() - start)


def mean_scores(first: StreamScores, others, weight: float | None = None) -> StreamScores:
    """An ensemble's window scores: ``first``'s times ``weight`` plus the mean of ``others``'
    times ``1 - weight`` (default: every model weighs the same). The models must have scored the
    same windows. On the real-speech stream the mean of two models trained on the same split had
    fewer false alarms than either alone (docs/experiments/real-speech-streams.md)."""
    others = list(others)
    if not others:
        return first
    for other in others:
        if not np.array_equal(first.times_ms, other.times_ms):
            raise StageError(
                "models averaged over a recording must score the same windows: use one "
                "clip stride and models with the same clip duration and sample rate"
            )
    weight = 1 / (len(others) + 1) if weight is None else float(weight)
    if not 0 <= weight <= 1:
        raise StageError(f"the first model's weight in the mean must be in [0, 1], got {weight}")
    rest = sum(np.asarray(o.scores, np.float64) for o in others) / len(others)
    scores = (weight * np.asarray(first.scores, np.float64) + (1 - weight) * rest).astype(
        np.float32
    )
    return StreamScores(
        first.times_ms,
        scores,
        first.frame_reuse and all(o.frame_reuse for o in others),
        first.seconds + sum(o.seconds for o in others),
    )


def score_windows(
    model, audio: np.ndarray, offsets: np.ndarray, batch_size: int = BATCH, bar=None
) -> np.ndarray:
    """The scores ``[len(offsets), labels]`` of the windows starting at ``offsets``, each from its
    own audio (``predict_audio``), ``batch_size`` windows a call."""
    span = np.arange(int(model.desired_samples))
    out = [np.zeros((0, len(model.labels)), np.float32)]
    for first in range(0, len(offsets), batch_size):
        starts = np.asarray(offsets[first : first + batch_size])
        out.append(np.asarray(model.predict_audio(audio[starts[:, None] + span]), np.float32))
        if bar is not None:
            bar.update(len(starts))
    return np.concatenate(out)


def streaming_scores(
    runner, window_model, audio: np.ndarray, clip_stride_ms: float, progress: bool = True
) -> StreamScores:
    """The windows' scores from a streaming model: one call per feature frame, no window computed
    twice. ``runner`` is a StreamingTFLite (inference/streaming_tflite.py); ``window_model`` the
    export's window model, whose front end gives the recording's frames once. The window starting
    at sample ``o`` is scored by the streaming output after its last frame
    (``o / frame_stride + frames - 1``), at the window model's times. Without its own padding the
    first window of a stream starts from zero states, as a clip does.
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    rate, clip = int(window_model.sample_rate), int(window_model.desired_samples)
    stride = int(clip_stride_ms * rate / 1000)
    if not can_reuse_frames(window_model, stride):
        raise StageError(
            "streaming needs a front end whose frames of a long recording equal each "
            "clip's (frame reuse) and a clip stride of whole frames; this model has neither"
        )
    offsets = window_offsets(len(audio), clip, stride)
    start = time.perf_counter()
    features = np.asarray(window_model.frame_features(audio), dtype=np.float32)
    frame_stride, frames = int(window_model.frame_stride_samples), int(window_model.frames_per_clip)
    last = offsets // frame_stride + frames - 1  # the frame that completes each window
    needed = int(last[-1]) + 1 if len(last) else 0
    if features.shape[0] < needed:
        raise StageError(
            f"frame_features gave {features.shape[0]} frames for {len(audio)} samples; "
            f"{needed} are needed"
        )
    runner.reset()
    bar = tqdm(total=needed, desc="frames", unit="frame", disable=not progress)
    per_frame = runner.run(features[:needed], bar)
    bar.close()
    scores = per_frame[last] if len(last) else np.zeros((0, runner.num_labels), np.float32)
    return StreamScores(
        offsets * 1000 // rate, scores.astype(np.float32), True, time.perf_counter() - start
    )
