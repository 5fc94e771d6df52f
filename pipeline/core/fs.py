"""Atomic file and folder output.

A stage that fails half way must leave nothing that DVC could cache as a good output, so every
output is written under a temporary name beside its target and renamed into place at the end.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from pipeline.core.errors import StageError


def sha256_file(path, block_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks (archives can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(block_size), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj: Any) -> None:
    """Write JSON with sorted keys and a trailing newline, so identical data gives identical bytes."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def remove(path) -> None:
    """Delete a file or folder if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_dir(path) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces ``path`` only if the block succeeds.

    On any exception the temporary folder is deleted and ``path`` is removed as well, so a failed
    stage never leaves a stale or partial output in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
    except BaseException:
        remove(tmp)
        remove(path)
        raise
    remove(path)
    os.replace(tmp, path)


def read_json(path) -> Any:
    """Parse a JSON file; a StageError naming the file if it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (ValueError, OSError) as exc:  # UnicodeDecodeError is a ValueError
        raise StageError(f"{path}: not valid JSON ({exc})") from None
