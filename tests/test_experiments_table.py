"""`kws experiments`: `dvc exp show` as one table that fits the terminal.

The command is run on a real, tiny DVC repository (one stage writing the project's metric names
from params.yaml, two experiments); the table function on hand-made documents in the format of
`dvc exp show --json`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.tools import experiments
from pipeline.tools.experiments import ExperimentsError, rows_from_json, table
from tests.test_end_to_end import REPO_ROOT, _env, run

WRITE_METRICS = """\
import json
import yaml

params = yaml.safe_load(open("params.yaml"))["train"]
accuracy = 0.9 - params["dropout"] / 10 + params["steps"] / 10000
json.dump({"accuracy": accuracy, "examples": 168}, open("metrics/evaluate.json", "w"))
json.dump(
    {"correct_percentage": 80.0, "false_alarms_per_hour": 102.0},
    open("metrics/stream.json", "w"),
)
"""


def kws(cwd: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**_env(), "PYTHONPATH": str(REPO_ROOT)}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-c", "from pipeline.cli import main; main()", "experiments", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory) -> Path:
    """A git + DVC repository: main ran the stage, then experiments drop4 and steps200."""
    root = tmp_path_factory.mktemp("exp_repo")
    run(["git", "init", "-q", "-b", "main"], root)
    run([sys.executable, "-m", "dvc", "init", "-q"], root)
    (root / "metrics").mkdir()
    (root / "write.py").write_text(WRITE_METRICS)
    (root / "params.yaml").write_text(
        "train:\n  dropout: 0.2\n  steps: 100\nmodel:\n  name: ds_cnn\n"
    )
    (root / "dvc.yaml").write_text(
        "stages:\n"
        "  evaluate:\n"
        f"    cmd: {sys.executable} write.py\n"
        "    deps: [write.py]\n"
        "    params: [train.dropout, train.steps, model.name]\n"
        "    metrics:\n"
        "      - metrics/evaluate.json: {cache: false}\n"
        "      - metrics/stream.json: {cache: false}\n"
    )
    run([sys.executable, "-m", "dvc", "repro", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-q", "-m", "baseline"], root)
    for name, setting in (("drop4", "train.dropout=0.4"), ("steps200", "train.steps=200")):
        run([sys.executable, "-m", "dvc", "exp", "run", "-q", "-n", name, "-S", setting], root)
    return root


def headings(output: str) -> str:
    """The two heading lines of the terminal table."""
    return "\n".join(output.splitlines()[:2])


def test_the_table_names_the_experiments_and_only_the_changed_params(dvc_repo):
    result = kws(dvc_repo, "--width", "100")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.rstrip("\n").splitlines()
    names = [line.split("  ")[0].strip() for line in lines[2:]]
    assert names[:2] == ["workspace", "main"]
    assert {"├── drop4", "└── drop4"} & set(names) and {"├── steps200", "└── steps200"} & set(names)
    assert "dropout" in headings(result.stdout) and "steps" in headings(result.stdout)
    assert "name" not in headings(result.stdout)  # model.name is the same in every row
    drop4 = next(line for line in lines if "drop4" in line)
    assert "87.0%" in drop4 and "0.4" in drop4 and "80.0%" in drop4 and "102" in drop4
    steps200 = next(line for line in lines if "steps200" in line)
    assert "88.0%" in steps200 and "200" in steps200  # run from drop4's workspace
    assert all(len(line) <= 100 for line in lines)
    assert "left out" not in result.stdout


def test_a_narrow_terminal_leaves_out_the_rightmost_params_and_says_so(dvc_repo):
    result = kws(dvc_repo, "--width", "74")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.rstrip("\n").splitlines()
    assert all(len(line) <= 74 for line in lines), lines
    assert "dropout" in headings(result.stdout) and "steps" not in headings(result.stdout)
    assert lines[-1] == "(+1 param left out: train.steps; see --md or dvc exp show --only-changed)"


def test_md_has_every_changed_param_and_param_adds_an_unchanged_one(dvc_repo):
    result = kws(dvc_repo, "--md", "--param", "model.name")
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0]
    assert "| train.dropout |" in header and "| train.steps |" in header
    assert "| model.name |" in header
    plain = kws(dvc_repo, "--csv")
    assert "model.name" not in plain.stdout and "train.steps" in plain.stdout


def test_an_unknown_param_is_named(dvc_repo):
    result = kws(dvc_repo, "--param", "train.dropuot")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error [pipeline.tools.experiments]: --param train.dropuot: not a param of any row shown "
        "(a dotted key of params.yaml, e.g. train.dropout)"
    ]


def test_not_a_dvc_repository_is_one_line(tmp_path):
    result = kws(tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error [pipeline.tools.experiments]: {tmp_path.resolve()}: not a DVC repository "
        "(no .dvc folder here or above)"
    ]


def test_a_failing_dvc_exp_show_gives_its_last_line(tmp_path):
    (tmp_path / ".dvc").mkdir()  # a .dvc folder, but no git repository and no DVC config
    result = kws(tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error [pipeline.tools.experiments]: dvc exp show failed in {tmp_path}")
    assert line.split(": ", 3)[-1].strip()  # dvc's own last line follows


def test_dvc_not_found_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(ExperimentsError, match="dvc: not found on PATH"):
        experiments.find_dvc()


# A document in the format of `dvc exp show --json` (DVC 3), by hand.


def revision(rev, name, dropout, accuracy, *, train_py="aaa", lr=0.001, extra=None):
    params = {"train": {"dropout": dropout, "learning_rate": lr, "steps": 100, **(extra or {})}}
    return {
        "rev": rev,
        "name": name,
        "data": {
            "rev": rev,
            "params": {"params.yaml": {"data": params}},
            "metrics": {
                "metrics/evaluate.json": {"data": {"accuracy": accuracy}},
                "metrics/export.json": {
                    "data": {
                        "accuracy": {"tflite_int8": accuracy - 0.01},
                        "size_bytes": {"model_int8.tflite": 101728},
                    }
                },
            },
            "deps": {
                "pipeline/training/train.py": {"hash": train_py},
                "data/raw": {"hash": "rrr.dir"},
            },
        },
        "error": None,
        "experiments": None,
    }


def document() -> list:
    base = revision("b" * 40, "main", 0.2, 0.9166666)
    base["experiments"] = [
        {"name": "lr-up", "revs": [revision("c" * 40, "lr-up", 0.2, 0.93, lr=0.003)]},
        {
            "name": "new-train",
            "revs": [revision("d" * 40, "new-train", 0.5, 0.85, train_py="zzz")],
        },
    ]
    return [revision("workspace", None, 0.2, 0.9166666), base]


def test_the_table_keeps_dvc_order_with_tree_markers_and_marks_changed_code():
    text = table(rows_from_json(document()), width=200)
    lines = text.splitlines()
    assert [line.split("  ")[0].strip() for line in lines[2:]] == [
        "workspace",
        "main",
        "├── lr-up",
        "└── new-train",
    ]
    assert lines[1].split()[:3] == ["experiment", "acc", "acc"]  # test / int8 on the line above
    assert "91.7%" in lines[2] and "90.7%" in lines[2] and "99 KiB" in lines[2]
    assert lines[2].endswith("same") and lines[4].endswith("same")
    assert lines[5].endswith("train.py")  # new-train's code differs from main's
    assert "steps" not in lines[1]  # the same in every row


def test_the_table_fits_every_width_and_drops_params_from_the_right():
    rows = rows_from_json(document())
    wide = table(rows, width=200)
    assert "dropout" in wide and "learning_rate" in wide and "left out" not in wide
    for width in (200, 90, 75, 60, 40, 24):
        lines = table(rows, width=width).splitlines()
        assert all(len(line) <= width for line in lines), (width, lines)
    narrow = table(rows, width=75).splitlines()
    assert "dropout" in narrow[1] and "learning_rate" not in narrow[1]
    assert narrow[-1].startswith("(+1 param left out")
    forced = table(rows, width=75, params=["train.steps"]).splitlines()
    assert "steps" in forced[1] and "dropout" not in forced[1]
    assert forced[-1] == "(+2 params left out; see --md or dvc exp show --only-changed)"
    named = table(rows, width=85, params=["train.steps"]).splitlines()
    assert "steps" in named[1] and "dropout" in named[1] and "learning_rate" not in named[1]
    assert named[-1] == (
        "(+1 param left out: train.learning_rate; see --md or dvc exp show --only-changed)"
    )


def test_no_experiments_or_metrics_yet_is_a_table_of_dashes():
    workspace = revision("workspace", None, 0.2, 0.9)
    workspace["data"]["metrics"] = {}
    text = table(rows_from_json([workspace]), width=80)
    lines = text.splitlines()
    assert lines[2].startswith("workspace") and "—" in lines[2]
    assert lines[-1] == "(no metrics yet: run `dvc repro` or `dvc exp run`)"


def test_all_metrics_adds_the_others():
    doc = document()
    doc[0]["data"]["metrics"]["metrics/evaluate.json"]["data"]["macro_f1"] = 0.912345
    text = table(rows_from_json(doc), width=200, all_metrics=True)
    assert "macro_f1" in text.splitlines()[1] and "0.9123" in text
    assert "macro_f1" not in table(rows_from_json(doc), width=200)


def test_md_and_csv_have_every_column_with_full_names():
    rows = rows_from_json(document())
    md = experiments.markdown(rows)
    header = md.splitlines()[0]
    assert "| train.learning_rate |" in header and "| test accuracy |" in header
    assert md.splitlines()[5].endswith("| pipeline/training/train.py |")
    csv_lines = experiments.csv_text(rows).splitlines()
    assert len(csv_lines) == 5 and csv_lines[0].startswith("experiment,rev,test accuracy")


def test_a_document_that_is_not_a_list_is_an_error():
    with pytest.raises(ExperimentsError, match="not a list of revisions"):
        rows_from_json(json.loads('{"workspace": {}}'))
