"""The featurize stage on a tiny generated data set."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.core.audio import fit_to_length, read_wav
from pipeline.core.errors import StageError
from pipeline.core.schema import read_yaml
from pipeline.data import featurize as featurize_module
from pipeline.data.augment import AugmentConfig
from pipeline.data.featurize import featurize
from pipeline.frontends import FeatureConfig, features_numpy
from pipeline.stages.featurize import main
from tests.conftest import REPO_ROOT, limit_file_size, make_store, pack, speaker_id

COLUMNS = ["path", "word", "label", "label_index", "speaker", "split"]
LABELS = ["_silence_", "_unknown_", "yes", "no"]


def _write_split(root: Path, dataset: Path) -> Path:
    """Hand-made manifests (the columns of pipeline.data.manifest); paths relative to ``root``."""
    split_dir = root / "split"
    split_dir.mkdir()
    (split_dir / "labels.txt").write_text("".join(f"{label}\n" for label in LABELS))
    plan = {
        "train.csv": ("training", range(0, 5)),
        "validation.csv": ("validation", range(5, 7)),
        "test.csv": ("testing", range(7, 8)),
    }
    for name, (split, speakers) in plan.items():
        rows = []
        for s in speakers:
            for word, label in (("yes", "yes"), ("no", "no"), ("cat", "_unknown_")):
                rel = (dataset / word / f"{speaker_id(s)}_nohash_0.wav").relative_to(root)
                rows.append(
                    [rel.as_posix(), word, label, LABELS.index(label), speaker_id(s), split]
                )
        rows.append(["", "_silence_", "_silence_", 0, "", split])
        with open(split_dir / name, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows([COLUMNS, *rows])
    return split_dir


@pytest.fixture
def project(tmp_path):
    dataset = make_store(tmp_path / "data" / "raw" / "dataset", words=("yes", "no", "cat"))
    return tmp_path, _write_split(tmp_path, dataset), dataset


def _run(project, out_name="features", **kw):
    root, split_dir, dataset = project
    augment = kw.pop("augment", AugmentConfig(copies=2))
    features = kw.pop("features", FeatureConfig())
    featurize(split_dir, dataset.parent, root / out_name, features, augment, base_dir=root)
    return root / out_name


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(out: Path, name: str) -> dict[str, np.ndarray]:
    """A split's x (memory-mapped, as the readers open it) and y."""
    return {"x": np.load(out / name / "x.npy", mmap_mode="r"), "y": np.load(out / name / "y.npy")}


FILES = (
    "train/x.npy",
    "train/y.npy",
    "validation/x.npy",
    "validation/y.npy",
    "test/x.npy",
    "test/y.npy",
    "labels.txt",
    "meta.json",
)


def test_outputs_shapes_and_labels(project):
    out = _run(project)
    train, val, test = (load(out, n) for n in ("train", "validation", "test"))
    assert train["x"].shape == (2 * 16, 98, 40) and train["x"].dtype == np.float32
    assert val["x"].shape == (7, 98, 40) and test["x"].shape == (4, 98, 40)
    assert train["y"].dtype == np.int32
    assert sorted(set(train["y"].tolist())) == [0, 1, 2, 3]
    assert (out / "labels.txt").read_text().split() == LABELS
    meta = json.loads((out / "meta.json").read_text())
    assert meta["feature_shape"] == [98, 40] and meta["augment"]["copies"] == 2
    assert {k: meta["counts"]["train"][k] for k in ("rows", "examples")} == {
        "rows": 16,
        "examples": 32,
    }
    assert (
        meta["counts"]["train"]["x_sha256"]
        == hashlib.sha256((out / "train" / "x.npy").read_bytes()[128:]).hexdigest()
    )  # the data after the .npy header
    assert meta["features"]["preprocess"] == "mfcc"


def test_rerun_is_byte_identical(project):
    a = _run(project, "a")
    b = _run(project, "b")
    assert sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file()) == sorted(FILES)
    for name in FILES:
        assert _digest(a / name) == _digest(b / name), name


def test_chunked_writing_gives_the_same_bytes(project, monkeypatch):
    """featurize writes x.npy a chunk at a time; the chunk size never shows in the file."""
    a = _run(project, "a")
    monkeypatch.setattr(featurize_module, "CHUNK", 3)
    b = _run(project, "b")
    for name in FILES:
        assert _digest(a / name) == _digest(b / name), name
    x = np.load(b / "train" / "x.npy", mmap_mode="r")
    assert isinstance(x, np.memmap) and x.shape == (32, 98, 40)


def test_seed_changes_training_copies_only(project):
    a = _run(project, "a", augment=AugmentConfig(copies=2, seed=1))
    b = _run(project, "b", augment=AugmentConfig(copies=2, seed=2))
    assert _digest(a / "train/x.npy") != _digest(b / "train/x.npy")
    va, vb = load(a, "validation")["x"], load(b, "validation")["x"]
    np.testing.assert_array_equal(va[:-1], vb[:-1])  # words: no augmentation at all


