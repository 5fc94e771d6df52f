"""validate_dataset: each kind of bad clip is named, skipped with a report, or resampled."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from pipeline.core.audio import (
    WavError,
    encode_wav,
    read_wav,
    read_wav_header,
    read_wav_info,
)
from pipeline.data.acquire.validate import ClipFacts, decide, validate_dataset

RATE = 16000


def raw_wav(pcm: bytes, rate=RATE, channels=1, bits=16, fmt_tag=1) -> bytes:
    """A WAV with an arbitrary header, for formats encode_wav does not write."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", len(body)) + body


def tone(seconds=1.0, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def bad_files():
    """name -> (bytes, words expected in the problem text)."""
    good = encode_wav(tone(), RATE)
    return {
        "not_wav": (b"this is not audio at all", "not a WAV"),
        "truncated": (good[: len(good) // 2], "truncated"),
        "eight_bit": (raw_wav(bytes(RATE), bits=8), "8-bit"),
        "stereo": (raw_wav(bytes(RATE * 4), channels=2), "2 channels"),
        "cd_rate": (
            encode_wav(tone(rate=44100), 44100),
            "sample rate 44100 Hz; expected 16000 Hz (data.resample: true",
        ),
        "float": (raw_wav(bytes(RATE * 4), bits=32, fmt_tag=3), "not PCM"),
        "empty": (encode_wav(np.zeros(0, np.float32), RATE), "no audio samples"),
    }


@pytest.mark.parametrize("kind", sorted(bad_files()))
def test_each_problem_is_named_in_error_mode(tiny_dataset, kind):
    data, words = bad_files()[kind]
    bad = tiny_dataset / "yes" / f"{kind}_nohash_0.wav"
    bad.write_bytes(data)
    with pytest.raises(WavError) as info:
        validate_dataset(tiny_dataset, RATE, RATE)
    message = str(info.value)
    assert f"yes/{kind}_nohash_0.wav" in message
    assert words in message
    assert "other file" not in message  # it is the only bad one
    assert bad.exists()  # error mode changes nothing


def test_short_background_is_a_problem(tiny_dataset):
    noise = tiny_dataset / "_background_noise_" / "short.wav"
    noise.write_bytes(encode_wav(tone(0.5), RATE))
    with pytest.raises(WavError, match=r"_background_noise_/short\.wav: background noise of 8000"):
        validate_dataset(tiny_dataset, RATE, RATE)
    # The same length is fine as a word clip (the original pads short clips).
    noise.rename(tiny_dataset / "yes" / "short_nohash_0.wav")
    assert validate_dataset(tiny_dataset, RATE, RATE) == []


def test_clean_dataset_passes_unchanged(tiny_dataset):
    before = {p: p.read_bytes() for p in tiny_dataset.rglob("*.wav")}
    assert validate_dataset(tiny_dataset, RATE, RATE) == []
    assert {p: p.read_bytes() for p in tiny_dataset.rglob("*.wav")} == before


def test_error_counts_the_other_bad_files(tiny_dataset):
    files = bad_files()
    for kind, (data, _) in files.items():
        (tiny_dataset / "no" / f"{kind}_nohash_0.wav").write_bytes(data)
    with pytest.raises(WavError) as info:
        validate_dataset(tiny_dataset, RATE, RATE)
    first = sorted(files)[0]
    assert f"no/{first}_nohash_0.wav" in str(info.value)
    assert f"{len(files) - 1} other file(s)" in str(info.value)
    assert "on_bad_file: skip" in str(info.value)


def test_skip_mode_removes_and_reports_every_bad_file(tiny_dataset):
    good = {p: p.read_bytes() for p in tiny_dataset.rglob("*.wav")}
    files = bad_files()
    for kind, (data, _) in files.items():
        (tiny_dataset / "up" / f"{kind}_nohash_0.wav").write_bytes(data)
    (tiny_dataset / "_background_noise_" / "short.wav").write_bytes(encode_wav(tone(0.2), RATE))
    rows = validate_dataset(tiny_dataset, RATE, RATE, on_bad_file="skip")
    expected = {f"up/{kind}_nohash_0.wav": words for kind, (_, words) in files.items()}
    expected["_background_noise_/short.wav"] = "not longer than one clip"
    assert [path for path, _ in rows] == sorted(expected)
    for path, problem in rows:
        assert expected[path] in problem
        assert not (tiny_dataset / path).exists()
    # Exactly the good clips stay, untouched.
    assert {p: p.read_bytes() for p in tiny_dataset.rglob("*.wav")} == good


def test_resample_mode_converts_other_rates(tiny_dataset):
    clip = tiny_dataset / "down" / "cd_nohash_0.wav"
    clip.write_bytes(encode_wav(tone(rate=44100), 44100))
    noise = tiny_dataset / "_background_noise_" / "cd_noise.wav"
    noise.write_bytes(encode_wav(tone(2.0, rate=8000), 8000))
    assert validate_dataset(tiny_dataset, RATE, RATE, resample=True) == []
    info = read_wav_info(clip)
    assert (info.sample_rate, info.channels, info.bits_per_sample) == (RATE, 1, 16)
    assert abs(info.num_frames - RATE) <= 1
    samples = read_wav(clip, RATE)
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * RATE / len(samples) - 440) < 3  # still the same tone
    assert abs(read_wav_info(noise).num_frames - 2 * RATE) <= 1
    # Other problems are still problems when resampling.
    (tiny_dataset / "down" / "stereo_nohash_0.wav").write_bytes(raw_wav(bytes(64), channels=2))
    with pytest.raises(WavError, match="stereo_nohash_0.wav: 2 channels"):
        validate_dataset(tiny_dataset, RATE, RATE, resample=True)


def test_resample_checks_background_length_after_conversion(tiny_dataset):
    # 0.9 s at 8 kHz is 7,200 samples; after resampling to 16 kHz still shorter than 16,000.
    (tiny_dataset / "_background_noise_" / "n.wav").write_bytes(encode_wav(tone(0.9, 8000), 8000))
    with pytest.raises(WavError, match="n.wav: background noise of 14400 samples"):
        validate_dataset(tiny_dataset, RATE, RATE, resample=True)


def test_header_reader_agrees_with_full_parse(tiny_dataset):
    odd = tiny_dataset / "yes" / "extra_nohash_0.wav"
    data = encode_wav(tone(0.3), RATE)
    # A LIST chunk of odd size (padded) before the data chunk, as some writers produce.
    fmt_end = 12 + 8 + 16
    data = data[:fmt_end] + b"LIST" + struct.pack("<I", 3) + b"abc\0" + data[fmt_end:]
    data = data[:4] + struct.pack("<I", len(data) - 8) + data[8:]
    odd.write_bytes(data)
    # A long junk chunk first puts the fmt and data headers beyond the first read.
    far = encode_wav(tone(0.3), RATE)
    far = far[:12] + b"junk" + struct.pack("<I", 5001) + bytes(5002) + far[12:]
    (tiny_dataset / "no" / "far_nohash_0.wav").write_bytes(far)
    (tiny_dataset / "no" / "farcut_nohash_0.wav").write_bytes(far[:-100])
    with pytest.raises(WavError, match="farcut_nohash_0.wav: truncated: header promises 9600"):
        read_wav_header(tiny_dataset / "no" / "farcut_nohash_0.wav")
    with pytest.raises(WavError, match="farcut_nohash_0.wav: truncated: header promises 9600"):
        read_wav_info(tiny_dataset / "no" / "farcut_nohash_0.wav")
    (tiny_dataset / "no" / "farcut_nohash_0.wav").unlink()
    assert read_wav_header(tiny_dataset / "no" / "far_nohash_0.wav").num_frames == 4800
    for path in sorted(tiny_dataset.rglob("*.wav")):
        assert read_wav_header(path) == read_wav_info(path)


def test_bad_on_bad_file_value(tiny_dataset):
    with pytest.raises(ValueError, match="on_bad_file"):
        validate_dataset(tiny_dataset, RATE, RATE, on_bad_file="ignore")


def test_background_noise_of_exactly_one_clip_is_too_short(tiny_dataset):
    """Augmentation cuts a clip out of the noise at a random offset, so the noise must be longer."""
    (tiny_dataset / "_background_noise_" / "one_clip.wav").write_bytes(encode_wav(tone(1.0), RATE))
    rows = validate_dataset(tiny_dataset, RATE, RATE, on_bad_file="skip")
    assert [(path, "not longer than one clip" in problem) for path, problem in rows] == [
        ("_background_noise_/one_clip.wav", True)
    ]


def test_decide_is_the_policies_alone(tmp_path):
    """The pure step: from the scanned facts alone (the files need not exist), what is skipped,
    converted and kept long under each policy, and which policy refuses the data set."""
    root = tmp_path / "nowhere" / "dataset"
    good = ClipFacts(root / "yes" / "a_nohash_0.wav", frames=RATE)
    slow = ClipFacts(root / "yes" / "b_nohash_0.wav", frames=RATE, changes=("rate",))
    long = ClipFacts(root / "no" / "c_nohash_0.wav", frames=3 * RATE, changes=("rate",))
    noise = ClipFacts(root / "_background_noise_" / "n.wav", frames=5 * RATE)
    bad = ClipFacts(root / "up" / "d_nohash_0.wav", problem="not a WAV file")
    facts = [good, slow, long, noise, bad]

    kept = decide(facts, root, RATE, RATE, on_bad_file="skip")
    assert kept.skip == [(bad.path, "not a WAV file")]
    assert [f.path for f in kept.convert] == [slow.path, long.path]
    assert kept.kept_long == [(long.path, 3 * RATE)]  # noise is never a long clip

    dropped = decide(facts, root, RATE, RATE, on_bad_file="skip", on_long_clip="skip")
    assert dropped.skip == sorted(
        [
            (bad.path, "not a WAV file"),
            (long.path, "3.00 s long, longer than one clip (1000 ms) (data.on_long_clip: skip)"),
        ]
    )
    assert [f.path for f in dropped.convert] == [slow.path] and dropped.kept_long == []

    with pytest.raises(WavError) as info:
        decide(
            facts + [ClipFacts(root / "up" / "e_nohash_0.wav", problem="truncated")],
            root,
            RATE,
            RATE,
        )
    assert str(info.value).startswith("dataset/up/d_nohash_0.wav: not a WAV file (1 other file(s)")
    with pytest.raises(WavError, match=r"dataset/no/c_nohash_0.wav: 3.00 s long.*truncate keeps"):
        decide([good, long], root, RATE, RATE, on_long_clip="error")
    clean = decide([good, noise], root, RATE, RATE)
    assert (clean.skip, clean.convert, clean.kept_long) == ([], [], [])
    assert not (tmp_path / "nowhere").exists()
