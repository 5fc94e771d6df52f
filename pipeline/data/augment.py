"""Data augmentation, faithful to the original input_data.py, but seeded and reproducible.

Per clip, in the original's order: foreground volume (0 for silence rows, else 1) -> time shift
(uniform integer in [-shift, shift) samples, zero padding; a positive shift pads the front) ->
[not in the original, off by default: a gain in ``foreground_gain_db`` dB] -> background noise
(random file, random offset; volume U(0, 1) for silence, else U(0, background_volume) with
probability background_frequency, else 0) -> clip to [-1, 1].

Differences from the original, on purpose:
- Every random draw comes from a numpy Generator seeded by (augment.seed, split, row, copy), so a
  clip's augmentation does not depend on batch order and reruns give identical bytes.
- ``foreground_gain_db`` (opt-in): a random gain per training word copy shows the model words at
  other levels than the clips' own (quiet speakers under a recording's noise are the real-speech
  model's largest class of missed words; on the shared clips this did not help:
  docs/experiments/real-speech-streams.md, "Every unknown word"). With equal bounds nothing is
  drawn, so the other draws -- and the features of ``[0, 0]`` -- are those without it.
- Validation and test clips get no shift and no background (as the original), but their silence
  rows get FIXED noise seeded per split. The original draws that noise afresh on every evaluation
  (unseeded np.random), so its validation/test accuracy on silence moves between evaluations.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.core.errors import StageError, WavError
from pipeline.core.labels import BACKGROUND_NOISE_DIR
from pipeline.core.schema import Section, integer, list_of, number, param, random_seed

log = logging.getLogger(__name__)

SPLIT_CODES = {"training": 0, "validation": 1, "testing": 2}


def _gain_problem(bounds) -> str | None:
    if len(bounds) != 2:
        return f"needs exactly two numbers [low, high] in dB, got {len(bounds)}"
    if bounds[0] > bounds[1]:
        return f"low {bounds[0]} is above high {bounds[1]}"
    return None


@dataclass(frozen=True)
class AugmentConfig(Section):
    """The ``augment`` section: how training clips are augmented (precomputed by featurize)."""

    section = "augment"

    time_shift_ms: float = param(100, number(0, 10000))
    background_volume: float = param(0.1, number(0, 1))
    background_frequency: float = param(0.8, number(0, 1))
    # Augmented copies of every training clip precomputed by featurize.
    copies: int = param(4, integer(0, 100))
    # [low, high]: each training word copy is scaled by a gain uniform in these decibels (before
    # the background noise). [0, 0] = off, the original's levels.
    foreground_gain_db: list = param([0, 0], list_of(number(-60, 40), check=_gain_problem))
    seed: int = param(4242, random_seed())

    def time_shift_samples(self, sample_rate: int) -> int:
        return int(self.time_shift_ms * sample_rate / 1000)


def clip_rng(seed: int, split: str, row: int, copy: int = 0) -> np.random.Generator:
    """The Generator for one clip (one augmented copy of one manifest row)."""
    return np.random.default_rng([seed, SPLIT_CODES[split], row, copy])


def load_background(
    store, sample_rate: int, desired_samples: int
) -> tuple[list[np.ndarray], list[str]]:
    """The ``_background_noise_/`` clips of a clip store in name order, and their names (none
    without a store).

    Each must be longer than one clip, as the original requires.
    """
    if store is None:
        return [], []
    if store.sample_rate not in (None, sample_rate):
        raise StageError(
            f"{store.folder}: clips are at {store.sample_rate} Hz, features.sample_rate is "
            f"{sample_rate} (rerun the download stage)"
        )
    noises, names = [], []
    for entry in store.of_word(BACKGROUND_NOISE_DIR):
        samples = store.read(entry.name)
        if len(samples) <= desired_samples:
            raise WavError(
                f"{store.folder.as_posix()}/{entry.name}",
                f"background noise has {len(samples)} samples; needs more than "
                f"{desired_samples} (one clip)",
            )
        noises.append(samples)
        names.append(entry.name.split("/", 1)[1])
    return noises, names


def time_shift(audio: np.ndarray, shift: int) -> np.ndarray:
    """Move ``audio`` by ``shift`` samples with zero padding (positive: later, pads the front)."""
    n = len(audio)
    out = np.zeros_like(audio)
    if shift >= 0:
        out[shift:] = audio[: n - shift] if shift < n else audio[:0]
    else:
        out[: n + shift] = audio[-shift:]
    return out


def augment_clip(
    audio: np.ndarray,
    is_silence: bool,
    rng: np.random.Generator,
    noises: Sequence[np.ndarray],
    training: bool,
    time_shift_samples: int = 0,
    background_volume: float = 0.1,
    background_frequency: float = 0.8,
    gain_db: Sequence[float] = (0, 0),
) -> np.ndarray:
    """One clip's audio as the model should see it (float32, ``len(audio)`` samples).

    ``training=False`` is the validation/test behaviour: no shift, no background on words, and
    for silence rows noise drawn from ``rng`` (so fixed when ``rng`` is seeded per row).
    """
    desired = len(audio)
    foreground = np.zeros(desired, np.float32) if is_silence else np.asarray(audio, np.float32)
    if training and time_shift_samples > 0:
        shift = int(rng.integers(-time_shift_samples, time_shift_samples))
        foreground = time_shift(foreground, shift)
    if training and not is_silence:
        low, high = gain_db
        gain = rng.uniform(low, high) if low != high else low
        if gain:
            foreground = foreground * np.float32(10 ** (gain / 20))
    if (training or is_silence) and noises:
        noise = noises[int(rng.integers(len(noises)))]
        offset = int(rng.integers(0, len(noise) - desired))
        segment = noise[offset : offset + desired]
        if is_silence:
            volume = rng.uniform(0, 1)
        elif rng.uniform(0, 1) < background_frequency:
            volume = rng.uniform(0, background_volume)
        else:
            volume = 0.0
        mixed = foreground + segment * np.float32(volume)
    else:
        mixed = foreground
    return np.clip(mixed, -1.0, 1.0).astype(np.float32)
