"""Benchmark: the speech-embedding front end's speed, batched and streamed (frame reuse).

- featurize: clips/s of ``features_numpy`` with ``preprocess: embedding`` (float model; batched:
  mel in numpy in a second thread, one embedding-model call per batch of clips) and
  ``embedding_int8`` (the int8 model on onnxruntime; ``--int8-workers`` threads each taking mel
  and model), with the CPU time of each step alone (what caps it), against the plain computation
  each must equal (one mel-model call per clip, one embedding call per window:
  ``embedding.reference_embed``), and the default ``mfcc`` front end for scale; on real clips of
  ../shared/data/speech_commands_mini.
- streaming: an untrained stand-in ``embedding_head`` exported by the freeze stage's code (a
  bundle: front end + float TFLite head; the same cost as a trained one) scoring a recording
  synthesized like the synthesize_stream stage, for each front end of ``--stream-frontends``,
  with frame reuse (clip stride 80 ms: mel once, each embedding once per hop) and, on the first
  ``--per-window-seconds``, window by window.

    python -m bench.embedding_speed [--clips 1024] [--duration 600] [--per-window-seconds 30]
        [--model-threads 1 2] [--int8-workers 1 2] [--stream-frontends embedding embedding_int8]
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

import numpy as np

from bench.common import SHARED_MINI, repo_params, stand_in_export, stand_in_keras


def real_clips(count: int) -> np.ndarray:
    from pipeline.core.audio import fit_to_length, read_wav

    paths = sorted(p for p in SHARED_MINI.glob("*/*.wav") if not p.parent.name.startswith("_"))
    if not paths:
        raise SystemExit(f"{SHARED_MINI}: no clips")
    paths = [paths[i % len(paths)] for i in range(count)]
    return np.stack([fit_to_length(read_wav(p, 16000), 16000) for p in paths]).astype(np.float32)


def timed_cpu(fn, *args):
    """Result, wall seconds and CPU seconds of this process (all its threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - start, time.process_time() - cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1024)
    parser.add_argument("--reference-clips", type=int, default=64)
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--per-window-seconds", type=float, default=30)
    parser.add_argument("--before-module", help="an older embedding.py to time in the same run")
    parser.add_argument(
        "--model-threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="TFLite threads of the embedding model to time featurize with",
    )
    parser.add_argument(
        "--int8-workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="featurize workers (mel + one-thread int8 model each) to time",
    )
    parser.add_argument("--stream-frontends", nargs="+", default=["embedding", "embedding_int8"])
    args = parser.parse_args(argv)
    from pipeline.frontends import FeatureConfig, embedding, features_numpy

    print(f"load at start: {os.getloadavg()[0]:.1f} (1-min average, {os.cpu_count()} CPUs)")
    clips = real_clips(args.clips)
    cfg = FeatureConfig(preprocess="embedding")
    features_numpy(clips[:8], cfg)  # load the models
    rows = []
    default_threads = embedding.MODEL_THREADS
    for threads in args.model_threads:
        embedding.MODEL_THREADS = threads
        features_numpy(clips[:8], cfg)
        fast, fast_s, fast_cpu = timed_cpu(features_numpy, clips, cfg)
        rows.append(
            (
                f"embedding, featurize (model threads {threads})",
                args.clips / fast_s,
                1000 * fast_cpu / args.clips,
            )
        )
    embedding.MODEL_THREADS = 1
    int8_cfg = FeatureConfig(preprocess="embedding_int8")
    default_workers = embedding.INT8_WORKERS
    for workers in args.int8_workers:
        embedding.INT8_WORKERS = workers
        features_numpy(clips[:256], int8_cfg)
        fast8, fast8_s, fast8_cpu = timed_cpu(features_numpy, clips, int8_cfg)
        rows.append(
            (
                f"embedding_int8, featurize ({workers} worker{'s' * (workers > 1)})",
                args.clips / fast8_s,
                1000 * fast8_cpu / args.clips,
            )
        )
    embedding.INT8_WORKERS = default_workers
    if args.before_module:  # e.g. `git show 63da499:pipeline/frontends/embedding.py > /tmp/old.py`
        import importlib.util

        spec = importlib.util.spec_from_file_location("embedding_before", args.before_module)
        before = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(before)
        before.embed(clips[:8])
        old, old_s, old_cpu = timed_cpu(before.embed, clips)
        rows.append(
            (
                f"embedding, {Path(args.before_module).name}",
                args.clips / old_s,
                1000 * old_cpu / args.clips,
            )
        )
        print(f"max |now - {args.before_module}| = {float(np.abs(old - fast).max()):.1e}")
    ref, ref_s, ref_cpu = timed_cpu(embedding.reference_embed, clips[: args.reference_clips])
    rows.append(
        ("embedding, per clip and window (reference)", len(ref) / ref_s, 1000 * ref_cpu / len(ref))
    )
    ref8, ref8_s, ref8_cpu = timed_cpu(
        lambda c: embedding.reference_embed(c, precision="int8"), clips[: args.reference_clips]
    )
    rows.append(
        (
            "embedding_int8, per clip and window (reference)",
            len(ref8) / ref8_s,
            1000 * ref8_cpu / len(ref8),
        )
    )
    mfcc_cfg = FeatureConfig(preprocess="mfcc")
    features_numpy(clips[:8], mfcc_cfg)
    _, mfcc_s, mfcc_cpu = timed_cpu(features_numpy, clips, mfcc_cfg)
    rows.append(("mfcc (the default front end)", args.clips / mfcc_s, 1000 * mfcc_cpu / args.clips))
    diff = float(np.abs(fast[: len(ref)] - ref).max())
    diff8 = float(np.abs(fast8[: len(ref8)] - ref8).max())
    cosine = (fast * fast8).sum(-1) / np.linalg.norm(fast, axis=-1) / np.linalg.norm(fast8, axis=-1)
    print(
        f"\nfeaturize ({args.clips} real clips; max |batched - reference|: "
        f"float {diff:.1e}, int8 {diff8:.1e}; int8 vs float per window: "
        f"cosine mean {cosine.mean():.4f}, min {cosine.min():.4f})"
    )
    print(f"{'front end':<48} {'clips/s':>9} {'CPU ms/clip':>12}")
    for name, rate, cpu in rows:
        print(f"{name:<48} {rate:>9,.0f} {cpu:>12.2f}")

    # Where the time goes: each step of featurize alone, one thread, CPU time per clip.
    frames = embedding.clip_input_frames(clips.shape[1])
    padded = np.pad(clips, ((0, 0), (embedding.PAD_SAMPLES, embedding.PAD_SAMPLES)))
    per = embedding.CLIPS_PER_CALL
    _, _, full_cpu = timed_cpu(
        lambda: [embedding.mel_db(padded[i : i + per]) for i in range(0, len(clips), per)]
    )
    db, _, db_cpu = timed_cpu(
        lambda: np.concatenate(
            [
                embedding.padded_clip_db(clips[i : i + per], frames)
                for i in range(0, len(clips), per)
            ]
        )
    )
    spec, _, clamp_cpu = timed_cpu(lambda: embedding.clamp_scale(db)[..., None])
    _, _, model_cpu = timed_cpu(
        lambda: [
            embedding._run("embedding_model.tflite", spec[i : i + per])
            for i in range(0, len(clips), per)
        ]
    )
    per8 = embedding.INT8_CLIPS_PER_CALL
    embedding.run_embedding_model(spec[:per8], "int8", threads=1)
    _, _, int8_cpu = timed_cpu(
        lambda: [
            embedding.run_embedding_model(spec[i : i + per8], "int8", threads=1)
            for i in range(0, len(clips), per8)
        ]
    )
    row_frames = (
        -(-frames // embedding.WINDOW_STEP_FRAMES) * embedding.WINDOW_STEP_FRAMES
        + embedding.WINDOW_STEP_FRAMES
    )
    row = np.zeros((len(clips), row_frames, embedding.MEL_BINS), np.float32)
    row[:, :frames] = spec[..., 0]
    _, _, row_cpu = timed_cpu(
        lambda: [
            embedding.embeddings_of(row[i : i + 51].reshape(-1, embedding.MEL_BINS))
            for i in range(0, len(clips), 51)
        ]
    )
    steps = [
        ("mel, every frame of the padded clips", full_cpu),
        ("mel, frames touching the clip (featurize)", db_cpu),
        ("clamp and scale", clamp_cpu),
        (f"embedding model, [{per}, {frames}, 32, 1] a call (featurize)", model_cpu),
        (f"int8 embedding model, [{per8}, {frames}, 32, 1] a call (featurize int8)", int8_cpu),
        (f"embedding model, 51 clips end to end ({row_frames} frames each, before)", row_cpu),
    ]
    print(f"\nfeaturize steps, one thread each ({args.clips} clips)")
    print(f"{'step':<64} {'CPU ms/clip':>12} {'clips/s/core':>13}")
    for name, cpu in steps:
        print(f"{name:<64} {1000 * cpu / args.clips:>12.2f} {args.clips / cpu:>13,.0f}")

    embedding.MODEL_THREADS = default_threads
    from bench.streaming import recording
    from pipeline.inference import load_model
    from pipeline.streaming.evaluate import evaluate_scores
    from pipeline.streaming.scores import stream_scores

    rows = []
    for frontend in args.stream_frontends:
        params = copy.deepcopy(repo_params())
        params["features"] = dataclasses.replace(params["features"], preprocess=frontend)
        params["train"] = dataclasses.replace(params["train"], model_architecture="embedding_head")
        audio, truth, source = recording(args.duration, params)
        settings = dataclasses.replace(params["stream_eval"], clip_stride_ms=80)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            export = stand_in_export(params, stand_in_keras(params, tmp / "keras"), tmp)
            for name in ("model_float.tflite", "model_int8.tflite"):
                model = load_model(export / name)
                seconds = len(audio) / model.sample_rate
                scores = stream_scores(model, audio, settings.clip_stride_ms, progress=False)
                evaluate_scores(model.labels, scores, truth, seconds, settings)
                rows.append(
                    (
                        frontend,
                        name,
                        "frame reuse, stride 80 ms",
                        seconds,
                        len(scores.times_ms),
                        scores.seconds,
                    )
                )
            part = audio[: int(args.per_window_seconds * 16000)]
            for stride in (80, 30):
                slow = stream_scores(model, part, stride, frame_reuse=False, progress=False)
                rows.append(
                    (
                        frontend,
                        name,
                        f"per window, stride {stride} ms",
                        len(part) / 16000,
                        len(slow.times_ms),
                        slow.seconds,
                    )
                )
    print(f"\nstreaming ({source}; stand-in embedding_head bundle; head = the exported .tflite)")
    print(
        f"{'front end':<16} {'head':<20} {'path':<28} {'audio s':>8} {'windows':>8} "
        f"{'seconds':>8} {'x real time':>12}"
    )
    for frontend, name, path, audio_s, windows, secs in rows:
        print(
            f"{frontend:<16} {name:<20} {path:<28} {audio_s:>8.0f} {windows:>8,} {secs:>8.1f} "
            f"{audio_s / secs:>12.0f}"
        )
    print(f"\nload at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
