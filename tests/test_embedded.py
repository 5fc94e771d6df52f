"""The embedded espeak-ng data set: layout, format, determinism and real voice variety."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.audio import read_wav, read_wav_info
from pipeline.core.labels import ALL_WORDS, BACKGROUND_NOISE_DIR
from pipeline.data.acquire.embedded import (
    ACCENTS,
    NOISE_NAMES,
    RATE_RANGE,
    VARIANTS,
    generate_dataset,
    plan_speakers,
    synthesize_fresh,
    trim_silence,
)

pytest.importorskip("espeakng_loader")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("embedded") / "dataset"
    generate_dataset(root, speakers=2, takes=2, noise_seconds=1.5, seed=7, progress=False)
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


def test_same_params_give_byte_identical_files(tiny, tmp_path):
    again = tmp_path / "again"
    generate_dataset(again, speakers=2, takes=2, noise_seconds=1.5, seed=7, progress=False)
    assert _snapshot(again) == _snapshot(tiny)


def test_another_seed_gives_other_speakers_and_audio(tiny, tmp_path):
    other = tmp_path / "other"
    generate_dataset(
        other, speakers=2, takes=2, noise_seconds=1.5, seed=8, words=("yes",), progress=False
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
