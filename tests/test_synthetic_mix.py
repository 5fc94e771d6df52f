"""Recorded clips plus generated speakers (``data.synthetic: true``) through the public stages:
the generated speakers join the data set under names that cannot collide with recorded ones and
land in training only, so validation and test measure recorded speakers; off (the default), the
data set and the split are what they were."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.core.errors import ParamError
from pipeline.core.metrics_files import details_path
from pipeline.core.schema import read_yaml
from pipeline.data.acquire.embedded import generate_dataset
from pipeline.data.clip_store import ClipStore
from pipeline.data.config import SYNTHETIC_SPEAKER_PREFIX, DataConfig
from pipeline.data.manifest import MANIFEST_NAMES, read_manifest
from pipeline.data.split import which_set
from tests.conftest import REPO_ROOT, make_dataset

# 3 espeak-ng speakers and 1 SVOX Pico speaker (data.embedded.pico_speakers).
ESPEAK_SPEAKERS, PICO_SPEAKERS = 3, 1
GENERATED_SPEAKERS = ESPEAK_SPEAKERS + PICO_SPEAKERS
UNKNOWN_WORDS = ["cat", "dog"]


def stage(name: str, project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"pipeline.stages.{name}"],
        cwd=project,
        capture_output=True,
        text=True,
    )


def make_project(root: Path, recordings: Path, synthetic: bool, source: str = "dir") -> Path:
    """A project whose params.yaml is the repository's with ``data.dir: recordings``, the words
    yes and no, and a small generated set (4 speakers, one of them Pico's, saying yes, no, cat
    and dog)."""
    root.mkdir(parents=True)
    params = read_yaml((REPO_ROOT / "params.yaml").read_text())
    params["data"].update(source=source, dir=str(recordings), synthetic=synthetic)
    params["data"]["embedded"].update(
        speakers=ESPEAK_SPEAKERS,
        pico_speakers=PICO_SPEAKERS,
        kokoro_speakers=0,
        piper_speakers=0,
        hibari_speakers=0,
        noise_seconds=2,
        unknown_words=UNKNOWN_WORDS,
    )
    params["split"]["wanted_words"] = ["yes", "no"]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def manifests(project: Path) -> dict[str, list]:
    split = project / "data" / "split"
    return {s: read_manifest(split / name) for s, name in MANIFEST_NAMES.items()}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """20 recorded speakers saying yes, no and cat, with their own background noise."""
    return make_dataset(
        tmp_path_factory.mktemp("mix") / "recordings", words=("yes", "no", "cat"), speakers=20
    )


@pytest.fixture(scope="module")
def both(recordings, tmp_path_factory) -> tuple[Path, Path]:
    """The same recordings downloaded and split with data.synthetic false and true."""
    root = tmp_path_factory.mktemp("projects")
    projects = []
    for synthetic in (False, True):
        project = make_project(root / str(synthetic), recordings, synthetic)
        for name in ("download", "split"):
            result = stage(name, project)
            assert result.returncode == 0, result.stderr[-3000:]
        projects.append(project)
    return projects[0], projects[1]


def test_generated_speakers_join_the_data_set_under_their_own_names(both, recordings):
    plain, mixed = both
    info = json.loads((mixed / "data/raw/source.json").read_text())
    synthetic = info["synthetic"]
    assert synthetic["speakers"] == GENERATED_SPEAKERS
    assert synthetic["clips"] == GENERATED_SPEAKERS * 4  # yes, no, cat, dog
    assert synthetic["counts"] == {w: GENERATED_SPEAKERS for w in ("cat", "dog", "no", "yes")}
    assert synthetic["embedded"]["speakers"] == ESPEAK_SPEAKERS
    assert synthetic["embedded"]["pico_speakers"] == PICO_SPEAKERS
    # The recordings' own noise is kept; none is generated.
    assert info["counts"] == {"_background_noise_": 2, "cat": 24, "dog": 4, "no": 24, "yes": 24}
    assert "generated_noise" not in info
    with ClipStore(mixed / "data/raw/dataset") as store:
        names = set(store.names)
    with ClipStore(plain / "data/raw/dataset") as store:
        recorded = set(store.names)
    generated = names - recorded
    assert recorded < names and len(generated) == synthetic["clips"]
    assert all(n.split("/")[1].startswith(SYNTHETIC_SPEAKER_PREFIX) for n in generated)
    assert len({n.split("/")[1].split("_nohash_")[0] for n in generated}) == GENERATED_SPEAKERS


def test_generated_speakers_are_in_training_only_and_move_no_recorded_clip(both):
    plain, mixed = both
    plain_rows, mixed_rows = manifests(plain), manifests(mixed)

    def generated(rows):
        return [r for r in rows if r.speaker.startswith(SYNTHETIC_SPEAKER_PREFIX)]

    assert not generated(mixed_rows["validation"]) and not generated(mixed_rows["testing"])
    # ... though the hash alone would have put some of them there.
    hashed = {which_set(r.path, 10, 10) for r in generated(mixed_rows["training"])}
    assert hashed > {"training"}
    assert mixed_rows["validation"] and mixed_rows["testing"]

    def recorded_splits(rows):  # wanted words: unknown words are drawn from a larger pool
        return {
            r.path.split("/dataset/")[1]: s
            for s in rows
            for r in rows[s]
            if r.label in ("yes", "no") and not r.speaker.startswith(SYNTHETIC_SPEAKER_PREFIX)
        }

    assert recorded_splits(mixed_rows) == recorded_splits(plain_rows)
    metrics = json.loads(details_path(mixed / "metrics/split.json").read_text())
    assert metrics["synthetic"] == {
        "clips": GENERATED_SPEAKERS * 4,
        "in_training": len(generated(mixed_rows["training"])),
    }
    # Off (the default): nothing about generated speakers is recorded.
    assert "synthetic" not in json.loads(details_path(plain / "metrics/split.json").read_text())
    assert "synthetic" not in json.loads((plain / "data/raw/source.json").read_text())


def test_generated_noise_when_the_recordings_have_none(tmp_path):
    recordings = make_dataset(tmp_path / "recordings", words=("yes", "no"), speakers=10)
    for noise in (recordings / "_background_noise_").iterdir():
        noise.unlink()
    (recordings / "_background_noise_").rmdir()
    project = make_project(tmp_path / "project", recordings, synthetic=True)
    result = stage("download", project)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((project / "data/raw/source.json").read_text())
    assert info["generated_noise"]["files"][-1] == "babble.wav"
    assert info["counts"]["_background_noise_"] == 4
    assert info["synthetic"]["clips"] == GENERATED_SPEAKERS * 4


def test_a_recorded_speaker_named_like_a_generated_one_is_refused(tmp_path):
    recordings = make_dataset(tmp_path / "recordings", words=("yes", "no"), speakers=10)
    clash = recordings / "no" / f"{SYNTHETIC_SPEAKER_PREFIX}me_nohash_0.wav"
    sorted((recordings / "no").iterdir())[0].rename(clash)
    project = make_project(tmp_path / "project", recordings, synthetic=True)
    result = stage("download", project)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1, result.stderr
    assert f"{recordings}/no/{clash.name}: the speaker name starts with 'synth-'" in lines[0]
    assert "rename the file" in lines[0]
    assert not (project / "data" / "raw").exists()


def test_synthetic_with_the_embedded_source_is_a_one_line_param_error(tmp_path):
    params = read_yaml((REPO_ROOT / "params.yaml").read_text())
    data = {**params["data"], "source": "embedded", "synthetic": True}
    with pytest.raises(ParamError, match="data.synthetic: true") as raised:
        DataConfig.from_dict(data)
    assert "\n" not in str(raised.value)
    project = make_project(tmp_path / "project", tmp_path, synthetic=True, source="embedded")
    result = stage("download", project)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "data.synthetic" in result.stderr
    assert not (project / "data").exists()


def test_leaving_out_the_noise_keeps_the_clips_bytes(tmp_path):
    settings = dict(speakers=2, noise_seconds=1.5, seed=7, unknown_words=["cat"], progress=False)
    with_noise = generate_dataset(tmp_path / "with", wanted_words=["yes"], **settings)
    without = generate_dataset(tmp_path / "without", wanted_words=["yes"], noise=False, **settings)
    assert not (tmp_path / "without" / "_background_noise_").exists()
    assert "noises" not in without
    assert {k: v for k, v in with_noise.items() if k != "noises"} == without
    for word in ("yes", "cat"):
        for path in sorted((tmp_path / "with" / word).iterdir()):
            assert (tmp_path / "without" / word / path.name).read_bytes() == path.read_bytes()
