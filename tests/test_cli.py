"""The ``kws`` command: subcommands with descriptions, usage lines, typos, --version, help."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from pipeline import cli
from tests.conftest import REPO_ROOT

STAGES = (
    "download",
    "split",
    "featurize",
    "train",
    "evaluate",
    "freeze",
    "synthesize_stream",
    "stream_eval",
)


def kws(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from pipeline.cli import main; main()", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )


def undocumented_options(parser: argparse.ArgumentParser) -> list[str]:
    """The options and arguments of ``parser`` with no help text."""
    return [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction)
        and (not action.help or not action.help.strip() or action.help == argparse.SUPPRESS)
    ]


def every_parser() -> dict[str, argparse.ArgumentParser]:
    parsers = {}
    top = cli.kws_parser()
    parsers["kws"] = top
    [subcommands] = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    for name, parser in subcommands.choices.items():
        parsers[f"kws {name}"] = parser
    for stage in STAGES:
        module = importlib.import_module(f"pipeline.stages.{stage}")
        parsers[f"stage {stage}"] = cli.build_parser(module)
    return parsers


def test_every_option_of_every_tool_and_stage_has_help():
    parsers = every_parser()
    assert set(cli.TOOLS) <= {name.removeprefix("kws ") for name in parsers}
    missing = {name: undocumented_options(p) for name, p in parsers.items()}
    assert not {name: options for name, options in missing.items() if options}


def test_the_help_check_finds_an_option_without_help():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quiet-one", type=int, default=3)
    parser.add_argument("--said", help="has help")
    assert undocumented_options(parser) == ["--quiet-one"]


def test_defaults_are_shown_once_and_never_as_none():
    text = cli.build_parser(importlib.import_module("pipeline.tools.label_wav")).format_help()
    assert "(default: 3)" in text
    assert "(default: None)" not in text
    text = cli.build_parser(importlib.import_module("pipeline.stages.freeze")).format_help()
    assert "(default: models/export)" in text and "(default: None)" not in text


def test_kws_help_lists_each_tool_with_its_description():
    result = kws("--help")
    assert result.returncode == 0
    for name in cli.TOOLS:
        module = cli.tool_module(name)
        assert module.DESCRIPTION and "\n" not in module.DESCRIPTION
        assert module.DESCRIPTION.endswith("."), name
        # the description follows the name (on the next line after a long name)
        shown = " ".join(result.stdout.split(f"    {name}", 1)[1].split())
        assert shown.startswith(module.DESCRIPTION), name


def test_tool_usage_lines_name_the_command_that_runs_them():
    result = kws("label-wav", "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: kws label-wav [-h] --model MODEL")
    module = subprocess.run(
        [sys.executable, "-m", "pipeline.tools.label_wav", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    assert module.returncode == 0
    assert module.stdout.startswith("usage: python -m pipeline.tools.label_wav [-h]")


def test_a_mistyped_tool_gets_a_suggestion_and_status_2():
    result = kws("lable-wav", "--wav", "x.wav")
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "kws: unknown command 'lable-wav' \u2014 did you mean 'label-wav'?"
    )
    result = kws("frobnicate")
    assert result.returncode == 2 and "unknown command 'frobnicate'" in result.stderr


def test_no_tool_prints_the_help_and_status_2():
    result = kws()
    assert result.returncode == 2 and "label-wav" in result.stderr


def test_kws_version():
    from importlib.metadata import version

    result = kws("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"kws {version('kws-pipeline')}"


def test_a_tool_option_error_names_the_subcommand():
    result = kws("label-wav", "--wav")
    assert result.returncode == 2
    assert "usage: kws label-wav" in result.stderr


@pytest.mark.parametrize("name", sorted(cli.TOOLS))
def test_every_tool_module_registers_the_same_way(name):
    module = cli.tool_module(name)
    assert callable(module.add_arguments) and callable(module.main)


def test_a_reader_that_leaves_early_gets_no_traceback():
    # Every tool runs through run_main; this one prints more than a pipe holds (64 KiB) and its
    # reader closes after one line, as `kws report | head -1` does.
    code = (
        "from pipeline.cli import run_main\n"
        "def main(argv):\n"
        "    for i in range(100000):\n"
        "        print('row', i)\n"
        "run_main(main, [])\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT
    )
    assert proc.stdout.readline() == b"row 0\n"
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
