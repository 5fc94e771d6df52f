"""synthesize_stream and stream_eval on tiny recordings (a stand-in model; the real front ends
where cheap)."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.audio import read_wav, write_wav
from pipeline.core.errors import ParamError, StageError, WavError
from pipeline.core.labels import write_labels
from pipeline.core.metrics_files import details_path
from pipeline.data.stream_synthesis import StreamConfig, format_labels, mix_in
from pipeline.data.stream_synthesis import synthesize as _synthesize
from pipeline.stages import stream_eval as stream_eval_stage
from pipeline.stages import synthesize_stream
from pipeline.streaming import evaluate as stream_eval
from pipeline.streaming import scores as stream_scores
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.recognize import read_ground_truth
from pipeline.streaming.scorers import make_scorer
from pipeline.tools import stream_eval as stream_eval_tool
from tests.conftest import make_store, word_clip

DEFAULTS = StreamEvalConfig()


def synthesize(word_clips, unknown_clips, backgrounds, settings, progress=False, read=None):
    return _synthesize(
        word_clips, unknown_clips, backgrounds, settings, RATE, progress=progress, read=read
    )


RATE = 16000
WORDS = ["yes", "no"]
LABELS = ["_silence_", "_unknown_", *WORDS]


def tone(freq, seconds=0.5, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# synthesize


def test_mix_in_ramps_like_the_original():
    track = np.zeros(20)
    mix_in(track, 5, np.ones(10), 10, 0.5, ramp_in=4, ramp_out=4)
    expected = np.zeros(20)
    expected[5:15] = 0.5 * np.array([0, 0.25, 0.5, 0.75, 1, 1, 1, 0.75, 0.5, 0.25])
    np.testing.assert_allclose(track, expected)
    track = np.zeros(8)
    mix_in(track, 5, np.ones(10), 10, 1.0, 0, 0)  # truncated at the end of the track
    np.testing.assert_allclose(track, [0, 0, 0, 0, 0, 1, 1, 1])


def test_words_are_where_the_labels_say():
    clips = {"yes": [tone(500)], "no": [tone(1300)]}
    unknown = [tone(2900)]
    settings = StreamConfig(duration_s=60, background_volume=0.0, seed=3)
    audio, labels = synthesize(clips, unknown, [], settings, progress=False)
    assert len(audio) == 60 * RATE and audio.dtype == np.float32
    assert len(labels) == 20  # one word per 3 s slot
    by_label = {"yes": clips["yes"][0], "no": clips["no"][0], "_unknown_": unknown[0]}
    covered = np.zeros(len(audio), bool)
    for slot, (label, time_ms) in enumerate(labels):
        offset = round(time_ms * RATE / 1000)
        assert slot * 3 * RATE <= offset < slot * 3 * RATE + 2 * RATE  # inside its slot's gap
        clip = by_label[label]
        placed = audio[offset : offset + len(clip)]
        # Away from the 500-sample ramps the word is there unchanged.
        np.testing.assert_allclose(placed[600:-600], clip[600:-600], atol=1e-6)
        covered[offset : offset + len(clip)] = True
    assert not np.any(audio[~covered])  # nothing else without background
    assert {label for label, _ in labels} == {"yes", "no", "_unknown_"}


def test_unknown_share_follows_the_percentage():
    clips = {"yes": [tone(500, 0.1)], "no": [tone(900, 0.1)]}
    settings = StreamConfig(
        duration_s=600,
        word_interval_ms=300,
        word_gap_ms=100,
        unknown_percentage=30,
        background_volume=0.0,
        seed=1,
    )
    _, labels = synthesize(clips, [tone(2000, 0.1)], [], settings, progress=False)
    share = sum(label == "_unknown_" for label, _ in labels) / len(labels)
    assert len(labels) == 2000 and 0.26 < share < 0.34
    settings = StreamConfig(duration_s=60, unknown_percentage=0, background_volume=0.0)
    _, labels = synthesize(clips, [], [], settings, progress=False)
    assert "_unknown_" not in {label for label, _ in labels}


def test_background_fills_the_recording_within_volume():
    noise = np.ones(3 * RATE, dtype=np.float32)
    settings = StreamConfig(duration_s=20, unknown_percentage=0, background_volume=0.1, seed=5)
    audio, labels = synthesize(
        {"yes": [np.zeros(100, np.float32)]}, [], [noise], settings, progress=False
    )
    assert audio.max() <= 0.2 + 1e-6  # at most two overlapping segments at < 0.1 each
    # Every sample after the first ramp has noise (overlapping segments leave no gap).
    assert np.all(audio[4000:-4000] > 0)


def test_same_seed_same_stream_other_seed_differs():
    clips = {"yes": [tone(500), tone(600)], "no": [tone(1300)]}
    noise = [np.random.default_rng(0).normal(0, 0.3, 2 * RATE).astype(np.float32)]

    def run(seed):
        settings = StreamConfig(duration_s=30, seed=seed)
        return synthesize(clips, [tone(2900)], noise, settings, progress=False)

    a, la = run(7)
    b, lb = run(7)
    c, lc = run(8)
    assert np.array_equal(a, b) and la == lb
    assert not np.array_equal(a, c)


def test_bad_settings_and_missing_pools():
    clips = {"yes": [tone(500)]}
    with pytest.raises(ParamError, match="word_gap_ms"):
        synthesize(
            clips,
            [tone(1)],
            [],
            StreamConfig(word_gap_ms=4000, background_volume=0),
            progress=False,
        )
    with pytest.raises(StageError, match="_unknown_"):
        synthesize(clips, [], [], StreamConfig(duration_s=10, background_volume=0), progress=False)
    with pytest.raises(StageError, match="background"):
        synthesize(clips, [tone(1)], [], StreamConfig(duration_s=10), progress=False)
    with pytest.raises(StageError, match="wanted-word"):
        synthesize(
            {"yes": []},
            [tone(1)],
            [],
            StreamConfig(duration_s=10, background_volume=0),
            progress=False,
        )


def _write_split(root: Path, dataset: Path, words=("yes", "no"), unknown_words=("cat",)):
    """A data/split layout whose test split is every clip of ``dataset`` (paths relative to
    root)."""
    split = root / "data" / "split"
    split.mkdir(parents=True)
    write_labels(split / "labels.txt", ["_silence_", "_unknown_", *words])
    with (split / "test.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "word", "label", "label_index", "speaker", "split"])
        writer.writerow(["", "_silence_", "_silence_", 0, "", "testing"])
        for index, word in enumerate(words):
            for path in sorted((dataset / word).glob("*.wav")):
                writer.writerow(
                    [
                        path.relative_to(root).as_posix(),
                        word,
                        word,
                        index + 2,
                        path.name.split("_nohash_")[0],
                        "testing",
                    ]
                )
        for word in unknown_words:
            for path in sorted((dataset / word).glob("*.wav")):
                writer.writerow(
                    [
                        path.relative_to(root).as_posix(),
                        word,
                        "_unknown_",
                        1,
                        path.name.split("_nohash_")[0],
                        "testing",
                    ]
                )


def _params(root: Path, **stream):
    values = dict(
        duration_s=12,
        word_interval_ms=3000,
        word_gap_ms=2000,
        unknown_percentage=30,
        background_volume=0.1,
        background_segment_ms=1500,
        seed=8,
    )
    values.update(stream)
    text = (
        "features:\n  sample_rate: 16000\n  clip_duration_ms: 1000\n  window_size_ms: 30\n"
        "  window_stride_ms: 10\n  feature_bin_count: 40\n  preprocess: mfcc\nstream:\n"
        + "".join(f"  {k}: {v}\n" for k, v in values.items())
    )
    (root / "params.yaml").write_text(text)


@pytest.fixture
def stage_repo(tmp_path, monkeypatch):
    dataset = make_store(
        tmp_path / "data" / "raw" / "dataset", words=("yes", "no", "cat"), speakers=3
    )
    _write_split(tmp_path, dataset)
    _params(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_stage_writes_wav_and_labels_deterministically(stage_repo):
    assert synthesize_stream.main([]) == 0
    wav = stage_repo / "data" / "stream" / "stream.wav"
    text = (stage_repo / "data" / "stream" / "stream_labels.txt").read_text()
    audio = read_wav(wav, sample_rate=RATE)
    assert len(audio) == 12 * RATE
    lines = text.splitlines()
    assert len(lines) == 4 and all(", " in line for line in lines)
    truth = read_ground_truth(stage_repo / "data" / "stream" / "stream_labels.txt")
    assert {label for label, _ in truth} <= {"yes", "no", "_unknown_"}
    first = wav.read_bytes()
    assert synthesize_stream.main([]) == 0
    assert wav.read_bytes() == first
    assert (stage_repo / "data" / "stream" / "stream_labels.txt").read_text() == text
    # Each labelled spot holds a test clip of that label: of all clips, one of its word fits best.
    clips = {(w, s): word_clip(w, s, 0) for w in ("yes", "no", "cat") for s in range(3)}
    for label, time_ms in truth:
        offset = round(time_ms * RATE / 1000)
        segment = audio[offset : offset + RATE]
        fit = {key: abs(np.dot(segment, clip)) for key, clip in clips.items()}
        assert max(fit, key=fit.get)[0] == ("cat" if label == "_unknown_" else label)


def test_stage_failure_leaves_no_output(stage_repo):
    manifest = stage_repo / "data" / "split" / "test.csv"
    manifest.write_text(
        re.sub(r"yes/[0-9a-f]+_nohash_0", "yes/gone_nohash_0", manifest.read_text())
    )
    _params(stage_repo, duration_s=60, unknown_percentage=0)
    with pytest.raises(StageError, match="no clip 'yes/gone_nohash_0.wav' in the clip store"):
        synthesize_stream.main([])
    assert not (stage_repo / "data" / "stream").exists()
    assert not [p for p in (stage_repo / "data").iterdir() if p.name.startswith(".stream")]


def test_stage_rejects_labels_outside_the_label_list(stage_repo):
    write_labels(stage_repo / "data" / "split" / "labels.txt", ["_silence_", "_unknown_", "yes"])
    with pytest.raises(StageError, match="'no' is not in"):
        synthesize_stream.main([])


# ---------------------------------------------------------------------------------------------
# stream_eval with a stand-in model


class StandInModel:
    """A deterministic model with a frame-by-frame front end: log band energies -> fixed linear
    layer -> softmax. It recognises the tones made by :func:`tone`."""

    labels = LABELS
    sample_rate = RATE
    desired_samples = RATE
    window = 480
    frame_stride_samples = 160
    frames_per_clip = 1 + (RATE - 480) // 160
    supports_frames = True
    bands = np.array([[0, 300], [450, 550], [1250, 1350], [2850, 2950]])

    def __init__(self):
        self.calls = {"frame_features": 0, "predict_features": 0, "predict_audio": 0}

    def _frames(self, audio):
        frames = np.lib.stride_tricks.sliding_window_view(audio, self.window)[
            :: self.frame_stride_samples
        ]
        spectrum = np.abs(np.fft.rfft(frames * np.hanning(self.window), axis=-1)) ** 2
        freqs = np.fft.rfftfreq(self.window, 1 / RATE)
        energy = [spectrum[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in self.bands]
        return np.log(np.stack(energy, axis=1) + 1e-6).astype(np.float32)

    def frame_features(self, audio):
        self.calls["frame_features"] += 1
        return self._frames(np.asarray(audio, np.float32))

    def predict_features(self, features):
        self.calls["predict_features"] += 1
        features = np.asarray(features, np.float64)
        # Evidence of each band in the middle half of the clip, silence when nothing is loud.
        middle = features[:, self.frames_per_clip // 4 : 3 * self.frames_per_clip // 4]
        loud = (middle > 0).mean(axis=1)  # [N, 4]: share of frames with band energy above 1
        logits = np.stack(
            [2 - 8 * loud[:, 1:].sum(axis=1), 6 * loud[:, 3], 6 * loud[:, 1], 6 * loud[:, 2]],
            axis=1,
        )
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)

    def predict_audio(self, audio):
        self.calls["predict_audio"] += 1
        audio = np.asarray(audio, np.float32)
        assert audio.shape[1] == self.desired_samples
        return self.predict_features(np.stack([self._frames(a) for a in audio]))


def _recording(seconds=30, seed=2, tmp_path=None):
    clips = {"yes": [tone(500)], "no": [tone(1300)]}
    noise = [np.random.default_rng(0).normal(0, 0.05, 2 * RATE).astype(np.float32)]
    settings = StreamConfig(duration_s=seconds, seed=seed, background_volume=0.05)
    audio, labels = synthesize(clips, [tone(2900)], noise, settings, progress=False)
    if tmp_path is not None:
        write_wav(tmp_path / "stream.wav", audio, RATE)
        (tmp_path / "labels.txt").write_text(format_labels(labels))
    return audio, labels


def run_eval(model, wav, truth, cfg, **options):
    """run_stream_eval of the scorer that ``make_scorer`` chooses for ``model`` and ``options``
    (as the tool does), without progress bars."""
    scorer = make_scorer(model, cfg.clip_stride_ms, progress=False, **options)
    return stream_eval.run_stream_eval(scorer, wav, truth, cfg)


def test_windows_follow_the_original_range():
    assert stream_scores.window_offsets(16000 + 960, 16000, 480).tolist() == [0, 480]
    assert stream_scores.window_offsets(16000 + 961, 16000, 480).tolist() == [0, 480, 960]
    assert stream_scores.window_offsets(16000, 16000, 480).tolist() == []


def test_frame_reuse_equals_per_window_scores():
    audio, _ = _recording(seconds=12)
    model = StandInModel()
    fast = stream_scores.stream_scores(
        model, audio, 30, frame_reuse=True, batch_size=64, progress=False
    )
    assert (
        fast.frame_reuse
        and model.calls["frame_features"] == 1
        and model.calls["predict_audio"] == 0
    )
    slow = stream_scores.stream_scores(
        model, audio, 30, frame_reuse=False, batch_size=64, progress=False
    )
    assert not slow.frame_reuse and model.calls["predict_audio"] > 0
    np.testing.assert_array_equal(fast.times_ms, slow.times_ms)
    assert (
        fast.times_ms[:3].tolist() == [0, 30, 60]
        and len(fast.times_ms) == (12 * RATE - RATE - 1) // 480 + 1
    )
    np.testing.assert_allclose(fast.scores, slow.scores, atol=1e-6)


def test_stride_not_a_multiple_of_the_frame_stride_falls_back():
    audio, _ = _recording(seconds=4)
    model = StandInModel()
    scores = stream_scores.stream_scores(
        model, audio, 25, progress=False
    )  # 400 samples, frames of 160
    assert not scores.frame_reuse and model.calls["frame_features"] == 0
    assert scores.times_ms[:3].tolist() == [0, 25, 50]


def test_stand_in_model_is_scored_well(tmp_path):
    _recording(seconds=60, tmp_path=tmp_path)
    metrics, sweep, detections, _ = run_eval(
        StandInModel(),
        tmp_path / "stream.wav",
        tmp_path / "labels.txt",
        DEFAULTS,
    )
    assert metrics["ground_truth_words"] == 20
    assert metrics["correct"] >= 18 and metrics["false_positives"] <= 1
    assert metrics["detection_rate"] == pytest.approx(metrics["correct"] / 20)
    assert [row["threshold"] for row in sweep] == list(stream_eval.SWEEP_THRESHOLDS)
    # A higher threshold never finds more commands.
    counts = [row["detections"] for row in sweep]
    assert counts == sorted(counts, reverse=True)
    row = next(r for r in sweep if r["threshold"] == 0.7)
    assert {k: row[k] for k in ("correct", "wrong", "false_positives")} == {
        k: metrics[k] for k in ("correct", "wrong", "false_positives")
    }
    assert all(outcome in ("correct", "wrong", "false_positive") for *_, outcome in detections)


def test_false_alarms_per_hour():
    from pipeline.streaming.recognize import StreamingStats

    stats = StreamingStats(10, 8, 7, 1, 2, [])
    assert stream_eval.false_alarms_per_hour(stats, 1800) == pytest.approx(6.0)


def test_cli_tool_writes_json_and_sweep(tmp_path, monkeypatch):
    _recording(seconds=20, tmp_path=tmp_path)
    model = StandInModel()
    monkeypatch.setattr("pipeline.inference.load_model", lambda path, labels=None: model)
    out, sweep = tmp_path / "m.json", tmp_path / "sweep.csv"

    def run(*flags) -> dict:
        """The tool on the recording with ``flags``; the metrics it wrote."""
        recording = ["--wav", str(tmp_path / "stream.wav")]
        truth = ["--ground-truth", str(tmp_path / "labels.txt")]
        rc = stream_eval_tool.main(
            ["--model", "whatever", *recording, *truth, "--json", str(out), *flags]
        )
        assert rc == 0
        return json.loads(out.read_text())

    metrics = run("--sweep-csv", str(sweep), "--suppression-ms", "500")
    assert metrics["suppression_ms"] == 500 and metrics["clip_stride_ms"] == 30
    assert metrics["frame_reuse"] is True and metrics["windows"] > 600
    rows = list(csv.DictReader(sweep.open()))
    assert list(rows[0]) == list(stream_eval.SWEEP_COLUMNS) and len(rows) == 19
    assert "minimum_margin" not in metrics  # off by default: the metrics of the original decoder
    assert "repeat_commands" not in metrics
    with pytest.raises(ParamError, match="minimum_count"):
        stream_eval_tool.main(
            ["--model", "m", "--wav", "w", "--ground-truth", "g", "--minimum-count", "0"]
        )
    with pytest.raises(ParamError, match="minimum_margin"):
        stream_eval_tool.main(
            ["--model", "m", "--wav", "w", "--ground-truth", "g", "--minimum-margin", "1.5"]
        )
    strict = run("--minimum-margin", "0.95")
    assert strict["minimum_margin"] == 0.95
    assert strict["detections"] <= metrics["detections"]
    repeated = run("--suppression-ms", "500", "--repeat-commands")
    assert repeated["repeat_commands"] is True
    assert repeated["detections"] >= metrics["detections"]
    with pytest.raises(SystemExit):  # argparse: --wav and --ground-truth are required
        stream_eval_tool.main(["--model", "m"])


def test_wrong_rate_recording_is_rejected(tmp_path):
    write_wav(tmp_path / "s.wav", np.zeros(3 * 8000, np.float32), 8000)
    (tmp_path / "g.txt").write_text("yes, 100\n")
    with pytest.raises(WavError, match="8000 Hz"):
        run_eval(
            StandInModel(),
            tmp_path / "s.wav",
            tmp_path / "g.txt",
            DEFAULTS,
        )


# ---------------------------------------------------------------------------------------------
# Real front ends: frame reuse must equal per-window scoring


def test_original_frozen_graph_frame_reuse(shared_pretrained):
    from pipeline.inference import load_model

    model = load_model(shared_pretrained / "conv_actions_frozen.pb")
    audio, _ = _recording(seconds=2)
    fast = stream_scores.stream_scores(model, audio, 30, frame_reuse=True, progress=False)
    slow = stream_scores.stream_scores(model, audio, 30, frame_reuse=False, progress=False)
    assert fast.frame_reuse and not slow.frame_reuse
    np.testing.assert_allclose(fast.scores, slow.scores, atol=1e-4)
    # And the batched path agrees with the graph's own WAV input for one window.
    from pipeline.core.audio import encode_wav

    direct = model.predict_wav_bytes(encode_wav(audio[480 * 5 : 480 * 5 + RATE], RATE))
    np.testing.assert_allclose(fast.scores[5], direct, atol=2e-3)


def test_keras_mfcc_model_frame_reuse(tmp_path):
    """The project's front end (mfcc over the whole recording) sliced into windows gives the
    scores of per-window features, through pipeline.inference's Keras backend."""
    from pipeline.frontends import FeatureConfig
    from pipeline.inference import load_model
    from pipeline.models import build_model

    cfg = FeatureConfig.from_dict(
        dict(
            sample_rate=RATE,
            clip_duration_ms=1000,
            window_size_ms=30,
            window_stride_ms=10,
            feature_bin_count=40,
            preprocess="mfcc",
        )
    )
    build_model("ds_cnn", cfg.feature_shape, len(LABELS), 0.5).save(tmp_path / "model.keras")
    write_labels(tmp_path / "labels.txt", LABELS)
    (tmp_path / "meta.json").write_text(json.dumps({"features": cfg.to_dict()}))
    model = load_model(tmp_path / "model.keras")
    audio, _ = _recording(seconds=3)
    fast = stream_scores.stream_scores(model, audio, 30, frame_reuse=True, progress=False)
    slow = stream_scores.stream_scores(model, audio, 30, frame_reuse=False, progress=False)
    assert fast.frame_reuse and not slow.frame_reuse
    np.testing.assert_allclose(fast.scores, slow.scores, atol=1e-5)


