"""freeze stage: export the trained Keras model for people who do not have this package.

Writes ``models/export/``:

- ``saved_model/``: signature ``serving_default`` takes the bytes of a WAV file (``wav_data``,
  a string scalar, like the original frozen graph) and returns ``labels_softmax`` [1, L]; the
  front end (decode_wav -> pad/truncate -> pipeline.features.compute_features) is inside the
  graph. ``audio`` takes float32 [batch, desired_samples]. For frame-reusable front ends (mfcc,
  average) ``features`` takes [batch, frames, bins] and ``frame_features`` turns a 1-D signal of
  any length into [frames, bins] (streaming). ``assets/`` holds labels.txt and frontend.json.
- ``model_float.tflite``: float32; takes audio [1, desired_samples] with the AudioSpectrogram/Mfcc
  custom ops inside (TFLite's builtin resolver runs them) where the converter and the interpreter
  accept the front end, otherwise features [1, frames, bins] (frontend.json says which).
- ``model_int8.tflite``: full-integer int8 (input, weights, activations, output), calibrated on
  training-split features; it takes features computed by the documented front end.
- ``labels.txt``, ``frontend.json``; and ``metrics/export.json`` (parameters, file sizes, test
  accuracy of every format on the same clips).

With ``features.preprocess: embedding`` the front end is Google's speech-embedding TFLite pair,
which cannot live in a TensorFlow graph, so the export is a bundle (``bundle.json`` + the two
.tflite heads + frontend.json) that ``pipeline.inference.load_model`` runs end to end from WAV
bytes with ``pipeline.embedding``; no SavedModel is written.
"""
from __future__ import annotations

import argparse
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pipeline.audio import fit_to_length, read_wav
from pipeline.cli import StageError, quiet_tensorflow, run_main
from pipeline.config import load_params
from pipeline.fsutil import atomic_dir, atomic_write_json
from pipeline.inference import (
    FRAME_REUSE_PREPROCESS, feature_params, load_model, tflite_interpreter,
)
from pipeline.labels import prepare_words_list, read_labels, write_labels
from pipeline.split import read_manifest

log = logging.getLogger(__name__)

REPRESENTATIVE_CLIPS = 500
REPRESENTATIVE_SEED = 1234
# The float TFLite with the front end inside is kept only if it agrees with Keras this closely.
IN_MODEL_FRONTEND_TOLERANCE = 1e-3


def _tf():
    quiet_tensorflow()
    import tensorflow as tf

    return tf


def frontend_dict(cfg, num_labels: int) -> dict[str, Any]:
    """What a user needs to reproduce the features outside this package."""
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
    descriptions = {
        "mfcc": "tf.raw_ops.AudioSpectrogram(window_size_samples, frame_stride_samples, "
                "magnitude_squared=True) -> tf.raw_ops.Mfcc(20-4000 Hz, 40 filterbank channels, "
                "dct_coefficient_count=feature_bin_count)",
        "average": "power AudioSpectrogram average-pooled over frequency bins (SAME padding)",
        "micro": "TFLite Micro audio front end (125-7500 Hz, PCAN, log), times 10/256",
        "embedding": "Google speech embedding (openwakeword melspectrogram.tflite -> "
                     "embedding_model.tflite), see pipeline/embedding.py",
    }
    info["description"] = descriptions.get(cfg.preprocess, cfg.preprocess)
    return info


def _convert(converter) -> bytes:
    """converter.convert() without the deprecation chatter of the concrete-function path.

    (Passing a trackable object instead moves to the SavedModel path, whose int8 calibration
    fails on Keras 3 resource variables.)
    """
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.convert()
    finally:
        absl.setLevel(level)


def _scores_fn(tf, model, needs_softmax: bool):
    def scores(features):
        out = model(features, training=False)
        return tf.nn.softmax(out) if needs_softmax else out

    return scores


