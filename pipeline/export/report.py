"""What the export writes about itself: frontend.json (how to compute the inputs without this
package) and the numbers of metrics/export.json (sizes, accuracies, the int8 drop)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.tf import tflite_interpreter
from pipeline.frontends import FeatureConfig

EXPORTED_FILES = (
    "saved_model",
    "model_float.tflite",
    "model_int8.tflite",
    "model_streaming.tflite",
    "model_data.cc",
)


def frontend_dict(cfg: FeatureConfig, num_labels: int, views=(1.0,)) -> dict[str, Any]:
    """What a user needs to reproduce the features outside this package (``views``: the
    vocal-tract views whose scores inference averages, export.views)."""
    info = {
        "features": cfg.to_dict(),
        "desired_samples": int(cfg.desired_samples),
        "feature_shape": [int(v) for v in cfg.feature_shape],
        "frame_stride_samples": int(cfg.window_stride_samples),
        "window_size_samples": int(cfg.window_size_samples),
        "num_labels": num_labels,
        "audio": "16-bit mono PCM WAV decoded to float32 in [-1, 1) (int16 / 32768), zero-padded "
        "or truncated at the end to desired_samples",
    }
    info.update(info["features"])  # flat copies so that load_model reads them directly
    info["description"] = cfg.frontend.description
    info["views"] = [float(v) for v in views]
    return info


def tflite_io(path: Path) -> dict[str, Any]:
    """Shape, dtype and quantization of a TFLite model's input and output."""
    interpreter = tflite_interpreter(model_path=str(path))
    info = {}
    for key, detail in (
        ("input", interpreter.get_input_details()[0]),
        ("output", interpreter.get_output_details()[0]),
    ):
        scale, zero = detail["quantization"]
        info[key] = {
            "shape": [int(v) for v in detail["shape"]],
            "dtype": np.dtype(detail["dtype"]).name,
            "scale": float(scale),
            "zero_point": int(zero),
        }
    return info


def size_bytes(path: Path) -> int:
    """A file's size, or the total of a folder's files."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def export_metrics(
    cfg: FeatureConfig,
    wanted_words,
    representative_clips: int,
    float_input: str,
    export_dir: Path,
    keras_file: Path,
    accuracy: dict[str, Any],
    test_clips: int,
    test_npz_clips: int,
    views=(1.0,),
) -> dict[str, Any]:
    """The contents of metrics/export.json (``views``: export.views)."""
    sizes = {"model.keras": size_bytes(keras_file)}
    for name in EXPORTED_FILES:
        if (export_dir / name).exists():
            sizes[name] = size_bytes(export_dir / name)
    metrics = {
        "parameters": {
            "features": cfg.to_dict(),
            "wanted_words": list(wanted_words),
            "representative_clips": int(representative_clips),
            "float_tflite_input": float_input,
            "views": [float(v) for v in views],
        },
        "size_bytes": sizes,
        "accuracy": accuracy,
        "test_clips": int(test_clips),
        "test_npz_clips": int(test_npz_clips),
    }
    if accuracy.get("tflite_float") is not None and accuracy.get("tflite_int8") is not None:
        metrics["int8_drop_points"] = round(
            100 * (accuracy["tflite_float"] - accuracy["tflite_int8"]), 3
        )
    return metrics


def streaming_interface(streaming) -> dict[str, Any]:
    """frontend.json's ``streaming``: the streaming model's file, its inputs (the frame, then the
    states), outputs (the scores, then the new states) and state shapes."""
    states = {name: [1, *shape] for name, shape in streaming.state_shapes.items()}
    return {
        "model": "model_streaming.tflite",
        "inputs": ["frame", *states],
        "outputs": ["scores", *states],
        "states": states,
    }


def streaming_metrics(
    streaming,
    max_abs_diff: float,
    tolerance: float,
    clips: int,
    macs_per_frame: int,
    window_macs: int,
    model_bytes: int,
    window_bytes: int,
) -> dict[str, Any]:
    """metrics/export.json's ``streaming``: the check, the costs, and the model's interface."""
    interface = streaming_interface(streaming)
    return {
        "exported": True,
        "model": interface["model"],
        "max_abs_diff": float(f"{max_abs_diff:.3g}"),
        "tolerance": tolerance,
        "clips_checked": int(clips),
        "frames_per_window": int(streaming.frames),
        "macs_per_frame": int(macs_per_frame),
        "window_macs": int(window_macs),
        "window_to_frame_macs": round(window_macs / max(macs_per_frame, 1), 2),
        "model_bytes": int(model_bytes),
        "window_model_bytes": int(window_bytes),
        "state_floats": int(sum(int(np.prod(shape)) for shape in interface["states"].values())),
        "inputs": interface["inputs"],
        "outputs": interface["outputs"],
        "states": interface["states"],
    }
