"""Atomic file and folder output.

A stage that fails half way must leave nothing that DVC could cache as a good output, so every
output is written under a temporary name beside its target (``.<name>.<pid>.<random>.tmp``) and
renamed into place at the end. A process killed outright (SIGKILL, power loss) cannot clean up:
the next write of the same target removes the temporaries of that target whose writer is gone,
and every stage's start removes those of the output folders (DVC may restore the killed stage
from its run cache, and then no write of that target comes).
Temporaries are created like ordinary files (mode 0666 / 0777 less the umask), so outputs suit a
shared DVC cache or a team folder.

A write that fails for want of room (a full disk, a quota, a file size limit, a read-only mount)
is a one-line :class:`StageError` naming the output, not the temporary, which is removed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.core.errors import StageError

# errno values of a write that failed for want of room or of a writable disk.
WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def write_error(path, exc: OSError) -> StageError:
    """The one-line error for a failed write of ``path`` (a full disk, a lost mount, ...)."""
    return StageError(f"{path}: cannot write ({exc.strerror or exc})")


def sha256_file(path, block_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks (archives can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(block_size), b""):
            digest.update(block)
    return digest.hexdigest()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be writing the same target
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _temporary_pattern(name: str = ".+") -> re.Pattern:
    """``.<name>.<pid>.<random>.tmp``, or ``.<name>.<random>.tmp`` as mkstemp/mkdtemp made them."""
    return re.compile(rf"\.{name}\.(?:(\d+)\.)?[a-z0-9_]{{8}}\.tmp")


def stale_temporaries(path) -> list[Path]:
    """The temporaries of ``path`` left by writers that no longer run (killed, crashed).

    Only names this module makes for exactly this target count, whose pid is not a running
    process (names without a pid come from older versions: stale). Temporaries of other targets
    (``.raw.json.*.tmp`` for ``raw.json`` beside ``raw``) never match. A dead writer's pid taken
    by a new process keeps its temporary until that process ends: never delete a live write.
    """
    path = Path(path)
    pattern = _temporary_pattern(re.escape(path.name))
    stale = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(path.parent):
            match = pattern.fullmatch(entry.name)
            if match and not (match.group(1) and _pid_alive(int(match.group(1)))):
                stale.append(path.parent / entry.name)
    return sorted(stale)


def remove_stale_temporaries(path) -> list[Path]:
    """Delete :func:`stale_temporaries` of ``path``; return what was removed."""
    stale = stale_temporaries(path)
    for entry in stale:
        remove(entry)
    return stale


def remove_dead_writers_temporaries(folder) -> list[Path]:
    """Delete every temporary in ``folder`` whose writer, the pid in its name, no longer runs.

    Unlike :func:`stale_temporaries` this takes the temporaries of any target, so only names with
    a pid count: a name this module makes whose writer is known to be gone.
    """
    pattern = re.compile(r"\..+\.(\d+)\.[a-z0-9_]{8}\.tmp")
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
            match = pattern.fullmatch(entry.name)
            if match and not _pid_alive(int(match.group(1))):
                remove(Path(folder) / entry.name)
                removed.append(Path(folder) / entry.name)
    return removed


def name_text(name) -> str:
    """A file name (or relative path) as text, its bytes read as UTF-8 whatever the locale.

    In an ASCII locale Python reads the name ``Zoë`` from the disk as ``Zo\\udcc3\\udcab`` (its
    bytes escaped); this gives ``Zoë`` there as in a UTF-8 locale, so that what a stage writes
    (index.csv, manifests) does not depend on the locale. UnicodeDecodeError if the bytes are not
    UTF-8.
    """
    return os.fsencode(name).decode("utf-8")


def check_output_file(path) -> Path:
    """A StageError naming ``path`` if no file can be written there (a folder, or under a file).

    Atomic writes check this themselves; tools call it first, so that a wrong ``--out`` fails
    before minutes of work rather than after.
    """
    path = Path(path)
    if path.is_dir():
        raise StageError(f"{path}: is a folder; give the path of a file to write")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise StageError(f"{path}: cannot write there, {parent} is not a folder")
            break
    return path


def _prepare(path, folder: bool) -> Path:
    """Check that ``path`` can be written; make its parent folder; remove its stale temporaries.

    Inside a temporary folder (the inner files of an ``atomic_dir``) nothing can be stale, and
    the scan is skipped: thousands of clips are written there.
    """
    path = check_output_file(path) if not folder else Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise StageError(f"{path}: cannot write there, {path.parent} is not a folder") from None
    except OSError as exc:
        raise StageError(
            f"{path}: cannot create its folder {path.parent} ({exc.strerror})"
        ) from None
    temporary = _temporary_pattern()
    if not any(temporary.fullmatch(part) for part in path.parent.parts):
        remove_stale_temporaries(path)
    return path


def _create_temporary(path: Path, folder: bool) -> Path:
    """Create ``.<name>.<pid>.<random>.tmp`` beside ``path``, as ``open``/``mkdir`` would.

    Not ``tempfile.mkstemp``/``mkdtemp``: those ignore the umask (0600 / 0700), which breaks a
    shared DVC cache or a team folder.
    """
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{os.getpid()}.{_random_part()}.tmp"
        try:
            if folder:
                os.mkdir(tmp, 0o777)
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise StageError(f"{path}: cannot write in {path.parent} ({exc.strerror})") from None
    raise StageError(f"{path}: cannot create a temporary name in {path.parent}")


def _random_part() -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789_") for _ in range(8))


def atomic_write_bytes(path, data: bytes) -> None:
    path = _prepare(path, folder=False)
    tmp = _create_temporary(path, folder=False)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):  # a full disk, a lost mount: name the file, no traceback
            raise write_error(path, exc) from None
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj: Any) -> None:
    """Write JSON with sorted keys and a trailing newline: identical data gives identical bytes."""
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
    stage never leaves a stale or partial output in place. A failed write inside (see
    :data:`WRITE_FAILURES`) becomes a StageError, and a StageError naming a file inside the
    temporary folder names it at its place under ``path``: the temporary is gone.
    """
    path = _prepare(path, folder=True)
    tmp = _create_temporary(path, folder=True)
    try:
        yield tmp
    except BaseException as exc:
        remove(tmp)
        remove(path)
        named = _naming_the_target(exc, tmp, path)
        if named is not None:
            raise named from None
        raise
    remove(path)
    os.replace(tmp, path)


