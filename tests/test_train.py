"""The train stage on small synthetic feature sets: schedule, outputs, NaN check, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.core.errors import StageError
from pipeline.core.metrics_files import details_path
from pipeline.data.feature_store import write_features
from pipeline.training.config import TrainConfig
from pipeline.training.loop import TrainOutputs, train
from pipeline.training.optim import learning_rate_at

REPO_ROOT = Path(__file__).resolve().parents[1]
LABELS = ("_silence_", "_unknown_", "yes", "no")


def make_features(
    root: Path, n_train=240, n_eval=60, frames=20, bins=12, seed=0, noise=1.0
) -> Path:
    """Write a features folder (docs/architecture.md layout) whose classes are noisy prototypes."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(len(LABELS), frames, bins)).astype(np.float32)
    for name, n in (("train", n_train), ("validation", n_eval), ("test", n_eval)):
        y = (np.arange(n) % len(LABELS)).astype(np.int32)
        x = prototypes[y] + rng.normal(0, noise, size=(n, frames, bins)).astype(np.float32)
        write_features(root, name, x.astype(np.float32), y)
    (root / "labels.txt").write_text("".join(f"{label}\n" for label in LABELS))
    (root / "meta.json").write_text(
        json.dumps({"preprocess": "mfcc", "feature_shape": [frames, bins]})
    )
    return root


def settings(**overrides) -> dict:
    base = dict(
        model_architecture="tiny_conv",
        how_many_training_steps=[30, 10],
        learning_rate=[0.01, 0.001],
        batch_size=16,
        optimizer="adam",
        dropout=0.5,
        eval_step_interval=15,
        save_step_interval=10,
        check_nans=True,
        spec_augment=False,
        mixed_precision=False,
        online_augment=False,
        online_time_shift_frames=10,
        seed=37,
    )
    base.update(overrides)
    return base


def outputs(work: Path) -> TrainOutputs:
    return TrainOutputs(
        model_dir=work / "models/keras",
        checkpoint_dir=work / "models/checkpoints",
        logs_dir=work / "models/logs",
        metrics_path=work / "metrics/train.json",
        curve_path=work / "metrics/train_curve.csv",
    )


def run_train(work: Path, **overrides) -> dict:
    return train(
        TrainConfig(**settings(**overrides)), work / "data/features", outputs(work), progress=False
    )


def model_weights(model_dir: Path) -> list[np.ndarray]:
    from pipeline.models.io import load_model_file

    return [np.asarray(w) for w in load_model_file(model_dir / "model.keras").get_weights()]


def test_learning_rate_schedule_is_piecewise_constant_by_stage():
    steps, rates = [3, 2, 1], [0.1, 0.01, 0.001]
    assert [learning_rate_at(s, steps, rates) for s in range(1, 7)] == [
        0.1,
        0.1,
        0.1,
        0.01,
        0.01,
        0.001,
    ]


def test_train_writes_model_metrics_and_curve(tmp_path):
    make_features(tmp_path / "data/features")
    metrics = run_train(tmp_path)
    assert metrics["validation_accuracy"] >= 0.9
    assert metrics["steps"] == 40 and metrics["resumed_from_step"] == 0
    assert metrics["examples_per_second"] > 0
    # The committed metric holds only what a rerun reproduces; timings go to the logs.
    run_facts = {
        "resumed_from_step",
        "seconds",
        "examples_per_second",
        "placement",
        "replicas",
        "dtype_policy",
    }
    written = json.loads(details_path(tmp_path / "metrics/train.json").read_text())
    assert written == {k: v for k, v in metrics.items() if k not in run_facts}
    assert "architecture" not in json.loads((tmp_path / "metrics/train.json").read_text())
    logged = json.loads((tmp_path / "models/logs/run.json").read_text())
    assert logged == {k: metrics[k] for k in run_facts}
    assert (logged["replicas"], logged["dtype_policy"]) == (1, "float32")  # the CPU, as before

    curve = (tmp_path / "metrics/train_curve.csv").read_text().splitlines()
    assert curve[0] == "step,learning_rate,loss,train_accuracy,validation_accuracy"
    assert [int(line.split(",")[0]) for line in curve[1:]] == [15, 30, 40]  # every 15 and the last
    assert [float(line.split(",")[1]) for line in curve[1:]] == [0.01, 0.01, 0.001]

    model_dir = tmp_path / "models/keras"
    assert (model_dir / "labels.txt").read_text().split() == list(LABELS)
    meta = json.loads((model_dir / "meta.json").read_text())
    assert meta["architecture"] == "tiny_conv" and meta["feature_shape"] == [20, 12]
    assert meta["features"]["preprocess"] == "mfcc" and meta["parameters"] == metrics["parameters"]
    from pipeline.models.io import load_model_file

    model = load_model_file(model_dir / "model.keras")
    scores = np.asarray(model(np.load(tmp_path / "data/features/test/x.npy")[:8]))
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)  # softmax scores, not logits
    ckpts = sorted(p.name for p in (tmp_path / "models/checkpoints").iterdir())
    assert ckpts == ["ckpt-00000020.npz", "ckpt-00000030.npz", "ckpt-00000040.npz"]  # last three
    assert any((tmp_path / "models/logs/train").iterdir())  # TensorBoard events
    assert (tmp_path / "models/logs/dvclive/metrics.json").is_file()


