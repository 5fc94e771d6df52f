"""The DAG's streaming operating point, picked on validation streams of its own split.

    python -m bench.research.dag_operating_point [--workspace .] [--streams 4] [--test-streams 4]
        [--test-seed 8001] [--duration 600]
        [--average-with OTHER/models/export [...] [--average-weights 0.5 0.7]]
        [--gate GATE/models/export [--gate-thresholds 0.1 0.3] [--gate-rules margin peak]
        [--margin-ms 160]] [--cache /tmp/kws_dag_cache]

For a workspace where `dvc repro` (or `kws preset ... --run`) has run: synthesizes ``--streams``
recordings from the *validation* split's clips (data/split/validation.csv: its speakers only), as
synthesize_stream synthesizes the test split's (``pipeline.data.stream_synthesis.split_streams``,
the ``stream`` section's makeup, seeds 9001, 9002, ...), scores them and the pipeline's test
recording (data/stream/, synthesized from the test split) with the exported model
(models/export) at ``stream_eval.clip_stride_ms``, and sweeps the detection threshold
(0.30-0.99; with ``average_window_ms`` in the second and fourth decoder choices; the third and
fourth report repeated words, ``stream_eval.repeat_commands``) with RecognizeCommands as
stream_eval runs it. Per false-alarm budget (30 and 60 per hour), the operating point with the
highest detection rate at no more than the budget on the validation streams *pooled* is picked
and applied once to the test recording, and to ``--test-streams`` more recordings synthesized the
same way from the test split (seeds 8001, ...; pooled: one 600 s recording holds 200 words and
one false alarm is 6 per hour, so a single recording's figures move by several points between
seeds). ``--test-seed`` draws other test recordings: a combination chosen after looking at the
usual ones is confirmed on recordings nobody has looked at. Prints the picks, the test figures
(and, for reference only, what the test recording's own sweep would allow), and what the test
recording's errors are at each pick: a keyword detected as another keyword, a keyword on an
unknown word, ``_unknown_`` on a keyword, a second detection of one word, false positives (no
word within the tolerance), and the words missed.

Each *combination* is picked and reported on its own: the workspace model alone; with
``--average-with`` (an export trained on the same split, e.g. another preset's) the mean of the
two models' window scores (weighted by ``--average-weights``, picked on validation); with
``--gate`` the cascade of pipeline/streaming/cascade.py (the gate's candidates scored by the
workspace model, the rest kept at the gate's scores; ``combine`` over the workspace model's
scores of every window, which equals running it on the candidates only: tests/test_cascade.py),
its gate threshold picked on validation with the decoder's, and the gate alone. Every model's
window scores are cached in ``--cache`` by the export's files, the scoring code and the
recording's samples, so a second run with other combinations only decodes. For a
front end that cannot reuse frames (the EfficientWord-Net pair) the windows' features are cached
too, by the front end's settings and code: another model on the same front end (a ``dvc exp
run`` that changes only train or model params) scores the 9 recordings in seconds, not ~30 min.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import io
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import REPO
from bench.research.operating_point import BUDGETS, TARGET, pick, pooled, sweep

VALIDATION_SEED = 9001
TEST_SEED = 8001
WINDOWS_MS = (500, 750, 1000, 1500)
# The original rule, and with repeated words reported (stream_eval.repeat_commands).
DECODERS = {
    "threshold": {"repeat_commands": (False,)},
    "threshold + average window": {"repeat_commands": (False,), "average_window_ms": WINDOWS_MS},
    "repeats, threshold": {"repeat_commands": (True,)},
    "repeats, threshold + average window": {
        "repeat_commands": (True,),
        "average_window_ms": WINDOWS_MS,
    },
}


def error_kinds(truth, found, tolerance_ms, averages=None, labels=None) -> collections.Counter:
    """What each non-correct detection was, and the words left undetected (as score_detections
    matches them: the first ground-truth word within the tolerance decides). With the decoder's
    ``averages`` (recognize.window_averages) and ``labels``, a missed word is also told by the
    label on top where its own label's average peaked (in the 1.5 s after it starts): ``_silence_``
    (a word the model did not hear: a quiet speaker under the noise), its own label (under the
    threshold, or suppressed by an earlier detection), or another label."""
    from pipeline.core.labels import SILENCE_LABEL, UNKNOWN_LABEL
    from pipeline.streaming.recognize import score_detections

    truth = sorted(truth, key=lambda e: e[1])
    stats = score_detections(truth, found, tolerance_ms)
    kinds = collections.Counter()
    detected = set()
    for (label, t, *_), outcome in zip(found, stats.outcomes):
        hit = next(
            (i for i, (_, tt) in enumerate(truth) if t - tolerance_ms <= tt <= t + tolerance_ms),
            None,
        )
        if outcome == "correct":
            detected.add(hit)
            continue
        if outcome == "false_positive":
            kinds["false positive (no word near)"] += 1
            continue
        said = truth[hit][0]
        if said == label:
            kinds["second detection of a word"] += 1
        elif said == UNKNOWN_LABEL:
            kinds["keyword on an unknown word"] += 1
        elif label == UNKNOWN_LABEL:
            kinds["_unknown_ on a keyword"] += 1
        else:
            kinds["keyword as another keyword"] += 1
    missed = [truth[i] for i in range(len(truth)) if i not in detected]
    kinds["missed keywords"] = sum(1 for w, _ in missed if w != UNKNOWN_LABEL)
    kinds["missed unknown words"] = sum(1 for w, _ in missed if w == UNKNOWN_LABEL)
    if averages is not None and missed:
        times, averaged = averages.times_ms, averages.means
        for word, start in missed:
            rows = np.nonzero((times >= start) & (times <= start + 1500))[0]
            if not len(rows):
                continue
            peak = rows[np.argmax(averaged[rows, labels.index(word)])]
            top = labels[int(np.argmax(averaged[peak]))]
            kinds[
                "missed: "
                + (
                    "not heard (_silence_ on top)"
                    if top == SILENCE_LABEL
                    else "own label on top (under the threshold or suppressed)"
                    if top == word
                    else "another label on top"
                )
            ] += 1
    return kinds


def export_digest(folder: Path) -> str:
    """A digest of an export's files and of the code that turns audio into its scores (the cache
    key's model half)."""
    digest = hashlib.sha256()
    code = [
        REPO / "pipeline/streaming/scores.py",
        *sorted((REPO / "pipeline/frontends").rglob("*.py")),
        *sorted((REPO / "pipeline/inference").rglob("*.py")),
    ]
    for path in [*sorted(p for p in folder.iterdir() if p.is_file()), *code]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


