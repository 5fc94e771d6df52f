"""Check every clip of a materialised data set before anything trains on it.

The download stage calls :func:`validate_dataset` on ``data/raw/dataset`` (and on
``data/raw/official_test``). A bad clip found here gets a message naming it; found later it would
crash featurize half way, or worse, be decoded as noise. Only headers are parsed (a 105k-clip data
set is checked in seconds); samples are decoded only for the clips that are resampled.
"""
from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm

from pipeline.core.audio import check_pcm16_mono, read_wav, read_wav_header, write_wav
from pipeline.core.errors import WavError
from pipeline.core.labels import BACKGROUND_NOISE_DIR
from pipeline.data.config import ON_BAD_FILE

log = logging.getLogger(__name__)



def list_wavs(root) -> list[Path]:
    """``root/*/*.wav`` (the layout the original globs), sorted so reports are stable."""
    return sorted(Path(root).glob("*/*.wav"))


def _check(path: Path, sample_rate: int, clip_samples: int, resample: bool) -> bool:
    """Raise WavError for an unusable file; return True if it must be resampled."""
    info = read_wav_header(path)
    check_pcm16_mono(info, path, None if resample else sample_rate)
    frames = info.num_frames
    if info.sample_rate != sample_rate:  # only reached with resample=True
        frames = frames * sample_rate // max(1, info.sample_rate)
    if path.parent.name == BACKGROUND_NOISE_DIR:
        if frames < clip_samples:
            raise WavError(
                path,
                f"background noise of {frames} samples is shorter than one clip "
                f"({clip_samples} samples at {sample_rate} Hz)",
            )
    elif frames == 0:
        raise WavError(path, "no audio samples")
    return info.sample_rate != sample_rate


def validate_dataset(
    root, sample_rate: int, clip_samples: int, on_bad_file: str = "error", resample: bool = False
) -> list[tuple[str, str]]:
    """Check (and with ``resample`` convert) every ``root/*/*.wav`` in place.

    A file is bad when it is not a WAV, truncated, not 16-bit PCM, not mono, at a rate other than
    ``sample_rate`` (unless ``resample``), empty, or, in ``_background_noise_/``, shorter than
    ``clip_samples``. ``on_bad_file="error"`` raises WavError for the first bad file (saying how many
    others are bad) before changing anything; ``"skip"`` deletes the bad files and returns their
    ``(path relative to root, problem)`` rows, sorted, so the caller can report every one of them.
    """
    if on_bad_file not in ON_BAD_FILE:
        raise ValueError(f"on_bad_file must be one of {ON_BAD_FILE}, got {on_bad_file!r}")
    root = Path(root)
    bad: list[tuple[Path, str]] = []
    to_resample: list[Path] = []
    files = list_wavs(root)
    for path in tqdm(files, desc=f"validate {root.name}", unit="file", mininterval=1.0):
        try:
            if _check(path, sample_rate, clip_samples, resample):
                to_resample.append(path)
        except WavError as exc:
            hint = " (data.resample: true converts it)" if exc.problem.startswith("sample rate") else ""
            bad.append((path, exc.problem + hint))

    rows = [(path.relative_to(root).as_posix(), problem) for path, problem in bad]
    if bad and on_bad_file == "error":
        first, problem = rows[0]
        others = ""
        if len(rows) > 1:
            others = f" ({len(rows) - 1} other file(s) under {root.name}/ are bad too"
            others += "; set data.on_bad_file: skip to leave them out and list them)"
        raise WavError(f"{root.name}/{first}", problem + others)
    for path, _ in bad:
        path.unlink()
    if bad:
        log.warning("skipped %d bad file(s) of %d under %s", len(bad), len(files), root)

    for path in tqdm(to_resample, desc="resample", unit="file", disable=not to_resample):
        write_wav(path, read_wav(path, sample_rate, resample=True), sample_rate)
    if to_resample:
        log.info("resampled %d file(s) to %d Hz under %s", len(to_resample), sample_rate, root)
    return rows
