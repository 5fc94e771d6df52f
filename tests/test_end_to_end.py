"""The whole DAG with tiny parameters in a temporary copy of the repository.

This is what a newcomer's `make run` does, shrunk: `dvc repro` runs all eight stages, a second
`dvc repro` does nothing, and `dvc exp run -S train.learning_rate=...` reruns train and what
follows it but not download, split or featurize. Last, CI's rerun (.ci/reproduce) against a
directory remote: pull what is cached, rerun what changed, push, report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.core.schema import read_yaml
from tests.test_own_data import write_recordings

REPO_ROOT = Path(__file__).resolve().parents[1]
STAGES = [
    "download",
    "split",
    "featurize",
    "train",
    "evaluate",
    "freeze",
    "synthesize_stream",
    "stream_eval",
]

pytestmark = pytest.mark.slow


def tiny_params(params: dict) -> dict:
    """The repository's params, shrunk so the whole DAG runs in a minute or two."""
    params["data"]["embedded"].update(
        speakers=20, takes=1, noise_seconds=4, pico_speakers=4, kokoro_speakers=1,
        kokoro_unknown_words=1, piper_speakers=1, hibari_speakers=1,
    )  # fmt: skip
    params["augment"]["copies"] = 1
    params["train"].update(
        how_many_training_steps=[30, 10],
        eval_step_interval=20,
        save_step_interval=20,
        batch_size=32,
    )
    params["stream"]["duration_s"] = 30
    return params


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
        DVC_NO_ANALYTICS="1",
    )
    return env


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        cmd, cwd=cwd, env={**_env(), **(env or {})}, capture_output=True, text=True
    )
    assert result.returncode == 0, (
        f"{' '.join(cmd)} failed ({result.returncode})\n--- stdout\n{result.stdout[-4000:]}"
        f"\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result


def ran_stages(output: str) -> set[str]:
    return {stage for stage in STAGES if f"Running stage '{stage}'" in output}


def copy_repository(work: Path, **data) -> Path:
    """A git + DVC copy of the working tree at ``work`` with tiny params (``data`` overriding the
    data section), committed, not reproduced."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        source = REPO_ROOT / name
        if source.is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / name)
    params_path = work / "params.yaml"
    params = tiny_params(read_yaml(params_path.read_text()))
    params["data"].update(data)
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    for stale in ("metrics", "dvc.lock"):
        if (work / stale).exists():
            shutil.rmtree(work / stale) if (work / stale).is_dir() else (work / stale).unlink()
    run(["git", "init", "-q", "-b", "main"], work)
    run(["git", "add", "-A"], work)
    run(["git", "commit", "-q", "-m", "tiny copy"], work)
    return work


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A git + DVC copy of the working tree with tiny params, reproduced once."""
    work = copy_repository(tmp_path_factory.mktemp("e2e") / "repo")
    result = run(["dvc", "repro"], work)
    assert ran_stages(result.stdout) == set(STAGES), result.stdout[-3000:]
    (work.parent / "repro.log").write_text(result.stdout + result.stderr)
    run(["git", "add", "-A"], work)
    run(["git", "commit", "-q", "-m", "reproduced"], work)
    return work


def test_every_stage_leaves_its_outputs(workdir):
    for path in [
        "data/raw/dataset/audio.npy",
        "data/raw/dataset/index.csv",
        "data/split/train.csv",
        "data/split/test.csv",
        "data/features/train/x.npy",
        "models/keras/model.keras",
        "models/export/labels.txt",
        "models/export/model_float.tflite",
        "models/export/model_int8.tflite",
        "models/export/decoder.json",
        # the default front end (speech embedding) is not TensorFlow ops: a bundle, no SavedModel
        "models/export/bundle.json",
        "data/stream/stream.wav",
        "data/stream/stream_labels.txt",
        "metrics/confusion.csv",
        "metrics/confusion.png",
        "metrics/train_curve.csv",
        "metrics/stream_threshold_sweep.csv",
        "metrics/details/evaluate.json",
        "metrics/details/split.json",
    ]:
        assert (workdir / path).exists(), path
    evaluate = json.loads((workdir / "metrics/evaluate.json").read_text())
    assert 0.0 <= evaluate["accuracy"] <= 1.0
    stream = json.loads((workdir / "metrics/details/stream.json").read_text())
    assert {"matched", "correct", "wrong", "false_positives"} <= set(stream)
    assert {"correct_percentage", "false_alarms_per_hour", "detections_equal"} <= set(
        stream["int8"]
    )  # the int8 model scored on the recording too
    labels = (workdir / "models/export/labels.txt").read_text().split()
    assert labels[:2] == ["_silence_", "_unknown_"] and len(labels) == 12


def test_repro_prints_no_tensorflow_chatter(workdir):
    from tests.test_quiet import NOISE

    output = (workdir.parent / "repro.log").read_text()
    assert not NOISE.search(output), NOISE.search(output).group(0)
    assert "[[" not in output  # no raw matrices
    assert "confusion" in output and "actual \\ predicted" in output


def test_second_repro_is_a_no_op(workdir):
    result = run(["dvc", "repro"], workdir)
    assert ran_stages(result.stdout) == set()
    status = run(["dvc", "status"], workdir)
    assert "changed" not in status.stdout, status.stdout


def test_push_and_pull_through_a_local_remote(workdir, tmp_path):
    """A second clone gets every artifact from a directory remote without recomputing."""
    remote = tmp_path / "dvc-remote"
    run(["dvc", "remote", "add", "--local", "-d", "shared", str(remote)], workdir)
    run(["dvc", "push"], workdir)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(workdir), str(clone)], tmp_path)
    run(["dvc", "remote", "add", "--local", "-d", "shared", str(remote)], clone)
    run(["dvc", "pull"], clone)
    assert (clone / "models/export/model_float.tflite").is_file()
    assert (clone / "data/features/train/x.npy").is_file()
    result = run(["dvc", "repro"], clone)
    assert ran_stages(result.stdout) == set(), result.stdout[-2000:]


