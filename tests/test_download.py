"""The download stage: URL (local HTTP server with Range support), archive, dir and embedded
sources, checksums, resume, hostile archives and atomicity."""

from __future__ import annotations

import csv
import email.utils
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.core.audio import encode_wav, write_wav
from pipeline.core.clip import ClipFormat
from pipeline.core.errors import StageError, WavError
from pipeline.core.fs import sha256_file
from pipeline.core.schema import read_yaml
from pipeline.data.acquire.archive import extract
from pipeline.data.acquire.fetch import download_record, fetch, if_range
from pipeline.data.acquire.sources import build_raw
from pipeline.data.clip_store import ClipStore, is_store
from pipeline.data.config import DataConfig, EmbeddedConfig
from pipeline.sections import defaults
from pipeline.stages.download import main
from tests.conftest import REPO_ROOT, make_dataset, store_pcm, wav_pcm

WORDS = ("yes", "no", "cat")


# ------------------------------------------------------------------ fixtures and helpers


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Requests to 127.0.0.1 must not go through a proxy configured in the environment."""
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


def etag_of(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()[:16]}"'


def last_modified_of(body: bytes) -> str:
    """A date years old (a strong validator) that differs between versions."""
    return email.utils.formatdate(
        1_500_000_000 + int(hashlib.sha256(body).hexdigest()[:6], 16), usegmt=True
    )


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files`` with the validators in ``server.validators`` (ETag, Last-Modified);
    honours ``Range: bytes=N-`` and ``If-Range`` (unless ``server.honour_if_range`` is False, like
    a broken server); can cut the first responses (``server.cut_next``)."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        server = self.server
        server.requests.append(
            {
                "path": self.path,
                "range": self.headers.get("Range"),
                "if_range": self.headers.get("If-Range"),
            }
        )
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        validators = {}
        if "etag" in server.validators:
            validators["ETag"] = etag_of(body)
        if "last_modified" in server.validators:
            validators["Last-Modified"] = last_modified_of(body)
        start, status = 0, 200
        header = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if header and if_range and server.honour_if_range and if_range not in validators.values():
            header = None  # RFC 7233: a failed If-Range means "send the whole new version"
        if header:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416, "Range Not Satisfiable")
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) - start))
        for name, value in validators.items():
            self.send_header(name, value)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        payload = body[start:]
        if server.cut_next > 0:  # promise everything, send half, drop the connection
            server.cut_next -= 1
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            if server.stall.is_set():  # hold the connection open (a stage killed mid-download)
                server.release.wait(30)
            self.close_connection = True
            return
        self.wfile.write(payload)


@pytest.fixture
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.files, server.requests, server.cut_next = {}, [], 0
    server.validators, server.honour_if_range = ("etag", "last_modified"), True
    server.stall, server.release = threading.Event(), threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def _tarball(src: Path, wrap: str = "") -> bytes:
    """A .tar.gz of ``src``'s contents, at the top level (like the real one) or in ``wrap``/."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(src.rglob("*")):
            name = path.relative_to(src).as_posix()
            tar.add(path, arcname=f"{wrap}/{name}" if wrap else name, recursive=False)
    return buffer.getvalue()


def _files(root: Path) -> dict[str, bytes]:
    """name -> samples of every clip, of a clip store (data/raw/dataset) or a folder of WAVs."""
    return store_pcm(root) if is_store(root) else wav_pcm(root)


@pytest.fixture
def source_dir(tmp_path) -> Path:
    return make_dataset(tmp_path / "src", words=WORDS, speakers=2, noise_seconds=1.5)


def _raw(
    tmp_path, source, cache_dir=None, retries=3, sample_rate=16000, clip_duration_ms=1000, **data
):
    """build_raw with ``data`` overriding the default data section."""
    if "embedded" in data:
        data["embedded"] = EmbeddedConfig(**data["embedded"])
    config = DataConfig(source=source, **data)
    clip = ClipFormat(sample_rate=sample_rate, clip_duration_ms=clip_duration_ms)
    return build_raw(
        tmp_path / "data" / "raw",
        config,
        clip,
        cache_dir or tmp_path / "cache",
        progress=False,
        retries=retries,
    )