def _stage_folder(tmp_path):
    """The stream_eval stage's inputs in ``tmp_path``: a 20 s recording with its ground truth
    where the stage reads them, and params.yaml's decoder settings."""
    (tmp_path / "data" / "stream").mkdir(parents=True)
    _recording(seconds=20, tmp_path=tmp_path / "data" / "stream")
    os.replace(
        tmp_path / "data" / "stream" / "labels.txt",
        tmp_path / "data" / "stream" / "stream_labels.txt",
    )
    (tmp_path / "params.yaml").write_text(
        "stream_eval:\n  clip_stride_ms: 30\n  average_window_ms: 500\n"
        "  detection_threshold: 0.6\n  suppression_ms: 1500\n  time_tolerance_ms: 750\n"
        "  minimum_count: 3\n  minimum_margin: 0.0\n  repeat_commands: false\n"
    )


def test_stage_from_params(tmp_path, monkeypatch):
    _stage_folder(tmp_path)
    seen = {}

    def fake_load(path, labels=None):
        seen["path"] = Path(path)
        return StandInModel()

    monkeypatch.setattr("pipeline.inference.load_model", fake_load)
    monkeypatch.chdir(tmp_path)
    assert stream_eval_stage.main([]) == 0
    assert seen["path"] == Path("models/export")
    metrics = json.loads(details_path(tmp_path / "metrics" / "stream.json").read_text())
    assert metrics["detection_threshold"] == 0.6 and metrics["ground_truth_words"] == 6
    first = (tmp_path / "metrics" / "stream_threshold_sweep.csv").read_bytes()
    assert stream_eval_stage.main([]) == 0
    assert (tmp_path / "metrics" / "stream_threshold_sweep.csv").read_bytes() == first
    with pytest.raises(SystemExit):  # the stage takes its decoder settings from params.yaml only
        stream_eval_stage.main(["--minimum-count", "2"])


