"""Streaming models (one feature frame per call, explicit states) and the microcontroller export."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from pipeline.core.audio import write_wav
from pipeline.core.metrics_files import details_path
from pipeline.data.feature_store import read_features, write_features
from pipeline.models.ds_cnn import DsCnnOptions
from pipeline.models.low_latency_svdf import SvdfOptions
from pipeline.models.registry import build_model, get_model
from pipeline.models.streaming import NotStreamable
from tests.conftest import pack
from tests.test_inference import LABELS, WANTED, tiny_clips

SMALL_DS_CNN = DsCnnOptions(channels=8, blocks=[[3, 1], [5, 2], [3, 1], [3, 2]], padding="causal")
# valid: receptive field 3 + 2 + 4 + 2 * 2 + 2 * 2 = 17 frames of the 30; 4 pooled outputs.
SMALL_VALID = DsCnnOptions(channels=8, blocks=[[3, 1], [5, 2], [3, 1], [3, 2]], padding="valid")
SMALL_SVDF = SvdfOptions(units=16, rank=2)


def _trained_like(architecture, options, shape=(30, 10), labels=6, seed=0):
    """A with_softmax model as the train stage saves it, with non-trivial batch-norm statistics."""
    from pipeline.models.io import with_softmax

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = with_softmax(build_model(architecture, shape, labels, 0.0, options))
    for layer in model.get_layer(architecture).layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.2, layer.moving_mean.shape).astype(np.float32))
            layer.moving_variance.assign(
                rng.uniform(0.5, 2, layer.moving_variance.shape).astype(np.float32)
            )
    return model


STREAMING = [("low_latency_svdf", SMALL_SVDF), ("ds_cnn", SMALL_DS_CNN), ("ds_cnn", SMALL_VALID)]


@pytest.mark.parametrize("architecture,options", STREAMING)
def test_streaming_model_gives_the_whole_clip_scores_at_the_last_frame(architecture, options):
    model = _trained_like(architecture, options)
    x = np.random.default_rng(1).normal(size=(3, 30, 10)).astype(np.float32)
    whole = np.asarray(model(x, training=False))
    streaming = get_model(architecture).stream(model, options)
    for clip, expected in zip(x, whole):
        np.testing.assert_allclose(streaming.run_clip(clip)[-1], expected, atol=1e-5)


def test_ds_cnn_causal_outputs_ignore_the_future_and_same_padding_does_not_stream():
    model = _trained_like("ds_cnn", SMALL_DS_CNN)
    x = np.random.default_rng(2).normal(size=(1, 30, 10)).astype(np.float32)
    changed = x.copy()
    changed[0, 20:] += 1.0
    inner = model.get_layer("ds_cnn")
    probe = keras.Model(inner.input, inner.get_layer("block1_relu").output)
    before, after = np.asarray(probe(x)), np.asarray(probe(changed))
    np.testing.assert_allclose(
        before[0, :20], after[0, :20], atol=1e-6
    )  # causal: the past is unchanged
    assert np.abs(before[0, 20:] - after[0, 20:]).max() > 1e-3
    same = DsCnnOptions(channels=8, blocks=[[3, 1]], padding="same")
    with pytest.raises(NotStreamable, match="padding: valid"):
        get_model("ds_cnn").stream(_trained_like("ds_cnn", same), same)
    assert get_model("tiny_conv").stream is None


def test_svdf_streams_a_long_signal_window_by_window():
    """The SVDF's memory holds exactly the last window: on a long signal every frame's output is
    the whole-clip model's score of the window that ends there."""
    model = _trained_like("low_latency_svdf", SMALL_SVDF)
    signal = np.random.default_rng(3).normal(size=(50, 10)).astype(np.float32)
    per_frame = get_model("low_latency_svdf").stream(model, SMALL_SVDF).run_clip(signal)
    windows = np.stack([signal[t - 29 : t + 1] for t in range(29, 50)])
    np.testing.assert_allclose(
        per_frame[29:], np.asarray(model(windows, training=False)), atol=1e-5
    )