def build_module(model, cfg, needs_softmax: bool, assets: dict[str, Path]):
    """A tf.Module with the serving signatures (see module doc)."""
    tf = _tf()
    from pipeline.features import compute_features

    scores = _scores_fn(tf, model, needs_softmax)
    frames, bins = (int(v) for v in cfg.feature_shape)
    samples = int(cfg.desired_samples)

    class KwsExport(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            for name, path in assets.items():
                setattr(self, name, tf.saved_model.Asset(str(path)))

        @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="wav_data")])
        def wav(self, wav_data):
            decoded = tf.audio.decode_wav(wav_data, desired_channels=1, desired_samples=samples)
            tf.debugging.assert_equal(
                decoded.sample_rate, tf.constant(cfg.sample_rate, tf.int32),
                message=f"WAV sample rate must be {cfg.sample_rate} Hz")
            audio = tf.transpose(decoded.audio)  # [1, samples]
            return {"labels_softmax": scores(compute_features(audio, cfg))}

        @tf.function(input_signature=[tf.TensorSpec([None, samples], tf.float32, name="audio")])
        def audio(self, audio):
            return {"labels_softmax": scores(compute_features(audio, cfg))}

        @tf.function(input_signature=[tf.TensorSpec([None, frames, bins], tf.float32, name="features")])
        def features(self, features):
            return {"labels_softmax": scores(features)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="audio")])
        def frame_features(self, audio):
            return {"features": compute_features(audio[None, :], cfg)[0]}

    module = KwsExport()
    signatures = {"serving_default": module.wav, "audio": module.audio}
    if cfg.preprocess in FRAME_REUSE_PREPROCESS:
        signatures["features"] = module.features
        signatures["frame_features"] = module.frame_features
    return module, signatures


