"""A few real speakers on top of synthetic speech: accuracy on other real speakers when training on
the embedded generator's speakers plus the clips of 0, 5, 20 or 80 real ones.

    python -m bench.research.few_real [--config embedding] [--ns 0 5 20 80] [--draws 3]
        [--real-only] [--data DIR] [--workdir DIR] [--plot docs/few_real.png] [--json OUT]

The real clips are ../shared/data/speech_commands_mini (290 speakers). For draw ``d`` the test
speakers are fold ``d mod 5`` of a salted hash of every speaker id (about 58 speakers, one fifth);
they are never trained on. The others are divided as the split stage would divide them with
``split.hash_salt`` ``few-real`` (10% validation, no test): the first N of a seeded permutation
of those that hash to training are the N training speakers (nested: the 5 of a draw are among its
20), and ``VALIDATION_SPEAKERS`` drawn from those that hash to validation give the train stage its
validation set (only reported there: the final model is the last step's, so it does not pick
anything). N = 0 trains on the generated speakers alone.

Each (N, draw) runs download (``data.source: dir``, ``data.synthetic: true``) -> split ->
featurize -> train as ``python -m pipeline.stages.<stage>`` in its own work folder, on a folder
of links to the chosen clips (nothing is copied), then scores ``models/keras`` on a folder of
links to the test speakers' clips with ``pipeline.tools.evaluate_dir.evaluate_dir`` (a keyword
is its own class, every other word ``_unknown_``). The recordings' ``_background_noise_/`` is left
out (a user's few recordings rarely have one): every run uses the generated noise. Results are
kept in ``<workdir>/results.json``, so a rerun with the same work folder adds only what is
missing (more draws, another N). Prints a table (N, runs, mean accuracy, standard deviation,
min-max, mean per-class accuracy) and plots it. ``--real-only`` is the baseline: the same
draws of real speakers with ``data.synthetic: false`` (N > 0); the plot shows both curves once
the work folder holds both.

Configurations (``--config``): ``embedding`` is presets/real-speech.yaml without training
streams (the speech embedding, ``embedding_conv``, its schedule), the front end that transfers
best from synthetic to real speech, with espeak-ng's speakers only (as measured in
docs/benchmarks.md); ``default`` is params.yaml's, SVOX Pico's speakers included;
``default-quiet`` the same at the generator's first loudness range (the rows measured before it
changed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import REPO, SHARED_MINI, run_stage
from bench.research.kfold import fold_of
from bench.research.synthetic_to_real import NO_KOKORO, NO_VOICES, QUIET, with_presets
from pipeline.core.schema import read_yaml

# name -> (presets applied in order, dotted overrides applied after them)
# QUIET: the generator's first loudness range, at which the first rows of
# docs/experiments/few-real.md were measured (default-quiet reproduces the default's row then);
# default-kokoro is the default before the Kokoro speakers, default-voices before the Piper and
# hibari ones (each reproduces its row).
EARLIER = {**NO_VOICES, **NO_KOKORO}
CONFIGS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "embedding": (
        ["real-speech"],
        {"stream_windows.streams": 0, "data.embedded.pico_speakers": 0, **QUIET, **EARLIER},
    ),
    "default": ([], {}),
    "default-voices": ([], NO_VOICES),
    "default-kokoro": ([], EARLIER),
    "default-quiet": ([], {**QUIET, **EARLIER}),
}
NS = (0, 5, 20, 80)
FOLDS = 5
TEST_SALT = "few-real-test"
SPLIT_SALT = "few-real"
VALIDATION_PERCENTAGE = 10
VALIDATION_SPEAKERS = 10
STAGES = ("download", "split", "featurize", "train")
NOISE_DIR = "_background_noise_"


def speaker_clips(data: Path) -> dict[str, list[Path]]:
    """speaker id -> its word clips (``<word>/<speaker>_nohash_<n>.wav``), background left out."""
    clips: dict[str, list[Path]] = {}
    for path in sorted(data.glob("*/*.wav")):
        if path.parent.name != NOISE_DIR and "_nohash_" in path.name:
            clips.setdefault(path.name.split("_nohash_")[0], []).append(path)
    return clips


def hashed_split(speaker: str) -> str:
    """Where the split stage puts ``speaker`` with the bench's salt and percentages."""
    from pipeline.data.split import which_set

    return which_set(f"{speaker}_nohash_0.wav", VALIDATION_PERCENTAGE, 0, SPLIT_SALT)


