"""The DAG's streaming operating point, picked on validation streams of its own split.

    python bench/dag_operating_point.py [--workspace .] [--streams 4] [--test-streams 4] [--duration 600]
        [--average-with OTHER/models/export]

For a workspace where `dvc repro` (or `kws preset ... --run`) has run: synthesizes ``--streams``
recordings from the *validation* split's clips (data/split/validation.csv: its speakers only), as
synthesize_stream synthesizes the test split's (``pipeline.streaming.synthesize.split_streams``,
the ``stream`` section's makeup, seeds 9001, 9002, ...), scores them and the pipeline's test
recording (data/stream/, synthesized from the test split) with the exported model
(models/export) at ``stream_eval.clip_stride_ms``, and sweeps the detection threshold
(0.30-0.99; with ``average_window_ms`` in the second decoder choice) with RecognizeCommands as
stream_eval runs it. Per false-alarm budget (30 and 60 per hour), the operating point with the
highest detection rate at no more than the budget on the validation streams *pooled* is picked
and applied once to the test recording, and to ``--test-streams`` more recordings synthesized the
same way from the test split (seeds 8001, ...; pooled: one 600 s recording holds 200 words and
one false alarm is 6 per hour, so a single recording's figures move by several points between
seeds). Prints the picks, the test figures (and, for reference only, what the test recording's
own sweep would allow), and what the test recording's errors are at
each pick: a keyword detected as another keyword, a keyword on an unknown word, ``_unknown_`` on
a keyword, a second detection of one word, false positives (no word within the tolerance), and
the words missed. ``--average-with`` scores every recording with a second export too (one trained
on the same split, e.g. another preset's) and decodes the mean of the two models' scores.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.operating_point import BUDGETS, TARGET, pick, pooled, sweep  # noqa: E402

VALIDATION_SEED = 9001
TEST_SEED = 8001
DECODERS = {"threshold": {}, "threshold + average window": {"average_window_ms": (500, 750, 1000, 1500)}}


def error_kinds(truth, found, tolerance_ms) -> collections.Counter:
    """What each non-correct detection was, and the words left undetected (as score_detections
    matches them: the first ground-truth word within the tolerance decides)."""
    from pipeline.core.labels import UNKNOWN_LABEL
    from pipeline.streaming.recognize import score_detections

    truth = sorted(truth, key=lambda e: e[1])
    stats = score_detections(truth, found, tolerance_ms)
    kinds = collections.Counter()
    detected = set()
    for (label, t, *_), outcome in zip(found, stats.outcomes):
        hit = next((i for i, (_, tt) in enumerate(truth) if t - tolerance_ms <= tt <= t + tolerance_ms), None)
        if outcome == "correct":
            detected.add(hit)
            continue
        if outcome == "false_positive":
            kinds["false positive (no word near)"] += 1
            continue
        said = truth[hit][0]
        if said == label:
            kinds["second detection of a word"] += 1
        elif said == UNKNOWN_LABEL:
            kinds["keyword on an unknown word"] += 1
        elif label == UNKNOWN_LABEL:
            kinds["_unknown_ on a keyword"] += 1
        else:
            kinds["keyword as another keyword"] += 1
    missed = [truth[i][0] for i in range(len(truth)) if i not in detected]
    kinds["missed keywords"] = sum(1 for w in missed if w != UNKNOWN_LABEL)
    kinds["missed unknown words"] = sum(1 for w in missed if w == UNKNOWN_LABEL)
    return kinds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("."))
    parser.add_argument("--streams", type=int, default=4, help="validation recordings (pooled)")
    parser.add_argument("--test-streams", type=int, default=4,
                        help="more test-split recordings (pooled, beside data/stream)")
    parser.add_argument("--duration", type=float, default=600, help="seconds of each validation recording")
    parser.add_argument("--average-with", type=Path, metavar="EXPORT",
                        help="a second export (models/export of a workspace trained on the same split): "
                             "its window scores are averaged with the workspace model's (an ensemble of two)")
    args = parser.parse_args(argv)
    ws = args.workspace.resolve()
    other_dir = args.average_with.resolve() if args.average_with else None
    os.chdir(ws)  # manifest paths are relative to the workspace

    from pipeline.core import paths
    from pipeline.core.audio import read_wav
    from pipeline.core.params import load_params
    from pipeline.data.manifest import MANIFEST_NAMES
    from pipeline.inference import load_model
    from pipeline.streaming.config import StreamConfig, StreamEvalConfig
    from pipeline.streaming.recognize import decode, read_ground_truth, window_averages
    from pipeline.streaming.scores import stream_scores
    from pipeline.streaming.synthesize import split_streams

    stream, cfg = load_params(paths.PARAMS, StreamConfig, StreamEvalConfig)
    model = load_model(paths.EXPORT_DIR)
    labels = list(model.labels)
    rate = int(model.sample_rate)
    other = load_model(other_dir) if other_dir else None
    if other is not None and (list(other.labels) != labels or int(other.sample_rate) != rate):
        raise SystemExit(f"{other_dir}: its labels or sample rate differ from {paths.EXPORT_DIR}'s")
    settings = [dataclasses.replace(stream, duration_s=args.duration, seed=VALIDATION_SEED + k)
                for k in range(args.streams)]

    def scored(audio, truth, role):
        start = time.perf_counter()
        s = stream_scores(model, audio, cfg.clip_stride_ms, progress=False)
        if other is not None:
            s2 = stream_scores(other, audio, cfg.clip_stride_ms, progress=False)
            if not np.array_equal(s.times_ms, s2.times_ms):
                raise SystemExit(f"{other_dir}: scores at other window times than {paths.EXPORT_DIR}'s")
            s = dataclasses.replace(s, scores=(np.asarray(s.scores) + np.asarray(s2.scores)) / 2)
        print(f"  {role}: {len(audio) / rate:.0f} s, {len(truth)} words, scored in {time.perf_counter() - start:.1f} s",
              flush=True)
        return dict(times_ms=s.times_ms, scores=s.scores, truth=truth, duration_s=len(audio) / rate)

    print(f"workspace {ws}: model {model.kind}" + (f" averaged with {other_dir}" if other_dir else "") +
          f", stride {cfg.clip_stride_ms} ms; {args.streams} validation "
          f"recordings of {args.duration:.0f} s from the validation split's speakers")
    validation = [scored(audio, [(label, round(t)) for label, t in truth], f"validation {k}")
                  for k, (audio, truth) in enumerate(split_streams(
                      paths.SPLIT_DIR / MANIFEST_NAMES["validation"], paths.SPLIT_LABELS, paths.DATASET_DIR,
                      settings, rate, split="validation"))]
    test_truth = read_ground_truth(paths.STREAM_LABELS)
    test = scored(read_wav(paths.STREAM_WAV, sample_rate=rate), test_truth, "test (data/stream)")
    more = [dataclasses.replace(stream, duration_s=args.duration, seed=TEST_SEED + k) for k in range(args.test_streams)]
    extra = [scored(audio, [(label, round(t)) for label, t in truth], f"test split {k}")
             for k, (audio, truth) in enumerate(split_streams(
                 paths.SPLIT_DIR / MANIFEST_NAMES["testing"], paths.SPLIT_LABELS, paths.DATASET_DIR,
                 more, rate, split="test"))]

    print(f"\n{'decoder choice':<28} {'budget':>6} {'picked':<28} {'val det':>7} {'val FA/h':>8} "
          f"{'test det':>8} {'test FA/h':>9} {'(test own sweep)':>16} {'target':>6} "
          f"{'test split pooled':>17}")
    picks = []
    for decoder, grid in DECODERS.items():
        val_sweeps = []
        for v in validation:
            names, rows = sweep(v, labels, grid)
            val_sweeps.append(rows)
        names, test_rows = sweep(test, labels, grid)
        extra_pooled = pooled([sweep(e, labels, grid)[1] for e in extra], [e["duration_s"] for e in extra]) if extra else {}
        val_pooled = pooled(val_sweeps, [v["duration_s"] for v in validation])
        for budget in BUDGETS:
            key = pick(val_pooled, budget)
            if key is None:
                print(f"{decoder:<28} {budget:>6} no operating point within the budget on validation")
                continue
            own = pick({k: r for k, r in test_rows.items()}, budget)
            v, t = val_pooled[key], test_rows[key]
            params = ", ".join(f"{n}={x}" for n, x in zip(names, key[0]))
            picked = f"thr {key[1]:.2f}" + (f", {params}" if params else "")
            met = t["detection_rate"] >= TARGET[0] and t["false_alarms_per_hour"] <= TARGET[1]
            print(f"{decoder:<28} {budget:>6} {picked:<28} {100 * v['detection_rate']:>6.1f}% "
                  f"{v['false_alarms_per_hour']:>8.0f} {100 * t['detection_rate']:>7.1f}% "
                  f"{t['false_alarms_per_hour']:>9.0f} "
                  f"{100 * test_rows[own]['detection_rate'] if own else float('nan'):>15.1f}% {'yes' if met else 'no':>6} "
                  + (f"{100 * extra_pooled[key]['detection_rate']:>8.1f}% at {extra_pooled[key]['false_alarms_per_hour']:>3.0f}/h"
                     if extra else ""))
            picks.append((decoder, budget, picked, dict(zip(names, key[0])), key[1]))

    print("\ntest recording's errors at each pick (counts)")
    for decoder, budget, picked, params, threshold in picks:
        c = dataclasses.replace(cfg, **params)
        averages = window_averages(test["times_ms"], test["scores"], c.average_window_ms, c.minimum_count)
        found = decode(labels, averages, threshold, c.suppression_ms, c.minimum_margin)
        kinds = error_kinds(test_truth, found, c.time_tolerance_ms)
        print(f"  {decoder}, {budget}/h ({picked}): " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
