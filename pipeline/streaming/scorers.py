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
test_streaming_accuracy). ``score`` takes a whole recording; ``feed()`` opens a Feed, which takes
the audio in chunks of any size (a live microphone, an hour-long file read block by block):
``push(chunk)`` gives the windows the chunk completes, ``finish()`` those still held, and it keeps
only what the windows not yet scored need (the audio or frames of at most a batch of windows and
one clip; a front end's frame stream state, ``frames_in_chunks``; the streaming model's states).
A feed gives the windows ``score`` gives, on the same grid and with the same scores, whatever the
chunks: the window model's are scored in the same batches of ``batch_size`` windows (``eager``
scores each chunk's windows at once, for a live tool, whose scores may then differ from
``score``'s in the last bits).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from pipeline.core.errors import StageError
from pipeline.streaming.cascade import CascadeScores, GateSettings, cascade_scores, stage_costs
from pipeline.streaming.scores import (
    BATCH,
    StreamScores,
    can_reuse_frames,
    mean_scores,
    score_windows,
    stream_scores,
    streaming_scores,
    window_offsets,
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

    def feed(self, eager: bool = False) -> Feed:
        """A Feed of this scorer (the module doc). This one holds the whole recording and scores
        it at ``finish``: the scorers that can do better (all but the cascade) say so."""
        return WholeFeed(self)

    def bounded(self) -> bool:
        """True when this scorer's feed holds a bounded amount of audio, whatever the length."""
        return False


class Feed(ABC):
    """Audio in chunks -> the scores of the windows they complete (the module doc)."""

    def __init__(self, scorer: Scorer):
        self.scorer = scorer
        self.stride = int(scorer.stride_ms * scorer.sample_rate / 1000)
        if self.stride < 1:
            raise StageError(
                f"clip stride of {self.stride} samples; it must be at least one sample"
            )
        self.clip = int(scorer.desired_samples)
        self.consumed = 0  # samples pushed so far
        self.next_window = 0  # the first window not given yet
        self.seconds = 0.0  # time spent scoring

    def complete(self) -> int:
        """Windows complete so far: those starting before ``consumed - clip`` (the original's
        ``range(0, samples - clip, stride)`` of the audio so far)."""
        return len(window_offsets(self.consumed, self.clip, self.stride))

    def push(self, audio: np.ndarray) -> StreamScores:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        self.consumed += len(audio)
        start = time.perf_counter()
        times, scores = self._push(audio)
        self.seconds += time.perf_counter() - start
        return self._scores(times, scores)

    def finish(self) -> StreamScores:
        start = time.perf_counter()
        times, scores = self._finish()
        self.seconds += time.perf_counter() - start
        return self._scores(times, scores)

    def _scores(self, windows: np.ndarray, scores) -> StreamScores:
        """StreamScores of the windows numbered ``windows`` (start times in whole ms)."""
        windows = np.asarray(windows, np.int64)
        scores = np.asarray(scores, np.float32).reshape(len(windows), len(self.scorer.labels))
        times_ms = windows * self.stride * 1000 // int(self.scorer.sample_rate)
        return StreamScores(times_ms, scores, self.frame_reuse, self.seconds)

    frame_reuse = False

    @abstractmethod
    def _push(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(window numbers, scores) of the windows ``audio`` lets this feed give."""

    def _finish(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(0, np.int64), np.zeros((0, len(self.scorer.labels)), np.float32)


class WholeFeed(Feed):
    """Holds every chunk and scores the whole recording at ``finish`` (for scorers that need the
    whole recording at once: the cascade's peak rule looks at runs of windows)."""

    def __init__(self, scorer: Scorer):
        super().__init__(scorer)
        self.chunks = []
        self.whole = None  # the scorer's own scores of the whole recording, at the end

    def _push(self, audio):
        self.chunks.append(audio)
        return Feed._finish(self)

    def _finish(self):
        audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
        self.chunks = []
        scores = self.whole = self.scorer.score(audio)
        self.frame_reuse = scores.frame_reuse
        return np.arange(len(scores.times_ms)), scores.scores


def frames_in_chunks(model) -> bool:
    """True when a recording's frames can be computed from its audio in chunks: the model's
    frames are local (``frames_are_local``: each piece's frames are the whole's), or it gives a
    ``frame_stream`` (the speech embedding's: its state carried from chunk to chunk)."""
    if getattr(model, "frames_are_local", False):
        return True
    stream = getattr(model, "frame_stream", None)
    return stream is not None and stream() is not None


class FrameBuffer:
    """A model's frames of a recording computed piece by piece (``frames_in_chunks``): the audio
    from the first frame not computed yet (or the model's ``frame_stream``, which holds what it
    needs), and the frames from ``first`` on (those the windows not scored yet need)."""

    def __init__(self, model, min_samples: int):
        self.model = model
        self.frame_stride = int(model.frame_stride_samples)
        self.min_samples = min_samples  # compute frames once this much audio is waiting
        # A frame's audio, at most (what the clip's frame count implies): never less computed.
        self.window = int(model.desired_samples) - (int(model.frames_per_clip) - 1) * (
            self.frame_stride
        )
        self.stream = None if getattr(model, "frames_are_local", False) else model.frame_stream()
        self.audio = np.zeros(0, np.float32)
        self.frames = None
        self.first = 0  # the number of the first frame held

    @property
    def end(self) -> int:
        """The number of the frame after the last one computed."""
        return self.first + (0 if self.frames is None else len(self.frames))

    def push(self, audio: np.ndarray, now: bool = False) -> None:
        """Add ``audio``; compute its frames once ``min_samples`` wait (``now``: every frame the
        audio so far gives; a stream's frames may need audio after their window)."""
        if self.stream is not None:
            self._add(self.stream.push(audio, now or self.min_samples <= self.frame_stride))
            return
        self.audio = np.concatenate([self.audio, audio])
        if len(self.audio) < max(self.window, 1 if now else self.min_samples):
            return
        new = np.asarray(self.model.frame_features(self.audio), np.float32)
        self.audio = self.audio[len(new) * self.frame_stride :]
        self._add(new)

    def finish(self) -> None:
        """The audio has ended: compute the frames left."""
        if self.stream is not None:
            self._add(self.stream.finish())
        else:
            self.push(np.zeros(0, np.float32), now=True)

    def _add(self, new: np.ndarray) -> None:
        new = np.asarray(new, np.float32)
        if len(new):
            self.frames = new if self.frames is None else np.concatenate([self.frames, new])

    def windows_held(self, step: int, frames_per_clip: int) -> int:
        """The windows (every ``step`` frames, ``frames_per_clip`` each) whose frames are all
        computed so far."""
        return max(0, (self.end - frames_per_clip) // step + 1)

    def get(self, numbers: np.ndarray) -> np.ndarray:
        """The frames numbered ``numbers`` (any shape; all held)."""
        return self.frames[np.asarray(numbers) - self.first]

    def drop_before(self, number: int) -> None:
        if self.frames is not None and number > self.first:
            self.frames = self.frames[number - self.first :]
            self.first = number


class WindowFeed(Feed):
    """A WindowScorer's feed: frames computed piece by piece when the model allows it
    (``frames_in_chunks``), else each window from its own audio (the scores of ``score`` with
    ``frame_reuse=False``, or of a model whose front end cannot reuse frames). A window is scored
    once its frames are computed: with a frame stream that needs audio after the window (the
    speech embedding's context), a little after the window's own audio has come."""

    def __init__(self, scorer: WindowScorer, eager: bool = False):
        super().__init__(scorer)
        model = scorer.model
        self.model, self.eager, self.batch = model, eager, int(scorer.batch_size)
        self.frame_reuse = (
            scorer.frame_reuse and can_reuse_frames(model, self.stride) and frames_in_chunks(model)
        )
        self.scored = self.next_window  # windows scored; given at once (no holding back)
        if self.frame_reuse:
            self.step = self.stride // int(model.frame_stride_samples)
            self.frames_per_clip = int(model.frames_per_clip)
            self.buffer = FrameBuffer(model, 0 if eager else self.clip)
        else:
            self.audio = np.zeros(0, np.float32)  # from the start of window ``next_window``
            self.audio_start = 0

    def _ready(self, last: bool) -> int:
        """The windows to score now: every complete one when eager or at the end, else only
        whole batches (counted from the first window, as ``score`` batches them); before the
        end, only those whose frames are computed (a frame stream may need later audio)."""
        upto = self._batched(self.complete(), last)
        if self.frame_reuse and not last:
            if upto > self.buffer.windows_held(self.step, self.frames_per_clip):
                self.buffer.push(np.zeros(0, np.float32), now=True)
            held = self.buffer.windows_held(self.step, self.frames_per_clip)
            upto = self._batched(max(self.next_window, min(upto, held)), last)
        return upto

    def _batched(self, windows: int, last: bool) -> int:
        if self.eager or last:
            return windows
        return self.next_window + (windows - self.next_window) // self.batch * self.batch

    def _push(self, audio, last=False):
        if self.frame_reuse:
            self.buffer.push(audio)
            if last:
                self.buffer.finish()
        else:
            self.audio = np.concatenate([self.audio, audio])
        upto = self._ready(last)
        parts = []
        while self.next_window < upto:
            count = min(self.batch, upto - self.next_window)
            numbers = np.arange(self.next_window, self.next_window + count)
            parts.append((numbers, self._score(numbers)))
            self.next_window += count
        self._drop()
        if not parts:
            return Feed._finish(self)
        return np.concatenate([n for n, _ in parts]), np.concatenate([s for _, s in parts])

    def _finish(self):
        return self._push(np.zeros(0, np.float32), last=True)

    def _score(self, numbers: np.ndarray) -> np.ndarray:
        if self.frame_reuse:
            rows = numbers[:, None] * self.step + np.arange(self.frames_per_clip)
            if rows.max() >= self.buffer.end:
                raise StageError(
                    f"frame_features gave {self.buffer.end} frames for {self.consumed} samples; "
                    f"{int(rows.max()) + 1} are needed (the model's frame_stride_samples / "
                    "frames_per_clip disagree)"
                )
            return np.asarray(self.model.predict_features(self.buffer.get(rows)))
        starts = numbers * self.stride - self.audio_start
        return score_windows(self.model, self.audio, starts, self.batch)

    def _drop(self) -> None:
        """Forget what the windows from ``next_window`` on do not need."""
        if self.frame_reuse:
            self.buffer.drop_before(self.next_window * self.step)
        else:
            start = self.next_window * self.stride
            self.audio = self.audio[max(0, start - self.audio_start) :]
            self.audio_start = max(start, self.audio_start)


class MeanFeed(Feed):
    """A MeanScorer's feed: every scorer's feed given the same chunks, each window's scores
    averaged once every feed has given it (the feeds may give their windows at other times)."""

    def __init__(self, scorer: MeanScorer, eager: bool = False):
        super().__init__(scorer)
        self.feeds = [each.feed(eager) for each in scorer.scorers]
        self.frame_reuse = all(feed.frame_reuse for feed in self.feeds)
        self.held = [None] * len(self.feeds)  # per feed: the windows not averaged yet

    def push(self, audio):
        self.consumed += len(np.asarray(audio).reshape(-1))
        return self._mean([feed.push(audio) for feed in self.feeds])

    def finish(self):
        return self._mean([feed.finish() for feed in self.feeds])

    def _mean(self, parts) -> StreamScores:
        for k, part in enumerate(parts):
            held = self.held[k]
            self.held[k] = (
                part
                if held is None
                else StreamScores(
                    np.concatenate([held.times_ms, part.times_ms]),
                    np.concatenate([held.scores, part.scores]),
                    part.frame_reuse,
                    part.seconds,
                )
            )
        ready = min(len(held.times_ms) for held in self.held)
        given = [
            StreamScores(h.times_ms[:ready], h.scores[:ready], h.frame_reuse, h.seconds)
            for h in self.held
        ]
        self.held = [
            StreamScores(h.times_ms[ready:], h.scores[ready:], h.frame_reuse, h.seconds)
            for h in self.held
        ]
        self.frame_reuse = all(feed.frame_reuse for feed in self.feeds)
        self.seconds = sum(feed.seconds for feed in self.feeds)
        first, *others = given
        mean = mean_scores(first, others)
        return StreamScores(mean.times_ms, mean.scores, self.frame_reuse, self.seconds)

    def _push(self, audio):  # pragma: no cover - push and finish are the mean's own
        raise NotImplementedError


class StreamingFeed(Feed):
    """A StreamingScorer's feed: each new frame through the streaming model as it comes (its
    states carried), the window ending at a frame scored by the output after it."""

    frame_reuse = True

    def __init__(self, scorer: StreamingScorer):
        super().__init__(scorer)
        model = scorer.window_model
        self.runner = scorer.runner
        self.runner.reset()
        self.step = self.stride // int(model.frame_stride_samples)
        self.frames_per_clip = int(model.frames_per_clip)
        self.buffer = FrameBuffer(model, int(model.frame_stride_samples))
        self.run_to = 0  # frames run so far
        self.outputs = np.zeros((0, self.runner.num_labels), np.float32)  # from frame out_first
        self.out_first = 0

    def _push(self, audio, last=False):
        self.buffer.push(audio, now=True)
        if last:
            self.buffer.finish()
        if self.buffer.end > self.run_to:
            new = self.buffer.get(np.arange(self.run_to, self.buffer.end))
            self.outputs = np.concatenate([self.outputs, self.runner.run(new)])
            self.run_to = self.buffer.end
        self.buffer.drop_before(self.run_to)
        complete = self.complete()
        if not last:  # the windows whose last frame has run (a frame stream's may come later)
            held = self.buffer.windows_held(self.step, self.frames_per_clip)
            complete = max(self.next_window, min(complete, held))
        numbers = np.arange(self.next_window, complete)
        lasts = numbers * self.step + self.frames_per_clip - 1
        if len(lasts) and lasts[-1] >= self.run_to:
            raise StageError(
                f"frame_features gave {self.run_to} frames for {self.consumed} samples; "
                f"{int(lasts[-1]) + 1} are needed"
            )
        scores = self.outputs[lasts - self.out_first]
        self.next_window = complete
        # The outputs from the next window's last frame on (those run so far) are kept.
        keep = min(self.next_window * self.step + self.frames_per_clip - 1, self.run_to)
        if keep > self.out_first:
            self.outputs = self.outputs[keep - self.out_first :]
            self.out_first = keep
        return numbers, scores

    def _finish(self):
        return self._push(np.zeros(0, np.float32), last=True)


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

    def _reuse_whole(self) -> bool:
        """True when frames are reused but only a whole recording's frames are the right ones
        (a model whose frames cannot be computed in chunks: ``frames_in_chunks``)."""
        stride = int(self.stride_ms * self.sample_rate / 1000)
        return (
            self.frame_reuse
            and can_reuse_frames(self.model, stride)
            and not frames_in_chunks(self.model)
        )

    def feed(self, eager=False):
        # Live, such a model scores each window from its own audio instead.
        return WholeFeed(self) if self._reuse_whole() and not eager else WindowFeed(self, eager)

    def bounded(self):
        return not self._reuse_whole()

    def _views(self) -> tuple[float, ...]:
        return tuple(getattr(self.model, "views", (1.0,)))

    def describe(self, scores=None):
        views = self._views()
        what = "window model" + (f", {len(views)} vocal-tract views" if len(views) > 1 else "")
        if scores is None:
            return what
        return f"{what}, frame reuse {'on' if scores.frame_reuse else 'off'}"

    def report(self, scores, duration_s):
        views = self._views()
        return {"views": list(views)} if len(views) > 1 else {}


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

    def feed(self, eager=False):
        return MeanFeed(self, eager)

    def bounded(self):
        return all(scorer.bounded() for scorer in self.scorers)

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

    def _in_chunks(self) -> bool:
        stride = int(self.stride_ms * self.sample_rate / 1000)
        return can_reuse_frames(self.window_model, stride) and frames_in_chunks(self.window_model)

    def feed(self, eager=False):
        if self._in_chunks():
            return StreamingFeed(self)
        if eager:
            raise StageError(
                "the streaming model scores live audio only with a front end whose frames can be "
                "computed as the audio comes, at a clip stride of whole frames (e.g. "
                "--clip-stride-ms 40 with 20 ms frames); or use the window model (--window)"
            )
        return WholeFeed(self)

    def bounded(self):
        return self._in_chunks()

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
