"""The metrics files: the headline figures that DVC shows, and each stage's whole record beside.

`dvc metrics show`, `dvc metrics diff` and `dvc exp show` list every number of every metrics file
that dvc.yaml declares, so those files hold only the figures a person compares between runs
(:data:`HEADLINES`: accuracy float and int8, streaming detections and false alarms, sizes, the
split's totals). The stage's whole record (per-class scores, clips per label per split, the
export's parameters, the decoder's settings) goes to ``details/<name>`` beside it
(metrics/details/, plain DVC outs), which `kws report` prints as tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.core import fs, paths

# Per metrics file name: the key paths of its headline figures (missing ones are left out).
HEADLINES: dict[str, tuple[tuple[str, ...], ...]] = {
    "split.json": (
        ("total",),
        ("skipped_files",),
        ("splits", "training", "total"),
        ("splits", "validation", "total"),
        ("splits", "testing", "total"),
    ),
    "train.json": (
        ("validation_accuracy",),
        ("train_accuracy",),
        ("loss",),
        ("steps",),
        ("parameters",),
    ),
    "evaluate.json": (("accuracy",), ("macro_f1",), ("examples",)),
    "export.json": (
        ("accuracy", "keras"),
        ("accuracy", "tflite_float"),
        ("accuracy", "tflite_int8"),
        ("int8_drop_points",),
        ("size_bytes", "model_float.tflite"),
        ("size_bytes", "model_int8.tflite"),
        ("test_clips",),
    ),
    "stream.json": (
        ("correct_percentage",),
        ("detection_rate",),
        ("false_alarms_per_hour",),
        ("correct",),
        ("wrong",),
        ("false_positives",),
        ("ground_truth_words",),
        ("int8", "correct_percentage"),
        ("int8", "false_alarms_per_hour"),
    ),
}


def details_path(metrics_path: Path) -> Path:
    """Where the whole record of the metrics file ``metrics_path`` goes."""
    metrics_path = Path(metrics_path)
    return metrics_path.parent / paths.METRICS_DETAILS_DIR.name / metrics_path.name


def headline(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of ``record`` (the whole record of metrics file ``name``), nested as
    in the record; a record of a file without a headline list is kept whole."""
    if name not in HEADLINES:
        return record
    out: dict[str, Any] = {}
    for keys in HEADLINES[name]:
        value: Any = record
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        level = out
        for key in keys[:-1]:
            level = level.setdefault(key, {})
        level[keys[-1]] = value
    return out


def write_metrics(metrics_path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` whole to :func:`details_path` and its headline to ``metrics_path``."""
    metrics_path = Path(metrics_path)
    details = details_path(metrics_path)
    details.parent.mkdir(parents=True, exist_ok=True)
    fs.atomic_write_json(details, record)
    fs.atomic_write_json(metrics_path, headline(metrics_path.name, record))


def read_record(metrics_path: Path, root: Path = Path(".")) -> dict[str, Any] | None:
    """The whole record of a metrics file: its details file, or (a tree written before the
    details existed) the metrics file itself; None when neither exists."""
    for path in (root / details_path(metrics_path), root / metrics_path):
        if path.is_file():
            return fs.read_json(path)
    return None
