"""label_wav, evaluate_dir and wav_to_spectrogram on the pretrained graph and a tiny export."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.audio import write_wav
from pipeline.core.errors import StageError
from tests.conftest import REPO_ROOT, make_dataset, word_clip

LINE = re.compile(r"^(\S+) \(score = (\d\.\d{5})\)$")


def png_size(path: Path) -> tuple[int, int]:
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def add_bad_wav(folder: Path) -> Path:
    bad = folder / "deadbeef_nohash_0.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    return bad


def official_layout(root: Path) -> Path:
    """The official test-set layout: wanted words, _unknown_/ and _silence_/ folders."""
    rng = np.random.default_rng(3)
    for s in range(4):
        for word in ("yes", "no", "up", "down"):
            write_wav(root / word / f"s{s}_nohash_0.wav", word_clip(word, 40 + s, 0), 16000)
        write_wav(root / "_unknown_" / f"cat{s}_nohash_0.wav", word_clip("cat", 40 + s, 0), 16000)
        write_wav(root / "_silence_" / f"sil{s}_nohash_0.wav", rng.normal(0, 0.003, 16000), 16000)
    return root


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    from tests.test_freeze import build_export

    folder, _ = build_export(tmp_path_factory.mktemp("tools"))
    return folder


# ---------------------------------------------------------------------------------- label_wav
def test_label_wav_pretrained_prints_original_format(shared_pretrained, shared_mini, capsys):
    from pipeline.tools.label_wav import main

    wav = sorted((shared_mini / "left").glob("*.wav"))[0]
    assert (
        main(
            [
                "--graph",
                str(shared_pretrained / "conv_actions_frozen.pb"),
                "--labels",
                str(shared_pretrained / "conv_actions_labels.txt"),
                "--wav",
                str(wav),
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    scores = [float(m.group(2)) for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert matches[0].group(1) == "left"


@pytest.mark.slow
def test_label_wav_export_formats(export, tmp_path, capsys):
    from pipeline.tools.label_wav import main

    wav = tmp_path / "up.wav"
    write_wav(wav, word_clip("up", 90, 0), 16000)
    for target in (export, export / "model_float.tflite", export / "model_int8.tflite"):
        assert main(["--model", str(target), "--wav", str(wav), "--how_many_labels", "2"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 2 and all(LINE.match(line) for line in lines), lines
        assert lines[0].startswith("up (score = ")


def test_label_wav_errors(tmp_path, shared_pretrained):
    from pipeline.core.audio import WavError
    from pipeline.tools.label_wav import main

    graph = str(shared_pretrained / "conv_actions_frozen.pb")
    with pytest.raises(FileNotFoundError, match="absent.wav"):
        main(["--model", graph, "--wav", str(tmp_path / "absent.wav")])
    bad = add_bad_wav(tmp_path)
    with pytest.raises(WavError, match="deadbeef"):
        main(["--model", graph, "--wav", str(bad)])


# ------------------------------------------------------------------------------- evaluate_dir
def test_evaluate_dir_counts_and_skips_bad_wav(shared_pretrained, tmp_path, capsys):
    """Bookkeeping on generated tones with the 12-label graph: classes, unknowns, bad files."""
    from pipeline.tools.evaluate_dir import main

    data = make_dataset(tmp_path / "data", words=("yes", "no", "cat", "dog"), speakers=3)
    bad = add_bad_wav(data / "yes")
    out = tmp_path / "result.json"
    assert (
        main(
            [
                "--model",
                str(shared_pretrained / "conv_actions_frozen.pb"),
                "--data-dir",
                str(data),
                "--json",
                str(out),
                "--batch-size",
                "5",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "accuracy:" in printed and "deadbeef_nohash_0.wav" in printed
    result = json.loads(out.read_text())
    assert result["clips"] == 12
    assert [s["path"] for s in result["skipped"]] == [str(bad)]
    assert {k: v["clips"] for k, v in result["per_class"].items()} == {
        "_unknown_": 6,
        "yes": 3,
        "no": 3,
    }
    confusion = np.array(result["confusion_matrix"])
    assert confusion.shape == (12, 12) and confusion.sum() == 12
    assert result["accuracy"] == pytest.approx(np.trace(confusion) / 12)


def test_evaluate_dir_pretrained_on_real_clips(shared_pretrained, shared_mini, tmp_path):
    from pipeline.inference import load_model
    from pipeline.tools.evaluate_dir import evaluate_dir

    data = tmp_path / "real"
    for word in ("yes", "stop", "marvin"):
        (data / word).mkdir(parents=True)
        for clip in sorted((shared_mini / word).glob("*.wav"))[:8]:
            (data / word / clip.name).symlink_to(clip)
    result = evaluate_dir(load_model(shared_pretrained / "conv_actions_frozen.pb"), data)
    assert result["clips"] == 24 and set(result["per_class"]) == {"yes", "stop", "_unknown_"}
    assert result["accuracy"] >= 0.6


@pytest.mark.slow
def test_evaluate_dir_training_and_official_layouts(export, tmp_path):
    from pipeline.inference import load_model
    from pipeline.tools.evaluate_dir import evaluate_dir

    model = load_model(export)
    training = make_dataset(tmp_path / "train_layout", speakers=4)
    add_bad_wav(training / "cat")
    result = evaluate_dir(model, training)
    assert result["clips"] == 24 and len(result["skipped"]) == 1
    assert result["per_class"]["_unknown_"]["clips"] == 8
    assert result["accuracy"] >= 0.8
    official = official_layout(tmp_path / "official")
    add_bad_wav(official / "_silence_")
    result = evaluate_dir(load_model(export / "model_int8.tflite"), official)
    assert result["clips"] == 24 and len(result["skipped"]) == 1
    assert result["per_class"]["_silence_"]["clips"] == 4
    assert result["per_class"]["_unknown_"]["clips"] == 4
    assert result["accuracy"] >= 0.8


def test_evaluate_dir_missing_folder(tmp_path, shared_pretrained):
    from pipeline.tools.evaluate_dir import main

    with pytest.raises(FileNotFoundError, match="nowhere"):
        main(
            [
                "--model",
                str(shared_pretrained / "conv_actions_frozen.pb"),
                "--data-dir",
                str(tmp_path / "nowhere"),
            ]
        )


# ------------------------------------------------------------------------- wav_to_spectrogram
def test_spectrogram_png_size(tmp_path):
    from pipeline.tools.wav_to_spectrogram import main

    wav = tmp_path / "yes.wav"
    write_wav(wav, word_clip("yes", 1, 0), 16000)
    out = tmp_path / "plot" / "yes.png"
    assert (
        main(["--wav", str(wav), "--out", str(out), "--params", str(REPO_ROOT / "params.yaml")])
        == 0
    )
    assert png_size(out) == (1000, 400)
    assert (
        main(
            [
                "--wav",
                str(wav),
                "--out",
                str(out),
                "--features",
                "--width",
                "640",
                "--height",
                "480",
                "--params",
                str(REPO_ROOT / "params.yaml"),
            ]
        )
        == 0
    )
    assert png_size(out) == (640, 480)


def test_spectrogram_follows_the_tone(tmp_path):
    """The spectrogram puts a pure tone's energy in the right frequency bin."""
    from pipeline.tools.wav_to_spectrogram import power_spectrogram

    t = np.arange(16000) / 16000
    power = power_spectrogram(np.sin(2 * np.pi * 1000 * t).astype(np.float32), 480, 160)
    assert power.shape == (98, 257)
    assert abs(power.mean(axis=0).argmax() * 16000 / 512 - 1000) <= 16000 / 512


