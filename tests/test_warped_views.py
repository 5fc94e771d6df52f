"""The warped-views bench (bench/research/warped_views.py): a view sounds f times higher and keeps
the clip's length, the views' mean is what the model scores, and a view's recording windows are
matched to the original's by their centres."""

from __future__ import annotations

import numpy as np
import pytest

from bench.research.warped_views import (
    WarpedViews,
    aligned,
    at_threshold,
    best_within_budget,
    main,
    warp,
)
from pipeline.streaming.scores import StreamScores


def _peak_hz(x, rate=16000):
    return np.fft.rfftfreq(len(x), 1 / rate)[np.abs(np.fft.rfft(x)).argmax()]


def test_a_view_sounds_higher_and_keeps_the_clip_length():
    rate = 16000
    tone = np.sin(2 * np.pi * 1000 * np.arange(rate) / rate).astype(np.float32)
    for factor in (0.9, 1.1):
        view = warp(tone, factor, rate)
        assert len(view) == rate
        assert _peak_hz(view) == pytest.approx(1000 * factor, abs=3)
        assert len(warp(tone, factor)) == pytest.approx(rate / factor, abs=2)
    clips = np.stack([tone, 0.5 * tone])  # a batch: each clip its own, the lengths kept
    views = warp(clips, 1.1, rate)
    assert views.shape == (2, rate) and np.allclose(views[1], 0.5 * views[0], atol=1e-5)
    assert np.array_equal(warp(tone, 1.0, rate), tone)


def test_the_views_mean_is_what_is_scored():
    class Pitch:  # scores [1, 0] for a low clip, [0, 1] for a high one
        labels, sample_rate, desired_samples = ["low", "high"], 16000, 16000

        def predict_audio(self, audio):
            high = np.array([_peak_hz(a) > 1000 for a in audio], np.float32)
            return np.stack([1 - high, high], axis=1)

    tone = np.sin(2 * np.pi * 980 * np.arange(16000) / 16000).astype(np.float32)
    scores = WarpedViews(Pitch(), [0.9, 1.0, 1.1]).predict_audio(tone[None])
    assert scores == pytest.approx(np.array([[2 / 3, 1 / 3]]))


def test_a_views_windows_are_matched_by_their_centres():
    # A view at 1.25 runs 1.25 times faster: its window at t covers the original's (t + 500) * 1.25.
    view = StreamScores(np.arange(0, 8000, 80.0), np.arange(100.0)[:, None], True, 0.0)
    times = np.arange(0, 9000, 80.0)
    matched = aligned(view, 1.25, times, 1000.0)
    centres = (view.times_ms + 500) * 1.25
    for t, score in zip(times, matched.scores[:, 0]):
        assert score == np.abs(centres - (t + 500)).argmin()
    assert np.array_equal(matched.times_ms, times)


def test_best_within_budget_and_bad_views():
    rows = {0.5: (90, 100, 20, 3600.0), 0.7: (80, 100, 5, 3600.0), 0.9: (60, 100, 0, 3600.0)}
    assert best_within_budget(rows) == (0.5, 0.9, 20.0)  # the most correct within 60 per hour
    rows[0.5] = (90, 100, 70, 3600.0)  # over the budget: the next best
    assert best_within_budget(rows) == (0.7, 0.8, 5.0)
    assert best_within_budget({0.5: (90, 100, 70, 3600.0)}) is None
    # A tie in words correct goes to fewer false alarms, as dag_operating_point picks.
    assert best_within_budget({0.5: (80, 100, 30, 3600.0), 0.6: (80, 100, 10, 3600.0)}) == (
        0.6,
        0.8,
        10.0,
    )
    assert at_threshold(rows, 0.9) == (0.6, 0.0)
    assert at_threshold({0.5: (45, 50, 3, 1800.0)}, 0.5) == (0.9, 6.0)
    with pytest.raises(SystemExit, match="each factor must be within"):
        main(["--views", "0.2", "1.0"])
    with pytest.raises(SystemExit, match="--validation picks thresholds for --streams"):
        main(["--validation", "2"])