def draw_speakers(speakers: list[str], draw: int, n_max: int) -> dict[str, list[str]]:
    """The test speakers of ``draw``, its training order (take the first N) and validation."""
    test = [s for s in speakers if fold_of(s, TEST_SALT, FOLDS) == draw % FOLDS]
    rest = [s for s in speakers if s not in set(test)]
    training = [s for s in rest if hashed_split(s) == "training"]
    validation = [s for s in rest if hashed_split(s) == "validation"]
    rng = random.Random(f"few-real/{draw}")
    rng.shuffle(training)
    rng.shuffle(validation)
    if len(training) < n_max or len(validation) < VALIDATION_SPEAKERS:
        raise SystemExit(
            f"draw {draw}: {len(training)} training and {len(validation)} validation speakers "
            f"available, {n_max} and {VALIDATION_SPEAKERS} needed"
        )
    return {"test": test, "training": training, "validation": validation[:VALIDATION_SPEAKERS]}


def link_clips(folder: Path, clips: list[Path]) -> Path:
    """``folder/<word>/<file>`` links to ``clips`` (the real files are never copied)."""
    for clip in clips:
        target = folder / clip.parent.name / clip.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(clip.resolve())
    return folder


def run_params(base: dict, config: str, clips_dir: Path, synthetic: bool = True) -> dict:
    params = with_presets(base, *CONFIGS[config])
    params["data"].update(source="dir", dir=str(clips_dir), synthetic=synthetic, test_set="hash")
    params["split"].update(
        hash_salt=SPLIT_SALT, validation_percentage=VALIDATION_PERCENTAGE, testing_percentage=0
    )
    return params


def one_run(
    base: dict,
    config: str,
    clips: dict,
    picked: dict,
    n: int,
    test_dir: Path,
    work: Path,
    synthetic: bool = True,
) -> dict:
    """Train on the generated speakers (unless not ``synthetic``) plus ``n`` real ones; score on
    the test speakers."""
    from pipeline.inference import load_model
    from pipeline.tools.evaluate_dir import evaluate_dir

    if work.exists():
        shutil.rmtree(work)
    speakers = picked["training"][:n] + picked["validation"]
    clips_dir = link_clips(work / "clips", [c for s in speakers for c in clips[s]])
    project = work / "project"
    project.mkdir()
    params = run_params(base, config, clips_dir, synthetic)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    started = time.perf_counter()
    for stage in STAGES:
        run_stage(stage, project)
    seconds = time.perf_counter() - started
    split = json.loads((project / "metrics/split.json").read_text(encoding="utf-8"))
    trained = json.loads((project / "metrics/train.json").read_text(encoding="utf-8"))
    result = evaluate_dir(load_model(project / "models/keras"), test_dir)
    per_class = result["per_class"]
    return {
        "n": n,
        "real_training_clips": sum(len(clips[s]) for s in picked["training"][:n]),
        "training_rows": split["splits"]["training"]["total"],
        "synthetic": split.get("synthetic", {}),
        "validation_accuracy": trained["validation_accuracy"],
        "accuracy": result["accuracy"],
        "class_mean": sum(c["accuracy"] for c in per_class.values()) / len(per_class),
        "test_clips": result["clips"],
        "test_speakers": len(picked["test"]),
        "seconds": seconds,
    }


def summarise(rows: list[dict], ns) -> list[dict]:
    table = []
    for n in ns:
        accs = [r["accuracy"] for r in rows if r["n"] == n]
        if not accs:
            continue
        means = [r["class_mean"] for r in rows if r["n"] == n]
        table.append(
            {
                "n": n,
                "runs": len(accs),
                "mean": statistics.fmean(accs),
                "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "min": min(accs),
                "max": max(accs),
                "class_mean": statistics.fmean(means),
            }
        )
    return table