def test_spectrogram_with_pretrained_features(tmp_path, shared_pretrained):
    from pipeline.tools.wav_to_spectrogram import main

    wav = tmp_path / "no.wav"
    write_wav(wav, word_clip("no", 2, 0), 16000)
    out = tmp_path / "no.png"
    assert (
        main(
            [
                "--wav",
                str(wav),
                "--out",
                str(out),
                "--features",
                "--model-dir",
                str(shared_pretrained / "conv_actions_frozen.pb"),
            ]
        )
        == 0
    )
    assert png_size(out) == (1000, 700)


# ------------------------------------------------------------- damaged models, wrong outputs
TINY_LABELS = ["_silence_", "_unknown_", "yes", "no"]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> Path:
    """An untrained features -> scores model as .keras and .tflite, with labels, meta.json and
    frontend.json beside them: the tools accept both as they are (the damaged copies below are
    the only difference)."""
    import keras
    import tensorflow as tf

    from pipeline.core.labels import write_labels
    from pipeline.frontends import FeatureConfig

    folder = tmp_path_factory.mktemp("tiny_models")
    features = FeatureConfig().to_dict()
    keras.utils.set_random_seed(0)
    inputs = keras.Input(FeatureConfig().feature_shape, name="features")
    outputs = keras.layers.Dense(len(TINY_LABELS), activation="softmax")(
        keras.layers.Flatten()(inputs)
    )
    model = keras.Model(inputs, outputs)
    model.save(folder / "model.keras")
    (folder / "model.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    write_labels(folder / "labels.txt", TINY_LABELS)
    (folder / "meta.json").write_text(json.dumps({"features": {"features": features}}))
    (folder / "frontend.json").write_text(json.dumps(features))
    return folder


def _damaged(tiny_models: Path, folder: Path, kind: str) -> tuple[Path, str]:
    """A damaged copy of a tiny model (with its labels and front end) and the problem to name."""
    import shutil
    import zipfile

    rng = np.random.default_rng(11)
    suffix = kind.split(":")[0]
    good = (tiny_models / f"model.{suffix}").read_bytes()
    damage = {
        "tflite:empty": (b"", "empty file, not a TFLite model"),
        "tflite:truncated": (good[: len(good) // 2], "damaged or truncated TFLite model"),
        "tflite:garbage": (rng.bytes(4000), "not a TFLite model (no TFL3 identifier"),
        "tflite:garbage-after-header": (good[:8] + rng.bytes(4000), "TFLite model"),
        "keras:empty": (b"", "empty file, not a .keras model"),
        "keras:truncated": (good[: len(good) // 2], "not a .keras model (not a zip archive"),
        "keras:garbage": (rng.bytes(4000), "not a .keras model (not a zip archive"),
    }
    for name in ("labels.txt", "meta.json", "frontend.json"):
        shutil.copy(tiny_models / name, folder / name)
    path = folder / f"model.{suffix}"
    if kind == "keras:no-config":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("model.weights.h5", b"\0" * 64)
        return path, "a zip archive without config.json"
    if kind == "keras:bad-crc":  # one byte of a stored member changed: only its CRC tells
        with (
            zipfile.ZipFile(tiny_models / "model.keras") as source,
            zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as target,
        ):
            for info in source.infolist():
                target.writestr(info.filename, source.read(info))
            config = source.read("config.json")
        data = bytearray(path.read_bytes())
        data[data.index(config) + len(config) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        return path, "damaged .keras archive (member 'config.json' fails its checksum)"
    path.write_bytes(damage[kind][0])
    return path, damage[kind][1]


DAMAGE = [
    "tflite:empty",
    "tflite:truncated",
    "tflite:garbage",
    "tflite:garbage-after-header",
    "keras:empty",
    "keras:truncated",
    "keras:garbage",
    "keras:no-config",
    "keras:bad-crc",
]


def test_the_tiny_models_are_good(tiny_models, tmp_path, capsys):
    from pipeline.tools.label_wav import main

    wav = tmp_path / "yes.wav"
    write_wav(wav, word_clip("yes", 1, 0), 16000)
    for name in ("model.tflite", "model.keras"):
        assert main(["--model", str(tiny_models / name), "--wav", str(wav)]) == 0
        assert all(LINE.match(line) for line in capsys.readouterr().out.splitlines())


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_model_is_named_with_its_problem(tiny_models, tmp_path, kind):
    from pipeline.core.errors import StageError
    from pipeline.tools.label_wav import main

    path, problem = _damaged(tiny_models, tmp_path, kind)
    wav = tmp_path / "yes.wav"
    write_wav(wav, word_clip("yes", 1, 0), 16000)
    with pytest.raises(StageError) as caught:
        main(["--model", str(path), "--wav", str(wav)])
    message = str(caught.value)
    assert (
        message.startswith(f"{path}: ")
        and problem in message
        and "not found" not in message.lower()
    )


def test_every_model_tool_names_a_damaged_model(tiny_models, tmp_path):
    from pipeline.core.errors import StageError
    from pipeline.tools import evaluate_dir, stream_eval, wav_to_spectrogram

    (tmp_path / "t").mkdir()
    (tmp_path / "k").mkdir()
    tflite, _ = _damaged(tiny_models, tmp_path / "t", "tflite:truncated")
    keras_file, _ = _damaged(tiny_models, tmp_path / "k", "keras:truncated")
    data = make_dataset(tmp_path / "data", words=("yes",), speakers=1, noise_seconds=1.0)
    wav = data / "yes" / next((data / "yes").iterdir()).name
    stream = tmp_path / "stream.wav"
    write_wav(stream, np.concatenate([word_clip("yes", 1, 0)] * 3), 16000)
    (tmp_path / "truth.txt").write_text("yes, 1000.0\n")
    runs = {
        evaluate_dir.main: ["--model", str(tflite), "--data-dir", str(data)],
        wav_to_spectrogram.main: [
            "--wav",
            str(wav),
            "--out",
            str(tmp_path / "s.png"),
            "--features",
            "--model",
            str(keras_file),
        ],
        stream_eval.main: [
            "--model",
            str(tflite),
            "--wav",
            str(stream),
            "--ground-truth",
            str(tmp_path / "truth.txt"),
        ],
    }
    for main, argv in runs.items():
        model = argv[argv.index("--model") + 1]
        with pytest.raises(StageError, match=f"^{re.escape(model)}: (damaged|not a)"):
            main(argv)
    assert not (tmp_path / "s.png").exists()


def _one_line_error(command: list[str], cwd: Path) -> str:
    """Run a tool; check it failed with status 1 and one `error [...]` line, no traceback."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=cwd, capture_output=True, text=True
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error [")]
    assert result.returncode == 1 and "Traceback" not in result.stderr and len(errors) == 1, (
        result.stderr
    )
    return errors[0]


def test_tools_print_one_line_for_damaged_models_and_folder_outputs(tiny_models, tmp_path):
    (tmp_path / "t").mkdir()
    tflite, _ = _damaged(tiny_models, tmp_path / "t", "tflite:truncated")  # crashed TFLite before
    wav = tmp_path / "yes.wav"
    write_wav(wav, word_clip("yes", 1, 0), 16000)
    line = _one_line_error(
        ["pipeline.tools.label_wav", "--model", str(tflite), "--wav", str(wav)], tmp_path
    )
    assert (
        line == f"error [pipeline.tools.label_wav]: {tflite}: damaged or truncated TFLite model "
        f"({tflite.stat().st_size} bytes)"
    )
    (tmp_path / "plots").mkdir()
    line = _one_line_error(
        ["pipeline.tools.wav_to_spectrogram", "--wav", str(wav), "--out", str(tmp_path / "plots")],
        tmp_path,
    )
    assert line == (
        f"error [pipeline.tools.wav_to_spectrogram]: {tmp_path / 'plots'}: is a folder; "
        "give the path of a file to write"
    )


def test_extract_clip_lists_a_store_and_writes_clips_as_wav(tmp_path, capsys):
    from pipeline.core.audio import read_pcm16
    from pipeline.tools.extract_clip import main
    from tests.conftest import make_store, wav_pcm

    data = make_store(tmp_path / "data", words=("yes", "no"), speakers=2)
    assert main(["--store", str(data), "--list", "yes/*"]) == 0
    listed = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    names = sorted(p.relative_to(data).as_posix() for p in (data / "yes").glob("*.wav"))
    assert [row[0] for row in listed] == names
    assert all(row[1] == "yes" and row[2] == row[0][4:12] and row[3] == "1.000" for row in listed)

    one = tmp_path / "one.wav"
    assert main(["--store", str(data), names[0], "--out", str(one)]) == 0
    np.testing.assert_array_equal(read_pcm16(one, 16000), read_pcm16(data / names[0]))
    # The manifests' form of the name works too.
    assert main(["--store", str(data), f"{data.as_posix()}/{names[1]}", "--out", str(one)]) == 0
    np.testing.assert_array_equal(read_pcm16(one), read_pcm16(data / names[1]))

    many = tmp_path / "many"
    assert main(["--store", str(data), "no/*", "_background_noise_/*", "--out-dir", str(many)]) == 0
    assert wav_pcm(many) == {k: v for k, v in wav_pcm(data).items() if not k.startswith("yes/")}

    absent = tmp_path / "absent.wav"
    with pytest.raises(StageError, match="no clip named 'yes/absent_nohash_0.wav'"):
        main(["--store", str(data), "yes/absent_nohash_0.wav", "--out", str(absent)])
    assert not absent.exists()
    with pytest.raises(StageError, match="exactly one name"):
        main(["--store", str(data), names[0], names[1], "--out", str(absent)])
    with pytest.raises(FileNotFoundError, match="nothing: not a clip store"):
        main(["--store", str(tmp_path / "nothing"), "--list"])
