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
from pipeline.core.fs import printable, remove
from pipeline.core.labels import BACKGROUND_NOISE_DIR
from pipeline.data.clip_store import list_wavs
from pipeline.data.config import ON_BAD_FILE, ON_LONG_CLIP

log = logging.getLogger(__name__)


def _check(
    path: Path, sample_rate: int, clip_samples: int, resample: bool, max_samples: int | None = None
) -> tuple[bool, int]:
    """Raise WavError for an unusable file; return (must be resampled, length in samples at
    ``sample_rate``)."""
    info = read_wav_header(path)
    check_pcm16_mono(info, path, None if resample else sample_rate)
    frames = info.num_frames
    if info.sample_rate != sample_rate:  # only reached with resample=True
        frames = frames * sample_rate // max(1, info.sample_rate)
    if path.parent.name == BACKGROUND_NOISE_DIR:
        if frames <= clip_samples:  # augmentation cuts a clip at a random offset: it needs more
            raise WavError(
                path,
                f"background noise of {frames} samples is not longer than one clip "
                f"({clip_samples} samples at {sample_rate} Hz)",
            )
    elif frames == 0:
        raise WavError(path, "no audio samples")
    elif max_samples is not None and frames > max_samples:
        raise WavError(
            path,
            f"{frames / sample_rate:.1f} s long, more than {max_samples / clip_samples:g} clips "
            f"(data.max_clip_multiple x features.clip_duration_ms = {max_samples / sample_rate:g} s)",
        )
    return info.sample_rate != sample_rate, frames


def _name_problem(path: Path, root: Path) -> str:
    """Why a path cannot go into the data set by its name alone ('' when it can)."""
    try:
        path.relative_to(root).as_posix().encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8 (rename it)"
    return ""


def validate_dataset(
    root,
    sample_rate: int,
    clip_samples: int,
    on_bad_file: str = "error",
    resample: bool = False,
    on_long_clip: str = "truncate",
    max_clip_multiple: float | None = None,
    shown: str = "",
) -> list[tuple[str, str]]:
    """Check (and with ``resample`` convert) every ``root/*/*.wav`` in place.

    A file is bad when its name is not valid UTF-8, it cannot be read, is not a WAV, truncated,
    not 16-bit PCM, not mono, at a rate other than ``sample_rate`` (unless ``resample``), empty,
    in a word folder longer than ``max_clip_multiple`` clips, or, in ``_background_noise_/``,
    shorter than ``clip_samples``. ``on_bad_file="error"`` raises WavError for the first bad file
    (saying how many others are bad) before changing anything; ``"skip"`` deletes the bad files
    and returns their ``(path relative to root, problem)`` rows, sorted, so the caller can report
    every one of them (paths with non-UTF-8 bytes as ``\\xNN`` escapes).

    A word clip longer than ``clip_samples`` (but within the limit) is its own class, with its own
    policy ``on_long_clip``: ``"truncate"`` keeps it (featurize uses its first ``clip_samples``)
    and logs a warning with their count, ``"skip"`` deletes and reports it like a bad file,
    ``"error"`` raises WavError naming the first.

    ``shown``: how warnings name ``root`` (the caller's final location when ``root`` is a
    temporary folder); ``root`` itself by default.
    """
    if on_bad_file not in ON_BAD_FILE:
        raise ValueError(f"on_bad_file must be one of {ON_BAD_FILE}, got {on_bad_file!r}")
    if on_long_clip not in ON_LONG_CLIP:
        raise ValueError(f"on_long_clip must be one of {ON_LONG_CLIP}, got {on_long_clip!r}")
    root = Path(root)
    shown = shown or str(root)
    max_samples = None if max_clip_multiple is None else int(max_clip_multiple * clip_samples)
    bad: list[tuple[Path, str]] = []
    long: list[tuple[Path, int]] = []
    to_resample: list[Path] = []
    files = list_wavs(root)
    for path in tqdm(files, desc=f"validate {root.name}", unit="file", mininterval=1.0):
        problem = _name_problem(path, root)
        if problem:
            bad.append((path, problem))
            continue
        try:
            needs_resample, frames = _check(path, sample_rate, clip_samples, resample, max_samples)
        except OSError as exc:  # a folder named *.wav, an I/O error
            bad.append((path, f"cannot read: {exc.strerror or exc}"))
            continue
        except WavError as exc:
            hint = (
                " (data.resample: true converts it)"
                if exc.problem.startswith("sample rate")
                else ""
            )
            bad.append((path, exc.problem + hint))
            continue
        if needs_resample:
            to_resample.append(path)
        if frames > clip_samples and path.parent.name != BACKGROUND_NOISE_DIR:
            long.append((path, frames))

    def describe(frames: int) -> str:
        return (
            f"{frames / sample_rate:.2f} s long, longer than one clip "
            f"({1000 * clip_samples / sample_rate:g} ms)"
        )

    rows = [(printable(path.relative_to(root).as_posix()), problem) for path, problem in bad]
    if bad and on_bad_file == "error":
        first, problem = rows[0]
        others = ""
        if len(rows) > 1:
            others = f" ({len(rows) - 1} other file(s) under {root.name}/ are bad too"
            others += "; set data.on_bad_file: skip to leave them out and list them)"
        raise WavError(f"{root.name}/{first}", problem + others)
    if long and on_long_clip == "error":
        path, frames = long[0]
        others = (
            f" ({len(long) - 1} other clip(s) under {root.name}/ are too)" if len(long) > 1 else ""
        )
        raise WavError(
            f"{root.name}/{printable(path.relative_to(root).as_posix())}",
            describe(frames)
            + others
            + "; data.on_long_clip: truncate keeps them, skip leaves them out",
        )
    if long and on_long_clip == "skip":
        bad.extend((path, describe(frames) + " (data.on_long_clip: skip)") for path, frames in long)
        bad.sort()
        dropped = {path for path, _ in long}
        to_resample = [path for path in to_resample if path not in dropped]
        rows = [(printable(path.relative_to(root).as_posix()), problem) for path, problem in bad]
    for path, _ in bad:
        remove(path)
    if bad:
        log.warning("skipped %d bad file(s) of %d under %s", len(bad), len(files), shown)
    if long and on_long_clip == "truncate":
        path, frames = max(long, key=lambda item: item[1])
        clip_ms = 1000 * clip_samples / sample_rate
        log.warning(
            "%d clip(s) under %s are longer than one clip (%g ms), the longest %s of %.2f s; "
            "they are kept and featurize uses their first %g ms (data.on_long_clip: skip "
            "leaves them out, error stops)",
            len(long),
            shown,
            clip_ms,
            printable(path.relative_to(root).as_posix()),
            frames / sample_rate,
            clip_ms,
        )

    for path in tqdm(to_resample, desc="resample", unit="file", disable=not to_resample):
        write_wav(path, read_wav(path, sample_rate, resample=True), sample_rate)
    if to_resample:
        log.info("resampled %d file(s) to %d Hz under %s", len(to_resample), sample_rate, shown)
    return rows
