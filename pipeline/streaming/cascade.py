"""A two-stage cascade for streaming: a cheap gate scores every window, the costly model only the
candidate windows around the gate's keyword evidence.

A front end that cannot reuse frames (EfficientWord-Net's ResNet-50 on 1.5 s windows, the
``embedding_efficientword`` pair) costs its full price on every hop, so alone it streams only a
few times faster than real time (figures: docs/experiments/cascade.md). The cascade:

1. the gate (a model on a frame-reusing front end: the speech-embedding export, or the default
   mfcc ds_cnn) scores every window of the recording at ``gate_stride_ms``, features computed once
   (``stream_scores`` with frame reuse);
2. a gate window is *passing* when its keyword mass -- the sum of its scores of the wanted words,
   i.e. everything but ``_silence_`` and ``_unknown_`` -- is at least ``threshold``;
3. a window of the costly model's grid (``clip_stride_ms``) is a *candidate* when a passing gate
   window starts within ``margin_ms`` of it, or when the gate window nearest to it passes;
4. the costly model scores the candidates, each from its own audio (``predict_audio``, batched),
   and those scores are used there; every other window takes the scores of the nearest gate
   window.

That is the ``margin`` rule (the default). A word keeps the gate's mass high over ~0.5 s of window
offsets, so it flags several costly windows per spoken word. The ``peak`` rule flags fewer: per
*run* of consecutive passing gate windows, only the costly window nearest the run's keyword-mass
maximum (the gate's most confident offset; with ``peak`` ``centre``, the run's middle window
instead), and ``neighbours`` costly-grid windows either side of it, are candidates; every other
window of the costly grid whose nearest gate window is in the run is *held* at the run's nearest
candidate, so the decoder's average over ``average_window_ms`` sees the costly model's verdict
across the run, never the gate's passing scores alone. ``held`` says how: ``min`` (the default)
takes, label by label, the smaller of the candidate's costly score and the window's own gate score
(a word scores there only as far as both models give it: on the pipeline's dense stream this kept
the costly model's false-alarm rate, where ``costly``, the candidate's scores copied over the run,
let one confident costly window weigh like a whole run of them and nearly doubled it); ``costly``
copies the candidate's scores. Windows outside every run keep the gate's scores as above. With
``neighbours`` wide enough to cover every run, the ``peak`` rule scores every window the ``margin``
rule with ``margin_ms`` 0 scores (tested).

Why the gate's scores (not a fixed "silence") for the other windows: they are a real model's
opinion of that window, and by construction their keyword mass is below ``threshold``, so with
a gate threshold at or below the detection threshold they cannot make a keyword detection of
their own (the decoder averages them with the costly scores nearby, which only delays a
detection); and they keep the gate's ``_unknown_`` vs ``_silence_`` call, which the ground truth
scores (about a third of its words are unknown words), where a fixed silence would drop every
unknown word outside a candidate region.

With ``threshold`` 0 every gate window passes, so every window is a candidate and the cascade's
scores are the costly model's alone, window by window (tests/test_cascade.py). The gate and the
costly model must have the same labels in the same order. Windows are aligned by their start
times (both models' windows start at ``offset``; with equal clip lengths they are the same
audio).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from pipeline.core.errors import StageError
from pipeline.core.labels import SILENCE_LABEL, UNKNOWN_LABEL
from pipeline.streaming.scores import (
    BATCH,
    StreamScores,
    score_windows,
    stream_scores,
    window_offsets,
)

RULES = ("margin", "peak")
HELD = ("min", "costly")
PEAKS = ("max", "centre")


@dataclass(frozen=True)
class GateSettings:
    """How the gate picks candidates: keyword-mass ``threshold``, the gate's own stride (None: the
    costly model's clip stride), the ``rule``: ``margin`` (every costly window within ``margin_ms``
    of a passing gate window) or ``peak`` (per run of passing gate windows, the costly window at
    the gate's keyword-mass maximum and ``neighbours`` costly-grid windows either side; the rest of
    the run held at their scores as ``held`` says: ``min`` or ``costly``; ``margin_ms`` unused)."""

    threshold: float = 0.5
    margin_ms: int = 160
    stride_ms: int | None = None
    rule: str = "margin"
    neighbours: int = 0
    held: str = "min"
    peak: str = "max"

    def __post_init__(self):
        if not 0 <= self.threshold <= 1:
            raise StageError(f"gate threshold {self.threshold}: must be between 0 and 1")
        if self.margin_ms < 0:
            raise StageError(f"gate margin {self.margin_ms} ms: must not be negative")
        if self.stride_ms is not None and self.stride_ms < 1:
            raise StageError(f"gate stride {self.stride_ms} ms: must be at least 1")
        if self.rule not in RULES:
            raise StageError(f"gate rule {self.rule!r}: must be one of {', '.join(RULES)}")
        if self.peak not in PEAKS:
            raise StageError(f"gate peak {self.peak!r}: must be one of {', '.join(PEAKS)}")
        if self.held not in HELD:
            raise StageError(f"gate held {self.held!r}: must be one of {', '.join(HELD)}")
        if self.neighbours < 0:
            raise StageError(f"gate neighbours {self.neighbours}: must not be negative")


@dataclass
class CascadeScores(StreamScores):
    """The cascade's scores on the costly model's window grid, with each stage's cost:
    ``gate`` (every gate window), ``candidates`` (mask over the grid: scored by the costly model),
    ``held`` (mask: holding a candidate's scores, the ``peak`` rule), ``costly_seconds``;
    ``seconds`` is the whole."""

    gate: StreamScores = None
    candidates: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    held: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    costly_seconds: float = 0.0


def keyword_mass(labels, scores: np.ndarray) -> np.ndarray:
    """Per window, the sum of the scores of the wanted words (all but silence and unknown)."""
    keep = [i for i, label in enumerate(labels) if label not in (SILENCE_LABEL, UNKNOWN_LABEL)]
    if not keep:
        raise StageError("the gate has no wanted-word labels (only silence/unknown)")
    return np.asarray(scores, np.float64)[:, keep].sum(axis=1)


def nearest(times_ms: np.ndarray, to_ms: np.ndarray) -> np.ndarray:
    """Index into sorted ``times_ms`` of the nearest time to each of ``to_ms`` (ties: earlier)."""
    right = np.clip(np.searchsorted(times_ms, to_ms), 0, len(times_ms) - 1)
    left = np.clip(right - 1, 0, len(times_ms) - 1)
    take_left = np.abs(times_ms[left] - to_ms) <= np.abs(times_ms[right] - to_ms)
    return np.where(take_left, left, right)


def candidate_mask(
    times_ms: np.ndarray, gate_times_ms: np.ndarray, passing: np.ndarray, margin_ms: float
) -> np.ndarray:
    """Windows (start ``times_ms``) with a passing gate window within ``margin_ms``, or whose
    nearest gate window passes."""
    times_ms = np.asarray(times_ms, np.int64)
    if len(gate_times_ms) == 0:
        return np.zeros(len(times_ms), bool)
    passing_times = np.asarray(gate_times_ms, np.int64)[passing]
    lo = np.searchsorted(passing_times, times_ms - margin_ms, side="left")
    hi = np.searchsorted(passing_times, times_ms + margin_ms, side="right")
    return (hi > lo) | passing[nearest(gate_times_ms, times_ms)]


def passing_runs(passing: np.ndarray) -> list[tuple[int, int]]:
    """(first, end) index pairs (end exclusive) of the runs of consecutive True in ``passing``."""
    edges = np.diff(np.concatenate([[0], np.asarray(passing, np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def peak_plan(
    times_ms: np.ndarray,
    gate_times_ms: np.ndarray,
    mass: np.ndarray,
    passing: np.ndarray,
    neighbours: int,
    peak: str = "max",
) -> tuple[np.ndarray, np.ndarray]:
    """The ``peak`` rule on windows starting at sorted ``times_ms``: each run's gate window at its
    keyword-mass maximum (``peak`` max) or its middle (``centre``, the earlier of two), the grid
    window nearest it and ``neighbours`` either side; returns (candidates mask, source), where
    ``source[i]`` is the candidate whose scores window ``i`` takes (``i`` itself for a candidate,
    the run's nearest candidate for a held window, -1: the gate's scores)."""
    times_ms = np.asarray(times_ms, np.int64)
    gate_times_ms = np.asarray(gate_times_ms, np.int64)
    candidates = np.zeros(len(times_ms), bool)
    source = np.full(len(times_ms), -1, np.int64)
    if len(times_ms) == 0 or len(gate_times_ms) == 0:
        return candidates, source
    owner = nearest(gate_times_ms, times_ms)
    for first, end in passing_runs(passing):
        top = first + int(np.argmax(mass[first:end])) if peak == "max" else (first + end - 1) // 2
        centre = int(
            nearest(times_ms, gate_times_ms[top : top + 1])[0]
        )  # argmax ties: the earliest
        chosen = np.arange(max(0, centre - neighbours), min(len(times_ms), centre + neighbours + 1))
        candidates[chosen] = True
        members = np.flatnonzero(
            (owner >= first) & (owner < end)
        )  # the run's windows (disjoint runs)
        source[members] = chosen[nearest(times_ms[chosen], times_ms[members])]
    source[candidates] = np.flatnonzero(candidates)  # a candidate keeps its own scores
    return candidates, source


def combine(
    labels,
    times_ms: np.ndarray,
    gate: StreamScores,
    costly_scores,
    settings: GateSettings = GateSettings(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cascade's scores on the windows starting at ``times_ms`` (the costly model's grid), from
    the gate's scores (any grid) and ``costly_scores(mask)``: the costly model's scores of the
    windows in ``mask`` (called once). Returns (scores, candidates mask, held mask). Computing
    the costly model from its audio (``cascade_scores``) or looking up scores already computed
    on every window (bench/research/dag_operating_point.py) gives the same cascade."""
    times_ms = np.asarray(times_ms, np.int64)
    mass = keyword_mass(labels, gate.scores)
    passing = mass >= settings.threshold
    if settings.rule == "peak":
        candidates, source = peak_plan(
            times_ms, gate.times_ms, mass, passing, settings.neighbours, settings.peak
        )
    else:
        candidates = candidate_mask(times_ms, gate.times_ms, passing, settings.margin_ms)
        source = np.where(candidates, np.arange(len(times_ms)), -1)
    if len(gate.times_ms):
        scores = np.asarray(gate.scores)[nearest(gate.times_ms, times_ms)].astype(np.float32)
    else:
        scores = np.zeros((len(times_ms), len(labels)), np.float32)
    scores[candidates] = costly_scores(candidates)
    held = (source >= 0) & ~candidates
    scores[held] = (
        np.minimum(scores[source[held]], scores[held])
        if settings.held == "min"
        else scores[source[held]]
    )
    return scores, candidates, held


def cascade_scores(
    model,
    gate_model,
    audio: np.ndarray,
    clip_stride_ms: float,
    settings: GateSettings = GateSettings(),
    batch_size: int = BATCH,
    progress: bool = True,
) -> CascadeScores:
    """Score every window of ``audio`` on ``model``'s grid (start every ``clip_stride_ms``):
    the gate everywhere, ``model`` on the candidates (see the module doc)."""
    if list(gate_model.labels) != list(model.labels):
        raise StageError(
            f"the gate's labels {list(gate_model.labels)} differ from the model's "
            f"{list(model.labels)}; a cascade needs the same labels in the same order"
        )
    if int(gate_model.sample_rate) != int(model.sample_rate):
        raise StageError(
            f"the gate runs at {gate_model.sample_rate} Hz, the model at {model.sample_rate} Hz"
        )
    audio = np.asarray(audio, np.float32).reshape(-1)
    rate = int(model.sample_rate)
    start = time.perf_counter()
    gate = stream_scores(
        gate_model,
        audio,
        settings.stride_ms or clip_stride_ms,
        frame_reuse=True,
        batch_size=batch_size,
        progress=progress,
    )
    stride = int(clip_stride_ms * rate / 1000)
    offsets = window_offsets(len(audio), int(model.desired_samples), stride)
    times_ms = offsets * 1000 // rate
    costly_seconds = 0.0

    def costly_scores(candidates):
        nonlocal costly_seconds
        costly_start = time.perf_counter()
        with tqdm(
            total=int(candidates.sum()), desc="candidate windows", unit="win", disable=not progress
        ) as bar:
            out = score_windows(model, audio, offsets[candidates], batch_size, bar)
        costly_seconds = time.perf_counter() - costly_start
        return out

    scores, candidates, held = combine(model.labels, times_ms, gate, costly_scores, settings)
    return CascadeScores(
        times_ms,
        scores,
        gate.frame_reuse,
        time.perf_counter() - start,
        gate=gate,
        candidates=candidates,
        held=held,
        costly_seconds=costly_seconds,
    )


def stage_costs(scores: CascadeScores, duration_s: float) -> dict:
    """Each stage's windows, seconds and real-time factor (processing / audio), and the whole."""

    def cost(windows, seconds):
        return {
            "windows": int(windows),
            "seconds": seconds,
            "real_time_factor": seconds / duration_s if duration_s else 0.0,
            # None when too fast to time (JSON has no infinity).
            "times_real_time": duration_s / seconds if seconds > 0 else None,
        }

    return {
        "gate": cost(len(scores.gate.times_ms), scores.gate.seconds),
        "costly": {
            **cost(int(scores.candidates.sum()), scores.costly_seconds),
            "share_of_windows": float(scores.candidates.mean()) if len(scores.candidates) else 0.0,
            "held_windows": int(scores.held.sum()),
        },
        "whole": cost(len(scores.times_ms), scores.seconds),
    }
