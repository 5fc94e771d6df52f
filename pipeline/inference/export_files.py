"""The files an export carries about itself, read as untrusted input and checked like params.

An export folder is copied, edited and shared, so ``frontend.json``, ``bundle.json`` and a trained
model's ``meta.json`` are checked with the rules of ``pipeline.core.schema`` (the features by
:class:`FeatureConfig` itself) before anything uses them: a list where a mapping belongs, a
missing or mistyped key, a size that disagrees with the features, an int8 scale of 0, a file
name leading out of the folder are each one StageError naming the file and the key, never a
traceback or a silent default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.core.errors import ParamError, StageError
from pipeline.core.fs import join_under, read_json
from pipeline.core.schema import Spec, integer, list_of, number, text
from pipeline.frontends import FeatureConfig
from pipeline.frontends.base import VIEW_HIGH, VIEW_LOW, check_views
from pipeline.inference.base import FEATURE_KEYS

# Sizes frontend.json records beside the features (report.frontend_dict), and how to derive each.
DERIVED = {
    "desired_samples": lambda cfg: int(cfg.desired_samples),
    "feature_shape": lambda cfg: [int(v) for v in cfg.feature_shape],
    "frame_stride_samples": lambda cfg: int(cfg.window_stride_samples),
    "window_size_samples": lambda cfg: int(cfg.window_size_samples),
}
SIZE_SPECS = {
    "desired_samples": integer(1),
    "feature_shape": list_of(integer(1)),
    "frame_stride_samples": integer(1),
    "window_size_samples": integer(1),
    "num_labels": integer(1),
}
TENSOR_SPECS = {
    "shape": list_of(integer(-1), nonempty=False),
    "dtype": text(nonempty=True),
    "scale": number(0),
    "zero_point": integer(),
}
QUANTIZED_DTYPES = ("int8", "uint8", "int16")
BUNDLE_FILES = {"model": True, "frontend": True, "labels": True, "int8_model": False}


def _named(path, exc: ParamError) -> StageError:
    """A schema rule's ParamError as a StageError naming the file instead of params.yaml."""
    return StageError(f"{path}: {str(exc).removeprefix('params: ')}")


def _check(path, key: str, spec: Spec, value: Any) -> None:
    try:
        spec.validate(key, value)
    except ParamError as exc:
        raise _named(path, exc) from None


def _mapping(path, value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StageError(f"{path}: {what} must be a JSON object, got {type(value).__name__}")
    return value


def read_mapping(path) -> dict[str, Any]:
    """A JSON file that must hold an object (StageError naming the file otherwise)."""
    return _mapping(path, read_json(path), "the file")


def features_of(path, source: dict[str, Any], key: str = "features") -> FeatureConfig:
    """The validated features of ``source`` (the dict read from ``path``): its ``key`` mapping, or
    the flat keys of a hand-written frontend.json that has no ``key``."""
    nested = key in source
    values = _mapping(path, source[key], key) if nested else source
    values = {k: values[k] for k in FEATURE_KEYS if k in values}
    try:
        return FeatureConfig.from_dict(values, key)
    except ParamError as exc:
        message = str(exc).removeprefix("params: ")
        raise StageError(
            f"{path}: {message if nested else message.replace(key + '.', '')}"
        ) from None


def read_frontend(path) -> dict[str, Any]:
    """``frontend.json`` checked: its features, the sizes beside them, its ``tflite`` and
    ``streaming`` entries. Returns the dict, its features valid and every size agreeing."""
    data = read_mapping(path)
    cfg = features_of(path, data)
    if "features" in data:  # the flat copies beside the features must agree with them
        for key in FEATURE_KEYS:
            if key in data and data[key] != data["features"][key]:
                raise StageError(
                    f"{path}: {key} = {data[key]!r} disagrees with features.{key} = "
                    f"{data['features'][key]!r}"
                )
    for key, spec in SIZE_SPECS.items():
        if key in data:
            _check(path, key, spec, data[key])
            if key in DERIVED and data[key] != DERIVED[key](cfg):
                raise StageError(
                    f"{path}: {key} = {data[key]!r} disagrees with the features, which give "
                    f"{DERIVED[key](cfg)!r}"
                )
    if "tflite" in data:
        for name, model in _mapping(path, data["tflite"], "tflite").items():
            for end in ("input", "output"):
                where = f"tflite.{name}.{end}"
                if end not in _mapping(path, model, f"tflite.{name}"):
                    raise StageError(f"{path}: missing key {where}")
                tensor = _mapping(path, model[end], where)
                for key, spec in TENSOR_SPECS.items():
                    if key not in tensor:
                        raise StageError(f"{path}: missing key {where}.{key}")
                    _check(path, f"{where}.{key}", spec, tensor[key])
                if tensor["dtype"] in QUANTIZED_DTYPES and tensor["scale"] <= 0:
                    raise StageError(
                        f"{path}: {where}.scale = {tensor['scale']!r}: a {tensor['dtype']} "
                        "tensor needs a quantization scale above 0"
                    )
    if "views" in data:
        _check(path, "views", list_of(number(VIEW_LOW, VIEW_HIGH)), data["views"])
        try:
            check_views(data["views"], "views", cfg.frontend)
        except ValueError as exc:
            raise StageError(f"{path}: {exc}") from None
    if "streaming" in data:
        streaming = _mapping(path, data["streaming"], "streaming")
        if "inputs" not in streaming:
            raise StageError(f"{path}: missing key streaming.inputs")
        _check(path, "streaming.inputs", list_of(text(nonempty=True)), streaming["inputs"])
        if streaming["inputs"][0] != "frame":
            raise StageError(
                f"{path}: streaming.inputs must start with 'frame', got {streaming['inputs']!r}"
            )
    return data


def read_bundle(folder: Path) -> dict[str, Path]:
    """``bundle.json`` of an export folder: the paths of the files it names, each inside
    ``folder`` (``int8_model`` only if named)."""
    path = folder / "bundle.json"
    data = read_mapping(path)
    files = {}
    for key, required in BUNDLE_FILES.items():
        if key not in data:
            if required:
                raise StageError(f"{path}: missing key {key}")
            continue
        _check(path, key, text(nonempty=True), data[key])
        files[key] = join_under(folder, data[key], path)
    return files


def meta_features(path) -> FeatureConfig | None:
    """The features a trained model's ``meta.json`` records (``features`` as featurize's meta.json
    nests them, or ``feature_params``); None if it records none."""
    data = read_mapping(path)
    for key in ("features", "feature_params"):
        if key in data:
            section = _mapping(path, data[key], key)
            return (
                features_of(path, section)
                if "features" in section
                else features_of(path, data, key)
            )
    return None
