"""Streaming accuracy of a model on a long recording: score, decode, match, sweep.

RecognizeCommands (recognize.py) turns the window scores (scores.py) into commands, and the new
non-silence commands are matched against the ground truth. The score sequence is computed once;
the threshold sweep reruns only the cheap decoder on it.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from pipeline.core.audio import read_wav
from pipeline.core.errors import StageError
from pipeline.streaming.cascade import CascadeScores, GateSettings, cascade_scores, stage_costs
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.recognize import (
    decode,
    read_ground_truth,
    score_detections,
    window_averages,
)
from pipeline.streaming.scores import (
    BATCH,
    StreamScores,
    can_reuse_frames,
    mean_scores,
    stream_scores,
    streaming_scores,
)

STREAMING_MODEL = "model_streaming.tflite"

log = logging.getLogger(__name__)

SWEEP_THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 .. 0.95
SWEEP_COLUMNS = (
    "threshold",
    "detection_rate",
    "false_alarms_per_hour",
    "detections",
    "correct",
    "wrong",
    "false_positives",
    "matched",
    "ground_truth_words",
)


def false_alarms_per_hour(stats, duration_s: float) -> float:
    """Wrong detections and false positives per hour of recording."""
    return (stats.wrong + stats.false_positives) * 3600.0 / duration_s if duration_s > 0 else 0.0


def summarize(stats, duration_s: float, detections: int) -> dict:
    counts = dict(
        ground_truth_words=stats.ground_truth_words,
        detections=detections,
        matched=stats.matched,
        correct=stats.correct,
        wrong=stats.wrong,
        false_positives=stats.false_positives,
    )
    rate = stats.correct / stats.ground_truth_words if stats.ground_truth_words else 0.0
    return {
        **counts,
        **stats.percentages,
        "detection_rate": rate,
        "false_alarms_per_hour": false_alarms_per_hour(stats, duration_s),
    }


def evaluate_scores(
    labels,
    scores: StreamScores,
    ground_truth,
    duration_s: float,
    cfg: StreamEvalConfig,
    thresholds=SWEEP_THRESHOLDS,
):
    """Decode and score at the configured threshold and at every sweep threshold.

    Returns ``(metrics dict, sweep rows, detections with outcomes)``.
    """
    averages = window_averages(
        scores.times_ms, scores.scores, cfg.average_window_ms, cfg.minimum_count
    )

    def run(threshold):
        found = decode(labels, averages, threshold, cfg.suppression_ms, cfg.minimum_margin)
        return found, score_detections(ground_truth, found, cfg.time_tolerance_ms)

    found, stats = run(cfg.detection_threshold)
    metrics = summarize(stats, duration_s, len(found))
    sweep = []
    for threshold in thresholds:
        swept, swept_stats = run(threshold)
        sweep.append({"threshold": threshold, **summarize(swept_stats, duration_s, len(swept))})
    detections = [
        (label, t, score, outcome) for (label, t, score), outcome in zip(found, stats.outcomes)
    ]
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


def run_stream_eval(
    model_path,
    wav_path,
    ground_truth_path,
    cfg: StreamEvalConfig,
    labels_path=None,
    *,
    frame_reuse=True,
    batch_size=BATCH,
    progress=True,
    model=None,
    streaming=False,
    gate=None,
    gate_settings: GateSettings = GateSettings(),
    average_with=(),
):
    """Load (or take) a model, score the recording, decode, score against the ground truth.

    ``streaming``: score with the export's ``model_streaming.tflite`` instead, one call per
    feature frame (``model_path`` is the export folder; its window model gives the front end).
    ``gate``: a cheap model (a path, or a loaded model) that scores every window, the model only
    the candidate windows (cascade.py); metrics gain ``cascade`` with each stage's cost.
    ``average_with``: more models (paths or loaded) with the same labels, each scoring every
    window; the decoder reads the mean of all the models' scores (``scores.mean_scores``), and
    metrics gain ``averaged_with`` (how many).
    Returns ``(metrics, sweep rows, detections, StreamScores)``.
    """
    if gate is not None and streaming:
        raise StageError("a gate (cascade) and the streaming model cannot be combined; use one")
    average_with = list(average_with)
    if average_with and (gate is not None or streaming):
        raise StageError(
            "averaging with other models works with the window model alone, not with a "
            "gate or the streaming model"
        )
    # Check the cheap inputs before loading a model.
    for path, what in ((wav_path, "recording"), (ground_truth_path, "ground-truth file")):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: {what} not found")
    ground_truth = read_ground_truth(ground_truth_path)
    if model is None:
        model = _loaded(model_path, labels_path)
    gate = _loaded(gate)
    average_with = [_loaded(other) for other in average_with]
    for other in average_with:
        if list(other.labels) != list(model.labels) or int(other.sample_rate) != int(
            model.sample_rate
        ):
            raise StageError(
                f"a model averaged with {model_path or 'the model'} has other labels or another "
                f"sample rate ({list(other.labels)} at {other.sample_rate} Hz against "
                f"{list(model.labels)} at {model.sample_rate} Hz)"
            )
    audio = read_wav(wav_path, sample_rate=int(model.sample_rate))
    if len(audio) <= model.desired_samples:
        raise StageError(
            f"{wav_path}: {len(audio)} samples is not longer than one clip "
            f"({model.desired_samples} samples)"
        )
    unknown = sorted({label for label, _ in ground_truth} - set(model.labels))
    if unknown:
        log.warning(
            "ground-truth labels the model does not have (never correct): %s", ", ".join(unknown)
        )
    if streaming:
        scores = streaming_scores(
            _streaming_runner(model_path, model), model, audio, cfg.clip_stride_ms, progress
        )
    elif gate is not None:
        scores = cascade_scores(
            model, gate, audio, cfg.clip_stride_ms, gate_settings, batch_size, progress
        )
    else:
        scores = stream_scores(model, audio, cfg.clip_stride_ms, frame_reuse, batch_size, progress)
        scores = mean_scores(
            scores,
            [
                stream_scores(other, audio, cfg.clip_stride_ms, frame_reuse, batch_size, progress)
                for other in average_with
            ],
        )
    duration_s = len(audio) / model.sample_rate
    metrics, sweep, detections = evaluate_scores(
        model.labels, scores, ground_truth, duration_s, cfg
    )
    settings = cfg.to_dict()
    if not settings["minimum_margin"]:  # off (the original decoder): metrics as they always were
        del settings["minimum_margin"]
    metrics.update(
        **settings,
        duration_s=duration_s,
        windows=int(len(scores.times_ms)),
        frame_reuse=scores.frame_reuse,
    )
    if average_with:
        metrics["averaged_with"] = len(average_with)
    if streaming:
        metrics["streaming_model"] = True  # scored by model_streaming.tflite, one call per frame
    if isinstance(scores, CascadeScores):
        metrics["cascade"] = {
            "threshold": gate_settings.threshold,
            "margin_ms": gate_settings.margin_ms,
            **(
                {
                    "rule": "peak",
                    "neighbours": gate_settings.neighbours,
                    "held": gate_settings.held,
                    "peak": gate_settings.peak,
                }
                if gate_settings.rule == "peak"
                else {}
            ),
            "gate_stride_ms": gate_settings.stride_ms or cfg.clip_stride_ms,
            **stage_costs(scores, duration_s),
        }
    log.info(
        "%d windows in %.1f s (%.0fx real time, %s)",
        len(scores.times_ms),
        scores.seconds,
        duration_s / max(scores.seconds, 1e-9),
        "streaming model, one call per frame"
        if streaming
        else f"cascade, the model on {int(scores.candidates.sum())} candidate windows"
        if isinstance(scores, CascadeScores)
        else f"frame reuse {'on' if scores.frame_reuse else 'off'}",
    )
    return metrics, sweep, detections, scores


def _loaded(model, labels_path=None):
    """A model given as a path loaded (pipeline.inference, imported only then); others as they are."""
    if not isinstance(model, (str, Path)):
        return model
    from pipeline.inference import load_model

    return load_model(Path(model), labels_path)


def has_streaming_model(export_dir) -> bool:
    """True when the export folder holds a streaming model (freeze wrote one)."""
    return (Path(export_dir) / STREAMING_MODEL).is_file()


def compare_streaming(
    export_dir, wav_path, ground_truth_path, cfg: StreamEvalConfig, window, progress=True
) -> tuple[dict, float | None]:
    """Score the recording again with the export's streaming model and compare with ``window``
    (the window model's run_stream_eval result): ``(streaming_agreement, seconds)``, or a dict
    saying why it was not compared (a clip stride of no whole number of feature frames) and None.
    """
    from pipeline.inference import load_model

    model = load_model(export_dir)
    stride = int(cfg.clip_stride_ms * model.sample_rate / 1000)
    if not can_reuse_frames(model, stride):
        return {
            "compared": False,
            "reason": f"clip_stride_ms {cfg.clip_stride_ms} is not a whole number "
            "of feature frames (the streaming model scores at frames)",
        }, None
    streaming = run_stream_eval(
        export_dir, wav_path, ground_truth_path, cfg, progress=progress, model=model, streaming=True
    )
    return {"compared": True, **streaming_agreement(window, streaming)}, streaming[3].seconds


def streaming_agreement(window, streaming) -> dict:
    """How the streaming model's run compares with the window model's on the same recording:
    ``window`` and ``streaming`` are run_stream_eval results. Detections are equal when the
    labels and times are (the scores are not compared there: the streaming model's agree within
    rounding at best). Timings stay out (a rerun must reproduce metrics/ exactly)."""
    import numpy as np

    window_found = [(label, t) for label, t, _, _ in window[2]]
    stream_found = [(label, t) for label, t, _, _ in streaming[2]]
    if not np.array_equal(window[3].times_ms, streaming[3].times_ms):
        raise StageError("the streaming model scored other windows than the window model")
    diff = np.abs(window[3].scores - streaming[3].scores)
    return {
        "detections_equal": window_found == stream_found,
        "detections": len(stream_found),
        "same_detections": len(set(window_found) & set(stream_found)),
        "max_abs_score_diff": float(f"{float(diff.max()) if diff.size else 0.0:.3g}"),
        "correct": int(streaming[0]["correct"]),
        "correct_percentage": streaming[0]["correct_percentage"],
    }


def _streaming_runner(model_path, model):
    from pipeline.inference.export_files import read_frontend
    from pipeline.inference.streaming_tflite import StreamingTFLite

    path = Path(model_path) / STREAMING_MODEL
    if not path.is_file():
        raise StageError(
            f"{path} not found: freeze writes it only for models that stream "
            "(see metrics/export.json 'streaming')"
        )
    frontend = Path(model_path) / "frontend.json"
    inputs = (
        read_frontend(frontend).get("streaming", {}).get("inputs") if frontend.is_file() else None
    )
    if not inputs:
        raise StageError(f"{frontend}: no 'streaming' entry naming the inputs of {STREAMING_MODEL}")
    runner = StreamingTFLite(
        list(inputs[1:]), path
    )  # input 0 is the frame; then the states in order
    if runner.num_labels != len(model.labels):
        raise StageError(
            f"{path} gives {runner.num_labels} scores but the export has {len(model.labels)} labels"
        )
    return runner


def format_summary(metrics: dict) -> str:
    """One line for people: matched / correct / wrong / false positives, false alarms per hour."""
    return (
        f"{metrics['matched_percentage']:.1f}% matched, {metrics['correct_percentage']:.1f}% correct, "
        f"{metrics['wrong_percentage']:.1f}% wrong, {metrics['false_positive_percentage']:.1f}% "
        f"false positive ({metrics['ground_truth_words']} words, "
        f"{metrics['false_alarms_per_hour']:.1f} false alarms/hour)"
    )
