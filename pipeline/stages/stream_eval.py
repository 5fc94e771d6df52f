"""Stage `stream_eval`: streaming accuracy of the exported model on the synthetic recording
(metrics/stream.json, and the threshold sweep as a DVC plot).

The export's int8 model (``model_int8.tflite``, what a device runs) scores the recording too, at
the same decoder settings: ``int8`` in metrics/stream.json holds its words correct and false
alarms, and whether its detections are the float model's.

When the export holds ``model_streaming.tflite`` the recording is also scored with it, one call
per feature frame, and ``streaming`` in metrics/stream.json says whether its detections are the
window model's (``detections_equal``; ``max_abs_score_diff`` over every window; ``compared:
false`` with the reason when the clip stride is no whole number of frames). The real-time
factors of both go to the log only (timings are not reproducible).

Usage: ``python -m pipeline.stages.stream_eval [--params params.yaml]``; the same evaluation of
any model on any recording is the tool ``python -m pipeline.tools.stream_eval``.
"""

from __future__ import annotations

import argparse
import logging

from pipeline.cli import parse_args, run_stage
from pipeline.core import paths
from pipeline.core.fs import atomic_write_text
from pipeline.core.metrics_files import write_metrics
from pipeline.core.params import load_params
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.evaluate import (
    check_inputs,
    compare_streaming,
    format_summary,
    int8_figures,
    run_stream_eval,
    sweep_csv,
)
from pipeline.streaming.scorers import WindowScorer, has_streaming_model, load

DESCRIPTION = "Stage stream_eval: streaming accuracy of the export on the synthetic recording."

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=str(paths.PARAMS), help="the parameters file")


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    cfg = load_params(args.params, StreamEvalConfig)
    check_inputs(paths.STREAM_WAV, paths.STREAM_LABELS)  # before loading the model
    model = load(paths.EXPORT_DIR)
    window = run_stream_eval(
        WindowScorer(model, cfg.clip_stride_ms), paths.STREAM_WAV, paths.STREAM_LABELS, cfg
    )
    metrics, sweep = window.metrics, window.sweep
    print(format_summary(metrics))
    int8, int8_seconds = int8_figures(
        paths.EXPORT_DIR, paths.STREAM_WAV, paths.STREAM_LABELS, cfg, window
    )
    if int8 is not None:
        metrics["int8"] = int8
        print(
            f"int8 model: {int8['correct_percentage']:.1f}% correct, "
            f"{int8['false_alarms_per_hour']:.1f} false alarms/hour"
            + ("" if int8["detections_equal"] else " (other detections than float)")
        )
        log.info(
            "real-time factor: int8 model %.4f (seconds per second of audio)",
            int8_seconds / metrics["duration_s"],
        )
    if has_streaming_model(paths.EXPORT_DIR):
        metrics["streaming"], seconds = compare_streaming(
            paths.EXPORT_DIR, paths.STREAM_WAV, paths.STREAM_LABELS, cfg, window, model
        )
        if seconds is not None:
            duration = metrics["duration_s"]
            log.info(
                "real-time factor: window model %.4f, streaming model %.4f (seconds per second "
                "of audio)",
                window.scores.seconds / duration,
                seconds / duration,
            )
        print(f"streaming model: {metrics['streaming']}")
    write_metrics(paths.STREAM_METRICS, {"model": str(paths.EXPORT_DIR), **metrics})
    atomic_write_text(paths.STREAM_SWEEP, sweep_csv(sweep))
    return 0


if __name__ == "__main__":
    run_stage(main)
