"""Long recordings of a split's words over background noise, and the ``stream`` section.

As the original generate_streaming_test_wav: the recording is cut into slots of
``word_interval_ms``; each slot gets one word at a random offset in its first ``word_gap_ms``,
``unknown_percentage`` of them unknown words, the rest a uniformly chosen wanted word; a random
clip of that label from the split is mixed in at full volume with 500-sample ramps.
Background noise is laid under the whole recording in overlapping segments of
``background_segment_ms`` (overlap a third of a segment, as the original's 1500 ms segments every
1000 ms, with ramps of half the overlap) at a uniform random volume in [0, background_volume).
Seeded.

Two stages synthesize recordings (``split_streams``): synthesize_stream from the TEST split (so
that a model is never scored on words it trained on) and writes ``data/stream/stream.wav`` and
``data/stream/stream_labels.txt`` (``label, time_ms``); featurize, with ``stream_windows.streams``
> 0, from the TRAINING split, to cut training windows from (data/stream_windows.py).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.core import paths
from pipeline.core.audio import write_wav
from pipeline.core.errors import ParamError, StageError
from pipeline.core.fs import atomic_dir, atomic_write_text
from pipeline.core.labels import BACKGROUND_NOISE_DIR, SILENCE_LABEL, UNKNOWN_LABEL, read_labels
from pipeline.core.schema import Section, integer, number, param, random_seed
from pipeline.data.clip_store import ClipReader
from pipeline.data.manifest import read_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamConfig(Section):
    """The ``stream`` section: the makeup of a synthetic recording (synthesize_stream's; the
    training recordings of ``stream_windows`` take all but its duration and seed)."""

    section = "stream"

    duration_s: float = param(600, number(1, 100000))
    word_interval_ms: int = param(3000, integer(100))
    word_gap_ms: int = param(2000, integer(0))
    unknown_percentage: float = param(30, number(0, 100))
    background_volume: float = param(0.1, number(0, 1))
    background_segment_ms: int = param(1500, integer(10, 100_000_000))
    seed: int = param(8, random_seed())

    def __post_init__(self):
        if self.word_gap_ms > self.word_interval_ms:
            raise ParamError(
                f"params: stream.word_gap_ms ({self.word_gap_ms}) must not exceed "
                f"stream.word_interval_ms ({self.word_interval_ms}): words would leave their slot"
            )
        # stream_windows recordings take this makeup at their own duration: pipeline.sections
        # checks the segment against that one.
        self.check_segment_fits(self.duration_s, "stream.duration_s")

    def check_segment_fits(self, duration_s: float, key: str) -> None:
        """ParamError unless a background segment (allocated whole, then cut out of the
        recording) fits in a recording of ``duration_s``."""
        if self.background_segment_ms > duration_s * 1000:
            raise ParamError(
                f"params: stream.background_segment_ms ({self.background_segment_ms}) exceeds "
                f"{key} ({duration_s:g} s): a segment must fit in the recording"
            )


# The original ramps each word in and out over 500 samples (at 16 kHz).
WORD_RAMP_SECONDS = 500 / 16000


def mix_in(track, offset, sample, duration, volume, ramp_in, ramp_out) -> None:
    """Add ``sample[:duration]`` to ``track`` at ``offset`` with linear ramps (in place).

    The envelope is the original mix_in_audio_sample's: i / ramp_in at the start and
    (duration - i) / ramp_out at the end of the ``duration``-sample segment.
    """
    end = min(offset + duration, len(track), offset + len(sample))
    count = end - offset
    if count <= 0:
        return
    i = np.arange(count, dtype=np.float64)
    envelope = np.ones(count)
    if ramp_in > 0:
        envelope = np.where(i < ramp_in, i / ramp_in, envelope)
    if ramp_out > 0:
        envelope = np.where(i > duration - ramp_out, (duration - i) / ramp_out, envelope)
    track[offset:end] += sample[:count] * envelope * volume


def synthesize(
    word_clips: dict[str, list],
    unknown_clips: list,
    backgrounds: list,
    settings: StreamConfig,
    sample_rate: int,
    progress: bool = True,
    read: Callable[[str], np.ndarray] | None = None,
    where: str = "the test split",
):
    """Build the recording; return ``(audio float32, [(label, time_ms), ...])``.

    ``word_clips`` maps each wanted word (in label order) to its clips, ``unknown_clips`` lists
    the unknown-word clips and ``backgrounds`` the noise recordings; clips are float arrays or
    names that ``read`` turns into float samples at ``sample_rate`` (each read once, when first
    chosen; e.g. ``ClipReader.read`` for manifest paths). ``where`` names the clips' source in
    errors.
    """
    rate = sample_rate
    words = [word for word, clips in word_clips.items() if clips]
    if not words:
        raise StageError(f"no wanted-word clips to place in the stream ({where} has none)")
    if settings.unknown_percentage > 0 and not unknown_clips:
        raise StageError(
            f"stream.unknown_percentage is {settings.unknown_percentage} but {where} has "
            f"no {UNKNOWN_LABEL} rows"
        )
    if settings.background_volume > 0 and not backgrounds:
        raise StageError("stream.background_volume > 0 but there are no background noise files")
    cache: dict = {}

    def load(clip):
        if isinstance(clip, np.ndarray):
            return clip
        key = str(clip)
        if key not in cache:
            if read is None:
                raise ValueError(f"clip {key!r} is a name, but no read function was given")
            cache[key] = read(key)
        return cache[key]

    rng = np.random.default_rng(settings.seed)
    total = int(round(settings.duration_s * rate))
    audio = np.zeros(total, dtype=np.float64)

    segment = max(1, int(settings.background_segment_ms * rate / 1000))
    crossover = segment // 3
    stride = segment - crossover
    ramp = crossover // 2
    if settings.background_volume > 0:
        for i in tqdm(range(math.ceil(total / stride)), desc="background", disable=not progress):
            noise = load(backgrounds[int(rng.integers(len(backgrounds)))])
            if len(noise) <= segment:  # a short noise file is looped to cover a segment
                noise = np.resize(noise, segment + 1)
            start = int(rng.integers(0, len(noise) - segment))
            volume = rng.uniform(0, settings.background_volume)
            mix_in(audio, i * stride, noise[start:], segment, volume, ramp, ramp)

    interval = int(settings.word_interval_ms * rate / 1000)
    gap = int(settings.word_gap_ms * rate / 1000)
    word_ramp = int(round(WORD_RAMP_SECONDS * rate))
    labels = []
    for i in tqdm(range(total // interval), desc="words", disable=not progress):
        offset = i * interval + (int(rng.integers(gap)) if gap > 0 else 0)
        if rng.uniform(0, 100) < settings.unknown_percentage:
            label, pool = UNKNOWN_LABEL, unknown_clips
        else:
            label = words[int(rng.integers(len(words)))]
            pool = word_clips[label]
        clip = load(pool[int(rng.integers(len(pool)))])
        mix_in(audio, offset, clip, len(clip), 1.0, word_ramp, word_ramp)
        labels.append((label, offset * 1000 / rate))
    return audio.astype(np.float32), labels


def format_labels(labels) -> str:
    """The original's ground-truth format: ``label, time_ms`` with six decimals."""
    return "".join(f"{label}, {time_ms:f}\n" for label, time_ms in labels)