class CachedScorer:
    """An export's window scores of a recording at ``stride_ms``, cached in ``cache`` by the
    export's digest and the audio's (scoring a 600 s recording with the EfficientWord-Net pair
    takes ~3 min; every combination below reuses it). For a front end that cannot reuse frames,
    the windows' *features* are cached too, by the front end's settings and code alone: another
    head trained on the same front end (a ``dvc exp run`` that changes only train or model params)
    then scores a recording in seconds. Its scores are those of ``stream_scores``: the same
    windows, the same batches of ``BATCH``."""

    def __init__(self, folder: Path, stride_ms: int, cache: Path):
        from pipeline.inference import load_model

        self.folder, self.stride_ms, self.cache = folder, stride_ms, cache
        self.model = load_model(folder)
        self.key = export_digest(folder)

    def __call__(self, audio):
        from pipeline.inference.base import FeatureModel
        from pipeline.streaming.scores import StreamScores, can_reuse_frames, stream_scores

        audio = np.ascontiguousarray(audio, np.float32)
        audio_key = hashlib.sha256(audio.tobytes()).hexdigest()[:16]
        path = self.cache / f"{self.key}_{audio_key}_{self.stride_ms}.npz"
        if path.exists():
            with np.load(path) as z:
                return StreamScores(
                    z["times_ms"], z["scores"], bool(z["frame_reuse"]), float(z["seconds"])
                )
        stride = int(self.stride_ms * int(self.model.sample_rate) / 1000)
        if isinstance(self.model, FeatureModel) and not can_reuse_frames(self.model, stride):
            s = self._from_window_features(audio, audio_key, stride)
        else:
            s = stream_scores(self.model, audio, self.stride_ms, progress=False)
        save_npz(
            path, times_ms=s.times_ms, scores=s.scores, frame_reuse=s.frame_reuse, seconds=s.seconds
        )
        return s

    def _from_window_features(self, audio, audio_key, stride):
        from pipeline.streaming.scores import BATCH, StreamScores, window_offsets

        model = self.model
        offsets = window_offsets(len(audio), int(model.desired_samples), stride)
        path = (
            self.cache
            / f"features_{frontend_digest(model.feature_params)}_{audio_key}_{stride}.npy"
        )
        span = np.arange(int(model.desired_samples))
        if path.exists():
            features = np.load(path)
        else:
            features = np.concatenate(
                [np.zeros((0, *model.feature_shape), np.float32)]
                + [
                    model.features(audio[offsets[i : i + BATCH, None] + span])
                    for i in range(0, len(offsets), BATCH)
                ]
            )
            save_npy(path, features)
        start = time.perf_counter()
        scores = np.concatenate(
            [np.zeros((0, len(model.labels)), np.float32)]
            + [
                np.asarray(model.predict_features(features[i : i + BATCH]), np.float32)
                for i in range(0, len(features), BATCH)
            ]
        )
        return StreamScores(
            offsets * 1000 // int(model.sample_rate), scores, False, time.perf_counter() - start
        )


