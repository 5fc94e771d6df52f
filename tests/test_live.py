"""Words in recordings of any length and live audio: the block-by-block WAV reader, every
scorer's feed (the scores of ``score`` whatever the chunks), ``kws detect`` (the detections of
``kws stream-eval``, memory flat in the recording's length), ``kws listen -`` at real-time pace
(the detections of ``kws detect``), the export's operating point (decoder.json) and the one-line
errors of bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest

from pipeline.core.audio import (
    PcmConverter,
    WavReader,
    encode_pcm16,
    pcm16_blocks,
    read_wav,
    write_wav,
)
from pipeline.core.errors import ParamError, StageError, WavError
from pipeline.core.params import load_params
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.detect import detect
from pipeline.streaming.evaluate import run_stream_eval, score_recording
from pipeline.streaming.operating_point import decoder_dict, decoder_settings, read_decoder
from pipeline.streaming.scorers import MeanScorer, StreamingScorer, WindowScorer
from pipeline.streaming.scores import stream_scores, streaming_scores
from tests.conftest import REPO_ROOT, SHARED_MINI, SHARED_PRETRAINED, skip_without_embedding_models
from tests.test_stream import RATE, StandInModel, _recording

SETTINGS = StreamEvalConfig(detection_threshold=0.5)


class LocalStandIn(StandInModel):
    """The stand-in model, whose frames (a windowed FFT each) are local."""

    frames_are_local = True


class CarriedWindowByFrame:
    """A stand-in streaming model whose state is carried from call to call, as a streaming
    export's: the frames before (zeros at the start of a stream), the window model's scores of
    the window ending at each frame."""

    def __init__(self, model):
        self.model = model
        self.num_labels = len(model.labels)
        self.reset()

    def reset(self):
        self.history = None

    def run(self, features, progress=None):
        frames = int(self.model.frames_per_clip)
        if self.history is None:
            self.history = np.zeros((frames - 1, features.shape[1]), np.float32)
        padded = np.concatenate([self.history, features])
        self.history = padded[len(padded) - (frames - 1) :]
        windows = np.lib.stride_tricks.sliding_window_view(padded, frames, axis=0)
        return np.asarray(self.model.predict_features(np.swapaxes(windows, 1, 2)), np.float32)


def chunks(audio, seconds):
    size = max(1, int(seconds * RATE))
    return [audio[i : i + size] for i in range(0, len(audio), size)]


def fed(scorer, audio, seconds, eager=False):
    """The windows' scores of ``audio`` given to the scorer's feed in chunks of ``seconds``."""
    feed = scorer.feed(eager)
    parts = [feed.push(chunk) for chunk in chunks(audio, seconds)] + [feed.finish()]
    return (
        np.concatenate([p.times_ms for p in parts]),
        np.concatenate([p.scores for p in parts]),
    )


# ------------------------------------------------------------------------------- the reader
def test_the_reader_gives_the_file_block_by_block(tmp_path):
    audio, _ = _recording(seconds=5)
    write_wav(tmp_path / "r.wav", audio, RATE)
    reader = WavReader(tmp_path / "r.wav", RATE, block_frames=7000)
    blocks = list(reader.blocks())
    assert max(len(b) for b in blocks) == 7000 and reader.num_samples == 5 * RATE
    np.testing.assert_array_equal(np.concatenate(blocks), read_wav(tmp_path / "r.wav", RATE))
    assert reader.notes == []


def test_stereo_or_another_rate_is_refused_by_name_or_converted_with_a_note(tmp_path):
    left = np.sin(2 * np.pi * 440 * np.arange(3 * 44100) / 44100).astype(np.float32) * 0.5
    pcm = np.round(np.stack([left, left], axis=1) * 32767).astype("<i2")
    stereo = tmp_path / "stereo 44k.wav"
    data = bytearray(encode_pcm16(pcm.reshape(-1), 44100))
    data[22:24] = (2).to_bytes(2, "little")  # channels
    data[28:32] = (44100 * 4).to_bytes(4, "little")  # byte rate
    data[32:34] = (4).to_bytes(2, "little")  # block align
    stereo.write_bytes(bytes(data))
    with pytest.raises(WavError, match="stereo 44k.wav.*2 channels"):
        WavReader(stereo, RATE)
    reader = WavReader(stereo, RATE, convert=True, block_frames=10000)
    assert reader.notes == ["2 channels mixed to mono", "resampled from 44100 Hz to 16000 Hz"]
    mono = np.concatenate(list(reader.blocks()))
    assert abs(len(mono) - 3 * RATE) <= 2 and reader.num_samples == 3 * RATE
    expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(len(mono)) / RATE)
    assert np.abs(mono[2000:-2000] - expected[2000:-2000]).max() < 0.01  # the same tone


def test_raw_pcm_is_read_as_it_arrives_and_a_partial_frame_dropped():
    import io

    pcm = (np.arange(1001) - 500).astype("<i2")
    blocks = list(pcm16_blocks(io.BytesIO(pcm.tobytes() + b"\x01"), PcmConverter(1, RATE), 300))
    assert [len(b) for b in blocks] == [300, 300, 300, 101]
    np.testing.assert_array_equal(np.concatenate(blocks), pcm.astype(np.float32) / 32768)


# ------------------------------------------------------------------------------- the feeds
@pytest.mark.parametrize("seconds", [0.37, 1.0, 3.3])
def test_a_window_feed_gives_the_scores_of_the_whole_recording_whatever_the_chunks(seconds):
    audio, _ = _recording(seconds=12)
    whole = stream_scores(LocalStandIn(), audio, 30, batch_size=64, progress=False)
    for reuse in (True, False):
        model = LocalStandIn()
        scorer = WindowScorer(model, 30, frame_reuse=reuse, batch_size=64, progress=False)
        for eager in (False, True):
            times, scores = fed(scorer, audio, seconds, eager)
            np.testing.assert_array_equal(times, whole.times_ms)
            if eager:  # other batches: equal up to the last bits
                np.testing.assert_allclose(scores, whole.scores, atol=1e-6)
            else:
                np.testing.assert_array_equal(
                    scores, stream_scores(model, audio, 30, reuse, 64, False).scores
                )
        assert scorer.feed().frame_reuse == reuse
    # A model whose frames are not local (the speech embedding's) is scored whole, as before.
    plain = WindowScorer(StandInModel(), 30, progress=False)
    assert not plain.bounded() and WindowScorer(LocalStandIn(), 30).bounded()
    np.testing.assert_array_equal(fed(plain, audio, seconds)[1], whole.scores)


def test_streaming_and_mean_feeds_give_the_whole_recordings_scores():
    audio, _ = _recording(seconds=8)
    model = LocalStandIn()
    streaming = StreamingScorer(CarriedWindowByFrame(model), model, 30, progress=False)
    whole = streaming_scores(CarriedWindowByFrame(model), model, audio, 30, progress=False)
    times, scores = fed(streaming, audio, 0.37, eager=True)
    np.testing.assert_array_equal(times, whole.times_ms)
    np.testing.assert_array_equal(scores, whole.scores)
    mean = MeanScorer(
        [WindowScorer(LocalStandIn(), 30, progress=False), WindowScorer(model, 30, progress=False)]
    )
    times, scores = fed(mean, audio, 0.5)
    np.testing.assert_array_equal(scores, mean.score(audio).scores)


@pytest.fixture(scope="module")
def embedding_model(tmp_path_factory):
    """An untrained embedding-head model (the speech embedding's frames are not local: padding,
    the clamp against the loudest frame so far), or a skip without the embedding models."""
    from tests.test_embedding_frontend import _keras_embedding_model

    skip_without_embedding_models()
    return _keras_embedding_model(tmp_path_factory.mktemp("embedding"))


def test_an_embedding_model_is_fed_in_chunks_with_the_whole_recordings_scores(embedding_model):
    """The front end's frame stream carries its state from chunk to chunk: the window and the
    streaming feeds hold bounded state and give the whole recording's scores."""
    audio, _ = _recording(seconds=9)
    scorer = WindowScorer(embedding_model, 80, batch_size=16, progress=False)
    assert scorer.bounded() and scorer.feed().frame_reuse
    whole = stream_scores(embedding_model, audio, 80, True, 16, False)
    assert whole.frame_reuse and len(whole.times_ms) > 80
    for seconds in (4099 / RATE, 1.0):
        for eager in (False, True):
            times, scores = fed(scorer, audio, seconds, eager)
            np.testing.assert_array_equal(times, whole.times_ms)
            if eager:
                np.testing.assert_allclose(scores, whole.scores, atol=1e-6)
            else:
                np.testing.assert_array_equal(scores, whole.scores)
    streaming = StreamingScorer(
        CarriedWindowByFrame(embedding_model), embedding_model, 80, progress=False
    )
    assert streaming.bounded()
    expected = streaming_scores(
        CarriedWindowByFrame(embedding_model), embedding_model, audio, 80, progress=False
    )
    times, scores = fed(streaming, audio, 4099 / RATE, eager=True)
    np.testing.assert_array_equal(times, expected.times_ms)
    np.testing.assert_allclose(scores, expected.scores, atol=1e-6)