def test_same_config_resumes_and_changed_config_starts_afresh(tmp_path):
    make_features(tmp_path / "data/features")
    first = run_train(tmp_path)
    weights = model_weights(tmp_path / "models/keras")
    again = run_train(tmp_path)  # finished run: resumes at the last step, same model
    assert again["resumed_from_step"] == 40
    assert again["validation_accuracy"] == first["validation_accuracy"]
    for a, b in zip(weights, model_weights(tmp_path / "models/keras")):
        np.testing.assert_array_equal(a, b)
    changed = run_train(tmp_path, learning_rate=[0.02, 0.001])
    assert changed["resumed_from_step"] == 0
    # New features (featurize records their sha256 in meta.json) start afresh too.
    meta_path = tmp_path / "data/features/meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "counts": {"train": {"x_sha256": "0" * 64}}}))
    assert run_train(tmp_path, learning_rate=[0.02, 0.001])["resumed_from_step"] == 0


def test_optimizers_and_spec_augment_train(tmp_path):
    make_features(tmp_path / "data/features", noise=0.5)
    for optimizer, rate in (("gradient_descent", 0.05), ("momentum", 0.01)):
        metrics = run_train(tmp_path, optimizer=optimizer, learning_rate=[rate, rate])
        assert metrics["validation_accuracy"] >= 0.9, optimizer
    metrics = run_train(tmp_path, spec_augment=True, model_architecture="single_fc")
    assert metrics["validation_accuracy"] >= 0.9


def test_a_committee_trains_each_head_and_saves_their_mean(tmp_path):
    """word_pair_mean through the train stage: both heads learn (each alone classifies the
    validation set), and the saved model scores with the mean of their softmaxes."""
    from pipeline.models.io import load_model_file
    from pipeline.models.word_pair_mean import WordPairMeanOptions

    make_features(tmp_path / "data/features", frames=1, bins=60, noise=0.5)
    options = WordPairMeanOptions(windows=4, width=10, channels=8)
    metrics = train(
        TrainConfig(**settings(model_architecture="word_pair_mean")),
        tmp_path / "data/features",
        outputs(tmp_path),
        model_options=options,
        progress=False,
    )
    assert metrics["validation_accuracy"] >= 0.9
    scores_model = load_model_file(tmp_path / "models/keras/model.keras")
    logits_model = scores_model.get_layer("word_pair_mean")
    x = np.load(tmp_path / "data/features/validation/x.npy")
    y = np.load(tmp_path / "data/features/validation/y.npy")
    logits = np.asarray(logits_model(x))
    assert logits.shape == (len(x), 2, len(LABELS))
    for head in range(2):
        assert np.mean(logits[:, head].argmax(1) == y) >= 0.9, head
    heads = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(
        np.asarray(scores_model(x)),
        (heads / heads.sum(-1, keepdims=True)).mean(1),
        rtol=1e-5,
        atol=1e-7,
    )
    meta = json.loads((tmp_path / "models/keras/meta.json").read_text())
    assert meta["model_options"]["windows"] == 4 and meta["architecture"] == "word_pair_mean"


def test_training_data_is_memory_mapped(tmp_path):
    """Training reads batches from the mapped features: x is never loaded whole."""
    from pipeline.training.loop import load_training_data

    data = load_training_data(make_features(tmp_path / "data/features"))
    assert isinstance(data.x_train, np.memmap) and isinstance(data.x_val, np.memmap)
    assert not data.x_train.flags.writeable
    batch = data.x_train[np.array([5, 1, 5])]
    assert type(batch) is np.ndarray and batch.shape == (3, 20, 12)  # rows copied out, in order
    np.testing.assert_array_equal(batch[0], batch[2])


def test_check_nans_names_the_step_and_leaves_no_model(tmp_path):
    features = make_features(tmp_path / "data/features")
    x, y = np.load(features / "train/x.npy"), np.load(features / "train/y.npy")
    x[:] = np.nan
    write_features(features, "train", x, y)
    (tmp_path / "models/keras").mkdir(parents=True)  # a stale model from an earlier run
    with pytest.raises(StageError, match="training step 1: loss or gradients are NaN"):
        run_train(tmp_path)
    assert not (tmp_path / "models/keras").exists()


def test_bad_features_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels.txt"):
        run_train(tmp_path)
    features = make_features(tmp_path / "data/features")
    write_features(
        features, "validation", np.zeros((4, 20, 12), np.float32), np.array([0, 1, 2, 9], np.int32)
    )
    with pytest.raises(StageError, match=r"validation/y.npy: labels must be integers in \[0, 4\)"):
        run_train(tmp_path)
    write_features(features, "validation", np.zeros((4, 20, 13), np.float32), np.zeros(4, np.int32))
    with pytest.raises(StageError, match="differ in shape"):
        run_train(tmp_path)
    write_features(features, "validation", np.zeros((4, 20, 12), np.float64), np.zeros(4, np.int32))
    with pytest.raises(StageError, match=r"validation/x.npy: expected float32 features"):
        run_train(tmp_path)
    (features / "validation" / "y.npy").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"validation/y.npy: not found \(run the featurize stage"
    ):
        run_train(tmp_path)