# ------------------------------------------------------------------ url source


def test_url_download_materialises_the_training_layout(tmp_path, http_server, source_dir):
    tarball = _tarball(source_dir)
    http_server.files["/speech.tar.gz"] = tarball
    url = http_server.url + "/speech.tar.gz"

    info = _raw(tmp_path, "url", url=url, keep_download=True)

    raw = tmp_path / "data" / "raw"
    assert _files(raw / "dataset") == _files(source_dir)
    recorded = json.loads((raw / "source.json").read_text())
    assert recorded == info
    assert recorded["source"] == "url" and recorded["url"] == url
    assert recorded["sha256"] == hashlib.sha256(tarball).hexdigest()
    assert recorded["counts"] == {"_background_noise_": 2, "cat": 2, "no": 2, "yes": 2}
    assert (raw / "skipped.csv").read_text() == "path,problem\n"
    assert [r["range"] for r in http_server.requests] == [None]
    # With data.keep_download the archive stays in the download cache (outside data/raw) and is
    # reused.
    cached = sorted((tmp_path / "cache").glob("*.tar.gz"))
    assert len(cached) == 1 and cached[0].read_bytes() == tarball
    assert download_record(cached[0]) == {
        "url": url,
        "etag": etag_of(tarball),
        "last_modified": last_modified_of(tarball),
        "bytes": len(tarball),
        "sha256": recorded["sha256"],
    }
    _raw(tmp_path, "url", url=url, sha256=hashlib.sha256(tarball).hexdigest(), keep_download=True)
    assert len(http_server.requests) == 1


def test_by_default_the_downloaded_archives_are_removed_after_success(
    tmp_path, http_server, source_dir
):
    tarball = _tarball(source_dir)
    http_server.files.update({"/speech.tar.gz": tarball, "/test.tar.gz": tarball})
    url, test_url = http_server.url + "/speech.tar.gz", http_server.url + "/test.tar.gz"

    _raw(tmp_path, "url", url=url, test_set="official", test_set_source=test_url)

    raw = tmp_path / "data" / "raw"
    assert _files(raw / "dataset") == _files(source_dir)
    assert _files(raw / "official_test") == _files(source_dir)
    assert list((tmp_path / "cache").iterdir()) == []  # both archives and their records are gone
    _raw(tmp_path, "url", url=url, test_set="official", test_set_source=test_url)  # fetched again
    assert [r["path"] for r in http_server.requests] == ["/speech.tar.gz", "/test.tar.gz"] * 2
    assert _files(raw / "dataset") == _files(source_dir)


def test_a_failed_run_keeps_the_downloads_for_the_next_one(tmp_path, http_server, source_dir):
    """The data set downloads, the official test set is cut off: nothing is removed from the
    cache (keep_download false), and the next run reuses the one and resumes the other."""
    tarball = _tarball(source_dir)
    http_server.files.update({"/speech.tar.gz": tarball, "/test.tar.gz": tarball})
    url, test_url = http_server.url + "/speech.tar.gz", http_server.url + "/test.tar.gz"
    fetch(url, tmp_path / "cache", progress=False)
    http_server.cut_next = 1  # the test set: half, then the connection drops

    with pytest.raises(StageError, match="run the stage again to resume"):
        _raw(tmp_path, "url", url=url, test_set="official", test_set_source=test_url, retries=0)
    assert not (tmp_path / "data" / "raw").exists()
    assert len(list((tmp_path / "cache").glob("*-speech.tar.gz"))) == 1
    assert len(list((tmp_path / "cache").glob("*-test.tar.gz.part"))) == 1

    _raw(tmp_path, "url", url=url, test_set="official", test_set_source=test_url, retries=0)
    assert [r["path"] for r in http_server.requests] == [
        "/speech.tar.gz",
        "/test.tar.gz",
        "/test.tar.gz",
    ]
    assert http_server.requests[-1]["range"] == f"bytes={len(tarball) // 2}-"  # resumed
    assert _files(tmp_path / "data" / "raw" / "official_test") == _files(source_dir)
    assert list((tmp_path / "cache").iterdir()) == []  # removed once data/raw was built


