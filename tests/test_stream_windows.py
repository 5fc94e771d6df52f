"""Training windows cut from synthetic streams of the training speakers (``stream_windows``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.core.audio import write_wav
from pipeline.core.errors import ParamError
from pipeline.core.schema import read_yaml
from pipeline.data.augment import AugmentConfig
from pipeline.data.featurize import featurize
from pipeline.data.stream_synthesis import StreamConfig, synthesize
from pipeline.data.stream_windows import (
    StreamWindowsConfig,
    label_windows,
    stream_examples,
    window_features,
)
from pipeline.frontends import FeatureConfig, embedding, features_numpy
from pipeline.stages.featurize import main
from tests.conftest import (
    REPO_ROOT,
    make_store,
    pack,
    skip_without_embedding_models,
    speaker_id,
    word_clip,
)
from tests.test_featurize import _write_split

LABELS = ["_silence_", "_unknown_", "yes", "no"]
TRAIN_SPEAKERS, HELD_OUT = range(0, 5), range(5, 8)  # _write_split: 5-6 validation, 7 test
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


@pytest.fixture
def project(tmp_path):
    dataset = make_store(
        tmp_path / "data" / "raw" / "dataset", words=("yes", "no", "cat"), speakers=8
    )
    return tmp_path, _write_split(tmp_path, dataset), dataset


def _params(root: Path, **windows) -> None:
    """params.yaml in ``root``: the repository's on MFCC (FeatureConfig()'s front end, fast), one
    augmented copy, short streams of a word every 2 s, and ``windows`` over stream_windows."""
    params = read_yaml((REPO_ROOT / "params.yaml").read_text())
    params["features"]["preprocess"] = "mfcc"
    params["augment"]["copies"] = 1
    params["stream"].update(word_interval_ms=2000, word_gap_ms=500)
    params["stream_windows"].update(duration_s=30, **windows)
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def _stage(root: Path, monkeypatch, out: str) -> Path:
    monkeypatch.chdir(root)
    assert main(["--split-dir", "split", "--raw", "data/raw", "--out", out]) == 0
    return root / out


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rewrite_speakers(dataset: Path, speakers, seed: int) -> None:
    """Replace every clip of ``speakers`` by other audio (a different take) and repack the store."""
    for s in speakers:
        for word in ("yes", "no", "cat"):
            write_wav(
                dataset / word / f"{speaker_id(s)}_nohash_0.wav", word_clip(word, s, seed), 16000
            )
    pack(dataset)


def test_label_rules_near_far_and_between():
    truth = [("yes", 1000.0), ("_unknown_", 4000.0), ("no", 7000.0)]
    times = np.arange(0, 9000, 80)
    chosen, y = label_windows(times, truth, LABELS, 160, 750, np.random.default_rng(0))
    gap = np.min(np.abs(times[:, None] - np.array([1000, 4000, 7000])[None, :]), axis=1)
    near = chosen[y != 0]
    far = chosen[y == 0]
    assert sorted(near.tolist()) == np.nonzero(gap <= 160)[0].tolist()  # every near window
    for i, label in zip(near, y[y != 0]):
        word = min(truth, key=lambda w: abs(w[1] - times[i]))
        assert LABELS[label] == word[0]
    assert len(far) == len(near) and np.all(gap[far] > 750)  # as many, all far from every word
    between = (gap > 160) & (gap <= 750)
    assert not set(chosen.tolist()) & set(np.nonzero(between)[0].tolist())
    again, y2 = label_windows(times, truth, LABELS, 160, 750, np.random.default_rng(0))
    np.testing.assert_array_equal(chosen, again)
    np.testing.assert_array_equal(y, y2)


def test_fewer_far_windows_than_words_takes_them_all():
    truth = [("yes", 1000.0)]
    times = np.arange(0, 2000, 80)  # far: before 250 ms or after 1750 ms; near: 500-1500 ms
    chosen, y = label_windows(times, truth, LABELS, 500, 750, np.random.default_rng(1))
    assert np.sum(y == 0) == np.sum(np.abs(times - 1000) > 750) < np.sum(y != 0)


def test_the_stage_adds_windows_of_training_speakers_only(project, monkeypatch):
    """Every training window comes from the training split's clips: other audio for the
    validation and test speakers changes their splits but not one byte of the training split,
    while other audio for the training speakers does change it."""
    root, _, dataset = project
    _params(root, streams=2)
    a = _stage(root, monkeypatch, "a")
    meta = json.loads((a / "meta.json").read_text())
    train = meta["counts"]["train"]
    assert train["rows"] == 16 and train["stream_windows"] > 20
    assert train["examples"] == 16 + train["stream_windows"]
    y = np.load(a / "train" / "y.npy")
    assert len(np.load(a / "train" / "x.npy", mmap_mode="r")) == len(y) == train["examples"]
    windows = y[16:]
    assert np.sum(windows == 0) > 0 and set(windows.tolist()) <= {0, 1, 2, 3}
    assert np.sum(windows == 0) <= np.sum(windows != 0)
    assert meta["stream_windows"]["streams"] == 2

    _rewrite_speakers(dataset, HELD_OUT, seed=7)
    b = _stage(root, monkeypatch, "b")
    assert _digest(a / "validation/x.npy") != _digest(b / "validation/x.npy")  # the change is seen
    assert _digest(a / "test/x.npy") != _digest(b / "test/x.npy")
    for name in ("train/x.npy", "train/y.npy"):
        assert _digest(a / name) == _digest(b / name), name

    _rewrite_speakers(dataset, TRAIN_SPEAKERS, seed=7)
    c = _stage(root, monkeypatch, "c")
    assert not np.array_equal(np.load(b / "train/x.npy")[16:], np.load(c / "train/x.npy")[16:])


def test_windows_are_deterministic_and_seeded(project, monkeypatch):
    root, _, _ = project
    _params(root, streams=2)
    a = _stage(root, monkeypatch, "a")
    b = _stage(root, monkeypatch, "b")
    for name in FILES:
        assert _digest(a / name) == _digest(b / name), name
    _params(root, streams=2, seed=5)
    c = _stage(root, monkeypatch, "c")
    assert _digest(a / "train/x.npy") != _digest(c / "train/x.npy")
    for name in ("validation/x.npy", "test/x.npy"):
        assert _digest(a / name) == _digest(c / name), name
    # the clip rows before the windows are untouched by the windows' seed
    np.testing.assert_array_equal(np.load(a / "train/x.npy")[:16], np.load(c / "train/x.npy")[:16])


def test_default_off_leaves_the_features_unchanged(project, monkeypatch):
    """streams: 0 (params.yaml's default) writes exactly what featurize wrote without the
    section."""
    root, split_dir, dataset = project
    _params(root)
    assert read_yaml((REPO_ROOT / "params.yaml").read_text())["stream_windows"]["streams"] == 0
    staged = _stage(root, monkeypatch, "staged")
    plain = root / "plain"
    featurize(
        split_dir, dataset.parent, plain, FeatureConfig(), AugmentConfig(copies=1), base_dir=root
    )
    for name in FILES:
        assert _digest(staged / name) == _digest(plain / name), name
    assert "stream_windows" not in json.loads((plain / "meta.json").read_text())
    assert "stream_windows" not in json.loads((plain / "meta.json").read_text())["counts"]["train"]


def test_featurize_synthesizes_the_training_streams_itself(project, monkeypatch):
    """The library call, typed and from another working directory, writes what the stage writes:
    featurize synthesizes the training recordings itself from the ``stream`` section, reading
    manifest paths relative to ``base_dir``."""
    root, split_dir, dataset = project
    _params(root, streams=2)
    staged = _stage(root, monkeypatch, "staged")
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    library = root / "library"
    meta = featurize(
        split_dir,
        dataset.parent,
        library,
        FeatureConfig(),
        AugmentConfig(copies=1),
        base_dir=root,
        stream_windows=StreamWindowsConfig(streams=2, duration_s=30),
        stream=StreamConfig(word_interval_ms=2000, word_gap_ms=500),
    )
    assert meta["counts"]["train"]["stream_windows"] > 20
    for name in FILES:
        assert _digest(staged / name) == _digest(library / name), name
    assert list(elsewhere.iterdir()) == []


def test_a_stride_off_the_stream_frames_is_a_param_error(project, monkeypatch):
    root, _, _ = project
    _params(root, streams=1, stride_ms=15)  # mfcc streams 10 ms frames
    with pytest.raises(ParamError, match=r"stream_windows.stride_ms 15 .*'mfcc'.*10 ms"):
        _stage(root, monkeypatch, "bad")
    assert not (root / "bad").exists()
    with pytest.raises(ParamError, match="far_ms"):
        StreamWindowsConfig(near_ms=800, far_ms=750)


def _recording(seconds=12):
    words = {
        "yes": [word_clip("yes", s, 0) for s in range(3)],
        "no": [word_clip("no", s, 0) for s in range(3)],
    }
    noise = [np.random.default_rng(0).normal(0, 0.1, 48000).astype(np.float32)]
    settings = StreamConfig(duration_s=seconds, word_interval_ms=2000, word_gap_ms=500, seed=3)
    return synthesize(words, [word_clip("cat", 0, 0)], noise, settings, 16000, progress=False)


def test_frame_reuse_windows_equal_each_windows_own_features():
    """mfcc streams with frame reuse: a window sliced from the recording's frames is the clip's."""
    recording, truth = _recording()
    cfg = StreamWindowsConfig(streams=1)
    x, y = stream_examples(recording, truth, LABELS, FeatureConfig(), cfg, np.random.default_rng(0))
    starts = np.arange(0, len(recording) - 16000, 1280)
    chosen, labels = label_windows(starts / 16, truth, LABELS, 160, 750, np.random.default_rng(0))
    np.testing.assert_array_equal(y, labels)
    own = features_numpy(
        np.stack([recording[s : s + 16000] for s in starts[chosen]]), FeatureConfig()
    )
    np.testing.assert_allclose(x, own, atol=1e-3, rtol=1e-3)


def test_the_embedding_windows_see_their_real_context():
    """The speech embedding's windows are streaming's: each in the recording's own audio around it
    (the plain per-window computation over that context), not a clip padded with silence."""
    skip_without_embedding_models()
    recording, _ = _recording()
    features = FeatureConfig(preprocess="embedding")
    starts = np.arange(5, 60, 7) * embedding.EMBEDDING_HOP_SAMPLES  # contexts inside the recording
    x = window_features(recording, starts, features)
    context = np.stack([embedding.context_window(recording, int(s), 16000) for s in starts])
    np.testing.assert_allclose(x, embedding.reference_embed(context, pad=0), atol=2e-3)
    padded = features_numpy(np.stack([recording[s : s + 16000] for s in starts]), features)
    assert np.abs(x - padded).max() > 0.1  # featurize's silence padding would differ
    with pytest.raises(ParamError, match="stream_windows.stride_ms 30 .*'embedding'.*80 ms"):
        stream_examples(
            recording,
            [],
            LABELS,
            features,
            StreamWindowsConfig(streams=1, stride_ms=30),
            np.random.default_rng(0),
        )


def test_a_front_end_without_frame_reuse_featurizes_each_window_alone():
    """micro has no frame reuse: stream_eval featurizes each window's own audio, and so do the
    stream windows (at any stride)."""
    recording, truth = _recording()
    features = FeatureConfig(preprocess="micro", window_stride_ms=20)
    assert not features.frontend.frame_reuse
    cfg = StreamWindowsConfig(streams=1, stride_ms=70)
    x, y = stream_examples(recording, truth, LABELS, features, cfg, np.random.default_rng(0))
    starts = np.arange(0, len(recording) - 16000, 1120)
    chosen, labels = label_windows(starts / 16, truth, LABELS, 160, 750, np.random.default_rng(0))
    np.testing.assert_array_equal(y, labels)
    assert x.shape == (len(chosen), *features.feature_shape)
    own = features_numpy(np.stack([recording[s : s + 16000] for s in starts[chosen]]), features)
    np.testing.assert_allclose(x, own, atol=1e-5)
