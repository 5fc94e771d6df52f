"""Run an experiment from presets: files holding only the params they change.

    kws preset real-speech shared-mini            # print the dvc exp run command
    kws preset real-speech shared-mini --run -n rs # run it (extra dvc exp run options after --run)
    kws preset --list

A preset is ``presets/<name>.yaml`` (or any path), with the structure of params.yaml and read as
DVC reads params (YAML 1.2: yes/no/on/off are words). Several presets combine left to right. The
merged params are validated like params.yaml before anything runs, so a typo in a preset stops
here with the file and key named.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

from pipeline.cli import parse_args, run_main
from pipeline.core import paths
from pipeline.core.errors import ParamError
from pipeline.core.params import read_params
from pipeline.core.schema import read_yaml
from pipeline.sections import validate_params

DESCRIPTION = "Run an experiment from presets: files holding only the params they change."

PRESETS_DIR = Path("presets")
_PLAIN = re.compile(r"^[A-Za-z0-9_./+-][A-Za-z0-9_./+ -]*$")


def preset_path(name: str, folder: Path = PRESETS_DIR) -> Path:
    """A preset's file: ``name`` itself if it is a file, else ``presets/<name>.yaml``."""
    path = Path(name)
    if path.is_file():
        return path
    candidate = folder / f"{name}.yaml"
    if candidate.is_file():
        return candidate
    known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "none"
    raise ParamError(f"preset {name!r} not found (no file {name} or {candidate}); presets: {known}")


def read_preset(path: Path) -> dict[str, Any]:
    try:
        data = read_yaml(path.read_text(encoding="utf-8"))
    except Exception as exc:  # yaml errors and unreadable files
        raise ParamError(f"{path}: not a readable YAML preset ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise ParamError(f"{path}: a preset is a mapping of params sections, like params.yaml")
    return data


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys to values: {"train": {"dropout": 0.5}} -> {"train.dropout": 0.5}."""
    out = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def apply(params: dict[str, Any], overrides: dict[str, Any], source: Path) -> None:
    """Set each dotted key in ``params``; a key params.yaml does not have is an error."""
    for dotted, value in overrides.items():
        node = params
        parts = dotted.split(".")
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                raise ParamError(
                    f"{source}: {dotted} is not a key of params.yaml "
                    f"(no {'.'.join(parts[: i + 1])})"
                )
            if i < len(parts) - 1:
                node = node[part]
        node[parts[-1]] = value


def yaml_value(value: Any) -> str:
    """A value as DVC's -S parses it (YAML): plain words and numbers as they are, other strings
    quoted, lists in flow style."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        words = ("true", "false", "null", "~", "")
        return value if _PLAIN.match(value) and value.lower() not in words else json.dumps(value)
    if isinstance(value, list):
        return "[" + ",".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict) and not value:
        return "{}"
    raise ParamError(f"cannot pass {value!r} to dvc exp run -S")


def experiment_flags(
    names: list[str], params_path: Path = paths.PARAMS, folder: Path = PRESETS_DIR
) -> list[str]:
    """The ``-S key=value`` flags of the presets, checked against params.yaml."""
    params = read_params(params_path)
    overrides: dict[str, Any] = {}
    for name in names:
        path = preset_path(name, folder)
        flat = flatten(read_preset(path))
        apply(params, flat, path)
        overrides.update(flat)
    try:
        validate_params(params)
    except ParamError as exc:
        raise ParamError(f"presets {', '.join(names)}: {exc}") from None
    flags = []
    for key, value in overrides.items():
        flags += ["-S", f"{key}={yaml_value(value)}"]
    return flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("presets", nargs="*", help="preset names (presets/<name>.yaml) or files")
    parser.add_argument(
        "--list", action="store_true", help="list the presets and what they are for"
    )
    parser.add_argument(
        "--params", default=str(paths.PARAMS), help="the params file the presets change"
    )
    parser.add_argument(
        "--run",
        nargs=argparse.REMAINDER,
        default=None,
        help="run `dvc exp run` with the flags (and any options given after --run)",
    )


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    if args.list or not args.presets:
        for path in sorted(PRESETS_DIR.glob("*.yaml")):
            first = next(
                (
                    line[2:]
                    for line in path.read_text(encoding="utf-8").splitlines()
                    if line.startswith("# ")
                ),
                "",
            )
            print(f"{path.stem:20} {first}")
        return 0
    command = ["dvc", "exp", "run", *experiment_flags(args.presets, Path(args.params))]
    if args.run is None:
        print(shlex.join(command))
        return 0
    return subprocess.call([*command, *args.run])


if __name__ == "__main__":
    run_main(main)