def plot(curves: dict[str, list[dict]], ns, path: Path, title: str) -> None:
    """One line per curve (label -> its runs): the mean with the standard deviation as error
    bars, every run as a dot; N on a log scale past 5."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for (label, rows), colour in zip(curves.items(), ("C0", "C1", "C2"), strict=False):
        table = summarise(rows, ns)
        ax.scatter(
            [r["n"] for r in rows],
            [100 * r["accuracy"] for r in rows],
            s=12,
            color=colour,
            alpha=0.35,
            zorder=2,
        )
        ax.errorbar(
            [t["n"] for t in table],
            [100 * t["mean"] for t in table],
            yerr=[100 * t["std"] for t in table],
            marker="o",
            capsize=4,
            color=colour,
            label=f"{label}: mean ± sd (dots: single draws)",
            zorder=3,
        )
    ax.set_xscale("symlog", linthresh=5)
    ax.set_xticks(list(ns), [str(n) for n in ns])
    ax.set_xlabel("real speakers trained on")
    ax.set_ylabel("accuracy on other real speakers (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="embedding", choices=list(CONFIGS))
    parser.add_argument("--ns", nargs="+", type=int, default=list(NS), help="real speakers")
    parser.add_argument("--draws", type=int, default=3, help="speaker draws per N")
    parser.add_argument("--data", type=Path, default=SHARED_MINI, help="real clips")
    parser.add_argument("--workdir", type=Path, help="keep the work here (default: a temp folder)")
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "few_real.png")
    parser.add_argument("--json", type=Path, help="write every run's result here")
    parser.add_argument("--keep", action="store_true", help="keep each run's project folder")
    parser.add_argument(
        "--real-only",
        action="store_true",
        help="the baseline: the N real speakers alone, no generated ones (N = 0 is skipped)",
    )
    args = parser.parse_args(argv)
    name = f"{args.config}/real-only" if args.real_only else args.config
    ns = [n for n in args.ns if n > 0 or not args.real_only]
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: no such folder of real clips")
    base = read_yaml((REPO / "params.yaml").read_text(encoding="utf-8"))
    root = args.workdir or Path(tempfile.mkdtemp(prefix="few_real_"))
    root.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.research.few_real " + shlex.join(argv or sys.argv[1:])
    print(f"work folder: {root}", flush=True)

    clips = speaker_clips(args.data)
    speakers = sorted(clips)
    done_path = root / "results.json"
    done = json.loads(done_path.read_text(encoding="utf-8")) if done_path.is_file() else []
    rows = [r for r in done if r["config"] == name]
    for draw in range(args.draws):
        picked = draw_speakers(speakers, draw, max(ns))
        test_dir = root / f"test_{draw}"
        if not test_dir.is_dir():
            link_clips(test_dir, [c for s in picked["test"] for c in clips[s]])
        for n in ns:
            if any(r["n"] == n and r["draw"] == draw for r in rows):
                continue
            work = root / f"{name.replace('/', '_')}_n{n}_d{draw}"
            row = {"config": name, "draw": draw}
            synthetic = not args.real_only
            row.update(one_run(base, args.config, clips, picked, n, test_dir, work, synthetic))
            if not args.keep:
                shutil.rmtree(work)
            rows.append(row)
            done.append(row)
            done_path.write_text(json.dumps(done, indent=1), encoding="utf-8")
            print(
                f"[N={n} draw {draw}] {100 * row['accuracy']:.1f}% on {row['test_clips']} clips "
                f"of {row['test_speakers']} speakers ({row['real_training_clips']} real clips "
                f"trained on; {row['seconds']:.0f} s)",
                flush=True,
            )

    rows = [r for r in rows if r["n"] in ns and r["draw"] < args.draws]
    table = summarise(rows, ns)
    date = dt.date.today().isoformat()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(f"\n{command}\n{date}, {machine}, config {name}")
    header = (
        f"{'N':>4} {'runs':>5} {'mean':>7} {'std':>6} {'min-max':>13} {'class mean':>11} "
        f"{'real clips':>11}"
    )
    print(header + "\n" + "-" * len(header))
    for t in table:
        real = statistics.fmean(r["real_training_clips"] for r in rows if r["n"] == t["n"])
        print(
            f"{t['n']:>4} {t['runs']:>5} {100 * t['mean']:>6.1f}% {100 * t['std']:>5.1f} "
            f"{100 * t['min']:>5.1f}-{100 * t['max']:.1f}% {100 * t['class_mean']:>10.1f}% "
            f"{real:>11.0f}"
        )
    curves = {}  # this config with and without the generated speakers, as far as measured
    for label, key in (
        ("generated + N real", args.config),
        ("N real alone", f"{args.config}/real-only"),
    ):
        runs = [r for r in done if r["config"] == key and r["n"] in args.ns]
        runs = [r for r in runs if r["draw"] < args.draws]
        if runs:
            curves[label] = runs
    plot(curves, args.ns, args.plot, f"config {args.config}, {date}")
    print(f"plot: {args.plot}")
    if args.json:
        args.json.write_text(
            json.dumps({"command": command, "date": date, "rows": rows, "table": table}, indent=1),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
