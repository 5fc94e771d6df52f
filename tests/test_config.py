"""Parameter validation: every stage refuses bad params with a message naming the key."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.errors import ParamError
from pipeline.core.params import SECTION_NAMES, load_params
from pipeline.core.schema import read_yaml
from pipeline.data.config import DataConfig, SplitConfig
from pipeline.sections import SECTIONS, defaults, validate_params
from pipeline.training.config import TrainConfig


def validate(params, sections=None):
    return validate_params(params, sections)


REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def params():
    return read_yaml((REPO_ROOT / "params.yaml").read_text())


def test_repository_params_are_valid_and_cover_the_schema(params):
    validate(params)
    assert set(params) == set(SECTIONS) <= set(SECTION_NAMES)


def test_params_yaml_holds_the_schema_defaults(params):
    """The section classes are the one home of each key's default; params.yaml ships them."""
    assert params == defaults()


@pytest.mark.parametrize(
    "section, key, value, fragment",
    [
        ("train", "batch_size", "100", "train.batch_size"),
        ("train", "batch_size", 0, "out of range"),
        ("train", "optimizer", "sgd", "one of 'gradient_descent'"),
        ("train", "learning_rate", [0.001, "fast"], "train.learning_rate[1]"),
        ("train", "check_nans", 1, "train.check_nans"),
        ("features", "preprocess", "fft", "features.preprocess"),
        ("features", "sample_rate", 8.5, "features.sample_rate"),
        ("split", "validation_percentage", -1, "out of range"),
        ("split", "wanted_words", [], "must not be empty"),
        ("data", "source", "ftp", "data.source"),
        ("stream_eval", "detection_threshold", 1.5, "stream_eval.detection_threshold"),
    ],
)
def test_bad_values_name_the_key(params, section, key, value, fragment):
    bad = copy.deepcopy(params)
    bad[section][key] = value
    with pytest.raises(ParamError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        validate(bad)


def test_unknown_key_lists_the_allowed_ones(params):
    bad = copy.deepcopy(params)
    bad["train"]["batchsize"] = 10
    with pytest.raises(ParamError) as info:
        validate(bad)
    assert "unknown key train.batchsize" in str(info.value)
    assert "batch_size" in str(info.value)


def test_unknown_nested_key_and_unknown_section(params):
    bad = copy.deepcopy(params)
    bad["data"]["embedded"]["voices"] = 3
    with pytest.raises(ParamError, match="data.embedded.voices"):
        validate(bad)
    bad = copy.deepcopy(params)
    bad["trian"] = {}
    with pytest.raises(ParamError, match="unknown section 'trian'"):
        validate(bad)


def test_missing_key_is_named(params):
    bad = copy.deepcopy(params)
    del bad["features"]["window_size_ms"]
    with pytest.raises(ParamError, match="missing key features.window_size_ms"):
        validate(bad)


def test_bare_yes_no_on_off_are_words_as_dvc_reads_them(tmp_path):
    """DVC rewrites params.yaml without quotes on `dvc exp run -S`; the words must survive."""
    from dvc.utils.serialize import modify_yaml

    path = tmp_path / "params.yaml"
    path.write_text((REPO_ROOT / "params.yaml").read_text())
    with modify_yaml(path) as data:  # what `dvc exp run -S train.batch_size=50` does
        data["train"]["batch_size"] = 50
    train, split = load_params(path, TrainConfig, SplitConfig)
    assert train.batch_size == 50
    assert split.wanted_words[:4] == ["yes", "no", "up", "down"]
    assert "on" in split.wanted_words and "off" in split.wanted_words


def test_true_false_in_word_list_get_a_hint(tmp_path):
    text = (REPO_ROOT / "params.yaml").read_text()
    start = text.index("wanted_words:")
    end = text.index("\n", start)
    path = tmp_path / "params.yaml"
    path.write_text(text[:start] + "wanted_words: [yes, true]" + text[end:])
    with pytest.raises(ParamError, match="quote the word"):
        load_params(path, SplitConfig)


def test_cross_field_rules(params):
    bad = copy.deepcopy(params)
    bad["train"]["learning_rate"] = [0.01]
    with pytest.raises(ParamError, match="same length"):
        validate(bad)
    bad = copy.deepcopy(params)
    bad["split"]["validation_percentage"] = 60
    bad["split"]["testing_percentage"] = 50
    with pytest.raises(ParamError, match="<= 100"):
        validate(bad)
    bad = copy.deepcopy(params)
    bad["split"]["wanted_words"] = ["yes", "yes"]
    with pytest.raises(ParamError, match="'yes' is listed twice"):
        validate(bad)


def test_only_requested_sections_are_checked(params):
    bad = copy.deepcopy(params)
    bad["train"]["batch_size"] = -5
    validate(bad, sections=["features"])  # a stage that does not read train is unaffected
    with pytest.raises(ParamError):
        validate(bad, sections=["train"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ParamError, match="not found"):
        load_params(tmp_path / "nope.yaml", TrainConfig)
    broken = tmp_path / "params.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(ParamError, match="not valid YAML"):
        load_params(broken, TrainConfig)


def test_stage_entry_point_prints_one_line_and_exits_1(tmp_path):
    """A stage started with bad params stops before any work with a readable message."""
    text = (REPO_ROOT / "params.yaml").read_text().replace("batch_size: 100", "batch_size: -1")
    (tmp_path / "params.yaml").write_text(text)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pipeline.cli import run_main\n"
            "from pipeline.core.params import load_params\n"
            "from pipeline.training.config import TrainConfig\n"
            "run_main(lambda argv: load_params('params.yaml', TrainConfig))",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "train.batch_size = -1 is out of range" in result.stderr
    assert "Traceback" not in result.stderr


def test_words_become_labels_and_bad_words_are_named(params):
    good = copy.deepcopy(params)
    good["split"]["wanted_words"] = ["Lights  On", "hey nova", "hallo"]
    good["data"]["embedded"]["unknown_words"] = ["Cat", "tschüss", "नमस्ते"]
    split = SplitConfig.from_dict(good["split"])
    assert split.wanted_words == ["lights_on", "hey_nova", "hallo"]
    assert DataConfig.from_dict(good["data"]).embedded.unknown_words == ["cat", "tschüss", "नमस्ते"]
    for words, message in [
        (["yes", "Yes"], "the word 'Yes' is listed twice"),
        (["lights on", "lights_on"], "the word 'lights_on' is listed twice"),
        (["yes", "_silence_"], "the word '_silence_' collides with the reserved label"),
        (["_Unknown_"], "the word '_Unknown_' collides with the reserved label '_unknown_'"),
        (["   "], "the word '   ' is empty"),
        (["?!"], "the word '?!' holds '?'"),
        (["__"], "the word '__' has no letter or digit"),
        (["up/down"], "the word 'up/down' holds '/'"),
    ]:
        bad = copy.deepcopy(params)
        bad["split"]["wanted_words"] = words
        with pytest.raises(ParamError, match="split.wanted_words: " + re.escape(message)):
            SplitConfig.from_dict(bad["split"])
        bad = copy.deepcopy(params)
        bad["data"]["embedded"]["unknown_words"] = words
        with pytest.raises(ParamError, match="data.embedded.unknown_words: " + re.escape(message)):
            DataConfig.from_dict(bad["data"])


def test_embedded_ranges_are_low_then_high(params):
    bad = copy.deepcopy(params)
    bad["data"]["embedded"]["rate"] = [175, 80]
    with pytest.raises(
        ParamError, match=re.escape("data.embedded.rate = [175, 80]: expected [low")
    ):
        DataConfig.from_dict(bad["data"])
    bad["data"]["embedded"]["rate"] = [80, 175]
    bad["data"]["embedded"]["reverb_fraction"] = 1.5
    with pytest.raises(ParamError, match="data.embedded.reverb_fraction"):
        DataConfig.from_dict(bad["data"])