@pytest.mark.parametrize("wrap", ["speech_commands", "."])
def test_wrapping_folder_or_dot_prefix_is_accepted(tmp_path, http_server, source_dir, wrap):
    http_server.files["/wrapped.tgz"] = _tarball(source_dir, wrap=wrap)
    _raw(tmp_path, "url", url=http_server.url + "/wrapped.tgz")
    assert _files(tmp_path / "data" / "raw" / "dataset") == _files(source_dir)


def test_cut_connection_is_resumed_with_a_range_request(tmp_path, http_server, source_dir):
    tarball = _tarball(source_dir)
    http_server.files["/speech.tar.gz"] = tarball
    http_server.cut_next = 1

    path, digest = fetch(
        http_server.url + "/speech.tar.gz",
        tmp_path / "cache",
        retries=2,
        backoff_s=0,
        progress=False,
    )

    assert path.read_bytes() == tarball and digest == hashlib.sha256(tarball).hexdigest()
    assert len(http_server.requests) == 2
    assert http_server.requests[0]["range"] is None
    assert http_server.requests[1]["range"] == f"bytes={len(tarball) // 2}-"
    assert http_server.requests[1]["if_range"] == etag_of(tarball)


def test_interrupted_download_resumes_in_the_next_run(tmp_path, http_server, source_dir):
    tarball = _tarball(source_dir)
    http_server.files["/speech.tar.gz"] = tarball
    http_server.cut_next = 1
    url = http_server.url + "/speech.tar.gz"

    with pytest.raises(StageError, match="run the stage again to resume"):
        _raw(tmp_path, "url", url=url, retries=0)
    assert not (tmp_path / "data" / "raw").exists()
    parts = list((tmp_path / "cache").glob("*.part"))
    assert len(parts) == 1 and parts[0].stat().st_size == len(tarball) // 2

    _raw(tmp_path, "url", url=url, retries=0)
    assert http_server.requests[-1]["range"] == f"bytes={len(tarball) // 2}-"
    assert _files(tmp_path / "data" / "raw" / "dataset") == _files(source_dir)
    assert not list((tmp_path / "cache").glob("*.part"))


