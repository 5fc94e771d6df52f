"""Materialise the data set under data/raw/ as clip stores (the download stage).

Sources (``data.source``): ``embedded`` (generated offline with espeak-ng, embedded.py),
``url`` (Speech Commands tarball, resumable, in .cache/downloads/ until data/raw is built, then
removed unless ``data.keep_download``), ``archive`` (a local
.tar.gz/.tgz/.zip) or ``dir`` (a local folder). With ``data.test_set: official`` the official test
set is fetched too, from a URL, archive or folder. The clips are first put in the training layout
in a temporary folder and checked by ``validate.validate_dataset`` (skipped clips are listed in
data/raw/skipped.csv); then each data set is packed into a clip store (``clip_store.py``:
``data/raw/dataset/`` and ``data/raw/official_test/``, three files each instead of 105,829 WAVs)
and the temporary folder is deleted.

``dir`` is the door for the user's own recordings: clips in any format ``convert.py`` reads are
converted on ingest (listed in data/raw/converted.csv), and messages name the user's files (under
``data.dir`` as written), never the temporary copies. Any data set without ``_background_noise_/``
gets the embedded generator's noise instead, and one whose clip names carry no speaker
(``<speaker>_nohash_<n>.wav``) a warning that the split cannot keep speakers apart.

``data.synthetic: true`` (dir, url or archive) adds the embedded generator's speakers to the
recorded clips, after these are checked: the same words (``split.wanted_words`` and
``data.embedded.unknown_words``) in ``<word>/synth-<id>_nohash_<k>.wav``, counted in
source.json's ``synthetic``. The split puts every ``synth-`` speaker in training.

data/raw/ is written atomically: a failure anywhere (network, checksum, a hostile archive, a bad
clip with ``on_bad_file: error``) leaves no data/raw at all, so DVC never caches a partial one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from pipeline.core.clip import ClipFormat
from pipeline.core.errors import StageError, WavError
from pipeline.core.fs import (
    atomic_dir,
    atomic_write_json,
    atomic_write_text,
    not_a_regular_file,
    printable,
    remove,
    sha256_file,
)
from pipeline.core.labels import BACKGROUND_NOISE_DIR
from pipeline.data.acquire.archive import DamagedArchiveError, Limits, extract
from pipeline.data.acquire.convert import is_audio
from pipeline.data.acquire.fetch import cache_path, check_sha256, fetch, forget
from pipeline.data.acquire.validate import validate_dataset, warn_of_speakerless_names
from pipeline.data.clip_store import pack_folder
from pipeline.data.config import SYNTHETIC_SPEAKER_PREFIX, DataConfig
from pipeline.data.manifest import converted_text, skipped_text

log = logging.getLogger(__name__)
# Top-level text files of the data set worth keeping (licence, readme, the original split lists).
KEPT_TOP_LEVEL = ("LICENSE", "README.md", "validation_list.txt", "testing_list.txt")
IGNORED_DIRS = ("__MACOSX",)


def _is_clip(path: Path, any_audio: bool) -> bool:
    """A clip file by its name: ``*.wav``, or with ``any_audio`` any audio suffix, any case."""
    return is_audio(path) if any_audio else path.suffix == ".wav"


def _clips_in(folder: Path, any_audio: bool = False) -> list[Path]:
    return sorted(p for p in folder.glob("*") if _is_clip(p, any_audio))


def _clip_folders(root: Path, any_audio: bool = False) -> list[Path]:
    return sorted(
        p
        for p in root.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and p.name not in IGNORED_DIRS
        and _clips_in(p, any_audio)
    )


def find_layout_root(folder: Path, what: str, any_audio: bool = False) -> Path:
    """The folder holding ``<word>/*.wav``: ``folder`` itself or its single wrapping folder.

    ``any_audio``: a clip may be any audio file (``convert.AUDIO_SUFFIXES``), not only ``*.wav``."""
    try:
        os.listdir(folder)
    except OSError as exc:
        raise StageError(f"{what}: cannot read the folder: {exc.strerror}") from None
    if _clip_folders(folder, any_audio):
        return folder
    subdirs = [
        p
        for p in folder.iterdir()
        if p.is_dir() and not p.name.startswith(".") and p.name not in IGNORED_DIRS
    ]
    if len(subdirs) == 1 and _clip_folders(subdirs[0], any_audio):
        return subdirs[0]
    raise StageError(
        f"{what}: no <word>/*.wav clips found at its top level or inside a single wrapping folder "
        "(expected the Speech Commands layout: yes/*.wav, no/*.wav, ..., _background_noise_/*.wav)"
    )


def collect_clips(
    src_root: Path, dest: Path, move: bool, progress: bool = True, any_audio: bool = False
) -> list[tuple[str, str]]:
    """Copy (or move) ``<folder>/*.wav`` (with ``any_audio``: every audio file) and the kept
    top-level files into ``dest``, under the same names.

    Returns ``(path relative to dest, problem)`` for what could not be taken: a symbolic link
    loop, a dangling link, a folder named ``*.wav``, an unreadable file or word folder (the caller
    applies ``data.on_bad_file`` to them, like to bad clips).
    """
    from tqdm import tqdm

    problems: list[tuple[str, str]] = []
    for folder in sorted(src_root.iterdir()):
        if folder.is_dir() and not folder.name.startswith(".") and folder.name not in IGNORED_DIRS:
            try:
                os.listdir(folder)
            except OSError as exc:
                problems.append(
                    (printable(folder.name) + "/", f"cannot read the folder: {exc.strerror}")
                )
    files = [
        (folder.name, wav)
        for folder in _clip_folders(src_root, any_audio)
        for wav in _clips_in(folder, any_audio)
    ]
    dest.mkdir(parents=True, exist_ok=True)
    for folder, wav in tqdm(
        files, desc="collect clips", unit="file", disable=not progress, mininterval=1.0
    ):
        rel = f"{folder}/{wav.name}"
        problem = not_a_regular_file(wav)
        if problem:
            problems.append((printable(rel), problem))
            continue
        target = dest / folder / wav.name
        target.parent.mkdir(exist_ok=True)
        try:  # opened apart from the copy below: a clip that cannot be read is skipped
            source = open(wav, "rb")  # noqa: SIM115 (closed by the `with source` below)
        except OSError as exc:
            problems.append((printable(rel), f"cannot read: {exc.strerror}"))
            continue
        try:
            with source:
                if move and not wav.is_symlink():
                    wav.rename(target)
                else:
                    with open(target, "wb") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
        except OSError as exc:
            raise StageError(
                f"{printable(wav)}: copying it into the data set failed: {exc.strerror or exc}"
            ) from None
    for name in KEPT_TOP_LEVEL:
        source = src_root / name
        if source.is_file() and not source.is_symlink():
            try:
                shutil.copyfile(source, dest / name)
            except OSError as exc:
                log.warning("%s: not kept, cannot read it: %s", source, exc.strerror)
    return sorted(problems)


def tree_sha256(root: Path) -> str:
    """One digest of a folder's ``*/*`` audio files (names and contents), order-independent."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.glob("*/*") if is_audio(p)):
        digest.update(os.fsencode(f"{path.relative_to(root).as_posix()}\t{sha256_file(path)}\n"))
    return digest.hexdigest()


def _from_archive(
    archive: Path, dest: Path, staging: Path, what: str, progress: bool, limits: Limits | None
) -> list[tuple[str, str]]:
    """Extract into ``staging`` (inside the atomic output folder), then move clips into ``dest``."""
    extract(archive, staging, limits)
    problems = collect_clips(find_layout_root(staging, what), dest, move=True, progress=progress)
    remove(staging)
    return problems


def materialise(
    kind: str,
    location: str,
    sha256: str,
    dest: Path,
    staging: Path,
    cache_dir: Path,
    progress: bool = True,
    retries: int = 3,
    limits: Limits | None = None,
    problems: list | None = None,
    any_audio: bool = False,
) -> dict:
    """Put the clips from ``location`` (kind: url, archive or dir) into ``dest``; describe them.

    Archives are extracted within ``limits``; what could not be taken is appended to ``problems``
    as ``(path relative to dest, problem)``. ``any_audio`` (a dir of the user's recordings): every
    audio file is a clip, not only ``*.wav``."""
    problems = [] if problems is None else problems
    if kind == "url":
        if not location:
            raise StageError("data.url is empty; set it to the data set's .tar.gz URL")
        path, digest = fetch(location, cache_dir, sha256, retries=retries, progress=progress)
        try:
            problems += _from_archive(path, dest, staging, location, progress, limits)
        except DamagedArchiveError as exc:  # not worth keeping: the next run downloads it again
            forget(path)
            raise DamagedArchiveError(
                f"{exc}; the download was removed from the cache ({path}), so "
                "the next run fetches it again"
            ) from None
        return {"url": location, "sha256": digest, "bytes": path.stat().st_size}
    if kind == "archive":
        path = Path(location)
        if not location or not path.is_file():
            raise StageError(
                f"archive {location!r} not found (data.archive / data.test_set_source)"
            )
        digest = check_sha256(path, sha256, str(path), delete=False)
        problems += _from_archive(path, dest, staging, str(path), progress, limits)
        return {"archive": str(path), "sha256": digest, "bytes": path.stat().st_size}
    if kind == "dir":
        path = Path(location)
        if not location or not path.is_dir():
            raise StageError(f"folder {location!r} not found (data.dir / data.test_set_source)")
        problems += collect_clips(
            find_layout_root(path, str(path), any_audio),
            dest,
            move=False,
            progress=progress,
            any_audio=any_audio,
        )
        return {"dir": str(path), "sha256": tree_sha256(dest)}
    raise ValueError(f"unknown source kind {kind!r}")


def source_kind(location: str) -> str:
    """url, dir or archive for data.test_set_source."""
    if location.startswith(("http://", "https://")):
        return "url"
    if Path(location).is_dir():
        return "dir"
    if Path(location).is_file():
        return "archive"
    raise StageError(
        f"data.test_set_source {location!r} is neither an http(s) URL nor an existing file or "
        "folder"
    )


def _count(root: Path) -> dict[str, int]:
    return {folder.name: len(list(folder.glob("*.wav"))) for folder in _clip_folders(root)}


def _validate(
    root: Path,
    named: str,
    sample_rate: int,
    clip_samples: int,
    data: DataConfig,
    collected=(),
    convert_any: bool = False,
    converted: list | None = None,
):
    """Run the shared clip checks; name each file ``<named>/<path relative to root>`` (where it
    will be once data/raw is in place, or the user's own file).

    ``collected``: ``(path, problem)`` of what :func:`collect_clips` could not take, under the
    same ``data.on_bad_file`` policy; ``convert_any`` and ``converted``: as in
    :func:`validate.validate_dataset`."""
    if collected and data.on_bad_file == "error":
        path, problem = collected[0]
        others = ""
        if len(collected) > 1:
            others = (
                f" ({len(collected) - 1} other file(s) are bad too; set data.on_bad_file: skip "
                "to leave them out and list them)"
            )
        raise WavError(f"{named}/{path}", problem + others)
    try:
        rows = validate_dataset(
            root,
            sample_rate,
            clip_samples,
            data.on_bad_file,
            data.resample,
            data.on_long_clip,
            data.max_clip_multiple,
            named,
            convert_any,
            converted,
        )
    except WavError as exc:  # exc.path is "<root name>/<rel>"; name the file as the user knows it
        raise WavError(f"{named}/{exc.path.split('/', 1)[1]}", exc.problem) from None
    return [(f"{named}/{path}", problem) for path, problem in sorted([*collected, *rows])]


def build_raw(
    out,
    data: DataConfig,
    clip: ClipFormat,
    cache_dir,
    progress: bool = True,
    retries: int = 3,
    wanted_words=(),
) -> dict:
    """Write ``out`` (the stores dataset/ and official_test/, source.json, skipped.csv, and
    converted.csv when clips were converted) atomically.

    ``wanted_words`` (``split.wanted_words``) are what the embedded source speaks besides
    ``data.embedded.unknown_words``; other sources ignore them. Returns the contents of
    source.json.
    """
    out, cache_dir = Path(out), Path(cache_dir)
    fetched: list[str] = []  # URLs downloaded into cache_dir, removed after success unless kept
    sample_rate, clip_samples = clip.sample_rate, clip.desired_samples
    limits = Limits.of(data)
    collected: list = []
    converted: list = []
    own = data.source == "dir"  # the user's recordings: any audio format, converted on ingest
    with atomic_dir(out) as tmp:
        loose = tmp / ".loose"  # the clips as WAV files in the training layout, until packed
        dataset = loose / "dataset"
        info: dict = {"source": data.source}
        if data.source == "embedded":
            info.update(_generate(dataset, data, clip, progress, wanted_words))
        else:
            info.update(
                materialise(
                    data.source,
                    data.location,
                    data.sha256,
                    dataset,
                    tmp / ".extract",
                    cache_dir,
                    progress,
                    retries,
                    limits,
                    collected,
                    any_audio=own,
                )
            )
            if data.source == "url":
                fetched.append(data.location)
        named = (out / "dataset").as_posix()
        if own:
            layout = find_layout_root(Path(data.dir), data.dir, any_audio=True)
            named = printable(layout.as_posix())
        if data.source != "embedded":
            warn_of_speakerless_names(dataset, named)
        skipped = _validate(
            dataset, named, sample_rate, clip_samples, data, collected, own, converted
        )
        converted = [("dataset", *row) for row in converted]
        if data.synthetic:
            info["synthetic"] = _add_synthetic(
                dataset, loose / "synthetic", data, clip, progress, wanted_words, named
            )
        info["counts"] = _count(dataset)
        if BACKGROUND_NOISE_DIR not in info["counts"]:
            info["generated_noise"] = _generate_noise(dataset, data, clip, named, out)
            info["counts"] = _count(dataset)
        info["store"] = pack_folder(
            dataset, tmp / "dataset", sample_rate, consume=True, progress=progress
        )
        if data.test_set == "official":
            official = loose / "official_test"
            kind = source_kind(data.test_set_source)
            collected = []
            test_info = materialise(
                kind,
                data.test_set_source,
                data.test_set_sha256,
                official,
                tmp / ".extract",
                cache_dir,
                progress,
                retries,
                limits,
                collected,
            )
            if kind == "url":
                fetched.append(data.test_set_source)
            official_converted: list = []
            skipped += _validate(
                official,
                (out / "official_test").as_posix(),
                sample_rate,
                clip_samples,
                data,
                collected,
                converted=official_converted,
            )
            converted += [("official_test", *row) for row in official_converted]
            test_info["counts"] = _count(official)
            test_info["store"] = pack_folder(
                official, tmp / "official_test", sample_rate, consume=True, progress=progress
            )
            info["official_test"] = test_info
        remove(loose)
        info["skipped"] = len(skipped)
        atomic_write_text(tmp / "skipped.csv", skipped_text(skipped))
        if converted:
            atomic_write_text(tmp / "converted.csv", converted_text(converted))
        atomic_write_json(tmp / "source.json", info)
    if not data.keep_download:  # data/raw is in place: the archives are redundant now
        for url in fetched:
            forget(cache_path(url, cache_dir))
            log.info(
                "removed the downloaded %s from %s (data.keep_download: false)", url, cache_dir
            )
    total = sum(n for k, n in info["counts"].items() if k != BACKGROUND_NOISE_DIR)
    if converted:
        _log_conversions(converted, out, sample_rate)
    log.info(
        "data set ready in %s: %d clips in %d word folders (%d skipped), packed into %s",
        out,
        total,
        len(info["counts"]) - (BACKGROUND_NOISE_DIR in info["counts"]),
        len(skipped),
        out / "dataset",
    )
    return info


def _log_conversions(converted: list, out: Path, sample_rate: int) -> None:
    """The one summary line of what was converted (each file is in converted.csv)."""
    kinds: dict[str, int] = {}
    for *_, changes in converted:
        for change in changes.split(", "):
            kinds[change] = kinds.get(change, 0) + 1
    log.info(
        "converted %d file(s) to 16-bit mono PCM WAV at %d Hz (%s); each is listed in %s",
        len(converted),
        sample_rate,
        ", ".join(f"{kind}: {n}" for kind, n in kinds.items()),
        out / "converted.csv",
    )


def _generate_noise(dataset: Path, data: DataConfig, clip: ClipFormat, named: str, out) -> dict:
    """The embedded generator's background noise for a data set that has none; warns once."""
    from pipeline.data.acquire.embedded import generate_noise

    settings = data.embedded
    files = generate_noise(dataset, settings, clip.sample_rate)
    log.warning(
        "%s has no %s/ folder: using generated noise instead (%s, %g s each, "
        "data.embedded.noise_seconds; in %s/%s/); add a %s/ folder of recordings of where the "
        "model will listen (WAVs longer than one clip) to use your own",
        named,
        BACKGROUND_NOISE_DIR,
        ", ".join(files),
        settings.noise_seconds,
        (out / "dataset").as_posix(),
        BACKGROUND_NOISE_DIR,
        BACKGROUND_NOISE_DIR,
    )
    return {"files": files, "seconds": settings.noise_seconds, "seed": settings.seed}


def _add_synthetic(
    dataset: Path,
    staging: Path,
    data: DataConfig,
    clip: ClipFormat,
    progress: bool,
    wanted_words,
    named: str,
) -> dict:
    """``data.synthetic``: the embedded generator's speakers (``data.embedded``, no noise) moved
    into the recorded ``dataset`` as ``<word>/synth-<id>_nohash_<k>.wav``, a word into the
    recorded folder of the same label if there is one; facts for source.json.

    A recorded clip whose speaker already starts with the prefix is refused (the split would take
    it for a generated one and keep it out of validation and test)."""
    from pipeline.core.labels import label_for
    from pipeline.data.acquire.embedded import generate_dataset
    from pipeline.data.clip_store import speaker_of

    prefix = SYNTHETIC_SPEAKER_PREFIX
    folders = {}
    for folder in sorted(p for p in dataset.iterdir() if p.is_dir()):
        folders.setdefault(label_for(folder.name), folder)
        for path in sorted(folder.glob("*.wav")):
            if speaker_of(path.name).startswith(prefix):
                raise StageError(
                    f"{named}/{folder.name}/{path.name}: the speaker name starts with {prefix!r}, "
                    "which data.synthetic: true keeps for generated speakers; rename the file"
                )
    generated = generate_dataset(
        staging,
        data.embedded,
        wanted_words,
        sample_rate=clip.sample_rate,
        clip_samples=clip.desired_samples,
        progress=progress,
        noise=False,
    )
    speakers = sum(
        len(generated.get(kind, []))
        for kind in ("speakers", "pico_speakers", "kokoro_speakers", "piper_speakers")
    )
    counts: dict[str, int] = {}
    for word in sorted(p for p in staging.iterdir() if p.is_dir()):
        target = folders.get(word.name, dataset / word.name)
        target.mkdir(exist_ok=True)
        clips = sorted(word.glob("*.wav"))
        for path in clips:
            path.rename(target / f"{prefix}{path.name}")
        counts[target.name] = len(clips)
    remove(staging)
    log.info(
        "data.synthetic: added %d generated clips of %d speakers (%s<id>_nohash_<k>.wav; the "
        "split puts them in training only)",
        generated["clips"],
        speakers,
        prefix,
    )
    return {
        "generator": generated["generator"],
        "embedded": _recorded_settings(data),
        "speakers": speakers,
        "clips": generated["clips"],
        "sped_up": generated["sped_up"],
        "trimmed": generated["trimmed"],
        "counts": counts,
    }


# The data.embedded keys source.json always records; the later ones only when not at their
# default, so that the default data/raw stays the bytes it was before they existed.
_RECORDED_EMBEDDED = ("speakers", "takes", "noise_seconds", "seed")


def _generate(
    dataset: Path, data: DataConfig, clip: ClipFormat, progress: bool, wanted_words
) -> dict:
    """The embedded source: espeak-ng speech written into ``dataset``; facts for source.json."""
    from pipeline.data.acquire.embedded import generate_dataset

    generated = generate_dataset(
        dataset,
        data.embedded,
        wanted_words,
        sample_rate=clip.sample_rate,
        clip_samples=clip.desired_samples,
        progress=progress,
    )
    return dict(embedded=_recorded_settings(data), sha256=tree_sha256(dataset), **generated)


def _recorded_settings(data: DataConfig) -> dict:
    """The ``data.embedded`` settings source.json records (see ``_RECORDED_EMBEDDED``)."""
    defaults = type(data.embedded)().to_dict()
    return {
        key: value
        for key, value in data.embedded.to_dict().items()
        if key in _RECORDED_EMBEDDED or value != defaults[key]
    }
