"""Extract archives safely: regular files and folders only, every byte verified, sizes bounded.

Archives come from the network, so extraction trusts nothing in them:

- Names: absolute paths, ``..`` components, duplicate names, a member below a file or a link
  member, device files and FIFOs are refused, naming the member.
- Links are never created on disk. A symbolic or hard link member is resolved as text against the
  archive's own member list (following other link members, at most :data:`MAX_LINK_HOPS` deep, the
  way the kernel would) and must end at a regular file member inside the archive; it is then
  written as a copy of that file. A link to a folder, to a missing member, outside the archive or
  in a loop is refused. Files are created with ``O_EXCL | O_NOFOLLOW`` in folders this module made,
  so nothing already on disk is ever followed.
- Integrity: a tar archive is read to its very end, so the gzip (bz2, xz) checksum and length
  are verified; a damaged member header, a missing end-of-archive marker or non-zero data after
  it is an error. A zip member's CRC is checked, and its members must tile the file from the first
  byte to the central directory, so a damaged directory cannot hide members.
- Size: a member larger than ``max_member_bytes``, or one that would take the extracted total
  beyond ``max_total_bytes``, is refused before a byte of it is written (and the count is enforced
  while writing, in case a header lies). More than ``max_members`` members (a zip of millions of
  empty files) is refused too: a zip before anything is written, a tar when the count is passed.

Any failure is a :class:`StageError` naming the archive and the problem; what was extracted into
a ``dest`` that did not exist before is removed again.
"""

from __future__ import annotations

import lzma
import os
import posixpath
import re
import shutil
import stat
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import StageError

MB = 1 << 20
CHUNK = 1 << 20
MAX_LINK_HOPS = 40  # Linux's limit on symbolic links followed in one path (ELOOP)
MAX_LINK_TARGET = 4096  # bytes; a zip link member's content is its target
BLOCK = tarfile.BLOCKSIZE
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip local file header, 30 bytes
_DAMAGED = (
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    UnicodeDecodeError,
    NotImplementedError,
    struct.error,
    ValueError,
    OverflowError,
)


@dataclass(frozen=True)
class Limits:
    """Extraction limits (``data.max_member_mb``, ``data.max_total_mb``, ``data.max_members``)."""

    max_member_bytes: int = 256 * MB
    max_total_bytes: int = 16384 * MB
    max_members: int = 1_000_000

    @classmethod
    def of(cls, data) -> Limits:
        """The limits a :class:`~pipeline.data.config.DataConfig` states."""
        return cls(data.max_member_mb * MB, data.max_total_mb * MB, data.max_members)


def _too_many(archive, limits: Limits, count: int | None = None) -> StageError:
    """``count``: the members a zip lists (a tar is refused on reaching the limit, uncounted)."""
    has = f"{count} members, more than" if count is not None else "more members than"
    return StageError(
        f"{archive}: refusing the archive: it has {has} the limit of {limits.max_members} "
        "(data.max_members)"
    )


class DamagedArchiveError(StageError):
    """The archive is damaged or truncated (as opposed to refused for what it holds)."""


def _refuse(archive, member: str, problem: str) -> StageError:
    return StageError(f"{archive}: refusing the archive: member {member!r} {problem}")


def _damaged(archive, problem: str) -> StageError:
    return DamagedArchiveError(
        f"{archive}: damaged or truncated archive ({' '.join(problem.split())})"
    )


def _safe_name(archive, name: str) -> str:
    """The member's normalised relative path, or StageError for absolute paths and ``..``."""
    normal = name.replace("\\", "/")
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
        raise _refuse(archive, name, "has an absolute path")
    if ".." in normal.split("/"):
        raise _refuse(archive, name, "has a '..' component (it would land outside the folder)")
    return posixpath.normpath(normal) if normal.strip("/") else "."


