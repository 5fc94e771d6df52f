"""Benchmark: the streaming and microcontroller exports against the window model.

For each pipeline run folder given (a checkout after `dvc repro`: models/keras, models/export,
data/features/test/, data/stream, metrics/export.json), one row per model form:

- window: the whole-clip model as float TFLite on features [1, frames, bins] (converted here from
  models/keras, as freeze does), one call per window;
- streaming: models/export/model_streaming.tflite, one call per feature frame (where freeze
  wrote one);
- int8: models/export/model_int8.tflite (features in; the C array's model with the micro front end).

Columns: ms per call (TFLite invoke, one thread, best of 3 x 300 calls, zero inputs), MACs per
call (counted from the TFLite graph, pipeline/export/cost.py), model bytes, test accuracy on
data/features/test/ (the streaming model run frame by frame over each clip from zero states),
and on the run's 600 s recording: seconds to score it, real-time factor (seconds / audio seconds),
and detections, with how many are identical to the window model's (label and time) and how many
have a window-model detection of the same label within 100 ms, and the % of words correct.

    python -m bench.streaming_export RUN_DIR [RUN_DIR ...] [--no-stream-eval]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pipeline.core.fs import read_json
from pipeline.core.params import load_params
from pipeline.data.feature_store import read_features
from pipeline.export.convert import features_tflite
from pipeline.export.cost import tflite_invoke_ms, tflite_macs
from pipeline.frontends import FeatureConfig
from pipeline.inference.streaming_tflite import StreamingTFLite
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.evaluate import run_stream_eval
from pipeline.streaming.scorers import make_scorer

NEAR_MS = 100  # a detection "near" one of the window model's: same label, at most this far

HEADER = (
    "| run | model | form | per call | ms per call | MACs per call | bytes | test accuracy | "
    "stream: seconds | real-time factor | detections (same as window; same label within 100 ms) | "
    "stream: correct |\n"
    "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def _accuracy(scores: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(scores.argmax(axis=1) == y))


def _int8_scores(flat: bytes, x: np.ndarray) -> np.ndarray:
    from pipeline.core.tf import tflite_interpreter

    interpreter = tflite_interpreter(model_content=flat, num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    (si, zi), (so, zo) = inp["quantization"], out["quantization"]
    rows = []
    for clip in x:
        interpreter.set_tensor(
            inp["index"], np.clip(np.round(clip / si + zi), -128, 127).astype(np.int8)[None]
        )
        interpreter.invoke()
        rows.append((interpreter.get_tensor(out["index"])[0].astype(np.float32) - zo) * so)
    return np.stack(rows)


def bench_run(run: Path, stream_eval: bool) -> list[str]:
    from pipeline.models.io import load_model_file

    cfg = load_params(run / "params.yaml", FeatureConfig)
    export = run / "models" / "export"
    meta = read_json(run / "models" / "keras" / "meta.json")
    model = load_model_file(run / "models" / "keras" / "model.keras")
    x, y = read_features(run / "data" / "features", "test", num_labels=len(meta["labels"]))
    x = np.asarray(x)
    name = meta["architecture"] + (
        ""
        if meta["architecture"] != "ds_cnn"
        else f" ({meta['model_options'].get('padding', 'same')})"
    )
    window = features_tflite(model, cfg, needs_softmax=False)
    window_acc = _accuracy(np.asarray(model.predict(x, batch_size=256, verbose=0)), y)
    rows = [
        [
            run.name,
            name,
            "window (float)",
            "window",
            tflite_invoke_ms(window),
            tflite_macs(window),
            len(window),
            window_acc,
        ]
    ]
    int8 = (export / "model_int8.tflite").read_bytes()
    rows.append(
        [
            run.name,
            name,
            "int8" + (" (C array)" if (export / "model_data.cc").is_file() else ""),
            "window",
            tflite_invoke_ms(int8),
            tflite_macs(int8),
            len(int8),
            _accuracy(_int8_scores(int8, x), y),
        ]
    )
    streaming_path = export / "model_streaming.tflite"
    has_streaming = streaming_path.is_file()
    if has_streaming:
        flat = streaming_path.read_bytes()
        states = read_json(export / "frontend.json")["streaming"]["inputs"][
            1:
        ]  # after the frame, in order
        runner = StreamingTFLite(states, content=flat)
        last = []
        for clip in x:
            runner.reset()
            last.append(runner.run(clip)[-1])
        rows.append(
            [
                run.name,
                name,
                "streaming (float)",
                "frame",
                tflite_invoke_ms(flat),
                tflite_macs(flat),
                len(flat),
                _accuracy(np.stack(last), y),
            ]
        )
    if stream_eval and (run / "data" / "stream" / "stream.wav").is_file():
        cfg_eval = load_params(run / "params.yaml", StreamEvalConfig)
        wav, truth = (
            run / "data" / "stream" / "stream.wav",
            run / "data" / "stream" / "stream_labels.txt",
        )
        stride = cfg_eval.clip_stride_ms
        window_metrics, _, window_found, window_scores = run_stream_eval(
            make_scorer(export, stride, progress=False), wav, truth, cfg_eval
        )
        duration = window_metrics["duration_s"]
        reference = {(label, t) for label, t, _, _ in window_found}
        rows[0] += [
            window_scores.seconds,
            window_scores.seconds / duration,
            f"{len(window_found)}",
            window_metrics["correct_percentage"],
        ]
        if has_streaming:
            metrics, _, found, scores = run_stream_eval(
                make_scorer(export, stride, streaming=True, progress=False), wav, truth, cfg_eval
            )
            same = sum((label, t) in reference for label, t, _, _ in found)
            near = sum(
                any(label == ref and abs(t - u) <= NEAR_MS for ref, u in reference)
                for label, t, _, _ in found
            )
            rows[-1] += [
                scores.seconds,
                scores.seconds / duration,
                f"{len(found)} ({same}; {near})",
                metrics["correct_percentage"],
            ]
    return [_format(row) for row in rows]


def _format(row) -> str:
    run, model, form, per, ms, macs, size, acc, *stream = row
    cells = [
        run,
        f"`{model}`",
        form,
        per,
        f"{ms:.3f}",
        f"{macs:,}",
        f"{size:,}",
        f"{100 * acc:.1f}%",
    ]
    cells += (
        [f"{stream[0]:.1f}", f"{stream[1]:.4f}", stream[2], f"{stream[3]:.1f}%"]
        if stream
        else ["–"] * 4
    )
    return "| " + " | ".join(cells) + " |"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="pipeline checkouts after dvc repro")
    parser.add_argument("--no-stream-eval", action="store_true", help="skip the 600 s recording")
    args = parser.parse_args(argv)
    print(HEADER)
    for run in args.runs:
        for line in bench_run(run.resolve(), not args.no_stream_eval):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
