"""kws web: the page's front end, decoder and detections in a real headless Chromium, its
microphone a WAV file; and the one-line refusals of exports the page cannot run.

The browser tests skip when no Chromium is installed (``make test`` installs one, see the
Makefile); ``pipeline.web.chromium`` drives it over the DevTools pipe.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import run_main
from pipeline.core.audio import write_wav
from pipeline.core.errors import StageError
from pipeline.frontends import FeatureConfig
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.recognize import decode, window_averages
from pipeline.tools import web as web_tool
from pipeline.web.chromium import Browser, find_chromium
from pipeline.web.page import write_page
from tests.conftest import skip_without_embedding_models, word_clip

RATE = 16000
# The JavaScript front end computes what TensorFlow's ops compute, to float32 rounding.
FEATURE_TOLERANCE = 1e-4
# The JavaScript log-mel (double precision) against numpy's (float32), through the embedding
# model: embeddings (values up to about 50) within this (8e-5 measured), window scores too.
EMBEDDING_TOLERANCE = 1e-3
# The page hears the WAV through Chromium's fake microphone (resampled twice): its detections
# must have the reference's labels, each within this of the reference's time.
TIME_TOLERANCE_MS = 100

needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="chromium not installed (make test installs it)"
)


def kws_web(argv, capsys) -> tuple[int, str, str]:
    """``kws web ARGV`` in this process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        run_main(web_tool.main, argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@contextmanager
def served(folder: Path):
    """``folder`` on http://127.0.0.1:<port>/ from a thread; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def spoken(words, seconds: float, first_s: float = 0.5, every_s: float = 1.4) -> np.ndarray:
    """A quiet recording with the tone words of conftest one after another."""
    audio = np.random.default_rng(0).normal(0, 0.003, int(seconds * RATE)).astype(np.float32)
    for i, word in enumerate(words):
        start = int(RATE * (first_s + every_s * i))
        audio[start : start + RATE] += word_clip(word, 40 + i, 0)
    return audio


def reference_detections(export: Path, audio: np.ndarray, settings: StreamEvalConfig, streaming):
    """What the project's Python pieces detect on ``audio`` (stream_eval's scorer and decoder)."""
    from pipeline.streaming.scorers import make_scorer

    scorer = make_scorer(export, settings.clip_stride_ms, streaming=streaming, progress=False)
    scores = scorer.score(audio)
    averages = window_averages(
        scores.times_ms, scores.scores, settings.average_window_ms, settings.minimum_count
    )
    return decode(
        scorer.labels,
        averages,
        settings.detection_threshold,
        settings.suppression_ms,
        settings.minimum_margin,
        settings.repeat_commands,
    )


# Before the page listens: keep every block of samples its Spotter is given (what it heard).
KEEP_HEARD = (
    "(() => { window.heard = []; const push = KWS.Spotter.prototype.push; "
    "KWS.Spotter.prototype.push = function (s) { heard.push(Array.from(s)); "
    "return push.call(this, s); }; })()"
)


def page_detections(page: Path, wav: Path, seconds: float, keep_heard: bool = False):
    """The page's detections ``(label, time_ms, score)`` in the first ``seconds`` of the WAV
    (Chromium plays it in a loop), and the page's state (its real-time factor; with
    ``keep_heard``, ``heard``: the samples the page was given)."""
    query = "" if keep_heard else "?autostart=1"
    with served(page) as url, Browser(url + "index.html" + query, fake_audio=wav) as browser:
        if keep_heard:
            browser.wait_for("window.kwsState && (kwsState.ready || kwsState.error)", 60)
            browser.evaluate(KEEP_HEARD)
            browser.evaluate("document.getElementById('start').click()")
        browser.wait_for("window.kwsState && (kwsState.listening || kwsState.error)", 60)
        browser.wait_for(f"kwsState.error || kwsState.seconds > {seconds + 0.5}", seconds + 60)
        state = browser.evaluate("({...kwsState, spotter: undefined})")
        assert state["error"] is None, (state, browser.console)
        text = browser.evaluate("document.getElementById('detections').textContent")
        if keep_heard:
            state["heard"] = np.concatenate(
                [np.asarray(b, np.float32) for b in browser.evaluate("heard")]
            )
    found = []
    for line in text.splitlines():
        time_s, label, score = line.split()
        if float(time_s) * 1000 < (seconds - 1) * 1000:
            found.append((label, round(float(time_s) * 1000), float(score)))
    return found, state


def assert_same_detections(found, reference):
    assert [label for label, *_ in found] == [label for label, *_ in reference], (found, reference)
    for (_, time_ms, _), (_, expected_ms, _) in zip(found, reference):
        assert abs(time_ms - expected_ms) <= TIME_TOLERANCE_MS, (found, reference)


# ---------------------------------------------------------------------------------------------
# refusals (no browser)


def fake_export(folder: Path, preprocess: str) -> Path:
    from tests.test_inference import FEATURES, LABELS

    folder.mkdir(parents=True)
    features = dict(FEATURES, preprocess=preprocess)
    (folder / "frontend.json").write_text(json.dumps({"features": features, **features}))
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n")
    return folder


@pytest.mark.parametrize("preprocess", ["embedding_int8", "efficientword", "micro"])
def test_an_export_whose_front_end_the_page_cannot_compute_is_one_line(
    tmp_path, capsys, preprocess
):
    export = fake_export(tmp_path / "export", preprocess)
    status, _, err = kws_web(["--model", str(export), "--out", str(tmp_path / "page")], capsys)
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert f"its front end is {preprocess!r}" in err and str(export) in err
    assert not (tmp_path / "page").exists()


def test_bad_folders_are_one_line_each_and_nothing_is_written(tmp_path, capsys):
    export = fake_export(tmp_path / "export", "mfcc")
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    cases = {
        "missing export": ([str(tmp_path / "nowhere"), str(tmp_path / "page")], "no such export"),
        "out is a file": ([str(export), str(a_file)], "is a file"),
        "out is someone else's folder": ([str(export), str(foreign)], "not empty"),
        "no window model": ([str(export), str(tmp_path / "page")], "no saved_model/"),
        "no streaming model": (
            [str(export), str(tmp_path / "page"), "--streaming"],
            "no model_streaming.tflite",
        ),
        "bad decoder setting": (
            [str(export), str(tmp_path / "page"), "--detection-threshold", "2"],
            "detection_threshold",
        ),
    }
    for name, ((model, out, *rest), words) in cases.items():
        status, _, err = kws_web(["--model", model, "--out", out, *rest], capsys)
        assert status == 1 and len(err.strip().splitlines()) == 1, (name, err)
        assert words in err, (name, err)
    assert a_file.read_text() == "keep me" and (foreign / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "page").exists()


# ---------------------------------------------------------------------------------------------
# the page in Chromium


@pytest.fixture(scope="module")
def tiny_page(tmp_path_factory):
    """The tiny tone-word export (tests/test_freeze.py) and its page."""
    from tests.test_freeze import build_export

    root = tmp_path_factory.mktemp("web")
    export, _ = build_export(root)
    write_page(export, root / "page")
    return export, root / "page"


def holding_fds_below(first: int) -> list[int]:
    """Open /dev/null until the next free descriptor is ``first``; the caller closes them."""
    held = []
    while True:
        fd = os.open(os.devnull, os.O_RDONLY)
        if fd >= first:
            os.close(fd)
            return held
        held.append(fd)


@needs_chromium
@pytest.mark.parametrize("first", [97, 98, 99, 100, 101])
def test_the_browser_starts_whatever_descriptors_its_pipes_get(first):
    """The DevTools pipes land on whatever descriptors are free (a long test run holds many);
    wired onto 3 and 4 in the child, no pipe end may close another (one that sat on 100 used
    to, and Chromium found its reply pipe gone)."""
    held = holding_fds_below(first)
    try:
        with Browser("about:blank") as browser:
            assert browser.evaluate("6 * 7") == 42
    finally:
        for fd in held:
            os.close(fd)


def test_a_browser_that_exits_at_start_is_one_line_with_its_last_words(tmp_path, monkeypatch):
    """A Chromium that dies at start (a missing library, a bad flag) is a StageError carrying
    the last line it wrote to stderr, and leaves no profile folder behind."""
    fake = tmp_path / "bin" / "chromium"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'starting' >&2\necho 'libfoo.so: cannot open' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    with pytest.raises(StageError, match=r"chromium exited .*: libfoo\.so: cannot open$"):
        Browser("about:blank")
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.slow
@needs_chromium
def test_the_page_writes_its_files_and_replaces_an_old_page(tiny_page, tmp_path, capsys):
    export, page = tiny_page
    names = sorted(p.relative_to(page).as_posix() for p in page.rglob("*") if p.is_file())
    assert {"index.html", "kws.js", "app.js", "config.json", "model.tflite"} <= set(names)
    assert any(name.startswith("runtime/") and name.endswith(".wasm") for name in names)
    config = json.loads((page / "config.json").read_text())
    assert config["labels"] == (export / "labels.txt").read_text().split()
    assert config["decoder"]["clip_stride_ms"] == StreamEvalConfig().clip_stride_ms
    # Written again over itself (a page folder may be replaced), with another decoder setting.
    out = tmp_path / "page"
    for threshold in ("0.7", "0.6"):
        status, printed, _ = kws_web(
            ["--model", str(export), "--out", str(out), "--detection-threshold", threshold],
            capsys,
        )
        assert status == 0 and "http.server" in printed
    assert json.loads((out / "config.json").read_text())["decoder"]["detection_threshold"] == 0.6


@pytest.mark.slow
@needs_chromium
def test_javascript_front_end_matches_the_python_one(tiny_page):
    _, page = tiny_page
    audio = spoken(["yes", "down"], 3.0)
    from tests.test_inference import FEATURES

    default = FeatureConfig()  # the default configuration's features, besides the tiny model's
    tiny = FeatureConfig.from_dict(FEATURES)
    with served(page) as url, Browser(url + "index.html") as browser:
        browser.wait_for("window.kwsState && (kwsState.ready || kwsState.error)", 60)
        for cfg in (default, tiny):
            frontend = {
                "sample_rate": cfg.sample_rate,
                "window_size_samples": cfg.window_size_samples,
                "frame_stride_samples": cfg.window_stride_samples,
                "feature_bin_count": cfg.feature_bin_count,
            }
            got = np.array(
                browser.evaluate(
                    f"new KWS.Mfcc({json.dumps(frontend)})"
                    f".compute(Float32Array.from({json.dumps(audio.tolist())}))"
                    ".map((f) => Array.from(f))"
                ),
                np.float32,
            )
            expected = cfg.frontend.stream_features(audio, cfg)
            assert got.shape == expected.shape
            np.testing.assert_allclose(got, expected, rtol=0, atol=FEATURE_TOLERANCE)


@pytest.mark.slow
@needs_chromium
def test_javascript_decoder_matches_recognize_commands(tiny_page):
    _, page = tiny_page
    labels = json.loads((page / "config.json").read_text())["labels"]
    rng = np.random.default_rng(4)
    # Scores that dwell on one label for a while, then another: many detections and rejections.
    steps = 600
    dwell = np.repeat(rng.integers(0, len(labels), steps // 20), 20)
    scores = rng.dirichlet(np.ones(len(labels)), steps) * 0.5
    scores[np.arange(steps), dwell] += rng.uniform(0.4, 2.0, steps)
    scores = (scores / scores.sum(axis=1, keepdims=True)).astype(np.float32)
    times = np.arange(steps) * 30
    cases = [
        StreamEvalConfig(),
        StreamEvalConfig(detection_threshold=0.5, suppression_ms=300),
        StreamEvalConfig(average_window_ms=200, minimum_count=2, minimum_margin=0.2),
        StreamEvalConfig(detection_threshold=0.5, suppression_ms=300, repeat_commands=True),
    ]
    with served(page) as url, Browser(url + "index.html") as browser:
        browser.wait_for("window.kwsState && (kwsState.ready || kwsState.error)", 60)
        for settings in cases:
            expected = decode(
                labels,
                window_averages(times, scores, settings.average_window_ms, settings.minimum_count),
                settings.detection_threshold,
                settings.suppression_ms,
                settings.minimum_margin,
                settings.repeat_commands,
            )
            got = browser.evaluate(
                f"(() => {{ const r = new KWS.Recognizer({json.dumps(labels)}, "
                f"{json.dumps(dataclasses.asdict(settings))}); const found = []; "
                f"const scores = {json.dumps(scores.tolist())}; "
                "scores.forEach((s, i) => { const x = r.process(Float32Array.from(s), i * 30); "
                "if (x.isNew && x.label !== '_silence_') "
                "found.push([x.label, i * 30, x.score]); }); "
                "return found; })()"
            )
            assert len(expected) > 5
            assert [tuple(d[:2]) for d in got] == [tuple(d[:2]) for d in expected], settings
            np.testing.assert_allclose([d[2] for d in got], [d[2] for d in expected], rtol=1e-12)


@pytest.mark.slow
@needs_chromium
def test_page_detections_match_python_on_the_fake_microphone(tiny_page, tmp_path):
    export, page = tiny_page
    seconds = 10.0
    audio = spoken(["yes", "no", "up", "down", "yes", "no"], seconds)
    wav = tmp_path / "words.wav"
    write_wav(wav, audio, RATE)
    reference = reference_detections(export, audio, StreamEvalConfig(), streaming=False)
    assert len(reference) >= 4
    found, state = page_detections(page, wav, seconds)
    assert_same_detections(found, reference)
    assert 0 < state["realTimeFactor"] < 1


@pytest.mark.slow
@needs_chromium
def test_streaming_page_detections_match_python(tmp_path):
    from tests.test_streaming_export import MFCC, SvdfOptions, freeze_tones, train_registered

    keras_dir = train_registered(
        tmp_path / "keras", "low_latency_svdf", SvdfOptions(units=32, rank=2), MFCC
    )
    freeze_tones(tmp_path, keras_dir, MFCC)
    export = tmp_path / "export"
    settings = StreamEvalConfig(clip_stride_ms=40)  # a whole number of 20 ms frames
    write_page(export, tmp_path / "page", settings, streaming=True)
    seconds = 10.0
    audio = spoken(["yes", "no", "up", "down", "yes", "no"], seconds)
    wav = tmp_path / "words.wav"
    write_wav(wav, audio, RATE)
    reference = reference_detections(export, audio, settings, streaming=True)
    assert len(reference) >= 4
    found, _ = page_detections(tmp_path / "page", wav, seconds)
    assert_same_detections(found, reference)


# ---------------------------------------------------------------------------------------------
# the speech embedding (features.preprocess: embedding)


# The default export's vocal-tract views (params export.views), which the page computes too.
VIEWS = (0.9, 1.0, 1.1)


def embedding_export(root: Path) -> Path:
    """An embedding_conv head trained on the tone words' embeddings, frozen into a bundle with
    the default's vocal-tract views (the page runs the TFLite model whole, so one head stands for
    the default's committee too)."""
    from pipeline.models.embedding_conv import EmbeddingConvOptions
    from tests.test_inference import FEATURES
    from tests.test_streaming_export import freeze_tones, train_registered

    features = dict(FEATURES, preprocess="embedding")
    options = EmbeddingConvOptions(channels=16, kernel=3, inner_dropout=0.0)
    keras_dir = train_registered(root / "keras", "embedding_conv", options, features, epochs=80)
    freeze_tones(root, keras_dir, features, VIEWS)
    return root / "export"


