"""Compare the headline metrics of the workspace with a git revision, within stated tolerances.

    python -m pipeline.tools.compare_metrics                  # workspace vs HEAD, a table
    python -m pipeline.tools.compare_metrics --base origin/main --md
    python -m pipeline.tools.compare_metrics --base HEAD --fail   # exit 1 beyond a tolerance

Training is byte-reproducible only on the same kind of CPU (docs/reproducibility.md): another
machine trains slightly different weights, so its metrics move a little. Each headline metric
carries the tolerance measured for that (``TOLERANCE_NOTE``); a change within it is labelled
"same within tolerance", a larger one "changed". CI uses ``--fail`` to check that its rerun of
the pipeline reproduces the committed metrics, and the labels on pull requests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.cli import parse_args, run_main
from pipeline.core import paths
from pipeline.core.errors import StageError
from pipeline.core.fs import read_json

DESCRIPTION = (
    "Compare the headline metrics of the workspace with a git revision, within stated tolerances."
)

TOLERANCE_NOTE = (
    "tolerances: what retraining on another x86 CPU moved each metric by, with margin "
    "(README, Reproducibility)"
)


def lookup(document: dict[str, Any] | None, *keys: str) -> Any:
    """``document[k1][k2]...``, or None where a key or a level is missing."""
    value: Any = document
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


@dataclass(frozen=True)
class Headline:
    """One headline metric: where it is, how to print it and how far another CPU may move it."""

    label: str
    path: Path
    keys: tuple[str, ...]  # the path inside the JSON file
    unit: str  # "fraction" (shown as %), "percent", "bytes" (shown in KiB) or "number"
    tolerance: float  # absolute, in the file's own unit
    short: str  # the column heading where space is short (kws experiments: two lines)
    column: bool = True  # a column of `kws experiments` by default (else with --all-metrics)

    def read(self, document: dict[str, Any] | None) -> float | None:
        value = lookup(document, *self.keys)
        return (
            float(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else None
        )

    def show(self, value: float | None) -> str:
        if value is None:
            return "—"
        if self.unit == "fraction":
            return f"{100 * value:.1f}%"
        if self.unit == "percent":
            return f"{value:.1f}%"
        if self.unit == "bytes":
            return f"{value / 1024:.0f} KiB"
        return f"{value:g}"

    def show_delta(self, delta: float) -> str:
        if self.unit == "fraction":
            return f"{100 * delta:+.1f} pt"
        if self.unit == "percent":
            return f"{delta:+.1f} pt"
        if self.unit == "bytes":
            return f"{delta / 1024:+.1f} KiB"
        return f"{delta:+g}"


# Tolerances: about twice the largest change measured when training ran with other CPU numerics
# (docs/reproducibility.md: an AVX2-only oneDNN, oneDNN off, one thread instead of two, and a real
# AVX2-only CPU, whose fresh clone moved false alarms by 48 per hour), in whole
# clips / words of the default data set (168 test, 154 int8 WAVs, 204 validation clips, 200 words).
# The int8 file's size follows the architecture, not the weights' values (it stayed the same
# across retrainings that moved every accuracy, the AVX2 CPU's included): no tolerance.
HEADLINES = (
    Headline("test accuracy", paths.EVALUATE_METRICS, ("accuracy",), "fraction", 0.025, "test acc"),
    Headline(
        "int8 TFLite accuracy",
        paths.EXPORT_METRICS,
        ("accuracy", "tflite_int8"),
        "fraction",
        0.04,
        "int8 acc",
    ),
    Headline(
        "validation accuracy",
        paths.TRAIN_METRICS,
        ("validation_accuracy",),
        "fraction",
        0.04,
        "val acc",
        column=False,
    ),
    Headline(
        "streaming: correct",
        paths.STREAM_METRICS,
        ("correct_percentage",),
        "percent",
        6.0,
        "stream correct",
    ),
    Headline(
        "streaming: false alarms per hour",
        paths.STREAM_METRICS,
        ("false_alarms_per_hour",),
        "number",
        100.0,
        "false alarms/h",
    ),
    Headline(
        "streaming, int8: correct",
        paths.STREAM_METRICS,
        ("int8", "correct_percentage"),
        "percent",
        6.0,
        "int8 stream correct",
        column=False,
    ),
    Headline(
        "int8 model size",
        paths.EXPORT_METRICS,
        ("size_bytes", "model_int8.tflite"),
        "bytes",
        0.0,
        "int8 size",
    ),
)


def read_workspace(path: Path, root: Path = Path(".")) -> dict[str, Any] | None:
    file = root / path
    if not file.is_file():
        return None
    return read_json(file)


def read_revision(revision: str, path: Path, root: Path = Path(".")) -> dict[str, Any] | None:
    """``path`` as committed at ``revision`` (metrics are git-tracked), None when it is absent."""
    check = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
        cwd=root,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    if check.returncode != 0:
        raise StageError(f"{revision}: not a git revision of {Path(root).resolve()}")
    shown = subprocess.run(
        ["git", "show", f"{revision}:{path.as_posix()}"],
        cwd=root,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    if shown.returncode != 0:
        return None
    try:
        return json.loads(shown.stdout)
    except json.JSONDecodeError as exc:
        raise StageError(f"{revision}:{path}: not valid JSON ({exc})") from None


@dataclass(frozen=True)
class Row:
    headline: Headline
    base: float | None
    current: float | None

    @property
    def delta(self) -> float | None:
        return None if self.base is None or self.current is None else self.current - self.base

    @property
    def beyond(self) -> bool:
        """Moved by more than the tolerance (a metric that appeared or vanished counts too)."""
        if self.base is None and self.current is None:
            return False
        if self.delta is None:
            return True
        return abs(self.delta) > self.headline.tolerance + 1e-12

    @property
    def verdict(self) -> str:
        if self.base is None and self.current is None:
            return "not computed"
        if self.delta is None:
            return "new" if self.base is None else "missing"
        if self.delta == 0:
            return "identical"
        return "CHANGED beyond tolerance" if self.beyond else "same within tolerance"


def compare(base: str, root: Path = Path(".")) -> list[Row]:
    files: dict[Path, tuple[Any, Any]] = {}
    rows = []
    for headline in HEADLINES:
        if headline.path not in files:
            files[headline.path] = (
                read_revision(base, headline.path, root),
                read_workspace(headline.path, root),
            )
        before, after = files[headline.path]
        rows.append(Row(headline, headline.read(before), headline.read(after)))
    return rows


def render(rows: list[Row], base: str, markdown: bool) -> str:
    header = ["metric", base, "workspace", "change", "tolerance", "verdict"]
    body = [
        [
            r.headline.label,
            r.headline.show(r.base),
            r.headline.show(r.current),
            r.headline.show_delta(r.delta) if r.delta is not None else "—",
            "±" + r.headline.show_delta(r.headline.tolerance).lstrip("+"),
            r.verdict,
        ]
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
    else:
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
            for row in [header, *body]
        ]
    return "\n".join(lines + ["", TOLERANCE_NOTE])


def changed_inputs(status: Any) -> list[str]:
    """Stages whose code, params or command differ from dvc.lock in ``dvc status --json`` output.

    Missing outputs (``deleted``: not pulled yet, or not pushed by anyone) do not count: a rerun
    for those is a reproduction of the committed results.
    """

    def changed(value: Any) -> bool:
        if isinstance(value, dict):
            return any(changed(v) for v in value.values())
        return value not in ("deleted", "not in cache")

    stages = []
    for stage, entries in (status or {}).items():
        for entry in entries if isinstance(entries, list) else [entries]:
            if isinstance(entry, str):  # "changed command", "always changed"
                hit = entry != "always changed"
            else:
                hit = any(key != "changed outs" and changed(value) for key, value in entry.items())
            if hit:
                stages.append(stage)
                break
    return stages


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", default="HEAD", help="git revision to compare with")
    parser.add_argument("--md", action="store_true", help="a Markdown table (for a PR comment)")
    parser.add_argument(
        "--fail", action="store_true", help="exit 1 when a metric moved beyond its tolerance"
    )
    parser.add_argument(
        "--skip-if-inputs-changed",
        metavar="STATUS_JSON",
        type=Path,
        help="`dvc status --json` taken before the rerun: if a stage's code or "
        "params differed from dvc.lock, the rerun is not a reproduction of the "
        "committed metrics, so --fail does not apply",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__name__, argv)
    if args.skip_if_inputs_changed is not None:
        status = read_workspace(args.skip_if_inputs_changed)
        if status is None:
            raise StageError(
                f"{args.skip_if_inputs_changed}: not found (the `dvc status --json` output)"
            )
        stages = changed_inputs(status)
        if stages:
            print(
                f"not a reproduction: code or params of {', '.join(stages)} differ from the "
                f"committed dvc.lock (commit the new dvc.lock and metrics); no tolerance check"
            )
            args.fail = False
    rows = compare(args.base)
    print(render(rows, args.base, args.md))
    beyond = [r.headline.label for r in rows if r.beyond]
    if args.fail and beyond:
        raise StageError(f"beyond tolerance against {args.base}: {', '.join(beyond)}")
    return 0


if __name__ == "__main__":
    run_main(main)