def frontend_digest(feature_params: dict) -> str:
    """A digest of a front end's settings and of its code and assets (the window-feature cache
    key)."""
    import json

    digest = hashlib.sha256(json.dumps(feature_params, sort_keys=True, default=str).encode())
    for path in sorted(
        p
        for p in (REPO / "pipeline/frontends").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def save_npz(path: Path, **arrays) -> None:
    _atomic(path, lambda f: np.savez(f, **arrays))


def save_npy(path: Path, array) -> None:
    _atomic(path, lambda f: np.save(f, array))


def _atomic(path: Path, write) -> None:
    """The project's atomic write (a unique temporary, then a rename), so two runs sharing the
    cache never read a half-written file nor clobber each other's temporary."""
    from pipeline.core.fs import atomic_write_bytes

    buffer = io.BytesIO()
    write(buffer)
    atomic_write_bytes(path, buffer.getvalue())


def split_recordings(split: str, stream, first_seed: int, count: int, duration_s: float, rate: int):
    """``count`` recordings of one split's speakers (``split``: a manifest name, validation or
    testing; seeds ``first_seed``, ...), synthesized as synthesize_stream synthesizes the test
    split's, with the ``stream`` section's makeup: ``(audio, [(label, time_ms), ...])`` each, one
    at a time. Paths are relative to the current folder (the workspace)."""
    from pipeline.core import paths
    from pipeline.data.manifest import MANIFEST_NAMES
    from pipeline.data.stream_synthesis import split_streams

    settings = [
        dataclasses.replace(stream, duration_s=duration_s, seed=first_seed + k)
        for k in range(count)
    ]
    for audio, truth in split_streams(
        paths.SPLIT_DIR / MANIFEST_NAMES[split],
        paths.SPLIT_LABELS,
        paths.DATASET_DIR,
        settings,
        rate,
        split="test" if split == "testing" else split,
    ):
        yield audio, [(label, round(t)) for label, t in truth]


def validation_streams(stream, count: int, duration_s: float, rate: int):
    """The validation recordings the operating point is picked on (seeds VALIDATION_SEED, ...)."""
    return split_recordings("validation", stream, VALIDATION_SEED, count, duration_s, rate)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("."))
    parser.add_argument("--streams", type=int, default=4, help="validation recordings (pooled)")
    parser.add_argument(
        "--test-streams",
        type=int,
        default=4,
        help="more test-split recordings (pooled, beside data/stream)",
    )
    parser.add_argument(
        "--test-seed",
        type=int,
        default=TEST_SEED,
        help="the first of those recordings' seeds (another value: fresh recordings)",
    )
    parser.add_argument(
        "--duration", type=float, default=600, help="seconds of each validation recording"
    )
    parser.add_argument(
        "--average-with",
        type=Path,
        nargs="+",
        metavar="EXPORT",
        default=[],
        help="more exports (models/export of workspaces trained on the same split): their "
        "window scores are averaged with the workspace model's (an ensemble)",
    )
    parser.add_argument(
        "--average-weights",
        type=float,
        nargs="+",
        default=[None],
        help="the workspace model's weights in the mean, the others sharing the rest "
        "equally (picked on validation; default: all equal)",
    )
    parser.add_argument(
        "--gate",
        type=Path,
        metavar="EXPORT",
        help="a gate export (same split): the cascade of it and the workspace model "
        "(pipeline/streaming/cascade.py, margin rule) at each --gate-thresholds",
    )
    parser.add_argument("--gate-thresholds", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5])
    parser.add_argument(
        "--gate-rules",
        nargs="+",
        choices=("margin", "peak"),
        default=["margin"],
        help="the cascade's candidate rules (peak: one costly window per run, held min)",
    )
    parser.add_argument(
        "--margin-ms", type=int, default=160, help="the margin rule's candidate margin"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("/tmp/kws_dag_cache"),
        help="window scores by export and recording (delete it to rescore)",
    )
    args = parser.parse_args(argv)
    ws = args.workspace.resolve()
    extra_dirs = {
        **{f"average {k + 1}": d.resolve() for k, d in enumerate(args.average_with)},
        **({"gate": args.gate.resolve()} if args.gate else {}),
    }
    members = [f"average {k + 1}" for k in range(len(args.average_with))]
    os.chdir(ws)  # manifest paths are relative to the workspace

    from pipeline.core import paths
    from pipeline.core.audio import read_wav
    from pipeline.core.params import load_params
    from pipeline.data.stream_synthesis import StreamConfig
    from pipeline.streaming.cascade import GateSettings, combine
    from pipeline.streaming.config import StreamEvalConfig
    from pipeline.streaming.recognize import decode, read_ground_truth, window_averages
    from pipeline.streaming.scores import mean_scores

    stream, cfg = load_params(paths.PARAMS, StreamConfig, StreamEvalConfig)
    scorer = CachedScorer(paths.EXPORT_DIR.resolve(), cfg.clip_stride_ms, args.cache)
    labels = list(scorer.model.labels)
    rate = int(scorer.model.sample_rate)
    others = {
        name: CachedScorer(d, cfg.clip_stride_ms, args.cache) for name, d in extra_dirs.items()
    }
    for other in others.values():
        if list(other.model.labels) != labels or int(other.model.sample_rate) != rate:
            raise SystemExit(
                f"{other.folder}: its labels or sample rate differ from {paths.EXPORT_DIR}'s"
            )

    def scored(audio, truth, role):
        start = time.perf_counter()
        own = scorer(audio)
        rest = {name: other(audio) for name, other in others.items()}
        for name, s in rest.items():
            if not np.array_equal(own.times_ms, s.times_ms):
                raise SystemExit(
                    f"{others[name].folder}: scores at other window times than {paths.EXPORT_DIR}'s"
                )
        seconds = time.perf_counter() - start
        print(
            f"  {role}: {len(audio) / rate:.0f} s, {len(truth)} words, scored in {seconds:.1f} s",
            flush=True,
        )
        return dict(own=own, others=rest, truth=truth, duration_s=len(audio) / rate)

    models = [str(scorer.folder)] + [f"{name} {o.folder}" for name, o in others.items()]
    print(
        f"workspace {ws}: {scorer.model.kind} models {'; '.join(models)}, "
        f"stride {cfg.clip_stride_ms} ms; {args.streams} validation recordings of "
        f"{args.duration:.0f} s from the validation split's speakers; {args.test_streams} more "
        f"test recordings (seeds {args.test_seed}-{args.test_seed + args.test_streams - 1}); "
        f"scores cached in {args.cache}"
    )
    validation = [
        scored(audio, truth, f"validation {k}")
        for k, (audio, truth) in enumerate(
            validation_streams(stream, args.streams, args.duration, rate)
        )
    ]
    test_truth = read_ground_truth(paths.STREAM_LABELS)
    test = scored(read_wav(paths.STREAM_WAV, sample_rate=rate), test_truth, "test (data/stream)")
    extra = [
        scored(audio, truth, f"test split {k}")
        for k, (audio, truth) in enumerate(
            split_recordings(
                "testing", stream, args.test_seed, args.test_streams, args.duration, rate
            )
        )
    ]

    # What is decoded: per combination, the names of its extra parameters (picked on validation
    # with the decoder's) and its variants: parameter values -> the scores of a recording.
    combinations = {"workspace model alone": ([], {(): lambda r: r["own"].scores})}
    if members:

        def mean(r, w):  # as `kws stream-eval --average-with` averages
            return mean_scores(r["own"], [r["others"][m] for m in members], w).scores

        weighted = args.average_weights != [None]
        combinations["mean with --average-with"] = (
            ["weight"] if weighted else [],
            {(w,) if weighted else (): (lambda r, w=w: mean(r, w)) for w in args.average_weights},
        )
    if "gate" in others:

        def cascade(settings):
            def scores(r):
                own = np.asarray(r["own"].scores)
                gate = r["others"]["gate"]
                return combine(labels, r["own"].times_ms, gate, lambda mask: own[mask], settings)[0]

            return scores

        for rule in args.gate_rules:
            combinations[f"cascade behind --gate, {rule} rule"] = (
                ["gate_threshold"],
                {
                    (t,): cascade(GateSettings(threshold=t, margin_ms=args.margin_ms, rule=rule))
                    for t in args.gate_thresholds
                },
            )
        combinations["gate alone"] = ([], {(): lambda r: r["others"]["gate"].scores})

    def as_stream(recording, variant):
        return dict(
            times_ms=recording["own"].times_ms,
            scores=variant(recording),
            truth=recording["truth"],
            duration_s=recording["duration_s"],
        )

    print(
        f"\n{'combination, decoder choice':<48} {'budget':>6} {'picked':<36} {'val det':>7} "
        f"{'val FA/h':>8} {'test det':>8} {'test FA/h':>9} {'(test own sweep)':>16} {'target':>6} "
        f"{'test split pooled':>17}"
    )

    def lift(vkey, rows):
        """Rows keyed by (decoder params, threshold) keyed again with the variant's values first."""
        return {((*vkey, *k[0]), k[1]): x for k, x in rows.items()}

    picks = []
    for combination, (variant_names, variants) in combinations.items():
        # Each variant's scores of every recording, computed once for every decoder choice.
        decoded = {
            vkey: (
                [as_stream(v, variant) for v in validation],
                as_stream(test, variant),
                [as_stream(e, variant) for e in extra],
            )
            for vkey, variant in variants.items()
        }
        for decoder, grid in DECODERS.items():
            val_pooled, test_rows, extra_pooled = {}, {}, {}
            for vkey, (val_streams, test_stream, extra_streams) in decoded.items():
                sweeps = [sweep(v, labels, grid)[1] for v in val_streams]
                names, rows = sweep(test_stream, labels, grid)
                extra_rows = (
                    pooled(
                        [sweep(e, labels, grid)[1] for e in extra_streams],
                        [e["duration_s"] for e in extra],
                    )
                    if extra
                    else {}
                )
                durations = [v["duration_s"] for v in validation]
                val_pooled.update(lift(vkey, pooled(sweeps, durations)))
                test_rows.update(lift(vkey, rows))
                extra_pooled.update(lift(vkey, extra_rows))
            names = variant_names + names
            label = f"{combination}, {decoder}"
            for budget in BUDGETS:
                key = pick(val_pooled, budget)
                if key is None:
                    print(
                        f"{label:<48} {budget:>6} "
                        "no operating point within the budget on validation"
                    )
                    continue
                own = pick(test_rows, budget)
                v, t = val_pooled[key], test_rows[key]
                params = ", ".join(f"{n}={x}" for n, x in zip(names, key[0]))
                picked = f"thr {key[1]:.2f}" + (f", {params}" if params else "")
                met = t["detection_rate"] >= TARGET[0] and t["false_alarms_per_hour"] <= TARGET[1]
                print(
                    f"{label:<48} {budget:>6} {picked:<36} {100 * v['detection_rate']:>6.1f}% "
                    f"{v['false_alarms_per_hour']:>8.0f} {100 * t['detection_rate']:>7.1f}% "
                    f"{t['false_alarms_per_hour']:>9.0f} "
                    f"{100 * test_rows[own]['detection_rate'] if own else float('nan'):>15.1f}% "
                    f"{'yes' if met else 'no':>6} "
                    + (
                        f"{100 * extra_pooled[key]['detection_rate']:>8.1f}% at "
                        f"{extra_pooled[key]['false_alarms_per_hour']:>3.0f}/h"
                        if extra
                        else ""
                    ),
                    flush=True,
                )
                params = dict(zip(names, key[0]))
                test_stream = decoded[tuple(params.pop(n) for n in variant_names)][1]
                picks.append((label, budget, picked, params, key[1], test_stream["scores"]))

    print("\ntest recording's errors at each pick (counts)")
    for label, budget, picked, params, threshold, scores in picks:
        c = dataclasses.replace(cfg, **params)
        averages = window_averages(
            test["own"].times_ms, scores, c.average_window_ms, c.minimum_count
        )
        found = decode(
            labels, averages, threshold, c.suppression_ms, c.minimum_margin, c.repeat_commands
        )
        kinds = error_kinds(test_truth, found, c.time_tolerance_ms, averages, list(labels))
        print(
            f"  {label}, {budget}/h ({picked}): " + ", ".join(f"{k} {n}" for k, n in kinds.items())
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