@pytest.fixture(scope="module")
def embedding_page(tmp_path_factory):
    """A tiny embedding export and its page, written by ``kws web`` with its defaults."""

    skip_without_embedding_models()
    root = tmp_path_factory.mktemp("web-embedding")
    export = embedding_export(root)
    with pytest.raises(SystemExit) as exit_info:
        run_main(web_tool.main, ["--model", str(export), "--out", str(root / "page")])
    assert exit_info.value.code == 0
    return export, root / "page"


def causal_stream_features(audio: np.ndarray, views=VIEWS) -> np.ndarray:
    """``embedding.stream_features`` with the page's clamp: each embedding's mel frames clamped
    at top_db below the loudest mel value up to its last frame (not the whole recording's); the
    ``views`` side by side."""
    return np.concatenate([causal_view_features(audio, view) for view in views], axis=-1)


def stream_features_of_views(audio: np.ndarray, views=VIEWS) -> np.ndarray:
    """``embedding.stream_features`` of each view, side by side (a views export's frames)."""
    from pipeline.frontends import embedding as e

    return np.concatenate([e.stream_features(audio, view=view) for view in views], axis=-1)


def causal_view_features(audio: np.ndarray, view: float) -> np.ndarray:
    from pipeline.frontends import embedding as e

    db = e.mel_db(np.pad(audio, (e.PAD_SAMPLES, e.PAD_SAMPLES)), view)
    loudest = np.maximum.accumulate(db.max(axis=1))
    top_db = e.mel_constants()["top_db"]
    rows = []
    for first in range(0, len(db) - e.WINDOW_FRAMES + 1, e.WINDOW_STEP_FRAMES):
        last = first + e.WINDOW_FRAMES - 1
        spec = np.maximum(db[first : last + 1], loudest[last] - top_db) / 10.0 + 2.0
        rows.append(e.run_embedding_model(spec[None, :, :, None].astype(np.float32))[0, 0])
    return np.asarray(rows, np.float32)


