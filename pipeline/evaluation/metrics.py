"""Classification metrics shared by training (validation) and evaluation (test split)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray, num_labels: int) -> np.ndarray:
    """Counts, rows actual and columns predicted (int64 [num_labels, num_labels])."""
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (np.asarray(actual), np.asarray(predicted)), 1)
    return matrix


def short_label(label: str) -> str:
    """A label as a table shows it: ``_silence_`` -> ``silence``."""
    return label.strip("_") or label


def confusion_table(matrix: np.ndarray, labels: list[str]) -> str:
    """The confusion matrix as a text table for the log: rows actual, columns predicted, each
    labelled with its short label name; zeros shown as ``.`` so that the mistakes stand out."""
    names = [short_label(label) for label in labels]
    cells = [["." if v == 0 else str(int(v)) for v in row] for row in np.asarray(matrix)]
    first = max([len("actual \\ predicted"), *map(len, names)])
    widths = [max([len(name), *(len(row[j]) for row in cells)]) for j, name in enumerate(names)]
    lines = [
        "actual \\ predicted".ljust(first)
        + "".join(f"  {name:>{w}}" for name, w in zip(names, widths))
    ]
    for name, row in zip(names, cells):
        lines.append(name.ljust(first) + "".join(f"  {v:>{w}}" for v, w in zip(row, widths)))
    return "\n".join(lines)


def score(
    actual: np.ndarray, predicted: np.ndarray, labels: list[str]
) -> tuple[dict[str, Any], np.ndarray]:
    """Accuracy and per-class precision/recall/F1/support (the metrics), and the confusion
    matrix (rows actual, columns predicted), kept out of the metrics so `dvc metrics show`
    stays readable."""
    from sklearn.metrics import precision_recall_fscore_support

    indices = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        actual, predicted, labels=indices, zero_division=0
    )
    matrix = confusion_matrix(actual, predicted, len(labels))
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
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if matrix[i, j] > threshold else "black",
            )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
