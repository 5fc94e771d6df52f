"""The split manifests: one CSV row per example, the contract between split and later stages.

Columns: ``path`` (a clip in a clip store, ``<store folder>/<name>`` relative to the repository
root, e.g. ``data/raw/dataset/yes/0a7c2a8d_nohash_0.wav``; empty for generated silence),
``word`` (the folder name; ``_silence_`` for silence rows), ``label``, ``label_index``,
``speaker`` (the part of the file name before ``_nohash_``), ``split``. :func:`read_manifest` is
the one reader. The download stage's reports (skipped.csv, converted.csv) are written here too.
"""

from __future__ import annotations

import csv
import io
from dataclasses import astuple, dataclass
from pathlib import Path

from pipeline.core.errors import StageError
from pipeline.core.labels import SILENCE_LABEL

SPLITS = ("training", "validation", "testing")
MANIFEST_NAMES = {"training": "train.csv", "validation": "validation.csv", "testing": "test.csv"}
COLUMNS = ("path", "word", "label", "label_index", "speaker", "split")
SKIPPED_COLUMNS = ("path", "problem")
CONVERTED_COLUMNS = ("set", "path", "was", "converted")


@dataclass(frozen=True)
class Row:
    """One manifest line; ``path`` is empty for generated silence."""

    path: str
    word: str
    label: str
    label_index: int
    speaker: str
    split: str


def manifest_text(rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(astuple(row) for row in rows)
    return buffer.getvalue()


def read_manifest(path) -> list[Row]:
    """Rows of a manifest written by the split stage: the one reader for every later stage.

    Checks what the consumers rely on, naming the file and line: the columns, an integer
    ``label_index``, and a ``path`` on every row that is not silence.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (run the split stage first)")
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise StageError(
                f"{path}: expected columns {','.join(COLUMNS)}, got {reader.fieldnames}"
            )
        rows = []
        for n, r in enumerate(reader, start=2):
            try:
                label_index = int(r["label_index"])
            except (TypeError, ValueError):  # TypeError: a short row leaves the field None
                raise StageError(
                    f"{path}:{n}: label_index {r['label_index']!r} is not an integer"
                ) from None
            if r["label"] != SILENCE_LABEL and not r["path"]:
                raise StageError(f"{path}:{n}: row of label {r['label']!r} has no path")
            rows.append(
                Row(r["path"], r["word"], r["label"], label_index, r["speaker"], r["split"])
            )
    return rows


def skipped_text(skipped) -> str:
    """The ``path,problem`` report of clips left out (header only when none were)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([SKIPPED_COLUMNS, *skipped])
    return buffer.getvalue()


def converted_text(converted) -> str:
    """The ``set,path,was,converted`` report of clips converted on ingest: the data set
    (dataset, official_test), the file's path relative to its folder, its format before and what
    changed (format, channels, rate, name)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([CONVERTED_COLUMNS, *converted])
    return buffer.getvalue()


def read_skipped(path) -> list[tuple[str, str]]:
    """(path, problem) rows of the download stage's skip report; none if it is absent."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not set(SKIPPED_COLUMNS) <= set(reader.fieldnames or ()):
            raise StageError(f"{path}: expected columns {','.join(SKIPPED_COLUMNS)}")
        return [(r["path"], r["problem"]) for r in reader]
