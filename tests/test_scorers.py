"""The scorer interface (pipeline/streaming/scorers.py): every way of scoring a recording's
windows behind ``score(audio)``, chosen by ``make_scorer`` from the tool's options, described in
one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import StageError
from pipeline.streaming import evaluate
from pipeline.streaming.cascade import GateSettings, cascade_scores
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.scorers import (
    CascadeScorer,
    MeanScorer,
    StreamingScorer,
    WindowScorer,
    make_scorer,
)
from pipeline.streaming.scores import mean_scores, stream_scores
from pipeline.tools import stream_eval as tool
from tests.test_cascade import CostlyModel
from tests.test_stream import LABELS, StandInModel, _recording


class WindowByFrame:
    """A stand-in streaming model: at each frame, the window model's scores of the window that
    ends there (what a streaming export computes with its states), from zero-padded frames
    before the first."""

    def __init__(self, model):
        self.model = model
        self.num_labels = len(model.labels)
        self.resets = 0

    def reset(self):
        self.resets += 1

    def run(self, features, progress=None):
        frames = int(self.model.frames_per_clip)
        padded = np.concatenate([np.zeros((frames - 1, features.shape[1]), np.float32), features])
        windows = np.lib.stride_tricks.sliding_window_view(padded, frames, axis=0)
        out = np.asarray(self.model.predict_features(np.swapaxes(windows, 1, 2)), np.float32)
        if progress is not None:
            progress.update(len(features))
        return out


def test_a_mean_of_one_scorer_is_that_scorer():
    audio, _ = _recording(seconds=6)
    alone = WindowScorer(StandInModel(), 30, progress=False)
    mean = MeanScorer([alone])
    one, by_mean = alone.score(audio), mean.score(audio)
    np.testing.assert_array_equal(by_mean.times_ms, one.times_ms)
    np.testing.assert_array_equal(by_mean.scores, one.scores)
    assert mean.labels == alone.labels and mean.stride_ms == 30
    assert mean.report(by_mean, 6.0) == {"averaged_with": 0}


def test_a_mean_of_two_scorers_is_the_mean_of_their_scores():
    audio, _ = _recording(seconds=6)
    first, second = StandInModel(), CostlyModel()
    mean = MeanScorer(
        [WindowScorer(first, 30, progress=False), WindowScorer(second, 30, progress=False)]
    )
    expected = mean_scores(
        stream_scores(StandInModel(), audio, 30, progress=False),
        [stream_scores(CostlyModel(), audio, 30, progress=False)],
    )
    got = mean.score(audio)
    np.testing.assert_array_equal(got.scores, expected.scores)
    assert not np.allclose(got.scores, stream_scores(first, audio, 30, progress=False).scores)
    assert mean.report(got, 6.0) == {"averaged_with": 1}
    other = StandInModel()
    other.labels = [*LABELS[:2], "no", "yes"]
    with pytest.raises(StageError, match="other labels"):
        MeanScorer([WindowScorer(first, 30), WindowScorer(other, 30)])
    with pytest.raises(StageError, match="same windows"):
        MeanScorer([WindowScorer(first, 30), WindowScorer(second, 40)])


def test_a_cascade_scorer_gives_the_cascades_scores_and_reports_its_cost():
    audio, _ = _recording(seconds=8)
    settings = GateSettings(threshold=0.4, stride_ms=60)
    scorer = CascadeScorer(CostlyModel(), StandInModel(), 30, settings, progress=False)
    got = scorer.score(audio)
    expected = cascade_scores(CostlyModel(), StandInModel(), audio, 30, settings, progress=False)
    np.testing.assert_array_equal(got.scores, expected.scores)
    np.testing.assert_array_equal(got.candidates, expected.candidates)
    report = scorer.report(got, 8.0)["cascade"]
    assert report["threshold"] == 0.4 and report["gate_stride_ms"] == 60
    assert report["costly"]["windows"] == int(expected.candidates.sum())
    assert CascadeScorer(CostlyModel(), StandInModel(), 30).settings == GateSettings()


def test_a_streaming_scorer_scores_the_window_models_windows_from_frames():
    audio, _ = _recording(seconds=6)
    model = StandInModel()
    runner = WindowByFrame(model)
    scorer = StreamingScorer(runner, model, 30, progress=False)
    got = scorer.score(audio)
    window = stream_scores(model, audio, 30, progress=False)
    np.testing.assert_array_equal(got.times_ms, window.times_ms)
    np.testing.assert_allclose(got.scores, window.scores, atol=1e-6)
    assert runner.resets == 1 and scorer.report(got, 6.0) == {"streaming_model": True}
    runner.num_labels = 3
    with pytest.raises(StageError, match="3 scores"):
        StreamingScorer(runner, model, 30)


def test_each_scorer_says_what_it_is_and_how_it_went():
    audio, _ = _recording(seconds=4)
    window = WindowScorer(StandInModel(), 30, progress=False)
    slow = WindowScorer(StandInModel(), 30, frame_reuse=False, progress=False)
    mean = MeanScorer([window, WindowScorer(CostlyModel(), 30, progress=False)])
    cascade = CascadeScorer(CostlyModel(), StandInModel(), 30, progress=False)
    streaming = StreamingScorer(WindowByFrame(StandInModel()), StandInModel(), 30, progress=False)
    assert [s.describe() for s in (window, mean, cascade, streaming)] == [
        "window model",
        "mean of 2 window models",
        "cascade",
        "streaming model",
    ]
    assert window.describe(window.score(audio)) == "window model, frame reuse on"
    assert slow.describe(slow.score(audio)) == "window model, frame reuse off"
    # CostlyModel cannot reuse frames, so the mean's scores did not all come from reused frames.
    assert mean.describe(mean.score(audio)) == "mean of 2 window models, frame reuse off"
    scores = cascade.score(audio)
    assert cascade.describe(scores) == (
        f"cascade, the model on {int(scores.candidates.sum())} candidate windows"
    )
    assert streaming.describe(streaming.score(audio)) == "streaming model, one call per frame"
    assert MeanScorer([window, cascade]).describe() == "mean of 2 scorers"


def test_make_scorer_picks_the_scorer_the_options_ask_for(tmp_path, monkeypatch):
    loaded = []

    def fake_load(path, labels=None):
        loaded.append(Path(path).name)
        return StandInModel()

    monkeypatch.setattr("pipeline.inference.load_model", fake_load)
    model = StandInModel()
    window = make_scorer(model, 30, frame_reuse=False, batch_size=7, progress=False)
    assert type(window) is WindowScorer and window.model is model
    assert (window.stride_ms, window.frame_reuse, window.batch_size) == (30, False, 7)
    mean = make_scorer(model, 30, average_with=[tmp_path / "other", CostlyModel()])
    assert type(mean) is MeanScorer and [type(s) for s in mean.scorers] == [WindowScorer] * 3
    assert mean.scorers[0].model is model and loaded == ["other"]
    settings = GateSettings(threshold=0.2)
    cascade = make_scorer(tmp_path / "costly", 40, gate=tmp_path / "gate", gate_settings=settings)
    assert type(cascade) is CascadeScorer and cascade.settings is settings
    assert cascade.stride_ms == 40 and loaded == ["other", "costly", "gate"]
    assert make_scorer(model, 30, gate=StandInModel()).settings == GateSettings()
    # The streaming model is read from the export folder: there is none in this one.
    with pytest.raises(StageError, match="model_streaming.tflite not found"):
        make_scorer(tmp_path, 30, streaming=True)
    monkeypatch.setattr(
        "pipeline.streaming.scorers.streaming_runner", lambda folder, n: WindowByFrame(model)
    )
    assert type(make_scorer(tmp_path, 30, streaming=True)) is StreamingScorer
    with pytest.raises(StageError, match="give its path"):
        make_scorer(model, 30, streaming=True)
    with pytest.raises(StageError, match="cannot be combined"):
        make_scorer(tmp_path, 30, streaming=True, gate=model)
    for exclusive in (dict(streaming=True), dict(gate=model)):
        with pytest.raises(StageError, match="window model alone"):
            make_scorer(tmp_path, 30, average_with=[model], **exclusive)


def test_run_stream_eval_refuses_a_scorer_of_another_stride(tmp_path):
    _recording(seconds=3, tmp_path=tmp_path)
    with pytest.raises(StageError, match="every 40 ms but .* clip_stride_ms 30"):
        evaluate.run_stream_eval(
            WindowScorer(StandInModel(), 40, progress=False),
            tmp_path / "stream.wav",
            tmp_path / "labels.txt",
            StreamEvalConfig(clip_stride_ms=30),
        )


@pytest.mark.parametrize(
    "options, says, key",
    [
        ([], "window model", None),
        (["--average-with", "other"], "mean of 2 window models", "averaged_with"),
        (["--gate", "gate", "--gate-threshold", "0.3"], "cascade", "cascade"),
        (["--streaming"], "streaming model", "streaming_model"),
    ],
)
def test_the_tool_says_which_scorer_scored(tmp_path, monkeypatch, capsys, options, says, key):
    """``kws stream-eval``: each mode's scorer names itself in the real-time line, and its JSON
    carries what that scorer reports."""
    monkeypatch.setattr(
        "pipeline.inference.load_model",
        lambda path, labels=None: CostlyModel() if Path(path).name == "gate" else StandInModel(),
    )
    monkeypatch.setattr(
        "pipeline.streaming.scorers.streaming_runner",
        lambda folder, n: WindowByFrame(StandInModel()),
    )
    _recording(seconds=6, tmp_path=tmp_path)
    out = tmp_path / "metrics.json"
    argv = [
        "--model",
        str(tmp_path / "export"),
        "--wav",
        str(tmp_path / "stream.wav"),
        "--ground-truth",
        str(tmp_path / "labels.txt"),
        "--json",
        str(out),
    ]
    assert tool.main([*argv, *options]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if "real-time factor" in x]
    assert len(line) == 1 and line[0].endswith(f"({says})")
    metrics = json.loads(out.read_text())
    extras = {"averaged_with", "cascade", "streaming_model"}
    assert {k for k in extras if k in metrics} == ({key} if key else set())
