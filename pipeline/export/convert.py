"""Convert the trained Keras model into the formats people run without this package.

- ``build_module``: a tf.Module whose signatures the SavedModel serves: ``serving_default`` takes
  the bytes of a WAV file (``wav_data``, like the original frozen graph) and returns
  ``labels_softmax``; ``audio`` takes float32 [batch, desired_samples]; for front ends with frame
  reuse, ``features`` takes [batch, frames, bins] and ``frame_features`` turns a 1-D signal of any
  length into [frames, bins] (streaming). The front end is inside the graph.
- ``convert_float_tflite``: float32 with the front end inside (AudioSpectrogram/Mfcc run by
  TFLite's builtin resolver) where it converts and agrees with TensorFlow, else features in.
- ``convert_int8_tflite``: full-integer int8 on features, calibrated on training features, with
  the logits floored (``int8_scores_fn``) so that their int8 step is fine enough to keep close
  classes apart.
- ``streaming_model``, ``convert_streaming_tflite``: the trained model in its streaming form (if its
  ModelSpec has one), one feature frame and explicit states per call.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import numpy as np

from pipeline.core.errors import StageError, first_line
from pipeline.core.tf import tensorflow
from pipeline.export.verify import IN_MODEL_FRONTEND_TOLERANCE, max_tflite_difference
from pipeline.frontends import FeatureConfig, compute_features

log = logging.getLogger(__name__)

# The int8 softmax's output step is 1/256, so a class whose logit is more than ln(256) below the
# top one scores 0 there whatever its value: the int8 model floors the logits that far below the
# lowest top logit of the calibration clips, and as far again for clips whose top logit is lower
# than any calibration clip's (int8_scores_fn).
LOGIT_FLOOR_MARGIN = 2 * math.log(256)


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


def scores_fn(model, needs_softmax: bool):
    """features -> class scores (the model's outputs, with a softmax if it gives logits)."""
    tf = tensorflow()

    def scores(features):
        out = model(features, training=False)
        return tf.nn.softmax(out) if needs_softmax else out

    return scores


def _final_denses(model, needs_softmax: bool):
    """``(body, denses)`` when the logits come from linear Dense layers: one, or one per head of a
    committee (``stack_heads``: ``[batch, heads, labels]``, scored as the mean of the heads'
    softmaxes); ``body`` maps the features to their inputs, a list. None for other models. A
    scores model is ``with_softmax``'s: features -> the logits model -> Softmax (or, for a
    committee, the per-head Softmax and their mean)."""
    import keras

    logits_model = model
    if not needs_softmax:
        tail = [type(layer) for layer in model.layers[2:]]
        if tail not in (
            [keras.layers.Softmax],
            [keras.layers.Softmax, keras.layers.GlobalAveragePooling1D],
        ) or not isinstance(model.layers[1], keras.Model):
            return None
        logits_model = model.layers[1]
    final = logits_model.layers[-1]
    if isinstance(final, keras.layers.Concatenate) and final.name == "heads":
        try:
            denses = [
                logits_model.get_layer(f"head{i}").input._keras_history.operation
                for i in range(len(final.input))
            ]
        except (ValueError, AttributeError):
            return None
    else:
        denses = [final]
    for dense in denses:
        if (
            not isinstance(dense, keras.layers.Dense)
            or dense.activation is not keras.activations.linear
            or len(dense.input.shape) != 2
        ):
            return None
    return keras.Model(logits_model.input, [dense.input for dense in denses]), denses


def int8_scores_fn(model, needs_softmax: bool, calibration: np.ndarray):
    """The scores function the int8 model is converted from, and the logit floor (None if none).

    TFLite quantizes the last layer's output (the logits) per tensor over its calibrated min..max.
    A confident model's logits span far below the top class (-100 to +30 for ``tiny_conv`` on
    the micro features): a step of 0.5, so two top classes less than that apart get the same int8
    logit, the int8 softmax ties them and argmax takes the first. Here the last Dense layer gets a
    ReLU fused with its bias lowered by the floor ``f`` (the lowest top logit over ``calibration``
    less LOGIT_FLOOR_MARGIN): softmax(relu(z - f)) = softmax(max(z, f)), so the scores are the
    model's but for classes the int8 softmax gives 0 anyway, and the int8 range is only [0, top
    - f]: a step about 3 times finer. (A clip whose every logit is below ``f`` would score all
    classes alike; the margin leaves room for clips whose top logit is up to ln(256) lower than
    any calibration clip's.) A committee's heads each get their own floor, and their floored
    softmaxes are averaged as ``with_softmax`` averages them; the floor returned is the lowest.
    """
    tf = tensorflow()
    split = _final_denses(model, needs_softmax)
    if split is None:
        return scores_fn(model, needs_softmax), None
    body, denses = split
    kernels, shifts, floors = [], [], []
    batches = [
        body(calibration[i : i + 256], training=False) for i in range(0, len(calibration), 256)
    ]
    for head, dense in enumerate(denses):
        kernel = np.asarray(dense.kernel, np.float32)
        bias = (
            np.asarray(dense.bias, np.float32)
            if dense.use_bias
            else np.zeros(kernel.shape[1], np.float32)
        )
        hidden = np.concatenate([np.asarray(_as_list(out)[head]) for out in batches])
        floor = float((hidden @ kernel + bias).max(axis=1).min() - LOGIT_FLOOR_MARGIN)
        kernels.append(kernel)
        shifts.append(bias - np.float32(floor))
        floors.append(floor)

    def scores(features):
        inputs = _as_list(body(features, training=False))
        per_head = [
            tf.nn.softmax(tf.nn.relu(tf.matmul(x, kernel) + shifted))
            for x, kernel, shifted in zip(inputs, kernels, shifts)
        ]
        return per_head[0] if len(per_head) == 1 else tf.add_n(per_head) / len(per_head)

    return scores, min(floors)


def _as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def build_module(model, cfg: FeatureConfig, needs_softmax: bool, assets: dict[str, Path]):
    """A tf.Module with the serving signatures (see module doc): ``(module, signatures)``."""
    tf = tensorflow()
    scores = scores_fn(model, needs_softmax)
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
                decoded.sample_rate,
                tf.constant(cfg.sample_rate, tf.int32),
                message=f"WAV sample rate must be {cfg.sample_rate} Hz",
            )
            audio = tf.transpose(decoded.audio)  # [1, samples]
            return {"labels_softmax": scores(compute_features(audio, cfg))}

        @tf.function(input_signature=[tf.TensorSpec([None, samples], tf.float32, name="audio")])
        def audio(self, audio):
            return {"labels_softmax": scores(compute_features(audio, cfg))}

        @tf.function(
            input_signature=[tf.TensorSpec([None, frames, bins], tf.float32, name="features")]
        )
        def features(self, features):
            return {"labels_softmax": scores(features)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="audio")])
        def frame_features(self, audio):
            return {"features": compute_features(audio[None, :], cfg)[0]}

    module = KwsExport()
    signatures = {"serving_default": module.wav, "audio": module.audio}
    if cfg.frontend.frame_reuse:
        signatures["features"] = module.features
        signatures["frame_features"] = module.frame_features
    return module, signatures


