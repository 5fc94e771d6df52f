"""Text files are UTF-8 whatever the locale: clip names beyond ASCII in a true ASCII locale, and a
check that every text file the pipeline and the benchmarks open names its encoding."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import yaml

from pipeline.core.schema import read_yaml
from tests.conftest import REPO_ROOT, make_dataset

# Python in the C locale, with neither UTF-8 mode nor locale coercion: the locale's encoding
# (ASCII) is the default of open() and of Path.read_text()/write_text().
ASCII_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
NAME = "Zoë-Ærø_nohash_0.wav"  # a speaker id beyond ASCII


def test_stages_read_and_write_non_ascii_clip_names_in_an_ascii_locale(tmp_path):
    """download writes the clip store's index.csv, split reads it and writes the manifests,
    featurize reads those: each must use UTF-8, not the locale's ASCII."""
    dataset = make_dataset(tmp_path / "clips", words=("yes", "no", "cat"), speakers=4)
    (dataset / "yes" / sorted(os.listdir(dataset / "yes"))[0]).rename(dataset / "yes" / NAME)
    params = read_yaml((REPO_ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["data"].update(source="dir", dir=str(dataset))
    params["split"].update(wanted_words=["yes", "no"], validation_percentage=0)
    params["split"].update(testing_percentage=0)  # every clip in train, the named one included
    params["augment"]["copies"] = 1
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "PYTHONIOENCODING"))}
    env.update(ASCII_LOCALE, PYTHONPATH=str(REPO_ROOT))
    check = [sys.executable, "-c", "import locale; print(locale.getencoding())"]
    assert subprocess.run(check, env=env, capture_output=True, text=True).stdout.strip() in (
        "ANSI_X3.4-1968",
        "ascii",
        "US-ASCII",
    )
    for stage in ("download", "split", "featurize"):
        result = subprocess.run(
            [sys.executable, "-m", f"pipeline.stages.{stage}"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="backslashreplace",
        )
        assert result.returncode == 0, f"{stage}: {result.stderr[-3000:]}"
    index = (project / "data/raw/dataset/index.csv").read_text(encoding="utf-8")
    assert f"yes/{NAME}" in index
    manifest = (project / "data/split/train.csv").read_text(encoding="utf-8")
    assert f"yes/{NAME}" in manifest


# ------------------------------------------------------------------ every open names its encoding

# Modules whose open() takes no text encoding (binary archives, file descriptors).
_BINARY_OPENERS = {"os", "tarfile", "zipfile", "gzip", "bz2", "lzma", "wave", "sf", "soundfile"}


def _text_mode(call: ast.Call, mode_position: int) -> bool:
    """Whether ``call`` opens in text mode; an unknown (computed) mode counts as binary."""
    mode = "r"
    if len(call.args) > mode_position:
        mode = call.args[mode_position]
        mode = mode.value if isinstance(mode, ast.Constant) else None
    for keyword in call.keywords:
        if keyword.arg == "mode":
            mode = keyword.value.value if isinstance(keyword.value, ast.Constant) else None
    return isinstance(mode, str) and "b" not in mode


def _opens_text_without_encoding(call: ast.Call) -> str | None:
    if any(keyword.arg == "encoding" for keyword in call.keywords):
        return None
    func = call.func
    if isinstance(func, ast.Name) and func.id == "open":
        return "open()" if _text_mode(call, 1) else None
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr in ("read_text", "write_text"):
        return f".{func.attr}()"
    if func.attr == "open" and call.args:  # Path.open(mode); not os/tarfile/zipfile ...open
        receiver = func.value
        if not (isinstance(receiver, ast.Name) and receiver.id in _BINARY_OPENERS):
            return ".open()" if _text_mode(call, 0) else None
    if func.attr in ("run", "Popen", "check_output", "check_call"):
        for keyword in call.keywords:
            off = isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            if keyword.arg in ("text", "universal_newlines") and not off:
                return f"subprocess.{func.attr}(text=True)"
    return None


def test_every_text_file_is_opened_with_an_explicit_encoding():
    """ruff's PLW1514 (pyproject.toml) sees only open() and Path(...) built in place; this sees
    read_text/write_text on any path, Path.open with a text mode and subprocess text output."""
    found = []
    for folder in ("pipeline", "bench"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and (what := _opens_text_without_encoding(node)):
                    found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {what}")
    assert not found, "text opened in the locale's encoding; add encoding='utf-8':\n" + "\n".join(
        found
    )
