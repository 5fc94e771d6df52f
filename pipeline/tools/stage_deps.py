"""The code each DVC stage runs, computed from the imports, against dvc.yaml's deps.

    python -m pipeline.tools.stage_deps           # print each stage's code deps (YAML list items)
    python -m pipeline.tools.stage_deps --check   # exit 1 if dvc.yaml misses or over-lists code

A stage runs its module (``python -m pipeline.stages.<stage>``) and every ``pipeline`` module it
imports, transitively, at any depth (imports inside functions count: they run too), plus the
packages' ``__init__.py`` files. dvc.yaml must list all of them, as files or as a folder whose
every module is imported, so that a code change always reruns the stages it affects and only
those. The one exception is :data:`GATES`: the whole-params check every stage runs first
(``pipeline.cli.run_stage``) imports every layer, yet can only stop a stage, never change what
it writes; following it would make every stage depend on all the code. The layering rules of
docs/architecture.md are checked by the same import graph (``layer_violations``).
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from pipeline.cli import parse_args, run_main
from pipeline.core.errors import StageError
from pipeline.core.schema import read_yaml

DESCRIPTION = "The code each DVC stage runs, from its imports, against dvc.yaml's deps."

PACKAGE = "pipeline"
# Modules only entry points may import (library code never does; stages import only the cli).
ENTRY_POINTS = ("pipeline.stages", "pipeline.tools", "pipeline.cli", "pipeline.sections")
# Modules a stage runs only to refuse bad params before it starts: not followed into its deps.
GATES = ("pipeline.sections",)
# Library layer -> the layers it may import (docs/architecture.md). ``data.acquire`` (what only the
# download stage runs) is a layer of its own inside ``data``: it may use the rest of ``data``, and
# nothing else may import it.
LAYERS = {
    "core": {"core"},
    "frontends": {"core", "frontends"},
    "models": {"core", "models"},
    "data.acquire": {"core", "data", "data.acquire"},
    "data": {"core", "frontends", "data"},
    "evaluation": {"core", "data", "models", "evaluation"},
    "training": {"core", "data", "models", "evaluation", "training"},
    "inference": {"core", "frontends", "models", "inference"},
    "export": {"core", "data", "frontends", "models", "inference", "export"},
    "streaming": {"core", "inference", "streaming"},
    "web": {"core", "frontends", "inference", "streaming", "web"},
}


def module_path(root: Path, name: str) -> Path | None:
    """The file of module ``name`` under ``root`` (a module or a package), if it exists."""
    base = root.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def direct_imports(root: Path, path: Path) -> set[str]:
    """Names of the project modules that ``path`` imports anywhere in its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    here = module_name(root, path)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = here.split(".")
                package = package if is_package else package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in candidates:
            if (name == PACKAGE or name.startswith(PACKAGE + ".")) and module_path(root, name):
                found.add(name)
    return found


def closure(root: Path, start: str) -> dict[str, Path]:
    """Every project module ``start`` runs (itself, its imports, their packages), by name."""
    seen: dict[str, Path] = {}
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or (name in GATES and name != start):
            continue
        path = module_path(root, name)
        if path is None:
            raise StageError(f"{name}: no such module under {root}")
        seen[name] = path
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run first
        todo += sorted(direct_imports(root, path))
    return seen


