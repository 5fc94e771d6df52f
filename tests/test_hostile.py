"""Hostile and broken input to the download stage (issue 12): zip link chains, damaged archives,
size limits, long clips, names that are not UTF-8, unreadable files and link loops.

Every case builds its own input; each asserts the named error (or the listed skip), and that
nothing was written outside the target and no data/raw was left behind. A seeded generator
builds hundreds of random hostile archives (link chains of random depth and direction, random
corruption) and checks that extraction gives exactly the clean members or refuses.
"""

from __future__ import annotations

import builtins
import csv
import functools
import gzip
import io
import logging
import os
import random
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.core.audio import encode_wav, write_wav
from pipeline.core.clip import ClipFormat
from pipeline.core.errors import StageError, WavError
from pipeline.core.schema import read_yaml
from pipeline.data.acquire.archive import MB, Limits, extract
from pipeline.data.acquire.sources import build_raw
from pipeline.data.acquire.validate import validate_dataset
from pipeline.data.config import DataConfig
from tests.conftest import REPO_ROOT, make_dataset

RATE = 16000
CLIP = encode_wav(np.zeros(RATE, np.float32), RATE)


# ------------------------------------------------------------------ helpers


def snapshot(root: Path, skip: Path | None = None) -> dict[str, bytes | str]:
    """Every path under ``root`` (outside ``skip``) with its content or link target."""
    found: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if skip is not None and (here == skip or skip in here.parents):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = here / name
            key = os.fsencode(path.relative_to(root)).decode("utf-8", "backslashreplace")
            if path.is_symlink():
                found[key] = "-> " + os.readlink(path)
            elif path.is_file():
                found[key] = path.read_bytes()
            else:
                found[key] = "dir"
    return found


def tree(dest: Path) -> dict[str, bytes]:
    """The regular files under ``dest``; fails on anything that is neither file nor folder."""
    files = {}
    for path in sorted(dest.rglob("*")):
        mode = os.lstat(path).st_mode
        assert stat.S_ISREG(mode) or stat.S_ISDIR(mode), f"{path} is neither a file nor a folder"
        if stat.S_ISREG(mode):
            files[path.relative_to(dest).as_posix()] = path.read_bytes()
    return files


def zip_link(zf: zipfile.ZipFile, name: str, target: str) -> None:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, target)


