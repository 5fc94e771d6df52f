"""Warped views at test time: an export's scores averaged over resampled copies of its input.

A workspace's export is scored on the real clips (and the real-speech recordings) as it is and
with the mean of its scores over the views.

    python -m bench.research.warped_views [--workspace .] [--data DIR] [--views 0.9 1.0 1.1]
        [--kinds float] [--streams FOLDER ... [--validation 4]]

A view ``f`` is the audio resampled (soxr) so that it sounds ``f`` times higher: formants, pitch
and tempo together, like a speaker with a shorter (f > 1) or longer vocal tract who talks a
little faster or slower. Each clip's view is cut or padded around its middle to the clip's
length; its softmax is averaged with the other views'. Prints the accuracy of every view alone
and of their mean over the real clips (``../shared/data/speech_commands_mini``, none trained on by
the default pipeline), scored as evaluate-dir scores a folder.

``--streams`` takes recording folders (``stream.wav`` and ``stream_labels.txt``, e.g. the
``streams/seed_*`` that ``bench.research.real_stream --workdir DIR`` keeps): each view's
recording is resampled as a whole and scored window by window as stream_eval scores it, each of
the original windows takes the scores of every view's window nearest to it in centre, and a
threshold sweep of RecognizeCommands at the workspace's other ``stream_eval`` settings reports
the most words correct at no more than 60 false alarms per hour, pooled, for 1.0 alone and for
the views' mean, with the real-time factor of the scoring (resampling included). That sweep runs
on the recordings themselves: a reference, not an operating point. ``--validation N`` picks one:
the threshold with the most words correct at no more than 60 false alarms per hour on N
recordings of the workspace's validation speakers (synthesized as
bench/research/dag_operating_point.py synthesizes them, its seeds), applied to the recordings.

Measures what an ensemble over views of the one input would buy before any inference path
computes it (docs/benchmarks.md, "Warped views at test time").
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import REPO, SHARED_MINI

BUDGET = 60.0  # false alarms per hour
SWEEP = [round(t, 2) for t in np.arange(0.30, 0.995, 0.01)]


def warp(audio: np.ndarray, factor: float, length: int | None = None) -> np.ndarray:
    """``audio`` (the last axis) sounding ``factor`` times higher; cut or padded around its
    middle to ``length`` samples when given."""
    import soxr

    if factor == 1.0:
        out = np.asarray(audio, np.float32)
    else:
        # soxr wants [samples, channels]: clips side by side as channels.
        frames = np.atleast_2d(np.asarray(audio, np.float32)).T
        out = soxr.resample(frames, factor, 1.0).T.astype(np.float32)
        out = out.reshape(*np.shape(audio)[:-1], out.shape[-1])
    if length is None:
        return out
    n = out.shape[-1]
    if n >= length:
        start = (n - length) // 2
        return out[..., start : start + length]
    pad = length - n
    widths = [(0, 0)] * (out.ndim - 1) + [(pad // 2, pad - pad // 2)]
    return np.pad(out, widths)


class WarpedViews:
    """A loaded model (pipeline.inference's interface) whose clip scores are the mean over
    ``factors`` of its scores of each view."""

    def __init__(self, model, factors):
        self.model, self.factors = model, list(factors)
        self.labels = model.labels
        self.sample_rate, self.desired_samples = model.sample_rate, model.desired_samples

    def predict_audio(self, audio: np.ndarray) -> np.ndarray:
        return np.mean(
            [self.model.predict_audio(warp(audio, f, audio.shape[-1])) for f in self.factors],
            axis=0,
        )


def aligned(view, factor: float, times_ms: np.ndarray, clip_ms: float):
    """A view's StreamScores on the original's windows ``times_ms``: each takes the view's window
    whose centre, in the original's time, is nearest to its own."""
    from pipeline.streaming.scores import StreamScores

    centres = (view.times_ms + clip_ms / 2) * factor
    wanted = times_ms + clip_ms / 2
    right = np.clip(np.searchsorted(centres, wanted), 1, len(centres) - 1)
    left = right - 1
    nearest = np.where(
        np.abs(centres[left] - wanted) <= np.abs(centres[right] - wanted), left, right
    )
    return StreamScores(times_ms, view.scores[nearest], view.frame_reuse, view.seconds)


def recording_sweeps(model, recordings, factors, settings) -> dict:
    """Pooled over ``recordings`` (``(audio, [(label, time_ms), ...])``): words correct, words,
    false alarms and seconds at every sweep threshold, for 1.0 alone and for the mean of
    ``factors``, and the seconds their scoring took: ``{"1.0": (rows, seconds), "views": ...}``
    with rows ``{threshold: (correct, words, alarms, seconds)}``."""
    from pipeline.streaming.evaluate import evaluate_scores
    from pipeline.streaming.scorers import WindowScorer
    from pipeline.streaming.scores import StreamScores

    scorer = WindowScorer(model, settings.clip_stride_ms, progress=False)
    clip_ms = 1000.0 * scorer.desired_samples / scorer.sample_rate
    pooled = {"1.0": ({}, 0.0), "views": ({}, 0.0)}
    for audio, truth in recordings:
        seconds = len(audio) / scorer.sample_rate
        start = time.perf_counter()
        plain = scorer.score(audio)
        plain_s = time.perf_counter() - start
        views = [
            plain if f == 1.0 else aligned(scorer.score(warp(audio, f)), f, plain.times_ms, clip_ms)
            for f in factors
        ]
        views_s = time.perf_counter() - start - (0.0 if 1.0 in factors else plain_s)
        mean = StreamScores(
            plain.times_ms, np.mean([v.scores for v in views], axis=0), True, views_s
        )
        for name, scores, took in (("1.0", plain, plain_s), ("views", mean, views_s)):
            rows, total = pooled[name]
            _, sweep, _ = evaluate_scores(scorer.labels, scores, truth, seconds, settings, SWEEP)
            for row in sweep:
                c, w, a, s = rows.get(row["threshold"], (0, 0, 0, 0.0))
                rows[row["threshold"]] = (
                    c + row["correct"],
                    w + row["ground_truth_words"],
                    a + row["wrong"] + row["false_positives"],
                    s + seconds,
                )
            pooled[name] = (rows, total + took)
    return pooled


def folder_recordings(folders, sample_rate: int):
    """``(audio, truth)`` of recording folders (stream.wav, stream_labels.txt)."""
    from pipeline.core.audio import read_wav
    from pipeline.streaming.evaluate import check_inputs

    for folder in folders:
        truth = check_inputs(folder / "stream.wav", folder / "stream_labels.txt")
        yield read_wav(folder / "stream.wav", sample_rate), truth


def validation_recordings(ws: Path, count: int, sample_rate: int):
    """``count`` recordings of the workspace's validation speakers, those that
    bench.research.dag_operating_point picks on."""
    from bench.research.dag_operating_point import validation_streams
    from pipeline.core import paths
    from pipeline.core.params import load_params
    from pipeline.data.stream_synthesis import StreamConfig

    stream = load_params(ws / paths.PARAMS, StreamConfig)
    with contextlib.chdir(ws):  # manifest paths are relative to the workspace
        yield from validation_streams(stream, count, stream.duration_s, sample_rate)


def at_threshold(rows: dict, threshold: float) -> tuple[float, float]:
    """(correct, false alarms per hour) at ``threshold``."""
    correct, words, alarms, seconds = rows[threshold]
    return correct / words, alarms * 3600 / seconds


def best_within_budget(rows: dict) -> tuple[float, float, float] | None:
    """(threshold, correct, false alarms per hour) with the most words correct at no more than
    BUDGET false alarms per hour, by the rule dag_operating_point picks with
    (bench.research.operating_point.pick, its ties included)."""
    from bench.research.operating_point import pick

    rates = {
        ((), threshold): {
            "detection_rate": correct / words,
            "false_alarms_per_hour": alarms * 3600 / seconds,
        }
        for threshold, (correct, words, alarms, seconds) in rows.items()
    }
    key = pick(rates, BUDGET)
    if key is None:
        return None
    return key[1], rates[key]["detection_rate"], rates[key]["false_alarms_per_hour"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=REPO, help="where dvc repro has run")
    parser.add_argument("--data", type=Path, default=SHARED_MINI, help="real clips")
    parser.add_argument(
        "--views", type=float, nargs="+", default=[0.9, 1.0, 1.1], help="warp factors"
    )
    parser.add_argument("--kinds", nargs="+", choices=("float", "int8"), default=["float"])
    parser.add_argument("--streams", type=Path, nargs="*", default=[], help="recording folders")
    parser.add_argument(
        "--validation",
        type=int,
        default=0,
        help="pick each threshold on this many recordings of the workspace's validation speakers",
    )
    args = parser.parse_args(argv)
    from pipeline.core import paths
    from pipeline.core.params import load_params
    from pipeline.inference import load_model
    from pipeline.streaming.config import StreamEvalConfig
    from pipeline.tools.evaluate_dir import evaluate_dir

    if any(not 0.5 <= f <= 2.0 for f in args.views):
        raise SystemExit(f"--views {args.views}: each factor must be within 0.5-2.0")
    if args.validation and not args.streams:
        raise SystemExit("--validation picks thresholds for --streams: give recording folders")
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: no such folder of real clips")
    for folder in args.streams:
        if not (folder / "stream.wav").is_file():
            raise SystemExit(f"{folder}: no stream.wav (a folder of real_stream --workdir)")
    ws = args.workspace.resolve()
    settings = load_params(ws / paths.PARAMS, StreamEvalConfig)
    lines = []
    for kind in args.kinds:
        model = load_model(ws / paths.EXPORT_DIR / f"model_{kind}.tflite")
        for name, factors in [*((f"{f:g}", [f]) for f in args.views), ("mean", args.views)]:
            result = evaluate_dir(WarpedViews(model, factors), args.data)
            label = "mean of " + ", ".join(f"{f:g}" for f in factors) if name == "mean" else name
            lines.append((kind, label, result["accuracy"]))
        if args.streams and kind == args.kinds[0]:
            rate = int(model.sample_rate)
            real = recording_sweeps(
                model, folder_recordings(args.streams, rate), args.views, settings
            )
            picked = {}
            if args.validation:
                validation = recording_sweeps(
                    model, validation_recordings(ws, args.validation, rate), args.views, settings
                )
                picked = {name: best_within_budget(rows) for name, (rows, _) in validation.items()}

    command = "python -m bench.research.warped_views " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    print(
        f"\n{command}\n{dt.date.today().isoformat()}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"export {ws / paths.EXPORT_DIR}; real clips {args.data}"
    )
    width = max(len(label) for _, label, _ in lines)
    header = f"{'model':<6} {'views':<{width}} {'real clips':>10}"
    print(header + "\n" + "-" * len(header))
    for kind, label, accuracy in lines:
        print(f"{kind:<6} {label:<{width}} {100 * accuracy:>9.1f}%")
    if args.streams:
        print(
            f"\n{len(args.streams)} recordings, {args.kinds[0]}, average window "
            f"{settings.average_window_ms} ms, stride {settings.clip_stride_ms} ms"
            + (", repeated words reported" if settings.repeat_commands else "")
            + f"; at no more than {BUDGET:.0f} false alarms per hour"
            + (
                f" on {args.validation} validation recordings (the pick), and the best of a sweep"
                " on the recordings themselves (a reference, not an operating point)"
                if args.validation
                else ": the best of a sweep on the recordings themselves (a reference only)"
            )
        )
        views = "mean of " + ", ".join(f"{f:g}" for f in args.views)
        width = max(len(views), 9)
        head = f"{'views':<{width}} "
        if args.validation:
            head += f"{'picked':>6} {'validation':>15} {'recordings at the pick':>22} "
        head += f"{'reference':>21} {'x real time':>11}"
        print(head + "\n" + "-" * len(head))
        for name, (rows, took) in real.items():
            line = f"{'1.0 alone' if name == '1.0' else views:<{width}} "
            if args.validation:
                pick = picked[name]
                if pick is None:
                    line += f"{'none within the budget':>45} "
                else:
                    rate, per_hour = at_threshold(rows, pick[0])
                    line += (
                        f"{pick[0]:>6.2f} {100 * pick[1]:>7.1f}% {pick[2]:>4.0f}/h "
                        f"{100 * rate:>14.1f}% {per_hour:>4.0f}/h "
                    )
            best = best_within_budget(rows)
            seconds = next(iter(rows.values()))[3]
            reference = "none" if best is None else f"{100 * best[1]:.1f}% {best[2]:.0f}/h"
            if best is not None:
                reference += f" at {best[0]:.2f}"
            line += f"{reference:>21} {seconds / took:>10.0f}x"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
