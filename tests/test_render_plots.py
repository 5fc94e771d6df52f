"""Offline plot rendering: PNGs and a self-contained HTML page from `dvc plots diff --json`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.tools.render_plots import collect_plots, render

DVC_YAML = """\
plots:
  - m/confusion.csv:
      template: confusion
      x: actual
      y: predicted
  - m/curve.csv:
      x: step
      y: accuracy
  - m/picture.png
"""


def _git(cwd, *args):
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
    )
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.fixture
def plot_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    _git(tmp_path, "init", "-q")
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "m").mkdir()
    (tmp_path / "m/confusion.csv").write_text("actual,predicted\nyes,yes\nno,yes\n")
    (tmp_path / "m/curve.csv").write_text("step,accuracy\n1,0.2\n2,0.6\n")
    import matplotlib

    from pipeline.core.audio import encode_wav  # noqa: F401  (package importable)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.figure(figsize=(2, 2))
    plt.plot([0, 1])
    plt.savefig(tmp_path / "m/picture.png")
    plt.close("all")
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "first")
    (tmp_path / "m/curve.csv").write_text("step,accuracy\n1,0.3\n2,0.9\n")
    return tmp_path


def test_renders_every_plot_with_no_external_reference(plot_repo):
    plots = collect_plots(["HEAD"], show=False, cwd=plot_repo)
    assert {"m/confusion.csv", "m/curve.csv", "m/picture.png"} <= set(plots)
    files = render(plots, plot_repo / "out", plot_repo)
    names = {p.name for p in files}
    assert {"index.html", "m_confusion.csv.png", "m_curve.csv.png"} <= names
    for path in files:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (plot_repo / "out/index.html").read_text()
    assert "<script" not in page
    assert page.count("<svg") == 2 and "data:image/png;base64," in page
    # The diff shows both revisions side by side.
    assert "workspace" in page and "HEAD" in page


def test_cli_without_plots_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    _git(tmp_path, "init", "-q")
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True)
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.tools.render_plots", "--show"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1])),
    )
    assert result.returncode == 1
    assert "no plots found" in result.stderr


def test_an_out_folder_that_is_not_an_earlier_render_is_never_replaced(tmp_path):
    from pipeline.core.errors import StageError

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(StageError, match="mine: exists and is not an earlier render"):
        render({}, mine, tmp_path)
    assert (mine / "thesis.tex").read_text() == "years of work"
    (tmp_path / "empty").mkdir()
    assert render({}, tmp_path / "empty", tmp_path) == [tmp_path / "empty" / "index.html"]
    assert render({}, tmp_path / "empty", tmp_path) == [tmp_path / "empty" / "index.html"]
