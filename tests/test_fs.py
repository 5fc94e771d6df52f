"""Atomic outputs (pipeline/core/fs.py): modes that follow the umask, stale temporaries of killed
writers, a named error for an output path that cannot be a file, and for a full disk."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import StageError
from pipeline.core.fs import (
    atomic_dir,
    atomic_write_bytes,
    atomic_write_json,
    remove_stale_temporaries,
)
from pipeline.core.npy import NpyWriter
from pipeline.tools.evaluate_dir import main as evaluate_dir_main
from tests.conftest import REPO_ROOT


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Run the test body under a given umask; restore the old one afterwards."""
    saved = os.umask(0o022)
    yield lambda value: os.umask(value)
    os.umask(saved)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_outputs_get_the_modes_of_ordinary_files_under_the_umask(tmp_path, umask, mask):
    umask(mask)
    atomic_write_json(tmp_path / "metrics" / "train.json", {"accuracy": 1.0})
    with atomic_dir(tmp_path / "data" / "raw") as tmp:
        atomic_write_bytes(tmp / "dataset" / "yes" / "a.wav", b"RIFF")
    with open(
        tmp_path / "ordinary.txt", "w", encoding="utf-8"
    ) as handle:  # what a plain write gives
        handle.write("x")
    (tmp_path / "ordinary").mkdir()

    assert (
        mode(tmp_path / "metrics" / "train.json")
        == 0o666 & ~mask
        == mode(tmp_path / "ordinary.txt")
    )
    assert mode(tmp_path / "data" / "raw") == 0o777 & ~mask == mode(tmp_path / "ordinary")
    assert mode(tmp_path / "data" / "raw" / "dataset" / "yes" / "a.wav") == 0o666 & ~mask


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_only_the_targets_own_temporaries_of_dead_writers_are_stale(tmp_path):
    dead = _dead_pid()
    names = {
        f".raw.{dead}.abc_0123.tmp": True,  # killed writer of data/raw
        ".raw.k2j4h5g6.tmp": True,  # left by an older version (mkdtemp, no pid)
        f".raw.{os.getpid()}.abcdefgh.tmp": False,  # a writer that still runs
        f".raw.json.{dead}.abcdefgh.tmp": False,  # data/raw.json's
        f".rawer.{dead}.abcdefgh.tmp": False,  # data/rawer's
        f".split.{dead}.abcdefgh.tmp": False,
        ".raw.notes.tmp": False,  # not a name atomic writes make
        "raw.abcdefgh.tmp": False,
    }
    for name in names:
        (tmp_path / name).mkdir()
    (tmp_path / f".raw.{dead}.abcdefgh.tmp").write_text("half a file")

    removed = remove_stale_temporaries(tmp_path / "raw")

    stale = sorted([n for n, is_stale in names.items() if is_stale] + [f".raw.{dead}.abcdefgh.tmp"])
    assert sorted(p.name for p in removed) == stale
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        n for n, s in names.items() if not s
    )


