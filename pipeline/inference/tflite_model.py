"""A ``.tflite`` model: audio in (front end inside) or features in (float or int8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import StageError, first_line
from pipeline.core.tf import tflite_interpreter
from pipeline.inference.base import FeatureModel
from pipeline.inference.scores import as_scores


class TFLiteModel(FeatureModel):
    """A .tflite whose input is either audio [1, desired_samples] or features [1, frames, bins]."""

    kind = "tflite"

    def __init__(self, path: Path, labels: list[str], params: dict[str, Any]):
        self.interpreter = tflite_interpreter(model_path=str(path), num_threads=1)
        try:
            self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise StageError(
                f"{path}: TFLite cannot prepare the model ({first_line(exc)})"
            ) from None
        self.path = path
        self.labels = labels
        self._setup_features(params)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.takes_audio = len(self.input["shape"]) == 2
        # Dequantized int8 scores are probabilities only up to their rounding (scores.py).
        out_scale = self.output["quantization"][0]
        self.output_step = float(out_scale) if self.output["dtype"] != np.float32 else 0.0
        if self.takes_audio:
            self.frames_per_clip = None
            self.frame_stride_samples = None
        self._check_labels(int(self.output["shape"][-1]), path)

    def _run(self, x: np.ndarray) -> np.ndarray:
        scale, zero = self.input["quantization"]
        if self.input["dtype"] != np.float32:
            info = np.iinfo(self.input["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        self.interpreter.set_tensor(self.input["index"], x.astype(self.input["dtype"])[None])
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])[0]
        scale, zero = self.output["quantization"]
        if self.output["dtype"] != np.float32:
            y = (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)

    def head_scores(self, features: np.ndarray) -> np.ndarray:
        if self.takes_audio:
            return super().head_scores(features)
        features = np.asarray(features, dtype=np.float32)
        rows = [self._run(f) for f in features]
        return (
            as_scores(np.stack(rows), self.output_step)
            if rows
            else np.zeros((0, len(self.labels)), np.float32)
        )

    def predict_audio(self, audio: np.ndarray) -> np.ndarray:
        if not self.takes_audio:
            return super().predict_audio(audio)
        audio = self._check_audio(audio)
        rows = [self._run(a) for a in audio]
        return (
            as_scores(np.stack(rows), self.output_step)
            if rows
            else np.zeros((0, len(self.labels)), np.float32)
        )
