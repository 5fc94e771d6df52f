"""Fetch a file over HTTP(S) with resume and checksum.

The Speech Commands tarball is 2.3 GB: an interrupted download must continue where it stopped
(HTTP Range) instead of starting over, but only when the server proves that the file has not
changed meanwhile (If-Range with the ETag or Last-Modified recorded when the download started);
otherwise it starts again, so two versions are never spliced. What arrived is checkable (sha256).
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import logging
import os
import posixpath
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from pipeline.core.errors import StageError
from pipeline.core.fs import atomic_write_json, sha256_file

log = logging.getLogger(__name__)

CHUNK = 1 << 20
USER_AGENT = "kws-pipeline-download/1.0"


def check_sha256(path, expected: str, what: str, delete: bool, actual: str = "") -> str:
    """Return the file's sha256 (``actual`` if already computed); raise StageError if
    ``expected`` is given and differs."""
    actual = actual or sha256_file(path)
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
    """A transfer that stopped early; retried, resuming when the server proves the same file."""


def record_path(final: Path) -> Path:
    """Where a finished download's facts (URL, validators, size, sha256) are kept beside it."""
    return final.with_name(final.name + ".download.json")


def _state_path(part: Path) -> Path:
    """The validators of the version that ``part`` holds the beginning of."""
    return part.with_name(part.name + ".json")


def _validators(response, url: str) -> dict:
    """What identifies the version a 200 response sends: ETag, Last-Modified, Date, length."""
    headers = response.headers
    length = headers.get("Content-Length")
    return {
        "url": url,
        "etag": headers.get("ETag"),
        "last_modified": headers.get("Last-Modified"),
        # RFC 7232 2.2.2: a Last-Modified is a strong validator only if it is at least 60 s older
        # than the response; the local clock stands in for a missing Date header.
        "date": headers.get("Date") or email.utils.formatdate(usegmt=True),
        "length": int(length) if length is not None and length.isdigit() else None,
    }


def _http_time(value) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def if_range(state: dict) -> tuple[str, str] | None:
    """The (header name, value) that proves a resumed transfer continues the same version.

    A strong ETag, else a Last-Modified at least 60 s older than the response that carried it
    (RFC 7233 3.2 forbids weak ETags and recent dates in If-Range); None if neither exists, and
    then the download starts again instead of resuming.
    """
    etag = state.get("etag")
    if etag and not etag.startswith("W/"):
        return "ETag", etag
    modified, date = _http_time(state.get("last_modified")), _http_time(state.get("date"))
    if modified is not None and date is not None and date - modified >= 60:
        return "Last-Modified", state["last_modified"]
    return None


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _state_path(part).unlink(missing_ok=True)


