"""Stage and tool stream_eval: streaming accuracy of a model on a long recording.

As the original test_streaming_accuracy: the model scores the clip starting every
``clip_stride_ms`` (``range(0, samples - clip_samples, stride)``, time = window start in whole ms),
RecognizeCommands turns the scores into commands, and the new non-silence commands are matched
against the ground truth (pipeline/recognize.py).

Fast: when the model's front end allows it and the clip stride is a whole number of feature
frames, features are computed once for the whole recording and each window is a slice of them
(frame for frame what the per-clip front end computes), scored in large batches; otherwise each
window's audio goes through ``predict_audio``, still batched. The score sequence is computed once;
the threshold sweep reruns only the cheap decoder on it.

Stage:  python -m pipeline.stream_eval --from-params
        (models/export + data/stream -> metrics/stream.json, metrics/stream_threshold_sweep.csv)
Tool:   python -m pipeline.stream_eval --model PATH --wav FILE --ground-truth FILE [--labels FILE]
        [--json OUT] [--sweep-csv OUT] [--clip-stride-ms 30 ...]
"""
from __future__ import annotations

import argparse
import csv
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.audio import read_wav
from pipeline.cli import StageError, run_main
from pipeline.config import load_params, validate
from pipeline.fsutil import atomic_write_json, atomic_write_text
from pipeline.recognize import decode, read_ground_truth, score_detections, window_averages

log = logging.getLogger(__name__)

MODEL_PATH = Path("models/export")
WAV_PATH = Path("data/stream/stream.wav")
GROUND_TRUTH_PATH = Path("data/stream/stream_labels.txt")
METRICS_PATH = Path("metrics/stream.json")
SWEEP_PATH = Path("metrics/stream_threshold_sweep.csv")
# The original test_streaming_accuracy.cc defaults (the tool's defaults; the stage uses params).
DEFAULTS = dict(clip_stride_ms=30, average_window_ms=500, detection_threshold=0.7,
                suppression_ms=1500, time_tolerance_ms=750, minimum_count=3)
SWEEP_THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 .. 0.95
SWEEP_COLUMNS = ("threshold", "detection_rate", "false_alarms_per_hour", "detections", "correct",
                 "wrong", "false_positives", "matched", "ground_truth_words")
BATCH = 512


@dataclass
class StreamScores:
    """The model's scores of every window: start times (ms) and [windows, labels]."""

    times_ms: np.ndarray
    scores: np.ndarray
    frame_reuse: bool
    seconds: float


def window_offsets(num_samples: int, clip_samples: int, stride_samples: int) -> np.ndarray:
    """Start samples of the windows, as the original: range(0, samples - clip, stride)."""
    if stride_samples < 1:
        raise StageError(f"clip stride of {stride_samples} samples; it must be at least one sample")
    return np.arange(0, max(0, num_samples - clip_samples), stride_samples, dtype=np.int64)


def can_reuse_frames(model, stride_samples: int) -> bool:
    """True when windows can be cut from one feature computation over the whole recording."""
    supports = getattr(model, "supports_frames", getattr(model, "frames_per_clip", None) is not None)
    frame_stride = getattr(model, "frame_stride_samples", None)
    return bool(supports) and bool(frame_stride) and stride_samples % frame_stride == 0


