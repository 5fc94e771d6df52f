"""Load and validate params.yaml.

Every stage calls :func:`load_params` first, so a typo (``trian.batch_size``), a wrong type or an
out-of-range value stops the stage before any work, with a message naming the key and what is
allowed. The schema below is the single source of truth for what each key may hold.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

DEFAULT_PARAMS_PATH = Path("params.yaml")


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans (only true/false), as DVC reads params.

    DVC rewrites params.yaml with ruamel (YAML 1.2) on `dvc exp run -S`, which drops the quotes
    around words like "yes", "no", "on" and "off". YAML 1.1 (PyYAML's default) would then read
    the wanted words as booleans; reading 1.2 booleans keeps them words, exactly as DVC sees them.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def read_yaml(text: str):
    """Parse YAML text with YAML 1.2 booleans (see _Yaml12Loader)."""
    return yaml.load(text, Loader=_Yaml12Loader)


class ParamError(ValueError):
    """A parameter is unknown, missing, of the wrong type or out of range."""


@dataclass(frozen=True)
class Spec:
    """What one key may hold: a type, optional bounds or choices, and an extra check."""

    kind: type | tuple[type, ...]
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    item: "Spec | None" = None  # for lists: the spec of every element
    check: Callable[[Any], str | None] | None = None  # returns an error text or None
    nonempty: bool = False

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        text = " or ".join(k.__name__ for k in kinds)
        if self.item is not None:
            text = f"a list of {self.item.describe()}"
        if self.low is not None and self.high is not None:
            text += f" in [{self.low}, {self.high}]"
        elif self.low is not None:
            text += f" >= {self.low}"
        elif self.high is not None:
            text += f" <= {self.high}"
        return text


def _int(low=None, high=None):
    return Spec(int, low, high)


def _num(low=None, high=None):
    return Spec((int, float), low, high)


def _str(choices=None, nonempty=False):
    return Spec(str, choices=tuple(choices) if choices else None, nonempty=nonempty)


_BOOL = Spec(bool)

MODEL_ARCHITECTURES = (
    "single_fc",
    "conv",
    "low_latency_conv",
    "low_latency_svdf",
    "tiny_conv",
    "tiny_embedding_conv",
    "ds_cnn",
    "embedding_head",
)
PREPROCESS_MODES = ("mfcc", "average", "micro", "embedding")

SCHEMA: dict[str, dict[str, Any]] = {
    "data": {
        "source": _str(("embedded", "url", "archive", "dir")),
        "url": _str(),
        "sha256": _str(),
        "archive": _str(),
        "dir": _str(),
        "test_set": _str(("hash", "official")),
        "test_set_source": _str(),
        "test_set_sha256": _str(),
        "on_bad_file": _str(("error", "skip")),
        "resample": _BOOL,
        "embedded": {
            "speakers": _int(1, 100000),
            "takes": _int(1, 100),
            "noise_seconds": _num(1, 3600),
            "seed": _int(0),
        },
    },
    "split": {
        "wanted_words": Spec(list, item=_str(nonempty=True), nonempty=True),
        "validation_percentage": _num(0, 100),
        "testing_percentage": _num(0, 100),
        "silence_percentage": _num(0, 1000),
        "unknown_percentage": _num(0, 1000),
        "hash_salt": _str(),
        "seed": _int(0),
    },
    "features": {
        "sample_rate": _int(1000, 192000),
        "clip_duration_ms": _int(100, 60000),
        "window_size_ms": _num(1, 1000),
        "window_stride_ms": _num(1, 1000),
        "feature_bin_count": _int(1, 512),
        "preprocess": _str(PREPROCESS_MODES),
    },
    "augment": {
        "time_shift_ms": _num(0, 10000),
        "background_volume": _num(0, 1),
        "background_frequency": _num(0, 1),
        "copies": _int(0, 100),
        "seed": _int(0),
    },
    "train": {
        "model_architecture": _str(MODEL_ARCHITECTURES),
        "how_many_training_steps": Spec(list, item=_int(1), nonempty=True),
        "learning_rate": Spec(list, item=Spec((int, float), low=0, high=10), nonempty=True),
        "batch_size": _int(1, 100000),
        "optimizer": _str(("gradient_descent", "momentum", "adam")),
        "dropout": _num(0, 0.99),
        "eval_step_interval": _int(1),
        "save_step_interval": _int(1),
        "check_nans": _BOOL,
        "spec_augment": _BOOL,
        "seed": _int(0),
    },
    "stream": {
        "duration_s": _num(1, 100000),
        "word_interval_ms": _int(100),
        "word_gap_ms": _int(0),
        "unknown_percentage": _num(0, 100),
        "background_volume": _num(0, 1),
        "background_segment_ms": _int(10),
        "seed": _int(0),
    },
    "stream_eval": {
        "clip_stride_ms": _int(1),
        "average_window_ms": _int(1),
        "detection_threshold": _num(0, 1),
        "suppression_ms": _int(0),
        "time_tolerance_ms": _int(0),
        "minimum_count": _int(1),
    },
}


def _check_value(key: str, value: Any, spec: Spec) -> None:
    kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
    # YAML booleans are ints in Python; never accept one where a number is meant.
    wrong_type = not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
    if wrong_type:
        hint = ""
        if isinstance(value, bool) and str in kinds:
            hint = " (YAML reads bare true/false as booleans: quote the word)"
        raise ParamError(
            f"params: {key} = {value!r} has type {type(value).__name__}; "
            f"expected {spec.describe()}{hint}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamError(f"params: {key} = {value!r} is not a finite number")
    if spec.choices is not None and value not in spec.choices:
        raise ParamError(f"params: {key} = {value!r} is not allowed; expected {spec.describe()}")
    if spec.low is not None and value < spec.low or spec.high is not None and value > spec.high:
        raise ParamError(f"params: {key} = {value!r} is out of range; expected {spec.describe()}")
    if spec.nonempty and len(value) == 0:
        raise ParamError(f"params: {key} must not be empty; expected {spec.describe()}")
    if spec.item is not None:
        for i, element in enumerate(value):
            _check_value(f"{key}[{i}]", element, spec.item)
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            raise ParamError(f"params: {key} = {value!r}: {problem}")


def _check_section(prefix: str, values: Any, schema: dict[str, Any]) -> None:
    if not isinstance(values, dict):
        raise ParamError(f"params: {prefix} must be a mapping of keys, got {type(values).__name__}")
    unknown = sorted(set(values) - set(schema))
    if unknown:
        raise ParamError(
            f"params: unknown key {prefix}.{unknown[0]}; allowed keys in {prefix}: "
            + ", ".join(sorted(schema))
        )
    missing = sorted(set(schema) - set(values))
    if missing:
        raise ParamError(f"params: missing key {prefix}.{missing[0]}")
    for key, spec in schema.items():
        if isinstance(spec, dict):
            _check_section(f"{prefix}.{key}", values[key], spec)
        else:
            _check_value(f"{prefix}.{key}", values[key], spec)


def _check_cross_fields(params: dict[str, Any]) -> None:
    """Rules that relate two keys."""
    if "split" in params:
        split = params["split"]
        if split["validation_percentage"] + split["testing_percentage"] > 100:
            raise ParamError(
                "params: split.validation_percentage + split.testing_percentage must be <= 100"
            )
        words = split["wanted_words"]
        if len(set(words)) != len(words):
            raise ParamError(f"params: split.wanted_words has duplicates: {words}")
        reserved = {"_silence_", "_unknown_", "_background_noise_"} & set(words)
        if reserved:
            raise ParamError(f"params: split.wanted_words may not contain {sorted(reserved)}")
    if "train" in params:
        train = params["train"]
        if len(train["how_many_training_steps"]) != len(train["learning_rate"]):
            raise ParamError(
                "params: train.how_many_training_steps and train.learning_rate must have the same "
                f"length (got {len(train['how_many_training_steps'])} and "
                f"{len(train['learning_rate'])})"
            )
    if "features" in params:
        feats = params["features"]
        if feats["window_size_ms"] > feats["clip_duration_ms"]:
            raise ParamError("params: features.window_size_ms must not exceed clip_duration_ms")


def validate(params: dict[str, Any], sections: Iterable[str] | None = None) -> dict[str, Any]:
    """Validate ``params`` (all sections, or just ``sections``) and return it."""
    if not isinstance(params, dict):
        raise ParamError("params: the file must hold a mapping of sections")
    unknown = sorted(set(params) - set(SCHEMA))
    if unknown:
        raise ParamError(
            f"params: unknown section {unknown[0]!r}; allowed: " + ", ".join(SCHEMA)
        )
    wanted = list(SCHEMA) if sections is None else list(sections)
    for section in wanted:
        if section not in params:
            raise ParamError(f"params: missing section {section!r}")
        _check_section(section, params[section], SCHEMA[section])
    _check_cross_fields({s: params[s] for s in wanted})
    return params


def load_params(path: str | Path = DEFAULT_PARAMS_PATH, sections: Iterable[str] | None = None):
    """Read params.yaml and validate it; raise ParamError naming the bad key."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamError(f"params: {path} not found (run from the repository root)") from None
    try:
        params = read_yaml(text)
    except yaml.YAMLError as exc:
        raise ParamError(f"params: {path} is not valid YAML: {exc}") from None
    return validate(params, sections)