@pytest.mark.parametrize("architecture,options", STREAMING)
def test_streaming_tflite_carries_its_state_explicitly(architecture, options):
    from pipeline.export.convert import convert_streaming_tflite
    from pipeline.export.verify import streaming_difference
    from pipeline.inference.streaming_tflite import StreamingTFLite

    model = _trained_like(architecture, options)
    streaming = get_model(architecture).stream(model, options)
    flat = convert_streaming_tflite(streaming)
    x = np.random.default_rng(4).normal(size=(4, 30, 10)).astype(np.float32)
    whole = np.asarray(model(x, training=False))
    assert streaming_difference(flat, streaming.state_shapes, whole, x) <= 1e-4
    runner = StreamingTFLite(list(streaming.state_shapes), content=flat)
    assert runner.state_shapes == {k: (1, *v) for k, v in streaming.state_shapes.items()}
    first = runner.run(x[0])[-1]
    runner.run(x[1])  # the state moves on ...
    runner.reset()  # ... and zero states start a new stream
    np.testing.assert_allclose(runner.run(x[0])[-1], first, atol=1e-6)
    with pytest.raises(Exception, match="states"):
        StreamingTFLite(["nope"], content=flat)


def test_svdf_costs_one_frame_of_feature_filter_per_call():
    """The tutorial's ~750k: bins x filters + filters x frames + the dense layers, per frame."""
    from pipeline.export.convert import convert_streaming_tflite, features_tflite
    from pipeline.export.cost import tflite_macs
    from pipeline.frontends import FeatureConfig

    options = SvdfOptions()
    model = _trained_like("low_latency_svdf", options, shape=(98, 40), labels=12)
    filters = options.units * options.rank
    dense = options.units * 256 + 256 * 256 + 256 * 12
    frame = tflite_macs(
        convert_streaming_tflite(get_model("low_latency_svdf").stream(model, options))
    )
    assert frame == 40 * filters + filters * 98 + dense
    assert 700_000 < frame < 800_000
    cfg = FeatureConfig.from_dict(
        dict(
            sample_rate=16000,
            clip_duration_ms=1000,
            window_size_ms=30,
            window_stride_ms=10,
            feature_bin_count=40,
            preprocess="mfcc",
        )
    )
    assert (
        tflite_macs(features_tflite(model, cfg, needs_softmax=False))
        == 98 * 40 * filters + filters * 98 + dense
    )


@pytest.mark.parametrize(
    "blocks",
    [
        [[3, 1], [5, 2], [3, 1], [3, 2]],
        [[3, 1], [4, 2], [3, 1], [2, 2], [3, 1]],
        [[5, 1], [7, 2], [9, 1], [11, 2], [13, 1]],
    ],
)
def test_valid_ds_cnn_streams_every_window_whatever_its_phase(blocks):
    """Valid padding: a window's scores depend on its frames only, so on a long signal every
    frame's streaming output is the window model's score of the window ending there, at every
    phase against the total stride (4 or 8 here); the default blocks fit 98 frames."""
    from pipeline.models.ds_cnn import receptive_field

    options = DsCnnOptions(channels=8, blocks=blocks, padding="valid")
    frames = 30 if receptive_field(blocks) <= 30 else 98
    model = _trained_like("ds_cnn", options, shape=(frames, 10))
    signal = np.random.default_rng(5).normal(size=(frames + 21, 10)).astype(np.float32)
    per_frame = get_model("ds_cnn").stream(model, options).run_clip(signal)
    windows = np.stack([signal[t - frames + 1 : t + 1] for t in range(frames - 1, len(signal))])
    whole = np.asarray(model(windows, training=False))
    np.testing.assert_allclose(per_frame[frames - 1 :], whole, atol=1e-5)
    assert np.abs(per_frame[frames:] - whole[:-1]).max() > 1e-4  # the windows' scores do differ


