"""Benchmark: the speech-embedding front end's speed, batched and streamed (frame reuse).

- featurize: clips/s of ``features_numpy`` with ``preprocess: embedding`` (batched: mel in numpy,
  one embedding-model call per row of clips) against the plain computation it must equal (one
  mel-model call per clip, one embedding call per window: ``embedding.reference_embed``), and the
  default ``mfcc`` front end for scale; on real clips of ../shared/data/speech_commands_mini.
- streaming: an untrained stand-in ``embedding_head`` exported by the freeze stage's code (a
  bundle: front end + float TFLite head; the same cost as a trained one) scoring a recording
  synthesized like the synthesize_stream stage, with frame reuse (clip stride 80 ms: mel once,
  each embedding once per hop) and, on the first ``--per-window-seconds``, window by window.

    python bench/embedding_speed.py [--clips 1024] [--duration 600] [--per-window-seconds 30]
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.common import SHARED_MINI, repo_params, stand_in_export, stand_in_keras  # noqa: E402


def real_clips(count: int) -> np.ndarray:
    from pipeline.core.audio import fit_to_length, read_wav

    paths = sorted(p for p in SHARED_MINI.glob("*/*.wav") if not p.parent.name.startswith("_"))
    if not paths:
        raise SystemExit(f"{SHARED_MINI}: no clips")
    paths = [paths[i % len(paths)] for i in range(count)]
    return np.stack([fit_to_length(read_wav(p, 16000), 16000) for p in paths]).astype(np.float32)


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1024)
    parser.add_argument("--reference-clips", type=int, default=64)
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--per-window-seconds", type=float, default=30)
    args = parser.parse_args(argv)
    from pipeline.frontends import FeatureConfig, embedding, features_numpy

    print(f"load at start: {os.getloadavg()[0]:.1f} (1-min average, {os.cpu_count()} CPUs)")
    clips = real_clips(args.clips)
    cfg = FeatureConfig(preprocess="embedding")
    features_numpy(clips[:8], cfg)  # load the models
    fast, fast_s = timed(features_numpy, clips, cfg)
    ref, ref_s = timed(embedding.reference_embed, clips[: args.reference_clips])
    mfcc_cfg = FeatureConfig(preprocess="mfcc")
    features_numpy(clips[:8], mfcc_cfg)
    _, mfcc_s = timed(features_numpy, clips, mfcc_cfg)
    diff = float(np.abs(fast[: len(ref)] - ref).max())
    print(f"\nfeaturize ({args.clips} real clips; max |batched - reference| = {diff:.1e})")
    print(f"{'front end':<40} {'clips/s':>9}")
    print(f"{'embedding, batched (featurize)':<40} {args.clips / fast_s:>9,.0f}")
    print(f"{'embedding, per clip and window (before)':<40} {len(ref) / ref_s:>9,.0f}")
    print(f"{'mfcc':<40} {args.clips / mfcc_s:>9,.0f}")

    from bench.streaming import recording
    from pipeline.inference import load_model
    from pipeline.streaming.evaluate import evaluate_scores
    from pipeline.streaming.scores import stream_scores

    params = copy.deepcopy(repo_params())
    params["features"] = dataclasses.replace(params["features"], preprocess="embedding")
    params["train"] = dataclasses.replace(params["train"], model_architecture="embedding_head")
    audio, truth, source = recording(args.duration, params)
    settings = dataclasses.replace(params["stream_eval"], clip_stride_ms=80)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        export = stand_in_export(params, stand_in_keras(params, tmp / "keras"), tmp)
        for name in ("model_float.tflite", "model_int8.tflite"):
            model = load_model(export / name)
            seconds = len(audio) / model.sample_rate
            scores = stream_scores(model, audio, settings.clip_stride_ms, progress=False)
            evaluate_scores(model.labels, scores, truth, seconds, settings)
            rows.append((name, "frame reuse, stride 80 ms", seconds, len(scores.times_ms), scores.seconds))
        part = audio[: int(args.per_window_seconds * 16000)]
        for stride in (80, 30):
            slow = stream_scores(model, part, stride, frame_reuse=False, progress=False)
            rows.append((name, f"per window, stride {stride} ms", len(part) / 16000, len(slow.times_ms), slow.seconds))
    print(f"\nstreaming ({source}; stand-in embedding_head bundle)")
    print(f"{'model':<20} {'path':<28} {'audio s':>8} {'windows':>8} {'seconds':>8} {'x real time':>12}")
    for name, path, audio_s, windows, secs in rows:
        print(f"{name:<20} {path:<28} {audio_s:>8.0f} {windows:>8,} {secs:>8.1f} {audio_s / secs:>12.0f}")
    print(f"\nload at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
