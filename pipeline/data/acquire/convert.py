"""Your own recordings taken in as they are: each clip converted on ingest to the data set's format,
16-bit mono PCM WAV at ``features.sample_rate``.

With ``data.source: dir`` a clip may be a WAV in any common sample format (PCM 8/16/24/32-bit,
float 32/64-bit, plain or WAVE_FORMAT_EXTENSIBLE) at any rate with any number of channels, or a
FLAC or OGG file. WAVs are read by the project's own parser (pipeline/core/audio.py), so each bad
one keeps its own message; FLAC and OGG, and only they, are decoded by libsndfile through the
``soundfile`` package. :func:`probe` reads a file's header (what it is, what must change);
:func:`convert` writes the converted clip in place of the original: channels mixed down by their
mean, the rate changed with soxr (high quality), samples rounded to 16 bits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.audio import (
    decode_any_wav,
    read_wav_header,
    unsupported_encoding,
    wav_encoding,
    write_wav,
)
from pipeline.core.errors import WavError
from pipeline.core.fs import remove

# Suffixes taken in as clips from a folder of recordings (compared in lower case).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
TARGET_ENCODING = "16-bit PCM"


@dataclass(frozen=True)
class SourceFormat:
    """What a clip file holds: rate, channels, length in frames and sample encoding."""

    sample_rate: int
    channels: int
    frames: int
    encoding: str

    def describe(self) -> str:
        channels = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels} channels")
        return f"{self.encoding}, {channels}, {self.sample_rate} Hz"

    def changes(self, path: Path, sample_rate: int) -> tuple[str, ...]:
        """What converting the file at ``path`` changes: format, channels, rate, or only the
        name (a 16-bit mono PCM file whose suffix is not ``.wav``)."""
        reformat = self.encoding != TARGET_ENCODING
        found = (
            ("format", reformat),
            ("channels", self.channels != 1),
            ("rate", self.sample_rate != sample_rate),
            ("name", path.suffix != ".wav" and not reformat),
        )
        return tuple(name for name, differs in found if differs)


def is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES


def _libsndfile_problem(exc: Exception) -> str:
    """libsndfile's reason without the path it was given (a temporary copy's)."""
    reason = getattr(exc, "error_string", "") or str(exc).split(": ", 1)[-1]
    return f"cannot decode: {reason.strip() or 'not a FLAC or OGG file'}"


def probe(path: Path) -> SourceFormat:
    """The header facts of a clip file; WavError when it cannot be read or converted."""
    if path.suffix.lower() == ".wav":
        info = read_wav_header(path)
        problem = unsupported_encoding(info)
        if problem:
            raise WavError(path, problem)
        return SourceFormat(info.sample_rate, info.channels, info.num_frames, wav_encoding(info))
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, OSError) as exc:
        raise WavError(path, _libsndfile_problem(exc)) from None
    if info.channels < 1 or info.samplerate < 1:
        raise WavError(path, f"{info.channels} channels at {info.samplerate} Hz")
    return SourceFormat(
        info.samplerate, info.channels, info.frames, f"{info.format} {info.subtype}"
    )


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """float32 ``(frames, channels)`` samples and the rate of a clip file."""
    if path.suffix.lower() == ".wav":
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise WavError(path, f"cannot read: {exc.strerror}") from None
        return decode_any_wav(data, path)
    import soundfile

    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as exc:
        raise WavError(path, _libsndfile_problem(exc)) from None
    return samples, rate


def convert(path: Path, changes: tuple[str, ...], sample_rate: int) -> Path:
    """Write ``path`` as 16-bit mono PCM WAV at ``sample_rate`` under its name with ``.wav``,
    removing the original; returns the clip's path. ``changes``: what
    :meth:`SourceFormat.changes` found. WavError when it cannot be decoded."""
    target = path.with_suffix(".wav")
    if changes == ("name",):
        os.replace(path, target)  # already 16-bit mono at the rate: the samples stay as stored
        return target
    samples, rate = _decode(path)
    mono = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1, dtype=np.float64)
    mono = np.asarray(mono, np.float32)
    if rate != sample_rate:
        import soxr

        mono = soxr.resample(mono, rate, sample_rate).astype(np.float32)
    write_wav(target, mono, sample_rate)
    if target != path:
        remove(path)
    return target
