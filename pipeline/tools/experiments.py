"""The experiments of `dvc exp show` as one table that fits the terminal.

    kws experiments                     # workspace, HEAD and its experiments
    kws experiments -A                  # every commit's (also: --rev REV, -n N, -a)
    kws experiments --param train.dropout --all-metrics
    kws experiments --md                # every column, for a pull request (or --csv)

`dvc exp show` lists every param of params.yaml and one column per stage dependency (each code
file and data folder), and has no setting to hide them, so its table is far wider than a
terminal. This reads `dvc exp show --json` and keeps what tells experiments apart: the headline
metrics (the ones `kws compare-metrics` checks, under short labels), only the params whose values
differ between the rows shown (``--param`` adds one always), and one "code/data" column naming
the dependencies that differ from the row's baseline. Param columns that do not fit the width are
left out from the right, and a line below the table says how many.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.cli import parse_args, run_main
from pipeline.core.errors import StageError
from pipeline.tools.compare_metrics import HEADLINES, Headline
from pipeline.tools.preset import flatten

DESCRIPTION = "The experiments of `dvc exp show` as one table that fits the terminal."

MISSING = "—"
DEFAULT_PARAMS_FILE = "params.yaml"
GAP = "  "  # between columns
NAME_WIDTH = 24  # an experiment's name is cut to this in the terminal (tree marker included)
VALUE_WIDTH = 12  # a param's value (a list, a path) likewise
SAME = "same"


class ExperimentsError(StageError):
    """`dvc exp show` cannot be run here, or failed."""


@dataclass
class Row:
    """One line of `dvc exp show`: the workspace, a baseline commit or one of its experiments."""

    name: str
    rev: str
    kind: str  # "workspace", "baseline" or "experiment"
    last: bool = False  # the last experiment of its baseline (└── instead of ├──)
    params: dict[str, Any] = field(default_factory=dict)  # "train.dropout" or "file:key"
    metrics: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # per file
    deps: dict[str, str | None] = field(default_factory=dict)  # path -> hash
    baseline_deps: dict[str, str | None] | None = None
    error: str | None = None

    def label(self) -> str:
        marker = {"experiment": "└── " if self.last else "├── "}.get(self.kind, "")
        return marker + self.name + (" (failed)" if self.error else "")

    def changed_deps(self) -> list[str] | None:
        """The dependency paths whose hash differs from the baseline's (None for a baseline)."""
        if self.baseline_deps is None:
            return None
        paths = sorted(set(self.deps) | set(self.baseline_deps))
        return [p for p in paths if self.deps.get(p) != self.baseline_deps.get(p)]


def _error_text(error: Any) -> str | None:
    if not error:
        return None
    if isinstance(error, dict):
        return str(error.get("msg") or error.get("type") or "error")
    return str(error)


def _row(entry: dict[str, Any], name: str, kind: str) -> Row:
    """A row from one revision of `dvc exp show --json` (``{"rev", "name", "data", "error"}``)."""
    data = entry.get("data") or {}
    params: dict[str, Any] = {}
    for file, content in (data.get("params") or {}).items():
        values = flatten((content or {}).get("data") or {})
        prefix = "" if file == DEFAULT_PARAMS_FILE else f"{file}:"
        params.update({f"{prefix}{key}": value for key, value in values.items()})
    metrics = {
        file: (content or {}).get("data") if isinstance((content or {}).get("data"), dict) else None
        for file, content in (data.get("metrics") or {}).items()
    }
    deps = {
        path: (info or {}).get("hash") if isinstance(info, dict) else None
        for path, info in (data.get("deps") or {}).items()
    }
    rev = str(entry.get("rev") or "")
    return Row(
        name=name,
        rev=rev,
        kind=kind,
        params=params,
        metrics=metrics,
        deps=deps,
        error=_error_text(entry.get("error")),
    )


