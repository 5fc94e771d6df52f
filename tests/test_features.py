"""Feature front ends: equality with the original ops and the original pretrained graph."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from pipeline.core.audio import decode_wav_bytes, encode_wav, fit_to_length, read_wav
from pipeline.core.errors import ParamError
from pipeline.frontends import (
    FRONTENDS,
    FeatureConfig,
    FeatureWindow,
    compute_features,
    features_numpy,
)
from tests.conftest import word_clip


def _clips(n=3, seconds=1.0):
    return np.stack(
        [word_clip(w, s, 0, seconds=seconds) for w, s in zip(["yes", "no", "up", "cat"], range(n))]
    )


def _spectrogram_one(clip, window, stride):
    """The original's per-clip spectrogram: decode_wav gives [samples, 1]."""
    return tf.raw_ops.AudioSpectrogram(
        input=tf.constant(clip[:, None]), window_size=window, stride=stride, magnitude_squared=True
    )


@pytest.mark.parametrize(
    "preprocess,window_ms,stride_ms,bins",
    [
        ("mfcc", 30, 10, 40),
        ("mfcc", 20, 20, 13),
        ("average", 30, 10, 40),
        ("average", 25, 10, 16),
        ("micro", 30, 20, 40),
        ("micro", 30, 10, 20),
    ],
)
def test_shape_formula(preprocess, window_ms, stride_ms, bins):
    cfg = FeatureConfig(
        window_size_ms=window_ms,
        window_stride_ms=stride_ms,
        feature_bin_count=bins,
        preprocess=preprocess,
    )
    window, stride = 16 * window_ms, 16 * stride_ms
    frames = 1 + (16000 - window) // stride
    if preprocess == "average":
        fft_bins = 1 + 2 ** math.ceil(math.log2(window)) // 2
        width = math.ceil(fft_bins / (fft_bins // bins))
    else:
        width = bins
    out = features_numpy(_clips(2), cfg)
    assert out.shape == (2, frames, width) == (2, *cfg.feature_shape)
    assert out.dtype == np.float32 and np.isfinite(out).all()


def test_default_shapes_are_the_originals():
    assert FeatureConfig().feature_shape == (98, 40)
    assert FeatureConfig(preprocess="average").feature_shape == (98, 43)  # ceil(257 / 6)
    assert FeatureConfig(preprocess="micro", window_stride_ms=20).feature_shape == (49, 40)
    cfg = FeatureConfig(preprocess="average")
    assert (cfg.frame_count, cfg.frame_width) == cfg.feature_shape


def test_a_front_end_computes_from_the_window_alone():
    """A front end needs only the FeatureWindow (no choice of front end, no call back into
    FeatureConfig); two front ends given the same window each compute their own features."""
    window = FeatureWindow(window_stride_ms=20, feature_bin_count=20)
    clips = _clips(2)
    for name in ("mfcc", "average", "micro"):
        frontend = FRONTENDS[name]
        cfg = FeatureConfig(window_stride_ms=20, feature_bin_count=20, preprocess=name)
        ours = frontend.compute_numpy(clips, window, batch_size=8)
        np.testing.assert_array_equal(ours, features_numpy(clips, cfg))
        shape = (frontend.frames_for(window, 16000), frontend.frame_width(window))
        assert ours.shape[1:] == shape == cfg.feature_shape
        assert frontend.compute_numpy(clips[:0], window, 8).shape == (0, *shape)


def test_the_window_checks_its_own_keys():
    with pytest.raises(ParamError, match="window_size_ms must not exceed clip_duration_ms"):
        FeatureWindow(window_size_ms=200, clip_duration_ms=100)
    with pytest.raises(ParamError, match="at least one sample at 1000 Hz"):
        FeatureWindow(sample_rate=1000, window_stride_ms=0.5)
    assert FeatureWindow().windows_in(16000) == 98 and FeatureWindow().windows_in(479) == 0


def test_mfcc_equals_raw_ops_per_clip():
    clips = _clips(3)
    cfg = FeatureConfig()
    ours = features_numpy(clips, cfg)
    for clip, got in zip(clips, ours):
        spec = _spectrogram_one(clip, 480, 160)
        want = tf.raw_ops.Mfcc(
            spectrogram=spec, sample_rate=16000, dct_coefficient_count=40
        ).numpy()[0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_average_equals_original_pooling_per_clip():
    clips = _clips(3)
    cfg = FeatureConfig(preprocess="average")
    ours = features_numpy(clips, cfg)
    for clip, got in zip(clips, ours):
        spec = _spectrogram_one(clip, 480, 160)
        want = tf.nn.pool(
            tf.expand_dims(spec, -1),
            window_shape=[1, 6],
            strides=[1, 6],
            pooling_type="AVG",
            padding="SAME",
        ).numpy()
        np.testing.assert_allclose(got.ravel(), want.ravel(), rtol=1e-5, atol=1e-6)


def test_micro_equals_frontend_op_per_clip():
    from tensorflow.lite.experimental.microfrontend.python.ops import (
        audio_microfrontend_op,
    )

    clips = _clips(3)
    clips[0, 100] = 1.0  # full scale: the original's int16 cast would wrap this sample
    cfg = FeatureConfig(preprocess="micro", window_stride_ms=20)
    ours = features_numpy(clips, cfg)
    for clip, got in zip(clips, ours):
        pcm = np.clip(clip * 32768, -32768, 32767).astype(np.int16)
        want = audio_microfrontend_op.audio_microfrontend(
            tf.constant(pcm),
            sample_rate=16000,
            window_size=30,
            window_step=20,
            num_channels=40,
            out_scale=1,
            out_type=tf.float32,
        ).numpy() * (10.0 / 256.0)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def _frozen_graph_mfcc(pretrained, wavs: list[bytes]):
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString((pretrained / "conv_actions_frozen.pb").read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    ops = {op.name: op for op in graph.get_operations()}
    spec = ops["AudioSpectrogram"]
    window, stride = spec.get_attr("window_size"), spec.get_attr("stride")
    bins = ops["Mfcc"].get_attr("dct_coefficient_count")
    with tf.compat.v1.Session(graph=graph) as sess:
        out = [sess.run("Mfcc:0", {"wav_data:0": wav})[0] for wav in wavs]
    return out, window, stride, bins


def _check_against_frozen_graph(pretrained, wavs):
    frozen, window, stride, bins = _frozen_graph_mfcc(pretrained, wavs)
    cfg = FeatureConfig(
        window_size_ms=window / 16, window_stride_ms=stride / 16, feature_bin_count=bins
    )
    audio = np.stack([fit_to_length(decode_wav_bytes(w)[0], 16000) for w in wavs])
    ours = features_numpy(audio, cfg)
    assert ours.shape == (len(wavs), *frozen[0].shape)
    for got, want in zip(ours, frozen):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_mfcc_equals_original_frozen_graph(shared_pretrained):
    """Strong check: the Mfcc tensor of the original tutorial's own frozen graph."""
    wavs = [encode_wav(clip, 16000) for clip in _clips(3)]
    wavs.append(encode_wav(word_clip("dog", 1, 0, seconds=0.7), 16000))  # short: zero padded
    _check_against_frozen_graph(shared_pretrained, wavs)


@pytest.mark.real_data
def test_mfcc_equals_original_frozen_graph_on_real_speech(shared_pretrained, shared_mini):
    paths = sorted(p for p in shared_mini.glob("*/*.wav") if p.parent.name != "_background_noise_")
    _check_against_frozen_graph(shared_pretrained, [p.read_bytes() for p in paths[::400]])


@pytest.mark.parametrize("preprocess", ["mfcc", "average"])
def test_longer_signal_reuses_frames(preprocess):
    cfg = FeatureConfig(preprocess=preprocess)
    long = np.concatenate([word_clip("yes", 0, 0), word_clip("no", 1, 0), word_clip("up", 2, 0)])
    stream = features_numpy(long[None, :], cfg)[0]
    assert stream.shape[0] == 1 + (len(long) - 480) // 160
    for start_frame in (0, 37, 150, 200):
        clip = long[start_frame * 160 : start_frame * 160 + 16000]
        per_clip = features_numpy(clip[None, :], cfg)[0]
        np.testing.assert_allclose(
            stream[start_frame : start_frame + 98], per_clip, rtol=1e-5, atol=1e-5
        )


def test_micro_longer_signal_keeps_its_prefix():
    """Micro is stateful (noise estimate), so only frames from the same start are identical."""
    cfg = FeatureConfig(preprocess="micro")
    clip = word_clip("yes", 0, 0)
    long = np.concatenate([clip, word_clip("no", 1, 0)])
    np.testing.assert_array_equal(features_numpy(long, cfg)[:98], features_numpy(clip, cfg))


@pytest.mark.parametrize("preprocess", ["mfcc", "average", "micro"])
def test_compute_features_inside_tf_function(preprocess):
    cfg = FeatureConfig(preprocess=preprocess)
    fn = tf.function(
        lambda a: compute_features(a, cfg),
        input_signature=[tf.TensorSpec([None, 16000], tf.float32)],
    )
    clips = _clips(2)
    out = fn(tf.constant(clips))
    assert tuple(out.shape) == (2, *cfg.feature_shape)
    np.testing.assert_allclose(out.numpy(), features_numpy(clips, cfg), rtol=1e-6, atol=1e-6)


def test_batch_equals_single_clip():
    cfg = FeatureConfig()
    clips = _clips(3)
    batch = features_numpy(clips, cfg, batch_size=2)
    for clip, row in zip(clips, batch):
        np.testing.assert_allclose(features_numpy(clip, cfg), row, rtol=1e-6, atol=1e-6)


def test_bad_configs_are_param_errors():
    with pytest.raises(ParamError, match="feature_bin_count"):
        FeatureConfig(preprocess="average", feature_bin_count=300)
    with pytest.raises(ParamError, match="whole number"):
        FeatureConfig(preprocess="micro", window_size_ms=25.5)
    with pytest.raises(ParamError, match="preprocess"):
        FeatureConfig.from_dict(
            {
                "sample_rate": 16000,
                "clip_duration_ms": 1000,
                "window_size_ms": 30,
                "window_stride_ms": 10,
                "feature_bin_count": 40,
                "preprocess": "fft",
            }
        )
    with pytest.raises(ValueError, match="shorter than one"):
        features_numpy(np.zeros((1, 100), np.float32), FeatureConfig())


def test_embedding_shape_and_batch_independence():
    cfg = FeatureConfig(preprocess="embedding")
    clips = _clips(3)
    out = features_numpy(clips, cfg, batch_size=2)
    assert out.shape == (3, *cfg.feature_shape) and cfg.feature_shape[1] == 96
    assert cfg.feature_shape[0] >= 3 and np.isfinite(out).all()
    # Embeddings span about +-100; other batch shapes round differently (more so on AVX2-only CPUs).
    np.testing.assert_allclose(features_numpy(clips[1], cfg), out[1], rtol=1e-5, atol=1e-4)
    assert not np.allclose(out[0], out[1])  # different words give different embeddings


@pytest.mark.real_data
def test_real_clip_features_are_finite(shared_mini):
    path = sorted((shared_mini / "yes").glob("*.wav"))[0]
    audio = fit_to_length(read_wav(path, 16000), 16000)
    for mode in ("mfcc", "average", "micro"):
        assert np.isfinite(features_numpy(audio, FeatureConfig(preprocess=mode))).all()
