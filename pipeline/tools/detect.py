"""Which words are said in a recording: one line per detection, no ground truth needed.

    kws detect RECORDING... [--model models/export] [--json | --csv] [--streaming]
        [--clip-stride-ms MS --average-window-ms MS --detection-threshold X ...]

Each line is ``time_s label score`` (the start of the window that found the word, in seconds;
the decoder's averaged score), preceded by the recording's name when there are several;
``--json`` writes one JSON document, ``--csv`` rows of ``file,time_s,label,score``. The decoder
settings default to the export's operating point (decoder.json, written by freeze), the flags
override them, and one line on standard error says which were used. A recording of any length
is read and scored block by block (its memory does not grow with it; a bar on a terminal shows
the progress); one in stereo or at another rate is converted, with a note. The detections are
those ``kws stream-eval`` scores on the same recording.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from tqdm import tqdm

from pipeline.cli import parse_args, run_main
from pipeline.core import paths
from pipeline.core.audio import WavReader
from pipeline.core.errors import EXPECTED_ERRORS, StageError
from pipeline.streaming.detect import detect
from pipeline.streaming.operating_point import (
    add_decoder_flags,
    decoder_settings,
    describe,
    flag_overrides,
)
from pipeline.streaming.scorers import make_scorer

DESCRIPTION = __doc__.splitlines()[0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recordings", nargs="+", metavar="RECORDING", help="WAV files")
    parser.add_argument(
        "--model",
        default=str(paths.EXPORT_DIR),
        help="an export folder, .tflite, .keras or frozen .pb (default %(default)s)",
    )
    parser.add_argument("--labels", help="labels file (default: found beside the model)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON document on standard output")
    out.add_argument("--csv", action="store_true", help="file,time_s,label,score rows")
    parser.add_argument(
        "--streaming",
        action="store_true",
        help="score with the export's model_streaming.tflite, one call per feature frame",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_decoder_flags(parser)


def open_recordings(names, sample_rate: int, desired_samples: int):
    """A WavReader of each recording, converted to ``sample_rate`` mono (a note on standard error
    says so); a recording that cannot be read or is not longer than one window is one line on
    standard error and left out. Returns the readers and whether any was left out."""
    readers, failed = [], False
    for name in names:
        try:
            reader = WavReader(name, sample_rate, convert=True)
            if reader.num_samples <= desired_samples:
                raise StageError(
                    f"{name}: {reader.duration_s:.2f} s is not longer than the model's window "
                    f"({desired_samples / sample_rate:.2f} s): nothing to detect; `kws label-wav` "
                    "labels one clip"
                )
        except EXPECTED_ERRORS as exc:
            print(f"error [pipeline.tools.detect]: {exc}", file=sys.stderr)
            failed = True
            continue
        if reader.notes:
            print(f"note: {name}: {', '.join(reader.notes)}", file=sys.stderr)
        readers.append(reader)
    return readers, failed


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    for name in args.recordings:  # the cheap check first, before a model is loaded
        if not Path(name).is_file():
            raise FileNotFoundError(f"{name}: recording not found")
    settings, source = decoder_settings(args.model, flag_overrides(args))
    scorer = make_scorer(
        Path(args.model),
        settings.clip_stride_ms,
        labels_path=args.labels,
        streaming=args.streaming,
        progress=False,
    )
    print(describe(settings, source), file=sys.stderr)
    readers, failed = open_recordings(
        args.recordings, int(scorer.sample_rate), int(scorer.desired_samples)
    )
    several = len(args.recordings) > 1
    writer = csv.writer(sys.stdout, lineterminator="\n") if args.csv else None
    if writer:
        writer.writerow(["file", "time_s", "label", "score"])
    document = []
    for reader in readers:
        bar = tqdm(
            total=round(reader.duration_s),
            desc=str(reader.path),
            unit="s",
            disable=True if args.quiet else None,  # None: on a terminal only
            file=sys.stderr,
        )
        found = []

        def blocks(reader=reader, bar=bar):
            for block in reader.blocks():
                yield block
                bar.update(len(block) / scorer.sample_rate)

        for word in detect(scorer, blocks(), settings):
            time_s = word.time_ms / 1000
            found.append({"time_s": time_s, "label": word.label, "score": round(word.score, 6)})
            if writer:
                writer.writerow([reader.path, f"{time_s:.3f}", word.label, f"{word.score:.3f}"])
            elif not args.json:
                prefix = f"{reader.path} " if several else ""
                print(f"{prefix}{time_s:.3f} {word.label} {word.score:.3f}", flush=True)
        bar.close()
        document.append(
            {"file": str(reader.path), "duration_s": reader.duration_s, "detections": found}
        )
    if args.json:
        decoder = {**settings.to_dict(), "source": source}
        del decoder["time_tolerance_ms"]
        json.dump({"model": args.model, "decoder": decoder, "recordings": document}, sys.stdout)
        print()
    return 1 if failed else 0


if __name__ == "__main__":
    run_main(main)