def stage_modules(root: Path) -> dict[str, str]:
    """Stage name -> the module its dvc.yaml command runs."""
    stages = read_yaml((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    modules = {}
    for name, stage in stages.items():
        words = str(stage["cmd"]).split()
        if words[:2] != ["python", "-m"]:
            raise StageError(f"dvc.yaml: stage {name} does not run `python -m <module>`")
        modules[name] = words[2]
    return modules


def code_deps(root: Path, files: set[Path]) -> list[str]:
    """The shortest dep list covering exactly ``files``: a folder where all of its modules are
    in ``files``, else the files themselves (paths relative to ``root``)."""
    out: list[str] = []

    def visit(folder: Path) -> None:
        modules = sorted(folder.rglob("*.py"))
        if modules and all(m in files for m in modules) and folder != root / PACKAGE:
            out.append(folder.relative_to(root).as_posix())
            return
        for child in sorted(folder.iterdir()):
            if child.is_dir() and child.name != "__pycache__":
                visit(child)
            elif child in files:
                out.append(child.relative_to(root).as_posix())

    visit(root / PACKAGE)
    return out


def check_stage(root: Path, stage: str, module: str, deps: list[str]) -> list[str]:
    """Problems with one stage's code deps: modules it runs that no dep covers, and code deps
    that name nothing it runs."""
    files = {p.resolve() for p in closure(root, module).values()}
    problems = []
    code = [d for d in deps if d == PACKAGE or d.startswith(PACKAGE + "/")]
    covered = set()
    for dep in code:
        target = (root / dep).resolve()
        hits = {f for f in files if f == target or target in f.parents}
        if not hits:
            problems.append(f"{stage}: dep {dep} is code the stage does not run")
        covered |= hits
    for path in sorted(files - covered):
        shown = path.relative_to(root.resolve()).as_posix()
        problems.append(f"{stage}: runs {shown} but dvc.yaml does not list it")
    return problems


def _layer(name: str) -> str | None:
    """The layer of module ``name``: the longest key of LAYERS it lies in (``data.acquire``
    before ``data``), or None for entry points and the package itself."""
    parts = name.split(".")[1:]
    for depth in range(len(parts), 0, -1):
        layer = ".".join(parts[:depth])
        if layer in LAYERS:
            return layer
    return None


def layer_violations(root: Path) -> list[str]:
    """Imports that break the layering: a stage importing another stage or a tool, library code
    importing an entry point, and a library layer importing a layer above it (LAYERS)."""
    problems = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        name = module_name(root, path)
        for imported in sorted(direct_imports(root, path)):
            entry = next(
                (e for e in ENTRY_POINTS if imported == e or imported.startswith(e + ".")), None
            )
            if entry is not None:
                if name.startswith("pipeline.stages.") and entry != "pipeline.cli":
                    problems.append(f"{name} (a stage) imports {imported}")
                elif not name.startswith(ENTRY_POINTS) and name != "pipeline":
                    problems.append(f"{name} (library code) imports {imported}")
                continue
            layer, target = _layer(name), _layer(imported)
            if layer and target and target not in LAYERS[layer]:
                problems.append(f"{name} (layer {layer}) imports {imported} (layer {target})")
    return problems


def stale_lock_deps(status: dict) -> list[str]:
    """``dvc status --json`` -> each stage's code or params that changed after dvc.lock recorded
    them (a commit of code without ``dvc repro``: every clone then reruns the stage and gets
    other outputs than the committed metrics). Deps that are other stages' outputs are left out:
    a fresh clone has none of them, which says nothing about the lock."""
    stale = []
    for stage, changes in status.items():
        for change in changes:
            deps = change.get("changed deps", {}) if isinstance(change, dict) else {}
            for path, state in deps.items():
                if path == PACKAGE or path.startswith(f"{PACKAGE}/") or isinstance(state, dict):
                    stale.append(
                        f"{stage}: {path} {state}"
                    )  # a params file's state is {key: state}
    return stale


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default=".", help="the repository root")
    parser.add_argument(
        "--check", action="store_true", help="compare with dvc.yaml; exit 1 on a problem"
    )


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    root = Path(args.root).resolve()
    stages = read_yaml((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    problems = layer_violations(root)
    for stage, module in stage_modules(root).items():
        if args.check:
            problems += check_stage(
                root, stage, module, [str(d) for d in stages[stage].get("deps", [])]
            )
        else:
            files = {p.resolve() for p in closure(root, module).values()}
            print(f"{stage}:")
            for dep in code_deps(root, files):
                print(f"  - {dep}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    run_main(main)
