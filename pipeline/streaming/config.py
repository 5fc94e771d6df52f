"""The ``stream`` (the synthetic long recording) and ``stream_eval`` (the decoder) sections.

They are separate so that tuning the decoder does not regenerate the recording. The
``stream_eval`` defaults are the original test_streaming_accuracy's, and the stream_eval tool
takes them as its command-line defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import ParamError
from pipeline.core.schema import Section, integer, number, param


@dataclass(frozen=True)
class StreamConfig(Section):
    section = "stream"

    duration_s: float = param(600, number(1, 100000))
    word_interval_ms: int = param(3000, integer(100))
    word_gap_ms: int = param(2000, integer(0))
    unknown_percentage: float = param(30, number(0, 100))
    background_volume: float = param(0.1, number(0, 1))
    background_segment_ms: int = param(1500, integer(10))
    seed: int = param(8, integer(0))

    def __post_init__(self):
        if self.word_gap_ms > self.word_interval_ms:
            raise ParamError(
                f"params: stream.word_gap_ms ({self.word_gap_ms}) must not exceed "
                f"stream.word_interval_ms ({self.word_interval_ms}): words would leave their slot"
            )


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