def rows_from_json(document: Any) -> list[Row]:
    """The rows of `dvc exp show --json`, in its order: the workspace, then each baseline commit
    followed by its experiments. The workspace compares its deps with the first baseline (HEAD),
    an experiment with its own baseline."""
    if not isinstance(document, list):
        raise ExperimentsError("dvc exp show --json: not a list of revisions (a newer DVC?)")
    rows: list[Row] = []
    workspace: Row | None = None
    for entry in document:
        if not isinstance(entry, dict):
            continue
        rev = str(entry.get("rev") or "")
        if rev == "workspace":
            workspace = _row(entry, "workspace", "workspace")
            rows.append(workspace)
            continue
        baseline = _row(entry, str(entry.get("name") or rev[:7]), "baseline")
        rows.append(baseline)
        if workspace is not None and workspace.baseline_deps is None:
            workspace.baseline_deps = baseline.deps
        experiments = [e for e in entry.get("experiments") or [] if isinstance(e, dict)]
        for index, experiment in enumerate(experiments):
            revs = [r for r in experiment.get("revs") or [] if isinstance(r, dict)]
            if not revs:
                continue
            first = revs[0]
            name = experiment.get("name") or first.get("name") or str(first.get("rev", ""))[:7]
            row = _row(first, str(name), "experiment")
            row.last = index == len(experiments) - 1
            row.baseline_deps = baseline.deps
            rows.append(row)
    return rows


@dataclass(frozen=True)
class Column:
    """One column: its heading in the terminal (short) and in --md/--csv (full), and its cells."""

    short: str
    full: str
    cells: list[str]
    full_cells: list[str] | None = None  # for --md/--csv where they differ (code/data)
    kind: str = "metric"  # "name", "metric", "param" or "deps"


def show_value(value: Any) -> str:
    """A param's or other metric's value, rounded sensibly (4 significant digits)."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _short_names(keys: list[str]) -> dict[str, str]:
    """Each dotted key's shortest tail that no other key ends with (``train.dropout``: dropout)."""
    parts = {key: key.replace(":", ".").split(".") for key in keys}
    short = {}
    for key, words in parts.items():
        for size in range(1, len(words) + 1):
            tail = words[-size:]
            if not any(other != key and o[-size:] == tail for other, o in parts.items()):
                short[key] = ".".join(tail)
                break
        else:
            short[key] = key
    return short


def _headline_value(row: Row, headline: Headline) -> str:
    return headline.show(headline.read(row.metrics.get(headline.path.as_posix())))


def _deps_cells(row: Row) -> tuple[str, str]:
    """The code/data cell: short (file names, or a count where they are long) and full (paths)."""
    changed = row.changed_deps()
    if changed is None:
        return "", ""
    if not changed:
        return SAME, SAME
    names = ", ".join(Path(p).name for p in changed)
    short = names if len(names) <= 20 else f"{len(changed)} changed"
    return short, ", ".join(changed)


def columns(
    rows: list[Row], params: list[str] = (), all_metrics: bool = False
) -> tuple[list[Column], list[Column], Column]:
    """The metric columns, the param columns (``params`` first, then every param whose value
    differs between ``rows``) and the code/data column."""
    metric_columns = [
        Column(h.short, h.label, [_headline_value(r, h) for r in rows])
        for h in HEADLINES
        if h.column or all_metrics
    ]
    if all_metrics:
        shown = {(h.path.as_posix(), h.keys) for h in HEADLINES}
        others: dict[str, tuple[str, str]] = {}
        for row in rows:
            for file, document in row.metrics.items():
                for key in flatten(document or {}):
                    if (file, tuple(key.split("."))) not in shown:
                        others.setdefault(f"{Path(file).stem}.{key}", (file, key))
        short = _short_names(list(others))
        for name, (file, key) in others.items():
            cells = [show_value(flatten(r.metrics.get(file) or {}).get(key)) for r in rows]
            metric_columns.append(Column(short[name], f"{file}:{key}", cells))
    keys = list(dict.fromkeys(params))
    for row in rows:
        for key in row.params:
            if key not in keys and len({show_value(r.params.get(key)) for r in rows}) > 1:
                keys.append(key)
    short = _short_names(keys)
    param_columns = [
        Column(short[k], k, [show_value(r.params.get(k)) for r in rows], kind="param") for k in keys
    ]
    deps = [_deps_cells(r) for r in rows]
    deps_column = Column(
        "code/data", "code/data", [s for s, _ in deps], [f for _, f in deps], kind="deps"
    )
    return metric_columns, param_columns, deps_column