def save_saved_model(module, signatures, folder: Path) -> None:
    """Write the SavedModel of ``module`` into ``folder``; a StageError naming ``folder`` if it
    cannot be written (TensorFlow reports a full disk as a ResourceExhaustedError, a file size
    limit as an OutOfRangeError)."""
    tf = tensorflow()
    try:
        tf.saved_model.save(module, str(folder), signatures=signatures)
    except (tf.errors.OpError, OSError) as exc:
        raise StageError(f"{folder}: cannot write the SavedModel ({first_line(exc)})") from None
    # fingerprint.pb carries a random UUID, so identical models would differ on disk; it is
    # optional (TensorFlow loads SavedModels without it).
    (folder / "fingerprint.pb").unlink(missing_ok=True)


def features_tflite(model, cfg: FeatureConfig, needs_softmax: bool) -> bytes:
    """Float TFLite of the whole-clip model on features [1, frames, bins] (for comparisons)."""
    return _features_input_tflite(model, cfg, needs_softmax)


def _features_input_tflite(
    model, cfg: FeatureConfig, needs_softmax: bool, int8_calibration=None
) -> bytes:
    tf = tensorflow()
    frames, bins = (int(v) for v in cfg.feature_shape)
    scores = scores_fn(model, needs_softmax)
    if int8_calibration is not None:
        scores, floor = int8_scores_fn(model, needs_softmax, int8_calibration)
        if floor is not None:
            log.info(
                "int8: logits floored at %.3f (lowest top logit of the calibration clips - %.3f)",
                floor,
                LOGIT_FLOOR_MARGIN,
            )
    fn = tf.function(scores, input_signature=[tf.TensorSpec([1, frames, bins], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    if int8_calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def representative_dataset():
            for row in int8_calibration:
                yield [row[None].astype(np.float32)]

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return _convert(converter)


def convert_float_tflite(model, cfg: FeatureConfig, needs_softmax: bool, check_audio: np.ndarray):
    """Float TFLite with the front end inside if it converts and matches; else features input.

    Returns (bytes, input kind "audio" or "features", reason when the front end stays outside).
    """
    tf = tensorflow()
    if not cfg.frontend.in_graph:
        return (
            _features_input_tflite(model, cfg, needs_softmax),
            "features",
            f"the {cfg.preprocess!r} front end is not made of TensorFlow ops",
        )
    scores = scores_fn(model, needs_softmax)
    fn = tf.function(
        lambda a: scores(compute_features(a, cfg)),
        input_signature=[tf.TensorSpec([1, cfg.desired_samples], tf.float32)],
    )
    try:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
        converter.allow_custom_ops = True
        flat = _convert(converter)
        worst = max_tflite_difference(flat, fn, check_audio)
        if worst <= IN_MODEL_FRONTEND_TOLERANCE:
            return flat, "audio", None
        reason = f"in-model front end differs from TensorFlow by {worst:.2g}"
    except Exception as exc:  # converter/interpreter errors have many types
        reason = f"front end not runnable in TFLite ({type(exc).__name__}: {str(exc)[:200]})"
    log.warning("float TFLite takes features: %s", reason)
    return _features_input_tflite(model, cfg, needs_softmax), "features", reason


def convert_int8_tflite(
    model, cfg: FeatureConfig, needs_softmax: bool, representative: np.ndarray
) -> bytes:
    """Full-integer int8 model on features, calibrated on ``representative`` training features."""
    return _features_input_tflite(model, cfg, needs_softmax, int8_calibration=representative)


def convert_streaming_tflite(streaming) -> bytes:
    """Float TFLite of a StreamingModel (models/streaming.py). Its signature ``serving_default``
    takes ``frame`` [1, bins] and every state by name; it returns ``output_0`` (the scores) and
    ``output_1``.. (the new states, in the order of ``streaming.state_shapes``)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    tf = tensorflow()
    specs = [tf.TensorSpec([1, streaming.bins], tf.float32, name="frame")]
    specs += [
        tf.TensorSpec([1, *shape], tf.float32, name=name)
        for name, shape in streaming.state_shapes.items()
    ]

    def step(frame, *states):
        return tuple(streaming([frame, *states], training=False))

    module = tf.Module()
    module.source = streaming.source  # tracks the weights the step reads
    module.step = tf.function(step, input_signature=specs)
    # Weights as constants (Keras 3 variables would stay resource variables without values);
    # the tracked module keeps the signature and its input names.
    frozen = convert_variables_to_constants_v2(module.step.get_concrete_function())
    return _convert(tf.lite.TFLiteConverter.from_concrete_functions([frozen], module))


def streaming_model(keras_dir: Path, trained):
    """The trained model's streaming form: ``(StreamingModel, None)``, or ``(None, why not)``.

    The architecture and its options come from the train stage's ``meta.json``; the model module's
    ``ModelSpec.stream`` builds it from the trained layers.
    """
    from pipeline.core.fs import read_json
    from pipeline.models.registry import MODELS
    from pipeline.models.streaming import NotStreamable

    meta_path = Path(keras_dir) / "meta.json"
    meta = read_json(meta_path) if meta_path.is_file() else {}
    architecture = meta.get("architecture")
    spec = MODELS.get(architecture)
    if spec is None:
        return None, f"architecture {architecture!r} (from {meta_path}) is not a registered model"
    if spec.stream is None:
        return None, f"{architecture} has no streaming form (it runs on whole windows only)"
    options = spec.options.from_dict(
        {**spec.options().to_dict(), **meta.get("model_options", {})},
        prefix=f"model.{architecture}",
    )
    try:
        return spec.stream(trained, options), None
    except NotStreamable as exc:
        return None, str(exc)
