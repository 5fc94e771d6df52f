"""SVOX Pico, the embedded data set's second synthesizer (``data.embedded.pico_speakers``).

espeak-ng makes speech from rules (formant synthesis); Pico's voices are statistical models
trained on recordings of one real speaker each, so their spectra are closer to a person's. The
``ttspico`` package (Apache-2.0) builds the Pico library and ships its voice files. It has one
voice per language (two for English), so a Pico "speaker" is a voice plus a drawn vocal-tract
scale, pitch and rate: the voice is synthesised with its pitch and rate divided by the scale and
then resampled by the scale, which moves the formants (a longer or shorter vocal tract) while
the pitch and the speaking rate land where they were drawn.

Like espeak-ng, Pico keeps hidden state between utterances; the generator calls it in a fresh
process in a fixed order, which makes the same parameters give the same bytes. That process must
not load TensorFlow: libtensorflow_framework exports an ``rdft`` (Ooura's FFT) that Pico's own
calls to its ``rdft`` bind to, and Pico crashes in it. :class:`Pico` refuses to start there.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from pipeline.core.errors import StageError
from pipeline.data.acquire.packages import distribution_version

# The Pico voices of each espeak-ng language that has one (the voice files ttspico ships).
VOICES = {
    "en": ("en-US", "en-GB"),
    "en-us": ("en-US",),
    "en-gb-x-rp": ("en-GB",),
    "de": ("de-DE",),
    "es": ("es-ES",),
    "fr": ("fr-FR",),
    "it": ("it-IT",),
}
NATIVE_RATE = 16000
# Pico's own limits of its pitch and rate properties (percent of the voice's default).
PITCH_LIMITS, RATE_LIMITS = (50, 200), (20, 500)
# Pico speaks at full scale and clips on loud vowels at its default volume (100).
VOLUME = 60


class PicoError(StageError):
    """SVOX Pico is missing or refused a request."""


def voices_for(language: str) -> tuple[str, ...]:
    """The Pico voices of an espeak-ng ``language`` (none for most languages)."""
    return VOICES.get(language, ())


@dataclass(frozen=True)
class PicoSpeaker:
    """One Pico speaker: a voice, a vocal-tract scale (formants x scale) and its pitch and
    rate relative to the voice's own."""

    id: str
    voice: str
    vocal_tract: float
    pitch: float
    rate: float


_MISSING = (
    "data.embedded.pico_speakers needs SVOX Pico: install the ttspico package (pinned in "
    "requirements.lock), or set data.embedded.pico_speakers: 0"
)


def check_installed() -> None:
    """A PicoError when ttspico is not installed (without loading it: safe in any process)."""
    from importlib.util import find_spec

    if "ttspico" in sys.modules:  # imported already, or blocked (None)
        found = sys.modules["ttspico"] is not None
    else:
        found = find_spec("ttspico") is not None
    if not found:
        raise PicoError(_MISSING)


def _module():
    if "tensorflow" in sys.modules:
        raise PicoError(
            "SVOX Pico cannot run in a process that has loaded TensorFlow (see pico.py)"
        )
    try:
        import ttspico
    except ImportError:
        raise PicoError(_MISSING) from None
    return ttspico


def version() -> str:
    """ttspico's version, for source.json."""
    return distribution_version("ttspico")


class Pico:
    """The Pico voices of one process (an engine per voice, made when first used)."""

    def __init__(self):
        self._ttspico = _module()
        self._engines: dict[str, object] = {}

    def _engine(self, voice: str):
        if voice not in self._engines:
            try:
                engine = self._ttspico.TtsEngine(voice)
            except RuntimeError:
                raise PicoError(f"SVOX Pico has no voice {voice!r} (its voice files)") from None
            engine.volume = VOLUME
            self._engines[voice] = engine
        return self._engines[voice]

    def synthesize(self, text: str, speaker: PicoSpeaker, pitch: float, rate: float) -> np.ndarray:
        """``text`` in ``speaker``'s voice at ``pitch`` and ``rate`` (relative to the voice's
        own), float32 samples to be read at :meth:`sample_rate` (Pico's 16 kHz times the
        vocal-tract scale): resampled from there to the clip's rate, the formants move by the
        scale and pitch and rate land where they were asked for."""
        engine = self._engine(speaker.voice)
        scale = speaker.vocal_tract
        engine.pitch = int(np.clip(round(100 * pitch / scale), *PITCH_LIMITS))
        engine.rate = int(np.clip(round(100 * rate / scale), *RATE_LIMITS))
        audio = engine.speak(text) or b""
        return np.frombuffer(audio, dtype="<i2").astype(np.float32) / 32768.0

    @staticmethod
    def sample_rate(speaker: PicoSpeaker) -> int:
        """The rate to read ``speaker``'s samples at: below Pico's own for a longer tract."""
        return int(round(NATIVE_RATE * speaker.vocal_tract))
