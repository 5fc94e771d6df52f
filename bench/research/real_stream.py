"""Streaming on real speech: a workspace's export, at its operating point, on recordings synthesized
from the real clips shared beside the repository.

    python -m bench.research.real_stream [--workspace .] [--data DIR] [--seeds 8 ...]
        [--duration 600] [--kinds float int8] [--workdir DIR] [--json OUT]

For a workspace trained without real recordings (the default pipeline: embedded data), every clip
of ``../shared/data/speech_commands_mini`` is unheard, so all of them make the recordings: the
download stage packs the folder into a clip store (``data.source: dir``) in a work folder, every
clip goes into one test manifest (keywords as themselves, other words ``_unknown_``), and the
project's stream synthesis (``pipeline.data.stream_synthesis.split_streams``, the workspace's
``stream`` makeup: 30% unknown words, the folder's own ``_background_noise_``) writes one
recording per ``--seeds`` value. Each is scored as the stream_eval stage scores the pipeline's
test recording: the export's window model at the workspace's ``stream_eval`` settings (stride,
average window, threshold: the operating point recorded for the default), the decoder of
RecognizeCommands, matched against the ground truth. Prints, per recording and pooled, the words
correct, false alarms per hour and the real-time factor of the scoring, with the command and
date, against the target (85% correct at no more than 60 false alarms per hour). A workspace
that trained on these clips (``data.source: dir`` on them) is refused: its figures would not be
held out.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import shlex
import sys
import tempfile
from pathlib import Path

import yaml

from bench.common import REPO, SHARED_MINI, run_stage

TARGET = (0.85, 60.0)  # words correct, false alarms per hour


def prepare_clips(params: dict, data: Path, work: Path) -> None:
    """The clip store of ``data`` (the download stage, ``data.source: dir``) and one test manifest
    of every clip (data/split/test.csv and labels.txt), in the current folder ``work``."""
    from pipeline.core import paths
    from pipeline.core.fs import atomic_write_text
    from pipeline.core.labels import prepare_words_list, write_labels
    from pipeline.data.manifest import MANIFEST_NAMES, manifest_text
    from pipeline.data.split import index_dataset

    params = {**params, "data": {**params["data"], "source": "dir", "dir": str(data.resolve())}}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    if not paths.DATASET_DIR.is_dir():
        run_stage("download", work)
    wanted_words = params["split"]["wanted_words"]
    # validation 0%, testing 100%: every speaker's clips hash to testing.
    wanted, unknown = index_dataset(paths.DATASET_DIR, wanted_words, 0, 100)
    paths.SPLIT_DIR.mkdir(parents=True, exist_ok=True)
    rows = wanted["testing"] + unknown["testing"]
    atomic_write_text(paths.SPLIT_DIR / MANIFEST_NAMES["testing"], manifest_text(rows))
    write_labels(paths.SPLIT_LABELS, prepare_words_list(wanted_words))


def synthesize(stream_cfg, seeds: list[int], duration_s: float, rate: int) -> list[Path]:
    """One recording (stream.wav, stream_labels.txt) per seed under streams/ in the current
    folder (kept: a second run reuses them)."""
    from pipeline.core import paths
    from pipeline.data.manifest import MANIFEST_NAMES
    from pipeline.data.stream_synthesis import split_streams, write_stream

    folders = [Path("streams") / f"seed_{s}" for s in seeds]
    todo = [
        (folder, dataclasses.replace(stream_cfg, seed=seed, duration_s=duration_s))
        for folder, seed in zip(folders, seeds)
        if not (folder / paths.STREAM_WAV.name).is_file()
    ]
    recordings = split_streams(
        paths.SPLIT_DIR / MANIFEST_NAMES["testing"],
        paths.SPLIT_LABELS,
        paths.DATASET_DIR,
        [cfg for _, cfg in todo],
        rate,
        split="test",
    )
    for (folder, _), (audio, labels) in zip(todo, recordings):
        write_stream(folder, audio, labels, rate)
    return [folder.resolve() for folder in folders]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=REPO, help="where dvc repro has run")
    parser.add_argument("--data", type=Path, default=SHARED_MINI, help="real clips")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="one recording per seed (default: the workspace's stream.seed)",
    )
    parser.add_argument("--duration", type=float, default=600, help="seconds of each recording")
    parser.add_argument("--kinds", nargs="+", choices=("float", "int8"), default=["float"])
    parser.add_argument("--workdir", type=Path, help="keep the work here (default: a temp folder)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    from pipeline.core import paths
    from pipeline.core.params import load_params, read_params
    from pipeline.data.stream_synthesis import StreamConfig
    from pipeline.streaming.config import StreamEvalConfig
    from pipeline.streaming.evaluate import run_stream_eval
    from pipeline.streaming.scorers import WindowScorer, load

    ws = args.workspace.resolve()
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: no such folder of real clips")
    params = read_params(ws / paths.PARAMS)
    source = params["data"]["source"]
    if source == "dir" and Path(ws, params["data"]["dir"]).resolve() == args.data.resolve():
        raise SystemExit(f"{ws}: trained on {args.data} (data.source: dir); not held out")
    stream_cfg, eval_cfg = load_params(ws / paths.PARAMS, StreamConfig, StreamEvalConfig)
    seeds = args.seeds or [stream_cfg.seed]
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="real_stream_"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {work}", flush=True)
    with contextlib.chdir(work):  # manifest paths are relative to the work folder
        prepare_clips(params, args.data, work)
        rate = int(params["features"]["sample_rate"])
        folders = synthesize(stream_cfg, seeds, args.duration, rate)

    rows = []
    for kind in args.kinds:
        model = load(ws / paths.EXPORT_DIR / f"model_{kind}.tflite")
        for seed, folder in zip(seeds, folders):
            scorer = WindowScorer(model, eval_cfg.clip_stride_ms, progress=False)
            result = run_stream_eval(
                scorer,
                folder / paths.STREAM_WAV.name,
                folder / paths.STREAM_LABELS.name,
                eval_cfg,
            )
            m = result.metrics
            rows.append(
                {
                    "kind": kind,
                    "seed": seed,
                    **{k: m[k] for k in ("ground_truth_words", "correct", "wrong")},
                    "false_positives": m["false_positives"],
                    "detection_rate": m["detection_rate"],
                    "false_alarms_per_hour": m["false_alarms_per_hour"],
                    "duration_s": m["duration_s"],
                    "frame_reuse": m["frame_reuse"],
                    "scoring_s": result.scores.seconds,
                }
            )

    command = "python -m bench.research.real_stream " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    date = dt.date.today().isoformat()
    print(
        f"\n{command}\n{date}, {platform.processor() or platform.machine()}, {os.cpu_count()} "
        f"cores; export {ws / paths.EXPORT_DIR}; stream_eval stride {eval_cfg.clip_stride_ms} ms, "
        f"average window {eval_cfg.average_window_ms} ms, threshold "
        f"{eval_cfg.detection_threshold}"
        + (", repeated words reported" if eval_cfg.repeat_commands else "")
        + f"; real clips {args.data}"
    )
    header = (
        f"{'model':<6} {'seed':>6} {'words':>6} {'correct':>8} {'wrong':>6} {'false +':>7} "
        f"{'FA/hour':>8} {'x real time':>11} {'target':>6}"
    )
    print(header + "\n" + "-" * len(header))

    def line(kind, seed, words, correct, wrong, fp, duration, seconds):
        rate, fa = correct / words, (wrong + fp) * 3600 / duration
        met = rate >= TARGET[0] and fa <= TARGET[1]
        print(
            f"{kind:<6} {seed:>6} {words:>6} {100 * rate:>7.1f}% {wrong:>6} {fp:>7} {fa:>8.0f} "
            f"{duration / seconds:>10.0f}x {'yes' if met else 'no':>6}"
        )

    for r in rows:
        line(
            r["kind"], r["seed"], r["ground_truth_words"], r["correct"], r["wrong"],
            r["false_positives"], r["duration_s"], r["scoring_s"],
        )  # fmt: skip
    if len(seeds) > 1:
        for kind in args.kinds:
            mine = [r for r in rows if r["kind"] == kind]
            line(
                kind, "pooled", *(sum(r[k] for r in mine) for k in (
                    "ground_truth_words", "correct", "wrong", "false_positives", "duration_s",
                    "scoring_s",
                )),
            )  # fmt: skip
    if args.json:
        settings = {
            k: getattr(eval_cfg, k)
            for k in (
                "clip_stride_ms",
                "average_window_ms",
                "detection_threshold",
                "repeat_commands",
            )
        }
        args.json.write_text(
            json.dumps({"command": command, "date": date, "stream_eval": settings, "rows": rows}),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