def read_split_manifest(manifest: Path, labels_path: Path, split: str = "test"):
    """Wanted-word clips (in label order) and unknown clips from a split's manifest (the test
    split's for synthesize_stream), as manifest paths (clips in the stores)."""
    rows = read_manifest(manifest)
    wanted = [
        label for label in read_labels(labels_path) if label not in (SILENCE_LABEL, UNKNOWN_LABEL)
    ]
    word_clips: dict[str, list] = {word: [] for word in wanted}
    unknown: list = []
    for row in rows:
        if not row.path or row.label == SILENCE_LABEL:
            continue
        if row.label == UNKNOWN_LABEL:
            unknown.append(row.path)
        elif row.label in word_clips:
            word_clips[row.label].append(row.path)
        else:
            raise StageError(f"{manifest}: label {row.label!r} is not in {labels_path}")
    empty = [word for word, clips in word_clips.items() if not clips]
    if empty:
        log.warning(
            "%s split has no clips of %s; the stream leaves them out", split, ", ".join(empty)
        )
    return word_clips, unknown


def background_clips(dataset: Path, clips: ClipReader) -> list[str]:
    """The background noise of the data set's clip store, as clip paths (none without a store);
    the store is opened through ``clips``, which then reads them (its index parsed once)."""
    store = clips.store(dataset)
    if store is None:
        return []
    return [
        f"{Path(dataset).as_posix()}/{entry.name}" for entry in store.of_word(BACKGROUND_NOISE_DIR)
    ]


def split_streams(
    manifest: Path,
    labels_path: Path,
    dataset: Path,
    settings: list[StreamConfig],
    sample_rate: int,
    split: str = "training",
    progress: bool = False,
    base_dir=".",
):
    """Recordings synthesized from the clips of ``manifest`` (one split's: only its speakers) over
    the noise of the store ``dataset``: one ``(audio, [(label, time_ms), ...])`` per entry of
    ``settings``, yielded one at a time. Manifest paths and ``dataset`` are relative to
    ``base_dir`` (the repository root for the stages)."""
    word_clips, unknown = read_split_manifest(manifest, labels_path, split)
    with ClipReader(base_dir) as clips:
        backgrounds = background_clips(dataset, clips)
        for cfg in settings:
            yield synthesize(
                word_clips,
                unknown,
                backgrounds,
                cfg,
                sample_rate,
                progress=progress,
                read=clips.read,
                where=f"the {split} split ({manifest})",
            )


def write_stream(out_dir: Path, audio: np.ndarray, labels, sample_rate: int) -> None:
    """Write the WAV and its labels into ``out_dir`` atomically (both or neither)."""
    with atomic_dir(out_dir) as tmp:
        write_wav(tmp / paths.STREAM_WAV.name, audio, sample_rate)
        atomic_write_text(tmp / paths.STREAM_LABELS.name, format_labels(labels))
