"""Vocal-tract views (params ``export.views``): the speech embedding's log-mel of the input as if
its voice were f times higher, and an export's scores as the mean over its views."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.core.errors import ParamError, StageError
from pipeline.export.report import frontend_dict
from pipeline.frontends import FeatureConfig, embedding
from pipeline.inference.export_files import read_frontend
from pipeline.sections import defaults, validate_params
from pipeline.streaming import scores as stream_scores
from tests.conftest import skip_without_embedding_models
from tests.test_embedding_frontend import _clips, _keras_embedding_model, _recording

VIEWS = [0.9, 1.0, 1.1]


@pytest.fixture(scope="module", autouse=True)
def _models():
    skip_without_embedding_models()


def tone(hz: float, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_a_view_hears_a_voice_as_a_higher_one():
    """A 1 kHz tone in view 1.1 has the mel of a 1.1 kHz tone as it is, not that of 1 kHz."""
    middle = slice(10, 30)
    seen = embedding.mel_db(tone(1000), view=1.1)[middle]
    higher = embedding.mel_db(tone(1100))[middle]
    same = embedding.mel_db(tone(1000))[middle]
    assert (seen.argmax(axis=1) == higher.argmax(axis=1)).all()
    assert (same.argmax(axis=1) != higher.argmax(axis=1)).all()
    loud = higher > higher.max() - 30  # the bands the tone is in
    assert np.abs(seen - higher)[loud].max() < 0.25 * np.abs(same - higher)[loud].max()


def test_view_one_is_the_mel_model_unchanged():
    assert embedding.view_matrix2(1.0) is embedding.mel_constants()["matrix2"]
    clips = _clips()[:3]
    np.testing.assert_array_equal(embedding.embed(clips, view=1.0), embedding.embed(clips))
    assert not np.allclose(embedding.embed(clips, view=1.1), embedding.embed(clips), atol=1e-3)
    with pytest.raises(ValueError, match="outside"):
        embedding.FRONTEND.with_view(3.0)


def test_a_model_scores_the_mean_of_its_views(tmp_path):
    model = _keras_embedding_model(tmp_path)
    clips = _clips()
    alone = []
    for view in VIEWS:
        model.set_views([view])
        alone.append(model.predict_audio(clips))
    assert not np.allclose(alone[0], alone[2], atol=1e-4)  # the views do differ
    model.set_views(VIEWS)
    np.testing.assert_allclose(model.predict_audio(clips), np.mean(alone, axis=0), atol=1e-6)
    features = model.features(clips)
    assert features.shape == (len(clips), 9, 96 * len(VIEWS))
    # Features of one view (as featurize stores them) are scored by the model alone.
    np.testing.assert_allclose(model.predict_features(features[..., 96:192]), alone[1], atol=1e-6)


def test_streamed_views_are_the_mean_of_each_views_stream(tmp_path):
    """stream_eval's frame reuse with views: each window's scores are the mean of the scores each
    view alone streams; and the frames of the recording given in chunks (live audio) are the
    whole recording's."""
    model = _keras_embedding_model(tmp_path)
    audio = _recording()
    alone = []
    for view in VIEWS:
        model.set_views([view])
        alone.append(stream_scores.stream_scores(model, audio, 80, True, progress=False).scores)
    model.set_views(VIEWS)
    both = stream_scores.stream_scores(model, audio, 80, True, progress=False)
    np.testing.assert_allclose(both.scores, np.mean(alone, axis=0), atol=1e-6)
    whole = model.frame_features(audio)
    stream = model.frame_stream()
    chunks = [stream.push(audio[i : i + 3000]) for i in range(0, len(audio), 3000)]
    np.testing.assert_array_equal(np.concatenate([*chunks, stream.finish()]), whole)


@pytest.mark.parametrize(
    ("views", "preprocess", "words"),
    [
        ([], "embedding", "export.views"),
        ([0.9, 1.0, 0.9], "embedding", "listed twice"),
        ([0.3, 1.0], "embedding", "export.views"),
        (["x"], "embedding", "export.views"),
        ([0.9, 1.0], "mfcc", "has no vocal-tract views"),
    ],
)
def test_bad_views_are_one_named_error(views, preprocess, words):
    params = defaults()
    params["export"]["views"] = views
    params["features"]["preprocess"] = preprocess
    with pytest.raises(ParamError, match=words) as info:
        validate_params(params)
    assert "\n" not in str(info.value)


def test_views_of_1_are_valid_with_every_front_end():
    params = defaults()
    for preprocess in ("mfcc", "micro", "embedding", "embedding_int8"):
        params["features"]["preprocess"] = preprocess
        params["export"]["views"] = [1.0]
        validate_params(params)
    params["export"]["views"] = VIEWS
    validate_params(params)  # embedding_int8 has them too


@pytest.mark.parametrize(
    ("views", "preprocess", "words"),
    [
        ([0.9, 0.9], "embedding", "listed twice"),
        ([3.0], "embedding", "views"),
        ("x", "embedding", "views"),
        ([0.9, 1.0], "mfcc", "has no vocal-tract views"),
    ],
)
def test_a_tampered_frontend_json_names_its_views(tmp_path, views, preprocess, words):
    cfg = FeatureConfig(preprocess=preprocess)
    data = frontend_dict(cfg, 12, [1.0])
    data["views"] = views
    path = tmp_path / "frontend.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(StageError, match=words) as info:
        read_frontend(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_freeze_refuses_views_its_front_end_cannot_compute(tmp_path):
    from pipeline.export.freeze import ExportInputs, freeze

    cfg = FeatureConfig(preprocess="mfcc")
    inputs = ExportInputs(views=(0.9, 1.0))
    with pytest.raises(StageError, match="export.views .*no vocal-tract views") as info:
        freeze(tmp_path / "keras", tmp_path / "export", tmp_path / "m.json", cfg, ["yes"], inputs)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_views_export_says_so_in_its_stream_log_and_metrics(tmp_path):
    from pipeline.streaming.scorers import WindowScorer

    model = _keras_embedding_model(tmp_path)
    scorer = WindowScorer(model, 80, progress=False)
    assert "views" not in scorer.describe() and scorer.report(None, 1.0) == {}
    model.set_views(VIEWS)
    assert scorer.describe().endswith("3 vocal-tract views")
    assert scorer.report(None, 1.0) == {"views": VIEWS}
