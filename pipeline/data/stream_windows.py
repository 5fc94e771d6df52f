"""Training windows cut from synthetic streams of the training speakers (``stream_windows``).

A model trained on clips meets a different domain on a stream: background under every word, the
recording's own audio around each window, a window that starts anywhere near a word. On the
real-speech stream almost every false alarm is a wrong word, and training in that domain helped
(more words correct at equal false alarms: docs/experiments/operating-point.md). With
``stream_windows.streams: N`` (0 = off, the default), featurize adds to the TRAINING split the
windows of N recordings synthesized, as the synthesize_stream stage synthesizes its recording
(``pipeline.data.stream_synthesis``), from the training split's clips only (never a validation or
test speaker). Featurize synthesizes them (``stream_settings``: the ``stream`` section's makeup
with this section's duration and seeds); this module labels and featurizes the windows:

- windows start every ``stride_ms`` (``range(0, samples - clip, stride)``, as
  ``pipeline.streaming.scores.window_offsets``);
- a window starting within ``near_ms`` of a word's start is labelled with that word
  (``_unknown_`` for an unknown word); as many windows, drawn at random (seeded), starting more
  than ``far_ms`` from every word are labelled ``_silence_`` (where a detection could only be a
  false positive); windows in between, holding part of a word, are left out;
- features are computed exactly as streaming computes them: for a front end with frame reuse the
  recording's frames once (``FrontEnd.stream_features``: for the speech embedding, each window in
  its real context) sliced per window, which needs a stride of whole stream frames (else a
  ParamError); otherwise each window's own audio through the front end, as ``stream_eval`` does.

Deterministic: recording ``k`` uses seed ``seed + k`` and its silence draw ``[seed, k]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.core.errors import ParamError
from pipeline.core.labels import SILENCE_LABEL
from pipeline.core.schema import Section, integer, number, param, random_seed
from pipeline.data.stream_synthesis import StreamConfig
from pipeline.frontends import FeatureConfig, features_numpy

CHUNK = 512  # windows per front-end call when windows are featurized one by one


@dataclass(frozen=True)
class StreamWindowsConfig(Section):
    """The ``stream_windows`` section: training windows cut from streams of training speakers."""

    section = "stream_windows"

    # Recordings synthesized from the training split (0 = off: featurize as without this section).
    streams: int = param(0, integer(0, 1000))
    # Length of each recording (the rest of its makeup follows the `stream` section).
    duration_s: float = param(600, number(10, 100000))
    # Windows start every stride_ms (a whole number of the front end's stream frames when it
    # reuses frames: 80 ms for the speech embedding, 10 ms for mfcc).
    stride_ms: int = param(80, integer(1, 10000))
    # A window starting within near_ms of a word is labelled with it; more than far_ms from every
    # word, _silence_ (as many as the word windows, drawn at random).
    near_ms: int = param(160, integer(0, 10000))
    far_ms: int = param(750, integer(0, 100000))
    seed: int = param(1913, random_seed())

    def __post_init__(self):
        if self.far_ms < self.near_ms:
            raise ParamError(
                f"params: stream_windows.far_ms ({self.far_ms}) must not be below near_ms "
                f"({self.near_ms}): a window would be both a word and _silence_"
            )

    def stream_settings(self, stream: StreamConfig) -> list[StreamConfig]:
        """One synthesis setting per recording: the ``stream`` section's makeup with this
        section's duration and seeds ``seed + k``."""
        return [
            dataclasses.replace(stream, duration_s=self.duration_s, seed=self.seed + k)
            for k in range(self.streams)
        ]


def stride_samples(cfg: StreamWindowsConfig, features: FeatureConfig) -> int:
    """The window stride in samples; ParamError where the front end cannot cut windows there."""
    stride = int(cfg.stride_ms * features.sample_rate / 1000)
    if stride < 1:
        raise ParamError(f"params: stream_windows.stride_ms {cfg.stride_ms} is under one sample")
    frontend = features.frontend
    if frontend.frame_reuse:
        frame = int(frontend.stream_stride_samples(features))
        if stride % frame:
            raise ParamError(
                f"params: stream_windows.stride_ms {cfg.stride_ms} is not a whole number of the "
                f"{frontend.name!r} front end's stream frames "
                f"({features.samples_to_ms(frame):g} ms): streaming cuts its windows at whole "
                "frames"
            )
    return stride


