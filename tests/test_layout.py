"""The house rules of docs/architecture.md, checked against the code itself.

dvc.yaml's code deps must cover every module a stage runs (else a code change leaves a stale
output that DVC calls up to date), stages must not import each other, library code must not
import an entry point, outputs live where pipeline/core/paths.py says, and the lists that params
validation accepts come from the registries.
"""

from __future__ import annotations

import dataclasses
import graphlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.core import paths
from pipeline.core.metrics_files import details_path
from pipeline.core.schema import read_yaml
from pipeline.frontends import FRONTENDS, FeatureConfig, embedding, features_numpy
from pipeline.models import MODELS
from pipeline.tools.stage_deps import (
    check_stage,
    closure,
    direct_imports,
    layer_violations,
    module_name,
    stage_modules,
    stale_lock_deps,
)
from pipeline.training.config import TrainConfig
from tests.conftest import REPO_ROOT

DVC = read_yaml((REPO_ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(DVC))
def test_dvc_yaml_lists_every_module_the_stage_runs(stage):
    module = stage_modules(REPO_ROOT)[stage]
    assert module == f"pipeline.stages.{stage}"
    assert check_stage(REPO_ROOT, stage, module, [str(d) for d in DVC[stage]["deps"]]) == []


def test_the_dependency_check_can_fail():
    """Dropping a module the stage runs, or listing one it does not, is reported."""
    deps = [str(d) for d in DVC["train"]["deps"]]
    missing = [d for d in deps if d != "pipeline/training"]
    problems = check_stage(REPO_ROOT, "train", "pipeline.stages.train", missing)
    assert any("pipeline/training/loop.py but dvc.yaml does not list it" in p for p in problems)
    extra = check_stage(REPO_ROOT, "train", "pipeline.stages.train", deps + ["pipeline/streaming"])
    assert extra == ["train: dep pipeline/streaming is code the stage does not run"]


def test_dvc_lock_records_the_committed_code_and_params():
    """A commit that changes a stage's code without `dvc repro` leaves dvc.lock naming other code:
    every fresh clone then reruns that stage and its metrics drift from the committed ones. Skipped
    while stage code, params or the lock have uncommitted changes (the lock lags by design then)."""
    dvc = Path(sys.executable).parent / "dvc"
    if not dvc.exists():
        pytest.skip("dvc is installed by `make install`")
    try:
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--",
                "pipeline",
                "params.yaml",
                "dvc.yaml",
                "dvc.lock",
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    if dirty.strip():
        pytest.skip(
            "uncommitted changes to stage code or params: run `dvc repro` before committing"
        )
    out = subprocess.run(
        [str(dvc), "status", "--json"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert stale_lock_deps(json.loads(out.stdout)) == []


def test_the_lock_check_can_fail():
    """Code and params changes are reported; missing data deps and outputs (a fresh clone) are
    not."""
    status = {
        "train": [
            {
                "changed deps": {
                    "data/features": "deleted",
                    "pipeline/models": "modified",
                    "params.yaml": {"train.dropout": "modified"},
                }
            },
            {"changed outs": {"models/keras": "not in cache"}},
        ],
        "evaluate": [{"changed deps": {"models/keras": "deleted"}}],
        "download": ["always changed"],
    }
    assert stale_lock_deps(status) == [
        "train: pipeline/models modified",
        "train: params.yaml {'train.dropout': 'modified'}",
    ]


def test_function_level_imports_count():
    """Imports inside functions run too: freeze's lazy model loading is part of its closure."""
    modules = closure(REPO_ROOT, "pipeline.stages.freeze")
    assert "pipeline.models.io" in modules and "pipeline.inference.loader" in modules
    assert not any(name.startswith("pipeline.training") for name in modules)


def test_layering_rules_hold():
    assert layer_violations(REPO_ROOT) == []


def test_layering_check_catches_a_stage_importing_a_stage(tmp_path):
    root = tmp_path / "repo"
    for name in (
        "pipeline/__init__.py",
        "pipeline/stages/__init__.py",
        "pipeline/data/__init__.py",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")
    (root / "pipeline/stages/split.py").write_text("X = 1\n")
    (root / "pipeline/stages/train.py").write_text(
        "def main():\n    from pipeline.stages.split import X\n"
    )
    (root / "pipeline/data/helper.py").write_text("from pipeline.cli import run_main\n")
    (root / "pipeline/data/upward.py").write_text("import pipeline.training.loop\n")
    (root / "pipeline/training/loop.py").parent.mkdir()
    (root / "pipeline/training/__init__.py").write_text("")
    (root / "pipeline/training/loop.py").write_text("")
    (root / "pipeline/cli.py").write_text("")
    assert layer_violations(root) == [
        "pipeline.data.helper (library code) imports pipeline.cli",
        "pipeline.data.upward (layer data) imports pipeline.training.loop (layer training)",
        "pipeline.stages.train (a stage) imports pipeline.stages.split",
    ]


def test_layering_check_keeps_acquisition_apart(tmp_path):
    """Acquisition (``data/acquire/``, the download stage's) may use the rest of ``data``, but no
    other library module may import it; streaming no longer reads the data layer."""
    root = tmp_path / "repo"
    files = {
        "pipeline/__init__.py": "",
        "pipeline/data/__init__.py": "",
        "pipeline/data/clip_store.py": "",
        "pipeline/data/acquire/__init__.py": "",
        "pipeline/data/acquire/sources.py": "from pipeline.data.clip_store import X\n",
        "pipeline/data/featurize.py": "from pipeline.data.acquire import sources\n",
        "pipeline/evaluation/__init__.py": "",
        "pipeline/evaluation/metrics.py": "import pipeline.data.acquire.sources\n",
        "pipeline/streaming/__init__.py": "",
        "pipeline/streaming/scores.py": "from pipeline.data import clip_store\n",
        "pipeline/stages/__init__.py": "",
        "pipeline/stages/download.py": "from pipeline.data.acquire.sources import build_raw\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert layer_violations(root) == [
        "pipeline.data.featurize (layer data) imports pipeline.data.acquire (layer data.acquire)",
        "pipeline.data.featurize (layer data) imports pipeline.data.acquire.sources "
        "(layer data.acquire)",
        "pipeline.evaluation.metrics (layer evaluation) imports pipeline.data.acquire.sources "
        "(layer data.acquire)",
        "pipeline.streaming.scores (layer streaming) imports pipeline.data (layer data)",
        "pipeline.streaming.scores (layer streaming) imports pipeline.data.clip_store (layer data)",
    ]


def test_dvc_outs_are_where_the_paths_module_says():
    outs = {}
    for stage, spec in DVC.items():
        for key in ("outs", "metrics"):
            for out in spec.get(key, []):
                outs[str(next(iter(out)) if isinstance(out, dict) else out)] = stage
    expected = {
        paths.RAW_DIR: "download",
        paths.SPLIT_DIR: "split",
        paths.SPLIT_METRICS: "split",
        paths.FEATURES_DIR: "featurize",
        paths.MODEL_DIR: "train",
        paths.TRAIN_METRICS: "train",
        paths.TRAIN_CURVE: "train",
        paths.EVALUATE_METRICS: "evaluate",
        paths.CONFUSION_CSV: "evaluate",
        paths.CONFUSION_PNG: "evaluate",
        paths.EXPORT_DIR: "freeze",
        paths.EXPORT_METRICS: "freeze",
        paths.STREAM_DIR: "synthesize_stream",
        paths.STREAM_METRICS: "stream_eval",
        paths.STREAM_SWEEP: "stream_eval",
        **{
            details_path(metrics): stage
            for metrics, stage in (
                (paths.SPLIT_METRICS, "split"),
                (paths.TRAIN_METRICS, "train"),
                (paths.EVALUATE_METRICS, "evaluate"),
                (paths.EXPORT_METRICS, "freeze"),
                (paths.STREAM_METRICS, "stream_eval"),
            )
        },
    }
    assert outs == {p.as_posix(): stage for p, stage in expected.items()}


def test_params_choices_come_from_the_registries():
    assert FeatureConfig.spec_of("preprocess").choices == tuple(FRONTENDS)
    assert TrainConfig.spec_of("model_architecture").choices == tuple(MODELS)
    for name, spec in MODELS.items():
        assert spec.name == name
        if dataclasses.fields(spec.options):
            assert spec.options.section == f"model.{name}"


def test_front_end_imports_run_one_way():
    """Inside frontends/ imports run one way (window <- base <- front ends <- registry <- config
    <- compute): a front end computes from the FeatureWindow it is given, never back through the
    config, and only the config picks a front end from the registry."""
    folder = REPO_ROOT / "pipeline" / "frontends"
    imports = {
        module_name(REPO_ROOT, path): {
            name
            for name in direct_imports(REPO_ROOT, path)
            if name.startswith("pipeline.frontends.")
        }
        for path in folder.glob("*.py")
        if path.name != "__init__.py"
    }
    assert imports["pipeline.frontends.window"] == set()
    assert imports["pipeline.frontends.base"] == {"pipeline.frontends.window"}
    assert {m for m, names in imports.items() if "pipeline.frontends.registry" in names} == {
        "pipeline.frontends.config"
    }
    list(graphlib.TopologicalSorter(imports).static_order())  # CycleError names a circle


@pytest.mark.parametrize("name", sorted(FRONTENDS))
def test_every_front_end_computes_the_shape_it_declares(name):
    frontend = FRONTENDS[name]
    assert frontend.name == name and frontend.description
    cfg = FeatureConfig(preprocess=name)
    audio = np.random.default_rng(0).uniform(-0.3, 0.3, (2, cfg.desired_samples)).astype(np.float32)
    assert features_numpy(audio, cfg).shape == (2, *cfg.feature_shape)
    if frontend.frame_reuse:  # a recording's stream features sliced at a clip are the clip's
        # (silence after the clip: the speech embedding's windows also see its context)
        longer = np.concatenate([audio[0], np.zeros_like(audio[1])])
        frames = frontend.stream_features(longer, cfg)
        assert len(frames) > cfg.feature_shape[0]
        # The speech embedding clamps a stream's mel causally (embedding.py): the embeddings that
        # read the leading padding, silence before any sound, are not a padded clip's.
        first = (
            -(-embedding.PAD_SAMPLES // embedding.EMBEDDING_HOP_SAMPLES)
            if isinstance(frontend, embedding.SpeechEmbedding)
            else 0
        )
        np.testing.assert_allclose(
            frames[first : cfg.feature_shape[0]],
            features_numpy(audio[0], cfg)[first:],
            atol=1e-4,
            rtol=1e-5,
        )


def test_kws_command_runs_the_tools():
    kws = Path(sys.executable).parent / "kws"
    if not kws.is_file():
        pytest.skip("the kws console script is installed by `make install`")
    result = subprocess.run([str(kws), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "label-wav" in result.stdout
    result = subprocess.run(
        [str(kws), "label-wav", "--model", "nowhere", "--wav", "x.wav"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "error [pipeline.tools.label_wav]" in result.stderr
