"""The streaming cascade (pipeline/streaming/cascade.py): a cheap gate on every window, the costly
model only on candidate windows; with gate threshold 0 it is the costly model alone."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from pipeline.core.errors import StageError
from pipeline.core.labels import write_labels
from pipeline.streaming import cascade
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.scores import stream_scores
from tests.test_stream import LABELS, RATE, StandInModel, _recording, run_eval


class CostlyModel(StandInModel):
    """A model that cannot reuse frames (scores each window from its audio), scoring differently
    from the gate, and recording the windows it is given."""

    supports_frames = False

    def __init__(self):
        super().__init__()
        self.windows = []

    def predict_audio(self, audio):
        self.windows.extend(np.asarray(audio, np.float32))
        scores = super().predict_audio(audio)
        return (0.8 * scores + 0.2 * scores[:, ::-1]).astype(np.float32)  # not the gate's scores


def _expected_candidates(times_ms, gate_times_ms, gate_scores, threshold, margin_ms):
    """Brute force: a passing gate window within the margin, or the nearest gate window passing."""
    mass = gate_scores[:, 2:].sum(axis=1)  # LABELS: silence, unknown, then the words
    passing = mass >= threshold
    out = []
    for t in times_ms:
        near = np.abs(gate_times_ms - t)
        out.append(bool(passing[near <= margin_ms].any() or passing[int(np.argmin(near))]))
    return np.array(out)


@pytest.mark.parametrize("stride_ms, gate_stride_ms", [(30, None), (30, 80), (80, 50)])
def test_the_costly_model_scores_only_the_candidate_windows(stride_ms, gate_stride_ms):
    audio, _ = _recording(seconds=20)
    gate, costly = StandInModel(), CostlyModel()
    settings = cascade.GateSettings(threshold=0.5, margin_ms=100, stride_ms=gate_stride_ms)
    out = cascade.cascade_scores(
        costly, gate, audio, stride_ms, settings, batch_size=16, progress=False
    )

    gate_alone = stream_scores(StandInModel(), audio, gate_stride_ms or stride_ms, progress=False)
    alone = stream_scores(CostlyModel(), audio, stride_ms, progress=False)
    expected = _expected_candidates(
        alone.times_ms, gate_alone.times_ms, gate_alone.scores, 0.5, 100
    )
    np.testing.assert_array_equal(out.times_ms, alone.times_ms)
    np.testing.assert_array_equal(out.candidates, expected)
    assert 0 < expected.sum() < 0.6 * len(expected)  # the gate rules out most windows
    # The costly model saw exactly the candidate windows' audio, in order, and nothing else.
    starts = alone.times_ms[expected] * RATE // 1000
    assert len(costly.windows) == expected.sum()
    np.testing.assert_array_equal(
        np.stack(costly.windows), np.stack([audio[s : s + RATE] for s in starts])
    )
    # Its scores are used there; elsewhere the nearest gate window's scores.
    np.testing.assert_allclose(out.scores[expected], alone.scores[expected], atol=1e-6)
    nearest = [int(np.argmin(np.abs(gate_alone.times_ms - t))) for t in alone.times_ms[~expected]]
    np.testing.assert_allclose(out.scores[~expected], gate_alone.scores[nearest], atol=1e-6)
    costs = cascade.stage_costs(out, len(audio) / RATE)
    assert costs["costly"]["windows"] == expected.sum() and costs["gate"]["windows"] == len(
        gate_alone.times_ms
    )
    assert costs["whole"]["seconds"] >= costs["gate"]["seconds"] + costs["costly"]["seconds"] - 1e-6
    # A stage too fast to time (no candidates) still gives strict JSON: no infinity.
    untimed = cascade.stage_costs(dataclasses.replace(out, costly_seconds=0.0), len(audio) / RATE)
    assert untimed["costly"]["times_real_time"] is None
    json.dumps(untimed, allow_nan=False)


def test_gate_threshold_zero_is_the_costly_model_alone(tmp_path):
    _recording(seconds=30, tmp_path=tmp_path)
    cfg = StreamEvalConfig()
    wav, truth = tmp_path / "stream.wav", tmp_path / "labels.txt"
    alone, _, alone_found, alone_scores = run_eval(CostlyModel(), wav, truth, cfg)
    costly = CostlyModel()
    both, _, both_found, both_scores = run_eval(
        costly,
        wav,
        truth,
        cfg,
        gate=StandInModel(),
        gate_settings=cascade.GateSettings(threshold=0.0),
    )
    assert both_scores.candidates.all() and len(costly.windows) == len(alone_scores.times_ms)
    np.testing.assert_allclose(both_scores.scores, alone_scores.scores, atol=1e-6)
    assert both_found == alone_found
    assert {k: both[k] for k in ("correct", "wrong", "false_positives")} == {
        k: alone[k] for k in ("correct", "wrong", "false_positives")
    }
    assert both["cascade"]["costly"]["share_of_windows"] == 1.0 and "cascade" not in alone


def test_a_cascade_keeps_the_words_with_a_fraction_of_the_costly_windows(tmp_path):
    _recording(seconds=60, tmp_path=tmp_path)
    wav, truth = tmp_path / "stream.wav", tmp_path / "labels.txt"
    alone, *_ = run_eval(CostlyModel(), wav, truth, StreamEvalConfig())
    both, *_ = run_eval(
        CostlyModel(),
        wav,
        truth,
        StreamEvalConfig(),
        gate=StandInModel(),
        gate_settings=cascade.GateSettings(threshold=0.3),
    )
    assert both["cascade"]["costly"]["share_of_windows"] < 0.6
    assert (
        both["correct"] >= alone["correct"] - 1
        and both["false_positives"] <= alone["false_positives"] + 1
    )


def test_gate_and_model_must_agree_and_settings_are_checked():
    audio, _ = _recording(seconds=3)
    gate = StandInModel()
    gate.labels = [*LABELS[:2], "no", "yes"]
    with pytest.raises(StageError, match="labels"):
        cascade.cascade_scores(CostlyModel(), gate, audio, 30, progress=False)
    for bad in (dict(threshold=1.5), dict(margin_ms=-1), dict(stride_ms=0)):
        with pytest.raises(StageError, match="gate"):
            cascade.GateSettings(**bad)
    with pytest.raises(StageError, match="wanted-word"):
        cascade.keyword_mass(["_silence_", "_unknown_"], np.zeros((2, 2)))


def test_stream_eval_tool_runs_a_cascade_of_exports(tmp_path, monkeypatch, capsys):
    """``kws stream-eval --model M --gate G``: two Keras models on the mfcc front end; threshold 0
    gives the model's own detections, and the JSON records each stage's cost."""
    from pipeline.frontends import FeatureConfig
    from pipeline.models import build_model
    from pipeline.tools import stream_eval as tool

    cfg = FeatureConfig.from_dict(
        dict(
            sample_rate=RATE,
            clip_duration_ms=1000,
            window_size_ms=30,
            window_stride_ms=10,
            feature_bin_count=40,
            preprocess="mfcc",
        )
    )
    folders = []
    for name, arch in (("model", "conv"), ("gate", "ds_cnn")):
        folder = tmp_path / name
        folder.mkdir()
        build_model(arch, cfg.feature_shape, len(LABELS), 0.5).save(folder / "model.keras")
        write_labels(folder / "labels.txt", LABELS)
        (folder / "meta.json").write_text(json.dumps({"features": cfg.to_dict()}))
        folders.append(folder / "model.keras")
    _recording(seconds=4, tmp_path=tmp_path)
    common = [
        "--model",
        str(folders[0]),
        "--wav",
        str(tmp_path / "stream.wav"),
        "--ground-truth",
        str(tmp_path / "labels.txt"),
        "--detection-threshold",
        "0.3",
    ]
    assert tool.main([*common, "--json", str(tmp_path / "alone.json")]) == 0
    assert (
        tool.main(
            [
                *common,
                "--gate",
                str(folders[1]),
                "--gate-threshold",
                "0",
                "--json",
                str(tmp_path / "both.json"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "gate" in out and "costly" in out
    alone = json.loads((tmp_path / "alone.json").read_text())
    both = json.loads((tmp_path / "both.json").read_text())
    assert both["cascade"]["costly"]["windows"] == alone["windows"] == both["windows"]
    assert both["cascade"]["threshold"] == 0.0
    for key in ("detections", "correct", "wrong", "false_positives"):
        assert both[key] == alone[key]
    # --average-with: the model averaged with itself is the model; the JSON says how many more.
    assert (
        tool.main(
            [*common, "--average-with", str(folders[0]), "--json", str(tmp_path / "mean.json")]
        )
        == 0
    )
    mean = json.loads((tmp_path / "mean.json").read_text())
    assert mean["averaged_with"] == 1 and "mean of 2 window models" in capsys.readouterr().out
    for key in ("detections", "correct", "wrong", "false_positives"):
        assert mean[key] == alone[key]


def test_a_missing_gate_is_named(tmp_path):
    _recording(seconds=3, tmp_path=tmp_path)
    with pytest.raises((FileNotFoundError, StageError), match="missing"):
        run_eval(
            CostlyModel(),
            tmp_path / "stream.wav",
            tmp_path / "labels.txt",
            StreamEvalConfig(),
            gate=tmp_path / "missing",
        )


def _expected_peak_plan(times_ms, gate_times_ms, mass, threshold, neighbours, pick="max"):
    """Brute force of the peak rule: runs of passing gate windows, each run's maximum, the grid
    window nearest it and its neighbours; the run's other grid windows take the nearest of those."""
    passing = mass >= threshold
    runs, j = [], 0
    while j < len(passing):
        if passing[j]:
            k = j
            while k + 1 < len(passing) and passing[k + 1]:
                k += 1
            runs.append(list(range(j, k + 1)))
            j = k + 1
        else:
            j += 1
    owner = [int(np.argmin(np.abs(gate_times_ms - t))) for t in times_ms]
    candidates, source = np.zeros(len(times_ms), bool), np.full(len(times_ms), -1)
    chosen_per_run = []
    for run in runs:
        peak = max(run, key=lambda g: (mass[g], -g)) if pick == "max" else run[(len(run) - 1) // 2]
        centre = int(np.argmin(np.abs(times_ms - gate_times_ms[peak])))
        chosen = [
            i for i in range(centre - neighbours, centre + neighbours + 1) if 0 <= i < len(times_ms)
        ]
        chosen_per_run.append(chosen)
        candidates[chosen] = True
    for run, chosen in zip(runs, chosen_per_run):
        for i in range(len(times_ms)):
            if owner[i] in run:
                source[i] = min(chosen, key=lambda c: (abs(times_ms[c] - times_ms[i]), c))
    source[candidates] = np.flatnonzero(candidates)
    return candidates, source


@pytest.mark.parametrize(
    "stride_ms, gate_stride_ms, neighbours, held_as, pick",
    [
        (80, None, 0, "min", "max"),
        (80, 40, 1, "costly", "max"),
        (40, 80, 0, "min", "max"),
        (40, None, 0, "costly", "centre"),
        (80, 40, 0, "min", "centre"),
    ],
)
def test_the_peak_rule_scores_each_runs_peak_and_holds_it_over_the_run(
    stride_ms, gate_stride_ms, neighbours, held_as, pick
):
    audio, _ = _recording(seconds=20)
    gate, costly = StandInModel(), CostlyModel()
    settings = cascade.GateSettings(
        threshold=0.5,
        stride_ms=gate_stride_ms,
        rule="peak",
        neighbours=neighbours,
        held=held_as,
        peak=pick,
    )
    out = cascade.cascade_scores(
        costly, gate, audio, stride_ms, settings, batch_size=16, progress=False
    )

    gate_alone = stream_scores(StandInModel(), audio, gate_stride_ms or stride_ms, progress=False)
    alone = stream_scores(CostlyModel(), audio, stride_ms, progress=False)
    mass = gate_alone.scores[:, 2:].sum(axis=1)
    expected, source = _expected_peak_plan(
        alone.times_ms, gate_alone.times_ms, mass, 0.5, neighbours, pick
    )
    if pick == "centre":  # the fixture's runs make the two picks differ
        other, _ = _expected_peak_plan(
            alone.times_ms, gate_alone.times_ms, mass, 0.5, neighbours, "max"
        )
        assert (other != expected).any()
    np.testing.assert_array_equal(out.candidates, expected)
    margin = cascade.candidate_mask(alone.times_ms, gate_alone.times_ms, mass >= 0.5, 0)
    assert 0 < expected.sum() < margin.sum()  # fewer costly windows than the margin rule's
    # The costly model saw exactly the peaks' (and neighbours') audio, in order, and nothing else.
    starts = alone.times_ms[expected] * RATE // 1000
    assert len(costly.windows) == expected.sum()
    np.testing.assert_array_equal(
        np.stack(costly.windows), np.stack([audio[s : s + RATE] for s in starts])
    )
    # Candidates: their own costly scores; held windows: their candidate's (or, label by label,
    # the smaller of those and their own gate scores); the rest: the gate's.
    held = (source >= 0) & ~expected
    assert held.sum() > 0
    np.testing.assert_array_equal(out.held, held)
    np.testing.assert_allclose(out.scores[expected], alone.scores[expected], atol=1e-6)
    own = gate_alone.scores[
        [int(np.argmin(np.abs(gate_alone.times_ms - t))) for t in alone.times_ms]
    ]
    want = alone.scores[source[held]]
    if held_as == "min":
        want = np.minimum(want, own[held])
        assert not np.allclose(want, alone.scores[source[held]])  # the two modes differ here
    np.testing.assert_allclose(out.scores[held], want, atol=1e-6)
    rest = source < 0
    np.testing.assert_allclose(out.scores[rest], own[rest], atol=1e-6)
    # No window outside the candidates and held ones has the gate's passing evidence.
    assert (out.scores[rest][:, 2:].sum(axis=1) < 0.5).all()
    assert cascade.stage_costs(out, len(audio) / RATE)["costly"]["held_windows"] == held.sum()


def test_the_peak_rule_with_wide_neighbours_is_the_margin_rule_at_zero_margin():
    audio, _ = _recording(seconds=20)
    wide = cascade.cascade_scores(
        CostlyModel(),
        StandInModel(),
        audio,
        80,
        cascade.GateSettings(threshold=0.5, rule="peak", neighbours=1000),
        progress=False,
    )
    margin = cascade.cascade_scores(
        CostlyModel(),
        StandInModel(),
        audio,
        80,
        cascade.GateSettings(threshold=0.5, margin_ms=0),
        progress=False,
    )
    assert margin.candidates.sum() > 0
    np.testing.assert_array_equal(wide.candidates & margin.candidates, margin.candidates)
    # Beyond the runs the wide rule also scores gate-only windows; where the margin rule scored,
    # both hold the costly model's own scores.
    np.testing.assert_allclose(
        wide.scores[margin.candidates], margin.scores[margin.candidates], atol=1e-6
    )


def test_peak_rule_settings_are_checked_and_the_tool_takes_them(tmp_path):
    for bad in (dict(rule="max"), dict(neighbours=-1), dict(held="max"), dict(peak="min")):
        with pytest.raises(StageError, match="gate"):
            cascade.GateSettings(**bad)
    from pipeline.cli import parse_args
    from pipeline.tools import stream_eval as tool

    args = parse_args(
        tool.__name__,
        [
            "--model",
            "m",
            "--wav",
            "w",
            "--ground-truth",
            "g",
            "--gate",
            "x",
            "--gate-rule",
            "peak",
            "--gate-neighbours",
            "2",
            "--gate-held",
            "costly",
            "--gate-peak",
            "centre",
        ],
    )
    assert (args.gate_rule, args.gate_neighbours, args.gate_held, args.gate_peak) == (
        "peak",
        2,
        "costly",
        "centre",
    )


@pytest.mark.parametrize(
    "settings",
    [
        cascade.GateSettings(threshold=0.5, margin_ms=100),
        cascade.GateSettings(threshold=0.5, rule="peak", neighbours=1),
    ],
)
def test_the_cascade_from_scores_already_computed_is_the_cascade(settings):
    """combine() over the costly model's scores of every window (what the operating-point bench
    looks up from its cache) equals the cascade that runs the costly model on the candidates."""
    audio, _ = _recording(seconds=20)
    out = cascade.cascade_scores(CostlyModel(), StandInModel(), audio, 80, settings, progress=False)
    gate = stream_scores(StandInModel(), audio, 80, progress=False)
    alone = stream_scores(CostlyModel(), audio, 80, progress=False)
    asked = []

    def lookup(mask):
        asked.append(mask.copy())
        return alone.scores[mask]

    scores, candidates, held = cascade.combine(LABELS, alone.times_ms, gate, lookup, settings)
    assert len(asked) == 1 and 0 < candidates.sum() < len(candidates)
    np.testing.assert_array_equal(asked[0], out.candidates)
    np.testing.assert_array_equal(held, out.held)
    np.testing.assert_allclose(scores, out.scores, atol=1e-6)
    assert not np.allclose(scores, alone.scores, atol=1e-3)  # the gate ruled windows out


def test_averaging_with_other_models_decodes_the_mean_of_their_scores(tmp_path):
    """``average_with``: every model scores every window and the decoder reads the mean; a
    model averaged with itself is itself; other labels, or a gate beside it, are refused."""
    _recording(seconds=30, tmp_path=tmp_path)
    cfg = StreamEvalConfig(detection_threshold=0.5)
    wav, truth = tmp_path / "stream.wav", tmp_path / "labels.txt"
    one, *_, one_scores = run_eval(StandInModel(), wav, truth, cfg)
    two, *_, two_scores = run_eval(CostlyModel(), wav, truth, cfg)
    both, _, found, both_scores = run_eval(
        StandInModel(), wav, truth, cfg, average_with=[CostlyModel()]
    )
    np.testing.assert_allclose(
        both_scores.scores, (one_scores.scores + two_scores.scores) / 2, atol=1e-6
    )
    assert both["averaged_with"] == 1 and "averaged_with" not in one
    assert not np.allclose(both_scores.scores, one_scores.scores)
    itself, *_, itself_scores = run_eval(
        StandInModel(), wav, truth, cfg, average_with=[StandInModel()]
    )
    np.testing.assert_allclose(itself_scores.scores, one_scores.scores, atol=1e-6)
    assert {k: itself[k] for k in ("correct", "wrong", "false_positives")} == {
        k: one[k] for k in ("correct", "wrong", "false_positives")
    }
    other = StandInModel()
    other.labels = [*LABELS[:2], "no", "yes"]
    with pytest.raises(StageError, match="other labels"):
        run_eval(StandInModel(), wav, truth, cfg, average_with=[other])
    with pytest.raises(StageError, match="not with a gate"):
        run_eval(CostlyModel(), wav, truth, cfg, gate=StandInModel(), average_with=[StandInModel()])


def test_mean_scores_weights_and_checks_the_windows():
    from pipeline.streaming.scores import StreamScores, mean_scores

    times = np.array([0, 30, 60])
    a = StreamScores(times, np.array([[1.0, 0.0]] * 3, np.float32), True, 1.0)
    b = StreamScores(times, np.array([[0.0, 1.0]] * 3, np.float32), False, 2.0)
    c = StreamScores(times, np.array([[0.5, 0.5]] * 3, np.float32), True, 3.0)
    np.testing.assert_allclose(mean_scores(a, [b]).scores, [[0.5, 0.5]] * 3)
    np.testing.assert_allclose(mean_scores(a, [b, c]).scores, [[0.5, 0.5]] * 3)
    np.testing.assert_allclose(
        mean_scores(a, [b, c], 0.7).scores, [[0.7 + 0.3 * 0.25, 0.3 * 0.75]] * 3, rtol=1e-6
    )
    assert mean_scores(a, [b]).seconds == 3.0 and not mean_scores(a, [b]).frame_reuse
    assert mean_scores(a, []) is a
    with pytest.raises(StageError, match="same windows"):
        mean_scores(a, [StreamScores(times + 10, b.scores, False, 0.0)])
    with pytest.raises(StageError, match="weight"):
        mean_scores(a, [b], 1.5)
