"""Benchmark: ``kws detect`` on an hour-long recording (real-time factor, peak memory) and
``kws listen -`` fed at real-time pace (the latency from a word's end to its printed line),
for an export's window model and, where the export has one, its streaming model.

The hour is the stream recording (``--recording``, default data/stream/stream.wav) repeated,
written into a temporary folder and removed afterwards; ``kws stream-eval`` runs on it too (its
peak memory once grew with the recording: hostile input 9). Peak memory is the resident set of
each command's process (``wait4``), the model and TensorFlow included; a 10-minute recording
beside the hour shows whether it grows with the length. The listening run feeds the first
``--listen-seconds`` of the recording to ``kws listen -`` in 20 ms writes at real-time pace; a
word's end is the last 10 ms frame of its 1 s clip whose level is 4x the recording's median
frame, and the latency of each line that found a word (the right label within a second of it)
is its arrival minus that end (``tool latency``: the tool's own figure, from the arrival of the
sample that completed the deciding window).

``--embedding-stand-in`` measures instead an untrained export of params.yaml with
``features.preprocess: embedding`` and the ``embedding_head`` model (bench/common.py's stand-in;
an untrained model costs what a trained one does), its decoder.json the params' with the 80 ms
clip stride of the embedding's frames: the speech embedding's feed in detect, stream-eval and
listen.

    python -m bench.live [--model models/export | --embedding-stand-in]
        [--recording data/stream/stream.wav] [--labels data/stream/stream_labels.txt]
        [--hours 1] [--listen-seconds 60] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np

from bench.common import REPO, repo_params, stand_in_export, stand_in_keras
from pipeline.core.audio import WavReader, encode_pcm16, read_pcm16
from pipeline.streaming.recognize import read_ground_truth
from pipeline.streaming.scorers import has_streaming_model

KWS = [sys.executable, "-c", "from pipeline.cli import main; main()"]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}


def repeated(source: Path, truth: Path, seconds: float, out: Path) -> tuple[Path, Path]:
    """``source`` repeated to ``seconds`` (written block by block) and its ground truth."""
    pcm = read_pcm16(source)
    rate = WavReader(source).sample_rate
    total = int(seconds * rate)
    header = encode_pcm16(np.zeros(0, "<i2"), rate)
    size = total * 2
    header = (
        header[:4] + (36 + size).to_bytes(4, "little") + header[8:40] + size.to_bytes(4, "little")
    )
    entries = read_ground_truth(truth)
    lines = []
    with open(out, "wb") as file:
        file.write(header)
        for first in range(0, total, len(pcm)):
            part = pcm[: min(len(pcm), total - first)]
            file.write(part.tobytes())
            offset = first * 1000 / rate
            lines += [
                f"{label}, {offset + t:f}\n"
                for label, t in entries
                if (first + t * rate / 1000) < total - rate
            ]
    out.with_suffix(".txt").write_text("".join(lines), encoding="utf-8")
    return out, out.with_suffix(".txt")


def run_measured(command: list[str]) -> tuple[float, float, str]:
    """Run ``command``: (wall seconds, peak resident MiB of its process, stdout)."""
    start = time.perf_counter()
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8") as out,
        tempfile.TemporaryFile("w+", encoding="utf-8") as err,
    ):
        process = subprocess.Popen(command, stdout=out, stderr=err, env=ENV)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0), err.seek(0)
        if status != 0:
            lines = err.read().strip().splitlines()
            raise SystemExit(f"{' '.join(command[3:])} failed: {lines[-1] if lines else status}")
        return wall, usage.ru_maxrss / 1024, out.read()


def word_ends(pcm: np.ndarray, rate: int, truth) -> dict[int, float]:
    """Each ground-truth word's end (seconds), by the level of its clip (module doc)."""
    frame = rate // 100
    levels = np.sqrt(
        np.mean(
            (pcm[: len(pcm) // frame * frame].astype(np.float64) / 32768).reshape(-1, frame) ** 2,
            axis=1,
        )
    )
    loud = levels > 4 * np.median(levels)
    ends = {}
    for _, t in truth:
        first = int(t / 10)
        frames = np.nonzero(loud[first : first + 100])[0]
        ends[t] = (first + (frames[-1] + 1 if len(frames) else 100)) / 100
    return ends


def listen_latency(model: Path, wav: Path, truth_path: Path, seconds: float, window: bool):
    """Median latency (ms) from a word's end to its line, the tool's own median figure, and
    the lines that found a word / all lines."""
    pcm = read_pcm16(wav)
    rate = WavReader(wav).sample_rate
    pcm = pcm[: int(seconds * rate)]
    truth = [(label, t) for label, t in read_ground_truth(truth_path) if t / 1000 < seconds - 1]
    ends = word_ends(pcm, rate, truth)
    command = [*KWS, "listen", "-", "--model", str(model), *(["--window"] if window else [])]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV
    )
    started = []

    def write():
        for _ in range(2):  # the decoder line, then "listening to ...": the model is loaded
            process.stderr.readline()
        started.append(time.monotonic())
        block = rate // 50
        for first in range(0, len(pcm), block):
            process.stdin.write(pcm[first : first + block].tobytes())
            process.stdin.flush()
            time.sleep(max(0.0, started[0] + (first + block) / rate - time.monotonic()))
        process.stdin.close()

    writer = threading.Thread(target=write)
    writer.start()
    lines = [(line.decode().split(), time.monotonic()) for line in process.stdout]
    writer.join()
    process.wait()
    latencies, own = [], []
    for fields, when in lines:
        time_s, label = float(fields[0]), fields[1]
        own.append(float(fields[3]))
        near = [t for name, t in truth if name == label and abs(t / 1000 - time_s) < 1]
        if near:
            latencies.append(1000 * (when - started[0] - ends[near[0]]))
    median = float(np.median(latencies)) if latencies else None
    return median, float(np.median(own)) if own else None, len(latencies), len(lines)


def embedding_stand_in(work: Path) -> Path:
    """An untrained embedding_head export with the speech embedding (module doc), in ``work``."""
    import copy
    import dataclasses

    from pipeline.core.fs import atomic_write_json
    from pipeline.core.paths import DECODER_NAME
    from pipeline.streaming.operating_point import decoder_dict

    params = copy.deepcopy(repo_params())
    params["features"] = dataclasses.replace(params["features"], preprocess="embedding")
    params["train"] = dataclasses.replace(params["train"], model_architecture="embedding_head")
    export = stand_in_export(params, stand_in_keras(params, work / "keras"), work)
    settings = dataclasses.replace(params["stream_eval"], clip_stride_ms=80)
    atomic_write_json(export / DECODER_NAME, decoder_dict(settings))
    return export


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "models" / "export"))
    parser.add_argument("--recording", default=str(REPO / "data" / "stream" / "stream.wav"))
    parser.add_argument("--labels", default=str(REPO / "data" / "stream" / "stream_labels.txt"))
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--listen-seconds", type=float, default=60.0)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument(
        "--embedding-stand-in",
        action="store_true",
        help="an untrained speech-embedding export instead of --model (module doc)",
    )
    args = parser.parse_args(argv)
    model, recording = Path(args.model), Path(args.recording)
    for path in ([] if args.embedding_stand_in else [model]) + [recording, Path(args.labels)]:
        if not path.exists():
            raise SystemExit(f"{path} not found (run `dvc repro`, or pass --model/--recording)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.embedding_stand_in:  # in a process of its own: a child's peak RSS counts the
            # parent's at its start (Linux), and building the export loads TensorFlow
            model = Path(tmp) / "stand-in" / "export"
            build = (
                "import sys, pathlib, bench.live as b; "
                "b.embedding_stand_in(pathlib.Path(sys.argv[1]))"
            )
            run_measured([sys.executable, "-c", build, str(model.parent)])
        kinds = [("window", True)] + ([("streaming", False)] if has_streaming_model(model) else [])
        ten, _ = repeated(recording, Path(args.labels), 600, Path(tmp) / "ten_minutes.wav")
        hour, hour_truth = repeated(
            recording, Path(args.labels), 3600 * args.hours, Path(tmp) / "hour.wav"
        )
        seconds = 3600 * args.hours
        for kind, window in kinds:
            flags = [] if window else ["--streaming"]
            row = {"model": kind}
            wall, rss_ten, _ = run_measured(
                [*KWS, "detect", str(ten), "--model", str(model), "--quiet", *flags]
            )
            wall, rss, out = run_measured(
                [*KWS, "detect", str(hour), "--model", str(model), "--quiet", *flags]
            )
            row.update(
                detect_rtf=wall / seconds,
                detect_wall_s=wall,
                detect_rss_mib=rss,
                detect_rss_10min_mib=rss_ten,
                detections=len(out.splitlines()),
            )
            _, eval_rss, _ = run_measured(
                [
                    *KWS,
                    "stream-eval",
                    "--model",
                    str(model),
                    "--wav",
                    str(hour),
                    "--ground-truth",
                    str(hour_truth),
                    *flags,
                ]
            )
            row["stream_eval_rss_mib"] = eval_rss
            median, own, found, lines = listen_latency(
                model, recording, Path(args.labels), args.listen_seconds, window
            )
            row.update(
                listen_latency_ms=median,
                listen_tool_latency_ms=own,
                listen_words=f"{found}/{lines}",
            )
            rows.append(row)
    header = (
        f"{'model':<10} {'detect RTF':>10} {'RSS 1 h':>9} {'RSS 10 min':>10} "
        f"{'stream-eval RSS':>15} {'listen latency':>14} "
        f"{'tool latency':>12}"
    )
    print(
        f"python -m bench.live, {date.today()}, {platform.node()} ({os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}); model {model}; {args.hours:g} h "
        f"recording; listening {args.listen_seconds:g} s"
    )
    print(header)
    for row in rows:
        latency = lambda v: "-" if v is None else f"{v:.0f} ms"  # noqa: E731
        print(
            f"{row['model']:<10} {row['detect_rtf']:>10.4f} {row['detect_rss_mib']:>5.0f} MiB "
            f"{row['detect_rss_10min_mib']:>6.0f} MiB {row['stream_eval_rss_mib']:>11.0f} MiB "
            f"{latency(row['listen_latency_ms']):>14} "
            f"{latency(row['listen_tool_latency_ms']):>12}"
        )
    if not has_streaming_model(model):
        print(f"(no streaming model in {model}: the window model only)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