def tar_bytes(members, compress: bool = True) -> bytes:
    """members: (name, bytes) files, (name, "->", target) symlinks, (name, "=>", target) hard
    links, (name, "/") folders."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as tar:
        for member in members:
            info = tarfile.TarInfo(member[0])
            if len(member) == 3:
                info.type = tarfile.SYMTYPE if member[1] == "->" else tarfile.LNKTYPE
                info.linkname = member[2]
                tar.addfile(info)
            elif member[1] == "/":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(member[1])
                tar.addfile(info, io.BytesIO(member[1]))
    return buffer.getvalue()


def zip_bytes(members) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for member in members:
            if len(member) == 3:
                zip_link(zf, member[0], member[2])
            elif member[1] == "/":
                zf.writestr(member[0].rstrip("/") + "/", b"")
            else:
                zf.writestr(member[0], member[1])
    return buffer.getvalue()


def raw(tmp_path, archive: Path, **data):
    """build_raw for ``data.source: archive`` into tmp_path/project/data/raw."""
    config = DataConfig(source="archive", archive=str(archive), **data)
    out = tmp_path / "project" / "data" / "raw"
    return build_raw(
        out,
        config,
        ClipFormat(sample_rate=RATE, clip_duration_ms=1000),
        tmp_path / "cache",
        progress=False,
    )


def refused(tmp_path, archive: Path, match: str, **data) -> str:
    """The StageError message of a refused archive; asserts no data/raw and nothing outside."""
    before = snapshot(tmp_path)
    with pytest.raises(StageError, match=match) as caught:
        raw(tmp_path, archive, **data)
    assert not (tmp_path / "project" / "data" / "raw").exists()
    after = snapshot(tmp_path)
    assert after == before or set(after) - set(before) <= {"project", "project/data"}
    message = str(caught.value)
    assert str(archive) in message and "\n" not in message
    return message


# ------------------------------------------------------------------ 1. zip link chains


CHAINS = {
    # the chain: each link checked as text stays inside, together they climb out
    "issue": [("a", "->", "."), ("a/b", "->", ".."), ("a/b/c", "->", ".."), ("a/b/c/x.wav", CLIP)],
    "longer": [
        ("a", "->", "."),
        ("a/b", "->", "."),
        ("a/b/c", "->", ".."),
        ("a/b/c/d", "->", ".."),
        ("a/b/c/d/e", "->", ".."),
        ("a/b/c/d/e/etc/x.wav", CLIP),
    ],
    "file then link": [("yes/x.wav", CLIP), ("a", "->", "yes"), ("a/x.wav", CLIP)],
    "sibling": [("w", "->", "yes"), ("w/y.wav", CLIP)],
}


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_members_below_link_chains_are_refused_and_nothing_lands_outside(tmp_path, fmt, chain):
    members = [("yes/a_nohash_0.wav", CLIP), *CHAINS[chain]]
    archive = tmp_path / f"chain.{fmt}"
    archive.write_bytes(zip_bytes(members) if fmt == "zip" else tar_bytes(members))
    message = refused(tmp_path, archive, "refusing the archive")
    assert "lies below the link member" in message


def test_a_link_to_a_file_inside_becomes_a_copy_never_a_link(tmp_path):
    members = [
        ("yes/a.wav", b"RIFF-a"),
        ("no/b.wav", "->", "../yes/a.wav"),
        ("no/c.wav", "->", "b.wav"),
        ("up/d.wav", "->", "../no/c.wav"),
    ]
    for fmt, data in (("zip", zip_bytes(members)), ("tar", tar_bytes(members, compress=False))):
        archive = tmp_path / f"links.{fmt}"
        archive.write_bytes(data)
        extract(archive, tmp_path / fmt)
        assert tree(tmp_path / fmt) == {
            "yes/a.wav": b"RIFF-a",
            "no/b.wav": b"RIFF-a",
            "no/c.wav": b"RIFF-a",
            "up/d.wav": b"RIFF-a",
        }


def test_tar_hard_links_resolve_from_the_archive_root(tmp_path):
    archive = tmp_path / "hard.tar.gz"
    archive.write_bytes(tar_bytes([("yes/a.wav", b"RIFF-a"), ("no/b.wav", "=>", "yes/a.wav")]))
    extract(archive, tmp_path / "out")
    assert tree(tmp_path / "out") == {"yes/a.wav": b"RIFF-a", "no/b.wav": b"RIFF-a"}


@pytest.mark.skipif(not (shutil.which("tar") and shutil.which("zip")), reason="needs tar and zip")
def test_links_in_archives_made_by_tar_and_zip_become_copies(tmp_path):
    """What the usual tools write (GNU tar: symlink and hard link members, gz/bz2/xz and pax;
    Info-ZIP with -y: a symlink member) extracts to regular files."""
    src = tmp_path / "src" / "speech"
    (src / "yes").mkdir(parents=True)
    (src / "no").mkdir()
    (src / "yes" / "a.wav").write_bytes(CLIP)
    (src / "no" / "b.wav").symlink_to("../yes/a.wav")
    os.link(src / "yes" / "a.wav", src / "no" / "hard.wav")
    commands = {
        "t.zip": ["zip", "-qry"],
        "t.tgz": ["tar", "czf"],
        "t.tbz": ["tar", "cjf"],
        "t.txz": ["tar", "cJf"],
        "pax.tgz": ["tar", "--format=posix", "-czf"],
    }
    for name, command in commands.items():
        subprocess.run([*command, str(tmp_path / name), "speech"], cwd=src.parent, check=True)
        extract(tmp_path / name, tmp_path / f"out-{name}")
        assert tree(tmp_path / f"out-{name}") == {
            "speech/yes/a.wav": CLIP,
            "speech/no/b.wav": CLIP,
            "speech/no/hard.wav": CLIP,
        }, name


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(
    "links, problem",
    [
        ([("no/a.wav", "->", "b.wav"), ("no/b.wav", "->", "a.wav")], "loops"),
        ([("no/a.wav", "->", "a.wav")], "loops"),
        ([("no/a.wav", "->", "../missing.wav")], "which is not a file in the archive"),
        ([("no/a.wav", "->", "../yes")], "link to a folder"),
        ([("no/a.wav", "->", "../yes/x.wav/y")], "through the file"),
        (
            [("no/a.wav", "->", "../nothing/../yes/x.wav")],
            "through 'nothing', which is not in the archive",
        ),
        ([("no/a.wav", "->", "../../outside.wav")], "pointing outside the archive"),
        (
            [("no/a.wav", "->", "b.wav"), ("no/b.wav", "->", "../../x.wav")],
            "pointing outside the archive",
        ),
        ([("l", "->", "."), ("no/a.wav", "->", "../l/../../x.wav")], "link to a folder"),
        ([("no/a.wav", "->", "/etc/passwd")], "absolute path"),
        ([("yes/x.wav", "->", "../yes/x.wav")], "appears twice"),
    ],
)
@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_bad_links_are_refused_by_name(tmp_path, fmt, links, problem):
    members = [("yes/x.wav", CLIP), *links]
    archive = tmp_path / f"links.{fmt}"
    archive.write_bytes(zip_bytes(members) if fmt == "zip" else tar_bytes(members))
    message = refused(tmp_path, archive, problem)
    assert repr(links[-1][0]) in message or repr(links[0][0]) in message


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(
    "members, problem",
    [
        ([("yes/x.wav", CLIP), ("yes/x.wav", CLIP)], "appears twice"),
        ([("yes", CLIP), ("yes/x.wav", CLIP)], "lies below the file member"),
        ([("yes/x.wav", CLIP), ("yes", CLIP)], "other members lie below it"),
        ([("yes/x.wav", CLIP), ("yes/x.wav", "/")], "appears twice"),
    ],
)
@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_clashing_names_are_named_errors_not_tracebacks(tmp_path, fmt, members, problem):
    archive = tmp_path / f"clash.{fmt}"
    archive.write_bytes(zip_bytes(members) if fmt == "zip" else tar_bytes(members))
    refused(tmp_path, archive, problem)


def test_a_zip_member_name_that_claims_utf8_but_is_not_is_a_damaged_archive(tmp_path):
    data = bytearray(zip_bytes([("yes/ab_nohash_0.wav", CLIP)]))
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # set the UTF-8 flag, then break the name
        at = data.index(sig)
        flags_at = at + (6 if sig == b"PK\x03\x04" else 8)
        data[flags_at] |= 0x00
        data[flags_at + 1] |= 0x08
        name_at = data.index(b"yes/ab", at)
        data[name_at + 4 : name_at + 6] = b"\xff\xfe"
    archive = tmp_path / "names.zip"
    archive.write_bytes(bytes(data))
    refused(tmp_path, archive, "damaged or truncated archive")


# ------------------------------------------------------------------ 2. damaged archives


def _clips_tar(n=20, compress=True) -> bytes:
    rng = np.random.default_rng(0)
    members = [
        (
            f"yes/{i:08x}_nohash_0.wav",
            encode_wav(rng.uniform(-0.5, 0.5, RATE).astype(np.float32), RATE),
        )
        for i in range(n)
    ]
    return tar_bytes(members, compress)


def _header_offset(tar: bytes, index: int) -> int:
    with tarfile.open(fileobj=io.BytesIO(tar)) as handle:
        return handle.getmembers()[index].offset


def test_zeroed_bytes_in_the_middle_of_a_tar_gz_are_an_error(tmp_path):
    data = bytearray(_clips_tar())
    middle = len(data) // 2
    data[middle : middle + 4] = bytes(4)
    archive = tmp_path / "zeroed.tar.gz"
    archive.write_bytes(bytes(data))
    refused(tmp_path, archive, "damaged or truncated archive")


def test_a_garbage_member_header_in_the_middle_is_an_error(tmp_path):
    tar = bytearray(_clips_tar(compress=False))
    at = _header_offset(bytes(tar), 10)
    tar[at : at + 512] = random.Random(1).randbytes(512)
    archive = tmp_path / "garbage.tar.gz"
    archive.write_bytes(gzip.compress(bytes(tar)))
    message = refused(tmp_path, archive, "damaged or truncated archive")
    assert f"damaged member header at byte {at}" in message


def test_a_zeroed_member_header_is_an_error_not_an_early_end(tmp_path):
    tar = bytearray(_clips_tar(compress=False))
    at = _header_offset(bytes(tar), 7)
    tar[at : at + 512] = bytes(512)  # reads as the end-of-archive marker; clips follow it
    archive = tmp_path / "early_end.tar"
    archive.write_bytes(bytes(tar))
    refused(tmp_path, archive, "data after the end-of-archive marker")


@pytest.mark.parametrize("cut", ["at a header", "inside a header", "inside data", "gzip tail"])
def test_truncated_archives_are_errors(tmp_path, cut):
    tar = _clips_tar(compress=False)
    at = _header_offset(tar, 5)
    data = {
        "at a header": tar[:at],
        "inside a header": tar[: at + 100],
        "inside data": tar[: at + 2000],
    }.get(cut)
    if data is None:
        data = gzip.compress(tar)[:-6]
    archive = tmp_path / ("cut.tar.gz" if cut == "gzip tail" else "cut.tar")
    archive.write_bytes(data)
    refused(tmp_path, archive, "damaged or truncated archive")


@pytest.mark.parametrize("compression", ["bz2", "xz"])
def test_damaged_bz2_and_xz_tarballs_are_errors(tmp_path, compression):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as tar:
        tar.addfile(tarfile.TarInfo("yes/empty.wav"), io.BytesIO())
        for i in range(5):
            data = random.Random(i).randbytes(5000)
            info = tarfile.TarInfo(f"yes/{i}_nohash_0.wav")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    good = tmp_path / f"good.tar.{compression}"
    good.write_bytes(buffer.getvalue())
    extract(good, tmp_path / "out")
    assert len(tree(tmp_path / "out")) == 6
    damaged = bytearray(buffer.getvalue())
    damaged[len(damaged) // 2] ^= 0x55
    archive = tmp_path / f"damaged.tar.{compression}"
    archive.write_bytes(bytes(damaged))
    refused(tmp_path, archive, "damaged or truncated archive")


def test_trailing_garbage_after_the_gzip_stream_is_an_error(tmp_path):
    archive = tmp_path / "trailing.tar.gz"
    archive.write_bytes(_clips_tar(3) + b"garbage")
    refused(tmp_path, archive, "damaged or truncated archive")


def test_a_zip_whose_directory_lists_only_some_members_is_an_error(tmp_path):
    """Cut the central directory's first entry: zipfile would list the others and be happy."""
    data = bytearray(zip_bytes([(f"yes/{i}_nohash_0.wav", CLIP) for i in range(3)]))
    eocd = data.rindex(b"PK\x05\x06")
    size, start = (
        int.from_bytes(data[eocd + 12 : eocd + 16], "little"),
        int.from_bytes(data[eocd + 16 : eocd + 20], "little"),
    )
    second = data.index(b"PK\x01\x02", start + 4)
    data[eocd + 8 : eocd + 12] = (2).to_bytes(2, "little") * 2
    data[eocd + 12 : eocd + 16] = (size - (second - start)).to_bytes(4, "little")
    data[eocd + 16 : eocd + 20] = second.to_bytes(4, "little")
    archive = tmp_path / "partial.zip"
    archive.write_bytes(bytes(data))
    with zipfile.ZipFile(archive) as zf:
        assert len(zf.infolist()) == 2  # what zipfile alone accepts
    refused(tmp_path, archive, "damaged or truncated archive")