def _recorded(url: str, part: Path) -> tuple[tuple[str, str] | None, dict]:
    """(If-Range validator or None, recorded state) of the version ``part`` began."""
    try:
        state = json.loads(_state_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, {}
    if not isinstance(state, dict) or state.get("url") != url:
        return None, {}
    return if_range(state), state


def _resume_point(url: str, part: Path) -> tuple[int, tuple[str, str] | None, dict]:
    """(offset, validator, state) for the next request: 0 when ``part`` cannot be continued."""
    size = part.stat().st_size if part.exists() else 0
    validator, state = _recorded(url, part) if size else (None, {})
    if validator is None:
        if size:
            log.warning(
                "%s: the server gave no strong validator (ETag or Last-Modified) for the "
                "partial download, so it cannot prove the file unchanged; starting again",
                part,
            )
        _discard(part)
        return 0, None, {}
    return size, validator, state


def _open(url: str, offset: int, validator, timeout: float):
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        headers["If-Range"] = validator[1]
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _same_version(response, offset: int, validator, state: dict) -> str:
    """Why a 206 answer does not continue the recorded version ('' when it does)."""
    name, value = validator
    if response.headers.get(name) != value:
        return f"the server sent {name} {response.headers.get(name)!r}, not {value!r}"
    content_range = response.headers.get("Content-Range", "")
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", content_range.strip())
    if not match or int(match.group(1)) != offset:
        return f"unexpected Content-Range {content_range!r} for a resume at byte {offset}"
    total = match.group(3)
    if state.get("length") is not None and total != "*" and int(total) != state["length"]:
        return f"the file is now {total} bytes, not {state['length']}"
    return ""


def _transfer(url: str, part: Path, timeout: float, progress: bool) -> None:
    """One attempt: continue ``part`` if the server proves it is the same file, else start again."""
    from tqdm import tqdm

    offset, validator, state = _resume_point(url, part)
    if offset and state.get("length") == offset:
        return  # complete already (killed before the rename)
    try:
        response = _open(url, offset, validator, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the partial file is not a prefix we can continue
            log.warning("the server refused to resume %s at byte %d; starting again", url, offset)
            _discard(part)
            return _transfer(url, part, timeout, progress)
        if exc.code >= 500:
            raise _Interrupted(f"HTTP {exc.code} {exc.reason}") from None
        raise StageError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Interrupted(f"cannot connect: {reason}") from None
    with response:
        if offset and response.status == 206:
            problem = _same_version(response, offset, validator, state)
            if problem:
                response.close()
                log.warning("cannot resume %s: %s; starting again", url, problem)
                _discard(part)
                return _transfer(url, part, timeout, progress)  # no part now: a plain request
            mode = "ab"
        else:  # 200: the whole resource (a changed file, or a server that ignores Range)
            if offset:
                log.warning("%s changed on the server (or it does not resume); starting again", url)
            offset, mode = 0, "wb"
            state = _validators(response, url)
            atomic_write_json(_state_path(part), state)
        total = state.get("length")
        written = offset
        with (
            open(part, mode) as out,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"download {part.name.split('-', 1)[-1]}",
                disable=not progress,
                mininterval=1.0,
            ) as bar,
        ):
            try:
                while True:
                    block = response.read1(CHUNK)  # what has arrived, not a full CHUNK
                    if not block:
                        break
                    out.write(block)
                    written += len(block)
                    bar.update(len(block))
            except (TimeoutError, http.client.HTTPException, OSError) as exc:
                raise _Interrupted(f"connection lost after {written} bytes ({exc!r})") from None
        if total is not None and written < total:
            raise _Interrupted(f"connection closed after {written} of {total} bytes")
    return None


def download_record(final) -> dict:
    """The facts :func:`fetch` recorded for a cached download: url, etag, last_modified, bytes,
    sha256 (empty for a file cached by an older version)."""
    try:
        return json.loads(record_path(Path(final)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def forget(final) -> None:
    """Remove a cached download and its record (a damaged archive: the next run fetches it anew)."""
    Path(final).unlink(missing_ok=True)
    record_path(Path(final)).unlink(missing_ok=True)


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

    The transfer goes to ``<name>.part``, with the version's validators (ETag, Last-Modified) in
    ``<name>.part.json``. After a cut connection, in this call (``retries`` times) or a later one,
    it resumes with ``Range`` and ``If-Range`` only if the server proves that the file is the same
    (a 206 carrying the recorded validator); a 200, a different validator, or no validator at all
    start again from byte 0, so two versions are never spliced. The finished file is checked
    against ``expected_sha256`` when given (a mismatch deletes it); its URL, validators, size and
    sha256 are kept in ``<name>.download.json`` (:func:`download_record`).
    """
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise StageError(f"cannot download {url!r}: only http:// and https:// URLs are supported")
    final = cache_path(url, cache_dir)
    part = final.with_name(final.name + ".part")
    if final.exists():
        digest = sha256_file(final)
        if download_record(final).get("sha256") in (None, digest):
            log.info("using cached %s", final)
            return final, check_sha256(final, expected_sha256, url, delete=True, actual=digest)
        log.warning(
            "the cached %s no longer matches its recorded sha256 (damaged on disk); "
            "downloading it again",
            final,
        )
        final.unlink()
        record_path(final).unlink(missing_ok=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, timeout, progress)
            break
        except _Interrupted as exc:
            have = part.stat().st_size if part.exists() else 0
            if attempt == retries:
                if have and _recorded(url, part)[0]:
                    kept = (
                        f"{have} bytes are kept in {part}; run the stage again to resume from there"
                    )
                elif have:
                    _discard(part)
                    kept = (
                        f"the {have} bytes received were discarded: the server sends no ETag or "
                        "Last-Modified to prove a resumed file unchanged; run the stage again to "
                        "start over"
                    )
                else:
                    kept = "run the stage again to retry"
                raise StageError(f"download of {url} failed: {exc}; {kept}") from None
            log.warning("download interrupted (%s); retrying with %d bytes in hand", exc, have)
            time.sleep(backoff_s * (attempt + 1))
    state = _recorded(url, part)[1]
    os.replace(part, final)
    _state_path(part).unlink(missing_ok=True)
    digest = check_sha256(final, expected_sha256, url, delete=True)
    record: dict = {key: state.get(key) for key in ("url", "etag", "last_modified")}
    record.update(bytes=final.stat().st_size, sha256=digest)
    atomic_write_json(record_path(final), record)
    log.info(
        "downloaded %s: %d bytes, sha256 %s (ETag %s, Last-Modified %s)",
        url,
        record["bytes"],
        digest,
        record["etag"],
        record["last_modified"],
    )
    return final, digest
