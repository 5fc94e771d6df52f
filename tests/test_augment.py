"""Augmentation: the original's semantics, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.audio import write_wav
from pipeline.core.errors import ParamError, StageError, WavError
from pipeline.data.augment import (
    AugmentConfig,
    augment_clip,
    clip_rng,
    load_background,
    time_shift,
)
from pipeline.data.clip_store import ClipStore
from pipeline.training.spec_augment import spec_augment
from tests.conftest import pack

N = 1600


def _impulse(at=N // 2):
    clip = np.zeros(N, np.float32)
    clip[at] = 0.5
    return clip


def test_time_shift_pads_with_zeros():
    clip = np.arange(1, 11, dtype=np.float32)
    np.testing.assert_array_equal(time_shift(clip, 3), [0, 0, 0, 1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(time_shift(clip, -3), [4, 5, 6, 7, 8, 9, 10, 0, 0, 0])
    np.testing.assert_array_equal(time_shift(clip, 0), clip)
    np.testing.assert_array_equal(time_shift(clip, 20), np.zeros(10))


def test_shift_is_uniform_integer_in_half_open_range():
    shift = 5
    seen = []
    for row in range(400):
        out = augment_clip(_impulse(), False, clip_rng(1, "training", row), [], True, shift)
        seen.append(int(np.flatnonzero(out)[0]) - N // 2)
    assert min(seen) == -shift and max(seen) == shift - 1  # [-shift, shift)
    assert len(set(seen)) == 2 * shift


def test_background_probability_and_volume_range():
    noise = [np.ones(5 * N, np.float32)]
    volumes = []
    for row in range(500):
        out = augment_clip(
            np.zeros(N, np.float32),
            False,
            clip_rng(2, "training", row),
            noise,
            True,
            0,
            background_volume=0.2,
            background_frequency=0.75,
        )
        assert np.ptp(out) == 0  # a constant noise gives a constant added level
        volumes.append(out[0])
    volumes = np.array(volumes)
    assert volumes.min() == 0 and volumes.max() < 0.2
    assert 0.65 < np.mean(volumes > 0) < 0.85


def test_silence_mutes_foreground_and_uses_volume_up_to_one():
    noise = [np.full(5 * N, 0.5, np.float32)]
    loud = np.full(N, 0.9, np.float32)
    levels = [
        augment_clip(loud, True, clip_rng(3, "training", r), noise, True, 100)[0]
        for r in range(200)
    ]
    assert min(levels) >= 0 and max(levels) < 0.5 and max(levels) > 0.4  # 0.5 * U(0, 1)


def test_noise_offset_and_file_are_random():
    ramp = np.linspace(-0.5, 0.5, 10 * N).astype(np.float32)
    outs = {
        augment_clip(
            np.zeros(N, np.float32), True, clip_rng(4, "training", r), [ramp, -ramp], True
        )[10]
        for r in range(20)
    }
    assert len(outs) == 20


def test_output_clipped_to_unit_range():
    noise = [np.full(5 * N, 1.0, np.float32)]
    out = augment_clip(
        np.full(N, 0.95, np.float32),
        False,
        clip_rng(5, "training", 0),
        noise,
        True,
        0,
        background_volume=1.0,
        background_frequency=1.0,
    )
    assert out.max() <= 1.0 and out.dtype == np.float32


def test_seeded_and_copies_differ():
    noise = [np.random.default_rng(0).normal(0, 0.3, 5 * N).astype(np.float32)]
    clip = np.random.default_rng(1).normal(0, 0.1, N).astype(np.float32)
    a = augment_clip(clip, False, clip_rng(7, "training", 3, 0), noise, True, 100, 0.3, 1.0)
    b = augment_clip(clip, False, clip_rng(7, "training", 3, 0), noise, True, 100, 0.3, 1.0)
    c = augment_clip(clip, False, clip_rng(7, "training", 3, 1), noise, True, 100, 0.3, 1.0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_evaluation_mode_leaves_words_alone_and_fixes_silence():
    noise = [np.random.default_rng(0).normal(0, 0.3, 5 * N).astype(np.float32)]
    clip = np.random.default_rng(1).normal(0, 0.1, N).astype(np.float32)
    word = augment_clip(clip, False, clip_rng(8, "validation", 0), noise, False, 100, 0.5, 1.0)
    np.testing.assert_array_equal(word, clip)
    s1 = augment_clip(clip, True, clip_rng(8, "validation", 5), noise, False, 100)
    s2 = augment_clip(clip, True, clip_rng(8, "validation", 5), noise, False, 100)
    s3 = augment_clip(clip, True, clip_rng(8, "testing", 5), noise, False, 100)
    np.testing.assert_array_equal(s1, s2)
    assert np.abs(s1).max() > 0 and not np.array_equal(s1, s3)


def test_load_background(tmp_path):
    noise = tmp_path / "_background_noise_"
    write_wav(noise / "b.wav", np.full(3 * N, 0.25), 16000)
    write_wav(noise / "a.wav", np.full(2 * N, -0.25), 16000)
    write_wav(tmp_path / "yes" / "x_nohash_0.wav", np.full(N, 0.5), 16000)  # a word: not noise
    with ClipStore(pack(tmp_path)) as store:
        noises, names = load_background(store, 16000, N)
        with pytest.raises(StageError, match="clips are at 16000 Hz, features.sample_rate is 8000"):
            load_background(store, 8000, N)
    assert [round(float(n[0]), 2) for n in noises] == [-0.25, 0.25] and names == [
        "a.wav",
        "b.wav",
    ]  # name order
    assert load_background(None, 16000, N) == ([], [])
    write_wav(noise / "c.wav", np.zeros(N), 16000)
    with (
        ClipStore(pack(tmp_path)) as store,
        pytest.raises(WavError, match="_background_noise_/c.wav.*needs more than"),
    ):
        load_background(store, 16000, N)


def test_augment_config_from_params():
    base = {
        "time_shift_ms": 100,
        "background_volume": 0.1,
        "background_frequency": 0.8,
        "copies": 2,
        "foreground_gain_db": [0, 0],
        "seed": 1,
    }
    cfg = AugmentConfig.from_dict(base)
    assert cfg.time_shift_samples(16000) == 1600 and cfg.copies == 2
    with pytest.raises(ParamError, match="background_volume"):
        AugmentConfig.from_dict({**base, "background_volume": 2.0})


@pytest.mark.parametrize(
    "gain, problem",
    [
        ([-20], "exactly two"),
        ([0, -20], "above high"),
        ([-90, 0], "out of range"),
        (["-20", 0], "type str"),
    ],
)
def test_a_bad_foreground_gain_is_named(gain, problem):
    base = {
        "time_shift_ms": 100,
        "background_volume": 0.1,
        "background_frequency": 0.8,
        "copies": 2,
        "seed": 1,
    }
    with pytest.raises(ParamError, match=r"augment\.foreground_gain_db.*" + problem):
        AugmentConfig.from_dict({**base, "foreground_gain_db": gain})


def test_foreground_gain_scales_words_within_its_bounds_and_leaves_silence_alone():
    clip = np.full(N, 0.5, np.float32)
    gains = []
    for row in range(200):
        out = augment_clip(
            clip, False, clip_rng(9, "training", row), [], True, 0, gain_db=(-20, -6)
        )
        gains.append(20 * np.log10(out[0] / 0.5))
    gains = np.array(gains)
    assert gains.min() >= -20 - 1e-4 and gains.max() <= -6 + 1e-4
    assert gains.max() - gains.min() > 10  # drawn, not fixed
    fixed = augment_clip(clip, False, clip_rng(9, "training", 0), [], True, 0, gain_db=(-6, -6))
    assert np.allclose(fixed, 0.5 * 10 ** (-6 / 20))
    evaluation = augment_clip(
        clip, False, clip_rng(9, "validation", 0), [], False, 0, gain_db=(-20, -6)
    )
    assert np.array_equal(evaluation, clip)  # validation/test clips keep their level
    silence = augment_clip(clip, True, clip_rng(9, "training", 0), [], True, 0, gain_db=(-20, -6))
    assert not silence.any()


def test_without_a_gain_range_the_other_draws_are_unchanged():
    """[0, 0] draws nothing: every copy's shift and noise follow the original's draws (shift, noise
    file, offset, frequency, volume), so the features the committed dvc.lock records stay the
    same."""
    rng = np.random.default_rng(0)
    clip = rng.normal(0, 0.1, N).astype(np.float32)
    noise = [
        rng.normal(0, 0.1, 3 * N).astype(np.float32),
        rng.normal(0, 0.2, 3 * N).astype(np.float32),
    ]
    for row in range(20):
        out = augment_clip(
            clip, False, clip_rng(3, "training", row), noise, True, 100, 0.3, 1.0, (0, 0)
        )
        draws = clip_rng(3, "training", row)
        shifted = time_shift(clip, int(draws.integers(-100, 100)))
        chosen = noise[int(draws.integers(len(noise)))]
        offset = int(draws.integers(0, len(chosen) - N))
        assert draws.uniform(0, 1) < 1.0
        expected = np.clip(
            shifted + chosen[offset : offset + N] * np.float32(draws.uniform(0, 0.3)), -1, 1
        )
        assert np.array_equal(out, expected)
        on = augment_clip(
            clip, False, clip_rng(3, "training", row), noise, True, 100, 0.3, 1.0, (-20, 0)
        )
        assert not np.array_equal(on, out)


def test_spec_augment_masks_bands_deterministically():
    x = np.random.default_rng(0).normal(5, 1, (4, 98, 40)).astype(np.float32)
    before = x.copy()
    a = spec_augment(x, np.random.default_rng(1), time_mask_max=10, freq_mask_max=8)
    b = spec_augment(x, np.random.default_rng(1), time_mask_max=10, freq_mask_max=8)
    np.testing.assert_array_equal(x, before)  # input untouched
    np.testing.assert_array_equal(a, b)
    assert a.shape == x.shape
    changed = a != x
    assert changed.any()
    for i in range(4):
        assert np.allclose(a[i][changed[i]], x[i].mean())
        rows = changed[i].all(axis=1).sum()  # fully masked frames
        cols = changed[i].all(axis=0).sum()  # fully masked bins
        assert rows <= 20 and cols <= 16
    np.testing.assert_array_equal(
        spec_augment(x, np.random.default_rng(2), time_mask_max=0, freq_mask_max=0), x
    )
    with pytest.raises(ValueError, match="batch"):
        spec_augment(x[0], np.random.default_rng(0))
