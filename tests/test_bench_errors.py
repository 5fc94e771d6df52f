"""The operating-point bench's error counts (bench/research/dag_operating_point.py): a missed word
is told by what the decoder's averages said there."""

from __future__ import annotations

import numpy as np

from bench.research.dag_operating_point import error_kinds
from pipeline.streaming.recognize import window_averages

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def test_missed_words_are_told_apart_by_the_label_on_top():
    times = np.arange(0, 12000, 80)
    scores = np.tile(np.array([0.9, 0.1, 0.0, 0.0]), (len(times), 1))  # silence everywhere
    near = (times >= 4000) & (times < 4500)
    scores[near] = [
        0.3,
        0.1,
        0.6,
        0.0,
    ]  # "yes" at 4 s: its own label on top, under a high threshold
    far = (times >= 8000) & (times < 8500)
    scores[far] = [0.2, 0.7, 0.0, 0.1]  # "no" at 8 s: the model says _unknown_
    truth = [("no", 1000), ("yes", 4000), ("no", 8000)]  # "no" at 1 s: not heard at all
    kinds = error_kinds(truth, [], 750, window_averages(times, scores, 500, 3), LABELS)
    assert kinds["missed keywords"] == 3
    assert kinds["missed: not heard (_silence_ on top)"] == 1
    assert kinds["missed: own label on top (under the threshold or suppressed)"] == 1
    assert kinds["missed: another label on top"] == 1
    without = error_kinds(truth, [("yes", 4100, 0.6)], 750)
    assert without["missed keywords"] == 2 and not any(k.startswith("missed:") for k in without)