@pytest.mark.parametrize(
    "validators, honour_if_range",
    [
        (("etag",), True),
        (("last_modified",), True),
        ((), True),
        (("etag",), False),  # a server that ignores If-Range: its 206 carries the new ETag
    ],
    ids=["etag", "last-modified", "no-validator", "server-ignores-if-range"],
)
def test_a_file_changed_between_cut_and_resume_is_downloaded_again_whole(
    tmp_path, http_server, validators, honour_if_range
):
    rng = np.random.default_rng(7)
    old, new = (rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes() for _ in range(2))
    http_server.validators, http_server.honour_if_range = validators, honour_if_range
    http_server.files["/speech.tar.gz"], http_server.cut_next = old, 1
    url = http_server.url + "/speech.tar.gz"
    with pytest.raises(StageError, match="resume from there" if validators else "start over"):
        fetch(url, tmp_path / "cache", retries=0, progress=False)
    parts = list((tmp_path / "cache").glob("*.part"))
    assert [p.stat().st_size for p in parts] == ([len(old) // 2] if validators else [])

    http_server.files["/speech.tar.gz"] = new  # same length: only a validator tells them apart
    path, digest = fetch(url, tmp_path / "cache", retries=0, progress=False)

    assert path.read_bytes() == new
    assert digest == hashlib.sha256(new).hexdigest() == sha256_file(path)
    record = download_record(path)
    assert record["sha256"] == digest and record["bytes"] == len(new)
    assert record["etag"] == (etag_of(new) if "etag" in validators else None)
    assert record["last_modified"] == (
        last_modified_of(new) if "last_modified" in validators else None
    )
    second = http_server.requests[1:]
    if validators:  # the resume asks "only if still this version" ...
        assert second[0] == {
            "path": "/speech.tar.gz",
            "range": f"bytes={len(old) // 2}-",
            "if_range": (etag_of if "etag" in validators else last_modified_of)(old),
        }
        # ... and gets the whole new version (200), or a 206 of the new one that is refused
        assert [r["range"] for r in second[1:]] == ([] if honour_if_range else [None])
    else:  # nothing could prove the file unchanged: no Range request at all
        assert [r["range"] for r in second] == [None]
    assert not list((tmp_path / "cache").glob("*.part*"))


def test_if_range_uses_only_strong_validators():
    old = email.utils.formatdate(1_500_000_000, usegmt=True)
    soon = email.utils.formatdate(1_500_000_030, usegmt=True)
    later = email.utils.formatdate(1_500_000_060, usegmt=True)
    assert if_range({"etag": '"abc"', "last_modified": old, "date": later}) == ("ETag", '"abc"')
    assert if_range({"etag": 'W/"abc"', "last_modified": old, "date": later}) == (
        "Last-Modified",
        old,
    )
    assert if_range({"last_modified": old, "date": soon}) is None  # may change within the second
    assert if_range({"etag": 'W/"abc"'}) is None and if_range({}) is None


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_killed_stage_leaves_ignored_temporaries_that_its_next_run_removes(
    tmp_path, http_server, source_dir
):
    """SIGKILL the real download stage while it writes data/raw (the data set extracted, the
    official test set half downloaded), in a git repository with the project's .gitignore: git
    ignores what it left; the next run removes the leftovers of killed writers (its own and other
    stages') and nothing else."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO_ROOT / ".gitignore", repo / ".gitignore")
    url, test_url = http_server.url + "/speech.tar.gz", http_server.url + "/test.tar.gz"
    params = read_yaml((REPO_ROOT / "params.yaml").read_text())
    params["data"].update(source="url", url=url, test_set="official", test_set_source=test_url)
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "project")
    dead, data = _dead_pid(), repo / "data"
    killed = [
        data / f".split.{dead}.abcdefgh.tmp",  # another output's
        data / f".raw.json.{dead}.abcdefgh.tmp",  # the temporary of data/raw.json
    ]
    others = [
        data / f".raw.{os.getpid()}.abcdefgh.tmp",  # a writer still running
        data / ".raw.notes.tmp",  # not a name atomic writes make
    ]
    for other in killed + others:
        other.mkdir(parents=True)
        (other / "clip.wav").write_bytes(b"RIFF")
    tarball = _tarball(source_dir)
    http_server.files.update({"/speech.tar.gz": tarball, "/test.tar.gz": tarball})
    fetch(url, repo / ".cache" / "downloads", progress=False)  # the data set is cached already
    http_server.cut_next = 1
    http_server.stall.set()  # the test set: send half, then hold the connection open
    stage = [sys.executable, "-m", "pipeline.stages.download"]
    process = subprocess.Popen(
        stage, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size for p in repo.glob(".cache/downloads/*test.tar.gz.part")):
            assert process.poll() is None and time.monotonic() < deadline, (
                "stage never got mid-write"
            )
            time.sleep(0.05)
    finally:
        process.kill()  # SIGKILL: no cleanup can run
        process.wait()
    http_server.release.set()
    left = list(data.glob(f".raw.{process.pid}.*.tmp"))
    assert len(left) == 1 and (left[0] / "dataset" / "audio.npy").is_file()  # half-written data/raw
    assert _git(repo, "status", "--porcelain", "--untracked-files=all") == ""

    subprocess.run(stage, cwd=repo, check=True, capture_output=True)

    assert not left[0].exists() and not any(path.exists() for path in killed)
    assert all(other.exists() for other in others)
    assert _files(data / "raw" / "official_test") == _files(source_dir)
    assert http_server.requests[-1]["range"] == f"bytes={len(tarball) // 2}-"  # resumed
    assert _git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_wrong_checksum_is_refused_and_the_file_deleted(tmp_path, http_server, source_dir):
    tarball = _tarball(source_dir)
    http_server.files["/speech.tar.gz"] = tarball
    wrong = "0" * 64
    with pytest.raises(StageError) as caught:
        _raw(tmp_path, "url", url=http_server.url + "/speech.tar.gz", sha256=wrong)
    message = str(caught.value)
    assert wrong in message and hashlib.sha256(tarball).hexdigest() in message
    assert not any((tmp_path / "cache").iterdir())
    assert not (tmp_path / "data" / "raw").exists()


def test_404_names_the_url_and_status(tmp_path, http_server):
    url = http_server.url + "/missing.tar.gz"
    with pytest.raises(StageError, match=r"missing\.tar\.gz failed: HTTP 404"):
        _raw(tmp_path, "url", url=url)


def test_connection_failure_says_to_retry(tmp_path):
    import socket

    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StageError, match="cannot connect.*; run the stage again to retry"):
        fetch(f"http://127.0.0.1:{port}/x.tar.gz", tmp_path / "cache", retries=0, progress=False)


def test_failed_download_removes_the_previous_output(tmp_path, http_server, source_dir):
    raw = tmp_path / "data" / "raw"
    http_server.files["/speech.tar.gz"] = _tarball(source_dir)
    _raw(tmp_path, "url", url=http_server.url + "/speech.tar.gz")
    assert raw.is_dir()
    with pytest.raises(StageError):
        _raw(tmp_path, "url", url=http_server.url + "/gone.tar.gz")
    assert not raw.exists()
    assert list((tmp_path / "data").iterdir()) == []  # no temporary folder left either


# ------------------------------------------------------------------ hostile archives


def _hostile_tar(path: Path, kind: str) -> str:
    """A tarball with one good clip and one hostile member; returns the hostile member's name."""
    with tarfile.open(path, "w:gz") as tar:
        good = tarfile.TarInfo("yes/aaaaaaaa_nohash_0.wav")
        good.size = 4
        tar.addfile(good, io.BytesIO(b"RIFF"))
        names = {
            "dotdot": "yes/../../escaped.wav",
            "absolute": "/tmp/escaped_by_test.wav",
            "symlink": "yes/link.wav",
            "hardlink": "yes/hard.wav",
            "device": "yes/dev.wav",
            "fifo": "yes/fifo.wav",
        }
        member = tarfile.TarInfo(names[kind])
        if kind == "symlink":
            member.type, member.linkname = tarfile.SYMTYPE, "../../outside.wav"
        elif kind == "hardlink":
            member.type, member.linkname = tarfile.LNKTYPE, "../etc/passwd"
        elif kind == "device":
            member.type, member.devmajor, member.devminor = tarfile.CHRTYPE, 1, 3
        elif kind == "fifo":
            member.type = tarfile.FIFOTYPE
        else:
            member.size = 4
        tar.addfile(member, io.BytesIO(b"RIFF") if member.isfile() else None)
    return names[kind]


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "device", "fifo"])
def test_hostile_tar_members_are_refused_by_name(tmp_path, kind):
    archive = tmp_path / "evil.tar.gz"
    member = _hostile_tar(archive, kind)
    with pytest.raises(StageError, match="refusing the archive") as caught:
        _raw(tmp_path, "archive", archive=str(archive))
    assert repr(member) in str(caught.value)
    assert not (tmp_path / "data" / "raw").exists()
    assert (
        not (tmp_path / "escaped.wav").exists() and not (tmp_path / "data" / "escaped.wav").exists()
    )