class DeafToNo(StandInModel):
    """The stand-in with the band of "no" unheard: an int8 model that lost one word."""

    bands = np.array([[0, 300], [450, 550], [5000, 5100], [2850, 2950]])


def test_stage_scores_the_int8_model_beside_the_float_one(tmp_path, monkeypatch):
    _stage_folder(tmp_path)
    (tmp_path / "models" / "export").mkdir(parents=True)
    (tmp_path / "models" / "export" / "model_int8.tflite").write_bytes(b"stand-in")
    loaded = []

    def fake_load(path, labels=None):
        loaded.append(Path(path))
        return DeafToNo() if Path(path).name == "model_int8.tflite" else StandInModel()

    monkeypatch.setattr("pipeline.inference.load_model", fake_load)
    monkeypatch.chdir(tmp_path)
    assert stream_eval_stage.main([]) == 0
    assert loaded == [Path("models/export"), Path("models/export/model_int8.tflite")]
    details = json.loads(details_path(tmp_path / "metrics" / "stream.json").read_text())
    int8 = details["int8"]
    truth = read_ground_truth(tmp_path / "data" / "stream" / "stream_labels.txt")
    spoken_no = sum(label == "no" for label, _ in truth)
    assert spoken_no > 0 and details["correct"] > spoken_no
    assert int8["correct"] == details["correct"] - spoken_no  # every "no" missed, the rest heard
    assert int8["detections_equal"] is False
    assert int8["detections"] == int8["correct"] + int8["wrong"] + int8["false_positives"]
    assert int8["same_detections"] == int8["detections"]  # float made every int8 detection
    headline = json.loads((tmp_path / "metrics" / "stream.json").read_text())
    assert headline["int8"] == {
        "correct_percentage": int8["correct_percentage"],
        "false_alarms_per_hour": int8["false_alarms_per_hour"],
    }
    assert int8["correct_percentage"] < details["correct_percentage"]


