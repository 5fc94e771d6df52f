"""Hostile and broken input to the tools (issue "Hostile and broken input, round three").

Valid WAVs that TensorFlow's DecodeWav rejects, through every backend that decodes WAV bytes in
its graph; tampered export files (frontend.json, bundle.json, meta.json, labels.txt, an int8
scale of 0); clip names in a store's index.csv that leave the output folder; special files (a
FIFO, a link to /dev/zero) in a folder given to evaluate-dir. Each is one line naming the file
and the problem, and nothing is written outside the target.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.audio import encode_pcm16
from pipeline.core.errors import StageError
from tests.conftest import REPO_ROOT, SHARED_PRETRAINED, make_dataset, make_store, word_clip

LABELS = ["_silence_", "_unknown_", "yes", "no"]
FEATURES = dict(
    sample_rate=16000,
    clip_duration_ms=1000,
    window_size_ms=30,
    window_stride_ms=20,
    feature_bin_count=20,
    preprocess="mfcc",
)


def run_tool(
    module: str, *args: str, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single `error [...]` line of a failed tool run (status 1, no traceback)."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error [")]
    assert result.returncode == 1 and "Traceback" not in result.stderr and len(errors) == 1, (
        result.stderr
    )
    return errors[0]


# ------------------------------------------------------------------ WAVs DecodeWav rejects
def _chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


def _riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


PCM_FMT = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
# WAVE_FORMAT_EXTENSIBLE, 16 valid bits, mono, sub-format KSDATAFORMAT_SUBTYPE_PCM.
EXTENSIBLE_FMT = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 16000, 32000, 2, 16, 22, 16, 4) + bytes(
    [1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]
)


def valid_wav_forms(pcm: np.ndarray) -> dict[str, bytes]:
    """The same samples as three valid WAVs that TensorFlow's DecodeWav refuses."""
    data = np.asarray(pcm, "<i2").tobytes()
    return {
        "extensible": _riff(_chunk(b"fmt ", EXTENSIBLE_FMT), _chunk(b"data", data)),
        "odd-chunk": _riff(
            _chunk(b"fmt ", PCM_FMT), _chunk(b"LIST", b"odd"), _chunk(b"data", data)
        ),
        "odd-data": _riff(_chunk(b"fmt ", PCM_FMT), _chunk(b"data", data + b"\x7f")),
    }


def _pcm(word: str, speaker: int) -> np.ndarray:
    return np.round(word_clip(word, speaker, 0) * 32767).astype("<i2")


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    """An export of an untrained features -> scores model, written by the freeze stage's own
    writer: saved_model/, model_float.tflite, model_int8.tflite, labels.txt, frontend.json (and
    the model.keras with its meta.json beside)."""
    import keras

    from pipeline.export.freeze import write_exports
    from pipeline.frontends import FeatureConfig

    folder = tmp_path_factory.mktemp("hostile_export") / "export"
    folder.mkdir()
    cfg = FeatureConfig.from_dict(FEATURES)
    keras.utils.set_random_seed(0)
    inputs = keras.Input(cfg.feature_shape, name="features")
    h = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(len(LABELS), activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    representative = rng.normal(0, 1, (8, *cfg.feature_shape)).astype(np.float32)
    check_audio = np.stack([word_clip("yes", s, 0) for s in range(2)]).astype(np.float32)
    write_exports(folder, model, cfg, LABELS, False, representative, check_audio, None)
    model.save(folder / "model.keras")
    (folder / "meta.json").write_text(json.dumps({"features": {"features": FEATURES}}))
    return folder


def test_valid_wav_forms_score_like_the_plain_wav_with_every_backend(export, tmp_path, capsys):
    from pipeline.tools.label_wav import main

    models = [export, export / "model_float.tflite", export / "model_int8.tflite"]
    pretrained = SHARED_PRETRAINED / "conv_actions_frozen.pb"
    if pretrained.is_file():
        models.append(pretrained)
    pcm = _pcm("yes", 3)
    plain = tmp_path / "plain.wav"
    plain.write_bytes(encode_pcm16(pcm, 16000))
    for model in models:
        assert main(["--model", str(model), "--wav", str(plain), "--how_many_labels", "4"]) == 0
        expected = capsys.readouterr().out
        for kind, data in valid_wav_forms(pcm).items():
            wav = tmp_path / f"{kind}.wav"
            wav.write_bytes(data)
            assert main(["--model", str(model), "--wav", str(wav), "--how_many_labels", "4"]) == 0
            assert capsys.readouterr().out == expected, (model, kind)
    if not pretrained.is_file():
        pytest.skip(f"frozen graph not present at {pretrained}; the other backends passed")


# --------------------------------------------------------------------- tampered export files
def _tamper_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(change(data)), encoding="utf-8")


