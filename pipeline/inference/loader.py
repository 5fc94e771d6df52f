"""Load any model this project makes, or the original frozen graph, behind one interface.

Tools (label_wav, evaluate_dir, streaming, benchmarks) must not care which format they were given,
so :func:`load_model` picks a backend from the path and every backend answers the calls of
``pipeline.inference.base.KwsModel``.

Formats: ``models/export/`` (or its ``saved_model/``), a ``.tflite`` file (front end from the
``frontend.json`` beside it), a ``.keras`` file or ``models/keras/`` folder, an embedding bundle
folder (``bundle.json``), and the original tutorial's frozen GraphDef (``.pb``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.core import paths
from pipeline.core.errors import StageError
from pipeline.core.labels import read_labels
from pipeline.core.params import load_params
from pipeline.frontends import FeatureConfig
from pipeline.inference.base import KwsModel
from pipeline.inference.export_files import meta_features, read_bundle, read_frontend
from pipeline.inference.frozen_graph import FrozenGraphModel
from pipeline.inference.keras_model import KerasModel
from pipeline.inference.saved_model import SavedModelModel
from pipeline.inference.tflite_model import TFLiteModel

log = logging.getLogger(__name__)


def _find_labels(path: Path, labels_path, candidates: list[Path]) -> list[str]:
    if labels_path is not None:
        return read_labels(labels_path)
    for candidate in candidates:
        if candidate.is_file():
            return read_labels(candidate)
    raise StageError(
        f"{path}: no labels file found (looked for "
        + ", ".join(str(c) for c in candidates)
        + "); pass --labels"
    )


def _keras_feature_params(folder: Path) -> dict[str, Any]:
    """Feature params of a trained Keras model: its meta.json, else params.yaml."""
    meta = folder / "meta.json"
    cfg = meta_features(meta) if meta.is_file() else None
    if cfg is not None:
        return cfg.to_dict()
    log.warning("%s has no feature parameters; using params.yaml", meta)
    return load_params(paths.PARAMS, FeatureConfig).to_dict()


def load_model(path, labels_path=None) -> KwsModel:
    """Open any of the project's model formats or the original frozen graph (see module doc)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path}")
    if path.is_dir():
        if (path / "bundle.json").is_file():
            # An export whose front end cannot live in a TF graph (speech embedding): its float
            # TFLite head plus the front end that pipeline.features computes.
            bundle = read_bundle(path)
            labels = _find_labels(path, labels_path, [bundle["labels"]])
            return TFLiteModel(bundle["model"], labels, read_frontend(bundle["frontend"]))
        if (path / "saved_model.pb").is_file():
            labels = _find_labels(
                path,
                labels_path,
                [path / "assets" / "labels.txt", path / "labels.txt", path.parent / "labels.txt"],
            )
            return SavedModelModel(path, labels)
        if (path / "saved_model" / "saved_model.pb").is_file():
            return load_model(
                path / "saved_model",
                labels_path or (path / "labels.txt" if (path / "labels.txt").is_file() else None),
            )
        if (path / "model.keras").is_file():
            return load_model(path / "model.keras", labels_path)
        raise StageError(
            f"{path}: folder holds no saved_model.pb, saved_model/, model.keras or bundle.json"
        )
    suffix = path.suffix.lower()
    if suffix == ".keras":
        labels = _find_labels(path, labels_path, [path.parent / "labels.txt"])
        return KerasModel(path, labels, _keras_feature_params(path.parent))
    if suffix == ".tflite":
        labels = _find_labels(path, labels_path, [path.parent / "labels.txt"])
        frontend = path.parent / "frontend.json"
        if not frontend.is_file():
            raise StageError(f"{path}: no frontend.json beside it (the feature parameters)")
        return TFLiteModel(path, labels, read_frontend(frontend))
    if suffix == ".pb":
        if path.name == "saved_model.pb":
            return load_model(path.parent, labels_path)
        stem = path.name[: -len(".pb")]
        candidates = [
            path.with_name(stem.replace("_frozen", "") + "_labels.txt"),
            path.with_name(stem + "_labels.txt"),
            path.parent / "labels.txt",
        ]
        return FrozenGraphModel(path, _find_labels(path, labels_path, candidates))
    raise StageError(f"{path}: unknown model format (expected a folder, .keras, .tflite or .pb)")