def test_symlink_that_stays_inside_is_allowed(tmp_path):
    archive = tmp_path / "ok.tar"
    with tarfile.open(archive, "w") as tar:
        good = tarfile.TarInfo("yes/a.wav")
        good.size = 4
        tar.addfile(good, io.BytesIO(b"RIFF"))
        link = tarfile.TarInfo("no/b.wav")
        link.type, link.linkname = tarfile.SYMTYPE, "../yes/a.wav"
        tar.addfile(link)
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "no" / "b.wav").read_bytes() == b"RIFF"


@pytest.mark.parametrize("name", ["../escaped.wav", "/abs/escaped.wav", "yes/..\\..\\escaped.wav"])
def test_hostile_zip_members_are_refused_by_name(tmp_path, name):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("yes/a_nohash_0.wav", b"RIFF")
        zf.writestr(zipfile.ZipInfo(name), b"RIFF")
    with pytest.raises(StageError, match="refusing the archive") as caught:
        extract(archive, tmp_path / "out")
    assert repr(name) in str(caught.value)


def test_not_an_archive_is_a_clear_error(tmp_path):
    bogus = tmp_path / "data.tar.gz"
    bogus.write_bytes(b"this is not an archive")
    with pytest.raises(StageError, match="not a .tar.gz, .tgz, .tar or .zip archive"):
        _raw(tmp_path, "archive", archive=str(bogus))


