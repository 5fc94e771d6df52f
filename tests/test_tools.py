"""label_wav, evaluate_dir and wav_to_spectrogram on the pretrained graph and a tiny export."""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.audio import write_wav
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
    assert main(["--graph", str(shared_pretrained / "conv_actions_frozen.pb"), "--labels",
                 str(shared_pretrained / "conv_actions_labels.txt"), "--wav", str(wav)]) == 0
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
    assert main(["--model", str(shared_pretrained / "conv_actions_frozen.pb"), "--data-dir",
                 str(data), "--json", str(out), "--batch-size", "5"]) == 0
    printed = capsys.readouterr().out
    assert "accuracy:" in printed and "deadbeef_nohash_0.wav" in printed
    result = json.loads(out.read_text())
    assert result["clips"] == 12
    assert [s["path"] for s in result["skipped"]] == [str(bad)]
    assert {k: v["clips"] for k, v in result["per_class"].items()} == {
        "_unknown_": 6, "yes": 3, "no": 3}
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
        main(["--model", str(shared_pretrained / "conv_actions_frozen.pb"), "--data-dir",
              str(tmp_path / "nowhere")])


# ------------------------------------------------------------------------- wav_to_spectrogram
def test_spectrogram_png_size(tmp_path):
    from pipeline.tools.wav_to_spectrogram import main

    wav = tmp_path / "yes.wav"
    write_wav(wav, word_clip("yes", 1, 0), 16000)
    out = tmp_path / "plot" / "yes.png"
    assert main(["--wav", str(wav), "--out", str(out), "--params",
                 str(REPO_ROOT / "params.yaml")]) == 0
    assert png_size(out) == (1000, 400)
    assert main(["--wav", str(wav), "--out", str(out), "--features", "--width", "640",
                 "--height", "480", "--params", str(REPO_ROOT / "params.yaml")]) == 0
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
    assert main(["--wav", str(wav), "--out", str(out), "--features", "--model-dir",
                 str(shared_pretrained / "conv_actions_frozen.pb")]) == 0
    assert png_size(out) == (1000, 700)
