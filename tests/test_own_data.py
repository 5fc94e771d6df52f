"""Your own recordings through the public stages: a folder of ``<word>/*`` clips in mixed formats
(any rate, channels, PCM/float WAV, FLAC), without ``_background_noise_/`` and without speaker
names, taken in by ``data.source: dir`` with nothing else set, then split, featurized and made
into a stream."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from pipeline.core.schema import read_yaml
from pipeline.data.clip_store import ClipStore
from tests.conftest import REPO_ROOT

RATE = 16000
WORDS = ("yes", "no", "cat")
# (suffix, soundfile format, subtype, rate, channels) by clip index: what a folder of recordings
# from different devices holds.
FORMATS = (
    (".wav", "WAV", "PCM_24", 44100, 2),
    (".wav", "WAV", "FLOAT", 48000, 1),
    (".wav", "WAV", "PCM_U8", 8000, 1),
    (".flac", "FLAC", "PCM_16", 22050, 2),
    (".wav", "WAV", "PCM_16", RATE, 1),
    (".wav", "WAVEX", "PCM_32", RATE, 2),
)
CHANGES = (
    "format, channels, rate",
    "format, rate",
    "format, rate",
    "format, channels, rate",
    "",
    "format, channels",
)


def recording(word: str, take: int, rate: int) -> np.ndarray:
    """A 1 s clip of two word-specific tones at a take-specific onset, defined in time, so the
    same clip at any rate is the same sound."""
    f1, f2 = 300 + 150 * len(word) + 40 * (ord(word[0]) % 7), 900 + 35 * (ord(word[-1]) % 11)
    t = np.arange(rate) / rate
    onset, length = 0.1 + 0.03 * (take % 10), 0.45
    inside = (t >= onset) & (t < onset + length)
    envelope = np.where(inside, np.sin(np.pi * (t - onset) / length) ** 2, 0.0)
    tone = 0.3 * np.sin(2 * np.pi * f1 * t) + 0.2 * np.sin(2 * np.pi * f2 * t)
    return (envelope * tone).astype(np.float32)


def write_recordings(root: Path, words=WORDS, clips_per_word: int = 30) -> Path:
    """``<word>/recNN.<suffix>`` clips cycling through :data:`FORMATS`; no background folder."""
    for word in words:
        (root / word).mkdir(parents=True)
        for i in range(clips_per_word):
            suffix, container, subtype, rate, channels = FORMATS[i % len(FORMATS)]
            mono = recording(word, i, rate)
            samples = np.stack([mono] * channels, axis=1) if channels > 1 else mono
            soundfile.write(
                root / word / f"rec{i:02d}{suffix}", samples, rate, subtype, format=container
            )
    return root


def stage(name: str, project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"pipeline.stages.{name}"],
        cwd=project,
        capture_output=True,
        text=True,
    )


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder whose params.yaml is the repository's with data.source: dir (and small
    sizes: the wanted words of the folder, one augmented copy, a short stream)."""
    recordings = write_recordings(tmp_path / "recordings")
    project = tmp_path / "project"
    project.mkdir()
    params = read_yaml((REPO_ROOT / "params.yaml").read_text())
    params["data"].update(source="dir", dir=str(recordings))
    params["data"]["embedded"]["noise_seconds"] = 3
    params["split"]["wanted_words"] = ["yes", "no"]
    params["augment"]["copies"] = 1
    params["stream"]["duration_s"] = 20
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project


def test_own_recordings_are_converted_reported_and_featurized(project, tmp_path):
    recordings = tmp_path / "recordings"
    before = {p: p.read_bytes() for p in recordings.rglob("*") if p.is_file()}

    result = stage("download", project)

    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stderr
    raw = project / "data" / "raw"
    rows = list(csv.DictReader((raw / "converted.csv").open()))
    assert len(rows) == 75  # 5 of each 6 formats, 30 clips in 3 words
    by_path = {row["path"]: row for row in rows}
    for i, changes in enumerate(CHANGES * 2):
        suffix = FORMATS[i % len(FORMATS)][0]
        row = by_path.get(f"yes/rec{i:02d}{suffix}")
        assert (row["converted"] if row else "") == changes, (i, row)
    assert by_path["yes/rec00.wav"]["was"] == "24-bit PCM, stereo, 44100 Hz"
    assert by_path["yes/rec03.flac"]["was"] == "FLAC PCM_16, stereo, 22050 Hz"
    assert by_path["yes/rec05.wav"]["was"] == "32-bit PCM, stereo, 16000 Hz"
    assert "converted 75 file(s) to 16-bit mono PCM WAV at 16000 Hz" in log
    # One warning each: generated noise, and names that carry no speaker.
    assert log.count("has no _background_noise_/ folder: using generated noise") == 1
    assert log.count("are not named <speaker>_nohash_<n>.wav") == 1
    assert "90 of 90 clip(s) under " + str(recordings) + " are not named" in log
    assert "(e.g. cat/rec00.wav)" in log and "split cannot keep speakers apart" in log
    assert ".tmp" not in log and ".loose" not in log
    info = json.loads((raw / "source.json").read_text())
    assert info["counts"] == {"_background_noise_": 4, "cat": 30, "no": 30, "yes": 30}
    assert info["generated_noise"]["files"][-1] == "babble.wav"
    with ClipStore(raw / "dataset") as store:
        assert store.sample_rate == RATE
        for i in range(6):  # each format decoded to the clip it holds, at 16 kHz, mono
            clip = store.read(f"yes/rec{i:02d}.wav")
            expected = recording("yes", i, RATE)
            assert len(clip) == RATE
            assert np.corrcoef(clip, expected)[0, 1] > 0.98, i
    # The user's folder is read, never changed.
    assert {p: p.read_bytes() for p in recordings.rglob("*") if p.is_file()} == before

    for name in ("split", "featurize", "synthesize_stream"):
        result = stage(name, project)
        assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
    meta = json.loads((project / "data" / "features" / "meta.json").read_text())
    assert meta  # featurize ran to the end with the generated noise for silence and mixing
    assert (project / "data" / "stream" / "stream.wav").is_file()


def test_a_bad_recording_is_named_as_the_user_knows_it(project, tmp_path):
    recordings = tmp_path / "recordings"
    (recordings / "no" / "broken.flac").write_bytes(b"fLaC not really")
    (recordings / "no" / "rec03.wav").write_bytes(b"RIFF")  # beside rec03.flac

    result = stage("download", project)

    errors = [line for line in result.stderr.splitlines() if line.startswith("error ")]
    assert result.returncode == 1 and len(errors) == 1, result.stderr[-2000:]
    assert f"{recordings}/no/broken.flac: cannot decode" in errors[0]
    assert "2 other file(s) are bad too" in errors[0]
    assert not (project / "data" / "raw").exists()

    params = read_yaml((project / "params.yaml").read_text())
    params["data"]["on_bad_file"] = "skip"
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    assert stage("download", project).returncode == 0
    skipped = list(csv.reader((project / "data" / "raw" / "skipped.csv").open()))
    assert [row[0] for row in skipped[1:]] == [
        f"{recordings}/no/broken.flac",
        f"{recordings}/no/rec03.flac",
        f"{recordings}/no/rec03.wav",
    ]