def test_named_clips_are_read_once_through_the_reader():
    reads = []

    def read(name):
        reads.append(name)
        return tone(500, 0.5)

    settings = StreamConfig(duration_s=30, unknown_percentage=0, background_volume=0.0, seed=0)
    audio, labels = synthesize(
        {"yes": ["data/raw/dataset/yes/a_nohash_0.wav"]},
        [],
        [],
        settings,
        progress=False,
        read=read,
    )
    assert len(labels) == 10 and reads == ["data/raw/dataset/yes/a_nohash_0.wav"]  # cached
    offset = round(labels[0][1] * RATE / 1000)
    assert np.abs(audio[offset : offset + RATE // 2]).max() > 0.4
    with pytest.raises(ValueError, match="no read function"):
        synthesize({"yes": ["yes/a_nohash_0.wav"]}, [], [], settings, progress=False)


def test_missing_inputs_are_named(tmp_path):
    _recording(seconds=3, tmp_path=tmp_path)
    with pytest.raises(FileNotFoundError, match="nope.txt: ground-truth file not found"):
        run_eval(
            StandInModel(),
            tmp_path / "stream.wav",
            tmp_path / "nope.txt",
            DEFAULTS,
        )
    (tmp_path / "bad.txt").write_text("yes, later\n")
    with pytest.raises(StageError, match="bad.txt: line 1"):
        run_eval(
            StandInModel(),
            tmp_path / "stream.wav",
            tmp_path / "bad.txt",
            DEFAULTS,
        )


def test_stream_eval_tool_refuses_a_bad_ground_truth_before_loading_a_model(tmp_path, monkeypatch):
    """Through the tool's main (no model is loaded: a stand-in that fails if asked) and, for the
    one-line message, as a process."""
    import subprocess
    import sys

    _recording(seconds=3, tmp_path=tmp_path)
    monkeypatch.setattr(
        "pipeline.inference.load_model", lambda *a, **k: pytest.fail("model loaded")
    )
    truth = tmp_path / "truth.txt"
    argv = [
        "--model",
        "unused",
        "--wav",
        str(tmp_path / "stream.wav"),
        "--ground-truth",
        str(truth),
    ]
    for text, problem in [
        ("yes, 1000.0\nno, 2000.0, extra\n", "line 2: 'no, 2000.0, extra' is not"),
        ("", "no `label, time_ms` entries"),
    ]:
        truth.write_text(text)
        with pytest.raises(StageError, match="^" + re.escape(f"{truth}: {problem}")):
            stream_eval_tool.main(argv)
    truth.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.tools.stream_eval", *argv], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error [pipeline.tools.stream_eval]: {truth}: not a text file "
        "(byte 0 is not UTF-8); expected `label, time_ms` lines"
    )
