"""The benchmarks are a package run with ``python -m bench.<name>``: every file under bench/ imports
as a module of it, none edits ``sys.path`` to find the project, and ``bench.run_all`` names
modules that exist."""

from __future__ import annotations

import ast
import importlib
import importlib.util

import pytest

from tests.conftest import REPO_ROOT

BENCH = REPO_ROOT / "bench"
FILES = sorted(BENCH.rglob("*.py"))


def module_name(path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sys_path_edits(source: str) -> list[int]:
    """The lines of ``source`` that use ``sys.path`` (``sys.path.insert``, ``from sys import
    path``, ...)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "path"
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ) or (
            isinstance(node, ast.ImportFrom)
            and node.module == "sys"
            and any(alias.name == "path" for alias in node.names)
        ):
            lines.append(node.lineno)
    return lines


def test_the_sys_path_check_can_fail():
    assert sys_path_edits("import sys\nsys.path.insert(0, '..')\n") == [2]
    assert sys_path_edits("from sys import path\npath.append('..')\n") == [1]
    assert sys_path_edits("import os.path\nos.path.join('a')\n") == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_benchmark_edits_sys_path(path):
    assert sys_path_edits(path.read_text()) == [], f"{path} edits sys.path"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_benchmark_imports_as_a_package_module(path):
    name = module_name(path)
    module = importlib.import_module(name)
    assert module.__name__ == name
    assert module.__doc__, f"{name}: no docstring saying what it measures"
    if path.name not in ("__init__.py", "common.py"):
        assert callable(getattr(module, "main", None)), f"{name}: no main() for python -m"


def test_run_all_names_existing_modules():
    from bench.run_all import RESEARCH, SPEED

    for name in SPEED:
        assert importlib.util.find_spec(f"bench.{name}") is not None, name
    for name in RESEARCH:
        assert importlib.util.find_spec(f"bench.research.{name}") is not None, name