# ------------------------------------------------------------------------------- detect
def _written(tmp_path, seconds=40):
    _recording(seconds=seconds, tmp_path=tmp_path)
    return tmp_path / "stream.wav", tmp_path / "labels.txt"


def test_detect_finds_what_stream_eval_decodes_whatever_the_chunks(tmp_path):
    wav, truth = _written(tmp_path)
    scorer = WindowScorer(LocalStandIn(), 30, batch_size=64, progress=False)
    evaluated = run_stream_eval(scorer, wav, truth, SETTINGS)
    expected = [(label, t, score) for label, t, score, _ in evaluated.detections]
    assert len(expected) >= 10
    audio = read_wav(wav, RATE)
    for seconds in (0.37, 2.0, 40):
        for eager in (False, True):
            found = [d[:3] for d in detect(scorer, chunks(audio, seconds), SETTINGS, eager=eager)]
            assert [f[:2] for f in found] == [e[:2] for e in expected]
            np.testing.assert_allclose([f[2] for f in found], [e[2] for e in expected], atol=1e-6)
    found = list(detect(scorer, WavReader(wav, RATE, block_frames=5000).blocks(), SETTINGS))
    assert [d[:3] for d in found] == expected  # the file's blocks: the very same numbers


def _peak_bytes(function) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_recording(tmp_path):
    """detect holds a block, the windows not scored yet and the decoder's window: its peak on a
    recording eight times as long is the same; stream-eval's grows by the scores alone."""
    audio, _ = _recording(seconds=30)
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    write_wav(short, audio, RATE)
    write_wav(long, np.tile(audio, 8), RATE)
    scorer = WindowScorer(LocalStandIn(), 30, progress=False)

    def run(path):
        return lambda: sum(1 for _ in detect(scorer, WavReader(path, RATE).blocks(), SETTINGS))

    run(short)()  # imports and first-call caches out of the measure
    peaks = [_peak_bytes(run(path)) for path in (short, long)]
    assert peaks[1] < 1.2 * peaks[0], peaks
    assert peaks[1] < 8 * long.stat().st_size / 10  # far below the samples as float32
    scores = [
        _peak_bytes(lambda path=path: score_recording(scorer, WavReader(path, RATE)))
        for path in (short, long)
    ]
    windows = 8 * 30 * 1000 // 30
    assert scores[1] - scores[0] < windows * 4 * 4 * 3  # the scores (a few copies), no audio