def test_experiment_on_learning_rate_reruns_only_train_onwards(workdir):
    rates = read_yaml((workdir / "params.yaml").read_text())["train"]["learning_rate"]
    changed = ",".join(f"{rate * 1.5:g}" for rate in rates)
    result = run(["dvc", "exp", "run", "-S", f"train.learning_rate=[{changed}]"], workdir)
    assert ran_stages(result.stdout) == {"train", "evaluate", "freeze", "stream_eval"}, (
        result.stdout[-3000:]
    )
    params_diff = run(["dvc", "params", "diff", "--json"], workdir)
    assert "train.learning_rate" in params_diff.stdout
    metrics_diff = run(["dvc", "metrics", "diff", "--json"], workdir)
    assert "metrics/train.json" in metrics_diff.stdout


def test_train_depends_only_on_the_options_of_its_own_model(workdir):
    """dvc.yaml's model.${train.model_architecture}: another model's options leave train alone,
    its own options rerun it (and reach the builder)."""
    params_path = workdir / "params.yaml"
    original = params_path.read_text()
    params = read_yaml(original)
    try:
        params["model"]["low_latency_svdf"]["units"] = 640
        params_path.write_text(yaml.safe_dump(params, sort_keys=False))
        assert "changed" not in run(["dvc", "status", "train"], workdir).stdout
        architecture = params["train"]["model_architecture"]
        assert architecture != "low_latency_svdf"
        params["model"][architecture]["channels"] = 16
        params_path.write_text(yaml.safe_dump(params, sort_keys=False))
        status = run(["dvc", "status", "train"], workdir).stdout
        assert f"model.{architecture}" in status, status
        run(["dvc", "repro", "train"], workdir)
        meta = json.loads((workdir / "models/keras/meta.json").read_text())
        assert meta["model_options"]["channels"] == 16
    finally:
        params_path.write_text(original)
        run(["git", "checkout", "--", "dvc.lock", "metrics"], workdir)
        run(["dvc", "checkout", "-f"], workdir)


def test_ci_rerun_pulls_cached_stages_and_reruns_only_train_onwards(workdir, tmp_path):
    """.ci/reproduce, the sequence of the GitHub workflow's reproduce job, against a directory
    remote: clone A reproduces (nothing to do) and pushes; clone B, a branch that changes one
    train param, pulls the rest, reruns only train onwards, pushes, and reports against main."""
    remote = tmp_path / "dvc-remote"
    env = {"DVC_REMOTE_URL": str(remote)}
    clone_a, clone_b = tmp_path / "a", tmp_path / "b"
    run(["git", "clone", "-q", str(workdir), str(clone_a)], tmp_path)
    # A shares the reproduced workdir's cache (as if it had run the DAG itself).
    run(["dvc", "cache", "dir", "--local", str(workdir / ".dvc" / "cache")], clone_a)
    run(["dvc", "checkout", "-q"], clone_a)
    result = run([str(clone_a / ".ci/reproduce")], clone_a, env)
    assert ran_stages(result.stdout) == set(), result.stdout[-3000:]
    assert "within tolerance" in result.stdout or "identical" in result.stdout
    pushed = {p for p in remote.rglob("*") if p.is_file()}
    assert pushed, "clone A pushed nothing"

    run(["git", "clone", "-q", str(workdir), str(clone_b)], tmp_path)
    run(["git", "checkout", "-q", "-b", "faster-lr"], clone_b)
    params_path = clone_b / "params.yaml"
    params = read_yaml(params_path.read_text())
    params["train"]["learning_rate"] = [rate * 1.5 for rate in params["train"]["learning_rate"]]
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "commit", "-q", "-am", "train.learning_rate x1.5"], clone_b)
    result = run(
        [str(clone_b / ".ci/reproduce")],
        clone_b,
        {**env, "BASE": "origin/main", "REPORT": str(tmp_path / "report.md")},
    )
    assert ran_stages(result.stdout) == {"train", "evaluate", "freeze", "stream_eval"}, (
        result.stdout[-3000:]
    )
    # download, split, featurize and synthesize_stream came from the remote, not recomputed.
    for stage in ("download", "split", "featurize", "synthesize_stream"):
        assert f"Stage '{stage}' didn't change, skipping" in result.stdout, stage
    assert (clone_b / "data/features/train/x.npy").is_file()
    assert "not a reproduction: code or params of train differ" in result.stdout
    report = (tmp_path / "report.md").read_text()
    assert "train.learning_rate" in report and "| metric | origin/main | workspace |" in report
    # dvc metrics diff lists the metrics that changed: train's always do with another rate
    # (evaluate's few tiny test clips may keep their accuracy).
    assert "metrics/train.json" in report
    assert {p for p in remote.rglob("*") if p.is_file()} > pushed  # B pushed its new artifacts


def test_own_recordings_go_through_dvc_repro_with_only_the_source_changed(tmp_path):
    """A folder of the default wanted words (and one other) in mixed formats, without background
    noise or speaker names: data.source: dir and data.dir are all that change."""
    words = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "cat")
    recordings = write_recordings(tmp_path / "recordings", words)
    work = copy_repository(tmp_path / "repo", source="dir", dir=str(recordings))
    result = run(["dvc", "repro"], work)
    assert ran_stages(result.stdout) == set(STAGES), result.stdout[-3000:]
    assert (work / "data/raw/converted.csv").is_file()
    assert (work / "metrics/stream.json").is_file()
