"""Entry-point plumbing for the stages and tools, and the ``kws`` command.

Stages are run by dvc.yaml as ``python -m pipeline.stages.<stage>`` (through :func:`run_stage`,
which first validates the whole params file); tools as ``python -m pipeline.tools.<tool>`` or
``kws <tool>``. Expected failures (bad parameters, bad input files, a broken download) print one
clear line and exit 1 instead of a traceback.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import sys
from collections.abc import Callable

from pipeline.core import paths
from pipeline.core.errors import EXPECTED_ERRORS
from pipeline.core.fs import remove_dead_writers_temporaries
from pipeline.core.tf import quiet_tensorflow

log = logging.getLogger(__name__)

# ``kws <name>`` runs the tool module's main (python -m pipeline.tools.<module> does the same).
TOOLS = {
    "label-wav": "label_wav",
    "evaluate-dir": "evaluate_dir",
    "stream-eval": "stream_eval",
    "detect": "detect",
    "listen": "listen",
    "wav-to-spectrogram": "wav_to_spectrogram",
    "render-plots": "render_plots",
    "preset": "preset",
    "stage-deps": "stage_deps",
    "summary": "summary",
    "compare-metrics": "compare_metrics",
    "extract-clip": "extract_clip",
    "quantize-embedding": "quantize_embedding",
    "check": "check",
    "web": "web",
}


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run ``main`` and turn expected errors into a one-line message and exit status 1.

    A stage first removes the temporaries that killed stages left in the output folders.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_tensorflow()
    name = _module_name(main)
    if name.startswith("pipeline.stages."):
        remove_killed_stages_temporaries()
    try:
        status = main(argv)
    except EXPECTED_ERRORS as exc:
        print(f"error [{name}]: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(status or 0)


def _module_name(main: Callable) -> str:
    name = getattr(main, "__module__", "pipeline")
    if name == "__main__":  # run as `python -m pipeline.x`: name the module, not __main__
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        name = spec.name if spec else name
    return name


def remove_killed_stages_temporaries() -> None:
    """Remove the temporaries of dead writers in the output folders (pipeline/core/fs.py).

    A killed stage leaves its temporary (gigabytes at full size), and when DVC then restores
    that stage from its run cache, the stage never runs to remove it: any stage's start does.
    """
    for folder in paths.OUTPUT_FOLDERS:
        for path in remove_dead_writers_temporaries(folder):
            log.info("removed %s, left by a stage that was killed", path)


def run_stage(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None):
    """``run_main`` for a DVC stage: the whole params file (the stage's ``--params``, default
    params.yaml) is validated before the stage does anything, so that a bad key of any section,
    a late stage's included, stops the first stage that runs (``pipeline.sections.validate_file``;
    not a code dep of the stages: it can stop one, never change what it writes)."""

    @functools.wraps(main)
    def checked(argv: list[str] | None) -> int | None:
        args = list(sys.argv[1:] if argv is None else argv)
        if not {"-h", "--help"} & set(args):
            peek = argparse.ArgumentParser(add_help=False)
            peek.add_argument("--params", default=str(paths.PARAMS))
            from pipeline.sections import validate_file

            validate_file(peek.parse_known_args(args)[0].params)
        return main(argv)

    run_main(checked, argv)


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
