"""Check every clip of a materialised data set before anything trains on it.

The download stage calls :func:`validate_dataset` on ``data/raw/dataset`` (and on
``data/raw/official_test``). A bad clip found here gets a message naming it; found later it would
crash featurize half way, or worse, be decoded as noise. Only headers are parsed (a 105k-clip data
set is checked in seconds); samples are decoded only for the clips that are converted.

Two modes: strict (a published data set: a clip that is not 16-bit mono PCM WAV is a bad file; its
rate alone may be converted with ``resample``) and ``convert`` (the user's own recordings: any
format :mod:`convert` reads is converted; a clip is bad only when it cannot be read).

Three steps: :func:`scan` reads every file's header into :class:`ClipFacts` (touching nothing),
:func:`decide` turns the facts and the policies into a :class:`Verdict` or refuses the data set
(pure: no file is read or changed), and :func:`apply` removes, reports and resamples.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from pipeline.core.audio import check_pcm16_mono, read_wav_header
from pipeline.core.errors import WavError
from pipeline.core.fs import name_text, printable, remove
from pipeline.core.labels import BACKGROUND_NOISE_DIR
from pipeline.data.acquire.convert import TARGET_ENCODING, SourceFormat, convert, is_audio, probe
from pipeline.data.clip_store import list_wavs
from pipeline.data.config import ON_BAD_FILE, ON_LONG_CLIP

log = logging.getLogger(__name__)


def _check(
    path: Path,
    sample_rate: int,
    clip_samples: int,
    resample: bool,
    max_samples: int | None = None,
    convert_any: bool = False,
) -> ClipFacts:
    """Raise WavError for an unusable file; return its facts (length in samples at
    ``sample_rate``, what converting it changes)."""
    if convert_any:
        fmt = probe(path)
    else:
        info = read_wav_header(path)
        check_pcm16_mono(info, path, None if resample else sample_rate)
        fmt = SourceFormat(info.sample_rate, 1, info.num_frames, TARGET_ENCODING)
    frames = fmt.frames
    if fmt.sample_rate != sample_rate:  # only reached with resample or convert_any
        frames = frames * sample_rate // max(1, fmt.sample_rate)
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
            "(data.max_clip_multiple x features.clip_duration_ms = "
            f"{max_samples / sample_rate:g} s)",
        )
    changes = fmt.changes(path, sample_rate)
    return ClipFacts(path, frames=frames, changes=changes, was=fmt.describe() if changes else "")


def _name_problem(path: Path, root: Path) -> str:
    """Why a path cannot go into the data set by its name alone ('' when it can)."""
    try:
        name_text(path.relative_to(root).as_posix())
    except UnicodeDecodeError:
        return "file name is not valid UTF-8 (rename it)"
    return ""


@dataclass(frozen=True)
class ClipFacts:
    """What scanning found about one file: why it is unusable (``problem``; '' for a usable clip),
    else its length in samples at the target rate and what converting it changes (``changes``:
    some of format, channels, rate, name; none when it is in the data set's format already), and
    ``was``, its format before (for the conversion report)."""

    path: Path
    problem: str = ""
    frames: int = 0
    changes: tuple[str, ...] = ()
    was: str = ""


@dataclass(frozen=True)
class Verdict:
    """What to do with a scanned data set: the files to remove and report (``skip``: ``(path,
    problem)`` in report order), the clips to convert, and the long clips kept for featurize to
    truncate (``kept_long``: ``(path, frames)``)."""

    skip: list[tuple[Path, str]]
    convert: list[ClipFacts]
    kept_long: list[tuple[Path, int]]


def list_audio(root) -> list[Path]:
    """``root/*/*`` files with an audio suffix (:data:`convert.AUDIO_SUFFIXES`), in name order."""
    return sorted(
        (p for p in Path(root).glob("*/*") if is_audio(p)),
        key=lambda p: p.relative_to(root).as_posix(),
    )


def _converted_name_problem(path: Path, root: Path, taken: set[Path]) -> str:
    """Why ``path`` cannot become ``<stem>.wav`` (another file has that name; '' when it can)."""
    target = path.with_suffix(".wav")
    if target == path:
        return ""
    if target in taken:
        return f"converted it would be {_shown(target, root)}, which another file is; rename one"
    taken.add(target)
    return ""