def test_any_stage_start_removes_the_temporaries_that_killed_stages_left(tmp_path):
    """A killed freeze leaves models/.export.<pid>.<random>.tmp, and DVC may restore freeze from
    its run cache without running it: the next start of any stage removes it. Temporaries of
    running writers, names without a pid and files inside outputs stay."""
    dead, live = _dead_pid(), os.getpid()
    stale = [
        f"models/.export.{dead}.abcdefgh.tmp",
        f"data/.features.{dead}.a1_b2c3d.tmp",
        f"metrics/.export.json.{dead}.abcdefgh.tmp",
        f"models/checkpoints/.ckpt-00000040.npz.{dead}.abcdefgh.tmp",
        f".cache/downloads/.archive.tar.gz.{dead}.abcdefgh.tmp",
    ]
    kept = [
        f"models/.export.{live}.abcdefgh.tmp",  # its writer runs
        "models/.export.k2j4h5g6.tmp",  # no pid: left to the next write of models/export
        f"models/export/.labels.txt.{dead}.abcdefgh.tmp",  # inside an output: DVC's business
        "data/raw.tmp",
    ]
    for name in stale + kept:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"half an export")
    (tmp_path / stale[0]).unlink()
    (tmp_path / stale[0]).mkdir()
    (tmp_path / stale[0] / "model_float.tflite").write_bytes(b"TFL3")

    result = subprocess.run(  # another stage; it fails at once (no params.yaml), after the sweep
        [sys.executable, "-m", "pipeline.stages.split"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "params.yaml" in result.stderr, result.stderr[-3000:]
    assert [name for name in stale if (tmp_path / name).exists()] == []
    assert [name for name in kept if not (tmp_path / name).exists()] == []
    for name in stale:
        assert f"removed {name}, left by a stage that was killed" in result.stderr


def test_atomic_writes_remove_their_targets_stale_temporaries(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".model.json.{dead}.abcdefgh.tmp").write_text("{")
    (tmp_path / f".features.{dead}.abcdefgh.tmp").mkdir()
    (tmp_path / f".features.{dead}.abcdefgh.tmp" / "train.npz").write_bytes(b"PK")
    atomic_write_json(tmp_path / "model.json", {})
    with atomic_dir(tmp_path / "features") as tmp:
        (tmp / "labels.txt").write_text("yes\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features", "model.json"]


def test_a_file_output_that_is_a_folder_is_a_named_error(tmp_path):
    (tmp_path / "results").mkdir()
    with pytest.raises(StageError, match=r"results: is a folder; give the path of a file"):
        atomic_write_json(tmp_path / "results", {})
    (tmp_path / "plain").write_text("x")
    with pytest.raises(
        StageError, match=r"plain/out.json: cannot write there, .*plain is not a folder"
    ):
        atomic_write_bytes(tmp_path / "plain" / "out.json", b"{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "results"]


def test_a_tool_given_a_folder_for_its_output_names_it(tmp_path, shared_pretrained):
    from tests.conftest import make_dataset

    data = make_dataset(tmp_path / "data", words=("yes",), speakers=1, noise_seconds=1.0)
    (tmp_path / "out").mkdir()
    with pytest.raises(StageError, match="out: is a folder"):
        evaluate_dir_main(
            [
                "--model",
                str(shared_pretrained / "conv_actions_frozen.pb"),
                "--data-dir",
                str(data),
                "--json",
                str(tmp_path / "out"),
            ]
        )


FULL_DISK = Path("/dev/full")  # every write to it fails with ENOSPC, as on a full disk


@pytest.mark.skipif(not FULL_DISK.exists(), reason="no /dev/full on this system")
def test_a_full_disk_under_the_npy_writer_is_one_named_line():
    full = r"^/dev/full: cannot write \(No space left on device\)$"
    with pytest.raises(StageError, match=full), NpyWriter(FULL_DISK, "<f4", (3,)) as writer:
        writer.append(np.zeros((4, 3), np.float32))


@pytest.mark.skipif(not FULL_DISK.exists(), reason="no /dev/full on this system")
def test_a_full_disk_inside_an_atomic_folder_names_the_output_and_leaves_nothing(tmp_path):
    out = tmp_path / "data" / "features"
    with pytest.raises(StageError) as caught, atomic_dir(out) as tmp:
        (tmp / "train").mkdir()
        (tmp / "train" / "x.npy").symlink_to(FULL_DISK)  # this file's disk is full
        with NpyWriter(tmp / "train" / "x.npy", "<f4", (3,)) as writer:
            writer.append(np.zeros((4, 3), np.float32))
    assert str(caught.value) == f"{out}/train/x.npy: cannot write (No space left on device)"
    assert list((tmp_path / "data").iterdir()) == []

    # A plain write: the OSError names no file, the error names the output folder.
    with pytest.raises(StageError) as caught, atomic_dir(out) as tmp:
        (tmp / "model.tflite").symlink_to(FULL_DISK)
        (tmp / "model.tflite").write_bytes(b"TFL3" * 1024)
    assert str(caught.value) == f"{out}: cannot write (No space left on device)"
    assert list((tmp_path / "data").iterdir()) == []
