"""Scorers: what scores every window of a recording, one interface for every way of doing it.

A scorer knows its labels, its sample rate, its clip (``desired_samples``) and its window stride
(``stride_ms``); ``score(audio)`` gives the scores of every window (``scores.StreamScores``: start
times in ms and ``[windows, labels]``), ``describe()`` says in a few words what scores (with the
scores: how it went, for the log) and ``report(scores, duration_s)`` gives what it adds to the
streaming metrics. The streaming evaluation (evaluate.run_stream_eval) decodes whatever a scorer
gives; the tools and stages choose one (``make_scorer`` from their options) and hand it on.

- ``WindowScorer``: one model, window by window (``scores.stream_scores``; features computed once
  for the whole recording where the front end allows it);
- ``MeanScorer``: the mean of several scorers' scores (``scores.mean_scores``; an ensemble,
  ``--average-with``);
- ``CascadeScorer``: a cheap gate on every window, the model on the candidate windows only
  (cascade.py, ``--gate``);
- ``StreamingScorer``: an export's ``model_streaming.tflite``, one call per feature frame
  (``scores.streaming_scores``, ``--streaming``).

Every window starts at a multiple of ``stride_ms`` from the start of the audio (as the original
test_streaming_accuracy). ``score`` takes a whole recording; scoring audio given in chunks (a live
tool, an hour-long file) belongs here as a ``feed(chunk)`` method beside it: keep the samples of
the windows not yet complete (at most one clip) and the count of samples already consumed, score
the windows the chunk completes on that same grid and shift their times by the samples consumed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from pipeline.core.errors import StageError
from pipeline.streaming.cascade import CascadeScores, GateSettings, cascade_scores, stage_costs
from pipeline.streaming.scores import (
    BATCH,
    StreamScores,
    mean_scores,
    stream_scores,
    streaming_scores,
)

STREAMING_MODEL = "model_streaming.tflite"


class Scorer(ABC):
    """Scores every window of a recording (see the module doc). Subclasses set ``labels``,
    ``sample_rate``, ``desired_samples`` (a window's samples) and ``stride_ms``."""

    labels: list[str]
    sample_rate: int
    desired_samples: int
    stride_ms: int

    @abstractmethod
    def score(self, audio: np.ndarray) -> StreamScores:
        """The scores of every window of ``audio`` (float32 1-D at ``sample_rate``)."""

    @abstractmethod
    def describe(self, scores: StreamScores | None = None) -> str:
        """What scores, in a few words; given this scorer's ``scores``, also how it went."""

    def report(self, scores: StreamScores, duration_s: float) -> dict:
        """What the streaming metrics gain from this scorer (nothing, unless it says)."""
        return {}


class WindowScorer(Scorer):
    """One model scores every window (a loaded model, pipeline.inference's interface)."""

    def __init__(
        self,
        model,
        stride_ms: int,
        *,
        frame_reuse: bool = True,
        batch_size: int = BATCH,
        progress: bool = True,
    ):
        self.model = model
        self.labels = list(model.labels)
        self.sample_rate = int(model.sample_rate)
        self.desired_samples = int(model.desired_samples)
        self.stride_ms = stride_ms
        self.frame_reuse, self.batch_size, self.progress = frame_reuse, batch_size, progress

    def score(self, audio):
        return stream_scores(
            self.model, audio, self.stride_ms, self.frame_reuse, self.batch_size, self.progress
        )

    def describe(self, scores=None):
        if scores is None:
            return "window model"
        return f"window model, frame reuse {'on' if scores.frame_reuse else 'off'}"


class MeanScorer(Scorer):
    """The mean of several scorers' window scores, every scorer weighing the same
    (``scores.mean_scores``). They must have the same labels, sample rate and stride, and score
    the same windows; the first one's clip is the mean's."""

    def __init__(self, scorers):
        self.scorers = list(scorers)
        if not self.scorers:
            raise StageError("a mean of scores needs at least one scorer")
        first = self.scorers[0]
        for other in self.scorers[1:]:
            if other.labels != first.labels or other.sample_rate != first.sample_rate:
                raise StageError(
                    f"a model averaged with another has other labels or another sample rate "
                    f"({other.labels} at {other.sample_rate} Hz against {first.labels} at "
                    f"{first.sample_rate} Hz)"
                )
            if other.stride_ms != first.stride_ms:
                raise StageError(
                    "models averaged over a recording must score the same windows: use one "
                    f"clip stride (not {other.stride_ms} ms and {first.stride_ms} ms)"
                )
        self.labels = first.labels
        self.sample_rate = first.sample_rate
        self.desired_samples = first.desired_samples
        self.stride_ms = first.stride_ms

    def score(self, audio):
        first, *others = self.scorers
        return mean_scores(first.score(audio), [other.score(audio) for other in others])

    def describe(self, scores=None):
        kinds = {scorer.describe() for scorer in self.scorers}
        name = (
            f"mean of {len(self.scorers)} {kinds.pop()}s"
            if len(kinds) == 1
            else f"mean of {len(self.scorers)} scorers"
        )
        if scores is None:
            return name
        return f"{name}, frame reuse {'on' if scores.frame_reuse else 'off'}"

    def report(self, scores, duration_s):
        return {"averaged_with": len(self.scorers) - 1}


class CascadeScorer(Scorer):
    """A cheap ``gate`` model scores every window, ``model`` only the candidate windows near the
    gate's keyword evidence (cascade.py); the windows are ``model``'s."""

    def __init__(
        self,
        model,
        gate,
        stride_ms: int,
        settings: GateSettings | None = None,
        *,
        batch_size: int = BATCH,
        progress: bool = True,
    ):
        self.model, self.gate = model, gate
        self.settings = GateSettings() if settings is None else settings
        self.labels = list(model.labels)
        self.sample_rate = int(model.sample_rate)
        self.desired_samples = int(model.desired_samples)
        self.stride_ms = stride_ms
        self.batch_size, self.progress = batch_size, progress

    def score(self, audio):
        return cascade_scores(
            self.model,
            self.gate,
            audio,
            self.stride_ms,
            self.settings,
            self.batch_size,
            self.progress,
        )

    def describe(self, scores=None):
        if not isinstance(scores, CascadeScores):
            return "cascade"
        return f"cascade, the model on {int(scores.candidates.sum())} candidate windows"

    def report(self, scores, duration_s):
        settings = self.settings
        peak = (
            {
                "rule": "peak",
                "neighbours": settings.neighbours,
                "held": settings.held,
                "peak": settings.peak,
            }
            if settings.rule == "peak"
            else {}
        )
        return {
            "cascade": {
                "threshold": settings.threshold,
                "margin_ms": settings.margin_ms,
                **peak,
                "gate_stride_ms": settings.stride_ms or self.stride_ms,
                **stage_costs(scores, duration_s),
            }
        }


class StreamingScorer(Scorer):
    """A streaming model, one call per feature frame: ``runner`` (a StreamingTFLite,
    inference/streaming_tflite.py, or anything with its ``reset``, ``run`` and ``num_labels``);
    the export's window model (``window_model``, loaded) gives the recording's frames and the
    windows' times. ``from_export`` reads an export's ``model_streaming.tflite``."""

    def __init__(self, runner, window_model, stride_ms: int, *, progress: bool = True):
        if runner.num_labels != len(window_model.labels):
            raise StageError(
                f"the streaming model gives {runner.num_labels} scores but the window model has "
                f"{len(window_model.labels)} labels"
            )
        self.runner, self.window_model = runner, window_model
        self.labels = list(window_model.labels)
        self.sample_rate = int(window_model.sample_rate)
        self.desired_samples = int(window_model.desired_samples)
        self.stride_ms = stride_ms
        self.progress = progress

    @classmethod
    def from_export(cls, export_dir, window_model, stride_ms: int, *, progress: bool = True):
        """The streaming model of the export folder ``export_dir``."""
        runner = streaming_runner(export_dir, len(window_model.labels))
        return cls(runner, window_model, stride_ms, progress=progress)

    def score(self, audio):
        return streaming_scores(
            self.runner, self.window_model, audio, self.stride_ms, self.progress
        )

    def describe(self, scores=None):
        return "streaming model" if scores is None else "streaming model, one call per frame"

    def report(self, scores, duration_s):
        return {"streaming_model": True}  # scored by model_streaming.tflite, one call per frame


def has_streaming_model(export_dir) -> bool:
    """True when the export folder holds a streaming model (freeze wrote one)."""
    return (Path(export_dir) / STREAMING_MODEL).is_file()


def streaming_runner(export_dir, num_labels: int):
    """The export's streaming model, ready to run (inference/streaming_tflite.py), checked to give
    ``num_labels`` scores."""
    from pipeline.inference.export_files import read_frontend
    from pipeline.inference.streaming_tflite import StreamingTFLite

    path = Path(export_dir) / STREAMING_MODEL
    if not path.is_file():
        raise StageError(
            f"{path} not found: freeze writes it only for models that stream "
            "(see metrics/export.json 'streaming')"
        )
    frontend = Path(export_dir) / "frontend.json"
    inputs = (
        read_frontend(frontend).get("streaming", {}).get("inputs") if frontend.is_file() else None
    )
    if not inputs:
        raise StageError(f"{frontend}: no 'streaming' entry naming the inputs of {STREAMING_MODEL}")
    # Input 0 is the frame; then the states in order.
    runner = StreamingTFLite(list(inputs[1:]), path)
    if runner.num_labels != num_labels:
        raise StageError(
            f"{path} gives {runner.num_labels} scores but the export has {num_labels} labels"
        )
    return runner


def load(model, labels_path=None):
    """A model given as a path loaded (pipeline.inference, imported only then); others as they
    are."""
    if not isinstance(model, (str, Path)):
        return model
    from pipeline.inference import load_model

    return load_model(Path(model), labels_path)


def make_scorer(
    model,
    stride_ms: int,
    *,
    labels_path=None,
    streaming: bool = False,
    gate=None,
    gate_settings: GateSettings | None = None,
    average_with=(),
    frame_reuse: bool = True,
    batch_size: int = BATCH,
    progress: bool = True,
) -> Scorer:
    """The scorer the options of ``kws stream-eval`` (and the stream_eval stage) ask for; models
    are paths (loaded here) or loaded models. The modes are exclusive:

    - ``streaming``: a StreamingScorer of the export folder ``model`` (a path);
    - ``gate`` (a model): a CascadeScorer with ``gate_settings`` (default: GateSettings());
    - ``average_with`` (models with ``model``'s labels): a MeanScorer of every model's
      WindowScorer;
    - none of them: ``model``'s WindowScorer.
    """
    average_with = list(average_with)
    if gate is not None and streaming:
        raise StageError("a gate (cascade) and the streaming model cannot be combined; use one")
    if average_with and (gate is not None or streaming):
        raise StageError(
            "averaging with other models works with the window model alone, not with a "
            "gate or the streaming model"
        )
    if streaming and not isinstance(model, (str, Path)):
        raise StageError("the streaming model is read from an export folder: give its path")
    loaded = load(model, labels_path)
    if streaming:
        return StreamingScorer.from_export(model, loaded, stride_ms, progress=progress)
    if gate is not None:
        return CascadeScorer(
            loaded, load(gate), stride_ms, gate_settings, batch_size=batch_size, progress=progress
        )
    window = [
        WindowScorer(
            each, stride_ms, frame_reuse=frame_reuse, batch_size=batch_size, progress=progress
        )
        for each in [loaded, *(load(other) for other in average_with)]
    ]
    return MeanScorer(window) if average_with else window[0]
