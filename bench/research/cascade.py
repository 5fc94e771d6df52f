"""Benchmark: the streaming cascade (pipeline/streaming/cascade.py) against its two models alone.

On one recording, with one decoder setting (params.yaml's stream_eval section unless overridden):
the gate alone (every window), the costly model alone (every window, from its audio: what
stream_eval does for a front end that cannot reuse frames) and the cascade at each gate
threshold. Per row: each stage's windows and seconds, the whole's times real time, and the
streaming accuracy (correct %, false alarms per hour).

    python -m bench.research.cascade --model COSTLY_EXPORT --gate GATE_EXPORT
        [--wav data/stream/stream.wav --ground-truth data/stream/stream_labels.txt]
        [--clip-stride-ms 80] [--gate-stride-ms 80] [--gate-thresholds 0.1 0.3 0.5]
        [--margin-ms 160] [--rules margin peak] [--neighbours 0 1] [--held min costly]
        [--peaks max centre] [--seconds 600] [--no-alone] [--no-gate-alone]

``--rules``: the candidate rules to run at each gate threshold (``margin``: every window within
``--margin-ms`` of a passing gate window; ``peak``: per run of passing gate windows the window at
the gate's keyword-mass maximum, and each of ``--neighbours`` windows either side, the rest of the
run held at it: ``--held`` min or costly; pipeline/streaming/cascade.py).

The exports come from the pipeline (models/export of a run), e.g. in two clones:
``kws preset real-speech shared-mini --run`` (the speech-embedding model: a gate that reuses
frames) and ``kws preset real-speech-pair shared-mini --run`` (speech embedding + EfficientWord-Net:
the costly model); both runs synthesize the same recording (data/stream).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

from bench.common import REPO, repo_params


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", required=True, help="the costly model (an export folder, .tflite, .keras)"
    )
    parser.add_argument(
        "--gate", required=True, help="the gate (a model on a frame-reusing front end)"
    )
    parser.add_argument("--wav", default=str(REPO / "data/stream/stream.wav"))
    parser.add_argument("--ground-truth", default=str(REPO / "data/stream/stream_labels.txt"))
    parser.add_argument("--clip-stride-ms", type=int, default=80)
    parser.add_argument(
        "--gate-stride-ms", type=int, default=None, help="default: --clip-stride-ms"
    )
    parser.add_argument("--gate-thresholds", type=float, nargs="+", default=[0.1, 0.3, 0.5])
    parser.add_argument("--margin-ms", type=int, default=160)
    parser.add_argument(
        "--detection-threshold",
        type=float,
        default=None,
        help="default: params.yaml stream_eval.detection_threshold",
    )
    parser.add_argument("--rules", nargs="+", choices=("margin", "peak"), default=["margin"])
    parser.add_argument(
        "--neighbours",
        type=int,
        nargs="+",
        default=[0],
        help="peak rule: the numbers of grid neighbours to try",
    )
    parser.add_argument(
        "--held",
        nargs="+",
        choices=("min", "costly"),
        default=["min"],
        help="peak rule: how the run's other windows hold the peak's scores",
    )
    parser.add_argument(
        "--peaks",
        nargs="+",
        choices=("max", "centre"),
        default=["max"],
        help="peak rule: each run's keyword-mass maximum or its middle window",
    )
    parser.add_argument("--no-gate-alone", action="store_true", help="skip the gate alone")
    parser.add_argument(
        "--seconds", type=float, default=None, help="use only the first SECONDS of the recording"
    )
    parser.add_argument(
        "--no-alone", action="store_true", help="skip the costly model alone (slow)"
    )
    args = parser.parse_args(argv)

    from pipeline.core.audio import read_wav, write_wav
    from pipeline.data.stream_synthesis import format_labels
    from pipeline.inference import load_model
    from pipeline.streaming.cascade import GateSettings
    from pipeline.streaming.evaluate import run_stream_eval
    from pipeline.streaming.recognize import read_ground_truth
    from pipeline.streaming.scorers import CascadeScorer, WindowScorer

    cfg = repo_params()["stream_eval"]
    cfg = dataclasses.replace(
        cfg,
        clip_stride_ms=args.clip_stride_ms,
        **(
            {}
            if args.detection_threshold is None
            else {"detection_threshold": args.detection_threshold}
        ),
    )
    model, gate = load_model(Path(args.model)), load_model(Path(args.gate))
    wav, truth = Path(args.wav), Path(args.ground_truth)
    tmp = tempfile.TemporaryDirectory()
    if args.seconds:
        audio = read_wav(wav, sample_rate=int(model.sample_rate))[
            : int(args.seconds * model.sample_rate)
        ]
        kept = [
            (label, t) for label, t in read_ground_truth(truth) if t < args.seconds * 1000 - 1000
        ]
        wav, truth = Path(tmp.name) / "stream.wav", Path(tmp.name) / "labels.txt"
        write_wav(wav, audio, int(model.sample_rate))
        truth.write_text(format_labels(kept), encoding="utf-8")
    print(f"load at start: {os.getloadavg()[0]:.1f} (1-min average, {os.cpu_count()} CPUs)")
    print(
        f"costly model {args.model}\ngate         {args.gate}\nrecording    {args.wav}"
        + (f" (first {args.seconds:.0f} s)" if args.seconds else "")
    )
    gate_stride = args.gate_stride_ms or args.clip_stride_ms
    rows = []

    def add(name, metrics, scores, gate_cost=None, costly_cost=None):
        duration = metrics["duration_s"]
        rows.append(
            (
                name,
                gate_cost,
                costly_cost,
                scores.seconds,
                duration / scores.seconds,
                100 * metrics["detection_rate"],
                metrics["false_alarms_per_hour"],
                metrics["matched_percentage"],
            )
        )

    gate_cfg = dataclasses.replace(cfg, clip_stride_ms=gate_stride)
    if not args.no_gate_alone:
        metrics, _, _, scores = run_stream_eval(
            WindowScorer(gate, gate_stride, progress=False), wav, truth, gate_cfg
        )
        add(
            f"gate alone (stride {gate_stride} ms)",
            metrics,
            scores,
            (len(scores.times_ms), scores.seconds),
        )
    if not args.no_alone:
        metrics, _, _, scores = run_stream_eval(
            WindowScorer(model, cfg.clip_stride_ms, frame_reuse=False, progress=False),
            wav,
            truth,
            cfg,
        )
        add(
            f"costly alone (stride {args.clip_stride_ms} ms)",
            metrics,
            scores,
            None,
            (len(scores.times_ms), scores.seconds),
        )
    plans = [
        (rule, n, h, k)
        for rule in args.rules
        for n in (args.neighbours if rule == "peak" else [0])
        for h in (args.held if rule == "peak" else ["min"])
        for k in (args.peaks if rule == "peak" else ["max"])
    ]
    for threshold in args.gate_thresholds:
        for rule, neighbours, held, peak in plans:
            settings = GateSettings(
                threshold, args.margin_ms, args.gate_stride_ms, rule, neighbours, held, peak
            )
            metrics, _, _, scores = run_stream_eval(
                CascadeScorer(model, gate, cfg.clip_stride_ms, settings, progress=False),
                wav,
                truth,
                cfg,
            )
            c = metrics["cascade"]
            name = (
                f"cascade {threshold:g}, {peak} ±{neighbours}, held {held}"
                if rule == "peak"
                else f"cascade {threshold:g}, margin {args.margin_ms} ms"
            )
            add(
                name,
                metrics,
                scores,
                (c["gate"]["windows"], c["gate"]["seconds"]),
                (c["costly"]["windows"], c["costly"]["seconds"]),
            )

    print(
        f"\ndecoder: detection threshold {cfg.detection_threshold}, "
        f"average {cfg.average_window_ms} ms, suppression {cfg.suppression_ms} ms; "
        f"costly grid {args.clip_stride_ms} ms, gate {gate_stride} ms"
    )
    print(
        f"{'configuration':<40} {'gate win':>8} {'gate s':>7} {'costly win':>10} {'costly s':>8} "
        f"{'whole s':>8} {'x real time':>11} {'correct %':>9} {'FA/hour':>8}"
    )
    for name, g, c, whole, speed, correct, fa, _ in rows:
        gw, gs = (f"{g[0]:,}", f"{g[1]:.1f}") if g else ("-", "-")
        cw, cs = (f"{c[0]:,}", f"{c[1]:.1f}") if c else ("-", "-")
        print(
            f"{name:<40} {gw:>8} {gs:>7} {cw:>10} {cs:>8} {whole:>8.1f} {speed:>11.1f} "
            f"{correct:>9.1f} {fa:>8.1f}"
        )
    print(f"\nload at end: {os.getloadavg()[0]:.1f}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
