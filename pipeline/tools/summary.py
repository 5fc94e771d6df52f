"""A short, readable summary of the headline metrics in metrics/*.json (what `make run` ends with).

    python -m pipeline.tools.summary            # or: kws summary

`dvc metrics show` lists the headline figures of every metrics file; this prints the few that
matter most as sentences: test accuracy, the int8 model's accuracy, and streaming detection
(correct, false alarms/hour). `kws report` prints the details as tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import parse_args, run_main
from pipeline.core import paths
from pipeline.core.metrics_files import read_record
from pipeline.tools.compare_metrics import lookup

DESCRIPTION = "A short summary of the headline metrics (what `make run` ends with)."


def _percent(value) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"


def summary(root: Path = Path(".")) -> str:
    # the whole records (metrics/details/), which also name the model and the recording
    train = read_record(paths.TRAIN_METRICS, root)
    evaluate = read_record(paths.EVALUATE_METRICS, root)
    export = read_record(paths.EXPORT_METRICS, root)
    stream = read_record(paths.STREAM_METRICS, root)
    lines = []
    if train:
        lines.append(
            f"model            {train.get('architecture', '?')}, "
            f"{int(train.get('parameters', 0)):,} parameters, {train.get('steps', '?')} steps"
        )
    test_note = f"   ({evaluate['examples']} test clips)" if lookup(evaluate, "examples") else ""
    lines.append(f"test accuracy    {_percent(lookup(evaluate, 'accuracy'))}{test_note}")
    int8_note = ""
    if lookup(export, "accuracy", "tflite_float") is not None:
        clips = f"{export['test_clips']} test WAVs, " if lookup(export, "test_clips") else ""
        int8_note = (
            f"   ({clips}float TFLite {_percent(lookup(export, 'accuracy', 'tflite_float'))}"
        )
        if lookup(export, "size_bytes", "model_int8.tflite"):
            int8_note += (
                f", int8 file {int(export['size_bytes']['model_int8.tflite']) / 1024:.0f} KiB"
            )
        int8_note += ")"
    lines.append(
        f"int8 accuracy    {_percent(lookup(export, 'accuracy', 'tflite_int8'))}{int8_note}"
    )
    if stream:
        words = stream.get("ground_truth_words", "?")
        minutes = float(stream.get("duration_s", 0)) / 60
        lines.append(
            f"streaming        {float(stream.get('correct_percentage', 0)):.1f}% of {words} words "
            f"correct, {float(stream.get('false_alarms_per_hour', 0)):g} false alarms per hour "
            f"({minutes:g} min recording, threshold {stream.get('detection_threshold', '?')})"
        )
        if lookup(stream, "int8", "correct_percentage") is not None:
            int8 = stream["int8"]
            lines.append(
                f"streaming, int8  {float(int8['correct_percentage']):.1f}% correct, "
                f"{float(int8['false_alarms_per_hour']):g} false alarms per hour"
            )
    else:
        lines.append("streaming        —")
    missing = [
        str(p)
        for p, d in (
            (paths.TRAIN_METRICS, train),
            (paths.EVALUATE_METRICS, evaluate),
            (paths.EXPORT_METRICS, export),
            (paths.STREAM_METRICS, stream),
        )
        if d is None
    ]
    if missing:
        lines.append(f"(not computed yet: {', '.join(missing)}; run `dvc repro`)")
    lines.append(
        "all metrics: dvc metrics show; details: kws report; against main: "
        "kws compare-metrics --base main"
    )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def main(argv: list[str] | None = None) -> int:
    parse_args(__name__, argv)
    print(summary())
    return 0


if __name__ == "__main__":
    run_main(main)