def stream_scores(model, audio: np.ndarray, clip_stride_ms: float, frame_reuse: bool = True,
                  batch_size: int = BATCH, progress: bool = True) -> StreamScores:
    """Score every window of ``audio`` (float32 1-D at the model's rate)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    rate, clip = int(model.sample_rate), int(model.desired_samples)
    stride = int(clip_stride_ms * rate / 1000)
    offsets = window_offsets(len(audio), clip, stride)
    times_ms = offsets * 1000 // rate
    labels = len(model.labels)
    start = time.perf_counter()
    reuse = frame_reuse and can_reuse_frames(model, stride)
    batches = range(0, len(offsets), batch_size)
    bar = tqdm(total=len(offsets), desc="windows", unit="win", disable=not progress)
    out = []
    if reuse:
        features = np.asarray(model.frame_features(audio), dtype=np.float32)
        step = stride // int(model.frame_stride_samples)
        frames = int(model.frames_per_clip)
        needed = (len(offsets) - 1) * step + frames if len(offsets) else 0
        if features.shape[0] < needed:
            raise StageError(
                f"frame_features gave {features.shape[0]} frames for {len(audio)} samples; "
                f"{needed} are needed (the model's frame_stride_samples / frames_per_clip disagree)"
            )
        span = np.arange(frames)
        for first in batches:
            rows = np.arange(first, min(first + batch_size, len(offsets))) * step
            out.append(np.asarray(model.predict_features(features[rows[:, None] + span])))
            bar.update(len(rows))
    else:
        span = np.arange(clip)
        for first in batches:
            starts = offsets[first : first + batch_size]
            out.append(np.asarray(model.predict_audio(audio[starts[:, None] + span])))
            bar.update(len(starts))
    bar.close()
    scores = np.concatenate(out).astype(np.float32) if out else np.zeros((0, labels), np.float32)
    return StreamScores(times_ms, scores, reuse, time.perf_counter() - start)


def false_alarms_per_hour(stats, duration_s: float) -> float:
    """Wrong detections and false positives per hour of recording."""
    return (stats.wrong + stats.false_positives) * 3600.0 / duration_s if duration_s > 0 else 0.0


def summarize(stats, duration_s: float, detections: int) -> dict:
    counts = dict(ground_truth_words=stats.ground_truth_words, detections=detections,
                  matched=stats.matched, correct=stats.correct, wrong=stats.wrong,
                  false_positives=stats.false_positives)
    rate = stats.correct / stats.ground_truth_words if stats.ground_truth_words else 0.0
    return {**counts, **stats.percentages, "detection_rate": rate,
            "false_alarms_per_hour": false_alarms_per_hour(stats, duration_s)}


def evaluate_scores(labels, scores: StreamScores, ground_truth, duration_s: float,
                    average_window_ms, detection_threshold, suppression_ms, time_tolerance_ms,
                    minimum_count, thresholds=SWEEP_THRESHOLDS):
    """Decode and score at the given threshold and at every sweep threshold.

    Returns ``(metrics dict, sweep rows, detections with outcomes)``.
    """
    averages = window_averages(scores.times_ms, scores.scores, average_window_ms, minimum_count)

    def run(threshold):
        found = decode(labels, averages, threshold, suppression_ms)
        return found, score_detections(ground_truth, found, time_tolerance_ms)

    found, stats = run(detection_threshold)
    metrics = summarize(stats, duration_s, len(found))
    sweep = []
    for threshold in thresholds:
        swept, swept_stats = run(threshold)
        sweep.append({"threshold": threshold, **summarize(swept_stats, duration_s, len(swept))})
    detections = [(label, t, score, outcome) for (label, t, score), outcome in zip(found, stats.outcomes)]
    return metrics, sweep, detections


def sweep_csv(rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SWEEP_COLUMNS)
    for row in rows:
        writer.writerow([_fmt(row[c]) for c in SWEEP_COLUMNS])
    return buffer.getvalue()


def _fmt(value):
    return f"{value:.6g}" if isinstance(value, float) else value


def run_stream_eval(model_path, wav_path, ground_truth_path, labels_path=None, *,
                    clip_stride_ms, average_window_ms, detection_threshold, suppression_ms,
                    time_tolerance_ms, minimum_count, frame_reuse=True, batch_size=BATCH,
                    progress=True, model=None):
    """Load (or take) a model, score the recording, decode, score against the ground truth.

    Returns ``(metrics, sweep rows, detections, StreamScores)``.
    """
    # Check the cheap inputs before loading a model.
    for path, what in ((wav_path, "recording"), (ground_truth_path, "ground-truth file")):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: {what} not found")
    try:
        ground_truth = read_ground_truth(ground_truth_path)
    except ValueError as exc:
        raise StageError(str(exc)) from None
    if model is None:
        from pipeline.inference import load_model

        model = load_model(model_path, labels_path)
    audio = read_wav(wav_path, sample_rate=int(model.sample_rate))
    if len(audio) <= model.desired_samples:
        raise StageError(f"{wav_path}: {len(audio)} samples is not longer than one clip "
                         f"({model.desired_samples} samples)")
    unknown = sorted({label for label, _ in ground_truth} - set(model.labels))
    if unknown:
        log.warning("ground-truth labels the model does not have (never correct): %s", ", ".join(unknown))
    scores = stream_scores(model, audio, clip_stride_ms, frame_reuse, batch_size, progress)
    duration_s = len(audio) / model.sample_rate
    metrics, sweep, detections = evaluate_scores(
        model.labels, scores, ground_truth, duration_s, average_window_ms, detection_threshold,
        suppression_ms, time_tolerance_ms, minimum_count)
    metrics.update(
        clip_stride_ms=clip_stride_ms, average_window_ms=average_window_ms,
        detection_threshold=detection_threshold, suppression_ms=suppression_ms,
        time_tolerance_ms=time_tolerance_ms, minimum_count=minimum_count,
        duration_s=duration_s, windows=int(len(scores.times_ms)), frame_reuse=scores.frame_reuse,
    )
    log.info("%d windows in %.1f s (%.0fx real time, frame reuse %s)", len(scores.times_ms),
             scores.seconds, duration_s / max(scores.seconds, 1e-9), "on" if scores.frame_reuse else "off")
    return metrics, sweep, detections, scores


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Streaming accuracy of a keyword model (RecognizeCommands).")
    parser.add_argument("--from-params", action="store_true",
                        help=f"the DVC stage: {MODEL_PATH} + data/stream, params.yaml stream_eval")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", help="models/export, a .tflite, a .keras, or the original frozen .pb")
    parser.add_argument("--wav", help="the recording (16-bit mono PCM at the model's rate)")
    parser.add_argument("--ground-truth", help="`label, time_ms` lines")
    parser.add_argument("--labels", help="labels file (default: found beside the model)")
    parser.add_argument("--json", help="write the metrics here")
    parser.add_argument("--sweep-csv", help="write the threshold sweep here")
    for key, value in DEFAULTS.items():
        parser.add_argument("--" + key.replace("_", "-"), type=type(value), default=None,
                            help=f"default {value} (the original's)")
    parser.add_argument("--batch-size", type=int, default=BATCH)
    parser.add_argument("--no-frame-reuse", action="store_true",
                        help="score each window from its audio (slower; for checking)")
    parser.add_argument("--verbose", action="store_true", help="print every detection")
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.from_params:
        settings = load_params(args.params, sections=["stream_eval"])["stream_eval"]
        model_path, wav, truth = MODEL_PATH, WAV_PATH, GROUND_TRUTH_PATH
        json_out, csv_out = METRICS_PATH, SWEEP_PATH
    else:
        missing = [flag for flag, value in (("--model", args.model), ("--wav", args.wav),
                                            ("--ground-truth", args.ground_truth)) if not value]
        if missing:
            raise StageError(f"missing {', '.join(missing)} (or use --from-params)")
        settings = dict(DEFAULTS)
        settings.update({k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None})
        validate({"stream_eval": settings}, sections=["stream_eval"])
        model_path, wav, truth = Path(args.model), Path(args.wav), Path(args.ground_truth)
        json_out, csv_out = args.json, args.sweep_csv
    for key in DEFAULTS:
        if getattr(args, key) is not None and args.from_params:
            raise StageError(f"--{key.replace('_', '-')} cannot be combined with --from-params "
                             "(set it in params.yaml)")
    metrics, sweep, detections, _ = run_stream_eval(
        model_path, wav, truth, args.labels, frame_reuse=not args.no_frame_reuse,
        batch_size=args.batch_size, **settings)
    if args.verbose:
        for label, t, score, outcome in detections:
            print(f"{t}ms {label}: {score:.3f} ({outcome})")
    print(f"{metrics['matched_percentage']:.1f}% matched, {metrics['correct_percentage']:.1f}% correct, "
          f"{metrics['wrong_percentage']:.1f}% wrong, {metrics['false_positive_percentage']:.1f}% "
          f"false positive ({metrics['ground_truth_words']} words, "
          f"{metrics['false_alarms_per_hour']:.1f} false alarms/hour)")
    if json_out:
        atomic_write_json(json_out, {"model": str(model_path), **metrics})
    if csv_out:
        atomic_write_text(csv_out, sweep_csv(sweep))
    return 0


if __name__ == "__main__":
    run_main(main)
