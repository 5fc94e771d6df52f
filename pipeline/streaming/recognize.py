"""The original streaming decoder (RecognizeCommands) and streaming accuracy scoring.

A model applied every ``clip_stride_ms`` to a long recording gives a score vector per step.
``RecognizeCommands`` averages them over a short window and reports a command only when the average
is confident, differs from the previous command and is not too soon after it: the rules of the
original recognize_commands.{cc,py}, one for one. ``score_detections`` is the original
accuracy_utils matching of detections to ground-truth words.

Known bug of the original, fixed here: its time-order check compares a new result with the
*oldest* result still in the window (``front()``), so a result older than the newest one could
slip in; this class rejects any result older than the newest one, as the original's message says.

Two options beyond the original, off by default: ``minimum_margin``, a command is new only when
its averaged score exceeds the second-highest averaged score by at least that much (0: the
original rule; a confident but ambiguous average, e.g. "no" against "go", is then not reported);
``repeat_commands``, a word said twice is reported twice. The original never reports a label
twice in a row, so a repeated word counts only when a confident ``_silence_`` (or another label)
came between; with real background noise between words the silence is often not confident. With
the option the same label is new again once its averaged score has fallen to or below the
threshold since it was reported (the word ended; any valid step whose top label differs or whose
top score does not pass counts) and ``suppression_ms`` has passed.

For the threshold sweep, :func:`window_averages` precomputes the averaged scores of every step
(they do not depend on the threshold or the suppression) and :func:`decode` runs only the
threshold-dependent state machine on them, giving the same detections as feeding the class.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.core.errors import StageError
from pipeline.core.labels import SILENCE_LABEL


@dataclass(frozen=True)
class RecognizeResult:
    """What the decoder says after one result: a label, its averaged score, and whether it is
    new."""

    found_command: str
    score: float
    is_new_command: bool


class RecognizeCommands:
    """Smooth per-step model scores over a window and report new commands (the original rules)."""

    def __init__(
        self,
        labels,
        average_window_duration_ms,
        detection_threshold,
        suppression_ms,
        minimum_count=3,
        minimum_margin=0.0,
        repeat_commands=False,
    ):
        self.labels = list(labels)
        if not self.labels:
            raise ValueError("RecognizeCommands needs at least one label")
        if average_window_duration_ms <= 0:
            raise ValueError(
                f"average_window_duration_ms must be > 0, got {average_window_duration_ms}"
            )
        if minimum_count < 1:
            raise ValueError(f"minimum_count must be >= 1, got {minimum_count}")
        if not 0 <= minimum_margin <= 1:
            raise ValueError(f"minimum_margin must be in [0, 1], got {minimum_margin}")
        self.average_window_duration_ms = average_window_duration_ms
        self.detection_threshold = float(detection_threshold)
        self.suppression_ms = suppression_ms
        self.minimum_count = int(minimum_count)
        self.minimum_margin = float(minimum_margin)
        self.repeat_commands = bool(repeat_commands)
        self.reset()

    def reset(self) -> None:
        """Forget all results, as at the start of a new stream."""
        self._results: deque[tuple[float, np.ndarray]] = deque()
        self._previous_top_label = SILENCE_LABEL
        self._previous_top_time = -math.inf
        self._ended = False  # the previous command's score has fallen since it was reported

    def process_latest_result(self, scores, current_time_ms) -> RecognizeResult:
        """Add the scores of the clip starting at ``current_time_ms`` and decide."""
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if scores.shape[0] != len(self.labels):
            raise ValueError(
                f"the results should contain {len(self.labels)} scores (one per label), "
                f"got {scores.shape[0]}"
            )
        if self._results and current_time_ms < self._results[-1][0]:
            raise ValueError(
                f"results must be fed in increasing time order; got {current_time_ms} ms after "
                f"{self._results[-1][0]} ms"
            )
        self._results.append((current_time_ms, scores))
        time_limit = current_time_ms - self.average_window_duration_ms
        while self._results[0][0] < time_limit:
            self._results.popleft()

        how_many = len(self._results)
        span = current_time_ms - self._results[0][0]
        if how_many < self.minimum_count or span < self.average_window_duration_ms / 4:
            return RecognizeResult(self._previous_top_label, 0.0, False)

        average = np.zeros(len(self.labels))
        for _, result in self._results:
            average += result / how_many
        top = int(np.argmax(average))  # the first of equal scores, as the original's stable sort
        second = float(np.partition(average, -2)[-2]) if len(average) > 1 else 0.0
        return self._decide(
            self.labels[top], float(average[top]), current_time_ms, float(average[top]) - second
        )

    def _decide(
        self, label: str, score: float, current_time_ms, margin: float = 1.0
    ) -> RecognizeResult:
        if self._previous_top_label == SILENCE_LABEL or self._previous_top_time == -math.inf:
            time_since_last_top = math.inf
        else:
            time_since_last_top = current_time_ms - self._previous_top_time
        passes = score > self.detection_threshold
        same = label == self._previous_top_label
        if not (passes and same):
            self._ended = True
        is_new = (
            passes
            and (self.minimum_margin <= 0 or margin >= self.minimum_margin)
            and (not same or (self.repeat_commands and self._ended))
            and time_since_last_top > self.suppression_ms
        )
        if is_new:
            self._previous_top_label = label
            self._previous_top_time = current_time_ms
            self._ended = False
        return RecognizeResult(label, score, is_new)


@dataclass(frozen=True)
class WindowAverages:
    """Per step: whether the window had enough results, the top label index, its average score
    and how far it is above the second-highest average (the margin); ``means`` holds every
    label's average (``[steps, labels]``, for diagnostics such as what a missed word scored)."""

    times_ms: np.ndarray
    valid: np.ndarray
    top_index: np.ndarray
    top_score: np.ndarray
    margin: np.ndarray
    means: np.ndarray


