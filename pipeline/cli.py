"""Entry-point plumbing for the stages and tools, and the ``kws`` command.

Stages are run by dvc.yaml as ``python -m pipeline.stages.<stage>`` (through :func:`run_stage`,
which first validates the whole params file); tools as ``python -m pipeline.tools.<tool>`` or
``kws <tool>``. Expected failures (bad parameters, bad input files, a broken download) print one
clear line and exit 1 instead of a traceback.
"""

from __future__ import annotations

import argparse
import contextvars
import difflib
import functools
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from types import ModuleType

from pipeline.core import paths
from pipeline.core.errors import EXPECTED_ERRORS
from pipeline.core.fs import remove_dead_writers_temporaries
from pipeline.core.tf import filter_native_stderr, quiet_tensorflow

log = logging.getLogger(__name__)

# ``kws <name>`` runs the tool module's main (python -m pipeline.tools.<module> does the same).
# A tool module has a one-line ``DESCRIPTION``, ``add_arguments(parser)`` and ``main(argv)`` that
# parses with :func:`parse_args`; registering it here is all that ``kws`` needs.
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
    "experiments": "experiments",
    "extract-clip": "extract_clip",
    "quantize-embedding": "quantize_embedding",
    "check": "check",
    "web": "web",
    "report": "report",
}


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run ``main`` and turn expected errors into a one-line message and exit status 1.

    TensorFlow's native log lines go to models/logs/tf.log, not the terminal
    (:func:`pipeline.core.tf.filter_native_stderr`).

    A stage first removes the temporaries that killed stages left in the output folders.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    quiet_tensorflow()
    filter_native_stderr()
    name = _module_name(main)
    if name.startswith("pipeline.stages."):
        remove_killed_stages_temporaries()
    try:
        status = main(argv)
        sys.stdout.flush()
    except EXPECTED_ERRORS as exc:
        print(f"error [{name}]: {exc}", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:
        # The reader left (``kws report | head``): stop quietly with the status a shell gives a
        # command that SIGPIPE ended, and keep Python's exit flush from raising again.
        stdout_to_devnull()
        sys.exit(128 + signal.SIGPIPE)
    sys.exit(status or 0)


def stdout_to_devnull() -> None:
    """Point standard output at /dev/null once its reader has gone (a BrokenPipeError), so
    that nothing written later, Python's exit flush included, fails again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _module_name(main: Callable) -> str:
    """The module that defines ``main`` (see :func:`module_name`), for messages."""
    module = sys.modules.get(getattr(main, "__module__", ""))
    return module_name(module) if module is not None else "pipeline"


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


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that keeps the docstring's layout and shows every option's default (unless the help
    names the default itself, or there is none: a flag, or an option that is off when absent)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or default in (None, False, argparse.SUPPRESS)
            or default == []
            or not (action.option_strings or action.nargs in ("?", "*"))
        ):
            return text
        return f"{text} (default: %(default)s)"


# The prog of the parser being built: ``kws <tool>`` while `kws` runs a tool.
_PROG: contextvars.ContextVar[str | None] = contextvars.ContextVar("kws_prog", default=None)


def module_name(module: ModuleType) -> str:
    """``pipeline.tools.x`` for a module, also when it runs as ``python -m`` (``__main__``)."""
    spec = getattr(module, "__spec__", None)
    return spec.name if spec is not None else module.__name__


def _epilog(module: ModuleType) -> str | None:
    """The module docstring after its first paragraph (examples, details), for --help."""
    paragraphs = (module.__doc__ or "").strip().split("\n\n", 1)
    return paragraphs[1].rstrip() if len(paragraphs) > 1 else None


def build_parser(module: ModuleType, prog: str | None = None, **kwargs) -> argparse.ArgumentParser:
    """The argument parser of a tool or stage module (``DESCRIPTION`` and ``add_arguments``)."""
    parser = argparse.ArgumentParser(
        prog=prog or _PROG.get() or f"python -m {module_name(module)}",
        description=module.DESCRIPTION,
        epilog=_epilog(module),
        formatter_class=HelpFormatter,
        **kwargs,
    )
    module.add_arguments(parser)
    return parser


def parse_args(name: str, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` with the parser of the module called ``name`` (pass ``__name__``)."""
    return build_parser(sys.modules[name]).parse_args(argv)


def tool_module(tool: str) -> ModuleType:
    return importlib.import_module(f"pipeline.tools.{TOOLS[tool]}")


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("kws-pipeline")
    except PackageNotFoundError:
        return "unknown (not installed)"


def kws_parser() -> argparse.ArgumentParser:
    """``kws``'s parser: one subcommand per tool, each with the tool's own options."""
    parser = argparse.ArgumentParser(
        prog="kws",
        description="The keyword-spotting pipeline's tools (the stages run with `dvc repro`).",
        epilog="kws <tool> --help shows a tool's options.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kws {version()}")
    tools = parser.add_subparsers(dest="tool", metavar="<tool>", title="tools")
    for name in TOOLS:
        module = tool_module(name)
        sub = tools.add_parser(
            name,
            help=module.DESCRIPTION,
            description=module.DESCRIPTION,
            epilog=_epilog(module),
            formatter_class=HelpFormatter,
        )
        module.add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    """``kws <tool> [args]``: the tools under one command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOLS:
        _PROG.set(f"kws {argv[0]}")
        run_main(tool_module(argv[0]).main, argv[1:])
    if argv and not argv[0].startswith("-"):
        close = difflib.get_close_matches(argv[0], TOOLS, n=1)
        hint = f" \u2014 did you mean '{close[0]}'?" if close else " (kws --help lists the tools)"
        print(f"kws: unknown command '{argv[0]}'{hint}", file=sys.stderr)
        sys.exit(2)
    parser = kws_parser()
    if not argv:
        parser.print_help(sys.stderr)
        sys.exit(2)
    parser.parse_args(argv)  # -h, --version, or an unknown option (exit 2)
