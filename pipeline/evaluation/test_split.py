"""Score the trained model once on the test split, as the original does at the end of training:
accuracy, per-class precision / recall / F1, and the confusion matrix (CSV for DVC's confusion
template, PNG for people)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core import fs, paths
from pipeline.core.errors import StageError
from pipeline.core.labels import read_labels
from pipeline.core.metrics_files import write_metrics
from pipeline.data.feature_store import read_features
from pipeline.evaluation.metrics import confusion_table, plot_confusion, score

BATCH = 512
log = logging.getLogger("pipeline.evaluate")


@dataclass(frozen=True)
class EvaluationOutputs:
    metrics_path: Path = paths.EVALUATE_METRICS
    confusion_csv: Path = paths.CONFUSION_CSV
    confusion_png: Path = paths.CONFUSION_PNG


def evaluate_test_split(
    model_dir=paths.MODEL_DIR,
    features_dir=paths.FEATURES_DIR,
    outputs: EvaluationOutputs = EvaluationOutputs(),
) -> dict[str, Any]:
    """Evaluate ``model_dir`` on ``features_dir/test/``; write the outputs; return the metrics."""
    from pipeline.models.io import batch_predictor, load_model_file

    model_dir, features_dir = Path(model_dir), Path(features_dir)
    labels_path = model_dir / "labels.txt"
    if not labels_path.is_file():
        raise FileNotFoundError(f"{labels_path}: not found (run the train stage first)")
    labels = read_labels(labels_path)
    feature_labels_path = features_dir / "labels.txt"
    if feature_labels_path.is_file() and read_labels(feature_labels_path) != labels:
        raise StageError(
            f"{feature_labels_path}: labels differ from the model's {labels_path} "
            "(retrain the model)"
        )
    x, y = read_features(features_dir, "test", len(labels))
    model = load_model_file(model_dir / "model.keras")
    expected = tuple(model.input_shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise StageError(
            f"{features_dir / 'test'}: features {x.shape[1:]} do not fit the model's input "
            f"{expected}"
        )
    scores = batch_predictor(model)(x, BATCH)
    if scores.shape[1] != len(labels):
        raise StageError(
            f"{model_dir}: model has {scores.shape[1]} outputs but {labels_path} lists "
            f"{len(labels)} labels"
        )
    predicted = scores.argmax(axis=1)
    metrics, matrix = score(y, predicted, labels)
    log.info("test split confusion:\n%s", confusion_table(matrix, labels))

    rows = "".join(f"{labels[a]},{labels[p]}\n" for a, p in zip(y, predicted))
    fs.atomic_write_text(outputs.confusion_csv, "actual,predicted\n" + rows)
    title = f"Test split: accuracy {100 * metrics['accuracy']:.1f}% (N={len(y)})"
    fs.atomic_write_bytes(outputs.confusion_png, plot_confusion(matrix, labels, title))
    write_metrics(outputs.metrics_path, metrics)
    return metrics
