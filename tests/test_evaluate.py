"""The evaluate stage: metrics from the model's own predictions, confusion CSV/PNG, errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from pipeline.core.errors import StageError
from pipeline.core.metrics_files import details_path
from pipeline.evaluation.metrics import score
from pipeline.evaluation.test_split import EvaluationOutputs, evaluate_test_split
from tests.test_train import LABELS, make_features, run_train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained on noisy features (so the test split has some errors)."""
    work = tmp_path_factory.mktemp("evaluate")
    make_features(work / "data/features", frames=6, bins=4, noise=2.0, seed=3)
    run_train(work, how_many_training_steps=[20, 5])
    return work


def run_evaluate(work):
    return evaluate_test_split(
        work / "models/keras",
        work / "data/features",
        EvaluationOutputs(
            work / "metrics/evaluate.json",
            work / "metrics/confusion.csv",
            work / "metrics/confusion.png",
        ),
    )


def test_score_by_hand():
    actual = np.array([0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 1])
    metrics, matrix = score(actual, predicted, ["a", "b", "c"])
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["per_class"]["a"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert metrics["per_class"]["b"]["precision"] == pytest.approx(2 / 4)
    assert metrics["per_class"]["b"]["recall"] == 1.0
    assert metrics["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [0, 1, 0]]


def test_evaluate_writes_metrics_that_match_the_model(trained):
    from pipeline.models.io import load_model_file

    metrics = run_evaluate(trained)
    x, y = (
        np.load(trained / "data/features/test/x.npy"),
        np.load(trained / "data/features/test/y.npy"),
    )
    model = load_model_file(trained / "models/keras/model.keras")
    predicted = np.asarray(model(x)).argmax(axis=1)
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == y))
    assert 0.3 < metrics["accuracy"] < 1.0  # learnt something, and made mistakes to show
    assert json.loads(details_path(trained / "metrics/evaluate.json").read_text()) == metrics
    assert sum(c["support"] for c in metrics["per_class"].values()) == len(y) == metrics["examples"]

    with open(trained / "metrics/confusion.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(y)
    assert [(r["actual"], r["predicted"]) for r in rows] == [
        (LABELS[a], LABELS[p]) for a, p in zip(y, predicted)
    ]
    png = (trained / "metrics/confusion.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


def test_evaluate_rejects_mismatched_inputs(trained, tmp_path):
    def evaluate(model_dir, features_dir, *outs):
        return evaluate_test_split(model_dir, features_dir, EvaluationOutputs(*outs))

    other = make_features(tmp_path / "features", frames=7, bins=4)
    with pytest.raises(StageError, match="do not fit the model's input"):
        evaluate(
            trained / "models/keras",
            other,
            tmp_path / "e.json",
            tmp_path / "c.csv",
            tmp_path / "c.png",
        )
    (other / "labels.txt").write_text("_silence_\n_unknown_\nup\ndown\n")
    with pytest.raises(StageError, match="labels differ"):
        evaluate(
            trained / "models/keras",
            other,
            tmp_path / "e.json",
            tmp_path / "c.csv",
            tmp_path / "c.png",
        )
    with pytest.raises(FileNotFoundError, match="run the train stage first"):
        evaluate(
            tmp_path / "nowhere", other, tmp_path / "e.json", tmp_path / "c.csv", tmp_path / "c.png"
        )
    assert not (tmp_path / "e.json").exists()