def scan(
    root: Path,
    sample_rate: int,
    clip_samples: int,
    resample: bool,
    max_samples: int | None = None,
    convert_any: bool = False,
) -> list[ClipFacts]:
    """The facts of every ``root/*/*.wav`` (with ``convert_any``: every audio file) in name
    order, from its name and header only."""
    files = list_audio(root) if convert_any else list_wavs(root)
    taken = {path for path in files if path.suffix == ".wav"}
    facts = []
    for path in tqdm(files, desc=f"validate {root.name}", unit="file", mininterval=1.0):
        problem = _name_problem(path, root) or _converted_name_problem(path, root, taken)
        if problem:
            facts.append(ClipFacts(path, problem))
            continue
        try:
            fact = _check(path, sample_rate, clip_samples, resample, max_samples, convert_any)
        except OSError as exc:  # a folder named *.wav, an I/O error
            facts.append(ClipFacts(path, f"cannot read: {exc.strerror or exc}"))
            continue
        except WavError as exc:
            hint = (
                " (data.resample: true converts it)"
                if exc.problem.startswith("sample rate")
                else ""
            )
            facts.append(ClipFacts(path, exc.problem + hint))
            continue
        facts.append(fact)
    return facts


def _shown(path: Path, root: Path) -> str:
    return printable(path.relative_to(root).as_posix())


def _describe_long(frames: int, sample_rate: int, clip_samples: int) -> str:
    return (
        f"{frames / sample_rate:.2f} s long, longer than one clip "
        f"({1000 * clip_samples / sample_rate:g} ms)"
    )


def _check_policies(on_bad_file: str, on_long_clip: str) -> None:
    if on_bad_file not in ON_BAD_FILE:
        raise ValueError(f"on_bad_file must be one of {ON_BAD_FILE}, got {on_bad_file!r}")
    if on_long_clip not in ON_LONG_CLIP:
        raise ValueError(f"on_long_clip must be one of {ON_LONG_CLIP}, got {on_long_clip!r}")


def decide(
    facts: list[ClipFacts],
    root: Path,
    sample_rate: int,
    clip_samples: int,
    on_bad_file: str = "error",
    on_long_clip: str = "truncate",
) -> Verdict:
    """The verdict on a scanned data set under the two policies (see :func:`validate_dataset`);
    WavError naming the first offending file where a policy is ``"error"``. Pure: ``root`` only
    names the files."""
    _check_policies(on_bad_file, on_long_clip)
    bad = [(f.path, f.problem) for f in facts if f.problem]
    usable = [f for f in facts if not f.problem]
    to_convert = [f for f in usable if f.changes]
    long = [
        (f.path, f.frames)
        for f in usable
        if f.frames > clip_samples and f.path.parent.name != BACKGROUND_NOISE_DIR
    ]
    if bad and on_bad_file == "error":
        path, problem = bad[0]
        others = ""
        if len(bad) > 1:
            others = f" ({len(bad) - 1} other file(s) are bad too"
            others += "; set data.on_bad_file: skip to leave them out and list them)"
        raise WavError(f"{root.name}/{_shown(path, root)}", problem + others)
    if long and on_long_clip == "error":
        path, frames = long[0]
        others = f" ({len(long) - 1} other clip(s) are too)" if len(long) > 1 else ""
        raise WavError(
            f"{root.name}/{_shown(path, root)}",
            _describe_long(frames, sample_rate, clip_samples)
            + others
            + "; data.on_long_clip: truncate keeps them, skip leaves them out",
        )
    if long and on_long_clip == "skip":
        bad.extend(
            (path, _describe_long(frames, sample_rate, clip_samples) + " (data.on_long_clip: skip)")
            for path, frames in long
        )
        bad.sort()
        dropped = {path for path, _ in long}
        to_convert = [f for f in to_convert if f.path not in dropped]
    return Verdict(
        skip=bad, convert=to_convert, kept_long=long if on_long_clip == "truncate" else []
    )


def apply(
    verdict: Verdict,
    root: Path,
    sample_rate: int,
    clip_samples: int,
    scanned: int,
    shown: str,
    converted: list | None = None,
) -> list[tuple[str, str]]:
    """Carry out ``verdict``: remove the skipped files, warn of them and of the long clips kept,
    convert; return the skipped files' ``(path relative to root, problem)`` rows. ``scanned``:
    how many files were checked; ``shown``: how messages name ``root``; ``converted`` gets a
    ``(path relative to root, format before, what changed)`` row per converted file. A file
    that fails to decode during conversion raises WavError naming ``<root name>/<path>``."""
    for path, _ in verdict.skip:
        remove(path)
    if verdict.skip:
        log.warning("skipped %d bad file(s) of %d under %s", len(verdict.skip), scanned, shown)
    if verdict.kept_long:
        path, frames = max(verdict.kept_long, key=lambda item: item[1])
        clip_ms = 1000 * clip_samples / sample_rate
        log.warning(
            "%d clip(s) under %s are longer than one clip (%g ms), the longest %s of %.2f s; "
            "they are kept and featurize uses their first %g ms (data.on_long_clip: skip "
            "leaves them out, error stops)",
            len(verdict.kept_long),
            shown,
            clip_ms,
            _shown(path, root),
            frames / sample_rate,
            clip_ms,
        )
    to_convert = verdict.convert
    for fact in tqdm(to_convert, desc="convert", unit="file", disable=not to_convert):
        try:
            convert(fact.path, fact.changes, sample_rate)
        except WavError as exc:
            raise WavError(f"{root.name}/{_shown(fact.path, root)}", exc.problem) from None
        if converted is not None:
            converted.append((_shown(fact.path, root), fact.was, ", ".join(fact.changes)))
    return [(_shown(path, root), problem) for path, problem in verdict.skip]


