"""Streaming accuracy of a scorer on a long recording: score, decode, match, sweep.

A scorer (scorers.py) gives the window scores, RecognizeCommands (recognize.py) turns them into
commands, and the new non-silence commands are matched against the ground truth. The score
sequence is computed once; the threshold sweep reruns only the cheap decoder on it.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from pipeline.core.audio import WavReader
from pipeline.core.errors import StageError
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.recognize import (
    decode,
    read_ground_truth,
    score_detections,
    window_averages,
)
from pipeline.streaming.scorers import Scorer, StreamingScorer, WholeFeed, WindowScorer, load
from pipeline.streaming.scores import StreamScores, can_reuse_frames

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
        found = decode(
            labels,
            averages,
            threshold,
            cfg.suppression_ms,
            cfg.minimum_margin,
            cfg.repeat_commands,
        )
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


class StreamEvalResult(NamedTuple):
    """What run_stream_eval gives: the metrics, the threshold sweep's rows, the detections
    (``(label, time_ms, score, outcome)``) and the scorer's window scores."""

    metrics: dict
    sweep: list
    detections: list
    scores: StreamScores


def check_inputs(recording, truth) -> list:
    """The ground truth of ``truth``, after checking that both files are there: the cheap checks,
    which the tools make before they load a model."""
    for path, what in ((recording, "recording"), (truth, "ground-truth file")):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: {what} not found")
    return read_ground_truth(truth)


def score_recording(scorer: Scorer, reader: WavReader, progress: bool = False) -> StreamScores:
    """Every window's scores of the recording ``reader`` reads, block by block through the
    scorer's feed (the memory of a block and of the scores, whatever the recording's length;
    the scores ``scorer.score`` gives the whole recording)."""
    feed = scorer.feed()
    parts = []
    bar = tqdm(total=reader.num_samples, desc="audio", unit="sample", disable=not progress)
    for block in reader.blocks():
        parts.append(feed.push(block))
        bar.update(len(block))
    parts.append(feed.finish())
    bar.close()
    if isinstance(feed, WholeFeed):  # the scorer's own (a cascade's tell what the gate did)
        return feed.whole
    return StreamScores(
        np.concatenate([part.times_ms for part in parts]),
        np.concatenate([part.scores for part in parts]),
        feed.frame_reuse,
        feed.seconds,
    )


def run_stream_eval(
    scorer: Scorer, recording, truth, settings: StreamEvalConfig, progress: bool = False
) -> StreamEvalResult:
    """Score the ``recording`` (a WAV file) with ``scorer``, decode, and score the detections
    against ``truth`` (a file of ``label, time_ms`` lines) with the decoder ``settings``, whose
    ``clip_stride_ms`` must be the scorer's stride. The metrics gain what the scorer reports
    (scorers.py: ``cascade``, ``averaged_with``, ``streaming_model``). The recording is read
    and scored block by block (``score_recording``)."""
    ground_truth = check_inputs(recording, truth)
    if scorer.stride_ms != settings.clip_stride_ms:
        raise StageError(
            f"the {scorer.describe()} scores windows every {scorer.stride_ms} ms but the decoder "
            f"settings say clip_stride_ms {settings.clip_stride_ms}"
        )
    reader = WavReader(recording, int(scorer.sample_rate))
    if reader.num_samples <= scorer.desired_samples:
        raise StageError(
            f"{recording}: {reader.num_samples} samples is not longer than one clip "
            f"({scorer.desired_samples} samples)"
        )
    unknown = sorted({label for label, _ in ground_truth} - set(scorer.labels))
    if unknown:
        log.warning(
            "ground-truth labels the model does not have (never correct): %s", ", ".join(unknown)
        )
    scores = score_recording(scorer, reader, progress)
    duration_s = reader.num_samples / scorer.sample_rate
    metrics, sweep, detections = evaluate_scores(
        scorer.labels, scores, ground_truth, duration_s, settings
    )
    recorded = settings.to_dict()
    for beyond in ("minimum_margin", "repeat_commands"):
        if not recorded[beyond]:  # off (the original decoder): metrics as they always were
            del recorded[beyond]
    metrics.update(
        **recorded,
        duration_s=duration_s,
        windows=int(len(scores.times_ms)),
        frame_reuse=scores.frame_reuse,
    )
    metrics.update(scorer.report(scores, duration_s))
    log.info(
        "%d windows in %.1f s (%.0fx real time, %s)",
        len(scores.times_ms),
        scores.seconds,
        duration_s / max(scores.seconds, 1e-9),
        scorer.describe(scores),
    )
    return StreamEvalResult(metrics, sweep, detections, scores)


