"""The download stage: URL (local HTTP server with Range support), archive, dir and embedded
sources, checksums, resume, hostile archives and atomicity."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.core.audio import read_wav, write_wav
from pipeline.core.clip import ClipFormat
from pipeline.core.errors import StageError, WavError
from pipeline.core.schema import read_yaml
from pipeline.data.archive import extract
from pipeline.data.config import DataConfig, EmbeddedConfig
from pipeline.data.fetch import fetch
from pipeline.data.sources import build_raw
from pipeline.stages.download import main
from tests.conftest import REPO_ROOT, make_dataset

WORDS = ("yes", "no", "cat")


# ------------------------------------------------------------------ fixtures and helpers


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Requests to 127.0.0.1 must not go through a proxy configured in the environment."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range: bytes=N-``; can cut the first response."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        server = self.server
        server.requests.append({"path": self.path, "range": self.headers.get("Range")})
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start, status = 0, 200
        header = self.headers.get("Range")
        if header:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416, "Range Not Satisfiable")
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        payload = body[start:]
        if server.cut_next > 0:  # promise everything, send half, drop the connection
            server.cut_next -= 1
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)


@pytest.fixture
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.files, server.requests, server.cut_next = {}, [], 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
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
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.wav"))}


@pytest.fixture
def source_dir(tmp_path) -> Path:
    return make_dataset(tmp_path / "src", words=WORDS, speakers=2, noise_seconds=1.5)


def _raw(tmp_path, source, cache_dir=None, retries=3, sample_rate=16000, clip_duration_ms=1000,
         **data):
    """build_raw with ``data`` overriding the default data section."""
    if "embedded" in data:
        data["embedded"] = EmbeddedConfig(**data["embedded"])
    config = DataConfig(source=source, **data)
    clip = ClipFormat(sample_rate=sample_rate, clip_duration_ms=clip_duration_ms)
    return build_raw(tmp_path / "data" / "raw", config, clip, cache_dir or tmp_path / "cache",
                     progress=False, retries=retries)


# ------------------------------------------------------------------ url source


def test_url_download_materialises_the_training_layout(tmp_path, http_server, source_dir):
    tarball = _tarball(source_dir)
    http_server.files["/speech.tar.gz"] = tarball
    url = http_server.url + "/speech.tar.gz"

    info = _raw(tmp_path, "url", url=url)

    raw = tmp_path / "data" / "raw"
    assert _files(raw / "dataset") == _files(source_dir)
    recorded = json.loads((raw / "source.json").read_text())
    assert recorded == info
    assert recorded["source"] == "url" and recorded["url"] == url
    assert recorded["sha256"] == hashlib.sha256(tarball).hexdigest()
    assert recorded["counts"] == {"_background_noise_": 2, "cat": 2, "no": 2, "yes": 2}
    assert (raw / "skipped.csv").read_text() == "path,problem\n"
    assert [r["range"] for r in http_server.requests] == [None]
    # The archive stays in the download cache (outside data/raw) and is reused.
    assert list((tmp_path / "cache").iterdir())[0].read_bytes() == tarball
    _raw(tmp_path, "url", url=url, sha256=hashlib.sha256(tarball).hexdigest())
    assert len(http_server.requests) == 1


@pytest.mark.parametrize("wrap", ["speech_commands", "."])
def test_wrapping_folder_or_dot_prefix_is_accepted(tmp_path, http_server, source_dir, wrap):
    http_server.files["/wrapped.tgz"] = _tarball(source_dir, wrap=wrap)
    _raw(tmp_path, "url", url=http_server.url + "/wrapped.tgz")
    assert _files(tmp_path / "data" / "raw" / "dataset") == _files(source_dir)


def test_cut_connection_is_resumed_with_a_range_request(tmp_path, http_server, source_dir):
    tarball = _tarball(source_dir)
    http_server.files["/speech.tar.gz"] = tarball
    http_server.cut_next = 1

    path, digest = fetch(http_server.url + "/speech.tar.gz", tmp_path / "cache", retries=2,
                         backoff_s=0, progress=False)

    assert path.read_bytes() == tarball and digest == hashlib.sha256(tarball).hexdigest()
    assert len(http_server.requests) == 2
    assert http_server.requests[0]["range"] is None
    assert http_server.requests[1]["range"] == f"bytes={len(tarball) // 2}-"


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


def test_connection_failure_says_how_to_resume(tmp_path):
    import socket

    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StageError, match="cannot connect.*run the stage again to resume"):
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
    assert not (tmp_path / "escaped.wav").exists() and not (tmp_path / "data" / "escaped.wav").exists()


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

    info = _raw(tmp_path, "dir", dir=str(source_dir), test_set="official", test_set_source=str(official))

    raw = tmp_path / "data" / "raw"
    assert _files(raw / "dataset") == _files(source_dir)
    assert not (raw / "dataset" / "yes" / "notes.txt").exists()
    assert _files(raw / "official_test") == _files(official)
    assert info["official_test"]["counts"] == {"_silence_": 1, "_unknown_": 1, "yes": 1}
    assert info["dir"] == str(source_dir) and len(info["sha256"]) == 64


def test_bad_clips_are_skipped_and_reported_or_stop_the_stage(tmp_path, source_dir):
    write_wav(source_dir / "yes" / "ffffffff_nohash_0.wav", np.zeros(8000), 8000)
    info = _raw(tmp_path, "dir", dir=str(source_dir), on_bad_file="skip")
    raw = tmp_path / "data" / "raw"
    rows = list(csv.reader((raw / "skipped.csv").open()))
    assert rows[0] == ["path", "problem"] and len(rows) == 2
    assert rows[1][0] == (raw / "dataset" / "yes" / "ffffffff_nohash_0.wav").as_posix()
    assert "8000" in rows[1][1]
    assert not (raw / "dataset" / "yes" / "ffffffff_nohash_0.wav").exists()
    assert info["skipped"] == 1 and info["counts"]["yes"] == 2

    with pytest.raises(WavError) as caught:
        _raw(tmp_path, "dir", dir=str(source_dir), on_bad_file="error")
    assert caught.value.path == (raw / "dataset" / "yes" / "ffffffff_nohash_0.wav").as_posix()
    assert not raw.exists()


def test_dir_source_runs_on_the_shared_real_clips(tmp_path, shared_mini):
    info = _raw(tmp_path, "dir", dir=str(shared_mini))
    assert info["skipped"] == 0
    assert len(info["counts"]) == 36 and info["counts"]["_background_noise_"] >= 1
    some = sorted((shared_mini / "yes").glob("*.wav"))[0]
    assert (tmp_path / "data" / "raw" / "dataset" / "yes" / some.name).read_bytes() == some.read_bytes()


# ------------------------------------------------------------------ main and embedded


def test_main_reads_params_and_generates_the_embedded_set(tmp_path):
    params = read_yaml((REPO_ROOT / "params.yaml").read_text())
    params["data"]["embedded"].update(speakers=1, takes=1, noise_seconds=1.5, seed=3)
    params["features"]["sample_rate"] = 8000
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))
    out = tmp_path / "raw"

    assert main(["--params", str(params_path), "--out", str(out), "--cache-dir", str(tmp_path / "c")]) == 0

    info = json.loads((out / "source.json").read_text())
    assert info["source"] == "embedded" and info["embedded"]["seed"] == 3
    assert info["counts"]["_background_noise_"] == 4 and info["counts"]["marvin"] == 1
    clip = next((out / "dataset" / "yes").glob("*.wav"))
    assert len(read_wav(clip, 8000)) == 8000  # generated at features.sample_rate