# ------------------------------------------------------------------ archive and dir sources


def test_zip_archive_source_with_checksum(tmp_path, source_dir):
    archive = tmp_path / "speech.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source_dir.rglob("*.wav")):
            zf.write(path, "wrapper/" + path.relative_to(source_dir).as_posix())
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    info = _raw(tmp_path, "archive", archive=str(archive), sha256=digest.upper())
    assert info["sha256"] == digest and info["archive"] == str(archive)
    assert _files(tmp_path / "data" / "raw" / "dataset") == _files(source_dir)

    with pytest.raises(StageError, match="checksum mismatch"):
        _raw(tmp_path, "archive", archive=str(archive), sha256="ab" * 32)
    assert archive.exists()  # the user's own archive is never deleted


def test_missing_archive_and_dir_are_clear_errors(tmp_path):
    with pytest.raises(StageError, match="nothing.tgz' not found"):
        _raw(tmp_path, "archive", archive=str(tmp_path / "nothing.tgz"))
    with pytest.raises(StageError, match="nowhere' not found"):
        _raw(tmp_path, "dir", dir=str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    with pytest.raises(StageError, match="no <word>/\\*.wav clips"):
        _raw(tmp_path, "dir", dir=str(empty))


def test_dir_source_with_official_test_folder(tmp_path, source_dir):
    official = tmp_path / "official"
    for label in ("yes", "_unknown_", "_silence_"):
        write_wav(official / label / f"{label}_nohash_0.wav", np.zeros(16000), 16000)
    (source_dir / "yes" / "notes.txt").write_text("not a clip")

    info = _raw(
        tmp_path, "dir", dir=str(source_dir), test_set="official", test_set_source=str(official)
    )

    raw = tmp_path / "data" / "raw"
    assert _files(raw / "dataset") == _files(source_dir)
    assert not (raw / "dataset" / "yes" / "notes.txt").exists()
    assert _files(raw / "official_test") == _files(official)
    assert info["official_test"]["counts"] == {"_silence_": 1, "_unknown_": 1, "yes": 1}
    assert info["dir"] == str(source_dir) and len(info["sha256"]) == 64


def test_bad_clips_are_skipped_and_reported_or_stop_the_stage(tmp_path, source_dir):
    """A dir source names the user's own file (an archive's clips are named in data/raw)."""
    bad = source_dir / "yes" / "ffffffff_nohash_0.wav"
    bad.write_bytes(encode_wav(np.zeros(8000), 16000)[:100])
    info = _raw(tmp_path, "dir", dir=str(source_dir), on_bad_file="skip")
    raw = tmp_path / "data" / "raw"
    rows = list(csv.reader((raw / "skipped.csv").open()))
    assert rows[0] == ["path", "problem"] and len(rows) == 2
    assert rows[1][0] == bad.as_posix()
    assert "truncated" in rows[1][1]
    with ClipStore(raw / "dataset") as store:
        assert "yes/ffffffff_nohash_0.wav" not in store.names
    assert info["skipped"] == 1 and info["counts"]["yes"] == 2

    with pytest.raises(WavError) as caught:
        _raw(tmp_path, "dir", dir=str(source_dir), on_bad_file="error")
    assert caught.value.path == bad.as_posix()
    assert not raw.exists()


def test_dir_source_runs_on_the_shared_real_clips(tmp_path, shared_mini):
    info = _raw(tmp_path, "dir", dir=str(shared_mini))
    assert info["skipped"] == 0
    assert len(info["counts"]) == 36 and info["counts"]["_background_noise_"] >= 1
    some = sorted((shared_mini / "yes").glob("*.wav"))[0]
    with ClipStore(tmp_path / "data" / "raw" / "dataset") as store:
        assert (
            store.wav_bytes(f"yes/{some.name}")[44:] == some.read_bytes()[44:]
        )  # the same samples
        assert len(store) == sum(info["counts"].values())


# ------------------------------------------------------------------ main and embedded


def test_main_reads_params_and_generates_the_embedded_set(tmp_path):
    params = read_yaml((REPO_ROOT / "params.yaml").read_text())
    params["data"]["embedded"].update(
        speakers=1,
        takes=1,
        noise_seconds=1.5,
        seed=3,
        pico_speakers=1,
        kokoro_speakers=0,
        piper_speakers=0,
        hibari_speakers=0,
    )
    params["features"]["sample_rate"] = 8000
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))
    out = tmp_path / "raw"

    assert (
        main(["--params", str(params_path), "--out", str(out), "--cache-dir", str(tmp_path / "c")])
        == 0
    )

    info = json.loads((out / "source.json").read_text())
    assert info["source"] == "embedded" and info["embedded"]["seed"] == 3
    # One espeak-ng and one SVOX Pico speaker, both at the features' sample rate.
    assert info["counts"]["_background_noise_"] == 4 and info["counts"]["marvin"] == 2
    assert info["embedded"]["pico_speakers"] == 1 and len(info["pico_speakers"]) == 1
    with ClipStore(out / "dataset") as store:
        assert store.sample_rate == 8000
        assert [len(store.read(clip.name)) for clip in store.of_word("yes")] == [8000, 8000]


