"""A trained ``.keras`` model (features in); the front end from its meta.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.inference.base import BATCH, FeatureModel
from pipeline.inference.scores import as_scores


class KerasModel(FeatureModel):
    kind = "keras"

    def __init__(self, path: Path, labels: list[str], params: dict[str, Any]):
        from pipeline.models.io import batch_predictor, load_model_file

        self.path = path
        self.model = load_model_file(path)
        self.labels = labels
        self._setup_features(params)
        self._check_labels(int(self.model.output_shape[-1]), path)
        self._predict = batch_predictor(self.model)

    def head_scores(self, features: np.ndarray) -> np.ndarray:
        return as_scores(self._predict(features, BATCH))