def _heading(column: Column) -> tuple[str, str]:
    """The column's short heading on two lines, split at the space that makes it narrowest
    (``test acc``: test / acc); a heading without a space is on the second line."""
    words = column.short.split(" ")
    splits = [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]
    return min(splits, key=lambda s: max(map(len, s)), default=("", column.short))


def _width(column: Column) -> int:
    return max(len(cell) for cell in [*_heading(column), *column.cells])


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def table(rows: list[Row], width: int, params: list[str] = (), all_metrics: bool = False) -> str:
    """The terminal table: every line at most ``width`` characters; param columns (then other
    metric columns) that do not fit are left out from the right, said in a line below."""
    metrics, param_columns, deps = columns(rows, params, all_metrics)
    names = Column(
        "experiment", "experiment", [_cut(r.label(), NAME_WIDTH) for r in rows], kind="name"
    )
    param_columns = [
        Column(c.short, c.full, [_cut(v, VALUE_WIDTH) for v in c.cells], kind=c.kind)
        for c in param_columns
    ]
    kept = [names, *metrics, *param_columns, deps]

    def total(cols: list[Column]) -> int:
        return sum(_width(c) for c in cols) + len(GAP) * (len(cols) - 1)

    dropped: list[Column] = []
    while total(kept) > width and len(kept) > 1:
        droppable = [c for c in kept if c.kind == "param"] or [
            c for c in kept if c.kind in ("metric", "deps")
        ]
        if not droppable:
            break
        victim = droppable[-1]
        kept.remove(victim)
        dropped.append(victim)
    widths = [_width(c) for c in kept]
    headings = [_heading(c) for c in kept]
    body = [[h[0] for h in headings], [h[1] for h in headings]]
    body += [[c.cells[index] for c in kept] for index in range(len(rows))]
    lines = []
    for cells in body:
        line = GAP.join(
            cell.ljust(w) if c.kind in ("name", "deps") else cell.rjust(w)
            for cell, w, c in zip(cells, widths, kept)
        ).rstrip()
        lines.append(_cut(line, width))
    if not lines[0]:
        del lines[0]
    if not any(r.metrics for r in rows):
        lines.append(_cut("(no metrics yet: run `dvc repro` or `dvc exp run`)", width))
    if dropped:
        lines += _left_out_note(list(reversed(dropped)), width)
    return "\n".join(lines)


def _left_out_note(dropped: list[Column], width: int) -> list[str]:
    """One line (the most it can say within ``width``) on the columns left out, and how to see
    them; wrapped only where even the shortest does not fit."""
    params = all(c.kind == "param" for c in dropped)
    what = f"{len(dropped)} {'param' if params else 'column'}{'s' if len(dropped) > 1 else ''}"
    names = ", ".join(c.full for c in dropped)
    every = "every column: kws experiments --md or dvc exp show --only-changed"
    see = "see --md or dvc exp show --only-changed"
    notes = [
        f"(+{what} left out to fit {width} characters: {names}; {every})",
        f"(+{what} left out: {names}; {every})",
        f"(+{what} left out: {names}; {see})",
        f"(+{what} left out; {see})",
        f"(+{what} left out; see --md)",
    ]
    for note in notes:
        if len(note) <= width:
            return [note]
    return textwrap.wrap(notes[-1], width, break_on_hyphens=False)


def _all_columns(rows: list[Row], params: list[str], all_metrics: bool) -> list[Column]:
    metrics, param_columns, deps = columns(rows, params, all_metrics)
    return [
        Column("experiment", "experiment", [r.label() for r in rows], kind="name"),
        Column("rev", "rev", [r.rev[:7] if r.kind != "workspace" else "" for r in rows]),
        *metrics,
        *param_columns,
        deps,
    ]


