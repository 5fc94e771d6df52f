"""Benchmark: milliseconds to score one one-second clip, per export format, on this CPU.

Formats: the SavedModel's WAV-bytes signature (decode + features + model, all in the graph),
TFLite float, TFLite int8 (features by pipeline.frontends, then the interpreter), the Keras model
(features + model call), and the original tutorial's frozen graph (its wav_data input). Each is
called one clip at a time, as a device would, after a warm-up; the table gives the median and
90th percentile over ``--repeats`` calls and the file size.

The project's export is models/export (after `dvc repro`); without it, a stand-in is exported
from an untrained model of params.yaml's architecture and front end (same cost, weights do not
matter for latency).

    python -m bench.latency [--export models/export] [--repeats 200] [--json OUT]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

from bench.common import (
    FROZEN,
    REPO,
    SHARED_MINI,
    repo_params,
    stand_in_export,
    stand_in_keras,
)
from pipeline.core.audio import encode_wav
from pipeline.inference import load_model


def test_clip() -> tuple[bytes, str]:
    """WAV bytes of a real clip when the shared data is present, else a seeded noise burst."""
    real = sorted((SHARED_MINI / "yes").glob("*.wav")) if SHARED_MINI.is_dir() else []
    if real:
        return real[0].read_bytes(), str(real[0])
    rng = np.random.default_rng(0)
    return encode_wav(rng.normal(0, 0.1, 16000).clip(-1, 1), 16000), "seeded noise"


def time_calls(fn, repeats: int, warmup: int = 10) -> np.ndarray:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return np.array(times) * 1000.0


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", default=str(REPO / "models" / "export"))
    parser.add_argument("--keras", default=str(REPO / "models" / "keras"))
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    wav, clip_name = test_clip()
    export, keras_dir = Path(args.export), Path(args.keras)
    note = str(export)
    with tempfile.TemporaryDirectory() as tmp:
        if not (export / "frontend.json").is_file() or not (keras_dir / "model.keras").is_file():
            params = repo_params()
            keras_dir = stand_in_keras(params, Path(tmp) / "keras")
            export = stand_in_export(params, keras_dir, Path(tmp))
            note = (
                f"stand-in: untrained {params['train'].model_architecture} "
                f"({params['features'].preprocess} front end)"
            )
        targets = [
            ("SavedModel (WAV bytes)", export / "saved_model", "wav"),
            ("TFLite float", export / "model_float.tflite", "wav"),
            ("TFLite int8", export / "model_int8.tflite", "wav"),
            ("Keras", keras_dir / "model.keras", "wav"),
            ("original frozen graph", FROZEN, "wav"),
        ]
        rows = []
        for name, path, _ in targets:
            if not path.exists():
                print(f"skip {name}: {path} not found")
                continue
            model = load_model(path)
            times = time_calls(partial(model.predict_wav_bytes, wav), args.repeats)
            rows.append(
                {
                    "format": name,
                    "path": str(path),
                    "median_ms": float(np.median(times)),
                    "p90_ms": float(np.percentile(times, 90)),
                    "size_bytes": size_of(path),
                }
            )
    print(f"one-second clip ({clip_name}), {args.repeats} calls each, model: {note}")
    print(f"{'format':<24} {'median ms':>10} {'p90 ms':>8} {'size':>12}")
    for row in rows:
        print(
            f"{row['format']:<24} {row['median_ms']:>10.2f} {row['p90_ms']:>8.2f} "
            f"{row['size_bytes']:>12,d}"
        )
    if args.json:
        from pipeline.core.fs import atomic_write_json

        atomic_write_json(
            args.json,
            {
                "model": note,
                "clip": clip_name,
                "repeats": args.repeats,
                "cpu_count": os.cpu_count(),
                "results": rows,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