def _parents(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


class _Tree:
    """The archive's namespace as text: what each normalised name is, and where links lead."""

    def __init__(self, archive):
        self.archive = archive
        self.kinds: dict[str, str] = {}  # name -> "file" | "dir" | "link"
        self.links: dict[str, tuple[str, str, str]] = {}  # name -> (raw name, target, base folder)
        self.below: set[str] = set()  # names that some member lies below (folders)
        self.raw: dict[str, str] = {}

    def add(self, raw: str, name: str, kind: str) -> None:
        """Record a member; refuse duplicates and members below files or links."""
        if name == ".":
            if kind != "dir":
                raise _refuse(self.archive, raw, "has no name")
            return
        known = self.kinds.get(name)
        if known is not None and not (known == "dir" and kind == "dir"):
            raise _refuse(
                self.archive, raw, f"appears twice in the archive (also {self.raw[name]!r})"
            )
        if kind != "dir" and name in self.below:
            raise _refuse(self.archive, raw, f"is a {kind} but other members lie below it")
        for parent in _parents(name):
            parent_kind = self.kinds.get(parent)
            if parent_kind == "link":
                raise _refuse(
                    self.archive,
                    raw,
                    f"lies below the link member {self.raw[parent]!r} "
                    "(members below links are not extracted)",
                )
            if parent_kind == "file":
                raise _refuse(self.archive, raw, f"lies below the file member {self.raw[parent]!r}")
            self.below.add(parent)
        self.kinds[name] = kind
        self.raw.setdefault(name, raw)

    def add_link(self, raw: str, name: str, target: str, hard: bool) -> None:
        if not target:
            raise _refuse(self.archive, raw, "is a link without a target")
        normal = target.replace("\\", "/")
        if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
            raise _refuse(self.archive, raw, f"is a link to the absolute path {target!r}")
        self.add(raw, name, "link")
        base = "" if hard else posixpath.dirname(name)  # a hard link names a member from the root
        self.links[name] = (raw, normal, base)

    def resolve(self, name: str) -> str:
        """The regular file member that link ``name`` leads to, following links like the kernel."""
        raw, target, base = self.links[name]
        done = [part for part in base.split("/") if part]  # resolved folders, none of them links
        todo = [part for part in target.split("/")]
        hops = 0
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not done:
                    raise _refuse(
                        self.archive, raw, f"is a link pointing outside the archive ({target!r})"
                    )
                done.pop()
                continue
            here = "/".join(done + [part])
            kind = self.kinds.get(here)
            if kind == "link":
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise _refuse(
                        self.archive,
                        raw,
                        f"is a link that loops (more than {MAX_LINK_HOPS} links deep)",
                    )
                _, next_target, next_base = self.links[here]
                if next_target.startswith("/") or re.match(r"^[A-Za-z]:", next_target):
                    raise _refuse(
                        self.archive,
                        raw,
                        f"is a link leading to an absolute path ({next_target!r})",
                    )
                done = [p for p in next_base.split("/") if p]
                todo = next_target.split("/") + todo
                continue
            if any(p not in ("", ".") for p in todo):  # ``here`` must be a folder
                if kind == "file":
                    raise _refuse(
                        self.archive,
                        raw,
                        f"is a link through the file {self.raw[here]!r} ({target!r})",
                    )
                if kind is None and here not in self.below:
                    raise _refuse(
                        self.archive,
                        raw,
                        f"is a link through {here!r}, which is not in the archive ({target!r})",
                    )
            done.append(part)
        final = "/".join(done)
        kind = self.kinds.get(final)
        if kind == "file":
            return final
        if kind == "dir" or final in self.below or not final:
            raise _refuse(
                self.archive,
                raw,
                f"is a link to a folder ({target!r}); only links to files are extracted",
            )
        raise _refuse(
            self.archive, raw, f"is a link to {target!r}, which is not a file in the archive"
        )


class _Writer:
    """Writes members under ``dest`` without following anything on disk, counting bytes."""

    def __init__(self, archive, dest: Path, limits: Limits):
        self.archive, self.dest, self.limits = archive, dest, limits
        self.total = 0
        self.made: set[str] = set()

    def check_size(self, raw: str, size: int) -> None:
        """Refuse a member whose size breaks a limit, before writing it."""
        if size > self.limits.max_member_bytes:
            raise _refuse(
                self.archive,
                raw,
                f"is {size / MB:.1f} MB, more than the limit of "
                f"{self.limits.max_member_bytes / MB:.0f} MB (data.max_member_mb)",
            )
        if self.total + size > self.limits.max_total_bytes:
            raise _refuse(
                self.archive,
                raw,
                f"would take the extracted size to {(self.total + size) / MB:.1f} MB, more "
                f"than the limit of {self.limits.max_total_bytes / MB:.0f} MB (data.max_total_mb)",
            )

    def folder(self, name: str) -> None:
        """Create ``name`` and its parents as real folders (refusing anything else in the way)."""
        if name in (".", ""):
            return
        for part in [*_parents(name), name]:
            if part in self.made:
                continue
            path = self.dest / part
            try:
                os.mkdir(path)
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    raise _refuse(self.archive, part, "is both a file and a folder") from None
            self.made.add(part)

    def file(self, raw: str, name: str, stream, size: int) -> None:
        """Write ``size`` bytes from ``stream`` to a new file ``name``."""
        self.check_size(raw, size)
        self.folder(posixpath.dirname(name))
        flags = (
            os.O_WRONLY
            | os.O_CREAT
            | os.O_EXCL
            | getattr(os, "O_NOFOLLOW", 0)
            | getattr(os, "O_CLOEXEC", 0)
        )
        try:
            fd = os.open(self.dest / name, flags, 0o666)
        except FileExistsError:
            raise _refuse(self.archive, raw, "appears twice in the archive") from None
        written = 0
        with os.fdopen(fd, "wb") as out:
            while True:
                block = stream.read(CHUNK)
                if not block:
                    break
                written += len(block)
                if written > size:
                    raise _refuse(
                        self.archive, raw, f"holds more data than its header's {size} bytes"
                    )
                out.write(block)
        if written != size:
            raise _damaged(self.archive, f"member {raw!r} has {written} of its {size} bytes")
        self.total += size

    def copies(self, tree: _Tree) -> None:
        """Write every link member as a copy of the regular file it resolves to."""
        for name in sorted(tree.links):
            source = tree.resolve(name)
            raw = tree.links[name][0]
            path = self.dest / source
            size = os.lstat(path).st_size
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as stream:
                self.file(raw, name, stream, size)


# ------------------------------------------------------------------ tar


def _tar_end_check(archive, tar: tarfile.TarFile, ended_on: bytes) -> None:
    """After the last member: the block that ended it and everything after must be zeros, at least
    two blocks of them, and the compressed stream must end cleanly (its checksum is checked)."""
    if not ended_on:
        raise _damaged(archive, "it ends without an end-of-archive marker (truncated?)")
    if len(ended_on) < BLOCK:
        raise _damaged(
            archive, f"it ends inside a member header at byte {tar.offset} of the tar data"
        )
    if ended_on.count(0) != BLOCK:
        raise _damaged(archive, f"damaged member header at byte {tar.offset} of the tar data")
    zeros = BLOCK
    while True:
        block = tar.fileobj.read(CHUNK)
        if not block:
            break
        if block.count(0) != len(block):
            at = tar.offset + zeros + next(i for i, b in enumerate(block) if b)
            raise _damaged(
                archive,
                f"data after the end-of-archive marker at byte {at} of the tar "
                "data (a damaged member header?)",
            )
        zeros += len(block)
    if zeros < 2 * BLOCK:
        raise _damaged(archive, "no end-of-archive marker (truncated?)")


def _extract_tar(archive, dest: Path, limits: Limits, compression: str) -> None:
    class Recording(tarfile.TarInfo):
        """Remembers the last header block read, so the one that ended the archive is known."""

        last = b""

        @classmethod
        def frombuf(cls, buf, encoding, errors):
            Recording.last = buf
            return super().frombuf(buf, encoding, errors)

    tree, writer = _Tree(archive), _Writer(archive, dest, limits)
    with tarfile.open(archive, f"r:{compression}", tarinfo=Recording) as tar:
        for count, member in enumerate(tar, start=1):
            if count > limits.max_members:
                raise _too_many(archive, limits)
            raw = member.name
            name = _safe_name(archive, raw)
            if member.ischr() or member.isblk():
                raise _refuse(archive, raw, "is a device file")
            if member.isfifo():
                raise _refuse(archive, raw, "is a FIFO")
            if member.issym() or member.islnk():
                tree.add_link(raw, name, member.linkname, hard=member.islnk())
            elif member.isdir():
                tree.add(raw, name, "dir")
                writer.folder(name)
            elif member.isreg() and not member.sparse:
                tree.add(raw, name, "file")
                stream = tar.extractfile(member)
                writer.file(raw, name, stream, member.size)
            else:
                raise _refuse(archive, raw, "has an unsupported type")
        _tar_end_check(archive, tar, Recording.last)
    writer.copies(tree)


# ------------------------------------------------------------------ zip


def _zip_kind(archive, info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    kind = "dir" if info.filename.endswith("/") else "file"
    if stat.S_IFMT(mode):
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            raise _refuse(archive, info.filename, "is a device file")
        if stat.S_ISFIFO(mode):
            raise _refuse(archive, info.filename, "is a FIFO")
        by_mode = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "link"}.get(
            stat.S_IFMT(mode)
        )
        if by_mode is None:
            raise _refuse(archive, info.filename, "has an unsupported type")
        if kind == "dir" and by_mode != "dir":
            raise _refuse(archive, info.filename, f"is named like a folder but is a {by_mode}")
        kind = by_mode
    if kind == "dir" and info.file_size:
        raise _refuse(archive, info.filename, "is a folder with content")
    return kind


def _zip_prefix(archive, fp, first: int) -> None:
    """Bytes before the first listed member are a stub (a self-extractor's) only if they hold no
    member's local header; one there means the directory lost that member."""
    fp.seek(0)
    position, tail = 0, b""
    while position < first:
        chunk = fp.read(min(1 << 20, first - position))
        if not chunk:
            break
        if b"PK\x03\x04" in tail + chunk:
            raise _damaged(
                archive,
                f"a member's local header lies before the first member the "
                f"central directory lists (at byte {first})",
            )
        tail, position = chunk[-3:], position + len(chunk)


def _zip_tiling(archive, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """The members' local headers and data must follow each other from the first member (byte 0,
    or after a prefix such as a self-extractor's) to the central directory: a damaged directory
    that lists only some members, or overlapping members, fail."""
    expected = min((i.header_offset for i in infos), default=zf.start_dir)
    fp = zf.fp
    _zip_prefix(archive, fp, expected)
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset != expected:
            raise _damaged(
                archive,
                f"member {info.filename!r} starts at byte {info.header_offset}, "
                f"expected {expected}",
            )
        fp.seek(info.header_offset)
        header = fp.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise _damaged(archive, f"no local header for member {info.filename!r}")
        fields = _LOCAL_HEADER.unpack(header)
        end = info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1] + info.compress_size
        if info.flag_bits & 0x08:  # a data descriptor follows: optional signature, crc, sizes
            fp.seek(end)
            sig = fp.read(4)
            size = 8 if info.compress_size >= 0xFFFFFFFF or info.file_size >= 0xFFFFFFFF else 4
            end += (4 if sig == b"PK\x07\x08" else 0) + 4 + 2 * size
        expected = end
    if expected != zf.start_dir:
        raise _damaged(
            archive,
            f"the members end at byte {expected} but the central directory starts "
            f"at byte {zf.start_dir}",
        )


def _extract_zip(archive, dest: Path, limits: Limits) -> None:
    tree, writer = _Tree(archive), _Writer(archive, dest, limits)
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise _too_many(archive, limits, len(infos))
        _zip_tiling(archive, zf, infos)
        kinds = {}
        for info in infos:  # every name, type and size is checked before anything is written
            name = _safe_name(archive, info.filename)
            kind = kinds[info.filename] = _zip_kind(archive, info)
            if kind == "link":
                if info.file_size > MAX_LINK_TARGET:
                    raise _refuse(
                        archive, info.filename, f"is a link with a {info.file_size}-byte target"
                    )
                target = zf.read(info).decode("utf-8")
                tree.add_link(info.filename, name, target, hard=False)
            else:
                tree.add(info.filename, name, kind)
                if kind == "file":
                    writer.check_size(info.filename, info.file_size)
        declared = sum(i.file_size for i in infos if kinds[i.filename] == "file")
        if declared > limits.max_total_bytes:
            raise StageError(
                f"{archive}: refusing the archive: its files add up to {declared / MB:.1f} MB, "
                f"more than the limit of {limits.max_total_bytes / MB:.0f} MB (data.max_total_mb)"
            )
        for info in infos:
            name = _safe_name(archive, info.filename)
            if kinds[info.filename] == "dir":
                writer.folder(name)
            elif kinds[info.filename] == "file":
                with zf.open(info) as stream:
                    writer.file(info.filename, name, stream, info.file_size)
    writer.copies(tree)


# ------------------------------------------------------------------ entry point


def _kind(archive: Path) -> str:
    """zip, or the tar compression: gz, bz2, xz or '' (plain)."""
    with open(archive, "rb") as handle:
        head = handle.read(BLOCK)
    for magic, compression in ((b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz")):
        if head.startswith(magic):
            return compression
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if len(head) == BLOCK and head[257:262] == b"ustar":
        return ""
    if zipfile.is_zipfile(archive):  # a zip with data before its first member
        return "zip"
    if tarfile.is_tarfile(archive):  # an old (v7) tar header
        return ""
    raise StageError(
        f"{archive}: not a .tar.gz, .tgz, .tar or .zip archive (nor one damaged at its start)"
    )


def extract(archive, dest, limits: Limits | None = None) -> None:
    """Extract a tar (any compression) or zip archive into ``dest``, refusing unsafe or damaged
    archives as a whole (see the module docstring). If ``dest`` did not exist, a refused archive
    leaves no ``dest``; otherwise the caller deletes it (it passes a temporary folder)."""
    archive, dest, limits = Path(archive), Path(dest), limits or Limits()
    existed = dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        kind = _kind(archive)
        try:
            if kind == "zip":
                _extract_zip(archive, dest, limits)
            else:
                _extract_tar(archive, dest, limits, kind)
        except StageError:
            raise
        except RuntimeError as exc:  # zipfile: an encrypted member ("password required")
            raise StageError(f"{archive}: cannot extract it: {exc}") from None
        except OSError as exc:
            if exc.errno is None:  # a decompressor's complaint (BadGzipFile, bz2, ...)
                raise _damaged(archive, str(exc) or type(exc).__name__) from None
            raise StageError(
                f"{archive}: cannot extract it into {dest}: {exc.strerror} ({exc.filename})"
            ) from None
        except _DAMAGED as exc:
            raise _damaged(archive, str(exc) or type(exc).__name__) from None
    except BaseException:
        if not existed:
            shutil.rmtree(dest, ignore_errors=True)
        raise
