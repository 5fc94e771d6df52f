"""Streaming accuracy of any model on any long recording (RecognizeCommands, as the original
test_streaming_accuracy).

    python -m pipeline.tools.stream_eval --model PATH --wav FILE --ground-truth FILE
        [--labels FILE] [--json OUT] [--sweep-csv OUT] [--clip-stride-ms 30 ...] [--streaming]

``--streaming`` runs the export's ``model_streaming.tflite`` (one call per feature frame) instead
of the window model.

The decoder options default to the original's (the same as params.yaml's stream_eval section).
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from pipeline.cli import run_main
from pipeline.core.fs import atomic_write_json, atomic_write_text, check_output_file
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.evaluate import format_summary, run_stream_eval, sweep_csv
from pipeline.streaming.scores import BATCH


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True,
                        help="models/export, a .tflite, a .keras, or the original frozen .pb")
    parser.add_argument("--wav", required=True, help="the recording (16-bit mono PCM at the model's rate)")
    parser.add_argument("--ground-truth", required=True, help="`label, time_ms` lines")
    parser.add_argument("--labels", help="labels file (default: found beside the model)")
    parser.add_argument("--json", help="write the metrics here")
    parser.add_argument("--sweep-csv", help="write the threshold sweep here")
    for field in dataclasses.fields(StreamEvalConfig):
        parser.add_argument("--" + field.name.replace("_", "-"), type=type(field.default),
                            default=field.default, help=f"default {field.default} (the original's)")
    parser.add_argument("--batch-size", type=int, default=BATCH)
    parser.add_argument("--no-frame-reuse", action="store_true",
                        help="score each window from its audio (slower; for checking)")
    parser.add_argument("--streaming", action="store_true",
                        help="score with the export's model_streaming.tflite, one call per feature "
                             "frame (--model is the export folder)")
    parser.add_argument("--verbose", action="store_true", help="print every detection")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    for out in (args.json, args.sweep_csv):
        if out:
            check_output_file(out)
    settings = {f.name: getattr(args, f.name) for f in dataclasses.fields(StreamEvalConfig)}
    cfg = StreamEvalConfig.from_dict(settings, prefix="stream_eval")
    metrics, sweep, detections, scores = run_stream_eval(
        Path(args.model), Path(args.wav), Path(args.ground_truth), cfg, args.labels,
        frame_reuse=not args.no_frame_reuse, batch_size=args.batch_size, streaming=args.streaming)
    if args.verbose:
        for label, t, score, outcome in detections:
            print(f"{t}ms {label}: {score:.3f} ({outcome})")
    print(format_summary(metrics))
    print(f"scored {metrics['duration_s']:.0f} s of audio in {scores.seconds:.1f} s: real-time factor "
          f"{scores.seconds / metrics['duration_s']:.4f} ({'streaming model' if args.streaming else 'window model'})")
    if args.json:
        atomic_write_json(args.json, {"model": str(args.model), **metrics})
    if args.sweep_csv:
        atomic_write_text(args.sweep_csv, sweep_csv(sweep))
    return 0


if __name__ == "__main__":
    run_main(main)
