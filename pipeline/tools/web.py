"""Write a static page that spots keywords from the microphone, in the browser.

    kws web --model models/export --out DIR [--streaming] [--clip-stride-ms 30 ...]

DIR holds the page, its scripts, the TensorFlow Lite WebAssembly runtime and the model: nothing
is loaded from the network. Browsers give the microphone only to pages from a server (or
localhost): ``python -m http.server -d DIR`` and open http://localhost:8000/. With
``?autostart=1`` the page listens without a click. Each detection is a line ``time_s label
score`` (the window's start in seconds since listening began) in the element ``detections``.

``--streaming`` runs the export's ``model_streaming.tflite`` (one call per feature frame) instead
of the window model. The decoder options default to the original's (params.yaml's stream_eval),
but for the speech embedding the clip stride defaults to 80 ms (its windows start on its 80 ms
frames). Only exports whose front end the page computes (mfcc, embedding) are accepted.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from pipeline.cli import run_main
from pipeline.streaming.config import StreamEvalConfig
from pipeline.web.page import (
    DECODER_KEYS,
    check_out_dir,
    default_clip_stride_ms,
    read_export,
    write_page,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the export folder (models/export)")
    parser.add_argument("--out", required=True, help="folder to write the page into")
    parser.add_argument(
        "--streaming", action="store_true", help="run model_streaming.tflite frame by frame"
    )
    for field in dataclasses.fields(StreamEvalConfig):
        if field.name in DECODER_KEYS:
            clip_stride = field.name == "clip_stride_ms"
            parser.add_argument(
                "--" + field.name.replace("_", "-"),
                type=type(field.default),
                default=None if clip_stride else field.default,
                help=f"default {field.default} (the original's)"
                + ("; 80 for the speech embedding" if clip_stride else ""),
            )
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    values = {key: getattr(args, key) for key in DECODER_KEYS if getattr(args, key) is not None}
    defaults = StreamEvalConfig()
    decoder = StreamEvalConfig.from_dict({**dataclasses.asdict(defaults), **values})
    if "clip_stride_ms" not in values:  # the export's front end decides (checks as write_page)
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
