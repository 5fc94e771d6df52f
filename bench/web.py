"""Benchmark: the page of `kws web` in a headless Chromium, its microphone a WAV file.

Rows: params.yaml's configuration's export (window model, one window per clip stride: 30 ms
for mfcc, 80 ms for the speech embedding), the low_latency_svdf preset's streaming export
(model_streaming.tflite, one call per feature frame, windows every 40 ms, two frames) and the
speech embedding with embedding_conv (log-mel in JavaScript, the embedding model every 80 ms, the
head on every 80 ms window). Untrained stand-ins exported with the freeze stage's code (an
untrained model costs the same per call) unless ``--export`` names a trained export for the
first row. Columns: the page's real-time factor (time its JavaScript spends on the front end,
the model and the decoder / seconds of audio heard), windows scored, and detections (a stand-in
detects nothing meaningful).

    python -m bench.web [--export models/export] [--seconds 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import http.server
import json
import tempfile
import threading
from pathlib import Path

import numpy as np

from bench.common import repo_params, stand_in_export, stand_in_keras


def served_page(page: Path, wav: Path, seconds: float) -> dict:
    """Play ``wav`` into the page for ``seconds``; the page's state then."""
    from pipeline.web.chromium import Browser

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(page))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/index.html?autostart=1"
    try:
        with Browser(url, fake_audio=wav) as browser:
            browser.wait_for("window.kwsState && (kwsState.listening || kwsState.error)", 60)
            browser.wait_for(f"kwsState.error || kwsState.seconds > {seconds}", seconds + 60)
            state = browser.evaluate("({...kwsState, spotter: undefined})")
            state["detections"] = (
                len(browser.evaluate("document.getElementById('detections').textContent").split())
                // 3
            )
    finally:
        server.shutdown()
        server.server_close()
    if state.get("error"):
        raise SystemExit(f"the page failed: {state['error']}")
    return state


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", help="a trained export for the window row")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)

    from pipeline.core.audio import write_wav
    from pipeline.streaming.config import StreamEvalConfig
    from pipeline.web.chromium import find_chromium
    from pipeline.web.page import default_clip_stride_ms, read_export, write_page

    if find_chromium() is None:
        raise SystemExit("chromium not installed (apt-get install chromium)")
    params = repo_params()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rng = np.random.default_rng(0)
        audio = rng.normal(0, 0.05, int((args.seconds + 2) * 16000)).astype(np.float32)
        write_wav(work / "audio.wav", audio, 16000)
        if args.export:
            window_export, name = Path(args.export), f"{args.export} (trained)"
        else:
            keras_dir = stand_in_keras(params, work / "default" / "keras")
            window_export = stand_in_export(params, keras_dir, work / "default")
            name = f"default ({params['train'].model_architecture}, stand-in)"
        svdf = {
            **params,
            "features": dataclasses.replace(params["features"], preprocess="mfcc"),
            "train": dataclasses.replace(params["train"], model_architecture="low_latency_svdf"),
        }
        keras_dir = stand_in_keras(svdf, work / "svdf" / "keras")
        meta = json.loads(
            (keras_dir / "meta.json").read_text(encoding="utf-8")
        )  # freeze streams what it names
        meta["architecture"] = "low_latency_svdf"
        (keras_dir / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        svdf_export = stand_in_export(svdf, keras_dir, work / "svdf")
        embedding = {
            **params,
            "features": dataclasses.replace(params["features"], preprocess="embedding"),
            "train": dataclasses.replace(params["train"], model_architecture="embedding_conv"),
        }
        keras_dir = stand_in_keras(embedding, work / "embedding" / "keras")
        embedding_export = stand_in_export(embedding, keras_dir, work / "embedding")
        stride = default_clip_stride_ms(read_export(window_export, False)[0]["frontend"])
        rows = [
            (name, "window", window_export, StreamEvalConfig(clip_stride_ms=stride), False),
            (
                "low_latency_svdf (stand-in)",
                "streaming",
                svdf_export,
                StreamEvalConfig(clip_stride_ms=40),
                True,
            ),
            (
                f"embedding_conv (embedding, {len(params['export'].views)} views, stand-in)",
                "window",
                embedding_export,
                StreamEvalConfig(clip_stride_ms=80),
                False,
            ),
        ]
        print(
            f"{'export':<40} {'model':<10} {'real-time factor':>16} {'windows':>8} "
            f"{'detections':>10}"
        )
        for number, (label, kind, export, decoder, streaming) in enumerate(rows):
            page = work / f"page-{number}"
            write_page(export, page, decoder, streaming=streaming)
            state = served_page(page, work / "audio.wav", args.seconds)
            print(
                f"{label:<40} {kind:<10} {state['realTimeFactor']:>16.4f} "
                f"{state['windows']:>8} {state['detections']:>10}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
