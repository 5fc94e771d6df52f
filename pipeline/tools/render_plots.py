"""Render DVC plots to PNG files and one self-contained HTML page, with no internet.

`dvc plots show` / `dvc plots diff` write HTML that loads Vega from a CDN, which fails offline and
in CI artifacts. This tool asks DVC for the filled-in Vega-Lite specs (`--json`) and renders them
locally with vl-convert: one PNG per plot, and `index.html` with the plots inlined as SVG (image
plots such as the confusion-matrix PNG inlined as data URIs).

    python -m pipeline.tools.render_plots                 # workspace against HEAD
    python -m pipeline.tools.render_plots main HEAD       # two revisions
    python -m pipeline.tools.render_plots --show          # workspace only (dvc plots show)
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import re
import subprocess
from pathlib import Path

from pipeline.cli import parse_args, run_main
from pipeline.core.errors import StageError
from pipeline.core.fs import atomic_dir

DESCRIPTION = "Render the DVC plots to PNG files and one HTML page, offline."


def collect_plots(revisions: list[str], show: bool, cwd: Path | None = None) -> dict:
    """Ask DVC for every plot's Vega-Lite spec (data inlined) as JSON."""
    command = (
        ["dvc", "plots", "show", "--json"]
        if show
        else ["dvc", "plots", "diff", *revisions, "--json"]
    )
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, encoding="utf-8")
    except FileNotFoundError:
        raise StageError("dvc is not on PATH; activate the project's virtualenv (.venv)") from None
    if result.returncode != 0:
        raise StageError(f"`{' '.join(command)}` failed: {result.stderr.strip()[-500:]}")
    payload = json.loads(result.stdout or "{}")
    errors = payload.get("errors")
    if errors and not payload.get("data"):
        raise StageError(f"dvc reported plot errors: {json.dumps(errors)[:500]}")
    return payload.get("data", {})


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def render(plots: dict, out_dir: Path, root: Path, scale: float = 1.5) -> list[Path]:
    """Write ``<plot>.png`` files and ``index.html`` into ``out_dir``; return the files written.

    ``out_dir`` is replaced as a whole, so it must be new, empty or an earlier render (it has an
    index.html): a mistyped ``--out`` never deletes someone's folder.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not (
        out_dir.is_dir() and ((out_dir / "index.html").is_file() or not any(out_dir.iterdir()))
    ):
        raise StageError(
            f"{out_dir}: exists and is not an earlier render (no index.html); "
            "it would be replaced: choose another --out"
        )
    import vl_convert as vlc

    sections = []
    with atomic_dir(out_dir) as tmp:
        for name, entries in sorted(plots.items()):
            for i, entry in enumerate(entries):
                revisions = ", ".join(entry.get("revisions", []))
                title = f"{html.escape(name)} <small>({html.escape(revisions)})</small>"
                stem = _slug(name) + (f"-{i}" if len(entries) > 1 else "")
                if entry.get("type") == "vega":
                    spec = entry["content"]
                    (tmp / f"{stem}.png").write_bytes(vlc.vegalite_to_png(spec, scale=scale))
                    svg = vlc.vegalite_to_svg(spec)
                    sections.append(f"<section><h2>{title}</h2>{svg}</section>")
                elif entry.get("type") == "image":
                    source = root / entry.get("url", name)
                    if not source.is_file():
                        continue
                    data = base64.b64encode(source.read_bytes()).decode()
                    (tmp / f"{stem}-{_slug(revisions)}.png").write_bytes(source.read_bytes())
                    sections.append(
                        f'<section><h2>{title}</h2><img alt="{html.escape(name)}" '
                        f'src="data:image/png;base64,{data}"></section>'
                    )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>DVC plots</title>"
            "<style>body{font-family:sans-serif;margin:2em}section{margin-bottom:3em}"
            "img{max-width:100%}</style></head><body><h1>DVC plots</h1>"
            + "".join(sections)
            + "</body></html>\n"
        )
        (tmp / "index.html").write_text(page, encoding="utf-8")
        written = sorted(p.name for p in tmp.iterdir())
    return [out_dir / name for name in written]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "revisions", nargs="*", help="revisions to compare (default: workspace vs HEAD)"
    )
    parser.add_argument("--show", action="store_true", help="plots of the workspace only")
    parser.add_argument("--out", default="plots", help="output folder, replaced as a whole")
    parser.add_argument(
        "--scale", type=float, default=1.5, help="PNG scale factor (1: the specs' own size)"
    )


def main(argv=None):
    args = parse_args(__name__, argv)
    plots = collect_plots(args.revisions, args.show)
    if not plots:
        raise StageError("no plots found: run the pipeline first (dvc repro)")
    files = render(plots, Path(args.out), Path.cwd(), args.scale)
    for path in files:
        print(path)


if __name__ == "__main__":
    run_main(main)