def test_valid_ds_cnn_window_scores_ignore_frames_outside_the_receptive_field():
    from pipeline.core.errors import ParamError
    from pipeline.models.ds_cnn import receptive_field

    model = _trained_like("ds_cnn", SMALL_VALID)
    x = np.random.default_rng(6).normal(size=(1, 30, 10)).astype(np.float32)
    inner = model.get_layer("ds_cnn")
    probe = keras.Model(
        inner.input, inner.get_layer("block4_relu").output
    )  # 4 outputs, 4 frames apart
    changed = x.copy()
    changed[0, : 30 - receptive_field(SMALL_VALID.blocks) - 12] += (
        1.0  # before every output's field
    )
    np.testing.assert_allclose(np.asarray(probe(x)), np.asarray(probe(changed)), atol=1e-6)
    changed[0, -1] += 1.0  # the last frame: only the last output sees it
    diff = np.abs(np.asarray(probe(x)) - np.asarray(probe(changed))).max(axis=2)[0]
    assert diff[-1] > 1e-3 and diff[:-1].max() < 1e-6
    with pytest.raises(ParamError, match="needs windows of at least 97 frames"):
        build_model("ds_cnn", (90, 10), 6, 0.0, DsCnnOptions(padding="valid"))


# ------------------------------------------------------------------ through freeze and stream_eval
MFCC = dict(
    sample_rate=16000,
    clip_duration_ms=1000,
    window_size_ms=30,
    window_stride_ms=20,
    feature_bin_count=20,
    preprocess="mfcc",
)
MICRO = dict(MFCC, feature_bin_count=40, preprocess="micro")