def _drop_stride(data):
    del data["features"]["window_stride_ms"]
    return data


def _int8_scale_zero(data):
    data["tflite"]["model_int8.tflite"]["input"]["scale"] = 0.0
    return data


def _bundle(folder: Path, **names) -> Path:
    """A bundle export (bundle.json naming its files) made of the export's float model."""
    bundle = folder / "bundle"
    bundle.mkdir()
    for name in ("model_float.tflite", "frontend.json", "labels.txt"):
        shutil.copy(folder / name, bundle / name)
    files = {"model": "model_float.tflite", "frontend": "frontend.json", "labels": "labels.txt"}
    (bundle / "bundle.json").write_text(json.dumps({**files, **names}))
    return bundle


# kind -> (the model to give, the file tampered, its tampering, the problem named)
TAMPERING = {
    "frontend-list": (
        ".",
        "saved_model/assets/frontend.json",
        lambda p: p.write_text("[1, 2]"),
        "the file must be a JSON object, got list",
    ),
    "labels-binary": (
        ".",
        "labels.txt",
        lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01" * 8),
        "not a text file of labels (not UTF-8",
    ),
    "labels-control-characters": (
        "model_float.tflite",
        "labels.txt",
        lambda p: p.write_bytes(b"_silence_\n_unk\x00\x01own_\nyes\nno\n"),
        "holds control characters",
    ),
    "features-list": (
        "model_float.tflite",
        "frontend.json",
        lambda p: _tamper_json(p, lambda d: {**d, "features": []}),
        "features must be a JSON object, got list",
    ),
    "missing-key": (
        "model_float.tflite",
        "frontend.json",
        lambda p: _tamper_json(p, _drop_stride),
        "missing key features.window_stride_ms",
    ),
    "size-disagrees": (
        ".",
        "saved_model/assets/frontend.json",
        lambda p: _tamper_json(p, lambda d: {**d, "desired_samples": 8000}),
        "desired_samples = 8000 disagrees with the features, which give 16000",
    ),
    "int8-scale-zero": (
        "model_int8.tflite",
        "frontend.json",
        lambda p: _tamper_json(p, _int8_scale_zero),
        "tflite.model_int8.tflite.input.scale = 0.0: a int8 tensor needs a quantization scale",
    ),
    "meta-list": (
        "model.keras",
        "meta.json",
        lambda p: p.write_text("[]"),
        "the file must be a JSON object, got list",
    ),
    "bundle-list": (
        "bundle",
        "bundle/bundle.json",
        lambda p: p.write_text('"model_float.tflite"'),
        "the file must be a JSON object, got str",
    ),
    "bundle-escape": (
        "bundle",
        "bundle/bundle.json",
        lambda p: _tamper_json(p, lambda d: {**d, "model": "../../model_float.tflite"}),
        "the name '../../model_float.tflite' leaves its folder",
    ),
    "bundle-absolute": (
        "bundle",
        "bundle/bundle.json",
        lambda p: _tamper_json(p, lambda d: {**d, "labels": "/etc/hostname"}),
        "the name '/etc/hostname' is an absolute path",
    ),
}


@pytest.mark.parametrize("kind", TAMPERING)
def test_a_tampered_export_file_is_one_line_naming_it(export, tmp_path, capsys, kind):
    from pipeline.tools.label_wav import main

    model, tampered, tamper, problem = TAMPERING[kind]
    folder = tmp_path / "export"
    shutil.copytree(export, folder)
    wav = tmp_path / "yes.wav"
    wav.write_bytes(encode_pcm16(_pcm("yes", 1), 16000))
    if model == "bundle":
        _bundle(folder)
    assert main(["--model", str(folder / model), "--wav", str(wav)]) == 0  # good as copied
    capsys.readouterr()
    tamper(folder / tampered)
    with pytest.raises(StageError) as caught:
        main(["--model", str(folder / model), "--wav", str(wav)])
    message = str(caught.value)
    assert message.startswith(f"{folder / tampered}: ") and problem in message, message
    assert "\n" not in message


def test_a_tampered_frontend_json_is_one_line_from_the_command(export, tmp_path):
    folder = tmp_path / "export"
    shutil.copytree(export, folder)
    (folder / "frontend.json").write_text('["not", "a", "mapping"]')
    wav = tmp_path / "yes.wav"
    wav.write_bytes(encode_pcm16(_pcm("yes", 1), 16000))
    model = folder / "model_float.tflite"
    result = run_tool(
        "pipeline.tools.label_wav", "--model", str(model), "--wav", str(wav), cwd=tmp_path
    )
    assert one_error_line(result) == (
        f"error [pipeline.tools.label_wav]: {folder / 'frontend.json'}: the file must be a JSON "
        "object, got list"
    )