def test_main_speaks_the_wanted_phrases_and_records_only_changed_settings(tmp_path):
    # From the schema's defaults, not params.yaml (whose default model changes some of them).
    params = defaults()
    params["data"]["embedded"].update(
        speakers=1, takes=1, noise_seconds=1.5, seed=3, unknown_words=["cat"]
    )
    params["split"]["wanted_words"] = ["lights on", "hey nova"]
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))
    out = tmp_path / "raw"

    argv = ["--params", str(params_path), "--out", str(out), "--cache-dir", str(tmp_path / "c")]
    assert main(argv) == 0

    info = json.loads((out / "source.json").read_text())
    assert {k: n for k, n in info["counts"].items() if k != "_background_noise_"} == {
        "cat": 1,
        "hey_nova": 1,
        "lights_on": 1,
    }
    # The settings always recorded, and of the others only those not at their default.
    assert info["embedded"] == dict(
        speakers=1, takes=1, noise_seconds=1.5, seed=3, unknown_words=["cat"]
    )


def test_main_refuses_a_bad_language_in_one_line_and_writes_nothing(tmp_path):
    params = read_yaml((REPO_ROOT / "params.yaml").read_text())
    params["data"]["embedded"].update(speakers=1, noise_seconds=1.5, language="klingon")
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))
    out = tmp_path / "raw"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.download", "--params", str(params_path)]
        + ["--out", str(out), "--cache-dir", str(tmp_path / "c")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "error [pipeline.stages.download]: data.embedded.language 'klingon' is not an espeak-ng "
        "language of the espeakng-loader wheel ("
    )
    assert "e.g. de, en, en-us, es, fr, hi" in line
    assert not out.exists() and not list(tmp_path.glob("raw*"))
