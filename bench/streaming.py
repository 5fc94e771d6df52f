"""Benchmark: how much faster than real time streaming evaluation runs, per model.

Scores a 600 s recording every 30 ms (the original's stride) with

- the project's default model: models/export/saved_model (after `dvc repro`; with --tflite also
  its .tflite files), else models/keras or, before training, an untrained stand-in of params.yaml's
  architecture and front end (same cost; its accuracy columns mean nothing), exported by the freeze
  stage's code into a temporary folder, and
- the original tutorial's frozen graph (/work/shared/pretrained/conv_actions_frozen.pb),

both with frame reuse (features once per 10 ms frame, windows sliced from them) and, on the first
``--per-window-seconds`` of the recording, window by window from audio, for comparison. The
recording is data/stream/stream.wav when present, else one synthesized like the
synthesize_stream stage from the test split (which_set) of ../shared/data/speech_commands_mini.

    python -m bench.streaming [--duration 600] [--per-window-seconds 60] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    FROZEN,
    REPO,
    SHARED_MINI,
    repo_params,
    stand_in_export,
    stand_in_keras,
)
from pipeline.core import paths
from pipeline.core.audio import read_wav
from pipeline.core.labels import ALL_WORDS, BACKGROUND_NOISE_DIR
from pipeline.data.stream_synthesis import synthesize
from pipeline.streaming.evaluate import evaluate_scores
from pipeline.streaming.recognize import read_ground_truth
from pipeline.streaming.scores import stream_scores


def recording(duration_s: float, params: dict):
    """(audio, ground truth, where it came from)."""
    wav, truth = REPO / paths.STREAM_WAV, REPO / paths.STREAM_LABELS
    rate = params["features"].sample_rate
    if wav.is_file() and truth.is_file():
        return read_wav(wav, sample_rate=rate), read_ground_truth(truth), str(wav)
    if not SHARED_MINI.is_dir():
        raise SystemExit(f"no {wav} and no {SHARED_MINI} to synthesize a recording from")
    import dataclasses

    from pipeline.data.split import which_set

    split = params["split"]
    wanted = split.wanted_words
    word_clips = {w: [] for w in wanted}
    unknown = []
    for folder in sorted(p for p in SHARED_MINI.iterdir() if p.is_dir()):
        if folder.name == BACKGROUND_NOISE_DIR or folder.name not in ALL_WORDS:
            continue
        for path in sorted(folder.glob("*.wav")):
            if (
                which_set(path.name, split.validation_percentage, split.testing_percentage)
                != "testing"
            ):
                continue
            (word_clips[folder.name] if folder.name in wanted else unknown).append(path)
    settings = dataclasses.replace(params["stream"], duration_s=duration_s)
    noise = sorted((SHARED_MINI / BACKGROUND_NOISE_DIR).glob("*.wav"))
    audio, labels = synthesize(
        word_clips,
        unknown,
        noise,
        settings,
        rate,
        progress=False,
        read=lambda path: read_wav(path, sample_rate=rate),
    )
    truth = [(label, round(t)) for label, t in labels]
    clips = sum(map(len, word_clips.values())) + len(unknown)
    return audio, truth, f"synthesized from {clips} test-split clips of {SHARED_MINI.name}"


def default_models(params: dict, tmp: Path, tflite: bool):
    """[(path, description)] of the project's default model, or of a stand-in exported under
    ``tmp`` the way the freeze stage exports (SavedModel + TFLite) when there is none."""
    export = REPO / "models" / "export"
    if not export.exists():
        keras_dir = REPO / "models" / "keras"
        if not (keras_dir / "model.keras").is_file():
            keras_dir = stand_in_keras(params, tmp / "keras")
        export = stand_in_export(params, keras_dir, tmp)
        note = " [stand-in]" if keras_dir.parent == tmp else ""
    else:
        note = ""
    found = [(export, f"{export.name}/saved_model{note}")]
    if tflite:
        found += [
            (export / name, f"{export.name}/{name}{note}")
            for name in ("model_float.tflite", "model_int8.tflite")
            if (export / name).is_file()
        ]
    return found


def bench(name, path, audio, truth, settings, per_window_seconds):
    from pipeline.inference import load_model

    started = time.perf_counter()
    model = load_model(path)
    load_s = time.perf_counter() - started
    duration = len(audio) / model.sample_rate
    rows = []
    fast = stream_scores(model, audio, settings.clip_stride_ms, progress=False)
    metrics, _, _ = evaluate_scores(model.labels, fast, truth, duration, settings)
    rows.append(
        dict(
            model=name,
            path="frame reuse" if fast.frame_reuse else "per window",
            audio_s=duration,
            windows=len(fast.times_ms),
            seconds=fast.seconds,
            x_real_time=duration / fast.seconds,
            load_s=load_s,
            correct_percentage=metrics["correct_percentage"],
            false_alarms_per_hour=metrics["false_alarms_per_hour"],
        )
    )
    if per_window_seconds > 0 and fast.frame_reuse:
        part = audio[: int(per_window_seconds * model.sample_rate)]
        slow = stream_scores(
            model, part, settings.clip_stride_ms, frame_reuse=False, progress=False
        )
        part_s = len(part) / model.sample_rate
        rows.append(
            dict(
                model=name,
                path="per window",
                audio_s=part_s,
                windows=len(slow.times_ms),
                seconds=slow.seconds,
                x_real_time=part_s / slow.seconds,
                load_s=load_s,
                correct_percentage=None,
                false_alarms_per_hour=None,
            )
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds to synthesize")
    parser.add_argument(
        "--per-window-seconds",
        type=float,
        default=60,
        help="seconds scored window by window for comparison (0: skip)",
    )
    parser.add_argument("--skip-frozen", action="store_true")
    parser.add_argument("--tflite", action="store_true", help="also the exported .tflite models")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    params = repo_params()
    settings = params["stream_eval"]
    audio, truth, source = recording(args.duration, params)
    seconds = len(audio) / params["features"].sample_rate
    print(f"recording: {seconds:.0f} s, {len(truth)} words, {source}")
    print(f"stream_eval: {settings}; {os.cpu_count()} CPU cores")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path, name in default_models(params, Path(tmp), args.tflite):
            rows += bench(
                name,
                path,
                audio,
                truth,
                settings,
                0 if path.suffix == ".tflite" else args.per_window_seconds,
            )
        if not args.skip_frozen and FROZEN.is_file():
            rows += bench(
                "original conv_actions_frozen.pb",
                FROZEN,
                audio,
                truth,
                settings,
                args.per_window_seconds,
            )
    if any("[stand-in]" in r["model"] for r in rows):
        print(
            "[stand-in]: no trained model yet; an untrained one of params.yaml's architecture "
            "(timing only, its accuracy means nothing)"
        )
    header = (
        f"{'model':50} {'path':12} {'audio s':>8} {'windows':>8} {'seconds':>8} "
        f"{'x real time':>11} {'correct %':>9} {'FA/hour':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        correct = "-" if r["correct_percentage"] is None else f"{r['correct_percentage']:.1f}"
        alarms = "-" if r["false_alarms_per_hour"] is None else f"{r['false_alarms_per_hour']:.1f}"
        print(
            f"{r['model'][:50]:50} {r['path']:12} {r['audio_s']:8.0f} {r['windows']:8d} "
            f"{r['seconds']:8.2f} {r['x_real_time']:11.1f} {correct:>9} {alarms:>8}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
