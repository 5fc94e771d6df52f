"""Write a static page that spots keywords from the microphone, in the browser.

    kws web --model models/export --out DIR [--streaming] [--clip-stride-ms 30 ...]

DIR holds the page, its scripts, the TensorFlow Lite WebAssembly runtime and the model: nothing
is loaded from the network. Browsers give the microphone only to pages from a server (or
localhost): ``python -m http.server -d DIR`` and open http://localhost:8000/. With
``?autostart=1`` the page listens without a click. Each detection is a line ``time_s label
score`` (the window's start in seconds since listening began) in the element ``detections``.

``--streaming`` runs the export's ``model_streaming.tflite`` (one call per feature frame) instead
of the window model. The decoder options default to the export's operating point (its
decoder.json, written by freeze from params.yaml's stream_eval; the original's without one, and
then an 80 ms clip stride for the speech embedding, whose windows start on its 80 ms frames).
Only exports whose front end the page computes (mfcc, embedding) are accepted.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from pipeline.cli import parse_args, run_main
from pipeline.streaming.operating_point import (
    add_decoder_flags,
    decoder_file,
    decoder_settings,
    flag_overrides,
)
from pipeline.web.page import (
    check_out_dir,
    default_clip_stride_ms,
    read_export,
    write_page,
)

DESCRIPTION = "Write a static page that spots keywords from the microphone, in the browser."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="the export folder (models/export)")
    parser.add_argument("--out", required=True, help="folder to write the page into")
    parser.add_argument(
        "--streaming", action="store_true", help="run model_streaming.tflite frame by frame"
    )
    add_decoder_flags(parser)


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    overrides = flag_overrides(args)
    decoder, _ = decoder_settings(args.model, overrides)
    if "clip_stride_ms" not in overrides and decoder_file(args.model) is None:
        # No recorded operating point: the export's front end decides (checks as write_page).
        check_out_dir(Path(args.out))
        info, _ = read_export(Path(args.model), args.streaming)
        decoder = dataclasses.replace(
            decoder, clip_stride_ms=default_clip_stride_ms(info["frontend"])
        )
    config = write_page(Path(args.model), Path(args.out), decoder, streaming=args.streaming)
    print(
        f"wrote {args.out}/ ({config['model']}, labels {', '.join(config['labels'])}); serve it "
        f"with: python -m http.server -d {args.out}  and open http://localhost:8000/"
    )
    return 0


if __name__ == "__main__":
    run_main(main)