def markdown(rows: list[Row], params: list[str] = (), all_metrics: bool = False) -> str:
    """Every column, full headings and paths, as a Markdown table (no width limit)."""
    cols = _all_columns(rows, params, all_metrics)

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [line([c.full for c in cols]), "|" + "|".join("---" for _ in cols) + "|"]
    for index in range(len(rows)):
        out.append(line([(c.full_cells or c.cells)[index] for c in cols]))
    return "\n".join(out)


def csv_text(rows: list[Row], params: list[str] = (), all_metrics: bool = False) -> str:
    """Every column as CSV (no width limit)."""
    cols = _all_columns(rows, params, all_metrics)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.full for c in cols])
    for index in range(len(rows)):
        writer.writerow([(c.full_cells or c.cells)[index] for c in cols])
    return buffer.getvalue().rstrip("\n")


def find_dvc() -> str:
    """The dvc command: on PATH, else beside this Python (a virtual environment not activated)."""
    found = shutil.which("dvc")
    if found:
        return found
    beside = Path(sys.executable).parent / "dvc"
    if beside.is_file():
        return str(beside)
    raise ExperimentsError(
        "dvc: not found on PATH (activate the project's environment: . .venv/bin/activate)"
    )


def dvc_root(start: Path) -> Path:
    """The DVC repository that holds ``start`` (the nearest folder with a .dvc folder)."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".dvc").is_dir():
            return folder
    raise ExperimentsError(f"{start}: not a DVC repository (no .dvc folder here or above)")


def exp_show(root: Path, options: list[str]) -> Any:
    """``dvc exp show --json OPTIONS`` run in ``root``, parsed."""
    command = [find_dvc(), "exp", "show", "--json", *options]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, encoding="utf-8")
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {result.returncode}"
        raise ExperimentsError(f"dvc exp show failed in {root}: {last}")
    try:
        return json.loads(result.stdout or "[]")
    except json.JSONDecodeError as exc:
        raise ExperimentsError(f"dvc exp show --json: not JSON ({exc})") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-A", "--all-commits", action="store_true", help="every commit's experiments (dvc's -A)"
    )
    parser.add_argument(
        "-a", "--all-branches", action="store_true", help="every branch's experiments (dvc's -a)"
    )
    parser.add_argument(
        "--rev",
        action="append",
        default=[],
        metavar="REV",
        help="the experiments of this commit (repeatable; dvc's --rev; default: HEAD)",
    )
    parser.add_argument(
        "-n", "--num", type=int, metavar="N", help="N commits back from each --rev (dvc's -n)"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY",
        help="a param column even where its value is the same in every row (repeatable; "
        "a dotted key of params.yaml, e.g. train.dropout)",
    )
    parser.add_argument(
        "--all-metrics",
        action="store_true",
        help="also every other metric of the metrics files",
    )
    parser.add_argument(
        "--width",
        type=int,
        metavar="N",
        help="fit N characters (default: the terminal's width)",
    )
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--md", action="store_true", help="every column as Markdown, no width limit")
    form.add_argument("--csv", action="store_true", help="every column as CSV, no width limit")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__name__, argv)
    if args.width is not None and args.width < 20:
        raise ExperimentsError(f"--width {args.width}: give at least 20 characters")
    options = []
    if args.all_commits:
        options.append("--all-commits")
    if args.all_branches:
        options.append("--all-branches")
    for rev in args.rev:
        options += ["--rev", rev]
    if args.num is not None:
        options += ["--num", str(args.num)]
    rows = rows_from_json(exp_show(dvc_root(Path.cwd()), options))
    unknown = [key for key in args.param if not any(key in row.params for row in rows)]
    if unknown and any(row.params for row in rows):
        raise ExperimentsError(
            f"--param {unknown[0]}: not a param of any row shown (a dotted key of params.yaml, "
            "e.g. train.dropout)"
        )
    if args.md:
        print(markdown(rows, args.param, args.all_metrics))
    elif args.csv:
        print(csv_text(rows, args.param, args.all_metrics))
    else:
        width = args.width or shutil.get_terminal_size().columns
        print(table(rows, width, args.param, args.all_metrics))
    return 0


if __name__ == "__main__":
    run_main(main)