def train_registered(
    folder: Path, architecture: str, options, features: dict, epochs: int = 30
) -> Path:
    """A registered architecture trained on the tone words and saved as the train stage saves it."""
    from pipeline.core.labels import write_labels
    from pipeline.frontends import FeatureConfig, features_numpy
    from pipeline.models.io import save_model_file, with_softmax

    keras.utils.set_random_seed(3)
    cfg = FeatureConfig.from_dict(features)
    audio, y = tiny_clips(range(10))
    x = features_numpy(audio, cfg)
    model = with_softmax(build_model(architecture, cfg.feature_shape, len(LABELS), 0.0, options))
    model.compile(optimizer=keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
    folder.mkdir(parents=True, exist_ok=True)
    save_model_file(model, folder / "model.keras")
    write_labels(folder / "labels.txt", LABELS)
    (folder / "meta.json").write_text(
        json.dumps(
            {
                "architecture": architecture,
                "model_options": options.to_dict(),
                "features": {"features": features, "feature_shape": list(cfg.feature_shape)},
            }
        )
    )
    return folder


def freeze_tones(root: Path, keras_dir: Path, features: dict, views=(1.0,)) -> dict:
    """Freeze ``keras_dir`` with training and test features and a test manifest of tone clips
    (``views``: export.views)."""
    from pipeline.export.freeze import ExportInputs, freeze
    from pipeline.frontends import FeatureConfig, features_numpy

    cfg = FeatureConfig.from_dict(features)
    audio, y = tiny_clips(range(10))
    write_features(root, "train", features_numpy(audio, cfg), y)
    audio, y = tiny_clips(range(30, 45))
    rows = []
    for i, (clip, label) in enumerate(zip(audio, y)):
        path = str(root / "clips" / LABELS[label] / f"clip{i}_nohash_0.wav")
        write_wav(path, clip, 16000)
        rows.append(
            {
                "path": path,
                "word": LABELS[label],
                "label": LABELS[label],
                "label_index": int(label),
                "speaker": "s",
                "split": "testing",
            }
        )
    with open(root / "test.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    pack(root / "clips")
    write_features(root, "test", features_numpy(audio, cfg), y)
    return freeze(
        keras_dir,
        root / "export",
        root / "export.json",
        cfg,
        WANTED,
        ExportInputs(
            features_dir=root, test_manifest=root / "test.csv", data_root=Path("/"), views=views
        ),
    )


class Conversions:
    """Every TFLite conversion while it is on: the shape of each converted function's first input
    (counted where TensorFlow's public ``TFLiteConverter.from_concrete_functions`` makes a
    converter, and where its ``convert`` runs)."""

    def __init__(self):
        self.inputs, self.converted = [], 0

    def __enter__(self):
        from pipeline.core.tf import tensorflow

        converter = tensorflow().lite.TFLiteConverter
        make, convert = converter.from_concrete_functions, converter.convert
        self._patch = pytest.MonkeyPatch()

        def counted_make(funcs, *args, **kwargs):
            self.inputs.append(tuple(int(d) for d in funcs[0].inputs[0].shape))
            return make(funcs, *args, **kwargs)

        def counted_convert(converter_self):
            self.converted += 1
            return convert(converter_self)

        self._patch.setattr(converter, "from_concrete_functions", counted_make)
        self._patch.setattr(converter, "convert", counted_convert)
        return self

    def __exit__(self, *exc):
        self._patch.undo()


@pytest.fixture(scope="module")
def svdf_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("svdf")
    keras_dir = train_registered(
        root / "keras", "low_latency_svdf", SvdfOptions(units=32, rank=2), MFCC
    )
    with Conversions() as conversions:
        metrics = freeze_tones(root, keras_dir, MFCC)
    return root, metrics, conversions


@pytest.mark.slow
def test_freeze_writes_and_checks_the_streaming_model(svdf_export):
    root, metrics, _ = svdf_export
    export = root / "export"
    streaming = metrics["streaming"]
    assert streaming["exported"] and (export / "model_streaming.tflite").is_file()
    assert streaming["max_abs_diff"] <= 1e-4 and streaming["clips_checked"] == 15 * 7
    assert streaming["frames_per_window"] == 49
    # SVDF of 32 units x rank 2 on 49 x 20 features, then 256, 256 and 6 units: the window
    # computes the feature filter on all 49 frames, a frame only on the newest.
    dense = 32 * 256 + 256 * 256 + 256 * 6
    assert streaming["macs_per_frame"] == 20 * 64 + 64 * 49 + dense
    assert streaming["window_macs"] == 49 * 20 * 64 + 64 * 49 + dense
    assert (
        metrics["size_bytes"]["model_streaming.tflite"]
        == (export / "model_streaming.tflite").stat().st_size
    )
    frontend = json.loads((export / "frontend.json").read_text())
    assert frontend["streaming"]["inputs"] == ["frame", "svdf_memory"]
    assert frontend["streaming"]["outputs"] == ["scores", "svdf_memory"]
    assert frontend["streaming"]["states"]["svdf_memory"] == [1, 49, 64]
    assert json.loads(details_path(root / "export.json").read_text())["streaming"] == streaming


@pytest.mark.slow
def test_freeze_converts_each_model_once(svdf_export):
    """The float window model (audio in: the mfcc front end converts), the int8 model (features
    in) and the streaming model (a frame in) are converted once each; the streaming metric's
    window costs are model_float.tflite's, not those of another conversion."""
    from pipeline.export.cost import tflite_macs

    root, metrics, conversions = svdf_export
    frames, bins = 49, 20
    assert conversions.converted == 3
    assert sorted(conversions.inputs) == sorted([(1, 16000), (1, frames, bins), (1, bins)])
    window = (root / "export" / "model_float.tflite").read_bytes()
    assert metrics["parameters"]["float_tflite_input"] == "audio"
    assert metrics["streaming"]["window_macs"] == tflite_macs(window)
    assert metrics["streaming"]["window_model_bytes"] == len(window)


@pytest.mark.slow
def test_stream_eval_with_the_streaming_model_gives_the_window_models_detections(
    svdf_export, tmp_path
):
    from pipeline.streaming.config import StreamEvalConfig
    from tests.test_stream import run_eval

    root, *_ = svdf_export
    wav, truth = tone_recording(tmp_path, range(50, 53))
    cfg = StreamEvalConfig(clip_stride_ms=40)
    window = run_eval(root / "export", wav, truth, cfg)
    stream = run_eval(root / "export", wav, truth, cfg, streaming=True)
    np.testing.assert_array_equal(stream[3].times_ms, window[3].times_ms)
    np.testing.assert_allclose(stream[3].scores, window[3].scores, atol=1e-4)
    assert [d[:2] for d in stream[2]] == [d[:2] for d in window[2]] and len(window[2]) > 3
    assert stream[0]["streaming_model"] is True and stream[0]["correct"] == window[0]["correct"]


@pytest.mark.slow
def test_models_without_a_streaming_form_are_skipped_with_a_note(tmp_path):
    from pipeline.export.convert import streaming_model

    keras_dir = tmp_path / "keras"
    keras_dir.mkdir()
    options = get_model("tiny_conv").options()
    (keras_dir / "meta.json").write_text(
        json.dumps({"architecture": "tiny_conv", "model_options": {}})
    )
    streaming, reason = streaming_model(
        keras_dir, build_model("tiny_conv", (49, 20), 6, options=options)
    )
    assert streaming is None and "tiny_conv has no streaming form" in reason


# ------------------------------------------------------------------------------- microcontroller
@pytest.mark.slow
def test_micro_export_is_full_integer_with_a_c_array(tmp_path):
    from pipeline.export.c_array import read_c_array
    from pipeline.inference import load_model

    keras_dir = train_registered(
        tmp_path / "keras", "tiny_conv", get_model("tiny_conv").options(), MICRO
    )
    metrics = freeze_tones(tmp_path, keras_dir, MICRO)
    export = tmp_path / "export"
    int8 = (export / "model_int8.tflite").read_bytes()
    cc, header = (export / "model_data.cc").read_text(), (export / "model_data.h").read_text()
    assert read_c_array(cc) == int8
    assert f"const int g_model_data_len = {len(int8)};" in cc and "g_model_data_len" in header
    frontend = json.loads((export / "frontend.json").read_text())
    io = frontend["tflite"]["model_int8.tflite"]
    assert io["input"]["dtype"] == "int8" and io["output"]["dtype"] == "int8"
    assert io["input"]["shape"] == [1, 49, 40]
    # The int8 model on the micro front end's features of the test clips, against the float model.
    accuracy = metrics["accuracy"]
    assert accuracy["tflite_float_test_npz"] >= 0.8
    assert abs(accuracy["tflite_float_test_npz"] - accuracy["tflite_int8_test_npz"]) <= 0.01
    x, y = read_features(tmp_path, "test", num_labels=len(LABELS))
    int8_model, float_model = (
        load_model(export / "model_int8.tflite"),
        load_model(export / "model_float.tflite"),
    )
    assert (
        abs(
            np.mean(int8_model.predict_features(x).argmax(1) == y)
            - np.mean(float_model.predict_features(x).argmax(1) == y)
        )
        <= 0.01
    )
    assert metrics["streaming"] == {
        "exported": False,
        "reason": "tiny_conv has no streaming form (it runs on whole windows only)",
    }


@pytest.mark.parametrize("labels,limit", [(4, 25_000), (12, 55_000)])
def test_micro_tiny_conv_int8_size(labels, limit):
    """micro_speech's word set (4 labels) fits in 25 KB as the original example's ~18 KB model;
    the 12 labels in 55 KB."""
    from pipeline.export.convert import convert_int8_tflite
    from pipeline.frontends import FeatureConfig
    from pipeline.models.io import with_softmax

    cfg = FeatureConfig.from_dict(MICRO)
    model = with_softmax(build_model("tiny_conv", cfg.feature_shape, labels))
    calibration = (
        np.random.default_rng(0).uniform(0, 26, (8, *cfg.feature_shape)).astype(np.float32)
    )
    size = len(convert_int8_tflite(model, cfg, False, calibration))
    assert size <= limit
    assert size >= labels * 25 * 20 * 8  # the final layer's int8 weights are most of it


@pytest.mark.parametrize("heads", [1, 3])
def test_int8_keeps_close_top_classes_apart_when_the_logits_span_far_below_them(
    tmp_path, heads, caplog
):
    """The int8 drop of tiny_conv on the micro features: a confident model's logits span far below
    the top class (here six classes sit near -100), so per-tensor int8 logits over the calibrated
    range step by ~0.5 and two top classes 0.3-0.45 apart would often get the same int8 value (the
    int8 softmax ties them, argmax takes the first). The exported int8 model keeps them apart, and
    so does a committee's (heads whose softmaxes are averaged: each head's logits floored)."""
    from pipeline.export.convert import convert_int8_tflite
    from pipeline.export.report import frontend_dict
    from pipeline.frontends import FeatureConfig
    from pipeline.inference import load_model
    from pipeline.models.base import stack_heads
    from pipeline.models.io import with_softmax

    cfg = FeatureConfig.from_dict(MICRO)  # 49 x 40 features in 0..26, as the micro front end's
    labels = 12
    inputs = keras.Input(cfg.feature_shape)
    flat = keras.layers.Flatten()(inputs)
    # Class c's logit is feature [0, c]; classes 6..11 are 100 lower (the model rules them out);
    # each head scales them a little differently.
    kernel = np.zeros((49 * 40, labels), np.float32)
    kernel[np.arange(labels), np.arange(labels)] = 1.0
    bias = np.where(np.arange(labels) < 6, 0.0, -100.0).astype(np.float32)
    outputs = []
    for head in range(heads):
        dense = keras.layers.Dense(labels, name=f"m{head}_final_fc" if heads > 1 else "final_fc")
        outputs.append(dense(flat))
        dense.set_weights([kernel * (1 + 0.1 * head), bias])
    logits = outputs[0] if heads == 1 else stack_heads(outputs)
    model = with_softmax(keras.Model(inputs, logits, name="tiny"))

    rng = np.random.default_rng(5)
    calibration = rng.uniform(0, 26, (500, *cfg.feature_shape)).astype(np.float32)
    test = rng.uniform(0, 4, (300, *cfg.feature_shape)).astype(np.float32)
    for row in test:  # a top class and a runner-up 0.3-0.45 below it, both among classes 0..5
        top, second = rng.choice(6, 2, replace=False)
        row[0, top] = rng.uniform(8, 20)
        row[0, second] = row[0, top] - rng.uniform(0.3, 0.45)
    expected = np.asarray(model(test, training=False)).argmax(1)

    with caplog.at_level(logging.INFO, logger="pipeline.export.convert"):
        (tmp_path / "model_int8.tflite").write_bytes(
            convert_int8_tflite(model, cfg, False, calibration)
        )
    assert "logits floored" in caplog.text  # every head's, for a committee
    (tmp_path / "labels.txt").write_text("".join(f"w{i}\n" for i in range(labels)))
    (tmp_path / "frontend.json").write_text(json.dumps(frontend_dict(cfg, labels)))
    int8 = load_model(tmp_path / "model_int8.tflite").predict_features(test)
    assert np.mean(int8.argmax(1) == expected) >= 0.99
    # the scores too, not only their order (streaming thresholds them)
    assert np.abs(int8 - np.asarray(model(test, training=False))).mean() < 0.01


# ------------------------------------------------------------------ valid ds_cnn on a recording
# 49 frames of 20 ms: receptive field 3 + 2 + 4 + 2 * 2 + 2 * 2 + 2 * 4 = 25 frames, total stride 4;
# a 40 ms clip stride (2 frames) puts windows at both phases against it.
VALID_FOR_TONES = DsCnnOptions(
    channels=16, blocks=[[3, 1], [5, 2], [3, 1], [3, 2], [3, 1]], padding="valid"
)


def tone_recording(folder: Path, clips=range(50, 56)) -> tuple[Path, Path]:
    """Tone clips between quiet gaps, and their ground truth (the word labels)."""
    audio, y = tiny_clips(clips)
    rng = np.random.default_rng(0)
    pieces, truth, t = [], [], 0
    for clip, label in zip(audio, y):
        gap = rng.normal(0, 0.003, 8000).astype(np.float32)
        pieces += [gap, clip]
        if label >= 2:
            truth.append(f"{LABELS[label]}, {(t + 8000) * 1000 // 16000}\n")
        t += 8000 + len(clip)
    write_wav(folder / "stream.wav", np.concatenate(pieces), 16000)
    (folder / "truth.txt").write_text("".join(truth))
    return folder / "stream.wav", folder / "truth.txt"


@pytest.fixture(scope="module")
def valid_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("valid")
    keras_dir = train_registered(root / "keras", "ds_cnn", VALID_FOR_TONES, MFCC)
    return root, freeze_tones(root, keras_dir, MFCC)


@pytest.mark.slow
def test_freeze_checks_the_valid_ds_cnn_streaming_model(valid_export):
    root, metrics = valid_export
    streaming = metrics["streaming"]
    assert (
        streaming["exported"]
        and streaming["max_abs_diff"] <= 1e-4
        and streaming["clips_checked"] == 15 * 7
    )
    # (k - 1) x dilation frames per convolution; the pooling's 7 outputs of the last block (49 -> 47
    # -> 45 -> 21 -> 19 -> 9 -> 7), 4 frames apart: the last 6 x 4 of them at the full frame rate
    assert streaming["states"] == {
        "conv0_buffer": [1, 2, 20],
        "dw1_buffer": [1, 2, 16],
        "dw2_buffer": [1, 4, 16],
        "dw3_buffer": [1, 4, 16],
        "dw4_buffer": [1, 4, 16],
        "dw5_buffer": [1, 8, 16],
        "pool_buffer": [1, 24, 16],
    }
    assert streaming["macs_per_frame"] * 10 < streaming["window_macs"]


@pytest.mark.slow
def test_valid_ds_cnn_streams_the_window_models_scores_at_every_window(
    valid_export, tmp_path, monkeypatch
):
    """On a generated recording the streaming valid ds_cnn gives the window model's scores at
    every window (within 1e-4) and the same detections; the stream_eval stage records it."""
    from pipeline.stages import stream_eval as stage
    from pipeline.streaming.config import StreamEvalConfig
    from tests.test_stream import run_eval

    root, _ = valid_export
    wav, truth = tone_recording(tmp_path)
    # (the small model trained on tones is unsure: a low threshold gives detections to compare)
    cfg = StreamEvalConfig(clip_stride_ms=40, detection_threshold=0.3)
    window = run_eval(root / "export", wav, truth, cfg)
    stream = run_eval(root / "export", wav, truth, cfg, streaming=True)
    np.testing.assert_array_equal(stream[3].times_ms, window[3].times_ms)
    assert len(window[3].times_ms) > 100
    np.testing.assert_allclose(stream[3].scores, window[3].scores, atol=1e-4)
    assert [d[:2] for d in stream[2]] == [d[:2] for d in window[2]] and len(window[2]) >= 4

    run = tmp_path / "run"
    (run / "models").mkdir(parents=True)
    (run / "models" / "export").symlink_to(root / "export")
    (run / "data" / "stream").mkdir(parents=True)
    (run / "data" / "stream" / "stream.wav").write_bytes(wav.read_bytes())
    (run / "data" / "stream" / "stream_labels.txt").write_text(truth.read_text())
    (run / "params.yaml").write_text(yaml.safe_dump({"stream_eval": cfg.to_dict()}))
    monkeypatch.chdir(run)
    assert stage.main([]) == 0
    recorded = json.loads(details_path(run / "metrics" / "stream.json").read_text())
    assert recorded["detections"] == len(window[2])
    assert recorded["streaming"]["compared"] and recorded["streaming"]["detections_equal"]
    assert (
        recorded["streaming"]["detections"]
        == len(window[2])
        == recorded["streaming"]["same_detections"]
    )
    assert recorded["streaming"]["max_abs_score_diff"] <= 1e-4
    thirty = {**cfg.to_dict(), "clip_stride_ms": 30}  # 1.5 frames of 20 ms
    (run / "params.yaml").write_text(yaml.safe_dump({"stream_eval": thirty}))
    assert stage.main([]) == 0
    recorded = json.loads(details_path(run / "metrics" / "stream.json").read_text())
    assert (
        recorded["streaming"]["compared"] is False
        and "whole number" in recorded["streaming"]["reason"]
    )
