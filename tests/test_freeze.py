"""freeze: every export format round-trips a tiny trained model, and the SavedModel stands alone."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.audio import encode_wav, write_wav
from pipeline.core.errors import StageError
from pipeline.core.metrics_files import details_path
from pipeline.core.schema import read_yaml
from pipeline.data.feature_store import write_features
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.operating_point import decoder_dict, decoder_settings
from tests.conftest import REPO_ROOT, limit_file_size, pack, skip_without_embedding_models
from tests.test_inference import FEATURES, LABELS, WANTED, tiny_clips, train_tiny_keras

pytestmark = pytest.mark.slow


def write_split(root: Path, speakers) -> tuple[Path, Path]:
    """A test.csv (absolute clip-store paths; silence rows without a clip) and the matching test
    features."""
    from pipeline.frontends import FeatureConfig, features_numpy

    audio, y = tiny_clips(speakers)
    rows = []
    for i, (clip, label) in enumerate(zip(audio, y)):
        path = ""
        if label != 0:
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
    manifest = root / "test.csv"
    with open(manifest, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    pack(root / "clips")
    write_features(root, "test", features_numpy(audio, FeatureConfig.from_dict(FEATURES)), y)
    return manifest, root / "test"


def build_export(root: Path) -> tuple[Path, dict]:
    """Train the tiny model and freeze it into ``root/export``; return the folder and metrics."""
    from pipeline.export.freeze import ExportInputs, freeze
    from pipeline.frontends import FeatureConfig, features_numpy

    keras_dir = train_tiny_keras(root / "keras")
    audio, y = tiny_clips(range(10))
    write_features(root, "train", features_numpy(audio, FeatureConfig.from_dict(FEATURES)), y)
    manifest, _ = write_split(root, range(30, 50))
    metrics = freeze(
        keras_dir,
        root / "export",
        root / "metrics" / "export.json",
        FeatureConfig.from_dict(FEATURES),
        WANTED,
        ExportInputs(
            features_dir=root,
            test_manifest=manifest,
            data_root=Path("/"),
            decoder=decoder_dict(StreamEvalConfig(detection_threshold=0.8)),
        ),
    )
    return root / "export", metrics


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("freeze")
    export, metrics = build_export(root)
    return root, export, metrics


def test_export_files_and_metrics(exported):
    root, export, metrics = exported
    for name in (
        "saved_model/saved_model.pb",
        "model_float.tflite",
        "model_int8.tflite",
        "labels.txt",
        "frontend.json",
        "saved_model/assets/labels.txt",
    ):
        assert (export / name).is_file(), name
    # The operating point: every tool that decodes starts from it, for any file of the export.
    for model in (export, export / "model_float.tflite", export / "saved_model"):
        assert decoder_settings(model)[0] == StreamEvalConfig(detection_threshold=0.8)
    assert json.loads(details_path(root / "metrics" / "export.json").read_text()) == metrics
    assert metrics["test_clips"] == 20 * 6  # silence rows have no audio file
    acc = metrics["accuracy"]
    for name in ("keras", "saved_model", "tflite_float", "tflite_int8"):
        assert acc[name] >= 0.85, (name, acc)
    assert acc["saved_model"] == acc["keras"] == acc["tflite_float"]
    assert abs(metrics["int8_drop_points"]) <= 1.0
    # The test model is no registered architecture: no streaming export, and the reason why.
    assert (
        metrics["streaming"]["exported"] is False
        and "not a registered model" in metrics["streaming"]["reason"]
    )
    assert (
        not (export / "model_streaming.tflite").exists() and not (export / "model_data.cc").exists()
    )
    sizes = metrics["size_bytes"]
    assert sizes["model_int8.tflite"] < sizes["model_float.tflite"]
    assert sizes["model_float.tflite"] == (export / "model_float.tflite").stat().st_size
    frontend = json.loads((export / "frontend.json").read_text())
    assert frontend["feature_shape"] == [49, 20] and frontend["desired_samples"] == 16000
    # TFLite's builtin resolver runs AudioSpectrogram and Mfcc, so the float model takes audio.
    assert frontend["tflite"]["model_float.tflite"]["input"]["shape"] == [1, 16000]
    assert frontend["tflite"]["model_int8.tflite"]["input"]["dtype"] == "int8"


def test_every_format_agrees_with_keras(exported):
    from pipeline.inference import load_model

    root, export, _ = exported
    audio, y = tiny_clips(range(60, 64))
    reference = load_model(root / "keras").predict_audio(audio)
    for target, atol in (
        (export, 1e-4),
        (export / "saved_model", 1e-4),
        (export / "model_float.tflite", 1e-4),
    ):
        model = load_model(target)
        assert model.labels == LABELS
        np.testing.assert_allclose(model.predict_audio(audio), reference, atol=atol)
        one = model.predict_wav_bytes(encode_wav(audio[2], 16000))
        np.testing.assert_allclose(one, reference[2], atol=5e-3)
    int8 = load_model(export / "model_int8.tflite")
    assert np.mean(int8.predict_audio(audio).argmax(1) == reference.argmax(1)) >= 0.9


def test_saved_model_frame_signatures(exported):
    from pipeline.inference import load_model

    _, export, _ = exported
    model = load_model(export)
    assert model.supports_frames and model.frames_per_clip == 49
    audio, _ = tiny_clips([70])
    long = np.concatenate(
        [np.zeros(model.frame_stride_samples * 3, np.float32), audio[0], audio[1]]
    )
    frames = model.frame_features(long)
    window = frames[3 : 3 + model.frames_per_clip][None]
    np.testing.assert_allclose(
        model.predict_features(window), model.predict_audio(audio[:1]), atol=1e-4
    )


def test_saved_model_runs_without_this_package(exported, tmp_path):
    _, export, _ = exported
    audio, _ = tiny_clips([80])
    wav = tmp_path / "clip.wav"
    write_wav(wav, audio[1], 16000)
    script = (
        "import sys, tensorflow as tf\n"
        f"m = tf.saved_model.load({str(export / 'saved_model')!r})\n"
        f"wav = tf.constant(open({str(wav)!r}, 'rb').read())\n"
        "s = m.signatures['serving_default'](wav_data=wav)\n"
        "assert not any(k == 'pipeline' or k.startswith('pipeline.') for k in sys.modules)\n"
        "print(int(tf.argmax(s['labels_softmax'][0])))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.split()[-1]) == LABELS.index("no")


def test_freeze_stage_command_line(exported, tmp_path, capsys):
    import yaml

    from pipeline.stages.freeze import main

    root, _, _ = exported
    params = read_yaml((REPO_ROOT / "params.yaml").read_text())
    params["features"] = dict(FEATURES)
    params["export"]["views"] = [1.0]  # MFCC has no vocal-tract views
    params["split"]["wanted_words"] = list(WANTED)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out, metrics = tmp_path / "models" / "export", tmp_path / "metrics" / "export.json"
    assert (
        main(
            [
                "--params",
                str(tmp_path / "params.yaml"),
                "--keras-dir",
                str(root / "keras"),
                "--out",
                str(out),
                "--metrics",
                str(metrics),
                "--features-dir",
                str(root),
                "--split-dir",
                str(root),
                "--test-limit",
                "30",
            ]
        )
        == 0
    )
    written = json.loads(metrics.read_text())
    assert written["test_clips"] == 30 and (out / "saved_model" / "saved_model.pb").is_file()
    printed = capsys.readouterr().out  # one summary line, each format's accuracy
    assert "freeze: accuracy keras" in printed and "saved_model " in printed


def test_a_full_disk_while_saving_is_one_line_naming_the_export_and_leaves_nothing(
    exported, tmp_path
):
    """The stage with files limited to a size that the TFLite models fit and the SavedModel's
    graph does not: TensorFlow's write error is one line naming models/export, and neither the
    export, its temporary nor the metric is left."""
    import yaml

    root, export, _ = exported
    limit = 50_000
    assert (export / "model_float.tflite").stat().st_size < limit  # written by Python
    assert (export / "saved_model" / "saved_model.pb").stat().st_size > limit  # by TensorFlow
    params = read_yaml((REPO_ROOT / "params.yaml").read_text())
    params["features"] = dict(FEATURES)
    params["export"]["views"] = [1.0]  # MFCC has no vocal-tract views
    params["split"]["wanted_words"] = list(WANTED)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    args = ["--keras-dir", str(root / "keras"), "--features-dir", str(root)]
    args += ["--split-dir", str(root), "--test-limit", "8"]
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.freeze", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        preexec_fn=limit_file_size(limit),
    )
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert errors[0].startswith(
        "error [pipeline.stages.freeze]: models/export/saved_model: cannot write the SavedModel ("
    ), errors
    assert "File too large" in errors[0] and "models/.export." not in errors[0], errors
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "params.yaml"]
    assert list((tmp_path / "models").iterdir()) == []


def test_freeze_rejects_label_mismatch_and_leaves_nothing(exported, tmp_path):
    from pipeline.export.freeze import ExportInputs, freeze
    from pipeline.frontends import FeatureConfig

    root, _, _ = exported
    out = tmp_path / "export"
    inputs = ExportInputs(features_dir=root, test_manifest=None)
    with pytest.raises(StageError, match="wanted_words"):
        freeze(
            root / "keras",
            out,
            tmp_path / "export.json",
            FeatureConfig.from_dict(FEATURES),
            ["yes", "no"],
            inputs,
        )
    assert not out.exists() and not (tmp_path / "export.json").exists()
    other = FeatureConfig.from_dict(dict(FEATURES, feature_bin_count=13))
    with pytest.raises(StageError, match="trained with features"):
        freeze(root / "keras", out, tmp_path / "export.json", other, WANTED, inputs)


@pytest.mark.parametrize("preprocess", ["embedding", "embedding_int8"])
def test_embedding_export_is_a_bundle_that_runs_from_wav(tmp_path, preprocess):
    """preprocess: embedding exports TFLite heads + bundle.json; load_model runs it end to end,
    with the front end it was trained on (embedding_int8: the int8 embedding model)."""
    import keras

    skip_without_embedding_models()

    from pipeline.core.labels import write_labels
    from pipeline.export.freeze import ExportInputs, freeze
    from pipeline.frontends import FeatureConfig, features_numpy
    from pipeline.inference import load_model

    features = dict(FEATURES, preprocess=preprocess)
    cfg = FeatureConfig.from_dict(features)
    audio, y = tiny_clips(range(8))
    x = features_numpy(audio, cfg)
    keras.utils.set_random_seed(2)
    inputs = keras.Input(cfg.feature_shape)
    h = keras.layers.GlobalAveragePooling1D()(inputs)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=60, batch_size=16, verbose=0)
    keras_dir = tmp_path / "keras"
    keras_dir.mkdir()
    model.save(keras_dir / "model.keras")
    write_labels(keras_dir / "labels.txt", LABELS)
    (keras_dir / "meta.json").write_text(json.dumps({"features": features}))
    write_features(tmp_path, "train", x, y)
    metrics = freeze(
        keras_dir,
        tmp_path / "export",
        tmp_path / "export.json",
        cfg,
        WANTED,
        ExportInputs(features_dir=tmp_path, test_manifest=None),
    )
    export = tmp_path / "export"
    assert (export / "bundle.json").is_file() and not (export / "saved_model").exists()
    assert metrics["parameters"]["float_tflite_input"] == "features"
    bundle = load_model(export)
    assert bundle.labels == LABELS
    test_audio, test_y = tiny_clips(range(30, 33))
    assert bundle.cfg.preprocess == preprocess
    np.testing.assert_array_equal(bundle.features(test_audio), features_numpy(test_audio, cfg))
    reference = load_model(keras_dir).predict_audio(test_audio)
    np.testing.assert_allclose(bundle.predict_audio(test_audio), reference, atol=1e-4)
    one = bundle.predict_wav_bytes(encode_wav(test_audio[2], 16000))
    assert one.argmax() == reference[2].argmax()
    assert np.mean(reference.argmax(1) == test_y) >= 0.6


def test_a_committee_freezes_and_every_format_scores_its_mean(tmp_path):
    """word_pair_mean (4 heads) through the train stage's loop and freeze: float TFLite, int8 and
    the SavedModel score the mean of its heads as Keras does; it is registered but not
    streamable frame by frame, and the export says so."""
    from pipeline.export.freeze import ExportInputs, freeze
    from pipeline.frontends import FeatureConfig, features_numpy
    from pipeline.inference import load_model
    from pipeline.models.word_pair_mean import WordPairMeanOptions
    from pipeline.training.config import TrainConfig
    from pipeline.training.loop import TrainOutputs, train

    cfg = FeatureConfig.from_dict(FEATURES)
    features = tmp_path / "features"
    for split, speakers in (("train", range(10)), ("validation", range(10, 14))):
        audio, y = tiny_clips(speakers)
        write_features(features, split, features_numpy(audio, cfg), y)
    (features / "labels.txt").write_text("".join(f"{label}\n" for label in LABELS))
    (features / "meta.json").write_text(
        json.dumps({"features": FEATURES, "feature_shape": list(cfg.feature_shape)})
    )
    settings = dict(
        model_architecture="word_pair_mean",
        how_many_training_steps=[150, 50],
        learning_rate=[0.01, 0.001],
        batch_size=32,
        optimizer="adam",
        dropout=0.2,
        eval_step_interval=100,
        save_step_interval=100,
        check_nans=True,
        spec_augment=False,
        mixed_precision=False,
        online_augment=False,
        online_time_shift_frames=10,
        seed=3,
    )
    keras_dir = tmp_path / "keras"
    train(
        TrainConfig(**settings),
        features,
        TrainOutputs(
            keras_dir,
            tmp_path / "ckpt",
            tmp_path / "logs",
            tmp_path / "train.json",
            tmp_path / "curve.csv",
        ),
        model_options=WordPairMeanOptions(windows=7, width=20, channels=8, members=2),
        progress=False,
    )
    manifest, _ = write_split(tmp_path, range(30, 40))
    metrics = freeze(
        keras_dir,
        tmp_path / "export",
        tmp_path / "export.json",
        cfg,
        WANTED,
        ExportInputs(features_dir=features, test_manifest=manifest, data_root=Path("/")),
    )
    acc = metrics["accuracy"]
    assert acc["keras"] >= 0.85, acc
    assert acc["saved_model"] == acc["keras"] == acc["tflite_float"]
    assert abs(metrics["int8_drop_points"]) <= 2.0
    assert metrics["streaming"]["exported"] is False
    audio, _ = tiny_clips(range(60, 62))
    reference = load_model(keras_dir).predict_audio(audio)
    np.testing.assert_allclose(reference.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        load_model(tmp_path / "export" / "model_float.tflite").predict_audio(audio),
        reference,
        atol=1e-4,
    )
    # The int8 committee's scores of a clip do not depend on the clips scored beside it, clips
    # where its heads are unsure (noise, silence) among them (tests/test_scores.py holds a row
    # of such a committee that once turned its whole batch into a softmax of probabilities).
    rng = np.random.default_rng(11)
    unsure = np.concatenate(
        [rng.normal(0, level, (8, 16000)) for level in (0.0, 1e-4, 1e-3, 0.03, 0.3)]
    ).astype(np.float32)
    batch = np.concatenate([audio, unsure])
    int8 = load_model(tmp_path / "export" / "model_int8.tflite")
    together = int8.predict_audio(batch)
    one_by_one = np.concatenate([int8.predict_audio(batch[i : i + 1]) for i in range(len(batch))])
    np.testing.assert_array_equal(together, one_by_one)
    assert together[: len(audio)].argmax(1).tolist() == reference.argmax(1).tolist()
