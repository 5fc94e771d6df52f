"""hibari's voice, the embedded data set's fifth synthesizer (``data.embedded.hibari_speakers``).

hibari (``hibari-tts``, Apache-2.0) is a small neural synthesizer distilled from one of Kokoro's
American English voices (``af_heart``, a woman's): a native English voice beside Piper's man,
where Kokoro's own voices in this project are Japanese ones. Its package holds that voice's ONNX
model and its own English pronunciation (lexicons and a model for words outside them), so the
words' phonemes come from hibari, not espeak-ng: another reading of each word. Only the voice
inside the package is used (hibari downloads its other voices, which this project never asks
for).

A hibari speaker is the voice with a vocal-tract scale and speed drawn, as Piper's
(:class:`VoiceSpeaker`). hibari adds a noise component to its waveform from a generator it is
given: each clip's comes from its own seed, so a clip's samples depend on its seed alone, in any
order and any process (on one machine; docs/reproducibility.md).
"""

from __future__ import annotations

import numpy as np

from pipeline.core.errors import StageError
from pipeline.data.acquire.packages import distribution_version, installed
from pipeline.data.acquire.voice_speaker import VoiceSpeaker
from pipeline.data.config import HIBARI_SPEAKER_PREFIX

NAME, DISTRIBUTION, PREFIX = "hibari", "hibari-tts", HIBARI_SPEAKER_PREFIX
PACKAGE = "hibari"
VOICE = "heart"  # the voice inside the package
# hibari's speeds outside this range are refused by its model's training (0.5 slow .. 2.0 fast).
SPEEDS = (0.5, 2.0)


class HibariError(StageError):
    """hibari is missing or damaged, or cannot say a word."""


Error = HibariError


_MISSING = (
    "data.embedded.hibari_speakers needs hibari: install the hibari-tts package (pinned in "
    "requirements.lock), or set data.embedded.hibari_speakers: 0"
)


def check_installed() -> None:
    """A HibariError when the package is not installed."""
    if not installed(PACKAGE):
        raise HibariError(_MISSING)


def version() -> str:
    """hibari-tts's version, for source.json."""
    return distribution_version(DISTRIBUTION)


def native_rate() -> int:
    """The model's own rate (24 kHz)."""
    return 24000


def _hibari(g2p: bool = False):
    """hibari's synthesizer for its packaged voice (one onnxruntime thread); a one-line error
    when it is missing or damaged."""
    check_installed()
    try:
        from hibari import Hibari
        from hibari.voices import VOICES

        if not VOICES.get(VOICE, {}).get("bundled"):
            raise HibariError(f"hibari-tts has no voice {VOICE!r} in its package: reinstall it")
        engine = Hibari(voice=VOICE, threads=1)
        if g2p:
            engine.g2p  # noqa: B018 -- loads the lexicons now, inside this try
        return engine
    except HibariError:
        raise
    except Exception as exc:  # a damaged install: its files or model refused
        raise HibariError(f"hibari-tts cannot be loaded ({type(exc).__name__}: {exc})") from exc


def word_ids(words, ipa_of=None) -> dict[str, list[int]]:
    """Each word's input to the model, from hibari's own pronunciation (``ipa_of``, espeak-ng's,
    is not used); empty for a word it finds no phonemes for."""
    from pipeline.core.labels import spoken_text

    engine = _hibari(g2p=True)
    ids = {}
    for word in words:
        said = engine.ids(" ".join(engine.phonemize(spoken_text(word))))
        ids[word] = said if len(said) > 2 else []  # more than the two pads
    return ids


class Engine:
    """hibari's packaged voice, its noise drawn from each request's seed."""

    def __init__(self):
        self.hibari = _hibari()

    def synthesize(self, ids, speaker: VoiceSpeaker, speed: float, seed) -> np.ndarray:
        """``ids`` in ``speaker``'s voice at ``speed`` (the word's drawn speed), the noise drawn
        from ``seed``; float32 samples to be read at ``speaker.sample_rate(native_rate())``: the
        model is asked for ``speed / vocal_tract`` so that the faster (or slower) reading lands
        on ``speed``."""
        if len(ids) < 3:  # only the two pads
            return np.zeros(0, np.float32)
        asked = float(np.clip(speed / speaker.vocal_tract, *SPEEDS))
        rng = np.random.default_rng(seed)
        return np.asarray(self.hibari.from_ids(ids, asked, rng), np.float32).reshape(-1)
