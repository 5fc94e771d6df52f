"""The embedded espeak-ng data set: layout, format, determinism and real voice variety."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.audio import read_wav, read_wav_info
from pipeline.core.errors import KwsError
from pipeline.core.labels import ALL_WORDS, BACKGROUND_NOISE_DIR
from pipeline.data.acquire.embedded import (
    ACCENTS,
    NOISE_NAMES,
    RATE_RANGE,
    VARIANTS,
    EspeakError,
    accents_for,
    available_languages,
    band_limit,
    generate_dataset,
    plan_speakers,
    preflight,
    reverberate,
    room_response,
    synthesize_fresh,
    trim_silence,
)
from pipeline.data.config import EmbeddedConfig
from tests.conftest import file_bytes

pytest.importorskip("espeakng_loader")


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for name, data in file_bytes(root).items():
        digest.update(name.encode())
        digest.update(data)
    return digest.hexdigest()


# The bytes of the tiny set below as the generator wrote them before its word list, language
# and variety became parameters (with the libraries pinned in requirements.lock): the defaults
# of every new parameter must keep them, as they keep the default pipeline's data/raw.
TINY_SHA256 = "2057a86d5294bd2d1f90a382f51c65ead0d19ad5acc8efdf62da8c682cb1d4cd"
TINY = dict(speakers=2, takes=2, noise_seconds=1.5, seed=7, progress=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("embedded") / "dataset"
    generate_dataset(root, **TINY)
    return root


def test_layout_and_format(tiny):
    folders = sorted(p.name for p in tiny.iterdir())
    assert folders == sorted([*ALL_WORDS, BACKGROUND_NOISE_DIR])
    for word in ALL_WORDS:
        names = sorted(p.name for p in (tiny / word).iterdir())
        assert len(names) == 4
        assert all(re.fullmatch(r"[0-9a-f]{8}_nohash_[01]\.wav", n) for n in names), names
        assert len({n.split("_nohash_")[0] for n in names}) == 2  # two speakers
    for clip in (tiny / "yes").iterdir():
        info = read_wav_info(clip)
        assert (info.sample_rate, info.channels, info.bits_per_sample, info.num_frames) == (
            16000,
            1,
            16,
            16000,
        )
    noises = sorted(p.name for p in (tiny / BACKGROUND_NOISE_DIR).iterdir())
    assert noises == sorted(f"{n}.wav" for n in NOISE_NAMES)
    for noise in (tiny / BACKGROUND_NOISE_DIR).iterdir():
        samples = read_wav(noise, 16000)
        assert len(samples) == 24000 and samples.std() > 0.01


def test_clips_hold_a_word_at_varied_offsets_over_a_quiet_floor(tiny):
    onsets = []
    for clip in sorted(tiny.glob("*/*_nohash_*.wav")):
        samples = read_wav(clip, 16000)
        loud = np.flatnonzero(np.abs(samples) > 0.5 * np.abs(samples).max())
        assert np.abs(samples).max() > 0.05
        assert np.abs(samples[:80]).max() < 0.05 or np.abs(samples[-80:]).max() < 0.05
        onsets.append(loud[0])
    assert np.std(onsets) > 1000  # not all words at the same place


def test_position_puts_the_words_where_it_says(tmp_path):
    def onsets(position):
        root = tmp_path / str(position)
        generate_dataset(root, **{**TINY, "takes": 1}, unknown_words=["yes"], position=position)
        starts = []
        for clip in sorted(root.glob("yes/*.wav")):
            loud = np.flatnonzero(np.abs(read_wav(clip, 16000)) > 0.01)
            starts.append((loud[0], 16000 - 1 - loud[-1]))  # room before and after the word
        return np.asarray(starts)

    first, last = onsets([0, 0]), onsets([1, 1])
    assert first[:, 0].max() < 480 and first[:, 1].min() > 4000  # at the start, room after
    assert last[:, 1].max() < 480 and last[:, 0].min() > 4000  # ending at the end


def test_same_params_give_byte_identical_files(tiny, tmp_path):
    again = tmp_path / "again"
    generate_dataset(again, speakers=2, takes=2, noise_seconds=1.5, seed=7, progress=False)
    assert file_bytes(again) == file_bytes(tiny)


def test_another_seed_gives_other_speakers_and_audio(tiny, tmp_path):
    other = tmp_path / "other"
    generate_dataset(
        other, speakers=2, takes=2, noise_seconds=1.5, seed=8, unknown_words=["yes"], progress=False
    )
    assert {p.name for p in (other / "yes").iterdir()}.isdisjoint(
        p.name for p in (tiny / "yes").iterdir()
    )
    assert (other / BACKGROUND_NOISE_DIR / "white_noise.wav").read_bytes() != (
        tiny / BACKGROUND_NOISE_DIR / "white_noise.wav"
    ).read_bytes()


def test_variants_accents_and_pitch_really_change_the_voice():
    # Each request runs as the first utterance of a fresh espeak-ng, so equal inputs give equal
    # audio; a voice name espeak-ng cannot find silently falls back to the default voice.
    def first(voice, pitch=50):
        return synthesize_fresh([("seven", voice, 130, pitch, 50)])[0]

    base = first("en")
    assert np.array_equal(first("en"), base)
    assert np.array_equal(first("en+no_such_variant"), base)  # the failure mode we guard against
    for voice in ("en+m3", "en+f2", "en-us", "en-gb-scotland"):
        assert not np.array_equal(first(voice), base), voice
    assert not np.array_equal(first("en", pitch=80), base)


def test_every_variant_name_exists_in_the_espeak_data():
    import espeakng_loader

    variant_dir = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    missing = [v for v in VARIANTS if not (variant_dir / v).is_file()]
    assert not missing, f"not in {variant_dir}: {missing}"


def test_speaker_plan_covers_the_grid():
    speakers = plan_speakers(48, seed=20171)
    assert len({s.id for s in speakers}) == 48
    assert all(re.fullmatch(r"[0-9a-f]{8}", s.id) for s in speakers)
    assert len({s.voice for s in speakers}) == 48
    assert len({s.voice.split("+")[0] for s in speakers}) == len(ACCENTS)
    assert all(RATE_RANGE[0] <= s.rate <= RATE_RANGE[1] for s in speakers)
    assert plan_speakers(48, seed=20171) == speakers
    assert plan_speakers(5, seed=20171) == speakers[:5]  # more speakers keep the first ones


def test_trim_silence_keeps_the_loud_part():
    rate = 16000
    signal = np.zeros(rate, np.float32)
    signal[6000:9000] = 0.5 * np.sin(np.arange(3000) * 0.3)
    trimmed = trim_silence(signal, rate)
    assert 3000 <= len(trimmed) <= 3000 + 4 * rate // 100 + 2 * rate // 100
    assert np.abs(trimmed).max() == pytest.approx(0.5, abs=0.01)
    assert len(trim_silence(np.zeros(rate, np.float32), rate)) == 0


def test_default_parameters_generate_the_bytes_they_always_did(tiny, tmp_path):
    assert _digest(tiny) == TINY_SHA256
    # Every variety factor spelled out at its default (effects off) is the same as not naming it.
    defaults = EmbeddedConfig()
    spelled = tmp_path / "spelled"
    generate_dataset(
        spelled,
        EmbeddedConfig(**{**defaults.to_dict(), "reverb_rt60_s": [0.3, 2.0]}),
        wanted_words=["yes", "no"],  # wanted words come first: the default order is kept
        reverb_fraction=0,
        band_limit_fraction=0,
        position=[0, 1],
        language="en",
        **TINY,
    )
    assert _digest(spelled) == TINY_SHA256


def test_phrases_and_other_unknown_words(tmp_path):
    root = tmp_path / "phrases"
    facts = generate_dataset(
        root,
        wanted_words=["lights on", "Hey Nova"],
        unknown_words=["cat", "lights on"],  # a wanted word listed again is spoken once
        speakers=2,
        takes=1,
        noise_seconds=1.5,
        seed=3,
        progress=False,
    )
    folders = sorted(p.name for p in root.iterdir())
    assert folders == [BACKGROUND_NOISE_DIR, "cat", "hey_nova", "lights_on"]
    assert facts["clips"] == 6

    # A phrase is spoken as words: longer than the single word "cat" of the same speakers.
    def spoken(word):
        samples = [read_wav(p, 16000) for p in sorted((root / word).iterdir())]
        return sum(len(trim_silence(x - np.median(x), 16000, -30)) for x in samples)

    assert spoken("lights_on") > spoken("cat") and spoken("hey_nova") > spoken("cat")


def test_another_language_speaks_with_its_own_voices(tmp_path):
    assert {"de", "es", "en", "en-us"} <= set(available_languages())
    assert accents_for("en") == ACCENTS and accents_for("es") == ("es", "es-419")
    root = tmp_path / "de"
    facts = generate_dataset(
        root,
        wanted_words=["hallo"],
        unknown_words=["tschüss"],
        language="de",
        speakers=2,
        takes=1,
        noise_seconds=1.5,
        seed=3,
        progress=False,
    )
    assert sorted(p.name for p in root.iterdir()) == [BACKGROUND_NOISE_DIR, "hallo", "tschüss"]
    assert all(s["voice"].startswith("de+") for s in facts["speakers"])
    german, english = (
        synthesize_fresh([("hallo", "de", 130, 50, 50)]),
        synthesize_fresh([("hallo", "en", 130, 50, 50)]),
    )
    assert not np.array_equal(german[0], english[0])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(language="xx"), "data.embedded.language 'xx' is not an espeak-ng language"),
        (dict(variants=["m1", "nobody"]), "data.embedded.variants: 'nobody' is not"),
        (dict(wanted_words=["yes", "Yes"]), "the word 'Yes' is listed twice"),
        (dict(wanted_words=["_silence_"]), "the word '_silence_' collides with the reserved"),
        (dict(wanted_words=[""]), "the word '' is empty"),
        (dict(wanted_words=["..."]), "the word '...' holds '.'"),
        (dict(unknown_words=["cat", "cat"]), "data.embedded.unknown_words: the word 'cat' is"),
    ],
)
def test_bad_input_is_one_line_naming_it_and_generates_nothing(tmp_path, settings, message):
    root = tmp_path / "bad"
    with pytest.raises(KwsError, match=re.escape(message)) as error:
        generate_dataset(root, speakers=1, takes=1, noise_seconds=1.5, seed=1, **settings)
    assert "\n" not in str(error.value)
    assert not root.exists()


def test_a_word_that_comes_out_silent_is_refused_before_generating():
    def speaks_silence_for_nova(requests, seed):
        return [np.zeros(100 if text == "hey nova" else 0, np.float32) for text, *_ in requests]

    with pytest.raises(EspeakError, match="the word 'hey nova' synthesizes to silence"):
        preflight(["hey_nova", "cat"], EmbeddedConfig(), speaks_silence_for_nova)
    preflight(["hey_nova"], EmbeddedConfig())  # the real espeak-ng says it


def test_generated_rooms_decay_by_their_rt60():
    rate = 16000
    response = room_response(0.5, np.random.default_rng(0), rate)
    assert response[0] == 1.0 and 0.5 * rate <= len(response) <= 0.52 * rate
    tail = response[1:]
    early, late = tail[: rate // 20], tail[-rate // 20 :]
    decay_db = 10 * np.log10(np.mean(early**2) / np.mean(late**2))
    assert 45 < decay_db < 65  # 60 dB over the RT60, measured between its first and last 50 ms


def test_band_limits_remove_what_a_phone_or_a_far_microphone_would_not_pass():
    rate = 16000
    noise = np.random.default_rng(1).normal(0, 0.1, rate).astype(np.float32)

    def band_db(x, low, high):
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(len(x), 1 / rate)
        return 10 * np.log10(spectrum[(freqs >= low) & (freqs < high)].mean())

    phone = band_limit(noise, "phone", np.random.default_rng(2), rate)
    far = band_limit(noise, "far", np.random.default_rng(2), rate)
    for out in (phone, far):  # level kept: an effect does not change the drawn peak
        assert np.abs(out).max() == pytest.approx(np.abs(noise).max(), rel=1e-5)
    assert band_db(phone, 1000, 2000) - band_db(phone, 6000, 8000) > 30
    assert band_db(phone, 1000, 2000) - band_db(phone, 0, 100) > 20
    assert band_db(far, 500, 1500) - band_db(far, 6500, 8000) > 30
    wet = reverberate(noise, 0.4, np.random.default_rng(3), rate)
    assert len(wet) == len(noise) and not np.allclose(wet, noise)


def test_rooms_and_band_limits_are_seeded_and_opt_in(tmp_path):
    words = dict(unknown_words=["yes", "cat"])
    effects = dict(reverb_fraction=0.5, band_limit_fraction=0.5)
    plain, first, second = tmp_path / "plain", tmp_path / "a", tmp_path / "b"
    generate_dataset(plain, **TINY, **words)
    facts = generate_dataset(first, **TINY, **words, **effects)
    generate_dataset(second, **TINY, **words, **effects)
    assert file_bytes(first) == file_bytes(second)
    reverberated, band_limited = facts["reverberated"], facts["band_limited"]
    assert 0 < reverberated < 8 and 0 < band_limited < 8
    # Exactly the clips given an effect differ from the plain set: the effects draw apart from
    # the speech, the level and the placement.
    dry = file_bytes(plain)
    changed = [name for name, data in file_bytes(first).items() if data != dry[name]]
    assert all("_nohash_" in name for name in changed)
    assert max(reverberated, band_limited) <= len(changed) <= reverberated + band_limited
