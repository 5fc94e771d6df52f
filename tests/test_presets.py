"""Presets: files of params overrides, validated, turned into the flags dvc exp run applies."""

from __future__ import annotations

import copy
import shutil

import pytest

from pipeline.core.errors import ParamError
from pipeline.core.schema import read_yaml
from pipeline.sections import validate_params
from pipeline.tools.preset import PRESETS_DIR, apply, experiment_flags, flatten, main
from tests.conftest import REPO_ROOT

PRESETS = sorted(p.stem for p in (REPO_ROOT / PRESETS_DIR).glob("*.yaml"))


def test_the_readme_presets_exist():
    assert {"tutorial", "low-latency-conv", "low-latency-svdf", "micro", "real-speech"} <= set(
        PRESETS
    )


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_names_keys_of_params_yaml_and_validates(name, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    preset = read_yaml((REPO_ROOT / PRESETS_DIR / f"{name}.yaml").read_text())
    params = read_yaml((REPO_ROOT / "params.yaml").read_text())
    apply(params, flatten(preset), REPO_ROOT / f"{name}.yaml")  # every key exists ...
    validate_params(params)  # ... and the merged params are valid
    assert experiment_flags([name])


@pytest.mark.parametrize(
    "names", [[p] for p in PRESETS] + [["real-speech", "shared-mini", "official-test"]]
)
def test_dvc_applies_the_flags_to_exactly_the_preset_values(names, tmp_path, monkeypatch):
    """What `dvc exp run -S ...` does to params.yaml (DVC's own override code) equals the
    presets merged onto params.yaml."""
    from dvc.utils.hydra import apply_overrides

    monkeypatch.chdir(REPO_ROOT)
    flags = experiment_flags(names)
    target = tmp_path / "params.yaml"
    shutil.copy(REPO_ROOT / "params.yaml", target)
    apply_overrides(target, flags[1::2])
    expected = read_yaml((REPO_ROOT / "params.yaml").read_text())
    for name in names:
        apply(
            expected,
            flatten(read_yaml((REPO_ROOT / PRESETS_DIR / f"{name}.yaml").read_text())),
            name,
        )
    assert read_yaml(target.read_text()) == expected


def test_bad_presets_are_named(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    typo = tmp_path / "typo.yaml"
    typo.write_text("train:\n  dropuot: 0.1\n")
    with pytest.raises(ParamError, match=r"typo.yaml: train.dropuot is not a key of params.yaml"):
        experiment_flags([str(typo)])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  optimizer: sgd\n")
    with pytest.raises(ParamError, match="train.optimizer = 'sgd' is not allowed"):
        experiment_flags([str(bad)])
    with pytest.raises(ParamError, match="preset 'nope' not found"):
        experiment_flags(["nope"])
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ParamError, match="a preset is a mapping"):
        experiment_flags([str(empty)])


def test_command_line_prints_the_dvc_command(monkeypatch, capsys):
    monkeypatch.chdir(REPO_ROOT)
    assert main(["micro"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("dvc exp run -S ")
    assert "-S features.preprocess=micro" in out
    assert "-S train.model_architecture=tiny_conv" in out
    assert main(["--list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in PRESETS)


def test_later_presets_override_earlier_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("train:\n  dropout: 0.1\n  batch_size: 50\n")
    second.write_text("train:\n  dropout: 0.2\n")
    flags = experiment_flags([str(first), str(second)])
    assert flags == ["-S", "train.dropout=0.2", "-S", "train.batch_size=50"]
    params = copy.deepcopy(read_yaml((REPO_ROOT / "params.yaml").read_text()))
    assert params["train"]["dropout"] != 0.2  # the repository's params are untouched


def test_the_tutorial_preset_is_the_originals_configuration():
    """presets/tutorial.yaml on params.yaml gives train.py's defaults (the facts of the original
    implementation), whatever the default pipeline changes around it."""
    params = read_yaml((REPO_ROOT / "params.yaml").read_text())
    apply(params, flatten(read_yaml((REPO_ROOT / PRESETS_DIR / "tutorial.yaml").read_text())), "t")
    original = {
        "augment": {"background_volume": 0.1, "background_frequency": 0.8, "time_shift_ms": 100},
        "split": {
            "silence_percentage": 10,
            "unknown_percentage": 10,
            "validation_percentage": 10,
            "testing_percentage": 10,
            "wanted_words": ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"],
        },
        "features": {
            "sample_rate": 16000,
            "clip_duration_ms": 1000,
            "window_size_ms": 30,
            "window_stride_ms": 10,
            "feature_bin_count": 40,
            "preprocess": "mfcc",
        },
        "train": {
            "how_many_training_steps": [15000, 3000],
            "learning_rate": [0.001, 0.0001],
            "eval_step_interval": 400,
            "batch_size": 100,
            "model_architecture": "conv",
            "optimizer": "gradient_descent",
            "dropout": 0.5,
            "label_smoothing": 0,
            "spec_augment": False,
        },
        "stream_eval": {
            "average_window_ms": 500,
            "detection_threshold": 0.7,
            "suppression_ms": 1500,
            "minimum_count": 3,
            "minimum_margin": 0.0,
            "repeat_commands": False,
        },
    }
    for section, values in original.items():
        for key, value in values.items():
            assert params[section][key] == value, f"{section}.{key}"
