"""The code style: ruff (configured in pyproject.toml) is clean on pipeline/, bench/ and tests/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ["pipeline", "bench", "tests"]


def ruff() -> list[str]:
    """ruff beside this interpreter (the test lock installs it), else on PATH."""
    beside = Path(sys.executable).with_name("ruff")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("ruff")
    if not found:
        pytest.skip("ruff is not installed (make test installs it from requirements-test.lock)")
    return [found]


@pytest.mark.parametrize("check", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_is_clean(check):
    result = subprocess.run(
        [*ruff(), *check, *FOLDERS],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_the_style_check_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nx=1\n", encoding="utf-8")
    config = ["--config", str(REPO_ROOT / "pyproject.toml")]
    lint = subprocess.run([*ruff(), "check", *config, str(bad)], capture_output=True)
    form = subprocess.run([*ruff(), "format", "--check", *config, str(bad)], capture_output=True)
    assert lint.returncode != 0 and form.returncode != 0
