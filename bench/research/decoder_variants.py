"""Two decoder variants beyond stream_eval's params, measured on the streams of
bench/research/operating_point.py.

    python -m bench.research.decoder_variants [operating_point.py's stream options,
        e.g. --stream-windows 8]

Neither is in the pipeline: both were measured here and did not help (README, "Streaming
operating point"). They are kept runnable so that the finding can be checked again on another
classifier:

- ``unknown weight``: a prior correction. The training set holds about as many unknown words as
  each keyword, the synthetic stream 30% unknown words; every step's scores are reweighted (the
  ``_unknown_`` score times w, then renormalised) before RecognizeCommands averages them, which
  should turn keywords detected on unknown words into ``_unknown_``.
- ``peak look-ahead``: once the averaged top score crosses the threshold, report the label (and
  time) of the highest average within the next look-ahead, not the label at the crossing, which
  may see only the start of a word.

The streams, classifiers and cache are operating_point.py's (the same options give the same cache
key, so its cached scores are reused). Per variant value, the detection threshold and
``average_window_ms`` are picked on all validation streams pooled (the highest detection rate at
no more than the budget) and applied once to every test stream, as operating_point.py's pooled
rows; value 1 / 0 ms is the plain decoder.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from bench.research.operating_point import (
    BUDGETS,
    STRIDE_MS,
    TARGET,
    add_stream_args,
    bench_streams,
    pick,
    pooled,
    sweep,
)

WINDOWS_MS = (500, 750, 1000, 1500)
UNKNOWN_WEIGHTS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
LOOK_AHEAD_MS = (0, 160, 320, 480)


def peak_decoder(look_steps: int):
    """recognize.decode with a look-ahead: a crossing reports the highest average within the
    next ``look_steps`` steps (0: decode itself)."""
    from pipeline.core.labels import SILENCE_LABEL
    from pipeline.streaming.recognize import decode

    def decode_peak(labels, averages, threshold, suppression_ms, minimum_margin=0.0):
        score, index, times = averages.top_score, averages.top_index, averages.times_ms
        previous_label, previous_time, done_until = SILENCE_LABEL, -math.inf, -1
        found = []
        for step in np.nonzero((score > threshold) & averages.valid)[0].tolist():
            if step <= done_until:
                continue
            best = step + int(np.argmax(score[step : step + look_steps + 1]))
            label, now = labels[index[best]], times[best]
            if label == previous_label or (
                previous_label != SILENCE_LABEL and now - previous_time <= suppression_ms
            ):
                continue
            previous_label, previous_time, done_until = label, now, best
            if label != SILENCE_LABEL:
                found.append((label, int(now), float(score[best])))
        return found

    return decode if look_steps == 0 else decode_peak


def variant_sweep(stream, labels, variant: str, value: float) -> dict:
    """operating_point.sweep over the threshold and ``average_window_ms`` for one variant value."""
    from pipeline.core.labels import UNKNOWN_LABEL

    if variant == "unknown weight":
        scores = np.array(stream["scores"], np.float64)
        scores[:, labels.index(UNKNOWN_LABEL)] *= value
        stream = dict(stream, scores=scores / scores.sum(axis=1, keepdims=True))
    look_steps = int(value) // STRIDE_MS if variant == "peak look-ahead" else 0
    return sweep(stream, labels, {"average_window_ms": WINDOWS_MS}, peak_decoder(look_steps))[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_stream_args(parser)
    args = parser.parse_args(argv)
    streams, labels = bench_streams(args)
    by_role = {role: [s for s in streams if s["role"] == role] for role in ("validation", "test")}
    durations = {role: [s["duration_s"] for s in ss] for role, ss in by_role.items()}
    header = (
        f"{'variant':<16} {'value':>6} {'budget':>6} {'picked':<18} {'val det':>7} "
        f"{'val FA/h':>8} {'test det':>8} {'test FA/h':>9} {'per stream det':>14} "
        f"{'per stream FA/h':>15} {'target':>6}"
    )
    print(
        f"\n{len(by_role['test'])} validation/test pairs; "
        f"picked on the validation streams pooled\n{header}\n" + "-" * len(header)
    )
    for variant, values in (
        ("unknown weight", UNKNOWN_WEIGHTS),
        ("peak look-ahead", LOOK_AHEAD_MS),
    ):
        for value in values:
            swept = {
                role: [variant_sweep(s, labels, variant, value) for s in ss]
                for role, ss in by_role.items()
            }
            val, test = (pooled(swept[r], durations[r]) for r in ("validation", "test"))
            for budget in BUDGETS:
                key = pick(val, budget)
                if key is None:
                    continue
                det = np.array([rows[key]["detection_rate"] for rows in swept["test"]]) * 100
                fa = np.array([rows[key]["false_alarms_per_hour"] for rows in swept["test"]])
                met = sum(d >= 100 * TARGET[0] and f <= TARGET[1] for d, f in zip(det, fa))
                shown = f"{value:g} ms" if variant == "peak look-ahead" else f"{value:g}"
                picked = f"thr {key[1]:.2f}, {key[0][0]} ms"
                print(
                    f"{variant:<16} {shown:>6} {budget:>6} {picked:<18} "
                    f"{100 * val[key]['detection_rate']:>6.1f}% "
                    f"{val[key]['false_alarms_per_hour']:>8.0f} "
                    f"{100 * test[key]['detection_rate']:>7.1f}% "
                    f"{test[key]['false_alarms_per_hour']:>9.0f} "
                    f"{det.mean():>7.1f}±{det.std(ddof=1):>4.1f}% "
                    f"{fa.mean():>9.0f}±{fa.std(ddof=1):>3.0f} "
                    f"{met:>3}/{len(det)}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
