"""The ``stream_eval`` section: the decoder's settings.

It is apart from the ``stream`` section (the synthetic recording's makeup,
``pipeline.data.stream_synthesis.StreamConfig``) so that tuning the decoder does not regenerate
the recording. The defaults are the original test_streaming_accuracy's, and the stream_eval tool
takes them as its command-line defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.schema import Section, boolean, integer, number, param


@dataclass(frozen=True)
class StreamEvalConfig(Section):
    section = "stream_eval"

    clip_stride_ms: int = param(30, integer(1))
    average_window_ms: int = param(500, integer(1))
    detection_threshold: float = param(0.7, number(0, 1))
    suppression_ms: int = param(1500, integer(0))
    time_tolerance_ms: int = param(750, integer(0))
    minimum_count: int = param(3, integer(1))
    # Beyond the original (0 = off, its behaviour): a command is reported only when its averaged
    # score exceeds the second-highest label's by at least this much.
    minimum_margin: float = param(0.0, number(0, 1))
    # Beyond the original (False = its rule): a word said twice is reported twice. The original
    # reports a command only when its label differs from the previous command's, so two "yes"
    # with no confident silence between them give one detection; with this, the same label is new
    # again once its averaged score has fallen to or below the threshold since it was reported
    # (the word ended) and suppression_ms has passed.
    repeat_commands: bool = param(False, boolean())