def test_a_zip_after_a_stub_extracts_but_a_stub_holding_a_member_is_refused(tmp_path):
    """A self-extractor's stub before the first member is no damage; a local header in it is a
    member the central directory lost."""
    members = [(f"yes/{i}_nohash_0.wav", CLIP) for i in range(2)]
    archive = tmp_path / "stub.zip"
    archive.write_bytes(b"#!/bin/sh\nexit 0\n" + zip_bytes(members))
    extract(archive, tmp_path / "out")
    assert sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.wav")
    ) == [name for name, _ in members]
    lost = tmp_path / "lost.zip"
    lost.write_bytes(b"PK\x03\x04 a member's header" + zip_bytes(members))
    refused(tmp_path, lost, "local header lies before the first member")


def test_a_corrupt_zip_member_is_an_error(tmp_path):
    data = bytearray(
        zip_bytes([("yes/a_nohash_0.wav", encode_wav(np.linspace(-1, 1, RATE), RATE))])
    )
    data[200] ^= 0xFF
    archive = tmp_path / "corrupt.zip"
    archive.write_bytes(bytes(data))
    refused(tmp_path, archive, "damaged or truncated archive")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_damaged_download_is_an_error_and_is_not_kept_in_the_cache(tmp_path, monkeypatch):
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    served = tmp_path / "served"
    served.mkdir()
    good = _clips_tar()
    damaged = bytearray(good)
    damaged[len(damaged) // 2 : len(damaged) // 2 + 4] = bytes(4)
    (served / "speech.tar.gz").write_bytes(bytes(damaged))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = DataConfig(
            source="url", url=f"http://127.0.0.1:{server.server_address[1]}/speech.tar.gz"
        )
        out, cache = tmp_path / "project" / "data" / "raw", tmp_path / "cache"
        clip = ClipFormat(sample_rate=RATE, clip_duration_ms=1000)
        with pytest.raises(
            StageError, match="damaged or truncated archive.*removed from the cache"
        ):
            build_raw(out, config, clip, cache, progress=False)
        assert not out.exists() and list(cache.iterdir()) == []  # nothing half-cached
        (served / "speech.tar.gz").write_bytes(good)  # fixed on the server: the next run fetches it
        info = build_raw(out, config, clip, cache, progress=False)
        assert info["counts"] == {"_background_noise_": 4, "yes": 20}  # noise generated
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ 4. size limits


def test_a_member_beyond_the_size_limit_is_refused_before_it_is_written(tmp_path):
    """The header promises 10 GB that the archive does not hold: writing it would fail with
    'truncated'; the refusal comes first, naming the limit."""
    huge = tarfile.TarInfo("yes/huge_nohash_0.wav")
    huge.size = 10_000 * MB
    head = tar_bytes([("yes/a_nohash_0.wav", CLIP)], compress=False)
    data = head[: 512 + (len(CLIP) + 511) // 512 * 512] + huge.tobuf() + bytes(4096)
    archive = tmp_path / "huge.tar.gz"
    archive.write_bytes(gzip.compress(data))
    message = refused(tmp_path, archive, "data.max_member_mb")
    assert "'yes/huge_nohash_0.wav' is 10000.0 MB, more than the limit of 256 MB" in message


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_members_adding_up_beyond_the_total_limit_are_refused(tmp_path, fmt):
    members = [(f"yes/{i}_nohash_0.wav", bytes(600_000)) for i in range(3)]  # compresses to little
    archive = tmp_path / f"total.{fmt}"
    archive.write_bytes(zip_bytes(members) if fmt == "zip" else tar_bytes(members))
    assert archive.stat().st_size < 100_000
    refused(tmp_path, archive, r"more than the limit of 1 MB \(data.max_total_mb\)", max_total_mb=1)
    with pytest.raises(StageError, match="data.max_member_mb"):
        extract(
            archive, tmp_path / "out", Limits(max_member_bytes=500_000, max_total_bytes=10 * MB)
        )
    assert not (tmp_path / "out").exists()
    extract(archive, tmp_path / "ok", Limits(max_member_bytes=600_000, max_total_bytes=1_800_000))
    assert len(tree(tmp_path / "ok")) == 3


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_an_archive_of_more_members_than_the_limit_is_refused(tmp_path, fmt):
    """Millions of empty files would each become an inode: the count is bounded, files and
    folders alike; a zip is refused before anything is written."""
    members = [("yes", "/"), *[(f"yes/{i}_nohash_0.wav", CLIP) for i in range(5)]]
    archive = tmp_path / f"many.{fmt}"
    archive.write_bytes(zip_bytes(members) if fmt == "zip" else tar_bytes(members))
    message = refused(tmp_path, archive, r"the limit of 5 \(data.max_members\)", max_members=5)
    assert ("it has 6 members" if fmt == "zip" else "it has more members than") in message
    if fmt == "zip":
        with pytest.raises(StageError, match="data.max_members"):
            extract(archive, tmp_path / "out", Limits(max_members=5))
        assert not (tmp_path / "out").exists()
    extract(archive, tmp_path / "ok", Limits(max_members=6))
    assert len([p for p in tree(tmp_path / "ok") if p.endswith(".wav")]) == 5


def test_the_default_limits_are_the_params_defaults():
    assert Limits() == Limits.of(DataConfig())


# ------------------------------------------------------------------ 4, 5. long clips


@pytest.fixture
def words(tmp_path) -> Path:
    root = tmp_path / "words"
    for word in ("yes", "no"):
        for k in range(2):
            write_wav(root / word / f"{word}{k}_nohash_0.wav", np.zeros(RATE), RATE)
    write_wav(
        root / "_background_noise_" / "long_noise.wav", np.zeros(40 * RATE), RATE
    )  # not a clip
    write_wav(root / "yes" / "three_nohash_0.wav", np.zeros(3 * RATE), RATE)
    write_wav(root / "no" / "twelve_nohash_0.wav", np.zeros(12 * RATE), RATE)
    return root


def test_long_clips_are_kept_counted_and_warned_about_by_default(words, caplog):
    caplog.set_level(logging.WARNING)
    (words / "no" / "twelve_nohash_0.wav").unlink()
    write_wav(words / "no" / "two_nohash_0.wav", np.zeros(2 * RATE), RATE)
    rows = validate_dataset(words, RATE, RATE, max_clip_multiple=10)
    assert rows == []
    assert (words / "yes" / "three_nohash_0.wav").exists()
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert "2 clip(s)" in warning and "yes/three_nohash_0.wav of 3.00 s" in warning
    assert "long_noise" not in warning


def test_long_clips_skip_or_error_by_their_own_policy(words):
    (words / "no" / "twelve_nohash_0.wav").unlink()
    with pytest.raises(WavError, match="3.00 s long, longer than one clip") as caught:
        validate_dataset(
            words, RATE, RATE, on_bad_file="skip", on_long_clip="error", max_clip_multiple=10
        )
    assert caught.value.path == "words/yes/three_nohash_0.wav"
    rows = validate_dataset(
        words, RATE, RATE, on_bad_file="error", on_long_clip="skip", max_clip_multiple=10
    )
    assert rows == [
        (
            "yes/three_nohash_0.wav",
            "3.00 s long, longer than one clip (1000 ms) (data.on_long_clip: skip)",
        )
    ]
    assert not (words / "yes" / "three_nohash_0.wav").exists()


def test_warnings_name_the_users_folder_not_the_temporary_one(tmp_path, words, caplog):
    caplog.set_level(logging.WARNING)
    config = DataConfig(source="dir", dir=str(words), on_bad_file="skip")
    out = tmp_path / "data" / "raw"
    info = build_raw(
        out,
        config,
        ClipFormat(sample_rate=RATE, clip_duration_ms=1000),
        tmp_path / "c",
        progress=False,
    )
    assert info["skipped"] == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"skipped 1 bad file(s) of 7 under {words.as_posix()}" in w for w in warnings)
    assert any(
        f"1 clip(s) under {words.as_posix()} are longer than one clip" in w for w in warnings
    )
    assert not any(".tmp" in w for w in warnings), warnings


def test_clips_beyond_the_multiple_are_bad_files(words):
    with pytest.raises(WavError, match=r"12.0 s long, more than 10 clips") as caught:
        validate_dataset(words, RATE, RATE, max_clip_multiple=10)
    assert caught.value.path == "words/no/twelve_nohash_0.wav"
    rows = validate_dataset(words, RATE, RATE, on_bad_file="skip", max_clip_multiple=10)
    assert [r[0] for r in rows] == ["no/twelve_nohash_0.wav"]
    assert (words / "_background_noise_" / "long_noise.wav").exists()


def test_a_clip_inflating_to_a_quarter_hour_in_an_archive_is_a_bad_file(tmp_path):
    """A 15-minute 'clip' in a word folder (29 MB of silence, 30 kB compressed) is never a clip;
    with a lower data.max_member_mb it is not even extracted."""
    frames = 15 * 60 * RATE
    members = [
        ("yes/a_nohash_0.wav", CLIP),
        ("no/b_nohash_0.wav", CLIP),
        ("yes/long_nohash_0.wav", encode_wav(np.zeros(frames, np.float32), RATE)),
    ]
    archive = tmp_path / "long.tar.gz"
    archive.write_bytes(tar_bytes(members))
    with pytest.raises(WavError, match=r"900.0 s long, more than 10 clips") as caught:
        raw(tmp_path, archive)
    assert caught.value.path.endswith("data/raw/dataset/yes/long_nohash_0.wav")
    assert not (tmp_path / "project" / "data" / "raw").exists()
    info = raw(tmp_path, archive, on_bad_file="skip")
    assert info["skipped"] == 1 and info["counts"] == {"_background_noise_": 4, "no": 1, "yes": 1}
    refused(
        tmp_path,
        archive,
        r"'yes/long_nohash_0.wav' is 27.5 MB, more than the limit of 16 MB",
        max_member_mb=16,
    )


# ------------------------------------------------------------------ 6. names, unreadable, loops


@pytest.fixture
def hostile_dir(tmp_path) -> Path:
    root = make_dataset(tmp_path / "src", words=("yes", "no"), speakers=2, noise_seconds=1.5)
    (root / "no" / "loop_a.wav").symlink_to("loop_b.wav")
    (root / "no" / "loop_b.wav").symlink_to("loop_a.wav")
    (root / "no" / "dangling.wav").symlink_to("nowhere.wav")
    (root / "no" / "folder.wav").mkdir()
    (root / os.fsdecode(b"yes/\xff\xfe_nohash_0.wav")).write_bytes(CLIP)
    (root / "yes" / "locked_nohash_0.wav").write_bytes(CLIP)
    return root


@pytest.fixture
def locked(monkeypatch, hostile_dir):
    """yes/locked_nohash_0.wav cannot be read: chmod 000, or (as root, who reads it anyway) an
    open() that fails the way it would."""
    path = hostile_dir / "yes" / "locked_nohash_0.wav"
    path.chmod(0)
    if os.geteuid() == 0:
        real_open = builtins.open

        def refusing_open(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and Path(file) == path:
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refusing_open)
    yield path
    path.chmod(0o644)


SKIPPED = {
    "no/dangling.wav": "a link to nowhere.wav, which does not exist",
    "no/folder.wav": "a folder, not a file",
    "no/loop_a.wav": "a symbolic link loop",
    "no/loop_b.wav": "a symbolic link loop",
    "yes/\\xff\\xfe_nohash_0.wav": "file name is not valid UTF-8 (rename it)",
    "yes/locked_nohash_0.wav": "cannot read: Permission denied",
}


def test_loops_unreadable_files_and_non_utf8_names_are_listed_when_skipped(
    tmp_path, hostile_dir, locked
):
    config = DataConfig(source="dir", dir=str(hostile_dir), on_bad_file="skip")
    out = tmp_path / "data" / "raw"
    info = build_raw(
        out,
        config,
        ClipFormat(sample_rate=RATE, clip_duration_ms=1000),
        tmp_path / "c",
        progress=False,
    )
    rows = list(csv.reader((out / "skipped.csv").open(encoding="utf-8")))
    assert rows[0] == ["path", "problem"]
    assert {path: problem for path, problem in rows[1:]} == {
        f"{hostile_dir.as_posix()}/{name}": problem for name, problem in SKIPPED.items()
    }
    assert (
        info["skipped"] == len(SKIPPED) and info["counts"]["yes"] == 2 and info["counts"]["no"] == 2
    )
    assert all(os.fsencode(p).decode("utf-8") for p in (out / "dataset").rglob("*"))


def test_the_first_of_them_is_named_in_error_mode(tmp_path, hostile_dir, locked):
    config = DataConfig(source="dir", dir=str(hostile_dir))
    out = tmp_path / "data" / "raw"
    with pytest.raises(WavError) as caught:
        build_raw(
            out,
            config,
            ClipFormat(sample_rate=RATE, clip_duration_ms=1000),
            tmp_path / "c",
            progress=False,
        )
    assert caught.value.path == f"{hostile_dir.as_posix()}/no/dangling.wav"
    assert "4 other file(s) are bad too" in str(caught.value)
    assert not out.exists()


def test_a_non_utf8_member_name_in_a_tar_is_a_bad_file(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT, encoding="latin-1"
    ) as tar:
        for name in ("yes/a_nohash_0.wav", "no/b_nohash_0.wav", "yes/\xe9t\xe9_nohash_0.wav"):
            info = tarfile.TarInfo(name)
            info.size = len(CLIP)
            tar.addfile(info, io.BytesIO(CLIP))
    archive = tmp_path / "latin1.tar.gz"
    archive.write_bytes(buffer.getvalue())
    with pytest.raises(WavError, match="not valid UTF-8") as caught:
        raw(tmp_path, archive)
    assert caught.value.path.endswith("yes/\\xe9t\\xe9_nohash_0.wav")
    info = raw(tmp_path, archive, on_bad_file="skip")
    assert info["skipped"] == 1 and info["counts"] == {"_background_noise_": 4, "no": 1, "yes": 1}


# ---------------------------------------------------------- property: random hostile archives


CLEAN_WORDS = ("yes", "no", "up")
DIRECTIONS = (".", "..", "../..", "../../..", "yes", "../yes", "../../no", "x/..", "l0")


def _random_case(rng: random.Random):
    """(format, members, expected files or None for 'must refuse', tar member ranges for
    corruption)."""
    fmt = rng.choice(["zip", "tar.gz", "tar"])
    files = {}
    for word in rng.sample(CLEAN_WORDS, rng.randint(1, 3)):
        for k in range(rng.randint(1, 3)):
            size = rng.randint(1, 3000)
            files[f"{word}/{k}_nohash_0.wav"] = (
                rng.randbytes(size) if rng.random() < 0.5 else bytes(size)
            )
    members = list(files.items())
    expected: dict | None = dict(files)
    hostile = rng.choice(["none", "nested", "flat", "flat"])
    link = "=>" if fmt != "zip" and rng.random() < 0.3 else "->"
    if hostile == "nested":  # l0 -> ?, l0/l1 -> ?, ...: then a file below the chain
        depth = rng.randint(1, 6)
        names = ["/".join(f"l{i}" for i in range(j + 1)) for j in range(depth)]
        members += [(name, "->", rng.choice(DIRECTIONS)) for name in names]
        members.append(
            (
                names[-1]
                + "/"
                + "/".join(rng.choice(["x", "etc", "yes"]) for _ in range(rng.randint(0, 2)))
                + "/evil.wav",
                b"EVIL",
            )
        )
        expected = None
    elif hostile == "flat":  # chain/c0.wav -> c1.wav -> ... -> an end of random direction
        depth = rng.randint(1, 8)
        for i in range(depth - 1):
            target = f"chain/c{i + 1}.wav" if link == "=>" else f"c{i + 1}.wav"
            members.append((f"chain/c{i}.wav", link, target))
        end_kind = rng.choice(["file", "file", "outside", "loop", "missing", "folder", "absolute"])
        some = rng.choice(sorted(files))
        ends = {
            "file": some,
            "outside": "../" * rng.randint(1, 4) + "outside.wav",
            "loop": "chain/c0.wav",
            "missing": "chain/none.wav",
            "folder": some.split("/")[0],
            "absolute": "/tmp/escape.wav",
        }
        end = ends[end_kind]
        if link == "->" and end_kind not in ("absolute",):
            end = "../" + end if end_kind != "loop" else "c0.wav"
            if end_kind == "outside":
                end = ends["outside"]
        members.append((f"chain/c{depth - 1}.wav", link, end))
        if end_kind == "file":
            expected.update({f"chain/c{i}.wav": files[some] for i in range(depth)})
        else:
            expected = None
    rng.shuffle(members)
    return fmt, members, expected


def _corrupt(rng: random.Random, fmt: str, data: bytes) -> bytes:
    """A few bytes zeroed or flipped at a random offset (for a plain tar, in a header block or the
    end marker: a tar keeps no checksum of its data)."""
    data = bytearray(data)
    if fmt == "tar":
        with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
            spans = [(m.offset, m.offset_data) for m in tar.getmembers()]
            last = tar.getmembers()[-1]
            spans.append((last.offset_data + ((last.size + 511) // 512) * 512, len(data)))
        low, high = rng.choice(spans)
        at = rng.randrange(low, high)
    else:
        at = rng.randrange(len(data))
    count = rng.randint(1, 4)
    for i in range(at, min(at + count, len(data))):
        data[i] = 0 if rng.random() < 0.5 else data[i] ^ rng.randint(1, 255)
    return bytes(data)


def test_random_hostile_archives_extract_exactly_the_clean_members_or_are_refused(tmp_path):
    rng = random.Random(20240612)
    box = tmp_path / "box"
    (box / "a" / "b").mkdir(parents=True)
    (box / "sentinel.wav").write_bytes(b"keep")
    outcomes = {"extracted": 0, "refused": 0, "refused corrupt": 0, "extracted corrupt": 0}
    for case in range(250):
        fmt, members, expected = _random_case(rng)
        data = zip_bytes(members) if fmt == "zip" else tar_bytes(members, compress=fmt == "tar.gz")
        corrupt = rng.random() < 0.4
        if corrupt:
            changed = _corrupt(rng, fmt, data)
            corrupt, data = changed != data, changed
        archive = tmp_path / f"case.{fmt}"
        archive.write_bytes(data)
        dest = box / "a" / "b" / "dest"
        before = snapshot(tmp_path, skip=dest)
        try:
            extract(archive, dest)
        except StageError as exc:
            assert str(archive) in str(exc) and "\n" not in str(exc)
            assert not dest.exists(), f"case {case}: a refused archive left {dest}"
            outcomes["refused corrupt" if corrupt else "refused"] += 1
            assert corrupt or expected is None, f"case {case}: a clean archive was refused: {exc}"
        else:
            got = tree(dest)
            assert expected is not None and got == expected, (
                f"case {case} ({fmt}, corrupt={corrupt}): extracted {sorted(got)}, expected "
                f"{None if expected is None else sorted(expected)}; members {_outline(members)}"
            )
            outcomes["extracted corrupt" if corrupt else "extracted"] += 1
            shutil.rmtree(dest)
        assert snapshot(tmp_path, skip=dest) == before, (
            f"case {case}: something was written outside"
        )
    # The generator reaches every outcome (so the property is not vacuous).
    assert (
        outcomes["extracted"] > 30 and outcomes["refused"] > 30 and outcomes["refused corrupt"] > 30
    ), outcomes


def _outline(members) -> list:
    """Members without their contents, for a readable failure message."""
    return [
        m if len(m) == 3 else (m[0], "/" if m[1] == "/" else f"{len(m[1])} bytes") for m in members
    ]


# ------------------------------------------------------------------ end to end: the stage


def _stage_cases(tmp_path: Path) -> dict:
    """name -> (params for data, file the message must name, words it must contain)."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    chain = inputs / "chain.zip"
    chain.write_bytes(zip_bytes([("yes/a_nohash_0.wav", CLIP), *CHAINS["issue"]]))
    zeroed = bytearray(_clips_tar())
    zeroed[len(zeroed) // 2 : len(zeroed) // 2 + 4] = bytes(4)
    (inputs / "zeroed.tar.gz").write_bytes(bytes(zeroed))
    tar = bytearray(_clips_tar(compress=False))
    at = _header_offset(bytes(tar), 10)
    tar[at : at + 512] = random.Random(2).randbytes(512)
    (inputs / "garbage.tar.gz").write_bytes(gzip.compress(bytes(tar)))
    (inputs / "cut.tar.gz").write_bytes(_clips_tar()[:-100])
    (inputs / "big.zip").write_bytes(
        zip_bytes([("yes/a_nohash_0.wav", CLIP), ("yes/b_nohash_0.wav", bytes(2 * MB))])
    )
    long = inputs / "long"
    write_wav(long / "yes" / "a_nohash_0.wav", np.zeros(RATE), RATE)
    write_wav(long / "yes" / "long_nohash_0.wav", np.zeros(3 * RATE), RATE)
    loops = inputs / "loops"
    write_wav(loops / "yes" / "a_nohash_0.wav", np.zeros(RATE), RATE)
    (loops / "yes" / "loop.wav").symlink_to("loop.wav")
    names = inputs / "names"
    write_wav(names / "yes" / "a_nohash_0.wav", np.zeros(RATE), RATE)
    (names / os.fsdecode(b"yes/\xff_nohash_0.wav")).write_bytes(CLIP)
    cases = {}
    if os.geteuid() != 0:  # root reads any file: there the in-process test stands in for this case
        locked = inputs / "locked"
        write_wav(locked / "yes" / "a_nohash_0.wav", np.zeros(RATE), RATE)
        write_wav(locked / "yes" / "b_nohash_0.wav", np.zeros(RATE), RATE)
        (locked / "yes" / "b_nohash_0.wav").chmod(0)
        cases["unreadable file"] = (
            dict(source="dir", dir=str(locked)),
            locked / "yes" / "b_nohash_0.wav",
            "cannot read: Permission denied",
        )
    return cases | {
        "zip link chain": (
            dict(source="archive", archive=str(chain)),
            chain,
            "lies below the link member 'a'",
        ),
        "zeroed tar.gz": (
            dict(source="archive", archive=str(inputs / "zeroed.tar.gz")),
            inputs / "zeroed.tar.gz",
            "damaged or truncated archive",
        ),
        "garbage header": (
            dict(source="archive", archive=str(inputs / "garbage.tar.gz")),
            inputs / "garbage.tar.gz",
            f"damaged member header at byte {at}",
        ),
        "truncated tar.gz": (
            dict(source="archive", archive=str(inputs / "cut.tar.gz")),
            inputs / "cut.tar.gz",
            "damaged or truncated archive (Compressed file ended",
        ),
        "member too big": (
            dict(source="archive", archive=str(inputs / "big.zip"), max_member_mb=1),
            inputs / "big.zip",
            "more than the limit of 1 MB (data.max_member_mb)",
        ),
        "long clip": (
            dict(source="dir", dir=str(long), on_long_clip="error"),
            long / "yes" / "long_nohash_0.wav",
            "3.00 s long, longer than one clip",
        ),
        "link loop": (
            dict(source="dir", dir=str(loops)),
            loops / "yes" / "loop.wav",
            "a symbolic link loop",
        ),
        "non-UTF-8 name": (
            dict(source="dir", dir=str(names)),
            f"{names}/yes/\\xff_nohash_0.wav",
            "file name is not valid UTF-8",
        ),
    }


def test_each_case_through_the_stage_is_one_named_line_and_leaves_nothing(tmp_path):
    cases = _stage_cases(tmp_path)
    params = read_yaml((REPO_ROOT / "params.yaml").read_text())
    inputs_before = snapshot(tmp_path / "inputs")
    failures = []
    for name, (data, named, words) in cases.items():
        project = tmp_path / name.replace(" ", "_")
        project.mkdir()
        case_params = {**params, "data": {**params["data"], **data}}
        (project / "params.yaml").write_text(yaml.safe_dump(case_params))
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.stages.download"],
            cwd=project,
            capture_output=True,
            text=True,
            errors="backslashreplace",
        )
        errors = [line for line in result.stderr.splitlines() if line.startswith("error ")]
        if not (
            result.returncode == 1
            and "Traceback" not in result.stderr
            and len(errors) == 1
            and str(named) in errors[0]
            and words in errors[0]
        ):
            failures.append(f"{name}: rc {result.returncode}\n{result.stderr[-2000:]}")
        if sorted(p.name for p in project.rglob("*")) != ["data", "params.yaml"]:
            failures.append(f"{name}: left {sorted(str(p) for p in project.rglob('*'))}")
    assert not failures, "\n\n".join(failures)
    assert snapshot(tmp_path / "inputs") == inputs_before
