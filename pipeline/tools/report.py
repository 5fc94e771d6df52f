"""Print the metrics' details as tables: per-class scores, clips per split, the export, streaming.

    kws report                  # every table
    kws report --only classes   # one of: classes, confusion, split, export, stream

The metrics files that DVC shows hold the headline figures only (pipeline/core/metrics_files.py);
each stage's whole record is metrics/details/<file>, and this prints it for people. A tree whose
metrics were written before the details existed is read from the metrics files themselves.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline.cli import parse_args, run_main
from pipeline.core import paths
from pipeline.core.metrics_files import read_record

DESCRIPTION = (
    "Print the metrics' details as tables: per-class scores, split counts, export, stream."
)
SECTIONS = ("classes", "confusion", "split", "export", "stream")
SPLIT_ORDER = ("training", "validation", "testing")


def _percent(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"


def classes_table(evaluate: dict[str, Any]) -> str:
    """Precision, recall, F1 and support of each class on the test split."""
    import pandas as pd

    frame = pd.DataFrame.from_dict(evaluate.get("per_class", {}), orient="index")
    if frame.empty:
        return "(no per-class scores)"
    frame = frame.reindex(columns=["precision", "recall", "f1", "support"])
    frame.index.name = "class"
    return frame.to_string(
        formatters={c: _percent for c in ("precision", "recall", "f1")}
        | {"support": lambda v: f"{int(v)}"}
    )


def split_table(split: dict[str, Any]) -> str:
    """Clips per label (rows) in each split (columns), with totals and the unknown pool."""
    import pandas as pd

    splits = split.get("splits", {})
    frame = pd.DataFrame({name: part.get("labels", {}) for name, part in splits.items()})
    if frame.empty:
        return "(no split counts)"
    frame = frame.reindex(
        columns=sorted(frame.columns, key=lambda c: (SPLIT_ORDER + (c,)).index(c))
    )
    frame = frame.fillna(0).astype(int)
    frame.index.name = "label"
    frame.loc["total"] = [int(splits[name].get("total", 0)) for name in frame.columns]
    pool = split.get("unknown_pool")
    if pool:
        frame.loc["(unknown pool)"] = [int(pool.get(name, 0)) for name in frame.columns]
    return frame.to_string()


def confusion_text(csv_path: Path) -> str:
    """The test split's confusion matrix (rows actual, columns predicted) from its CSV."""
    import numpy as np
    import pandas as pd

    from pipeline.evaluation.metrics import confusion_table

    rows = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    labels = sorted(set(rows["actual"]) | set(rows["predicted"]))
    counts = pd.crosstab(rows["actual"], rows["predicted"]).reindex(
        index=labels, columns=labels, fill_value=0
    )
    return confusion_table(np.asarray(counts), labels)


def export_table(export: dict[str, Any]) -> str:
    """Test accuracy of each exported format, and the size of each file."""
    import pandas as pd

    accuracy = pd.Series(export.get("accuracy", {}), name="accuracy", dtype=object)
    sizes = pd.Series(export.get("size_bytes", {}), name="size", dtype=object)
    lines = []
    if not accuracy.empty:
        accuracy.index.name = "format"
        lines.append(accuracy.map(_percent).to_frame().to_string())
    if not sizes.empty:
        sizes.index.name = "file"
        lines.append(sizes.map(lambda b: f"{int(b) / 1024:,.1f} KiB").to_frame().to_string())
    streaming = export.get("streaming", {})
    if streaming:
        exported = streaming.get("exported")
        lines.append(
            f"streaming export: {'yes' if exported else 'no'}"
            + ("" if exported else f" ({streaming.get('reason', '')})")
        )
    return "\n\n".join(lines) or "(no export metrics)"


def stream_table(stream: dict[str, Any]) -> str:
    """The decoder's settings and its counts on the synthetic recording (the int8 model's
    beside them)."""
    import pandas as pd

    scalars = {k: v for k, v in stream.items() if not isinstance(v, (dict, list))}
    scalars.update({f"int8 {k}": v for k, v in (stream.get("int8") or {}).items()})
    if not scalars:
        return "(no streaming metrics)"
    frame = pd.Series(scalars, dtype=object).to_frame("value")
    frame.index.name = "streaming"
    return frame.to_string()


def report(root: Path = Path("."), only: str | None = None) -> str:
    sources = {
        "classes": ("Per class (test split)", paths.EVALUATE_METRICS, classes_table),
        "split": ("Clips per label and split", paths.SPLIT_METRICS, split_table),
        "export": ("Export", paths.EXPORT_METRICS, export_table),
        "stream": ("Streaming (synthetic recording)", paths.STREAM_METRICS, stream_table),
    }
    blocks = []
    for name in SECTIONS if only is None else (only,):
        if name == "confusion":
            csv_path = root / paths.CONFUSION_CSV
            body = confusion_text(csv_path) if csv_path.is_file() else "(not computed yet)"
            blocks.append(f"== Confusion (test split)\n{body}")
            continue
        title, path, table = sources[name]
        record = read_record(path, root)
        body = "(not computed yet: run `dvc repro`)" if record is None else table(record)
        blocks.append(f"== {title}\n{body}")
    return "\n\n".join(blocks)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", choices=SECTIONS, help="print one table (default: all)")
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository root")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__name__, argv)
    print(report(args.root, args.only))
    return 0


if __name__ == "__main__":
    run_main(main)
