"""Export the trained Keras model into models/export/ (the freeze stage).

Writes ``saved_model/`` (see convert.build_module), ``model_float.tflite``, ``model_int8.tflite``
(and its C array ``model_data.cc``/``.h`` with the micro front end), ``labels.txt``,
``frontend.json``, ``decoder.json`` (the operating point: the decoder settings the export was
built with, which the tools that decode default to); and ``metrics/export.json`` (parameters,
file sizes, test accuracy of every format on the same clips). With a front end that is not made
of TensorFlow ops (the speech embedding) no SavedModel is written: the export is a bundle
(``bundle.json`` + the two .tflite heads + frontend.json) that ``pipeline.inference.load_model``
runs end to end from WAV bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core import paths
from pipeline.core.errors import StageError
from pipeline.core.fs import atomic_dir, atomic_write_json, read_json
from pipeline.core.labels import prepare_words_list, read_labels, write_labels
from pipeline.core.metrics_files import write_metrics
from pipeline.data.clip_store import ClipReader
from pipeline.data.feature_store import feature_files
from pipeline.export.c_array import write_c_array
from pipeline.export.convert import (
    build_module,
    convert_float_tflite,
    convert_int8_tflite,
    convert_streaming_tflite,
    save_saved_model,
    scores_fn,
    streaming_model,
)
from pipeline.export.cost import tflite_invoke_ms, tflite_macs
from pipeline.export.report import (
    export_metrics,
    frontend_dict,
    streaming_interface,
    streaming_metrics,
    tflite_io,
)
from pipeline.export.verify import evaluate_exports, read_test_clips, streaming_difference
from pipeline.frontends import FeatureConfig
from pipeline.frontends.base import check_views
from pipeline.inference.base import feature_params
from pipeline.inference.scores import is_probability

# Front ends a microcontroller computes (TensorFlow Lite Micro's): with them freeze also writes
# the int8 model as a C array (model_data.cc / .h), as the micro_speech example ships it.
MICROCONTROLLER_FRONTENDS = ("micro",)
log = logging.getLogger(__name__)

REPRESENTATIVE_CLIPS = 500
# The streaming model, frame by frame, must give the whole-clip model's scores this closely.
STREAMING_TOLERANCE = 1e-4
REPRESENTATIVE_SEED = 1234


@dataclass(frozen=True)
class ExportInputs:
    """What freeze reads besides the model: training features (int8 calibration), the test
    manifest and its clips (accuracy of every format; manifest paths name clips in the stores
    under ``data_root``), the test features, and the decoder settings to record as the export's
    operating point (``decoder``, written to decoder.json; none: no file) and the vocal-tract
    views inference averages over (``views``, export.views: written to frontend.json)."""

    features_dir: Path = paths.FEATURES_DIR
    test_manifest: Path = paths.SPLIT_DIR / "test.csv"
    data_root: Path = Path(".")
    test_limit: int | None = None
    decoder: dict[str, Any] | None = None
    views: tuple[float, ...] = (1.0,)


def load_trained_model(keras_dir: Path, cfg: FeatureConfig, labels: list[str]):
    """The train stage's model, checked against the labels and features params.yaml asks for."""
    from pipeline.models.io import load_model_file

    keras_labels = read_labels(keras_dir / "labels.txt")
    if keras_labels != labels:
        raise StageError(
            f"{keras_dir}/labels.txt lists {keras_labels} but split.wanted_words "
            f"gives {labels}; rerun train"
        )
    meta_path = keras_dir / "meta.json"
    if meta_path.is_file():
        try:
            trained = feature_params(read_json(meta_path).get("features", {}))
        except StageError:
            trained = None
        if trained is not None and trained != cfg.to_dict():
            raise StageError(
                f"{keras_dir} was trained with features {trained} but params.yaml "
                f"has {cfg.to_dict()}; rerun featurize and train"
            )
    model = load_model_file(keras_dir / "model.keras")
    if tuple(model.input_shape[1:]) != tuple(cfg.feature_shape):
        raise StageError(
            f"{keras_dir}/model.keras takes {model.input_shape[1:]} but the features "
            f"are {tuple(cfg.feature_shape)}"
        )
    return model