def test_an_embedding_models_memory_does_not_grow_with_the_recording(tmp_path, embedding_model):
    """The speech embedding's feed holds its frame stream's state (a frame's audio, a window's
    mel, the running maximum), not the recording: detect's peak on a recording eight times as
    long is the same."""
    audio, _ = _recording(seconds=30)
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    write_wav(short, audio, RATE)
    write_wav(long, np.tile(audio, 8), RATE)
    # Batches of 64 windows: the first run (out of the measure) traces every batch shape.
    scorer = WindowScorer(embedding_model, 80, batch_size=64, progress=False)
    settings = StreamEvalConfig(detection_threshold=0.5, clip_stride_ms=80)

    def run(path):
        return lambda: sum(1 for _ in detect(scorer, WavReader(path, RATE).blocks(), settings))

    run(short)()  # imports and first-call caches (a model per call shape) out of the measure
    run(long)()
    peaks = [_peak_bytes(run(path)) for path in (short, long)]
    assert peaks[1] < 1.2 * peaks[0], peaks
    assert peaks[1] < 8 * long.stat().st_size / 10  # far below the samples as float32


# ------------------------------------------------------------------------------- decoder.json
def test_the_operating_point_is_read_checked_and_overridden(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    path = export / "decoder.json"
    point = decoder_dict(StreamEvalConfig(detection_threshold=0.85, average_window_ms=400))
    path.write_text(json.dumps(point))
    settings, source = decoder_settings(export)
    assert settings.detection_threshold == 0.85 and settings.average_window_ms == 400
    assert source == str(path)
    assert decoder_settings(export / "model_float.tflite")[0] == settings  # beside a file
    flagged, source = decoder_settings(export, {"detection_threshold": 0.6})
    assert flagged.detection_threshold == 0.6 and flagged.average_window_ms == 400
    assert source.endswith("and flags --detection-threshold")
    assert decoder_settings(tmp_path / "other.keras")[1] == "defaults"
    for bad, problem in (
        ({k: v for k, v in point.items() if k != "suppression_ms"}, "missing key suppression_ms"),
        ({**point, "colour": 1}, "unknown key colour"),
        ({**point, "detection_threshold": 2}, "detection_threshold"),
        ({**point, "clip_stride_ms": "fast"}, "clip_stride_ms"),
    ):
        path.write_text(json.dumps(bad))
        with pytest.raises(StageError, match=f"decoder.json: .*{problem}"):
            read_decoder(path)
    # An export made before repeat_commands existed: the original's rule, not an error.
    path.write_text(json.dumps({k: v for k, v in point.items() if k != "repeat_commands"}))
    assert decoder_settings(export)[0].repeat_commands is False
    path.write_text(json.dumps({**point, "repeat_commands": True}))
    assert decoder_settings(export)[0].repeat_commands is True
    off, source = decoder_settings(export, {"repeat_commands": False})
    assert off.repeat_commands is False and source.endswith("and flags --no-repeat-commands")
    path.write_text(json.dumps({**point, "repeat_commands": "yes"}))
    with pytest.raises(StageError, match="decoder.json: .*repeat_commands"):
        read_decoder(path)
    path.write_text("[1, 2]")
    with pytest.raises(StageError, match="decoder.json: the file must be a JSON object"):
        decoder_settings(export)
    with pytest.raises(ParamError, match="minimum_count"):
        decoder_settings(tmp_path, {"minimum_count": 0})


def test_the_freeze_stage_records_the_params_decoder_settings(tmp_path, monkeypatch):
    from pipeline.stages import freeze as stage

    (tmp_path / "keras").mkdir()
    (tmp_path / "keras" / "model.keras").write_bytes(b"")
    params = (REPO_ROOT / "params.yaml").read_text(encoding="utf-8")
    threshold = re.search(r"\n  detection_threshold: (\S+)\n", params).group(0)
    (tmp_path / "params.yaml").write_text(
        params.replace(threshold, "\n  detection_threshold: 0.8\n"), encoding="utf-8"
    )
    seen = {}
    monkeypatch.setattr(
        stage,
        "freeze",
        lambda *args: seen.update(inputs=args[-1]) or {"accuracy": {}, "size_bytes": {}},
    )
    params = str(tmp_path / "params.yaml")
    assert stage.main(["--params", params, "--keras-dir", str(tmp_path / "keras")]) == 0
    expected = load_params(tmp_path / "params.yaml", StreamEvalConfig)
    assert expected.detection_threshold == 0.8
    assert seen["inputs"].decoder == decoder_dict(expected)


# ------------------------------------------------------------------------------- the commands
@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    """A 10 s recording of real words (the shared clips) with the original's pretrained graph
    and a decoder.json beside it (threshold 0.5), its ground truth, and stream-eval's
    detections of it."""
    shared, pretrained = SHARED_MINI, SHARED_PRETRAINED
    if not (shared.is_dir() and (pretrained / "conv_actions_frozen.pb").is_file()):
        pytest.skip(f"the shared clips and pretrained graph are not at {shared}, {pretrained}")
    from pipeline.data.stream_synthesis import StreamConfig, format_labels, synthesize

    root = tmp_path_factory.mktemp("spoken")
    words = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    clips = {w: [read_wav(p, RATE) for p in sorted((shared / w).glob("*.wav"))[:3]] for w in words}
    unknown = [read_wav(p, RATE) for p in sorted((shared / "bed").glob("*.wav"))[:3]]
    noise = [np.random.default_rng(0).normal(0, 0.01, 2 * RATE).astype(np.float32)]
    settings = StreamConfig(
        duration_s=10,
        word_interval_ms=2000,
        word_gap_ms=800,
        seed=3,
        background_volume=0.05,
        unknown_percentage=0,
    )
    audio, labels = synthesize(clips, unknown, noise, settings, RATE, progress=False)
    write_wav(root / "spoken.wav", audio, RATE)
    (root / "truth.txt").write_text(format_labels(labels))
    model = root / "model"
    model.mkdir()
    for name in ("conv_actions_frozen.pb", "conv_actions_labels.txt"):
        os.symlink(pretrained / name, model / name)
    (model / "labels.txt").symlink_to(pretrained / "conv_actions_labels.txt")
    settings = StreamEvalConfig(detection_threshold=0.5)
    (model / "decoder.json").write_text(json.dumps(decoder_dict(settings)))
    from pipeline.streaming.scorers import make_scorer

    graph = model / "conv_actions_frozen.pb"
    scorer = make_scorer(graph, 30, progress=False)
    result = run_stream_eval(scorer, root / "spoken.wav", root / "truth.txt", settings)
    found = [(label, t / 1000) for label, t, _, _ in result.detections]
    assert len(found) >= 2, found
    return root, graph, found, labels


ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
KWS = [sys.executable, "-c", "from pipeline.cli import main; main()"]


def kws(*args, cwd=None, **kwargs):
    """``kws ARGS`` run as a command (the checkout's code)."""
    return subprocess.run(
        [*KWS, *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
        timeout=300,
        **kwargs,
    )


def _lines(out: str) -> list[tuple[str, float]]:
    return [(line.split()[1], float(line.split()[0])) for line in out.splitlines()]


def test_kws_detect_prints_stream_evals_detections_with_the_exports_settings(spoken):
    root, graph, expected, _ = spoken
    run = kws("detect", str(root / "spoken.wav"), "--model", str(graph))
    assert run.returncode == 0, run.stderr
    assert _lines(run.stdout) == expected
    assert "threshold 0.5" in run.stderr and str(graph.parent / "decoder.json") in run.stderr
    run = kws(
        "detect",
        str(root / "spoken.wav"),
        str(root / "spoken.wav"),
        "--model",
        str(graph),
        "--json",
        "--detection-threshold",
        "0.99",
    )
    document = json.loads(run.stdout)
    assert document["decoder"]["detection_threshold"] == 0.99
    assert [r["detections"] for r in document["recordings"]] == [[], []]


def test_kws_listen_on_standard_input_at_real_time_pace_prints_detects_detections(spoken):
    """A writer feeds the recording at real-time pace: the lines are detect's detections, each
    printed soon after its word's clip ends (the median is printed for the record)."""
    root, graph, expected, truth = spoken
    pcm = (read_wav(root / "spoken.wav", RATE) * 32768).astype("<i2")
    process = subprocess.Popen(
        [*KWS, "listen", "-", "--model", str(graph)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    started = []

    def write():
        for _ in range(2):  # the decoder line, then "listening to ...": the model is loaded
            process.stderr.readline()
        started.append(time.monotonic())
        block = RATE // 50
        for first in range(0, len(pcm), block):
            process.stdin.write(pcm[first : first + block].tobytes())
            process.stdin.flush()
            time.sleep(max(0.0, started[0] + (first + block) / RATE - time.monotonic()))
        process.stdin.close()

    writer = threading.Thread(target=write)
    writer.start()
    lines = [(line.decode(), time.monotonic()) for line in process.stdout]
    writer.join()
    assert process.wait(timeout=60) == 0
    assert _lines("".join(line for line, _ in lines)) == expected
    latencies = []  # of the lines that found a word: after the end of the word's clip
    for line, when in lines:
        label, time_s = line.split()[1], float(line.split()[0])
        words = [t / 1000 for name, t in truth if name == label and abs(t / 1000 - time_s) < 1]
        latencies += [when - started[0] - (words[0] + 1.0)] if words else []
    if latencies:
        print(f"median latency after the word's clip: {1000 * np.median(latencies):.0f} ms")
    assert all(int(line.split()[3]) < 1000 for line, _ in lines)  # the tool's own figure


def test_bad_input_is_one_line_each(spoken, tmp_path):
    root, graph, _, _ = spoken
    write_wav(tmp_path / "short clip.wav", np.zeros(RATE // 2, np.float32), RATE)
    run = kws(
        "detect", str(tmp_path / "short clip.wav"), str(root / "spoken.wav"), "--model", str(graph)
    )
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "short clip.wav: 0.50 s is not longer" in errors[0]
    assert len(run.stdout.splitlines()) >= 3  # the good recording still scored
    run = kws("detect", str(tmp_path / "absent.wav"), "--model", str(graph))
    assert run.returncode == 1 and run.stderr.strip().endswith("absent.wav: recording not found")
    run = kws("listen", "--model", str(graph))  # no sounddevice here, or no device
    assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1
    assert "kws listen -" in run.stderr and "Traceback" not in run.stderr
    # Whoever reads the lines goes away: one line, nothing left running.
    pcm = (read_wav(root / "spoken.wav", RATE) * 32767).astype("<i2").tobytes()
    listen = subprocess.Popen(
        [*KWS, "listen", "-", "--model", str(graph)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    listen.stdout.close()
    _, err = listen.communicate(pcm, timeout=120)
    assert listen.returncode == 1 and "standard output was closed" in err.decode()
    assert "Traceback" not in err.decode()


def test_label_wav_says_a_longer_clip_was_labelled_by_its_first_window(spoken):
    root, graph, _, _ = spoken
    run = kws("label-wav", "--model", str(graph), "--wav", str(root / "spoken.wav"))
    assert run.returncode == 0 and len(run.stdout.splitlines()) == 3
    assert "10.00 s is longer than the model's window" in run.stderr
    assert "kws detect" in run.stderr
