"""A speaker of a single-voice synthesizer (Piper, hibari): the one voice made many by a drawn
vocal-tract scale and speaking speed, as Pico's and Kokoro's voices are."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VoiceSpeaker:
    """The voice with a vocal-tract scale (formants and pitch x scale) and a speed (x the voice's
    own pace)."""

    id: str
    vocal_tract: float
    speed: float

    def sample_rate(self, native: int) -> int:
        """The rate to read the voice's samples at: below its own ``native`` rate for a longer
        tract, so formants and pitch move down together."""
        return int(round(native * self.vocal_tract))
