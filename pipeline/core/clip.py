"""The clip format every stage agrees on: sample rate and clip length.

These two keys live in params.yaml's ``features`` section (the tutorial's flag names), but the
stages that only handle audio (download, synthesize_stream) need nothing else of it: this partial
view gives them the two keys, validated, without importing the front ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.schema import Section, integer, param


@dataclass(frozen=True)
class ClipFormat(Section):
    section = "features"
    partial = True

    sample_rate: int = param(16000, integer(1000, 192000))
    clip_duration_ms: int = param(1000, integer(100, 60000))

    @property
    def desired_samples(self) -> int:
        """Samples in one clip (as the original's prepare_model_settings)."""
        return int(self.sample_rate * self.clip_duration_ms / 1000)
