"""The clip store: a data set's clips packed into a few files, the download stage's output.

The real Speech Commands v0.02 is 105,829 one-second WAV files. Kept loose, DVC tracks, caches,
pushes and pulls 105,829 objects and every ``dvc status`` stats them all. Packed, a data set is
three files in one folder (``data/raw/dataset/``, ``data/raw/official_test/``):

- ``audio.npy``: int16 samples of every clip back to back, a plain ``.npy`` (``np.load(...,
  mmap_mode="r")`` maps it; :class:`ClipStore` reads clips with ``pread``, so reading them all
  does not grow a process's memory);
- ``index.csv``: ``name,word,speaker,offset,length`` per clip, sorted by name, where ``name`` is
  the clip's path in the Speech Commands layout (``yes/0a7c2a8d_nohash_0.wav``,
  ``_background_noise_/white_noise.wav``), ``word`` its folder, ``speaker`` the part of the file
  name before ``_nohash_`` (empty for background noise), ``offset``/``length`` in samples;
- ``store.json``: sample rate, clip and sample counts.

Clips are named everywhere by ``<store folder>/<name>``
(``data/raw/dataset/yes/0a7c2a8d_nohash_0.wav``), the path the clip would have if the store were
unpacked: the split manifests' ``path`` column, the skip report, messages. :class:`ClipReader`
resolves such paths. ``kws extract-clip`` lists a store and writes clips back out as WAV files.
A name must stay inside its store (no absolute name, no ``..`` part): reading ``index.csv``
refuses others, since extract-clip writes each clip at its name.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.core.audio import encode_pcm16, read_pcm16
from pipeline.core.errors import StageError
from pipeline.core.fs import (
    atomic_write_json,
    atomic_write_text,
    name_text,
    read_json,
    relative_name_problem,
)
from pipeline.core.labels import BACKGROUND_NOISE_DIR
from pipeline.core.npy import NpyWriter

AUDIO_FILE = "audio.npy"
INDEX_FILE = "index.csv"
STORE_JSON = "store.json"
INDEX_COLUMNS = ("name", "word", "speaker", "offset", "length")
FORMAT = "int16 mono PCM"


def hash_name(filename) -> str:
    """The part of the base name that identifies the speaker (everything before ``_nohash_``)."""
    return re.sub(r"_nohash_.*$", "", os.path.basename(str(filename)))


def speaker_of(filename) -> str:
    """Speaker column: ``hash_name`` without a ``.wav`` suffix (files lacking ``_nohash_``)."""
    name = hash_name(filename)
    return name[:-4] if name.lower().endswith(".wav") else name


@dataclass(frozen=True)
class ClipEntry:
    """One clip of a store: its name, folder (word), speaker and where its samples are."""

    name: str
    word: str
    speaker: str
    offset: int
    length: int


def is_store(folder) -> bool:
    folder = Path(folder)
    return (folder / INDEX_FILE).is_file() and (folder / AUDIO_FILE).is_file()


class ClipStore:
    """Read access to one store folder: list clips, read one as float32 or as WAV bytes."""

    def __init__(self, folder):
        self.folder = Path(folder)
        if not is_store(self.folder):
            raise FileNotFoundError(
                f"{self.folder}: not a clip store (no {INDEX_FILE} and {AUDIO_FILE}; "
                "run the download stage)"
            )
        meta_path = self.folder / STORE_JSON
        meta = read_json(meta_path) if meta_path.is_file() else {}
        rate = meta.get("sample_rate", 0) if isinstance(meta, dict) else None
        if not isinstance(rate, int) or isinstance(rate, bool) or rate < 0:
            raise StageError(f"{meta_path}: sample_rate must be a whole number of Hz, got {rate!r}")
        self.sample_rate = rate or None
        audio_path = self.folder / AUDIO_FILE
        try:
            audio = np.load(audio_path, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise StageError(f"{audio_path}: not a .npy array ({exc})") from None
        if audio.dtype != np.dtype("<i2") or audio.ndim != 1:
            raise StageError(
                f"{audio_path}: expected int16 samples [N], got {audio.dtype} {audio.shape}"
            )
        self.total_samples = int(audio.shape[0])
        self._data_offset = int(audio.offset)
        del audio
        self.entries = self._read_index()
        self._by_name = {entry.name: i for i, entry in enumerate(self.entries)}
        self._fd = os.open(audio_path, os.O_RDONLY)

    def _read_index(self) -> list[ClipEntry]:
        path = self.folder / INDEX_FILE
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if tuple(header or ()) != INDEX_COLUMNS:
                raise StageError(
                    f"{path}: expected columns {','.join(INDEX_COLUMNS)}, got {header}"
                )
            entries = []
            for n, row in enumerate(reader, start=2):
                try:
                    name, word, speaker, offset, length = row
                    entry = ClipEntry(name, word, speaker, int(offset), int(length))
                except ValueError:
                    raise StageError(
                        f"{path}:{n}: not a `{','.join(INDEX_COLUMNS)}` row: {row}"
                    ) from None
                problem = relative_name_problem(name)
                if problem:  # a name is where extract-clip writes the clip: keep it inside
                    raise StageError(f"{path}:{n}: the clip name {problem}")
                if (
                    entry.offset < 0
                    or entry.length < 0
                    or entry.offset + entry.length > self.total_samples
                ):
                    raise StageError(
                        f"{path}:{n}: clip {name!r} lies outside {AUDIO_FILE} "
                        f"({self.total_samples} samples)"
                    )
                entries.append(entry)
        if len({e.name for e in entries}) != len(entries):
            raise StageError(f"{path}: a clip name appears twice")
        return entries

    # ------------------------------------------------------------------ listing

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def entry(self, key: str | int) -> ClipEntry:
        if isinstance(key, str):
            try:
                return self.entries[self._by_name[key]]
            except KeyError:
                raise StageError(f"{self.folder}: no clip named {key!r}") from None
        return self.entries[key]

    def of_word(self, word: str) -> list[ClipEntry]:
        return [entry for entry in self.entries if entry.word == word]

    # ------------------------------------------------------------------ reading

    def pcm(self, key: str | int) -> np.ndarray:
        """The clip's int16 samples (a fresh array, read with ``pread``)."""
        entry = self.entry(key)
        data = os.pread(self._fd, entry.length * 2, self._data_offset + entry.offset * 2)
        if len(data) != entry.length * 2:
            raise StageError(
                f"{self.folder / AUDIO_FILE}: truncated (clip {entry.name!r} is cut off)"
            )
        return np.frombuffer(data, dtype="<i2")

    def read(self, key: str | int) -> np.ndarray:
        """The clip as float32 in [-1, 1), exactly as ``read_wav`` decodes its WAV file."""
        return self.pcm(key).astype(np.float32) / 32768.0

    def wav_bytes(self, key: str | int) -> bytes:
        """The clip as a 16-bit mono PCM WAV file (the same samples as the original file)."""
        if self.sample_rate is None:
            raise StageError(f"{self.folder / STORE_JSON}: no sample_rate; cannot write WAV data")
        return encode_pcm16(self.pcm(key), self.sample_rate)

    def close(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ClipStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()


class ClipReader:
    """Reads clips named ``<store folder>/<name>`` (the manifests' ``path`` column), relative to
    ``base_dir``; each store is opened once."""

    def __init__(self, base_dir="."):
        self.base_dir = Path(base_dir)
        self._stores: dict[Path, ClipStore] = {}
        self._is_store: dict[Path, bool] = {}

    def store(self, folder) -> ClipStore | None:
        """The store at ``folder`` (relative to ``base_dir``), opened once; None if not a store."""
        return self._open(self.base_dir / folder)

    def _open(self, folder: Path) -> ClipStore | None:
        if folder not in self._is_store:
            self._is_store[folder] = is_store(folder)
        if not self._is_store[folder]:
            return None
        if folder not in self._stores:
            self._stores[folder] = ClipStore(folder)
        return self._stores[folder]

    def locate(self, path: str) -> tuple[ClipStore, str]:
        """The store holding ``path`` and the clip's name in it; StageError if none does."""
        full = self.base_dir / path
        for folder in full.parents:
            store = self._open(folder)
            if store is not None:
                return store, full.relative_to(folder).as_posix()
        raise StageError(
            f"{path}: no clip store holds it (expected <store>/<word>/<file>.wav under "
            f"a folder with {INDEX_FILE} and {AUDIO_FILE}; run the download stage)"
        )

    def read(self, path: str) -> np.ndarray:
        store, name = self.locate(path)
        if name not in store:
            raise StageError(f"{path}: no clip {name!r} in the clip store {store.folder}")
        return store.read(name)

    def wav_bytes(self, path: str) -> bytes:
        store, name = self.locate(path)
        if name not in store:
            raise StageError(f"{path}: no clip {name!r} in the clip store {store.folder}")
        return store.wav_bytes(name)

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()

    def __enter__(self) -> ClipReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def index_text(entries) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    writer.writerows((e.name, e.word, e.speaker, e.offset, e.length) for e in entries)
    return buffer.getvalue()


def list_wavs(root) -> list[Path]:
    """``root/*/*.wav`` in name order: the clips a store is packed from."""
    return sorted(Path(root).glob("*/*.wav"), key=lambda p: p.relative_to(root).as_posix())


def pack_folder(
    src_root, dest, sample_rate: int, consume: bool = False, progress: bool = True
) -> dict:
    """Pack ``src_root/<word>/*.wav`` (checked clips, all at ``sample_rate``) into store ``dest``.

    ``consume`` deletes each WAV once packed (a temporary extraction: disk use stays at one copy).
    Top-level regular files of ``src_root`` (licence, readme, split lists) move into ``dest``.
    ``dest`` may be ``src_root`` itself (a store beside its WAVs, as the tests build them).
    Returns ``store.json``'s contents. The bytes depend only on the clips (reruns are identical).
    """
    src_root, dest = Path(src_root), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    entries: list[ClipEntry] = []
    offset = 0
    with NpyWriter(dest / AUDIO_FILE, "<i2") as writer:
        for path in tqdm(
            list_wavs(src_root),
            desc=f"pack {dest.name}",
            unit="clip",
            disable=not progress,
            mininterval=1.0,
        ):
            pcm = read_pcm16(path, sample_rate)
            writer.append(pcm)
            word, name = name_text(path.parent.name), name_text(path.name)  # any locale
            speaker = "" if word == BACKGROUND_NOISE_DIR else speaker_of(name)
            entries.append(ClipEntry(f"{word}/{name}", word, speaker, offset, len(pcm)))
            offset += len(pcm)
            if consume:
                path.unlink()
        digest = writer.close()
    for extra in sorted(src_root.iterdir()) if src_root.resolve() != dest.resolve() else ():
        if (
            extra.is_file()
            and not extra.is_symlink()
            and extra.name not in (AUDIO_FILE, INDEX_FILE, STORE_JSON)
        ):
            if consume:
                os.replace(extra, dest / extra.name)
            else:
                shutil.copyfile(extra, dest / extra.name)
    atomic_write_text(dest / INDEX_FILE, index_text(entries))
    meta = {
        "format": FORMAT,
        "sample_rate": sample_rate,
        "clips": len(entries),
        "samples": offset,
        "audio_sha256": digest,
    }
    atomic_write_json(dest / STORE_JSON, meta)
    return meta
