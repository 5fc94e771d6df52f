"""Shared entry-point plumbing for the stages and tools.

Stages are run by dvc.yaml as ``python -m pipeline.<stage>``. Expected failures (bad parameters,
bad input files, a broken download) print one clear line and exit 1 instead of a traceback.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Callable

from pipeline.audio import WavError
from pipeline.config import ParamError


class StageError(RuntimeError):
    """An expected failure with a message a person can act on."""


EXPECTED_ERRORS = (ParamError, WavError, StageError, FileNotFoundError)


def quiet_tensorflow() -> None:
    """Hide TensorFlow's start-up chatter; keep warnings and errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
