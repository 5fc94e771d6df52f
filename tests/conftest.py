"""Shared test fixtures: tiny generated data sets in the Speech Commands training layout.

Each word is a distinct, learnable sound (a word-specific pair of tones with a per-speaker pitch
offset and a random onset), so small models can reach high accuracy on it in a few seconds.
"""

from __future__ import annotations

import hashlib
import resource
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.audio import read_pcm16, write_wav
from pipeline.data.clip_store import ClipStore, list_wavs, pack_folder

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MINI = REPO_ROOT.parent / "shared" / "data" / "speech_commands_mini"
SHARED_PRETRAINED = REPO_ROOT.parent / "shared" / "pretrained"


def speaker_id(index: int) -> str:
    """An 8-hex-digit speaker id like the real data set's."""
    return hashlib.sha1(f"speaker{index}".encode()).hexdigest()[:8]


def word_clip(word: str, speaker: int, take: int, sample_rate: int = 16000, seconds: float = 1.0):
    """A 1 s clip whose spectrum identifies ``word``; speaker and take vary pitch and timing."""
    rng = np.random.default_rng(
        int(hashlib.md5(f"{word}/{speaker}/{take}".encode()).hexdigest()[:8], 16)
    )
    digest = int(hashlib.md5(word.encode()).hexdigest(), 16)
    f1 = 300 + (digest % 23) * 120
    f2 = 700 + ((digest // 23) % 19) * 160
    shift = 1.0 + 0.04 * ((speaker % 5) - 2)
    n = int(sample_rate * seconds)
    length = int(0.45 * sample_rate)
    start = rng.integers(0, n - length)
    t = np.arange(length) / sample_rate
    envelope = np.hanning(length)
    tone = 0.3 * np.sin(2 * np.pi * f1 * shift * t) + 0.2 * np.sin(2 * np.pi * f2 * shift * t)
    clip = rng.normal(0, 0.003, n)
    clip[start : start + length] += envelope * tone
    return clip.astype(np.float32)


def make_dataset(
    root: Path,
    words=("yes", "no", "up", "down", "cat", "dog"),
    speakers: int = 11,
    takes: int = 1,
    sample_rate: int = 16000,
    noise_seconds: float = 3.0,
) -> Path:
    """Write ``<word>/<speaker>_nohash_<k>.wav`` clips and a ``_background_noise_`` folder."""
    root = Path(root)
    for word in words:
        for s in range(speakers):
            for k in range(takes):
                path = root / word / f"{speaker_id(s)}_nohash_{k}.wav"
                write_wav(path, word_clip(word, s, k, sample_rate), sample_rate)
    rng = np.random.default_rng(0)
    noise_dir = root / "_background_noise_"
    write_wav(
        noise_dir / "white_noise.wav",
        rng.normal(0, 0.2, int(noise_seconds * sample_rate)).clip(-1, 1),
        sample_rate,
    )
    brown = np.cumsum(rng.normal(0, 0.02, int(noise_seconds * sample_rate)))
    write_wav(
        noise_dir / "brown_noise.wav", (brown / (np.abs(brown).max() + 1e-9) * 0.5), sample_rate
    )
    return root


def pack(loose: Path, store: Path | None = None, sample_rate: int = 16000) -> Path:
    """Pack a training-layout folder into a clip store (by default beside its WAVs, in place, so
    that a clip's store path ``<root>/<word>/<file>.wav`` is also its file's path)."""
    store = Path(loose if store is None else store)
    pack_folder(loose, store, sample_rate, consume=False, progress=False)
    return store


def make_store(root: Path, **kwargs) -> Path:
    """``make_dataset`` packed in place: WAV files and their clip store in one folder."""
    return pack(make_dataset(root, **kwargs))


def store_pcm(store: Path) -> dict[str, bytes]:
    """name -> int16 sample bytes of every clip of a store."""
    with ClipStore(store) as opened:
        return {name: opened.pcm(name).tobytes() for name in opened.names}


def wav_pcm(root: Path) -> dict[str, bytes]:
    """name -> int16 sample bytes of every ``<word>/*.wav`` of a folder (compare with store_pcm)."""
    return {p.relative_to(root).as_posix(): read_pcm16(p).tobytes() for p in list_wavs(root)}


def file_bytes(root: Path) -> dict[str, bytes]:
    """relative path -> bytes of every file under ``root`` (compare whole generated trees)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def median_frequency(samples: np.ndarray, sample_rate: int = 16000) -> float:
    """The frequency below which half the energy above 300 Hz lies: where a voice's formants sit
    (a longer vocal tract moves it down)."""
    freqs = np.fft.rfftfreq(len(samples), 1 / sample_rate)
    power = np.abs(np.fft.rfft(samples)) ** 2
    cumulative = np.cumsum(power[freqs > 300])
    return float(freqs[freqs > 300][np.searchsorted(cumulative, cumulative[-1] / 2)])


def limit_file_size(limit: int):
    """A ``preexec_fn`` for subprocess: the child's files cannot grow beyond ``limit`` bytes.

    Its writes then fail with EFBIG (File too large), which takes the path of a full disk's
    ENOSPC: a disk that fills up, without a small file system to fill.
    """

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error from write(), not a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


def skip_without_embedding_models() -> None:
    """Skip the calling test (or fixture) where the speech embedding's model files are missing."""
    from pipeline.frontends import embedding

    try:
        embedding.models_dir()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    """Six words (four wanted, two unknown), eleven speakers (8 training, 2 validation, 1 test)."""
    return make_dataset(tmp_path / "dataset")


@pytest.fixture
def shared_mini() -> Path:
    """The shared real clips; tests that use it skip when it is absent."""
    if not SHARED_MINI.is_dir():
        pytest.skip(f"real clips not present at {SHARED_MINI}")
    return SHARED_MINI


@pytest.fixture
def shared_pretrained() -> Path:
    if not (SHARED_PRETRAINED / "conv_actions_frozen.pb").is_file():
        pytest.skip(f"pretrained graph not present at {SHARED_PRETRAINED}")
    return SHARED_PRETRAINED


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