def test_a_tampered_streaming_entry_is_named_by_stream_eval(export, tmp_path):
    from pipeline.tools.stream_eval import main

    folder = tmp_path / "export"
    shutil.copytree(export, folder)
    (folder / "model_streaming.tflite").write_bytes(b"never read: frontend.json is read first")
    _tamper_json(folder / "frontend.json", lambda d: {**d, "streaming": "frame"})
    wav = tmp_path / "stream.wav"
    wav.write_bytes(encode_pcm16(np.concatenate([_pcm("yes", 1), _pcm("no", 2)]), 16000))
    truth = tmp_path / "truth.txt"
    truth.write_text("yes, 500.0\n")
    argv = ["--model", str(folder), "--wav", str(wav), "--ground-truth", str(truth)]
    with pytest.raises(StageError) as caught:
        main([*argv, "--streaming"])
    assert str(caught.value) == (
        f"{folder / 'frontend.json'}: streaming must be a JSON object, got str"
    )


# ------------------------------------------------------------- names in a store's index.csv
def _rename_in_index(store: Path, old: str, new: str) -> None:
    index = store / "index.csv"
    lines = index.read_text().splitlines(keepends=True)
    index.write_text(
        "".join(new + line[len(old) :] if line.startswith(old + ",") else line for line in lines)
    )


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.mark.parametrize("hostile", ["../../../escaped.wav", "ABSOLUTE"])
def test_extract_clip_refuses_store_names_that_leave_the_folder(tmp_path, hostile):
    from pipeline.tools.extract_clip import main

    store = make_store(tmp_path / "store", words=("yes", "no"), speakers=2)
    out_dir = tmp_path / "w" / "x" / "y" / "out"  # ../../../ from here is still in tmp_path
    if hostile == "ABSOLUTE":
        hostile = str(tmp_path / "w" / "absolute.wav")
    first = sorted(p.relative_to(store).as_posix() for p in (store / "yes").glob("*.wav"))[0]
    _rename_in_index(store, first, hostile)
    before = _files(tmp_path)
    with pytest.raises(StageError) as caught:
        main(["--store", str(store), "*", "--out-dir", str(out_dir)])
    message = str(caught.value)
    assert message.startswith(f"{store / 'index.csv'}:") and repr(hostile) in message, message
    assert "leaves its folder" in message or "is an absolute path" in message
    assert _files(tmp_path) == before  # nothing written, inside the folder or out


def test_extract_clip_names_a_hostile_store_in_one_line(tmp_path):
    store = make_store(tmp_path / "store", words=("yes",), speakers=1)
    first = next(p.relative_to(store).as_posix() for p in (store / "yes").glob("*.wav"))
    _rename_in_index(store, first, "yes/../../up.wav")
    lines = (store / "index.csv").read_text().splitlines()
    line = 1 + next(n for n, row in enumerate(lines) if row.startswith("yes/../../up.wav,"))
    result = run_tool(
        "pipeline.tools.extract_clip",
        "--store",
        str(store),
        "yes/*",
        "--out-dir",
        "out",
        cwd=tmp_path,
    )
    assert one_error_line(result) == (
        f"error [pipeline.tools.extract_clip]: {store / 'index.csv'}:{line}: the clip name "
        "'yes/../../up.wav' leaves its folder (a '..' part)"
    )
    assert not (tmp_path / "out").exists() and not (tmp_path / "up.wav").exists()


# ------------------------------------------------------ special files in evaluate-dir's folder
def test_evaluate_dir_skips_a_fifo_and_a_link_to_dev_zero(export, tmp_path):
    data = make_dataset(tmp_path / "data", words=("yes", "no"), speakers=2, noise_seconds=1.0)
    # The FIFO sorts first: a regression hangs there (and times out) before reading /dev/zero.
    os.mkfifo(data / "no" / "fifo_nohash_0.wav")
    os.symlink("/dev/zero", data / "no" / "zero_nohash_0.wav")
    out = tmp_path / "result.json"
    model = export / "model_float.tflite"
    args = ["--model", str(model), "--data-dir", str(data), "--json", str(out)]
    # A timeout, so that a regression (a read that never ends) fails instead of hanging.
    result = run_tool("pipeline.tools.evaluate_dir", *args, cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr
    skipped = json.loads(out.read_text())["skipped"]
    assert skipped == [
        {"path": str(data / "no" / name), "problem": "not a regular file"}
        for name in ("fifo_nohash_0.wav", "zero_nohash_0.wav")
    ]
    assert json.loads(out.read_text())["clips"] == 4
    assert "skipped 2 bad file(s):" in result.stdout
