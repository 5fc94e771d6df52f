"""Fetch a file over HTTP(S) with resume and checksum.

The Speech Commands tarball is 2.3 GB: an interrupted download must continue where it stopped
(HTTP Range) instead of starting over, and what arrived must be checkable (sha256).
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import posixpath
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from pipeline.core.errors import StageError
from pipeline.core.fs import sha256_file

log = logging.getLogger(__name__)

CHUNK = 1 << 20
USER_AGENT = "kws-pipeline-download/1.0"


def check_sha256(path, expected: str, what: str, delete: bool) -> str:
    """Return the file's sha256; raise StageError if ``expected`` is given and differs."""
    actual = sha256_file(path)
    expected = expected.strip().lower()
    if expected and actual != expected:
        if delete:
            Path(path).unlink(missing_ok=True)
            note = "the downloaded file was deleted"
        else:
            note = "the file was left in place"
        raise StageError(
            f"checksum mismatch for {what}: expected sha256 {expected}, got {actual} ({note}; "
            "check the sha256 parameter or the source)"
        )
    return actual


def cache_path(url: str, cache_dir) -> Path:
    """Where ``url`` is kept in the download cache: its file name, prefixed by a hash of the URL."""
    name = posixpath.basename(urllib.parse.urlparse(url).path) or "download"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return Path(cache_dir) / f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{name}"


class _Interrupted(Exception):
    """A transfer that stopped early; retried with a Range request."""


def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _transfer(url: str, part: Path, timeout: float, progress: bool) -> None:
    """One attempt: append to ``part`` from its current size to the end of the resource."""
    from tqdm import tqdm

    offset = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the partial file is not a prefix we can continue
            part.unlink()
            raise _Interrupted(f"server refused to resume at byte {offset}; starting over") from None
        if exc.code >= 500:
            raise _Interrupted(f"HTTP {exc.code} {exc.reason}") from None
        raise StageError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Interrupted(f"cannot connect: {reason}") from None
    with response:
        if offset and response.status == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                part.unlink()
                raise _Interrupted(f"unexpected Content-Range {content_range!r}; starting over")
            mode = "ab"
        else:  # 200: the server sent the whole resource (it ignored or was not asked a Range)
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        written = offset
        with open(part, mode) as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=f"download {part.name.split('-', 1)[-1]}", disable=not progress, mininterval=1.0,
        ) as bar:
            try:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    written += len(block)
                    bar.update(len(block))
            except (http.client.HTTPException, OSError, socket.timeout) as exc:
                raise _Interrupted(f"connection lost after {written} bytes ({exc!r})") from None
        if total is not None and written < total:
            raise _Interrupted(f"connection closed after {written} of {total} bytes")


def fetch(
    url: str,
    cache_dir,
    expected_sha256: str = "",
    retries: int = 3,
    timeout: float = 60.0,
    backoff_s: float = 2.0,
    progress: bool = True,
) -> tuple[Path, str]:
    """Download ``url`` into ``cache_dir`` (reused if already complete); return (path, sha256).

    The transfer goes to ``<name>.part`` and resumes with an HTTP Range request after a cut
    connection, both within this call (``retries`` times) and in a later call. The finished file is
    checked against ``expected_sha256`` when given; a mismatch deletes it.
    """
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise StageError(f"cannot download {url!r}: only http:// and https:// URLs are supported")
    final = cache_path(url, cache_dir)
    part = final.with_name(final.name + ".part")
    if final.exists():
        log.info("using cached %s", final)
    else:
        final.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(retries + 1):
            try:
                _transfer(url, part, timeout, progress)
                break
            except _Interrupted as exc:
                have = part.stat().st_size if part.exists() else 0
                if attempt == retries:
                    raise StageError(
                        f"download of {url} failed: {exc}. {have} bytes are kept in {part}; "
                        "run the stage again to resume from there"
                    ) from None
                log.warning("download interrupted (%s); resuming at byte %d", exc, have)
                time.sleep(backoff_s * (attempt + 1))
        os.replace(part, final)
    return final, check_sha256(final, expected_sha256, url, delete=True)