def compare_streaming(
    export_dir,
    recording,
    truth,
    settings: StreamEvalConfig,
    window: StreamEvalResult,
    model,
    progress: bool = True,
) -> tuple[dict, float | None]:
    """Score the recording again with the export's streaming model and compare with ``window``
    (the run_stream_eval result of the export's window model ``model``, loaded):
    ``(streaming_agreement, seconds)``, or a dict saying why it was not compared (a clip stride of
    no whole number of feature frames) and None.
    """
    stride = int(settings.clip_stride_ms * model.sample_rate / 1000)
    if not can_reuse_frames(model, stride):
        return {
            "compared": False,
            "reason": f"clip_stride_ms {settings.clip_stride_ms} is not a whole number "
            "of feature frames (the streaming model scores at frames)",
        }, None
    scorer = StreamingScorer.from_export(
        export_dir, model, settings.clip_stride_ms, progress=progress
    )
    streaming = run_stream_eval(scorer, recording, truth, settings)
    return {"compared": True, **streaming_agreement(window, streaming)}, streaming.scores.seconds


# The export's int8 model (what a device runs), scored on the recording beside the float one.
INT8_TFLITE = "model_int8.tflite"


def int8_figures(
    export_dir, recording, truth, settings: StreamEvalConfig, window: StreamEvalResult
) -> tuple[dict | None, float | None]:
    """The export's int8 model on the same recording at the same decoder ``settings``: its counts
    and how its detections compare with ``window`` (the run_stream_eval result of the float
    window model), and the seconds it took; ``(None, None)`` for an export without one."""
    path = Path(export_dir) / INT8_TFLITE
    if not path.is_file():
        return None, None
    scorer = WindowScorer(load(path), settings.clip_stride_ms, progress=False)
    int8 = run_stream_eval(scorer, recording, truth, settings)
    keys = ("correct_percentage", "false_alarms_per_hour", "correct", "wrong", "false_positives")
    return {
        **{key: int8.metrics[key] for key in keys},
        **same_detections(window, int8),
    }, int8.scores.seconds


def same_detections(first: StreamEvalResult, second: StreamEvalResult) -> dict:
    """Whether two runs over the same recording detected the same words at the same times
    (labels and times; scores aside), how many ``second`` made and how many of them ``first``
    made too."""
    first_found = [(label, t) for label, t, _, _ in first.detections]
    second_found = [(label, t) for label, t, _, _ in second.detections]
    return {
        "detections_equal": first_found == second_found,
        "detections": len(second_found),
        "same_detections": len(set(first_found) & set(second_found)),
    }


def streaming_agreement(window, streaming) -> dict:
    """How the streaming model's run compares with the window model's on the same recording:
    ``window`` and ``streaming`` are run_stream_eval results. Detections are equal when the
    labels and times are (the scores are not compared there: the streaming model's agree within
    rounding at best). Timings stay out (a rerun must reproduce metrics/ exactly)."""
    import numpy as np

    if not np.array_equal(window.scores.times_ms, streaming.scores.times_ms):
        raise StageError("the streaming model scored other windows than the window model")
    diff = np.abs(window.scores.scores - streaming.scores.scores)
    return {
        **same_detections(window, streaming),
        "max_abs_score_diff": float(f"{float(diff.max()) if diff.size else 0.0:.3g}"),
        "correct": int(streaming.metrics["correct"]),
        "correct_percentage": streaming.metrics["correct_percentage"],
    }


def format_summary(metrics: dict) -> str:
    """One line for people: matched / correct / wrong / false positives, false alarms per hour."""
    return (
        f"{metrics['matched_percentage']:.1f}% matched, "
        f"{metrics['correct_percentage']:.1f}% correct, "
        f"{metrics['wrong_percentage']:.1f}% wrong, {metrics['false_positive_percentage']:.1f}% "
        f"false positive ({metrics['ground_truth_words']} words, "
        f"{metrics['false_alarms_per_hour']:.1f} false alarms/hour)"
    )
