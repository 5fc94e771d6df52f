"""The efficientword front end: this project's 64-bin log filterbank equals the efficientword-net
package's own (python_speech_features' logfbank as the package calls it), and the ONNX model
gives one 2,048-value vector per clip."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.core.errors import ParamError
from pipeline.frontends import FeatureConfig, efficientword, features_numpy
from tests.conftest import word_clip


def _package_logfbank():
    try:
        efficientword.models_dir()
        from eff_word_net.audio_utils import logfbank  # imports onnxruntime too
    except (FileNotFoundError, ImportError) as exc:
        pytest.skip(f"efficientword-net or onnxruntime not installed: {exc}")
    return logfbank


@pytest.mark.parametrize("samples", [24000, 16000, 401, 23999])
def test_log_filterbank_equals_the_package(samples):
    logfbank = _package_logfbank()
    rng = np.random.default_rng(samples)
    audio = (rng.normal(0, 0.1, samples) * np.hanning(samples)).astype(np.float32)
    audio[: samples // 4] = 0  # exact silence takes the package's eps branch
    ours = efficientword.log_filterbank(audio[None])[0]
    theirs = logfbank(
        audio, samplerate=16000, winlen=0.025, winstep=0.01, nfilt=64, nfft=512, preemph=0.0
    )
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)


def test_clip_features_are_one_unit_vector_per_clip_independent_of_the_batch():
    _package_logfbank()
    cfg = FeatureConfig(preprocess="efficientword")
    clips = np.stack([word_clip(w, s, 0) for w, s in zip(["yes", "no", "up"], range(3))])
    out = features_numpy(clips, cfg)
    assert out.shape == (3, 1, 2048) == (3, *cfg.feature_shape)
    np.testing.assert_allclose(np.linalg.norm(out[:, 0], axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(features_numpy(clips[2], cfg), out[2], atol=1e-5)
    assert not np.allclose(out[0], out[1], atol=1e-2)


def test_needs_16_khz_and_at_most_a_1500_ms_clip():
    with pytest.raises(ParamError, match="sample_rate 16000"):
        FeatureConfig(preprocess="efficientword", sample_rate=8000)
    with pytest.raises(ParamError, match="1500 ms"):
        FeatureConfig(preprocess="efficientword", clip_duration_ms=2000)


def test_the_pair_joins_both_embeddings_on_one_int8_scale():
    """The speech embedding's windows, then EfficientWord-Net's vector times the gain that puts
    both on comparable ranges: an int8 input has one scale, and at EfficientWord-Net's own
    range (+-0.34 against the speech embedding's +-100) its values would all round to zero."""
    _package_logfbank()
    from pipeline.frontends import efficientword as ewn
    from pipeline.frontends import embedding
    from pipeline.frontends.word_pair import EFFICIENTWORD_GAIN

    cfg = FeatureConfig(preprocess="embedding_efficientword")
    clips = np.stack([word_clip(w, s, 0) for w, s in zip(["go", "stop"], range(2))])
    out = features_numpy(clips, cfg)
    assert out.shape == (2, 1, 9 * 96 + 2048) == (2, *cfg.feature_shape)
    np.testing.assert_allclose(
        out[:, 0, : 9 * 96], embedding.embed(clips).reshape(2, -1), atol=1e-4
    )
    np.testing.assert_allclose(
        out[:, 0, 9 * 96 :], EFFICIENTWORD_GAIN * ewn.embed(clips)[:, 0], atol=256e-5
    )
    speech, other = np.abs(out[:, 0, : 9 * 96]).max(), np.abs(out[:, 0, 9 * 96 :]).max()
    int8_step = max(speech, other) / 127
    assert other > 20 * int8_step and speech > 20 * int8_step
