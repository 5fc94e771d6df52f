"""Where a training run reports: TensorBoard events, dvclive, the log, and the curve CSV."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core import fs
from pipeline.evaluation.metrics import confusion_table

log = logging.getLogger("pipeline.train")

CURVE_FIELDS = ("step", "learning_rate", "loss", "train_accuracy", "validation_accuracy")


def _summary(tag: str, value, step: int, plugin: str) -> None:
    """Write one TensorBoard summary with TensorFlow's own ops (so that events are written the
    same way whether or not the tensorboard package is installed)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin
    tf.summary.write(tag, tf.constant(value), step=step, metadata=metadata.SerializeToString())


class TrainingLog:
    """The sinks of one run under ``logs_dir``: TensorBoard (train/, validation/) and dvclive
    (dvclive/, which never touches dvc.yaml). Use as a context manager."""

    def __init__(self, logs_dir: Path, labels: list[str], resume: bool):
        import tensorflow as tf
        from dvclive import Live

        self.labels = labels
        logs_dir.mkdir(parents=True, exist_ok=True)
        self.train_writer = tf.summary.create_file_writer(str(logs_dir / "train"))
        self.val_writer = tf.summary.create_file_writer(str(logs_dir / "validation"))
        self.live = Live(
            dir=str(logs_dir / "dvclive"),
            resume=resume,
            dvcyaml=None,
            save_dvc_exp=False,
            report=None,
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.train_writer.close()
        self.val_writer.close()
        self.live.end()

    def evaluation(self, row: dict[str, Any], matrix: np.ndarray, num_examples: int) -> None:
        """One evaluation: a log line with the confusion matrix, events, dvclive metrics."""
        labels, step = self.labels, row["step"]
        log.info(
            "step %d: rate %g, train accuracy %.1f%%, loss %.4f, validation accuracy %.1f%% "
            "(N=%d); confusion:\n%s",
            step,
            row["learning_rate"],
            100 * row["train_accuracy"],
            row["loss"],
            100 * row["validation_accuracy"],
            num_examples,
            confusion_table(matrix, labels),
        )
        with self.train_writer.as_default():
            _summary("accuracy", float(row["train_accuracy"]), step, "scalars")
            _summary("cross_entropy", float(row["loss"]), step, "scalars")
            _summary("learning_rate", float(row["learning_rate"]), step, "scalars")
        with self.val_writer.as_default():
            _summary("accuracy", float(row["validation_accuracy"]), step, "scalars")
            table = (
                "| actual \\ predicted | "
                + " | ".join(labels)
                + " |\n|"
                + "---|" * (len(labels) + 1)
                + "\n"
            )
            table += "".join(
                f"| {labels[i]} | " + " | ".join(str(v) for v in line) + " |\n"
                for i, line in enumerate(matrix)
            )
            _summary("confusion_matrix", table, step, "text")
        self.live.step = step
        self.live.log_metric("train/accuracy", row["train_accuracy"])
        self.live.log_metric("train/loss", row["loss"])
        self.live.log_metric("validation/accuracy", row["validation_accuracy"])
        self.live.make_summary()


def write_curve(path: Path, curve: list[dict[str, Any]]) -> None:
    """The evaluations of the run as a CSV (a DVC plot)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CURVE_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in curve:
        writer.writerow(
            {k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in CURVE_FIELDS}
        )
    fs.atomic_write_text(path, buffer.getvalue())
