"""Parameter validation: every stage refuses bad params with a message naming the key."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.core.errors import ParamError
from pipeline.core.params import SECTION_NAMES, load_params, read_params
from pipeline.core.schema import read_yaml
from pipeline.data.config import DataConfig, SplitConfig
from pipeline.sections import SECTIONS, defaults, validate_file, validate_params
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


def test_params_yaml_holds_the_schema_defaults_but_for_the_default_models_choices(params):
    """The section classes are the one home of each key's default (the value a section built in
    code takes: ds_cnn on MFCC, the original's decoder); params.yaml ships them, except the
    default pipeline's choices (the speech embedding, embedding_conv, rooms), which
    presets/ds-cnn.yaml turns back, key for key, into the classes' defaults."""
    from pipeline.tools.preset import PRESETS_DIR, apply, flatten, read_preset

    choices = flatten(read_preset(REPO_ROOT / PRESETS_DIR / "ds-cnn.yaml"))
    assert all(read_dotted(params, key) != value for key, value in choices.items())
    apply(params, choices, "ds-cnn.yaml")
    assert params == defaults()


def read_dotted(params: dict, dotted: str):
    node = params
    for part in dotted.split("."):
        node = node[part]
    return node


@pytest.mark.parametrize(
    "section, key, value, fragment",
    [
        ("train", "batch_size", "100", "train.batch_size"),
        ("train", "batch_size", 0, "out of range"),
        ("train", "optimizer", "sgd", "one of 'gradient_descent'"),
        ("train", "learning_rate", [0.001, "fast"], "train.learning_rate[1]"),
        ("train", "check_nans", 1, "train.check_nans"),
        ("train", "label_smoothing", 1.5, "out of range"),
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


# --- The whole file, read as DVC reads it, checked before any stage works ---------------------


def write_params(tmp_path, edit=None, text=None) -> Path:
    """params.yaml in ``tmp_path``: the repository's, with ``edit(params)`` applied, or ``text``."""
    path = tmp_path / "params.yaml"
    if text is None:
        params = read_yaml((REPO_ROOT / "params.yaml").read_text())
        if edit is not None:
            edit(params)
        text = yaml.safe_dump(params, sort_keys=False)
    path.write_text(text)
    return path


def replace_line(old: str, new: str) -> str:
    text = (REPO_ROOT / "params.yaml").read_text()
    assert text.count(old) == 1, old
    return text.replace(old, new)


def one_line_error(path, fragment: str) -> str:
    with pytest.raises(ParamError) as info:
        validate_file(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    assert fragment in message, message
    return message


def test_number_forms_are_read_as_dvc_reads_them(tmp_path):
    """`017` is 17 (YAML 1.2, what DVC records), `1e-05` and `1e-3` are floats, `1:30` a word."""
    from dvc.utils.serialize import load_yaml

    text = replace_line("  seed: 59185\n", "  seed: 017\n")
    text = text.replace("learning_rate: [0.001, 0.0001]", "learning_rate: [1e-3, 1e-05]")
    path = write_params(tmp_path, text=text)
    split, train = load_params(path, SplitConfig, TrainConfig)
    assert split.seed == 17 and train.learning_rate == [0.001, 1e-05]
    assert read_params(path) == load_yaml(path)  # the same mapping DVC reads
    text = replace_line("word_interval_ms: 3000", "word_interval_ms: 1:30")
    one_line_error(
        write_params(tmp_path, text=text), "stream.word_interval_ms = '1:30' has type str"
    )


def test_learning_rates_set_with_dvc_exp_run_s_are_numbers(tmp_path):
    """`dvc exp run -S 'train.learning_rate=[0.00001,0.000001]'` writes `1e-05`: still floats."""
    from dvc.utils.hydra import apply_overrides

    path = write_params(tmp_path)
    apply_overrides(path, ["train.learning_rate=[0.00001,0.000001]"])
    assert "1e-05" in path.read_text()
    assert load_params(path, TrainConfig).learning_rate == [1e-05, 1e-06]
    validate_file(path)


def test_aliases_anchors_and_duplicate_keys_are_refused(tmp_path):
    text = replace_line("model:\n", "model: &m\n").replace("stream_eval:\n", "stream_eval: *m\n")
    one_line_error(write_params(tmp_path, text=text), "YAML anchor 'm' is not allowed")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    one_line_error(write_params(tmp_path, text=bomb), "line 1: YAML anchor 'a' is not allowed")
    text = replace_line("  batch_size: 100\n", "  batch_size: 100\n  batch_size: 50\n")
    message = one_line_error(write_params(tmp_path, text=text), 'duplicate key "batch_size"')
    assert "line " in message


def test_unknown_top_level_section_and_odd_keys_are_one_line(tmp_path):
    path = write_params(tmp_path, lambda p: p.update(trian={"batch_size": 5}))
    one_line_error(path, "unknown section 'trian'; allowed: data, split")
    path = write_params(tmp_path, lambda p: p["train"].update({1: 2}))
    one_line_error(path, "unknown key train.1")


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda p: p["train"].update(seed=4294967296), "train.seed = 4294967296 is out of range"),
        (lambda p: p["split"].update(seed=-1), "split.seed = -1 is out of range"),
        (
            lambda p: p["augment"].update(time_shift_ms=10000),
            "augment.time_shift_ms (10000) must be below features.clip_duration_ms (1000)",
        ),
        (
            lambda p: p["features"].update(preprocess="mfcc", feature_bin_count=512),
            "features.feature_bin_count = 512 is out of range for 'mfcc': at most 40",
        ),
        (
            lambda p: p["features"].update(preprocess="mfcc", sample_rate=4000),
            "features.sample_rate = 4000 is too low for 'mfcc'",
        ),
        (
            lambda p: p["features"].update(preprocess="micro", window_stride_ms=40),
            "features.window_stride_ms = 40 exceeds window_size_ms = 30",
        ),
        (
            lambda p: p["features"].update(preprocess="micro", sample_rate=8000),
            "features.sample_rate = 8000 is too low for 'micro'",
        ),
        (
            lambda p: p["stream"].update(background_segment_ms=10**12),
            "stream.background_segment_ms = 1000000000000 is out of range",
        ),
        (
            lambda p: p["stream"].update(background_segment_ms=700_000),
            "stream.background_segment_ms (700000) exceeds stream.duration_s (600 s)",
        ),
        (
            lambda p: (
                p["stream_windows"].update(streams=1, duration_s=10),
                p["stream"].update(background_segment_ms=20_000),
            ),
            "stream.background_segment_ms (20000) exceeds stream_windows.duration_s (10 s)",
        ),
        (
            lambda p: p["stream_windows"].update(streams=1, stride_ms=15),
            "stream_windows.stride_ms 15 is not a whole number",
        ),
    ],
)
def test_values_the_code_cannot_run_are_refused_when_read(tmp_path, edit, fragment):
    one_line_error(write_params(tmp_path, edit), fragment)