def test_validation_words_are_plain_features(project):
    root, split_dir, _ = project
    out = _run(project)
    with open(split_dir / "validation.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    clip = fit_to_length(read_wav(root / rows[0]["path"], 16000), 16000)  # the WAV beside the store
    np.testing.assert_allclose(
        load(out, "validation")["x"][0], features_numpy(clip, FeatureConfig()), rtol=1e-6, atol=1e-6
    )


def test_copies_zero_gives_one_plain_copy(project):
    root, split_dir, _ = project
    out = _run(project, augment=AugmentConfig(copies=0))
    x = load(out, "train")["x"]
    assert x.shape[0] == 16
    with open(split_dir / "train.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    clip = fit_to_length(read_wav(root / rows[4]["path"], 16000), 16000)
    np.testing.assert_allclose(x[4], features_numpy(clip, FeatureConfig()), rtol=1e-6, atol=1e-6)


def test_training_copies_are_augmented(project):
    out = _run(project, augment=AugmentConfig(copies=3, background_frequency=1.0))
    x = load(out, "train")["x"]
    assert not np.allclose(x[0], x[1]) and not np.allclose(x[1], x[2])


def test_silence_rows_use_noise(project):
    out = _run(project)
    val = load(out, "validation")
    silence = val["x"][val["y"] == 0]
    zeros = features_numpy(np.zeros(16000, np.float32), FeatureConfig())
    assert len(silence) == 1 and not np.allclose(silence[0], zeros)


def test_other_preprocess_modes(project):
    out = _run(
        project, features=FeatureConfig(preprocess="average"), augment=AugmentConfig(copies=1)
    )
    assert load(out, "test")["x"].shape == (4, 98, 43)


def test_a_clip_missing_from_the_store_fails_cleanly(project):
    root, split_dir, dataset = project
    rows = (
        (split_dir / "train.csv")
        .read_text()
        .replace(f"yes/{speaker_id(0)}_nohash_0.wav", "yes/gone_nohash_0.wav")
    )
    (split_dir / "train.csv").write_text(rows)
    with pytest.raises(
        StageError, match="yes/gone_nohash_0.wav: no clip 'yes/gone_nohash_0.wav' in the clip store"
    ):
        _run(project)
    assert not (root / "features").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".features")]


def test_silence_without_noise_is_an_error(project):
    root, _, dataset = project
    for p in (dataset / "_background_noise_").glob("*.wav"):
        p.unlink()
    pack(dataset)
    with pytest.raises(StageError, match="_background_noise_.*silence"):
        _run(project)


def test_mismatched_labels_are_an_error(project):
    _, split_dir, _ = project
    (split_dir / "labels.txt").write_text("_silence_\n_unknown_\nno\nyes\n")
    with pytest.raises(StageError, match="does not match"):
        _run(project)


def test_main_reads_params(project, monkeypatch):
    root, split_dir, dataset = project
    params = read_yaml((REPO_ROOT / "params.yaml").read_text())
    params["augment"]["copies"] = 1
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(root)
    assert main(["--split-dir", "split", "--raw", "data/raw", "--out", "feats"]) == 0
    assert load(root / "feats", "train")["x"].shape[0] == 16


def test_recorded_silence_clip_is_used_as_is(project):
    """The official test set has real _silence_ recordings: no generated noise for those."""
    root, split_dir, dataset = project
    noise = (dataset / "_background_noise_" / "white_noise.wav").relative_to(root).as_posix()
    rows = (split_dir / "test.csv").read_text().splitlines()
    rows[-1] = f"{noise},_silence_,_silence_,0,,testing"
    (split_dir / "test.csv").write_text("\n".join(rows) + "\n")
    out = _run(project, augment=AugmentConfig(copies=1))
    clip = fit_to_length(read_wav(root / noise, 16000), 16000)
    np.testing.assert_allclose(
        load(out, "test")["x"][-1], features_numpy(clip, FeatureConfig()), rtol=1e-6, atol=1e-6
    )


def test_a_write_that_fails_is_one_line_naming_the_file_and_leaves_nothing(project):
    """A full disk while featurize appends to x.npy: one line naming the file (not its temporary
    folder), exit status 1, and no features folder or temporary left."""
    root, _, _ = project
    (root / "params.yaml").write_text((REPO_ROOT / "params.yaml").read_text())
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.featurize", "--split-dir", "split"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        preexec_fn=limit_file_size(64 * 1024),
    )
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    line = "data/features/train/x.npy: cannot write (File too large)"
    assert errors == [f"error [pipeline.stages.featurize]: {line}"], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in (root / "data").iterdir()) == ["raw"]
