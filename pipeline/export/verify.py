"""Check the exports: the in-model front end against TensorFlow, and every format's accuracy on
the same test clips (the SavedModel through its WAV signature, as a user would call it), and the
streaming model frame by frame against the whole-clip model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pipeline.core.audio import fit_to_length
from pipeline.core.errors import StageError
from pipeline.core.tf import tflite_interpreter
from pipeline.data.clip_store import ClipReader
from pipeline.data.manifest import read_manifest

# The float TFLite with the front end inside is kept only if it agrees with Keras this closely.
IN_MODEL_FRONTEND_TOLERANCE = 1e-3


def max_tflite_difference(flat: bytes, fn, clips: np.ndarray) -> float:
    """Largest absolute difference between a TFLite model (bytes) and ``fn`` on each clip."""
    interpreter = tflite_interpreter(model_content=flat)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    worst = 0.0
    for clip in clips:
        interpreter.set_tensor(inp["index"], clip[None].astype(np.float32))
        interpreter.invoke()
        expected = np.asarray(fn(clip[None]))
        worst = max(worst, float(np.abs(interpreter.get_tensor(out["index"]) - expected).max()))
    return worst


def read_test_clips(
    manifest: Path,
    clips: ClipReader,
    labels: list[str],
    desired_samples: int,
    limit: int | None = None,
):
    """Audio of the manifest's clips (read from the clip stores; silence rows have none) and
    their labels: ``(paths, audio [N, desired_samples], label indices [N])``."""
    rows = [r for r in read_manifest(manifest) if r.path]
    if limit:
        rows = rows[:limit]
    paths, audio, y = [], [], []
    for row in tqdm(rows, desc="read test clips", leave=False):
        if row.label not in labels:
            raise StageError(f"{manifest}: label {row.label!r} is not in the model's labels")
        audio.append(fit_to_length(clips.read(row.path), desired_samples))
        y.append(labels.index(row.label))
        paths.append(row.path)
    if not audio:
        return paths, np.zeros((0, desired_samples), np.float32), np.zeros(0, np.int32)
    return paths, np.stack(audio).astype(np.float32), np.array(y, np.int32)


def _accuracy(scores: np.ndarray, y: np.ndarray) -> float | None:
    return float(np.mean(scores.argmax(axis=1) == y)) if len(y) else None


def evaluate_exports(
    export_dir: Path,
    keras_dir: Path,
    paths,
    audio,
    y,
    test_features=None,
    clips: ClipReader | None = None,
    views=(1.0,),
) -> dict[str, Any]:
    """Test accuracy of every format on the same clips (SavedModel through its WAV signature: the
    clips named by ``paths`` as WAV bytes from ``clips``), the trained model too scored over the
    export's vocal-tract ``views``."""
    from pipeline.inference import load_model

    results: dict[str, Any] = {}
    keras_model = load_model(keras_dir)
    keras_model.set_views(views)
    results["keras"] = _accuracy(keras_model.predict_audio(audio), y)
    if (export_dir / "saved_model").is_dir():
        saved = load_model(export_dir)
        scores = [
            saved.predict_wav_bytes(clips.wav_bytes(p), str(p))
            for p in tqdm(paths, desc="saved_model", leave=False)
        ]
        results["saved_model"] = _accuracy(np.array(scores), y) if scores else None
    for name in ("tflite_float", "tflite_int8"):
        model = load_model(export_dir / f"model_{name.split('_')[1]}.tflite")
        results[name] = _accuracy(model.predict_audio(audio), y)
        if test_features is not None and not getattr(model, "takes_audio", False):
            x, fy = test_features
            # (the "_test_npz" key names are kept so that metrics compare with earlier commits)
            results[f"{name}_test_npz"] = _accuracy(model.predict_features(x), fy)
    if test_features is not None:
        x, fy = test_features
        results["keras_test_npz"] = _accuracy(keras_model.predict_features(x), fy)
    return results


def streaming_difference(
    flat: bytes, state_names, whole_clip_scores: np.ndarray, features: np.ndarray
) -> float:
    """Largest absolute difference between the streaming model (``flat``), run frame by frame
    over each clip's features [N, frames, bins] from zero states, at the clip's last frame, and
    the whole-clip model's scores of the clip [N, labels]."""
    from pipeline.inference.streaming_tflite import StreamingTFLite

    runner = StreamingTFLite(list(state_names), content=flat)
    worst = 0.0
    bar = tqdm(
        total=int(features.shape[0] * features.shape[1]),
        desc="streaming check",
        unit="frame",
        leave=False,
    )
    for clip, expected in zip(features, whole_clip_scores):
        runner.reset()
        last = runner.run(clip, bar)[-1]
        worst = max(worst, float(np.abs(last - expected).max()))
    bar.close()
    return worst
