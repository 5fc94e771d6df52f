"""What the benchmark scripts share: where the repository and the shared data are, the
repository's params and an untrained stand-in export.

A benchmark of speed needs a model of the configured architecture and front end, trained or not
(an untrained one costs the same per call); before `dvc repro` has trained one, this exports an
untrained stand-in with the freeze stage's own code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.core.params import read_params
from pipeline.sections import validate_params

REPO = Path(__file__).resolve().parents[1]
SHARED_MINI = REPO.parent / "shared" / "data" / "speech_commands_mini"
FROZEN = REPO.parent / "shared" / "pretrained" / "conv_actions_frozen.pb"


def run_stage(stage: str, work: Path) -> float:
    """Run ``python -m pipeline.stages.<stage>`` in the work folder ``work`` (its params.yaml, its
    data/ and models/) with this repository's code; its seconds. A failure stops the bench with
    the stage's last error lines."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", f"pipeline.stages.{stage}"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    if result.returncode != 0:
        raise SystemExit(f"{stage} failed in {work}:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def repo_params() -> dict:
    """The repository's params.yaml, every section typed and validated."""
    return validate_params(read_params(REPO / "params.yaml"))


def stand_in_keras(params: dict, folder: Path) -> Path:
    """An untrained model of params.yaml's architecture and front end, saved as the train stage
    saves one (scores, labels.txt, meta.json)."""
    from pipeline.core.labels import prepare_words_list, write_labels
    from pipeline.models import build_model
    from pipeline.models.io import with_softmax

    features, train = params["features"], params["train"]
    labels = prepare_words_list(params["split"].wanted_words)
    model = build_model(
        train.model_architecture, features.feature_shape, len(labels), train.dropout
    )
    folder.mkdir(parents=True)
    with_softmax(model).save(folder / "model.keras")
    write_labels(folder / "labels.txt", labels)
    (folder / "meta.json").write_text(
        json.dumps({"features": features.to_dict()}), encoding="utf-8"
    )
    return folder


def stand_in_export(params: dict, keras_dir: Path, work: Path) -> Path:
    """Export ``keras_dir`` with the freeze stage (random features as the int8 calibration set;
    params' vocal-tract views where its front end has them)."""
    from pipeline.data.feature_store import write_features
    from pipeline.export.freeze import ExportInputs, freeze

    features = params["features"]
    rng = np.random.default_rng(0)
    write_features(
        work,
        "train",
        rng.normal(0, 1, (64, *features.feature_shape)).astype(np.float32),
        np.zeros(64, np.int32),
    )
    freeze(
        keras_dir,
        work / "export",
        work / "export.json",
        features,
        params["split"].wanted_words,
        ExportInputs(
            features_dir=work,
            test_manifest=None,
            views=tuple(params["export"].views) if features.frontend.supports_views else (1.0,),
        ),
    )
    return work / "export"
