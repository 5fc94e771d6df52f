"""The featurize stage on a tiny generated data set."""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.core.audio import fit_to_length, read_wav
from pipeline.core.errors import StageError, WavError
from pipeline.core.schema import read_yaml
from pipeline.data.augment import AugmentConfig
from pipeline.data.featurize import featurize
from pipeline.frontends import FeatureConfig, features_numpy
from pipeline.stages.featurize import main
from tests.conftest import REPO_ROOT, make_dataset, speaker_id

COLUMNS = ["path", "word", "label", "label_index", "speaker", "split"]
LABELS = ["_silence_", "_unknown_", "yes", "no"]


def _write_split(root: Path, dataset: Path) -> Path:
    """Hand-made manifests (the columns of pipeline.data.manifest); paths relative to ``root``."""
    split_dir = root / "split"
    split_dir.mkdir()
    (split_dir / "labels.txt").write_text("".join(f"{l}\n" for l in LABELS))
    plan = {"train.csv": ("training", range(0, 5)), "validation.csv": ("validation", range(5, 7)),
            "test.csv": ("testing", range(7, 8))}
    for name, (split, speakers) in plan.items():
        rows = []
        for s in speakers:
            for word, label in (("yes", "yes"), ("no", "no"), ("cat", "_unknown_")):
                rel = (dataset / word / f"{speaker_id(s)}_nohash_0.wav").relative_to(root)
                rows.append([rel.as_posix(), word, label, LABELS.index(label), speaker_id(s), split])
        rows.append(["", "_silence_", "_silence_", 0, "", split])
        with open(split_dir / name, "w", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows([COLUMNS, *rows])
    return split_dir


@pytest.fixture
def project(tmp_path):
    dataset = make_dataset(tmp_path / "data" / "raw" / "dataset", words=("yes", "no", "cat"))
    return tmp_path, _write_split(tmp_path, dataset), dataset


def _run(project, out_name="features", **kw):
    root, split_dir, dataset = project
    augment = kw.pop("augment", AugmentConfig(copies=2))
    features = kw.pop("features", FeatureConfig())
    featurize(split_dir, dataset, root / out_name, features, augment, base_dir=root)
    return root / out_name


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_outputs_shapes_and_labels(project):
    out = _run(project)
    train, val, test = (np.load(out / f"{n}.npz") for n in ("train", "validation", "test"))
    assert train["x"].shape == (2 * 16, 98, 40) and train["x"].dtype == np.float32
    assert val["x"].shape == (7, 98, 40) and test["x"].shape == (4, 98, 40)
    assert train["y"].dtype == np.int32
    assert sorted(set(train["y"].tolist())) == [0, 1, 2, 3]
    assert (out / "labels.txt").read_text().split() == LABELS
    meta = json.loads((out / "meta.json").read_text())
    assert meta["feature_shape"] == [98, 40] and meta["augment"]["copies"] == 2
    assert meta["counts"]["train"] == {"rows": 16, "examples": 32}
    assert meta["features"]["preprocess"] == "mfcc"


def test_rerun_is_byte_identical(project):
    a = _run(project, "a")
    b = _run(project, "b")
    for name in ("train.npz", "validation.npz", "test.npz", "labels.txt", "meta.json"):
        assert _digest(a / name) == _digest(b / name), name


def test_seed_changes_training_copies_only(project):
    a = _run(project, "a", augment=AugmentConfig(copies=2, seed=1))
    b = _run(project, "b", augment=AugmentConfig(copies=2, seed=2))
    assert _digest(a / "train.npz") != _digest(b / "train.npz")
    va, vb = np.load(a / "validation.npz")["x"], np.load(b / "validation.npz")["x"]
    np.testing.assert_array_equal(va[:-1], vb[:-1])  # words: no augmentation at all


def test_validation_words_are_plain_features(project):
    root, split_dir, _ = project
    out = _run(project)
    rows = list(csv.DictReader(open(split_dir / "validation.csv")))
    clip = fit_to_length(read_wav(root / rows[0]["path"], 16000), 16000)
    np.testing.assert_allclose(np.load(out / "validation.npz")["x"][0], features_numpy(clip, FeatureConfig()),
                               rtol=1e-6, atol=1e-6)


def test_copies_zero_gives_one_plain_copy(project):
    root, split_dir, _ = project
    out = _run(project, augment=AugmentConfig(copies=0))
    x = np.load(out / "train.npz")["x"]
    assert x.shape[0] == 16
    rows = list(csv.DictReader(open(split_dir / "train.csv")))
    clip = fit_to_length(read_wav(root / rows[4]["path"], 16000), 16000)
    np.testing.assert_allclose(x[4], features_numpy(clip, FeatureConfig()), rtol=1e-6, atol=1e-6)


def test_training_copies_are_augmented(project):
    out = _run(project, augment=AugmentConfig(copies=3, background_frequency=1.0))
    x = np.load(out / "train.npz")["x"]
    assert not np.allclose(x[0], x[1]) and not np.allclose(x[1], x[2])


def test_silence_rows_use_noise(project):
    out = _run(project)
    val = np.load(out / "validation.npz")
    silence = val["x"][val["y"] == 0]
    zeros = features_numpy(np.zeros(16000, np.float32), FeatureConfig())
    assert len(silence) == 1 and not np.allclose(silence[0], zeros)


def test_other_preprocess_modes(project):
    out = _run(project, features=FeatureConfig(preprocess="average"), augment=AugmentConfig(copies=1))
    assert np.load(out / "test.npz")["x"].shape == (4, 98, 43)


def test_bad_clip_fails_cleanly(project):
    root, split_dir, dataset = project
    bad = dataset / "yes" / f"{speaker_id(0)}_nohash_0.wav"
    bad.write_bytes(b"not a wav at all")
    with pytest.raises(WavError, match="nohash_0.wav.*not a WAV"):
        _run(project)
    assert not (root / "features").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".features")]


def test_silence_without_noise_is_an_error(project):
    root, _, dataset = project
    for p in (dataset / "_background_noise_").glob("*.wav"):
        p.unlink()
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
    assert main(["--split-dir", "split", "--dataset-dir", "data/raw/dataset", "--out", "feats"]) == 0
    assert np.load(root / "feats" / "train.npz")["x"].shape[0] == 16


def test_npz_members_carry_no_wall_clock_time(project):
    import zipfile

    out = _run(project, augment=AugmentConfig(copies=1))
    with zipfile.ZipFile(out / "test.npz") as zf:
        assert [i.filename for i in zf.infolist()] == ["x.npy", "y.npy"]
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}


def test_recorded_silence_clip_is_used_as_is(project):
    """The official test set has real _silence_ recordings: no generated noise for those."""
    root, split_dir, dataset = project
    noise = (dataset / "_background_noise_" / "white_noise.wav").relative_to(root).as_posix()
    rows = (split_dir / "test.csv").read_text().splitlines()
    rows[-1] = f"{noise},_silence_,_silence_,0,,testing"
    (split_dir / "test.csv").write_text("\n".join(rows) + "\n")
    out = _run(project, augment=AugmentConfig(copies=1))
    clip = fit_to_length(read_wav(root / noise, 16000), 16000)
    np.testing.assert_allclose(np.load(out / "test.npz")["x"][-1], features_numpy(clip, FeatureConfig()),
                               rtol=1e-6, atol=1e-6)