def _naming_the_target(exc: BaseException, tmp: Path, path: Path) -> StageError | None:
    """``exc`` as a StageError that names ``path`` rather than ``tmp``; None to keep ``exc``."""
    if isinstance(exc, OSError) and exc.errno in WRITE_FAILURES:
        failed = path
        if exc.filename:
            with contextlib.suppress(ValueError):
                failed = path / Path(os.fsdecode(exc.filename)).relative_to(tmp)
        return write_error(failed, exc)
    if type(exc) is StageError and str(tmp) in str(exc):
        return StageError(str(exc).replace(str(tmp), str(path)))
    return None


def read_json(path) -> Any:
    """Parse a JSON file; a StageError naming the file if it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (ValueError, OSError) as exc:  # UnicodeDecodeError is a ValueError
        raise StageError(f"{path}: not valid JSON ({exc})") from None


def printable(path) -> str:
    """A path as text that can be written anywhere: bytes that are not UTF-8 as \\xNN escapes."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def not_a_regular_file(path) -> str:
    """Why ``path`` cannot be read as a file ('' when it can), without opening it.

    Opening a FIFO waits for a writer and a device such as ``/dev/zero`` never ends, so a tool
    that reads every file of a folder asks this first and skips what is not a regular file
    (links are followed: a link to a regular file is one).
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop"
        if exc.errno == errno.ENOENT and os.path.islink(path):
            return f"a link to {printable(os.readlink(path))}, which does not exist"
        return f"cannot read: {exc.strerror}"
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return ""


def relative_name_problem(name) -> str:
    """Why ``name``, read from a file, cannot name a path inside a folder ('' when it can).

    Names in data files (a store's ``index.csv``, an export's ``bundle.json``) are untrusted: an
    absolute name or one with a ``..`` part would reach outside the folder it is joined to.
    """
    if not isinstance(name, str) or not name:
        return f"{name!r} is not a file name"
    if "\0" in name:
        return f"{name!r} holds a NUL character"
    if name.startswith("/") or re.match(r"[A-Za-z]:[\\/]", name) or name.startswith("\\"):
        return f"{name!r} is an absolute path"
    if ".." in re.split(r"[\\/]", name):
        return f"{name!r} leaves its folder (a '..' part)"
    return ""


def join_under(folder, name, source) -> Path:
    """``folder / name`` for a ``name`` read from the file ``source``; a StageError naming
    ``source`` if the name would leave ``folder`` (see :func:`relative_name_problem`)."""
    problem = relative_name_problem(name)
    if problem:
        raise StageError(f"{printable(source)}: the name {problem}; it must stay inside {folder}")
    return Path(folder) / name
