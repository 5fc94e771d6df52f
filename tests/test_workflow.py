"""The CI workflow under zizmor, the static analyser for GitHub Actions: no template injection,
no workflow-wide write permission, actions pinned by commit, no credentials left in checkouts."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def _zizmor() -> str | None:
    """zizmor on PATH, or beside this Python (a virtual environment not activated)."""
    beside = Path(sys.executable).parent / "zizmor"
    return shutil.which("zizmor") or (str(beside) if beside.is_file() else None)


@pytest.mark.skipif(
    _zizmor() is None, reason="zizmor is not installed (pip install zizmor to run this check)"
)
def test_the_workflows_are_clean_under_zizmor():
    result = subprocess.run(
        [_zizmor(), "--offline", "--persona=pedantic", "--no-progress", str(WORKFLOWS)],
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
