"""Quiet output: TensorFlow's native log lines leave the terminal (models/logs/tf.log gets them),
everything else passes at once; the confusion matrix is logged as a labelled table."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import threading
import time

import numpy as np

from pipeline.core.tf import relay
from pipeline.evaluation.metrics import confusion_table
from tests.conftest import REPO_ROOT

# What TensorFlow 2.21 prints on its own when nothing hides it (one pattern per kind of line).
NOISE = re.compile(
    r"absl::InitializeLog|port\.cc:\d+\]|oneDNN custom operations|XNNPACK|fully_quantize|"
    r"^(INFO|WARNING) (absl|tensorflow):",
    re.MULTILINE,
)
ONEDNN = (
    "I0000 00:00:1796409317.886272   17369 port.cc:153] oneDNN custom operations are on. "
    "You may see slightly different numerical results.\n"
)


def relayed(*writes: bytes, log_path: str = "") -> bytes:
    source, into = os.pipe()
    out, sink = os.pipe()
    thread = threading.Thread(target=relay, args=(source, sink, log_path))
    thread.start()
    for data in writes:  # one read each, as native code's pieces of a line arrive
        os.write(into, data)
        time.sleep(0.05)
    os.close(into)
    thread.join(timeout=10)
    os.close(sink)
    result = b""
    while chunk := os.read(out, 65536):
        result += chunk
    os.close(source), os.close(out)
    return result


def test_relay_drops_tensorflow_lines_and_passes_the_rest(tmp_path):
    log = tmp_path / "logs" / "tf.log"
    out = relayed(
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        ONEDNN.encode(),
        b"INFO pipeline.train: step 20\n",
        b"E0000 00:00:1796409317.886272   17369 foo.cc:1] a real error\n",
        b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
        b"fully_quan",
        b"tize: 0, inference_type: 6, input_inference_type: INT8\n",
        b"\rtrain: 50%|#####     | 5/10",
        b"\rtrain: 100%|##########| 10/10\n",
        log_path=str(log),
    )
    assert out == (
        b"INFO pipeline.train: step 20\n"
        b"E0000 00:00:1796409317.886272   17369 foo.cc:1] a real error\n"
        b"\rtrain: 50%|#####     | 5/10\rtrain: 100%|##########| 10/10\n"
    )
    logged = log.read_text()
    assert "oneDNN" in logged and "XNNPACK" in logged and "InitializeLog" in logged


def test_a_progress_bar_is_passed_on_before_its_line_ends():
    source, into = os.pipe()
    out, sink = os.pipe()
    thread = threading.Thread(target=relay, args=(source, sink, ""))
    thread.start()
    os.write(into, b"\rfeaturize:  10%|#")
    received = b""
    while received != b"\rfeaturize:  10%|#":  # arrives while the line is still open
        ready, _, _ = select.select([out], [], [], 10)
        assert ready, f"only {received!r} passed on"
        received += os.read(out, 100)
    os.close(into)
    thread.join(timeout=10)
    os.close(sink), os.close(source), os.close(out)


def test_a_tensorflow_tool_prints_no_native_chatter(shared_pretrained, shared_mini, tmp_path):
    (tmp_path / "models").mkdir()
    wav = sorted((shared_mini / "left").glob("*.wav"))[0]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.tools.label_wav",
            "--graph",
            str(shared_pretrained / "conv_actions_frozen.pb"),
            "--labels",
            str(shared_pretrained / "conv_actions_labels.txt"),
            "--wav",
            str(wav),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("left (score = ")
    assert not NOISE.search(result.stderr), result.stderr
    assert result.stderr == ""
    # the lines went to the log, not away unseen
    assert "oneDNN" in (tmp_path / "models" / "logs" / "tf.log").read_text()


def test_the_confusion_matrix_is_a_labelled_table_rows_actual():
    matrix = np.array([[5, 0, 1], [0, 7, 0], [2, 0, 3]])
    text = confusion_table(matrix, ["_silence_", "_unknown_", "yes"])
    lines = text.splitlines()
    assert lines[0].split() == ["actual", "\\", "predicted", "silence", "unknown", "yes"]
    assert lines[1].split() == ["silence", "5", ".", "1"]
    assert lines[3].split() == ["yes", "2", ".", "3"]
    assert "[[" not in text
