"""Accuracy on real speech: the pipeline on the shared real clips, trained and tested on
different speakers.

    python -m bench.research.real_speech [--configs embedding ds_cnn conv] [--data DIR]
        [--workdir DIR]

For each feature front end it runs download (data.source: dir) -> split (split.hash_salt "x",
so speakers are split by a salted hash instead of the official-test-heavy original rule) ->
featurize once in a work folder, then train -> evaluate for every configuration that uses those
features, as `python -m pipeline.stages.<stage>` with the repository's params.yaml plus the
overrides below. Prints a table of test accuracy on held-out speakers with the training time.

One split of ~255 test clips moves by several points with the speakers it happens to hold: decide
between configurations with bench/research/kfold.py (speaker-disjoint 5-fold over every clip).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path

import yaml

from bench.common import REPO, SHARED_MINI, run_stage
from pipeline.core.schema import read_yaml

# name -> (features overrides, augment overrides, train overrides)
CONFIGS = {
    "embedding": (
        {"preprocess": "embedding"},
        {"copies": 4},
        {
            "model_architecture": "embedding_head",
            "how_many_training_steps": [2000, 500],
            "learning_rate": [0.001, 0.0001],
            "batch_size": 100,
            "optimizer": "adam",
            "dropout": 0.5,
        },
    ),
    "ds_cnn": (
        {"preprocess": "mfcc"},
        {"copies": 4},
        {
            "model_architecture": "ds_cnn",
            "how_many_training_steps": [3000, 1000],
            "learning_rate": [0.002, 0.0002],
            "batch_size": 100,
            "optimizer": "adam",
            "dropout": 0.3,
            "spec_augment": True,
        },
    ),
    "conv": (
        {"preprocess": "mfcc"},
        {"copies": 4},
        # The original's topology and optimizer; far fewer steps than its 18,000 (2 CPU cores).
        {
            "model_architecture": "conv",
            "how_many_training_steps": [600, 150],
            "learning_rate": [0.001, 0.0001],
            "batch_size": 50,
            "optimizer": "gradient_descent",
        },
    ),
}


def write_params(
    work: Path, base: dict, features: dict, augment: dict, train: dict, data_dir: Path
) -> None:
    params = copy.deepcopy(base)
    params["data"].update(source="dir", dir=str(data_dir), test_set="hash")
    params["split"]["hash_salt"] = "x"
    params["features"].update(features)
    params["augment"].update(augment)
    params["train"].update(train)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument(
        "--data", type=Path, default=SHARED_MINI, help="real clips in the training layout"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the work here (default: a temporary folder)"
    )
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: no such folder of real clips")
    base = read_yaml((REPO / "params.yaml").read_text(encoding="utf-8"))
    root = args.workdir or Path(tempfile.mkdtemp(prefix="real_speech_"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {root}", flush=True)

    rows = []
    prepared: dict[str, Path] = {}
    for name in args.configs:
        features, augment, train = CONFIGS[name]
        key = json.dumps([features, augment], sort_keys=True)
        if key not in prepared:
            work = root / f"features_{len(prepared)}"
            work.mkdir(parents=True, exist_ok=True)
            write_params(work, base, features, augment, train, args.data)
            seconds = sum(run_stage(stage, work) for stage in ("download", "split", "featurize"))
            print(f"[{name}] download+split+featurize: {seconds:.0f} s", flush=True)
            prepared[key] = work
        work = prepared[key]
        write_params(work, base, features, augment, train, args.data)
        train_seconds = run_stage("train", work)
        run_stage("evaluate", work)
        train_metrics = json.loads((work / "metrics/train.json").read_text(encoding="utf-8"))
        test_metrics = json.loads((work / "metrics/evaluate.json").read_text(encoding="utf-8"))
        split = (
            json.loads((work / "metrics/split.json").read_text(encoding="utf-8"))
            if (work / "metrics/split.json").is_file()
            else {}
        )
        rows.append(
            {
                "config": name,
                "preprocess": features["preprocess"],
                "architecture": train["model_architecture"],
                "parameters": train_metrics["parameters"],
                "steps": train_metrics["steps"],
                "train_s": train_seconds,
                "validation": train_metrics["validation_accuracy"],
                "test": test_metrics["accuracy"],
                "test_n": test_metrics["examples"],
            }
        )
        print(f"[{name}] {json.dumps(rows[-1])}", flush=True)
        if split:
            print(f"[{name}] split: {json.dumps(split)[:300]}", flush=True)

    header = (
        f"{'config':<10} {'features':<10} {'model':<15} {'params':>8} {'steps':>6} "
        f"{'train s':>8} {'val acc':>8} {'test acc':>9} {'test N':>7}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        print(
            f"{r['config']:<10} {r['preprocess']:<10} {r['architecture']:<15} "
            f"{r['parameters']:>8,} {r['steps']:>6} {r['train_s']:>8.0f} "
            f"{100 * r['validation']:>7.1f}% {100 * r['test']:>8.1f}% {r['test_n']:>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