def test_damaged_checkpoints_are_set_aside_and_training_resumes_from_a_good_one(tmp_path):
    """A truncated and an empty checkpoint (a full disk, a crash) do not block the train stage:
    each is named and set aside, and training resumes from the newest good one to the same model
    an uninterrupted run makes; with none good left, it starts from scratch and says so."""
    make_features(tmp_path / "data/features")
    run_train(tmp_path)
    reference = (tmp_path / "models/keras/model.keras").read_bytes()
    checkpoints = tmp_path / "models/checkpoints"
    newest, middle = checkpoints / "ckpt-00000040.npz", checkpoints / "ckpt-00000030.npz"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated
    middle.write_bytes(b"")  # empty

    from pipeline.sections import defaults

    params = defaults()  # a stage checks the whole file first
    params["train"] = {**params["train"], **settings()}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.train", "--no-progress"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for name in (newest.name, middle.name):
        assert f"checkpoint models/checkpoints/{name} is damaged" in result.stderr
        assert f"set aside as {name}.damaged" in result.stderr
        assert (checkpoints / f"{name}.damaged").is_file()
    assert "resuming from models/checkpoints/ckpt-00000020.npz (step 20)" in result.stderr
    assert json.loads((tmp_path / "models/logs/run.json").read_text())["resumed_from_step"] == 20
    assert (tmp_path / "models/keras/model.keras").read_bytes() == reference

    # Every checkpoint damaged: a fresh run, which keeps the damaged files for a person to see.
    for path in checkpoints.glob("ckpt-*.npz"):
        path.write_bytes(b"PK\x03\x04 not a whole zip")
    fresh = run_train(tmp_path)
    assert fresh["resumed_from_step"] == 0 and fresh["steps"] == 40
    assert (tmp_path / "models/keras/model.keras").read_bytes() == reference
    assert sorted(p.name for p in checkpoints.glob("*.damaged")) == [
        f"ckpt-000000{step}.npz.damaged" for step in (20, 30, 40)
    ]


@pytest.mark.slow
def test_sigkill_mid_training_resumes_from_the_last_checkpoint(tmp_path):
    """Kill a real `python -m pipeline.stages.train` with SIGKILL, rerun it, and check it continues
    from the last checkpoint and ends with exactly the weights of an uninterrupted run."""
    overrides = dict(
        how_many_training_steps=[300, 100], save_step_interval=25, eval_step_interval=100
    )
    reference = tmp_path / "reference"
    make_features(reference / "data/features")
    run_train(reference, **overrides)

    work = tmp_path / "work"
    make_features(work / "data/features")
    from pipeline.sections import defaults

    params = defaults()  # a stage checks the whole file first
    params["train"] = {**params["train"], **settings(**overrides)}
    (work / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "pipeline.stages.train", "--no-progress"]
    process = subprocess.Popen(
        cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoints = work / "models/checkpoints"
    deadline = time.monotonic() + 120
    while not (checkpoints.is_dir() and any(p.suffix == ".npz" for p in checkpoints.iterdir())):
        assert process.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (work / "models/keras").exists()
    killed_at = max(int(p.stem.split("-")[1]) for p in checkpoints.glob("ckpt-*.npz"))
    assert 25 <= killed_at < 400

    result = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from" in result.stderr
    run = json.loads((work / "models/logs/run.json").read_text())
    assert run["resumed_from_step"] >= killed_at
    for a, b in zip(
        model_weights(reference / "models/keras"), model_weights(work / "models/keras")
    ):
        np.testing.assert_array_equal(a, b)
    # Same weights, same bytes: DVC sees the resumed model as the uninterrupted one.
    assert (work / "models/keras/model.keras").read_bytes() == (
        reference / "models/keras/model.keras"
    ).read_bytes()
    assert (work / "metrics/train.json").read_text() == (
        reference / "metrics/train.json"
    ).read_text()
    reference_curve = (reference / "metrics/train_curve.csv").read_text()
    assert (work / "metrics/train_curve.csv").read_text() == reference_curve


def test_label_smoothing_spreads_the_targets_over_every_label():
    from pipeline.training.optim import make_loss

    logits = np.array([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]], np.float32)
    y = np.array([0, 2], np.int32)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    plain = -log_p[np.arange(2), y].mean()
    s = 0.3
    targets = np.full((2, 3), s / 3) + (1 - s) * np.eye(3)[y]
    smoothed = -(targets * log_p).sum(axis=1).mean()
    assert float(make_loss(0.0)(y, logits)) == pytest.approx(plain, rel=1e-5)
    assert float(make_loss(s)(y, logits)) == pytest.approx(smoothed, rel=1e-5)
    assert float(make_loss(s, reduction="sum")(y, logits)) == pytest.approx(2 * smoothed, rel=1e-5)
