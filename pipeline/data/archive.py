"""Extract archives safely.

Archives come from the network, so extraction refuses absolute paths, ``..`` components, links
that point outside the extraction folder and device files/FIFOs, naming the offending member; the
caller extracts into a temporary folder, so a refused archive leaves nothing behind.
"""
from __future__ import annotations

import gzip
import lzma
import os
import posixpath
import re
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path

from pipeline.core.errors import StageError


def _refuse(archive, member: str, problem: str) -> StageError:
    return StageError(f"{archive}: refusing the archive: member {member!r} {problem}")


def _safe_name(archive, name: str) -> str:
    """The member's relative path, or StageError for absolute paths and ``..`` components."""
    normal = name.replace("\\", "/")
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
        raise _refuse(archive, name, "has an absolute path")
    if ".." in normal.split("/"):
        raise _refuse(archive, name, "has a '..' component (it would land outside the folder)")
    return normal


def _check_link(archive, name: str, target: str, relative_to_member: bool) -> None:
    """A symlink resolves from the member's folder, a hard link from the archive root."""
    normal = target.replace("\\", "/")
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
        raise _refuse(archive, name, f"is a link to the absolute path {target!r}")
    base = posixpath.dirname(name) if relative_to_member else ""
    resolved = posixpath.normpath(posixpath.join(base, normal))
    if resolved == ".." or resolved.startswith("../"):
        raise _refuse(archive, name, f"is a link pointing outside the archive ({target!r})")


def _extract_tar(archive, dest: Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            name = _safe_name(archive, member.name)
            if member.ischr() or member.isblk():
                raise _refuse(archive, member.name, "is a device file")
            if member.isfifo():
                raise _refuse(archive, member.name, "is a FIFO")
            if member.issym():
                _check_link(archive, name, member.linkname, relative_to_member=True)
            elif member.islnk():
                _check_link(archive, name, member.linkname, relative_to_member=False)
            elif not (member.isfile() or member.isdir()):
                raise _refuse(archive, member.name, "has an unsupported type")
            try:
                tar.extract(member, dest, set_attrs=False, filter="data")
            except tarfile.FilterError as exc:  # second line of defence: Python's own checks
                raise _refuse(archive, member.name, f"is unsafe ({exc})") from None


def _extract_zip(archive, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = _safe_name(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                raise _refuse(archive, info.filename, "is a device file")
            if stat.S_ISFIFO(mode):
                raise _refuse(archive, info.filename, "is a FIFO")
            if stat.S_ISLNK(mode):
                target = zf.read(info).decode("utf-8", "replace")
                _check_link(archive, name, target, relative_to_member=True)
                link = dest / name
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, link)
                continue
            zf.extract(info, dest)


def extract(archive, dest) -> None:
    """Extract a tar (any compression) or zip archive into ``dest``, refusing unsafe members.

    Members are checked one by one as they are extracted; the caller passes a temporary folder
    and deletes it on error, so a refused archive leaves nothing.
    """
    archive = Path(archive)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, dest)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, dest)
        else:
            raise StageError(f"{archive}: not a .tar.gz, .tgz, .tar or .zip archive")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError) as exc:
        raise StageError(f"{archive}: damaged or truncated archive ({exc})") from None