def test_a_float_where_an_integer_is_meant_is_refused(tmp_path):
    text = replace_line("background_segment_ms: 1500", "background_segment_ms: 1e12")
    one_line_error(
        write_params(tmp_path, text=text), "stream.background_segment_ms = 1000000000000.0 has type"
    )


def test_every_preset_passes_the_whole_file_check(tmp_path):
    from pipeline.tools.preset import PRESETS_DIR, apply, flatten, read_preset

    for preset in sorted((REPO_ROOT / PRESETS_DIR).glob("*.yaml")):
        params = read_yaml((REPO_ROOT / "params.yaml").read_text())
        apply(params, flatten(read_preset(preset)), preset)
        validate_file(write_params(tmp_path, text=yaml.safe_dump(params, sort_keys=False)))


def run_module(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def test_a_late_stage_typo_stops_the_first_stage_before_it_writes(tmp_path):
    """`-S train.dropout=0.2 -S stream_eval.detection_threshold=1.7`: download refuses to start."""
    from dvc.utils.hydra import apply_overrides

    path = write_params(tmp_path)
    apply_overrides(path, ["train.dropout=0.2", "stream_eval.detection_threshold=1.7"])
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = run_module("pipeline.stages.download", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error [pipeline.stages.download]: params.yaml: stream_eval.detection_threshold = 1.7 "
        "is out of range; expected int or float in [0, 1]"
    ]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_kws_check_says_ok_or_names_the_problem(tmp_path):
    path = write_params(tmp_path)
    result = run_module("pipeline.tools.check", "--params", str(path), cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == f"{path}: OK\n"
    path.write_text(path.read_text() + "extra: {}\n")
    result = run_module("pipeline.tools.check", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error [pipeline.tools.check]: params.yaml: unknown section 'extra'; allowed: "
        + ", ".join(SECTION_NAMES)
    ]


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
    bad["data"]["embedded"]["reverb_fraction"] = 0.5
    for position in ([0.8, 0.2], [0, 1.5]):
        bad["data"]["embedded"]["position"] = position
        with pytest.raises(ParamError, match=re.escape("data.embedded.position")):
            DataConfig.from_dict(bad["data"])
