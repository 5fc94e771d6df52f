"""The streaming operating point, chosen on a validation stream and reported on a test stream.

    python bench/operating_point.py [--classifier seq] [--copies 4] [--duration 600]

Speakers of ../shared/data/speech_commands_mini are split as bench/kfold.py folds them (salted
speaker hash, 5 folds): the classifier trains on folds 0-2, a validation stream is synthesized (as
the synthesize_stream stage does: a word every 3 s, 30% unknown words, background noise) from
fold 3's speakers and a test stream from fold 4's. Both are scored by the speech embedding with
frame reuse (one embedding per 80 ms, ``embedding.stream_features``) and the classifier, decoded by
RecognizeCommands (pipeline.streaming, clip stride 80 ms), and swept over detection thresholds.
The threshold is picked on the validation stream (the highest detection rate at no more than 30,
then 60, false alarms per hour) and only then applied to the test stream.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.common import SHARED_MINI  # noqa: E402
from bench.kfold import augmented, dataset, features_of, train_keras, train_logreg  # noqa: E402

THRESHOLDS = tuple(round(0.01 * k, 2) for k in range(30, 100))
BUDGETS = (30, 60)


class StreamingHead:
    """The embedding front end with frame reuse + a trained classifier, as stream_scores wants."""

    sample_rate = desired_samples = 16000
    supports_frames = True

    def __init__(self, labels, predict):
        from pipeline.frontends import embedding

        self.labels, self.predict = labels, predict
        self.frames_per_clip = embedding.windows_for(16000)
        self.frame_stride_samples = embedding.EMBEDDING_HOP_SAMPLES
        self.embedding = embedding

    def frame_features(self, audio):
        return self.embedding.stream_features(audio)

    def predict_features(self, features):
        return self.predict(np.asarray(features, np.float32))


def stream_of(audio, y, fold, silence, labels, which, noise, settings):
    from pipeline.streaming.synthesize import synthesize

    pick = (fold == which) & ~silence
    words = {label: [a for a, t in zip(audio[pick], y[pick]) if t == i] for i, label in enumerate(labels) if i >= 2}
    unknown = [a for a, t in zip(audio[pick], y[pick]) if t == 1]
    recording, truth = synthesize(words, unknown, noise, settings, 16000, progress=False)
    return recording, [(label, round(t)) for label, t in truth]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", default="seq", choices=["logreg", "head", "seq"])
    parser.add_argument("--copies", type=int, default=4, help="augmented copies of each training clip")
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--data", type=Path, default=SHARED_MINI)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/kws_kfold_cache"))
    args = parser.parse_args(argv)
    from pipeline.core.labels import BACKGROUND_NOISE_DIR
    from pipeline.streaming.config import StreamConfig, StreamEvalConfig
    from pipeline.streaming.evaluate import evaluate_scores
    from pipeline.streaming.scores import stream_scores

    args.cache.mkdir(parents=True, exist_ok=True)
    audio, y, fold, silence, labels = dataset(args.data, "kfold", 5)
    clean = features_of("embedding", audio, args.cache, "clean")
    aug = [features_of("embedding", augmented(audio, silence, args.copies, args.data)[c], args.cache, f"aug{c}")
           for c in range(args.copies)]
    train = fold <= 2
    x = np.concatenate([clean[train]] + [a[train] for a in aug])
    t = np.concatenate([y[train]] * (1 + len(aug)))
    predict = train_logreg(x, t, 0) if args.classifier == "logreg" else train_keras(x, t, 0, args.classifier, labels)
    model = StreamingHead(labels, predict)
    noise = sorted((args.data / BACKGROUND_NOISE_DIR).glob("*.wav"))
    cfg = StreamEvalConfig(clip_stride_ms=80)
    results = {}
    for name, which, seed in (("validation", 3, 11), ("test", 4, 12)):
        settings = StreamConfig(duration_s=int(args.duration), seed=seed)
        recording, truth = stream_of(audio, y, fold, silence, labels, which, noise, settings)
        scores = stream_scores(model, recording, cfg.clip_stride_ms, progress=False)
        duration = len(recording) / 16000
        _, sweep, _ = evaluate_scores(labels, scores, truth, duration, cfg, THRESHOLDS)
        results[name] = {row["threshold"]: row for row in sweep}
        print(f"{name}: {len(truth)} words, {duration:.0f} s, scored at {duration / scores.seconds:.0f}x real time "
              f"(frame reuse {scores.frame_reuse})", flush=True)
    print(f"\nclassifier {args.classifier}, {args.copies} augmented copies; threshold picked on validation")
    print(f"{'budget FA/h':>11} {'threshold':>9} {'val detection':>13} {'val FA/h':>9} {'test detection':>14} {'test FA/h':>9} {'test wrong':>10} {'test FP':>8}")
    for budget in BUDGETS:
        ok = [r for r in results["validation"].values() if r["false_alarms_per_hour"] <= budget]
        if not ok:
            print(f"{budget:>11} no threshold meets it on validation")
            continue
        best = max(ok, key=lambda r: (r["detection_rate"], -r["threshold"]))
        test = results["test"][best["threshold"]]
        print(f"{budget:>11} {best['threshold']:>9.2f} {100 * best['detection_rate']:>12.1f}% {best['false_alarms_per_hour']:>9.1f} "
              f"{100 * test['detection_rate']:>13.1f}% {test['false_alarms_per_hour']:>9.1f} {test['wrong']:>10} {test['false_positives']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
