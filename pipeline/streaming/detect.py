"""Words in audio of any length, as it comes: a scorer's feed (scorers.py) and the decoder fed
window by window (recognize.LiveDecoder), block after block.

``detect`` is what ``kws detect`` runs on a recording read block by block
(core/audio.WavReader) and ``kws listen`` on a microphone or a pipe: the memory of a block, the
windows not scored yet and the averaging window, whatever the length. On the same audio it
finds what ``kws stream-eval`` decodes from the whole recording's scores (the same windows, the
same scores, RecognizeCommands' rules).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from pipeline.core.errors import StageError
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.recognize import LiveDecoder
from pipeline.streaming.scorers import Scorer


class Detection(NamedTuple):
    """A word found: its label, the start of the window that found it (ms from the start of
    the audio), the averaged score, and how many samples had come when it was found."""

    label: str
    time_ms: int
    score: float
    samples: int


def detect(
    scorer: Scorer, blocks: Iterable, settings: StreamEvalConfig, *, eager: bool = False
) -> Iterator[Detection]:
    """The words in ``blocks`` (float32 1-D arrays at the scorer's rate), each as soon as the
    block that completes it is scored. ``eager`` scores every block's windows at once (a live
    source) instead of in the scorer's batches."""
    if scorer.stride_ms != settings.clip_stride_ms:
        raise StageError(
            f"the {scorer.describe()} scores windows every {scorer.stride_ms} ms but the decoder "
            f"settings say clip_stride_ms {settings.clip_stride_ms}"
        )
    feed = scorer.feed(eager)
    decoder = LiveDecoder(scorer.labels, settings)
    for block in blocks:
        scores = feed.push(block)
        for label, time_ms, score in decoder.push(scores.times_ms, scores.scores):
            yield Detection(label, time_ms, score, feed.consumed)
    scores = feed.finish()
    for label, time_ms, score in decoder.push(scores.times_ms, scores.scores):
        yield Detection(label, time_ms, score, feed.consumed)
