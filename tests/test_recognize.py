"""RecognizeCommands and streaming scoring: one test per rule of the original."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.core.errors import StageError
from pipeline.streaming.recognize import (
    RecognizeCommands,
    decode,
    read_ground_truth,
    score_detections,
    window_averages,
)

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def onehot(label, high=0.9):
    """Scores with ``high`` on ``label`` and the rest spread evenly."""
    scores = np.full(len(LABELS), (1 - high) / (len(LABELS) - 1))
    scores[LABELS.index(label)] = high
    return scores


def make(window=100, threshold=0.5, suppression=200, minimum=3):
    return RecognizeCommands(LABELS, window, threshold, suppression, minimum)


def feed(rc, items):
    """Feed (time, label) pairs; return the results.

    Also checks that the vectorized decoder finds the same new non-silence commands.
    """
    results = [rc.process_latest_result(onehot(label), time) for time, label in items]
    times = [time for time, _ in items]
    averages = window_averages(
        times,
        [onehot(label) for _, label in items],
        rc.average_window_duration_ms,
        rc.minimum_count,
    )
    fast = decode(LABELS, averages, rc.detection_threshold, rc.suppression_ms)
    slow = [
        (r.found_command, t, r.score)
        for t, r in zip(times, results)
        if r.is_new_command and r.found_command != "_silence_"
    ]
    assert fast == slow
    return results


def test_wrong_number_of_scores_is_rejected():
    with pytest.raises(ValueError, match="4 scores"):
        make().process_latest_result(np.ones(3) / 3, 0)


def test_result_older_than_newest_is_rejected():
    rc = make(window=1000)
    feed(rc, [(0, "yes"), (100, "yes")])
    # The original compared with the oldest result (0 ms) and would accept 50 ms.
    with pytest.raises(ValueError, match="increasing time order"):
        rc.process_latest_result(onehot("yes"), 50)
    rc.process_latest_result(onehot("yes"), 100)  # an equal time is allowed


def test_too_few_results_returns_previous_label_with_zero_score():
    rc = make(window=100, minimum=3)
    first, second = feed(rc, [(0, "yes"), (30, "yes")])
    for result in (first, second):
        assert (result.found_command, result.score, result.is_new_command) == (
            "_silence_",
            0.0,
            False,
        )
    third = rc.process_latest_result(onehot("yes"), 60)
    assert third.found_command == "yes" and third.is_new_command
    assert third.score == pytest.approx(0.9)


def test_window_spanning_less_than_a_quarter_bails():
    rc = make(window=400, minimum=1)
    # Three results within 90 ms < 400 / 4: not enough evidence yet.
    results = feed(rc, [(0, "yes"), (45, "yes"), (90, "yes")])
    assert all(r.score == 0.0 and not r.is_new_command for r in results)
    assert rc.process_latest_result(onehot("yes"), 100).is_new_command  # span 100 == a quarter


def test_bail_reports_previous_top_label():
    rc = make(window=100, minimum=2, suppression=0)
    feed(rc, [(0, "yes"), (30, "yes")])  # "yes" becomes the top label at 30 ms
    result = rc.process_latest_result(onehot("no"), 1000)  # everything older is pruned: 1 result
    assert (result.found_command, result.score, result.is_new_command) == ("yes", 0.0, False)


def test_old_results_are_dropped_from_the_average():
    rc = make(window=100, minimum=1, threshold=0.0, suppression=0)
    feed(rc, [(0, "yes"), (50, "yes"), (100, "yes")])
    result = rc.process_latest_result(onehot("no"), 150)  # keeps 50, 100, 150: yes, yes, no
    assert result.found_command == "yes"
    assert result.score == pytest.approx((0.9 + 0.9 + 0.1 / 3) / 3)
    result = rc.process_latest_result(onehot("no"), 201)  # keeps 150 and 201: no, no
    assert result.found_command == "no"
    assert result.score == pytest.approx(0.9)


def test_score_must_exceed_threshold():
    # 0.75 averages exactly, so the comparison with the threshold is exact.
    items = [(0, "yes"), (30, "yes"), (60, "yes")]
    rc = make(window=60, minimum=1, threshold=0.75)
    results = [rc.process_latest_result(onehot(label, 0.75), t) for t, label in items]
    assert results[-1].found_command == "yes" and results[-1].score == 0.75
    assert not any(r.is_new_command for r in results)  # 0.75 is not > 0.75
    rc = make(window=60, minimum=1, threshold=0.74)
    results = [rc.process_latest_result(onehot(label, 0.75), t) for t, label in items]
    assert [r.is_new_command for r in results] == [False, True, False]


def test_same_label_again_is_not_new():
    rc = make(window=60, minimum=1, suppression=0)
    results = feed(rc, [(t, "yes") for t in range(0, 3000, 30)])
    assert sum(r.is_new_command for r in results) == 1
    assert results[-1].found_command == "yes" and results[-1].score == pytest.approx(0.9)


def test_suppression_blocks_a_different_label_too_soon():
    rc = make(window=60, minimum=1, suppression=200)
    items = [(0, "yes"), (30, "yes"), (200, "no"), (229, "no"), (230, "no"), (231, "no")]
    results = feed(rc, items)
    assert [r.is_new_command for r in results] == [False, True, False, False, False, True]
    # At 229 and 230 ms "no" is the top label but only 199 / 200 ms after "yes": the rule is strict.
    assert results[4].found_command == "no" and results[4].score == pytest.approx(0.9)


def test_after_silence_there_is_no_suppression():
    rc = make(window=60, minimum=1, suppression=100)
    items = [
        (0, "yes"),
        (30, "yes"),
        (200, "_silence_"),
        (230, "_silence_"),
        (260, "no"),
        (290, "no"),
    ]
    results = feed(rc, items)
    # Silence becomes the top label at 230 ms; "no" fires at 290 ms, only 60 ms later.
    assert [r.is_new_command for r in results] == [False, True, False, True, False, True]
    assert results[3].found_command == "_silence_" and results[5].found_command == "no"


def test_reset_forgets_state():
    rc = make(window=60, minimum=1)
    feed(rc, [(0, "yes"), (30, "yes")])
    rc.reset()
    assert rc.process_latest_result(onehot("yes"), 0).score == 0.0  # window too short again


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorized_decode_equals_the_class(seed):
    rng = np.random.default_rng(seed)
    steps = 400
    times = np.cumsum(rng.integers(0, 60, steps))
    # Runs of one dominant label with noise, so that detections happen.
    dominant = np.repeat(rng.integers(0, len(LABELS), steps // 20 + 1), 20)[:steps]
    logits = rng.normal(0, 1, (steps, len(LABELS)))
    logits[np.arange(steps), dominant] += 3
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    found = {}
    for window, minimum, threshold, suppression, margin, repeats in [
        (500, 3, 0.6, 300, 0.0, False),
        (200, 1, 0.3, 0, 0.0, False),
        (90, 4, 0.8, 1500, 0.0, False),
        (200, 1, 0.3, 0, 0.5, False),
        (500, 3, 0.4, 300, 0.3, False),
        (500, 3, 0.6, 300, 0.0, True),
        (200, 1, 0.3, 0, 0.5, True),
        (90, 4, 0.8, 150, 0.0, True),
    ]:
        rc = RecognizeCommands(LABELS, window, threshold, suppression, minimum, margin, repeats)
        expected = []
        for time, row in zip(times.tolist(), scores):
            r = rc.process_latest_result(row, time)
            if r.is_new_command and r.found_command != "_silence_":
                expected.append((r.found_command, time, r.score))
        averages = window_averages(times, scores, window, minimum)
        got = decode(LABELS, averages, threshold, suppression, margin, repeats)
        assert got == expected
        assert len(expected) > 3
        found[(window, threshold, margin, repeats)] = expected
    # The margin rule takes detections away (and, with a different previous label, may add one).
    assert found[(200, 0.3, 0.5, False)] != found[(200, 0.3, 0.0, False)]


def test_a_word_said_twice_is_reported_twice_with_repeat_commands():
    """ "yes", a quiet gap no label is confident of (no _silence_ command), "yes" again: the
    original reports one command; repeat_commands two, and still one for a single long "yes"
    whose score never falls, or a second "yes" within the suppression time."""
    unsure = np.full(len(LABELS), 1 / len(LABELS))
    twice = [(t, onehot("yes")) for t in range(0, 300, 30)]
    twice += [(t, unsure) for t in range(300, 900, 30)]
    twice += [(t, onehot("yes")) for t in range(900, 1200, 30)]
    once = [(t, onehot("yes")) for t in range(0, 1200, 30)]
    for items, suppression, repeats, expected in [
        (twice, 200, False, [30]),
        (twice, 200, True, [30, 930]),
        (once, 200, True, [30]),
        (twice, 1000, True, [30, 1050]),  # the second "yes" waits out the suppression
        (twice, 1200, True, [30]),
    ]:
        rc = RecognizeCommands(LABELS, 60, 0.5, suppression, 1, 0.0, repeats)
        results = [rc.process_latest_result(scores, t) for t, scores in items]
        times = [t for (t, _), r in zip(items, results) if r.is_new_command]
        assert times == expected, (suppression, repeats)
        averages = window_averages([t for t, _ in items], [s for _, s in items], 60, 1)
        fast = decode(LABELS, averages, 0.5, suppression, 0.0, repeats)
        assert [t for _, t, _ in fast] == times


def test_window_averages_keep_every_labels_mean():
    rng = np.random.default_rng(5)
    times = np.cumsum(rng.integers(20, 60, 80))
    scores = rng.random((80, len(LABELS)))
    averages = window_averages(times, scores, 300, 2)
    for step in range(80):
        inside = (times >= times[step] - 300) & (times <= times[step])
        np.testing.assert_allclose(averages.means[step], scores[inside].mean(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(np.argmax(averages.means, axis=1), averages.top_index)
    np.testing.assert_array_equal(averages.means.max(axis=1), averages.top_score)


def test_margin_blocks_an_ambiguous_average():
    """minimum_margin: "no" at 0.55 against "yes" at 0.40 passes a 0.5 threshold but not a margin
    of 0.2; a clear 0.9 passes both. 0 keeps the original rule."""
    ambiguous = np.array([0.0, 0.05, 0.40, 0.55])
    items = [(t, ambiguous) for t in (0, 30, 60)] + [(t, onehot("yes")) for t in range(90, 400, 30)]
    for margin, expected in [(0.0, ["no"]), (0.1, ["no"]), (0.2, ["yes"])]:
        rc = RecognizeCommands(LABELS, 60, 0.5, 0, 1, margin)
        results = [rc.process_latest_result(scores, t) for t, scores in items]
        new = [r.found_command for r in results if r.is_new_command]
        assert new[0] == expected[0]
        averages = window_averages([t for t, _ in items], [s for _, s in items], 60, 1)
        fast = decode(LABELS, averages, 0.5, 0, margin)
        assert [label for label, *_ in fast] == new
        assert averages.margin[2] == pytest.approx(0.15)
    with pytest.raises(ValueError, match="minimum_margin"):
        RecognizeCommands(LABELS, 60, 0.5, 0, 1, 1.5)


# ---------------------------------------------------------------------------------------------
# Scoring


TRUTH = [("yes", 1000), ("no", 4000), ("_unknown_", 7000)]


def test_correct_wrong_and_false_positive():
    found = [("yes", 1200), ("yes", 4100), ("_unknown_", 6500), ("no", 10000)]
    stats = score_detections(TRUTH, found, time_tolerance_ms=750)
    assert stats.outcomes == ["correct", "wrong", "correct", "false_positive"]
    assert (
        stats.ground_truth_words,
        stats.matched,
        stats.correct,
        stats.wrong,
        stats.false_positives,
    ) == (3, 3, 2, 1, 1)
    p = stats.percentages
    assert p["correct_percentage"] == pytest.approx(200 / 3)
    assert p["false_positive_percentage"] == pytest.approx(100 / 3)
    assert stats.summary().startswith("100.0% matched, 66.7% correct, 33.3% wrong")


def test_second_detection_of_the_same_word_is_wrong():
    stats = score_detections(TRUTH, [("yes", 900), ("yes", 1500)], time_tolerance_ms=750)
    assert stats.outcomes == ["correct", "wrong"]
    assert stats.matched == 1  # one ground-truth word matched, counted once


def test_first_entry_in_range_decides():
    truth = [("no", 1000), ("yes", 1500)]
    stats = score_detections(truth, [("yes", 1300)], time_tolerance_ms=750)
    assert stats.outcomes == ["wrong"]  # "no" at 1000 ms is in range first
    assert score_detections(truth, [("yes", 1300)], time_tolerance_ms=250).outcomes == ["correct"]


def test_tolerance_bounds_are_inclusive():
    assert score_detections(TRUTH, [("yes", 1750)], 750).outcomes == ["correct"]
    assert score_detections(TRUTH, [("yes", 1751)], 750).outcomes == ["false_positive"]
    assert score_detections(TRUTH, [("yes", 250)], 750).outcomes == ["correct"]


def test_up_to_time_limits_ground_truth():
    stats = score_detections(TRUTH, [("yes", 1000)], 750, up_to_time_ms=1000)
    assert stats.ground_truth_words == 1
    assert score_detections(TRUTH, [], 750).ground_truth_words == 3


def test_no_ground_truth_gives_zero_percentages():
    stats = score_detections([], [("yes", 5)], 750)
    assert stats.false_positives == 1 and stats.percentages["false_positive_percentage"] == 0.0
    assert stats.summary() == "No ground truth yet, 1 false positives"


def test_read_ground_truth_sorts_and_rounds(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("no, 4000.600000\n\n   \nyes,1000\r\n")
    assert read_ground_truth(path) == [("yes", 1000), ("no", 4001)]


@pytest.mark.parametrize(
    "line, problem",
    [
        ("yes, 1000, 2000", "not `label, time_ms` (3 comma-separated fields)"),
        ("yes\t1000", "not `label, time_ms` (1 comma-separated fields)"),
        ("label,time_ms", "time 'time_ms' is not a number"),
        ("%%$#@ garbage", "not `label, time_ms`"),
        ("yes, soon", "time 'soon' is not a number"),
        ("yes, nan", "must be a finite number"),
        ("yes, -40", "must be a finite number of milliseconds >= 0"),
        (", 1000", "no single-word label"),
        ("two words, 1000", "no single-word label"),
        ("yes\x00\x00, 1000", "binary data"),
    ],
)
def test_each_unreadable_ground_truth_line_is_named(tmp_path, line, problem):
    path = tmp_path / "labels.txt"
    path.write_text(f"no, 500.0\n\n{line}\nyes, 3000.0\n")
    with pytest.raises(StageError) as caught:
        read_ground_truth(path)
    assert str(caught.value).startswith(f"{path}: line 3: ")
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"", "no `label, time_ms` entries"),
        (b"\n  \n\n", "no `label, time_ms` entries"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a text file (byte 0 is not UTF-8)"),
    ],
)
def test_an_empty_or_binary_ground_truth_is_an_error_naming_the_file(tmp_path, data, problem):
    path = tmp_path / "labels.txt"
    path.write_bytes(data)
    with pytest.raises(StageError) as caught:
        read_ground_truth(path)
    assert str(caught.value).startswith(f"{path}: ") and problem in str(caught.value)


def test_infinite_time_is_not_used_for_matching():
    # Guard: a detection at time 0 with a huge tolerance still matches only the first entry.
    stats = score_detections(TRUTH, [("yes", 0)], time_tolerance_ms=math.inf)
    assert stats.outcomes == ["correct"]