def representative_features(features_dir: Path) -> np.ndarray:
    """A seeded sample of training features (int8 calibration), read from the memory map."""
    x_path, _ = feature_files(features_dir, "train")
    if not x_path.is_file():
        raise FileNotFoundError(f"{x_path}: training features not found (run featurize)")
    x_train = np.load(x_path, mmap_mode="r")
    pick = np.random.default_rng(REPRESENTATIVE_SEED).choice(
        len(x_train), size=min(REPRESENTATIVE_CLIPS, len(x_train)), replace=False
    )
    return np.asarray(x_train[np.sort(pick)], dtype=np.float32)


def freeze(
    keras_dir: Path,
    out_dir: Path,
    metrics_path: Path,
    cfg: FeatureConfig,
    wanted_words: list[str],
    inputs: ExportInputs = ExportInputs(),
) -> dict[str, Any]:
    """Export ``keras_dir`` into ``out_dir`` and write the export metrics; return them."""
    keras_dir, out_dir = Path(keras_dir), Path(out_dir)
    labels = prepare_words_list(wanted_words)
    try:
        check_views(inputs.views, "export.views", cfg.frontend)
    except ValueError as exc:
        raise StageError(str(exc)) from None
    model = load_trained_model(keras_dir, cfg, labels)
    representative = representative_features(Path(inputs.features_dir))
    needs_softmax = not is_probability(model(representative[:8], training=False))

    with ClipReader(inputs.data_root) as clips:  # closed on every path, errors included
        clip_paths, audio, y = (
            [],
            np.zeros((0, cfg.desired_samples), np.float32),
            np.zeros(0, np.int32),
        )
        if inputs.test_manifest is not None and Path(inputs.test_manifest).is_file():
            clip_paths, audio, y = read_test_clips(
                Path(inputs.test_manifest), clips, labels, cfg.desired_samples, inputs.test_limit
            )
        test_features = None
        test_x, test_y = feature_files(inputs.features_dir, "test")
        if test_x.is_file() and test_y.is_file():
            test_features = (np.load(test_x, mmap_mode="r"), np.load(test_y).astype(np.int32))
        check_audio = (
            audio[:4]
            if len(audio)
            else np.random.default_rng(0)
            .uniform(-0.5, 0.5, (2, cfg.desired_samples))
            .astype(np.float32)
        )

        with atomic_dir(out_dir) as tmp:
            if inputs.decoder is not None:
                atomic_write_json(tmp / paths.DECODER_NAME, inputs.decoder)
            streaming, reason = write_streaming(
                tmp,
                keras_dir,
                model,
                needs_softmax,
                test_features[0] if test_features else representative,
            )
            float_flat, float_input = write_exports(
                tmp,
                model,
                cfg,
                labels,
                needs_softmax,
                representative,
                check_audio,
                streaming.interface() if streaming else None,
                inputs.views,
            )
            accuracy = evaluate_exports(
                tmp, keras_dir, clip_paths, audio, y, test_features, clips, inputs.views
            )
            metrics = export_metrics(
                cfg,
                wanted_words,
                len(representative),
                float_input,
                tmp,
                keras_dir / "model.keras",
                accuracy,
                len(y),
                len(test_features[1]) if test_features else 0,
                inputs.views,
            )
            metrics["streaming"] = (
                streaming.metrics(float_flat)
                if streaming
                else {"exported": False, "reason": reason}
            )
    write_metrics(metrics_path, metrics)
    return metrics