def validate_dataset(
    root,
    sample_rate: int,
    clip_samples: int,
    on_bad_file: str = "error",
    resample: bool = False,
    on_long_clip: str = "truncate",
    max_clip_multiple: float | None = None,
    shown: str = "",
    convert_any: bool = False,
    converted: list | None = None,
) -> list[tuple[str, str]]:
    """Check (and with ``resample`` or ``convert_any`` convert) every ``root/*/*.wav`` in place.

    A file is bad when its name is not valid UTF-8, it cannot be read, is not a WAV, truncated,
    not 16-bit PCM, not mono, at a rate other than ``sample_rate`` (unless ``resample``), empty,
    in a word folder longer than ``max_clip_multiple`` clips, or, in ``_background_noise_/``,
    shorter than ``clip_samples``. ``on_bad_file="error"`` raises WavError for the first bad file
    (saying how many others are bad) before changing anything; ``"skip"`` deletes the bad files
    and returns their ``(path relative to root, problem)`` rows, sorted, so the caller can report
    every one of them (paths with non-UTF-8 bytes as ``\\xNN`` escapes).

    ``convert_any`` (the user's own recordings) takes every file with an audio suffix (``.wav``,
    ``.flac``, ``.ogg``, any case) in any format :mod:`convert` reads, at any rate and channel
    count, and converts it to 16-bit mono PCM ``<name>.wav`` at ``sample_rate``; a file is then bad
    only when it cannot be read (or would take another file's name). Each converted file adds a
    ``(path relative to root, format before, what changed)`` row to ``converted``.

    A word clip longer than ``clip_samples`` (but within the limit) is its own class, with its own
    policy ``on_long_clip``: ``"truncate"`` keeps it (featurize uses its first ``clip_samples``)
    and logs a warning with their count, ``"skip"`` deletes and reports it like a bad file,
    ``"error"`` raises WavError naming the first.

    ``shown``: how warnings name ``root`` (the caller's final location when ``root`` is a
    temporary folder); ``root`` itself by default.
    """
    _check_policies(on_bad_file, on_long_clip)
    root = Path(root)
    max_samples = None if max_clip_multiple is None else int(max_clip_multiple * clip_samples)
    facts = scan(root, sample_rate, clip_samples, resample, max_samples, convert_any)
    verdict = decide(facts, root, sample_rate, clip_samples, on_bad_file, on_long_clip)
    return apply(
        verdict, root, sample_rate, clip_samples, len(facts), shown or str(root), converted
    )


SPEAKER_NAME = re.compile(r".+_nohash_\d+")


def warn_of_speakerless_names(root, shown: str) -> int:
    """Warn once when word clips under ``root`` are not named ``<speaker>_nohash_<n>.<suffix>``:
    the split hashes the part before ``_nohash_`` to keep a speaker's clips in one of training,
    validation and test, so without it clips of one speaker can land on both sides and the test
    accuracy says less. Returns how many are not."""
    root = Path(root)
    clips = [p for p in list_audio(root) if p.parent.name != BACKGROUND_NOISE_DIR]
    unnamed = [p for p in clips if not SPEAKER_NAME.fullmatch(p.stem)]
    if unnamed:
        log.warning(
            "%d of %d clip(s) under %s are not named <speaker>_nohash_<n>.wav (e.g. %s): the "
            "split cannot keep speakers apart, so one speaker's clips can land in both training "
            "and test; name each file <speaker>_nohash_<n>.wav (e.g. yes/alice_nohash_0.wav, "
            "yes/alice_nohash_1.wav, yes/bob_nohash_0.wav)",
            len(unnamed),
            len(clips),
            shown,
            _shown(unnamed[0], root),
        )
    return len(unnamed)
