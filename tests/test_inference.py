"""load_model: the original frozen graph and a tiny trained Keras model through one interface."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.audio import encode_wav, fit_to_length, read_wav
from pipeline.core.errors import StageError
from tests.conftest import word_clip

WANTED = ["yes", "no", "up", "down"]
UNKNOWN = ["cat", "dog"]
LABELS = ["_silence_", "_unknown_", *WANTED]
FEATURES = dict(
    sample_rate=16000,
    clip_duration_ms=1000,
    window_size_ms=30,
    window_stride_ms=20,
    feature_bin_count=20,
    preprocess="mfcc",
)


def tiny_clips(speakers=range(8)):
    """(audio [N, 16000], label index [N]) of the conftest tone words plus quiet silence."""
    rng = np.random.default_rng(5)
    audio, y = [], []
    for s in speakers:
        for word in WANTED + UNKNOWN:
            audio.append(word_clip(word, s, 0))
            y.append(LABELS.index(word) if word in WANTED else 1)
        audio.append(rng.normal(0, 0.003, 16000).astype(np.float32))
        y.append(0)
    return np.stack(audio), np.array(y, np.int32)


def train_tiny_keras(folder: Path, features=FEATURES, epochs=40) -> Path:
    """Train a small conv on the tone words and save it like the train stage does."""
    import keras

    from pipeline.core.labels import write_labels
    from pipeline.frontends import FeatureConfig, features_numpy

    keras.utils.set_random_seed(1)
    cfg = FeatureConfig.from_dict(features)
    audio, y = tiny_clips(range(10))
    x = features_numpy(audio, cfg)
    mean, std = x.mean(), x.std()
    inputs = keras.Input(cfg.feature_shape, name="features")
    h = keras.layers.Rescaling(1.0 / std, offset=-mean / std)(inputs)
    h = keras.layers.Reshape((*cfg.feature_shape, 1))(h)
    h = keras.layers.Conv2D(8, (5, 5), strides=2, activation="relu")(h)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    write_labels(folder / "labels.txt", LABELS)
    # Nested as the train stage writes it: meta["features"] is featurize's meta.json.
    meta = {
        "architecture": "test_conv",
        "features": {"features": features, "feature_shape": list(cfg.feature_shape)},
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def keras_dir(tmp_path_factory) -> Path:
    return train_tiny_keras(tmp_path_factory.mktemp("keras") / "keras")


# ------------------------------------------------------------------------------ frozen graph
def test_pretrained_graph_loads_and_labels_real_clips(shared_pretrained, shared_mini):
    from pipeline.inference import load_model

    model = load_model(shared_pretrained / "conv_actions_frozen.pb")
    assert model.labels[:3] == ["_silence_", "_unknown_", "yes"] and len(model.labels) == 12
    assert (model.sample_rate, model.desired_samples) == (16000, 16000)
    files = sorted((shared_mini / "left").glob("*.wav"))[:12]
    scores = np.stack([model.predict_wav_file(f) for f in files])
    assert scores.shape == (12, 12)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-4)
    assert np.mean(scores.argmax(axis=1) == model.labels.index("left")) >= 0.75
    # The batched path (features computed by the same ops, fed at Mfcc:0) gives the same scores.
    audio = np.stack([fit_to_length(read_wav(f, 16000), 16000) for f in files])
    np.testing.assert_allclose(model.predict_audio(audio), scores, atol=1e-4)


def test_pretrained_graph_frame_reuse(shared_pretrained, shared_mini):
    from pipeline.inference import load_model

    model = load_model(shared_pretrained / "conv_actions_frozen.pb")
    assert model.supports_frames and model.frames_per_clip == 99
    assert model.frame_stride_samples == 160
    clip = fit_to_length(read_wav(sorted((shared_mini / "yes").glob("*.wav"))[0], 16000), 16000)
    long = np.concatenate([np.zeros(160 * 7, np.float32), clip, clip])
    frames = model.frame_features(long)
    assert frames.shape == (1 + (len(long) - 320) // 160, 40)
    window = frames[7 : 7 + 99][None]
    np.testing.assert_allclose(
        model.predict_features(window), model.predict_audio(clip[None]), atol=1e-4
    )


def test_pretrained_graph_bad_wav_and_missing_labels(shared_pretrained, tmp_path):
    from pipeline.core.audio import WavError
    from pipeline.inference import load_model

    model = load_model(shared_pretrained / "conv_actions_frozen.pb")
    with pytest.raises(WavError, match="not a WAV"):
        model.predict_wav_bytes(b"hello world", "junk.wav")
    with pytest.raises(WavError, match="8000 Hz"):
        model.predict_wav_bytes(encode_wav(np.zeros(8000), 8000), "slow.wav")
    lone = tmp_path / "graph.pb"
    lone.write_bytes((shared_pretrained / "conv_actions_frozen.pb").read_bytes())
    with pytest.raises(StageError, match="labels"):
        load_model(lone)


def test_load_model_errors(tmp_path):
    from pipeline.inference import load_model

    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.keras")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StageError, match="saved_model"):
        load_model(tmp_path / "empty")
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"\x00\x01not a graph")
    (tmp_path / "junk_labels.txt").write_text("a\nb\n")
    with pytest.raises(StageError, match="junk.pb"):
        load_model(junk)
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"\x0a\xff\xffnot a SavedModel" * 20)
    (saved / "labels.txt").write_text("a\nb\n")
    with pytest.raises(StageError, match=r"saved: cannot load the SavedModel \(.*corrupt"):
        load_model(saved)


# ------------------------------------------------------------------------------------- Keras
@pytest.mark.slow
def test_keras_model_predicts_held_out_speakers(keras_dir):
    from pipeline.inference import load_model

    model = load_model(keras_dir)
    assert model.labels == LABELS and model.desired_samples == 16000
    audio, y = tiny_clips(range(20, 26))
    scores = model.predict_audio(audio)
    assert scores.shape == (len(y), len(LABELS))
    assert np.mean(scores.argmax(1) == y) >= 0.85
    one = model.predict_wav_bytes(encode_wav(audio[3], 16000))
    np.testing.assert_allclose(one, scores[3], atol=2e-3)  # 16-bit rounding of the WAV
    # Frame reuse: features of a longer signal, sliced, score like the clip itself.
    stride = model.frame_stride_samples
    long = np.concatenate([np.zeros(stride * 5, np.float32), audio[0], audio[1]])
    frames = model.frame_features(long)
    window = frames[5 : 5 + model.frames_per_clip][None]
    np.testing.assert_allclose(model.predict_features(window), scores[:1], atol=1e-4)


@pytest.mark.slow
def test_keras_model_label_count_mismatch(keras_dir, tmp_path):
    from pipeline.inference import load_model

    bad = tmp_path / "labels.txt"
    bad.write_text("a\nb\nc\n")
    with pytest.raises(StageError, match="6 outputs"):
        load_model(keras_dir / "model.keras", labels_path=bad)
