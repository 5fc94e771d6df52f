"""Entry-point plumbing for the stages and tools, and the ``kws`` command.

Stages are run by dvc.yaml as ``python -m pipeline.stages.<stage>``; tools as
``python -m pipeline.tools.<tool>`` or ``kws <tool>``. Expected failures (bad parameters, bad
input files, a broken download) print one clear line and exit 1 instead of a traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable

from pipeline.core.errors import EXPECTED_ERRORS
from pipeline.core.tf import quiet_tensorflow

# ``kws <name>`` runs the tool module's main (python -m pipeline.tools.<module> does the same).
TOOLS = {
    "label-wav": "label_wav",
    "evaluate-dir": "evaluate_dir",
    "stream-eval": "stream_eval",
    "wav-to-spectrogram": "wav_to_spectrogram",
    "render-plots": "render_plots",
    "preset": "preset",
    "stage-deps": "stage_deps",
    "summary": "summary",
    "compare-metrics": "compare_metrics",
    "extract-clip": "extract_clip",
    "quantize-embedding": "quantize_embedding",
    "web": "web",
}


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run ``main`` and turn expected errors into a one-line message and exit status 1."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_tensorflow()
    try:
        status = main(argv)
    except EXPECTED_ERRORS as exc:
        name = getattr(main, "__module__", "pipeline")
        if name == "__main__":  # run as `python -m pipeline.x`: name the module, not __main__
            spec = getattr(sys.modules["__main__"], "__spec__", None)
            name = spec.name if spec else name
        print(f"error [{name}]: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(status or 0)


def main(argv: list[str] | None = None) -> None:
    """``kws <tool> [args]``: the tools under one command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in TOOLS:
        names = "\n".join(f"  kws {name}" for name in TOOLS)
        print(
            f"usage: kws <tool> [options]   (kws <tool> --help for its options)\n\ntools:\n{names}",
            file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout,
        )
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    module = importlib.import_module(f"pipeline.tools.{TOOLS[argv[0]]}")
    run_main(module.main, argv[1:])
