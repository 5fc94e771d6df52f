"""SVOX Pico speakers in the embedded data set (data.embedded.pico_speakers)."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.audio import read_wav
from pipeline.core.errors import KwsError
from pipeline.core.labels import BACKGROUND_NOISE_DIR
from pipeline.data.acquire import pico
from pipeline.data.acquire.embedded import (
    generate_dataset,
    plan_pico_speakers,
    synthesize_pico_fresh,
    trim_silence,
)
from tests.conftest import file_bytes, median_frequency

pytest.importorskip("espeakng_loader")
pytest.importorskip("ttspico")

SMALL = dict(speakers=2, takes=1, noise_seconds=1.5, seed=7, progress=False)
WORDS = dict(unknown_words=["yes", "cat"])


@pytest.fixture(scope="module")
def with_pico(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("pico") / "dataset"
    return root, generate_dataset(root, **SMALL, **WORDS, pico_speakers=3)


def test_pico_speakers_add_their_own_clips_and_leave_the_espeak_ones_as_they_were(
    with_pico, tmp_path
):
    root, facts = with_pico
    plain = tmp_path / "plain"
    plain_facts = generate_dataset(plain, **SMALL, **WORDS)
    picos = facts["pico_speakers"]
    assert [s["voice"] for s in picos] == ["en-US", "en-GB", "en-US"]
    assert facts["clips"] == plain_facts["clips"] + 3 * 2
    assert "SVOX Pico" in facts["generator"] and "pico_speakers" not in plain_facts
    ids = {s["id"] for s in picos}
    assert len(ids) == 3 and ids.isdisjoint(s["id"] for s in facts["speakers"])
    both, dry = file_bytes(root), file_bytes(plain)
    added = sorted(set(both) - set(dry))
    assert added == sorted(f"{w}/{i}_nohash_0.wav" for w in ("cat", "yes") for i in ids)
    assert all(both[name] == data for name, data in dry.items())  # espeak-ng's clips and noise
    for name in added:
        samples = read_wav(root / name, 16000)
        assert len(samples) == 16000 and np.abs(samples).max() > 0.05


def test_same_params_give_byte_identical_pico_clips(with_pico, tmp_path):
    root, _ = with_pico
    again = tmp_path / "again"
    generate_dataset(again, **SMALL, **WORDS, pico_speakers=3)
    assert file_bytes(again) == file_bytes(root)


def test_the_vocal_tract_scale_moves_the_formants_and_keeps_pitch_and_rate():
    from pipeline.data.acquire.embedded import _resample

    settings = [(0.8, 0.8, 0.8), (1.25, 1.25, 1.25), (0.8, 1.0, 1.0), (1.25, 1.0, 1.0)]
    speakers = [pico.PicoSpeaker("x", "en-US", scale, 1.0, 1.0) for scale, _, _ in settings]
    raw = synthesize_pico_fresh(
        [("seven", sp, pitch, rate) for sp, (_, pitch, rate) in zip(speakers, settings)]
    )
    spoken = [
        trim_silence(_resample(x, pico.Pico.sample_rate(sp), 16000), 16000)
        for x, sp in zip(raw, speakers)
    ]

    def pitch_hz(x):  # autocorrelation over the loudest 50 ms
        middle = int(np.argmax(np.convolve(x**2, np.ones(800), "same")))
        part = x[middle - 400 : middle + 400]
        correlation = np.correlate(part, part, "full")[len(part) - 1 :]
        return 16000 / (np.argmax(correlation[40:320]) + 40)

    # The same Pico settings read at two rates: the whole spectrum moves by the scales' ratio.
    long_tract, short_tract = spoken[0], spoken[1]
    assert median_frequency(short_tract) / median_frequency(long_tract) > 1.15
    assert 1.4 < pitch_hz(short_tract) / pitch_hz(long_tract) < 1.75
    # The speaker's own pitch and rate are compensated: the formants move, not the voice's pitch
    # or the length of the word.
    long_tract, short_tract = spoken[2], spoken[3]
    assert abs(pitch_hz(short_tract) / pitch_hz(long_tract) - 1) < 0.1
    assert abs(len(short_tract) / len(long_tract) - 1) < 0.2


def test_speaker_plan_draws_from_the_ranges_in_turn_over_the_voices():
    speakers = plan_pico_speakers(
        6, 5, ("en-US", "en-GB"), (0.8, 1.0), (0.6, 1.2), (0.9, 1.1), taken={"x"}
    )
    assert [s.voice for s in speakers] == ["en-US", "en-GB"] * 3
    assert all(0.8 <= s.vocal_tract <= 1.0 and 0.6 <= s.pitch <= 1.2 for s in speakers)
    assert all(re.fullmatch(r"[0-9a-f]{8}", s.id) for s in speakers)
    assert len({s.vocal_tract for s in speakers}) == 6
    assert plan_pico_speakers(6, 5, ("en-US", "en-GB"), (0.8, 1.0), (0.6, 1.2), (0.9, 1.1)) == (
        speakers
    )
    assert plan_pico_speakers(6, 5, (), (0.8, 1.0), (0.6, 1.2), (0.9, 1.1)) == []


def test_a_language_without_a_pico_voice_leaves_them_out_with_a_warning(tmp_path, caplog):
    root = tmp_path / "nl"
    with caplog.at_level(logging.WARNING):
        facts = generate_dataset(
            root, **SMALL, wanted_words=["hallo"], unknown_words=["fiets"], language="nl",
            pico_speakers=4,
        )  # fmt: skip
    assert "pico_speakers" not in facts and facts["clips"] == 2 * 2
    assert "SVOX Pico has no voice for language 'nl'" in caplog.text
    assert sorted(p.name for p in root.iterdir()) == [BACKGROUND_NOISE_DIR, "fiets", "hallo"]


def test_pico_refuses_to_start_beside_tensorflow(monkeypatch):
    # TensorFlow's rdft would replace Pico's own (a crash): a clear error instead.
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow", object()))
    with pytest.raises(pico.PicoError, match="cannot run in a process that has loaded TensorF"):
        pico.Pico()


def test_a_missing_package_is_one_line_and_generates_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ttspico", None)  # import ttspico raises ImportError
    root = tmp_path / "bad"
    with pytest.raises(KwsError, match="needs SVOX Pico: install the ttspico package") as error:
        generate_dataset(root, **SMALL, **WORDS, pico_speakers=1)
    assert "\n" not in str(error.value) and "pico_speakers: 0" in str(error.value)
    assert not root.exists()
