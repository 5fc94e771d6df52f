"""The metrics DVC shows are the headline figures (few enough to read); the details are kept
whole beside them and printed by `kws report`; the plots read the way people read them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core import paths
from pipeline.core.metrics_files import HEADLINES, details_path, headline, write_metrics
from pipeline.core.schema import read_yaml
from pipeline.tools.report import report
from tests.conftest import REPO_ROOT

MOST_NUMBERS = 30


def numbers(value) -> int:
    """How many numbers DVC lists for a metrics document (booleans and text do not count)."""
    if isinstance(value, dict):
        return sum(numbers(v) for v in value.values())
    if isinstance(value, list):
        return sum(numbers(v) for v in value)
    return int(isinstance(value, (int, float)) and not isinstance(value, bool))


def dvc_metrics_files(root: Path = REPO_ROOT) -> list[Path]:
    """The metrics files dvc.yaml declares (what `dvc metrics show` and `dvc exp show` list)."""
    stages = read_yaml((root / "dvc.yaml").read_text())["stages"]
    files = []
    for stage in stages.values():
        for entry in stage.get("metrics", []):
            files.append(Path(next(iter(entry)) if isinstance(entry, dict) else entry))
    return files


def test_every_metrics_file_has_a_headline_list_and_a_details_out():
    stages = read_yaml((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    outs = {
        next(iter(o)) if isinstance(o, dict) else o
        for stage in stages.values()
        for o in stage.get("outs", [])
    }
    for path in dvc_metrics_files():
        assert path.name in HEADLINES, path
        assert details_path(path).as_posix() in outs, path


def test_the_committed_metrics_dvc_shows_hold_at_most_30_numbers():
    files = dvc_metrics_files()
    assert len(files) == 5
    total = sum(numbers(json.loads((REPO_ROOT / f).read_text())) for f in files)
    assert 0 < total <= MOST_NUMBERS


def test_the_headlines_of_full_records_hold_at_most_30_numbers():
    """The whole records (details) are many numbers; their headlines are few."""
    records = {
        p.name: json.loads((REPO_ROOT / details_path(p)).read_text()) for p in dvc_metrics_files()
    }
    assert sum(numbers(r) for r in records.values()) > 100
    assert sum(numbers(headline(name, r)) for name, r in records.items()) <= MOST_NUMBERS


def test_the_count_sees_every_number():
    assert numbers({"a": 1, "b": {"c": 0.5, "d": [1, 2]}, "e": "text", "f": True}) == 4


def test_write_metrics_writes_the_headline_and_the_whole_record(tmp_path):
    record = {
        "accuracy": 0.9,
        "examples": 10,
        "macro_f1": 0.8,
        "per_class": {"yes": {"precision": 1.0, "recall": 0.5, "f1": 0.66, "support": 4}},
    }
    write_metrics(tmp_path / "evaluate.json", record)
    assert json.loads((tmp_path / "evaluate.json").read_text()) == {
        "accuracy": 0.9,
        "examples": 10,
        "macro_f1": 0.8,
    }
    assert json.loads((tmp_path / "details" / "evaluate.json").read_text()) == record


def test_headline_keeps_nesting_and_leaves_out_what_is_missing():
    record = {"accuracy": {"keras": 0.9, "tflite_int8": 0.8, "saved_model": 0.9}, "x": 1}
    assert headline("export.json", record) == {"accuracy": {"keras": 0.9, "tflite_int8": 0.8}}


def test_report_prints_per_class_and_split_tables():
    text = report(REPO_ROOT)
    per_class = text.split("== Per class (test split)\n", 1)[1].split("\n\n", 1)[0]
    lines = per_class.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1", "support"]
    assert any(line.split()[0] == "_unknown_" for line in lines[2:])
    split = text.split("== Clips per label and split\n", 1)[1].split("\n\n", 1)[0]
    assert split.splitlines()[0].split() == ["training", "validation", "testing"]
    assert "total" in split and "== Confusion (test split)\nactual \\ predicted" in text


def test_report_reads_a_tree_written_before_the_details(tmp_path):
    (tmp_path / "metrics").mkdir()
    full = json.loads((REPO_ROOT / details_path(paths.EVALUATE_METRICS)).read_text())
    (tmp_path / paths.EVALUATE_METRICS).write_text(json.dumps(full))
    text = report(tmp_path, "classes")
    assert "_silence_" in text and "support" in text
    assert "not computed yet" in report(tmp_path, "stream")


def test_kws_report_command():
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.tools.report", "--only", "split"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("== Clips per label and split")


@pytest.fixture
def plots(tmp_path, monkeypatch):
    """`dvc plots show --json` of the repository's own dvc.yaml and committed metrics."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    shutil.copytree(REPO_ROOT / ".dvc/plots", tmp_path / ".dvc/plots")
    shutil.copytree(REPO_ROOT / "metrics", tmp_path / "metrics")
    result = subprocess.run(
        ["dvc", "plots", "show", "--json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["data"]


def _layers(spec):
    for layer in spec.get("layer", []):
        yield layer
        yield from _layers(layer)


def test_dvc_confusion_plot_has_actual_as_rows_and_counts_in_cells(plots):
    [entry] = plots["Confusion matrix (test split)"]
    spec = entry["content"]["spec"]
    assert spec["encoding"]["y"]["field"] == "actual"
    assert spec["encoding"]["x"]["field"] == "predicted"
    texts = [layer for layer in _layers(spec) if layer.get("mark") == "text"]
    assert texts and texts[0]["encoding"]["text"] == {"field": "xy_count", "type": "quantitative"}


def test_training_curves_show_loss_and_accuracy_on_named_axes(plots):
    for name, y_field, y_title in (
        ("Training accuracy", "validation_accuracy", "accuracy"),
        ("Training loss", "loss", "cross-entropy loss"),
    ):
        [entry] = plots[name]
        content = json.dumps(entry["content"])
        assert f'"{y_field}"' in content
        assert y_title in content and "training step" in content
        assert '"title": "y"' not in content
