"""Stage `evaluate`: score the trained model once on the test split, as the original does at the
end of training, with per-class precision / recall / F1 and a confusion matrix (CSV for DVC's
confusion template, PNG for people)."""
from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import fsutil
from pipeline.cli import StageError, run_main
from pipeline.labels import read_labels

log = logging.getLogger("pipeline.evaluate")

MODEL_DIR = Path("models/keras")
FEATURES_DIR = Path("data/features")
METRICS_PATH = Path("metrics/evaluate.json")
CONFUSION_CSV = Path("metrics/confusion.csv")
CONFUSION_PNG = Path("metrics/confusion.png")


def load_keras_model(model_dir: Path):
    """The train stage's ``model.keras`` from ``model_dir``."""
    from pipeline.models import load_model_file

    return load_model_file(Path(model_dir) / "model.keras")


def predict_scores(model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    import tensorflow as tf

    predict = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)
    return np.concatenate([predict(tf.constant(x[i : i + batch_size])).numpy() for i in range(0, len(x), batch_size)])


def score(actual: np.ndarray, predicted: np.ndarray, labels: list[str]) -> tuple[dict[str, Any], np.ndarray]:
    """Accuracy and per-class precision/recall/F1/support (the metrics), and the confusion
    matrix (rows actual, columns predicted), kept out of the metrics so `dvc metrics show`
    stays readable."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    indices = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        actual, predicted, labels=indices, zero_division=0
    )
    matrix = confusion_matrix(actual, predicted, labels=indices)
    metrics = {
        "accuracy": float(np.mean(actual == predicted)),
        "examples": int(len(actual)),
        "macro_f1": float(np.mean(f1)),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
    }
    return metrics, matrix


def plot_confusion(matrix: np.ndarray, labels: list[str], title: str) -> bytes:
    """PNG bytes of a labelled confusion matrix with the count in every cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(5.0, 0.55 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if matrix[i, j] > threshold else "black")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def evaluate(
    model_dir: Path = MODEL_DIR,
    features_dir: Path = FEATURES_DIR,
    metrics_path: Path = METRICS_PATH,
    confusion_csv: Path = CONFUSION_CSV,
    confusion_png: Path = CONFUSION_PNG,
) -> dict[str, Any]:
    """Evaluate ``model_dir`` on ``features_dir/test.npz``; write the metrics; return them."""
    from pipeline.train import load_split

    model_dir, features_dir = Path(model_dir), Path(features_dir)
    labels_path = model_dir / "labels.txt"
    if not labels_path.is_file():
        raise FileNotFoundError(f"{labels_path}: not found (run the train stage first)")
    labels = read_labels(labels_path)
    feature_labels_path = features_dir / "labels.txt"
    if feature_labels_path.is_file() and read_labels(feature_labels_path) != labels:
        raise StageError(f"{feature_labels_path}: labels differ from the model's {labels_path} (retrain the model)")
    x, y = load_split(features_dir, "test", len(labels))
    model = load_keras_model(model_dir)
    expected = tuple(model.input_shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise StageError(f"{features_dir / 'test.npz'}: features {x.shape[1:]} do not fit the model's input {expected}")
    scores = predict_scores(model, x)
    if scores.shape[1] != len(labels):
        raise StageError(f"{model_dir}: model has {scores.shape[1]} outputs but {labels_path} lists {len(labels)} labels")
    predicted = scores.argmax(axis=1)
    metrics, matrix = score(y, predicted, labels)

    rows = "".join(f"{labels[a]},{labels[p]}\n" for a, p in zip(y, predicted))
    fsutil.atomic_write_text(confusion_csv, "actual,predicted\n" + rows)
    title = f"Test split: accuracy {100 * metrics['accuracy']:.1f}% (N={len(y)})"
    fsutil.atomic_write_bytes(confusion_png, plot_confusion(matrix, labels, title))
    fsutil.atomic_write_json(metrics_path, metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=str(MODEL_DIR))
    parser.add_argument("--features-dir", default=str(FEATURES_DIR))
    args = parser.parse_args(argv)
    metrics = evaluate(Path(args.model_dir), Path(args.features_dir))
    log.info("test accuracy %.2f%% (N=%d), macro F1 %.3f", 100 * metrics["accuracy"], metrics["examples"], metrics["macro_f1"])
    return 0


if __name__ == "__main__":
    run_main(main)