def window_averages(times_ms, scores, average_window_duration_ms, minimum_count) -> WindowAverages:
    """The averaged scores RecognizeCommands would compute at each step of an increasing
    sequence."""
    times = np.asarray(times_ms, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != times.shape[0]:
        raise ValueError(
            f"scores must be [steps, labels] matching {times.shape[0]} times, got {scores.shape}"
        )
    if np.any(np.diff(times) < 0):
        raise ValueError("times must be in increasing order")
    steps = len(times)
    # First result kept in each window: the first with time >= time - window.
    first = np.searchsorted(times, times - average_window_duration_ms, side="left")
    counts = np.arange(steps) - first + 1
    spans = times - times[first] if steps else times
    valid = (counts >= minimum_count) & (spans >= average_window_duration_ms / 4)
    total = np.zeros_like(scores)
    # Oldest first, as the class sums, so both give bit-identical averages.
    for offset in range(int(counts.max()) if steps else 0):
        rows = np.nonzero(counts > offset)[0]
        total[rows] += scores[first[rows] + offset] / counts[rows, None]
    top_index = np.argmax(total, axis=1) if steps else np.zeros(0, dtype=np.int64)
    top_score = total[np.arange(steps), top_index] if steps else np.zeros(0)
    if steps and scores.shape[1] > 1:
        margin = top_score - np.partition(total, -2, axis=1)[:, -2]
    else:
        margin = top_score.copy()
    return WindowAverages(times, valid, top_index, top_score, margin, total)


def decode(
    labels,
    averages: WindowAverages,
    detection_threshold,
    suppression_ms,
    minimum_margin=0.0,
    repeat_commands=False,
):
    """Run the threshold-dependent rules on precomputed averages; return new non-silence commands.

    Each detection is ``(label, time_ms, score)``; the same list feeding every step through
    :class:`RecognizeCommands` and keeping new non-silence commands would give.
    """
    previous_label = SILENCE_LABEL
    previous_index = previous_step = -1  # of the last command (_silence_ never checks them)
    previous_time = -math.inf
    found = []
    valid = averages.valid.tolist()
    top_index = averages.top_index.tolist()
    top_score = averages.top_score.tolist()
    times = averages.times_ms.tolist()
    passes = averages.top_score > detection_threshold
    candidates = passes.copy()
    if minimum_margin > 0:
        candidates &= averages.margin >= minimum_margin
    if repeat_commands:
        ended = _ended_between(averages, passes)
    for step in np.nonzero(candidates)[0].tolist():
        if not valid[step]:
            continue
        label = labels[top_index[step]]
        # _silence_ again changes nothing that is reported: not worth the check.
        if label == previous_label and (
            not repeat_commands
            or label == SILENCE_LABEL
            or not ended(previous_index, previous_step + 1, step)
        ):
            continue
        now = times[step]
        if (
            previous_label != SILENCE_LABEL
            and previous_time != -math.inf
            and now - previous_time <= suppression_ms
        ):
            continue
        previous_label, previous_time = label, now
        previous_index, previous_step = top_index[step], step
        if label != SILENCE_LABEL:
            found.append((label, _as_int(now), top_score[step]))
    return found


def _ended_between(averages: WindowAverages, passes: np.ndarray):
    """``ended(k, a, b)``: whether a valid step in ``a .. b - 1`` has another top label than
    ``k`` or does not pass (label ``k``'s command ended there), counted from prefix sums, not
    scanned: a long confident silence would make the scan quadratic."""
    valid = averages.valid
    valid_before = np.concatenate([[0], np.cumsum(valid)])
    held = valid & passes
    held_at = {
        int(k): np.nonzero(held & (averages.top_index == k))[0]
        for k in np.unique(averages.top_index[held])
    }
    none = np.zeros(0, dtype=np.int64)

    def ended(k: int, a: int, b: int) -> bool:
        at = held_at.get(k, none)
        held_steps = np.searchsorted(at, b) - np.searchsorted(at, a)
        return bool(valid_before[b] - valid_before[a] > held_steps)

    return ended


class LiveDecoder:
    """The decoder fed window by window, as the windows come (``kws detect``, ``kws listen``):
    RecognizeCommands with the ``settings`` (a StreamEvalConfig, or anything with its decoder
    fields), giving the new non-silence commands, ``(label, time_ms, score)`` each: those
    :func:`decode` finds in the same windows' scores, holding only the averaging window's."""

    def __init__(self, labels, settings):
        self.labels = list(labels)
        self.commands = RecognizeCommands(
            self.labels,
            settings.average_window_ms,
            settings.detection_threshold,
            settings.suppression_ms,
            settings.minimum_count,
            settings.minimum_margin,
            settings.repeat_commands,
        )

    def push(self, times_ms, scores) -> list:
        """The commands the windows starting at ``times_ms`` with ``scores`` bring."""
        found = []
        for time_ms, row in zip(np.asarray(times_ms).tolist(), np.asarray(scores)):
            result = self.commands.process_latest_result(row, time_ms)
            if result.is_new_command and result.found_command != SILENCE_LABEL:
                found.append((result.found_command, _as_int(time_ms), result.score))
        return found


def _as_int(value):
    return int(value) if float(value).is_integer() else value


# ----------------------------------------------------------------------------------------------
# Streaming accuracy (the original accuracy_utils)


def read_ground_truth(path) -> list[tuple[str, int]]:
    """Read ``label, time_ms`` lines (the original's format), sorted by time.

    Blank lines are ignored; any other line that is not a label, one comma and a finite time >= 0
    is a StageError naming the file and the line, and so is a file that is not UTF-8 text or holds
    no entry (scoring against nothing would report 0% as if it were a result).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a BOM is not part of the first label
    except UnicodeDecodeError as exc:
        raise StageError(
            f"{path}: not a text file (byte {exc.start} is not UTF-8); expected "
            "`label, time_ms` lines"
        ) from None
    except IsADirectoryError:
        raise StageError(f"{path}: is a folder, not a ground-truth file") from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        if "\x00" in line:
            raise StageError(f"{where}: binary data; expected `label, time_ms` lines")
        pieces = line.split(",")
        if len(pieces) != 2:
            raise StageError(
                f"{where}: {_shorten(line)!r} is not `label, time_ms` "
                f"({len(pieces)} comma-separated fields)"
            )
        label, time_text = pieces[0].strip(), pieces[1].strip()
        if not label or any(c.isspace() for c in label):
            raise StageError(
                f"{where}: {_shorten(line)!r} has no single-word label before the comma"
            )
        try:
            time_ms = float(time_text)
        except ValueError:
            raise StageError(
                f"{where}: time {_shorten(time_text)!r} is not a number of milliseconds"
            ) from None
        if not math.isfinite(time_ms) or time_ms < 0:
            raise StageError(
                f"{where}: time {time_text!r} must be a finite number of milliseconds >= 0"
            )
        entries.append((label, round(time_ms)))
    if not entries:
        raise StageError(
            f"{path}: no `label, time_ms` entries (an empty ground truth scores nothing)"
        )
    entries.sort(key=lambda entry: entry[1])
    return entries


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class StreamingStats:
    """Counts of a streaming run and the original's percentages of the ground-truth words."""

    ground_truth_words: int
    matched: int
    correct: int
    wrong: int
    false_positives: int
    outcomes: list = field(
        default_factory=list, repr=False
    )  # per detection: correct/wrong/false_positive

    def _percent(self, count):
        return 100.0 * count / self.ground_truth_words if self.ground_truth_words else 0.0

    @property
    def percentages(self) -> dict:
        return {
            "matched_percentage": self._percent(self.matched),
            "correct_percentage": self._percent(self.correct),
            "wrong_percentage": self._percent(self.wrong),
            "false_positive_percentage": self._percent(self.false_positives),
        }

    def summary(self) -> str:
        if not self.ground_truth_words:
            return f"No ground truth yet, {self.false_positives} false positives"
        p = self.percentages
        return (
            f"{p['matched_percentage']:.1f}% matched, {p['correct_percentage']:.1f}% correct, "
            f"{p['wrong_percentage']:.1f}% wrong, "
            f"{p['false_positive_percentage']:.1f}% false positive"
        )


def score_detections(
    ground_truth, found_words, time_tolerance_ms, up_to_time_ms=None
) -> StreamingStats:
    """Match detections ``(label, time_ms, ...)`` against ground truth ``(label, time_ms)``.

    The first ground-truth entry within +-tolerance of a detection decides it: correct when the
    labels agree and that entry is not yet matched, else wrong; no entry in range is a false
    positive. With ``up_to_time_ms`` only ground truth up to that time + tolerance counts.
    """
    truth = sorted(((label, time) for label, time, *_ in ground_truth), key=lambda e: e[1])
    latest_possible = math.inf if up_to_time_ms is None else up_to_time_ms + time_tolerance_ms
    how_many_truth = sum(1 for _, time in truth if time <= latest_possible)
    matched: set[int] = set()
    correct = wrong = false_positives = 0
    outcomes = []
    for found_label, found_time, *_ in found_words:
        earliest, latest = found_time - time_tolerance_ms, found_time + time_tolerance_ms
        outcome = "false_positive"
        for index, (truth_label, truth_time) in enumerate(truth):
            if truth_time > latest or truth_time > latest_possible:
                break
            if truth_time < earliest:
                continue
            if truth_label == found_label and index not in matched:
                outcome = "correct"
            else:
                outcome = "wrong"
            matched.add(index)
            break
        if outcome == "correct":
            correct += 1
        elif outcome == "wrong":
            wrong += 1
        else:
            false_positives += 1
        outcomes.append(outcome)
    return StreamingStats(how_many_truth, len(matched), correct, wrong, false_positives, outcomes)