def padding_embeddings() -> int:
    """The first embeddings whose mel frames include one wholly in the stream's leading silence
    (where the page's clamp and Python's differ)."""
    from pipeline.frontends import embedding as e

    silent_frames = (e.PAD_SAMPLES - e.MEL_WINDOW_SAMPLES) // e.MEL_HOP_SAMPLES + 1
    return -(-silent_frames // e.WINDOW_STEP_FRAMES)


def test_embedding_pages_refuse_what_they_cannot_run(tmp_path, capsys):
    """An embedding export without its float head, with --streaming, or a clip stride that is
    not whole 80 ms frames: one line each, nothing written."""
    export = fake_export(tmp_path / "export", "embedding")
    cases = {
        "no head": ([], "no model_float.tflite"),
        "streaming": (["--streaming"], "window model only"),
        "stride": (["--clip-stride-ms", "30"], "not a whole number of feature frames"),
    }
    for name, (rest, words) in cases.items():
        if name == "stride":
            (export / "model_float.tflite").write_bytes(b"")
            frontend = json.loads((export / "frontend.json").read_text())
            tensor = {"dtype": "float32", "scale": 0.0, "zero_point": 0}
            io = {
                "takes": "features",
                "input": {**tensor, "shape": [1, 9, 96]},
                "output": {**tensor, "shape": [1, 6]},
            }
            frontend["tflite"] = {"model_float.tflite": io}
            (export / "frontend.json").write_text(json.dumps(frontend))
        argv = ["--model", str(export), "--out", str(tmp_path / "page"), *rest]
        status, _, err = kws_web(argv, capsys)
        assert status == 1 and len(err.strip().splitlines()) == 1, (name, err)
        assert words in err, (name, err)
    assert not (tmp_path / "page").exists()


@pytest.mark.slow
@needs_chromium
def test_embedding_page_files_and_default_stride(embedding_page):
    _, page = embedding_page
    assert (page / "embedding" / "embedding_model.tflite").is_file()
    assert "Apache License" in (page / "embedding" / "NOTICE").read_text()
    config = json.loads((page / "config.json").read_text())
    assert config["decoder"]["clip_stride_ms"] == 80  # kws web's default for the embedding
    assert config["frontend"]["frame_stride_samples"] == 1280
    assert config["frontend"]["feature_shape"] == [9, 96]
    # One mel matrix per vocal-tract view; view 1.0's is the mel model's own.
    from pipeline.frontends import embedding

    page_embedding = config["frontend"]["embedding"]
    assert page_embedding["views"] == list(VIEWS)
    matrices = np.array(page_embedding["mel_matrices"], np.float32)
    assert matrices.shape == (len(VIEWS), 257, 32)
    np.testing.assert_array_equal(
        matrices[VIEWS.index(1.0)], embedding.mel_constants()["matrix2"][::2]
    )
    assert not np.array_equal(matrices[0], matrices[1])


@pytest.mark.slow
@needs_chromium
def test_javascript_speech_embedding_matches_stream_features(embedding_page):
    """Each vocal-tract view's embeddings, side by side, as Python's."""
    _, page = embedding_page
    audio = spoken(["yes", "down"], 3.0)
    with served(page) as url, Browser(url + "index.html") as browser:
        browser.wait_for("window.kwsState && (kwsState.ready || kwsState.error)", 60)
        got = np.array(
            browser.evaluate(
                "new KWS.SpeechEmbedding(kwsPage.config.frontend, kwsPage.frontendRunner)"
                f".compute(Float32Array.from({json.dumps(audio.tolist())}))"
                ".map((f) => Array.from(f))"
            ),
            np.float32,
        )
    expected = stream_features_of_views(audio)
    assert got.shape == expected.shape == (34, 96 * len(VIEWS))
    # Where no frame is the leading silence, the clamp does not bind: Python's features.
    first = padding_embeddings()
    np.testing.assert_allclose(got[first:], expected[first:], rtol=0, atol=EMBEDDING_TOLERANCE)
    # Everywhere, Python's computation with the page's causal clamp.
    causal = causal_stream_features(audio)
    np.testing.assert_allclose(got, causal, rtol=0, atol=EMBEDDING_TOLERANCE)
    assert np.abs(causal[:first] - expected[:first]).max() > 0.1  # the clamps do differ there


@pytest.mark.slow
@needs_chromium
def test_embedding_page_window_scores_match_python(embedding_page):
    """The page's Spotter given the recording's samples (128 at a time, as the microphone gives
    them) scores the windows stream_eval's scorer scores, at the same times."""
    from pipeline.inference import load_model
    from pipeline.streaming.scorers import make_scorer

    export, page = embedding_page
    audio = spoken(["yes", "no", "up", "down"], 6.0)
    with served(page) as url, Browser(url + "index.html") as browser:
        browser.wait_for("window.kwsState && (kwsState.ready || kwsState.error)", 60)
        got = np.array(
            browser.evaluate(
                "(() => { const out = []; const spotter = new KWS.Spotter(kwsPage.config, "
                "kwsPage.runner, (t, r, scores) => out.push([t, ...scores]), "
                "kwsPage.frontendRunner); "
                f"const a = Float32Array.from({json.dumps(audio.tolist())}); "
                "for (let i = 0; i < a.length; i += 128) spotter.push(a.slice(i, i + 128)); "
                "return out; })()"
            )
        )
    reference = make_scorer(export, 80, progress=False).score(audio)
    # The page scores a window once its last embedding is computed: all but Python's last ones,
    # which see the silence Python pads a whole recording with at its end.
    n = len(got)
    assert len(reference.times_ms) - 3 <= n <= len(reference.times_ms)
    np.testing.assert_array_equal(got[:, 0], reference.times_ms[:n])
    first = padding_embeddings()
    np.testing.assert_allclose(got[first:, 1:], reference.scores[first:n], atol=EMBEDDING_TOLERANCE)
    features = causal_stream_features(audio)
    windows = np.stack([features[i : i + 9] for i in range(first)])
    causal = load_model(export).predict_features(windows)
    np.testing.assert_allclose(got[:first, 1:], causal, atol=EMBEDDING_TOLERANCE)


@pytest.mark.slow
@needs_chromium
def test_embedding_page_detections_match_python_on_what_it_heard(embedding_page, tmp_path):
    """On the fake microphone: the page's detections are the Python scorer's and decoder's on the
    samples the page was given. (Chromium resamples the WAV and starts it a few tens of ms late;
    the embedding, one every 80 ms, is sensitive to both, so the WAV itself is not the
    reference here: its detections came 160 ms later in a run.)"""
    export, page = embedding_page
    seconds = 10.0
    wav = tmp_path / "words.wav"
    write_wav(wav, spoken(["yes", "no", "up", "down", "yes", "no"], seconds), RATE)
    found, state = page_detections(page, wav, seconds, keep_heard=True)
    settings = StreamEvalConfig(clip_stride_ms=80)
    reference = reference_detections(export, state["heard"], settings, streaming=False)
    reference = [d for d in reference if d[1] < (seconds - 1) * 1000]
    # (the tiny tone-trained head is less sure of the words over three views: 3 of 6 in a run)
    assert len(reference) >= 3
    assert_same_detections(found, reference)
    assert 0 < state["realTimeFactor"] < 1
