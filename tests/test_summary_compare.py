"""The end-of-run summary and the tolerance comparison of headline metrics against a revision."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.errors import StageError
from pipeline.tools.compare_metrics import HEADLINES, compare, render
from pipeline.tools.summary import summary
from tests.test_end_to_end import REPO_ROOT, run


def write_metrics(
    root: Path, accuracy=0.94, int8=0.935, correct=78.0, false_alarms=174.0, validation=0.907
) -> None:
    (root / "metrics").mkdir(parents=True, exist_ok=True)
    documents = {
        "train.json": {
            "architecture": "ds_cnn",
            "parameters": 32588,
            "steps": 2500,
            "validation_accuracy": validation,
        },
        "evaluate.json": {"accuracy": accuracy, "examples": 168},
        "export.json": {
            "accuracy": {"tflite_int8": int8, "tflite_float": 0.94},
            "size_bytes": {"model_int8.tflite": 65688},
            "test_clips": 154,
        },
        "stream.json": {
            "correct_percentage": correct,
            "false_alarms_per_hour": false_alarms,
            "ground_truth_words": 200,
            "duration_s": 600.0,
            "detection_threshold": 0.7,
        },
    }
    for name, document in documents.items():
        (root / "metrics" / name).write_text(json.dumps(document))


@pytest.fixture
def repo(tmp_path) -> Path:
    run(["git", "init", "-q", "-b", "main"], tmp_path)
    write_metrics(tmp_path)
    run(["git", "add", "-A"], tmp_path)
    run(["git", "commit", "-q", "-m", "base"], tmp_path)
    return tmp_path


def test_summary_names_the_headline_metrics(tmp_path):
    write_metrics(tmp_path, accuracy=0.9523809, int8=0.9415584, correct=81.5, false_alarms=102.0)
    text = summary(tmp_path)
    assert "test accuracy    95.2%   (168 test clips)" in text
    assert "int8 accuracy    94.2%" in text and "154 test WAVs" in text and "64 KiB" in text
    assert "81.5% of 200 words correct, 102 false alarms per hour" in text
    assert "ds_cnn, 32,588 parameters" in text
    assert "not computed" not in text
    assert len(text.splitlines()) <= 8  # a summary, not a table of every metric


def test_summary_gives_the_int8_model_on_the_recording_where_it_was_scored(tmp_path):
    write_metrics(tmp_path, correct=81.5, false_alarms=102.0)
    assert "streaming, int8" not in summary(tmp_path)
    stream = tmp_path / "metrics" / "stream.json"
    record = json.loads(stream.read_text())
    record["int8"] = {"correct_percentage": 77.3, "false_alarms_per_hour": 96.0}
    stream.write_text(json.dumps(record))
    text = summary(tmp_path)
    assert "streaming, int8  77.3% correct, 96 false alarms per hour" in text
    assert len(text.splitlines()) <= 8


def test_summary_says_what_is_not_computed_yet(tmp_path):
    text = summary(tmp_path)
    assert "test accuracy    —" in text
    assert "not computed yet: metrics/train.json, metrics/evaluate.json" in text


def test_compare_labels_changes_within_and_beyond_tolerance(repo):
    tolerance = {h.label: h.tolerance for h in HEADLINES}
    write_metrics(
        repo,
        accuracy=0.94 - tolerance["test accuracy"] / 2,  # within
        correct=78.0 + 2 * tolerance["streaming: correct"],
    )  # beyond
    rows = {row.headline.label: row for row in compare("HEAD", repo)}
    assert rows["test accuracy"].verdict == "same within tolerance"
    assert not rows["test accuracy"].beyond
    assert rows["streaming: correct"].verdict == "CHANGED beyond tolerance"
    assert rows["int8 TFLite accuracy"].verdict == "identical"
    table = render(list(rows.values()), "HEAD", markdown=True)
    assert table.splitlines()[0] == "| metric | HEAD | workspace | change | tolerance | verdict |"
    assert "| streaming: correct | 78.0% | " in table
    assert rows["int8 model size"].verdict == "identical"
    assert "| int8 model size | 64 KiB | 64 KiB | +0.0 KiB | ±0.0 KiB | identical |" in table


def test_compare_command_fails_only_beyond_tolerance(repo):
    tool = [sys.executable, "-m", "pipeline.tools.compare_metrics", "--base", "HEAD", "--fail"]
    env_root = {
        "cwd": repo,
        "capture_output": True,
        "text": True,
        "env": {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    }
    write_metrics(repo, accuracy=0.934)  # one test clip of 168 fewer: within
    within = subprocess.run(tool, **env_root)
    assert within.returncode == 0, within.stderr
    assert "same within tolerance" in within.stdout
    write_metrics(repo, accuracy=0.80)
    beyond = subprocess.run(tool, **env_root)
    assert beyond.returncode == 1
    assert beyond.stderr.strip().splitlines()[-1] == (
        "error [pipeline.tools.compare_metrics]: beyond tolerance against HEAD: test accuracy"
    )


def test_compare_names_a_bad_revision_and_a_bad_file(repo):
    with pytest.raises(StageError, match="nope: not a git revision"):
        compare("nope", repo)
    (repo / "metrics/evaluate.json").write_text("{not json")
    with pytest.raises(StageError, match="evaluate.json: not valid JSON"):
        compare("HEAD", repo)


def test_a_metric_missing_on_one_side_is_reported(repo):
    (repo / "metrics/stream.json").unlink()
    rows = {row.headline.label: row for row in compare("HEAD", repo)}
    assert rows["streaming: correct"].verdict == "missing" and rows["streaming: correct"].beyond


def test_changed_inputs_ignores_missing_outputs_but_not_changed_code_or_params():
    from pipeline.tools.compare_metrics import changed_inputs

    fresh_clone = {  # `dvc status --json` before any pull: outputs missing, nothing else changed
        "featurize": [{"changed outs": {"data/features": "deleted"}}],
        "train": [
            {"changed deps": {"data/features": "deleted"}},
            {"changed outs": {"models/keras": "deleted"}},
        ],
    }
    assert changed_inputs(fresh_clone) == []
    assert changed_inputs({}) == []
    edited = {
        **fresh_clone,
        "train": [{"changed deps": {"params.yaml": {"train.learning_rate": "modified"}}}],
        "evaluate": [{"changed deps": {"pipeline/evaluation": "modified"}}],
        "freeze": ["changed command"],
    }
    assert changed_inputs(edited) == ["train", "evaluate", "freeze"]
