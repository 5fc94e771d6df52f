"""Streaming accuracy of any model on any long recording (RecognizeCommands, as the original
test_streaming_accuracy).

    python -m pipeline.tools.stream_eval --model PATH --wav FILE --ground-truth FILE
        [--labels FILE] [--json OUT] [--sweep-csv OUT] [--clip-stride-ms 30 ...] [--streaming]
        [--average-with OTHER_MODEL [...]]
        [--gate GATE_MODEL [--gate-threshold 0.5] [--gate-margin-ms 160] [--gate-stride-ms MS]
                           [--gate-rule margin|peak] [--gate-neighbours 0] [--gate-held min|costly]
                           [--gate-peak max|centre]]

``--streaming`` runs the export's ``model_streaming.tflite`` (one call per feature frame) instead
of the window model. ``--gate`` makes a cascade (pipeline/streaming/cascade.py): the gate (a cheap
model on a frame-reusing front end) scores every window, ``--model`` only the windows near the
gate's keyword evidence (keyword mass >= the gate threshold); for a model whose front end cannot
reuse frames, e.g. EfficientWord-Net's. ``--average-with`` decodes the mean of the model's window
scores and other models' (trained on the same labels; an ensemble, see docs/streaming.md,
"Averaging models").

The decoder options default to the export's operating point (its decoder.json, which freeze
writes from params.yaml's stream_eval section), else to the original's; a line says which were
used. The recording is read and scored block by block (its memory does not grow with it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import parse_args, run_main
from pipeline.core.fs import atomic_write_json, atomic_write_text, check_output_file
from pipeline.streaming.cascade import HELD, PEAKS, RULES, GateSettings
from pipeline.streaming.evaluate import check_inputs, format_summary, run_stream_eval, sweep_csv
from pipeline.streaming.operating_point import (
    add_decoder_flags,
    decoder_settings,
    describe,
    flag_overrides,
)
from pipeline.streaming.scorers import make_scorer
from pipeline.streaming.scores import BATCH

DESCRIPTION = "Streaming accuracy of any model on any long recording (RecognizeCommands)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        help="models/export, a .tflite, a .keras, or the original frozen .pb",
    )
    parser.add_argument(
        "--wav", required=True, help="the recording (16-bit mono PCM at the model's rate)"
    )
    parser.add_argument("--ground-truth", required=True, help="`label, time_ms` lines")
    parser.add_argument("--labels", help="labels file (default: found beside the model)")
    parser.add_argument("--json", help="write the metrics here")
    parser.add_argument("--sweep-csv", help="write the threshold sweep here")
    add_decoder_flags(parser, tolerance=True)
    parser.add_argument(
        "--batch-size", type=int, default=BATCH, help="windows scored per model call"
    )
    parser.add_argument(
        "--no-frame-reuse",
        action="store_true",
        help="score each window from its audio (slower; for checking)",
    )
    parser.add_argument(
        "--streaming",
        action="store_true",
        help="score with the export's model_streaming.tflite, one call per feature "
        "frame (--model is the export folder)",
    )
    parser.add_argument(
        "--average-with",
        nargs="+",
        default=[],
        metavar="OTHER_MODEL",
        help="more models (export folders, .tflite, .keras) with the same labels: the "
        "decoder reads the mean of every model's window scores",
    )
    gate = GateSettings()
    parser.add_argument(
        "--gate",
        help="cascade: a cheap model (export folder, .tflite, .keras) that scores "
        "every window; --model scores only the candidate windows",
    )
    parser.add_argument(
        "--gate-threshold",
        type=float,
        default=gate.threshold,
        help=f"a gate window passes when its wanted words' scores sum to at least this "
        f"(default {gate.threshold}; 0: every window is a candidate)",
    )
    parser.add_argument(
        "--gate-margin-ms",
        type=int,
        default=gate.margin_ms,
        help="windows within this of a passing gate window are candidates",
    )
    parser.add_argument(
        "--gate-stride-ms",
        type=int,
        default=None,
        help="the gate's stride (default: --clip-stride-ms); a multiple of its front end's "
        "frame hop lets it reuse frames (80 ms for the speech embedding)",
    )
    parser.add_argument(
        "--gate-rule",
        choices=RULES,
        default=gate.rule,
        help="margin: every window within --gate-margin-ms of a passing gate window; peak: "
        "per run of passing gate windows only the window at the gate's keyword-mass "
        "maximum (and --gate-neighbours either side), the run's other windows holding "
        f"its scores (default {gate.rule})",
    )
    parser.add_argument(
        "--gate-neighbours",
        type=int,
        default=gate.neighbours,
        help="peak rule: grid windows either side of each peak also scored",
    )
    parser.add_argument(
        "--gate-peak",
        choices=PEAKS,
        default=gate.peak,
        help="peak rule: each run's window at the gate's keyword-mass maximum (max) or the "
        f"run's middle window (centre) (default {gate.peak})",
    )
    parser.add_argument(
        "--gate-held",
        choices=HELD,
        default=gate.held,
        help="peak rule, the run's other windows: min: label by label the smaller of the "
        "peak's costly score and their own gate score; costly: the peak's scores "
        f"(default {gate.held})",
    )
    parser.add_argument("--verbose", action="store_true", help="print every detection")


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    for out in (args.json, args.sweep_csv):
        if out:
            check_output_file(out)
    cfg, source = decoder_settings(args.model, flag_overrides(args))
    gate = GateSettings(
        args.gate_threshold,
        args.gate_margin_ms,
        args.gate_stride_ms,
        args.gate_rule,
        args.gate_neighbours,
        args.gate_held,
        args.gate_peak,
    )
    check_inputs(args.wav, args.ground_truth)  # before loading a model
    scorer = make_scorer(
        Path(args.model),
        cfg.clip_stride_ms,
        labels_path=args.labels,
        streaming=args.streaming,
        gate=Path(args.gate) if args.gate else None,
        gate_settings=gate,
        average_with=[Path(p) for p in args.average_with],
        frame_reuse=not args.no_frame_reuse,
        batch_size=args.batch_size,
    )
    print(describe(cfg, source))
    metrics, sweep, detections, scores = run_stream_eval(
        scorer, Path(args.wav), Path(args.ground_truth), cfg
    )
    if args.verbose:
        for label, t, score, outcome in detections:
            print(f"{t}ms {label}: {score:.3f} ({outcome})")
    print(format_summary(metrics))
    print(
        f"scored {metrics['duration_s']:.0f} s of audio in {scores.seconds:.1f} s: "
        f"real-time factor {scores.seconds / metrics['duration_s']:.4f} ({scorer.describe()})"
    )
    if "cascade" in metrics:
        for stage in ("gate", "costly", "whole"):
            cost = metrics["cascade"][stage]
            speed = (
                "not timed"
                if cost["times_real_time"] is None
                else f"{cost['times_real_time']:>7.0f}x real time"
            )
            print(f"  {stage:<7} {cost['windows']:>7,} windows {cost['seconds']:>8.1f} s  {speed}")
    if args.json:
        atomic_write_json(args.json, {"model": str(args.model), **metrics})
    if args.sweep_csv:
        atomic_write_text(args.sweep_csv, sweep_csv(sweep))
    return 0


if __name__ == "__main__":
    run_main(main)
