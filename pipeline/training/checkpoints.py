"""Checkpoints that make a killed training resume to exactly the same weights.

A checkpoint holds the model and optimizer variables, the step, the sampling RNG state and the
curve so far, stamped with a hash of everything the run depends on (train settings and the
features' meta.json, where featurize records the sha256 of the data it wrote): a changed
configuration or new features never resume a stale run. A damaged checkpoint (truncated by a
full disk, emptied by a crash of the file system) is renamed ``<name>.damaged``, kept for a
person to look at, and training resumes from the newest good one before it, or from scratch.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core import fs
from pipeline.core.errors import first_line

log = logging.getLogger(__name__)

KEEP_CHECKPOINTS = 3
_CKPT_RE = re.compile(r"^ckpt-(\d+)\.npz$")
DAMAGED_SUFFIX = ".damaged"
# What numpy and zipfile raise on a truncated, empty or overwritten .npz.
_DAMAGE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)


def config_hash(settings: dict[str, Any], features_meta: dict[str, Any]) -> str:
    """Hash of everything a checkpoint depends on: train settings and the features' meta.json,
    which holds the sha256 of every split's x and y data as featurize wrote them (so the 2.3 GB
    training array of the full data set is not read again just to name the run)."""
    blob = json.dumps({"train": settings, "features": features_meta}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _checkpoints(directory: Path) -> list[tuple[int, Path]]:
    found = []
    if directory.is_dir():
        for path in directory.iterdir():
            match = _CKPT_RE.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return sorted(found)


def save_checkpoint(
    directory: Path,
    step: int,
    model,
    optimizer,
    state: dict[str, Any],
    keep: int = KEEP_CHECKPOINTS,
) -> Path:
    """Write model + optimizer variables and ``state`` (JSON) atomically; keep the last ``keep``."""
    arrays = {f"model_{i}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    arrays.update(
        {f"optimizer_{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)}
    )
    arrays["state"] = np.array(json.dumps(state, sort_keys=True))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = directory / f"ckpt-{step:08d}.npz"
    fs.atomic_write_bytes(path, buffer.getvalue())
    for _, old in _checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def restore_checkpoint(
    directory: Path, expected_hash: str, model, optimizer
) -> dict[str, Any] | None:
    """Load the newest readable checkpoint made with ``expected_hash``; delete stale ones.

    Damaged checkpoints are set aside (``<name>.damaged``) and the next older one is tried, so a
    damaged file never blocks the stage. Returns the state dict, or None (and a folder emptied but
    for the damaged files) when there is nothing to resume.
    """
    damaged = []
    for step, path in reversed(_checkpoints(directory)):
        try:
            with np.load(path) as data:
                state = json.loads(str(data["state"]))
                if state.get("config_hash") != expected_hash:
                    log.info(
                        "checkpoint %s was made with another configuration; starting afresh", path
                    )
                    break
                model_values = [data[f"model_{i}"] for i in range(len(model.variables))]
                optimizer_values = [data[f"optimizer_{i}"] for i in range(len(optimizer.variables))]
        except _DAMAGE as exc:
            set_aside = path.with_name(path.name + DAMAGED_SUFFIX)
            path.replace(set_aside)
            damaged.append(path)
            log.warning(
                "checkpoint %s is damaged (%s: %s); set aside as %s, trying an older one",
                path,
                type(exc).__name__,
                first_line(exc),
                set_aside.name,
            )
            continue
        shapes_ok = all(tuple(v.shape) == a.shape for v, a in zip(model.variables, model_values))
        shapes_ok &= all(
            tuple(v.shape) == a.shape for v, a in zip(optimizer.variables, optimizer_values)
        )
        if not shapes_ok:
            log.warning("checkpoint %s does not fit the model; starting afresh", path)
            break
        for variable, value in zip(model.variables, model_values):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, optimizer_values):
            variable.assign(value)
        log.info("resuming from %s (step %d)", path, step)
        return state
    if damaged:
        log.warning("no good checkpoint left in %s; training starts from scratch", directory)
    _clear(directory)
    return None


def _entries(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.is_dir() else []


def _clear(directory: Path) -> None:
    """Empty ``directory`` for a fresh run, but keep the checkpoints set aside as damaged."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in _entries(directory):
        if not entry.name.endswith(DAMAGED_SUFFIX):
            fs.remove(entry)