def convert_float_tflite(model, cfg, needs_softmax: bool, check_audio: np.ndarray):
    """Float TFLite with the front end inside if it converts and matches; else features input.

    Returns (bytes, input kind, reason when the front end had to stay outside).
    """
    tf = _tf()
    from pipeline.features import compute_features

    scores = _scores_fn(tf, model, needs_softmax)
    frames, bins = (int(v) for v in cfg.feature_shape)
    reason = None
    if cfg.preprocess != "embedding":
        fn = tf.function(lambda a: scores(compute_features(a, cfg)),
                         input_signature=[tf.TensorSpec([1, cfg.desired_samples], tf.float32)])
        try:
            converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
            converter.allow_custom_ops = True
            flat = _convert(converter)
            interpreter = tflite_interpreter(model_content=flat)
            interpreter.allocate_tensors()
            inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
            worst = 0.0
            for clip in check_audio:
                interpreter.set_tensor(inp["index"], clip[None].astype(np.float32))
                interpreter.invoke()
                expected = np.asarray(fn(clip[None]))
                worst = max(worst, float(np.abs(interpreter.get_tensor(out["index"]) - expected).max()))
            if worst <= IN_MODEL_FRONTEND_TOLERANCE:
                return flat, "audio", None
            reason = f"in-model front end differs from TensorFlow by {worst:.2g}"
        except Exception as exc:  # converter/interpreter errors have many types
            reason = f"front end not runnable in TFLite ({type(exc).__name__}: {str(exc)[:200]})"
        log.warning("float TFLite takes features: %s", reason)
    else:
        reason = "the speech-embedding front end is itself two TFLite models"
    fn = tf.function(scores, input_signature=[tf.TensorSpec([1, frames, bins], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    return _convert(converter), "features", reason


def convert_int8_tflite(model, cfg, needs_softmax: bool, representative: np.ndarray) -> bytes:
    """Full-integer int8 model on features, calibrated on ``representative`` training features."""
    tf = _tf()
    scores = _scores_fn(tf, model, needs_softmax)
    frames, bins = (int(v) for v in cfg.feature_shape)
    fn = tf.function(scores, input_signature=[tf.TensorSpec([1, frames, bins], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def representative_dataset():
        for row in representative:
            yield [row[None].astype(np.float32)]

    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return _convert(converter)


def _tflite_io(path: Path) -> dict[str, Any]:
    interpreter = tflite_interpreter(model_path=str(path))
    info = {}
    for key, detail in (("input", interpreter.get_input_details()[0]),
                        ("output", interpreter.get_output_details()[0])):
        scale, zero = detail["quantization"]
        info[key] = {"shape": [int(v) for v in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name,
                     "scale": float(scale), "zero_point": int(zero)}
    return info


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def read_test_clips(manifest: Path, root: Path, labels: list[str], desired_samples: int,
                    sample_rate: int, limit: int | None = None):
    """Audio of the manifest's clips that have a file (silence rows have none) and their labels."""
    rows = [r for r in read_manifest(manifest) if r.path]
    if limit:
        rows = rows[:limit]
    paths, audio, y = [], [], []
    for row in tqdm(rows, desc="read test clips", leave=False):
        path = root / row.path
        if row.label not in labels:
            raise StageError(f"{manifest}: label {row.label!r} is not in the model's labels")
        audio.append(fit_to_length(read_wav(path, sample_rate), desired_samples))
        y.append(labels.index(row.label))
        paths.append(path)
    if not audio:
        return paths, np.zeros((0, desired_samples), np.float32), np.zeros(0, np.int32)
    return paths, np.stack(audio).astype(np.float32), np.array(y, np.int32)


def _accuracy(scores: np.ndarray, y: np.ndarray) -> float | None:
    return float(np.mean(scores.argmax(axis=1) == y)) if len(y) else None


def evaluate_exports(export_dir: Path, keras_dir: Path, paths, audio, y, test_features=None):
    """Test accuracy of every format on the same clips (SavedModel through its WAV signature)."""
    results: dict[str, Any] = {}
    keras_model = load_model(keras_dir)
    results["keras"] = _accuracy(keras_model.predict_audio(audio), y)
    if (export_dir / "saved_model").is_dir():
        saved = load_model(export_dir)
        scores = [saved.predict_wav_bytes(Path(p).read_bytes(), str(p))
                  for p in tqdm(paths, desc="saved_model", leave=False)]
        results["saved_model"] = _accuracy(np.array(scores), y) if scores else None
    for name in ("tflite_float", "tflite_int8"):
        model = load_model(export_dir / f"model_{name.split('_')[1]}.tflite")
        results[name] = _accuracy(model.predict_audio(audio), y)
        if test_features is not None and not getattr(model, "takes_audio", False):
            x, fy = test_features
            results[f"{name}_test_npz"] = _accuracy(model.predict_features(x), fy)
    if test_features is not None:
        x, fy = test_features
        results["keras_test_npz"] = _accuracy(keras_model.predict_features(x), fy)
    return results


def freeze(keras_dir: Path, out_dir: Path, metrics_path: Path, features: dict[str, Any],
           wanted_words: list[str], train_npz: Path | None, test_manifest: Path | None,
           test_npz: Path | None = None, data_root: Path = Path("."),
           test_limit: int | None = None) -> dict[str, Any]:
    """Export ``keras_dir`` into ``out_dir`` and write the export metrics."""
    tf = _tf()
    from pipeline.features import FeatureConfig

    cfg = FeatureConfig.from_params(feature_params(features))
    labels = prepare_words_list(wanted_words)
    keras_labels = read_labels(keras_dir / "labels.txt")
    if keras_labels != labels:
        raise StageError(f"{keras_dir}/labels.txt lists {keras_labels} but split.wanted_words "
                         f"gives {labels}; rerun train")
    meta_path = keras_dir / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        try:
            trained = feature_params(meta.get("features", {}))
        except StageError:
            trained = None
        if trained is not None and trained != cfg.to_dict():
            raise StageError(f"{keras_dir} was trained with features {trained} but params.yaml "
                             f"has {cfg.to_dict()}; rerun featurize and train")
    from pipeline.models import load_model_file

    model = load_model_file(keras_dir / "model.keras")
    frames, bins = (int(v) for v in cfg.feature_shape)
    if tuple(model.input_shape[1:]) != (frames, bins):
        raise StageError(f"{keras_dir}/model.keras takes {model.input_shape[1:]} but the features "
                         f"are {(frames, bins)}")

    rng = np.random.default_rng(REPRESENTATIVE_SEED)
    if train_npz is not None and train_npz.is_file():
        with np.load(train_npz) as data:
            x_train = data["x"]
        pick = rng.choice(len(x_train), size=min(REPRESENTATIVE_CLIPS, len(x_train)), replace=False)
        representative = x_train[np.sort(pick)].astype(np.float32)
    else:
        raise FileNotFoundError(f"{train_npz}: training features not found (run featurize)")
    sample = np.asarray(model(representative[:8], training=False))
    needs_softmax = not (sample.min() >= 0 and np.allclose(sample.sum(-1), 1, atol=1e-3))

    paths, audio, y = [], np.zeros((0, cfg.desired_samples), np.float32), np.zeros(0, np.int32)
    if test_manifest is not None and test_manifest.is_file():
        paths, audio, y = read_test_clips(test_manifest, data_root, labels, cfg.desired_samples,
                                          cfg.sample_rate, test_limit)
    test_features = None
    if test_npz is not None and test_npz.is_file():
        with np.load(test_npz) as data:
            test_features = (data["x"].astype(np.float32), data["y"].astype(np.int32))
    check_audio = audio[:4] if len(audio) else np.random.default_rng(0).uniform(
        -0.5, 0.5, (2, cfg.desired_samples)).astype(np.float32)

    with atomic_dir(out_dir) as tmp:
        write_labels(tmp / "labels.txt", labels)
        frontend = frontend_dict(cfg, len(labels))
        embedding = cfg.preprocess == "embedding"
        float_flat, float_input, reason = convert_float_tflite(model, cfg, needs_softmax, check_audio)
        (tmp / "model_float.tflite").write_bytes(float_flat)
        (tmp / "model_int8.tflite").write_bytes(
            convert_int8_tflite(model, cfg, needs_softmax, representative))
        frontend["tflite"] = {name: _tflite_io(tmp / name)
                              for name in ("model_float.tflite", "model_int8.tflite")}
        frontend["tflite"]["model_float.tflite"]["takes"] = float_input
        frontend["tflite"]["model_int8.tflite"]["takes"] = "features"
        if reason:
            frontend["tflite"]["model_float.tflite"]["why_features"] = reason
        (tmp / "frontend.json").write_text(json.dumps(frontend, indent=2, sort_keys=True) + "\n")
        if embedding:
            bundle = {"model": "model_float.tflite", "frontend": "frontend.json",
                      "labels": "labels.txt", "int8_model": "model_int8.tflite"}
            (tmp / "bundle.json").write_text(json.dumps(bundle, indent=2, sort_keys=True) + "\n")
        else:
            module, signatures = build_module(
                model, cfg, needs_softmax,
                {"labels_asset": tmp / "labels.txt", "frontend_asset": tmp / "frontend.json"})
            tf.saved_model.save(module, str(tmp / "saved_model"), signatures=signatures)
            # fingerprint.pb carries a random UUID, so identical models would differ on disk;
            # it is optional (TensorFlow loads SavedModels without it).
            (tmp / "saved_model" / "fingerprint.pb").unlink(missing_ok=True)
        accuracy = evaluate_exports(tmp, keras_dir, paths, audio, y, test_features)
        sizes = {"model.keras": _size(keras_dir / "model.keras")}
        for name in ("saved_model", "model_float.tflite", "model_int8.tflite"):
            if (tmp / name).exists():
                sizes[name] = _size(tmp / name)
        metrics = {
            "parameters": {"features": cfg.to_dict(), "wanted_words": list(wanted_words),
                           "representative_clips": int(len(representative)),
                           "float_tflite_input": float_input},
            "size_bytes": sizes,
            "accuracy": accuracy,
            "test_clips": int(len(y)),
            "test_npz_clips": int(len(test_features[1])) if test_features else 0,
        }
        if accuracy.get("tflite_float") is not None and accuracy.get("tflite_int8") is not None:
            metrics["int8_drop_points"] = round(
                100 * (accuracy["tflite_float"] - accuracy["tflite_int8"]), 3)
    atomic_write_json(metrics_path, metrics)
    return metrics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--keras-dir", default="models/keras")
    parser.add_argument("--out", default="models/export")
    parser.add_argument("--metrics", default="metrics/export.json")
    parser.add_argument("--features-dir", default="data/features")
    parser.add_argument("--split-dir", default="data/split")
    parser.add_argument("--test-limit", type=int, default=None,
                        help="score only the first N test clips (quick checks)")
    args = parser.parse_args(argv)
    params = load_params(args.params, sections=["features", "split"])
    keras_dir = Path(args.keras_dir)
    if not (keras_dir / "model.keras").is_file():
        raise FileNotFoundError(f"{keras_dir}/model.keras not found (run the train stage first)")
    metrics = freeze(
        keras_dir, Path(args.out), Path(args.metrics), params["features"],
        params["split"]["wanted_words"], Path(args.features_dir) / "train.npz",
        Path(args.split_dir) / "test.csv", Path(args.features_dir) / "test.npz",
        test_limit=args.test_limit,
    )
    print(json.dumps({"accuracy": metrics["accuracy"], "size_bytes": metrics["size_bytes"]},
                     indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    run_main(main)