def write_exports(
    folder: Path,
    model,
    cfg: FeatureConfig,
    labels: list[str],
    needs_softmax: bool,
    representative: np.ndarray,
    check_audio: np.ndarray,
    streaming: dict[str, Any] | None,
    views=(1.0,),
) -> tuple[bytes, str]:
    """Write every export file into ``folder`` (but the streaming model, already there, whose
    interface ``streaming`` gives, None without one); return the float TFLite model and what it
    takes."""
    write_labels(folder / "labels.txt", labels)
    frontend = frontend_dict(cfg, len(labels), views)
    float_flat, float_input, reason = convert_float_tflite(model, cfg, needs_softmax, check_audio)
    (folder / "model_float.tflite").write_bytes(float_flat)
    int8_flat = convert_int8_tflite(model, cfg, needs_softmax, representative)
    (folder / "model_int8.tflite").write_bytes(int8_flat)
    if cfg.preprocess in MICROCONTROLLER_FRONTENDS:
        write_c_array(int8_flat, folder)  # model_data.cc / .h for TensorFlow Lite Micro
    frontend["tflite"] = {
        name: tflite_io(folder / name) for name in ("model_float.tflite", "model_int8.tflite")
    }
    frontend["tflite"]["model_float.tflite"]["takes"] = float_input
    frontend["tflite"]["model_int8.tflite"]["takes"] = "features"
    if reason:
        frontend["tflite"]["model_float.tflite"]["why_features"] = reason
    if streaming:
        frontend["streaming"] = streaming
    atomic_write_json(folder / "frontend.json", frontend)
    if cfg.frontend.in_graph:
        module, signatures = build_module(
            model,
            cfg,
            needs_softmax,
            {"labels_asset": folder / "labels.txt", "frontend_asset": folder / "frontend.json"},
        )
        save_saved_model(module, signatures, folder / "saved_model")
    else:
        atomic_write_json(
            folder / "bundle.json",
            {
                "model": "model_float.tflite",
                "frontend": "frontend.json",
                "labels": "labels.txt",
                "int8_model": "model_int8.tflite",
            },
        )
    return float_flat, float_input


@dataclass(frozen=True)
class StreamingExport:
    """The streaming model freeze wrote and checked: its form (a StreamingModel), its TFLite
    bytes, and how far frame by frame it came from the whole-clip model on ``clips`` clips."""

    model: Any
    flat: bytes
    max_abs_diff: float
    clips: int

    def interface(self) -> dict[str, Any]:
        """frontend.json's ``streaming``: the file, its inputs, outputs and states."""
        return streaming_interface(self.model)

    def metrics(self, window_flat: bytes) -> dict[str, Any]:
        """metrics/export.json's ``streaming``, its costs set against ``window_flat``: the float
        TFLite window model freeze exported (model_float.tflite), converted once; an in-graph
        front end's ops (AudioSpectrogram, Mfcc, pooling) count no MACs (cost.py).

        Per-frame and per-window times are measured and logged, not put in the metric (a rerun
        must reproduce metrics/ exactly; bench/streaming_export.py prints them).
        """
        report = streaming_metrics(
            self.model,
            self.max_abs_diff,
            STREAMING_TOLERANCE,
            self.clips,
            tflite_macs(self.flat),
            tflite_macs(window_flat),
            len(self.flat),
            len(window_flat),
        )
        log.info(
            "streaming: %.4f ms per frame vs %.4f ms per window of model_float.tflite (one "
            "thread; %d vs %d MACs); largest difference %.3g",
            tflite_invoke_ms(self.flat),
            tflite_invoke_ms(window_flat),
            report["macs_per_frame"],
            report["window_macs"],
            self.max_abs_diff,
        )
        return report


def write_streaming(
    folder: Path,
    keras_dir: Path,
    model,
    needs_softmax: bool,
    features: np.ndarray,
) -> tuple[StreamingExport | None, str | None]:
    """``model_streaming.tflite`` where the model streams, checked frame by frame on every clip of
    ``features`` against the whole-clip model: ``(StreamingExport, None)``, or ``(None, why
    not)``."""
    streaming, reason = streaming_model(keras_dir, model)
    if streaming is None:
        log.info("no streaming export: %s", reason)
        return None, reason
    flat = convert_streaming_tflite(streaming)
    (folder / "model_streaming.tflite").write_bytes(flat)
    whole = np.concatenate(
        [
            np.asarray(scores_fn(model, needs_softmax)(features[i : i + 256]))
            for i in range(0, len(features), 256)
        ]
    )
    worst = streaming_difference(flat, streaming.state_shapes, whole, features)
    if not worst <= STREAMING_TOLERANCE:
        raise StageError(
            f"{folder.name}/model_streaming.tflite: frame by frame it differs from the "
            f"whole-clip model by {worst:.3g} at a clip's last frame (at most "
            f"{STREAMING_TOLERANCE:g} allowed)"
        )
    return StreamingExport(streaming, flat, worst, len(features)), None
