"""Every error a person can act on, in one module that every layer may import.

A stage or tool that raises one of :data:`EXPECTED_ERRORS` prints one line naming the file or
parameter and the problem, and exits with status 1 (``pipeline.cli.run_main``); anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations


class KwsError(Exception):
    """Base of the expected failures: the message says what is wrong and how to fix it."""


class StageError(KwsError, RuntimeError):
    """An expected failure of a stage or tool (bad input data, a missing artifact, ...)."""


class ParamError(KwsError, ValueError):
    """A parameter is unknown, missing, of the wrong type or out of range."""


class WavError(KwsError, ValueError):
    """A WAV file cannot be used; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


EXPECTED_ERRORS = (KwsError, FileNotFoundError)


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of a library's exception message (TensorFlow's run to pages), for wrapping
    it in a one-line StageError."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:limit]