def label_windows(
    times_ms: np.ndarray,
    truth: Sequence[tuple[str, float]],
    labels: Sequence[str],
    near_ms: float,
    far_ms: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Which windows (by their start times) become examples, and their label indices.

    Windows starting within ``near_ms`` of a word's start (``truth``: ``(label, time_ms)``) take
    that word's label; as many windows starting more than ``far_ms`` from every word (fewer if
    there are fewer), drawn by ``rng``, take ``_silence_``. Returns ``(indices, label_indices)``,
    the word windows first (in time order), then the silence windows (in time order).
    """
    times = np.asarray(times_ms, np.float64)
    if not len(truth) or not len(times):
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    word_times = np.asarray([t for _, t in truth], np.float64)
    index = {label: i for i, label in enumerate(labels)}
    unknown = [label for label, _ in truth if label not in index]
    if unknown:
        raise ValueError(f"stream label {unknown[0]!r} is not one of {list(labels)}")
    word_labels = np.asarray([index[label] for label, _ in truth], np.int32)
    distance = np.abs(times[:, None] - word_times[None, :])
    nearest = np.argmin(distance, axis=1)
    gap = distance[np.arange(len(times)), nearest]
    near = np.nonzero(gap <= near_ms)[0]
    far = np.sort(rng.permutation(np.nonzero(gap > far_ms)[0])[: len(near)])
    chosen = np.concatenate([near, far]).astype(np.int64)
    y = np.concatenate(
        [word_labels[nearest[near]], np.full(len(far), index[SILENCE_LABEL], np.int32)]
    )
    return chosen, y.astype(np.int32)


def window_features(
    recording: np.ndarray, starts: np.ndarray, features: FeatureConfig
) -> np.ndarray:
    """The features ``[len(starts), frames, bins]`` of the windows of ``recording`` starting at
    ``starts`` (samples), as streaming computes them: sliced from the recording's frames for a
    front end with frame reuse (``starts`` whole stream frames), else each window's own audio."""
    recording = np.asarray(recording, np.float32).reshape(-1)
    starts = np.asarray(starts, np.int64)
    frontend = features.frontend
    frames, clip = features.feature_shape[0], features.desired_samples
    if frontend.frame_reuse:
        frame = int(frontend.stream_stride_samples(features))
        if np.any(starts % frame):
            raise ValueError(f"window starts must be multiples of the {frame}-sample stream frame")
        if not len(starts):
            return np.zeros((0, *features.feature_shape), np.float32)
        feats = np.asarray(frontend.stream_features(recording, features), np.float32)
        first = starts // frame
        if len(feats) < int(first.max()) + frames:
            raise ValueError(
                f"{len(feats)} stream frames for {len(recording)} samples; "
                f"{int(first.max()) + frames} are needed"
            )
        return feats[first[:, None] + np.arange(frames)]
    span = np.arange(clip)
    parts = [np.zeros((0, *features.feature_shape), np.float32)]
    for i in range(0, len(starts), CHUNK):
        parts.append(features_numpy(recording[starts[i : i + CHUNK, None] + span], features))
    return np.concatenate(parts)


def stream_examples(
    recording: np.ndarray,
    truth: Sequence[tuple[str, float]],
    labels: Sequence[str],
    features: FeatureConfig,
    cfg: StreamWindowsConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One recording's training examples ``(x [n, frames, bins] float32, y [n] int32)``: its
    windows every ``cfg.stride_ms`` labelled by :func:`label_windows`, featurized by
    :func:`window_features`."""
    stride = stride_samples(cfg, features)
    recording = np.asarray(recording, np.float32).reshape(-1)
    starts = np.arange(0, max(0, len(recording) - features.desired_samples), stride, dtype=np.int64)
    chosen, y = label_windows(
        starts * 1000 / features.sample_rate, truth, labels, cfg.near_ms, cfg.far_ms, rng
    )
    return window_features(recording, starts[chosen], features), y


def window_rng(cfg: StreamWindowsConfig, k: int) -> np.random.Generator:
    """The generator of recording ``k``'s silence draw."""
    return np.random.default_rng([cfg.seed, k])
