"""TensorFlow imported one way everywhere: quiet start-up, and one TFLite interpreter factory.

TensorFlow 2.21's C++ code logs through absl before anything can configure it (the oneDNN notice,
``WARNING: All log messages before absl::InitializeLog()``, the TFLite converter's and
interpreter's INFO lines): ``TF_CPP_MIN_LOG_LEVEL`` no longer reaches them. A stage or tool
therefore sends its stderr through :func:`relay`, a small child process that moves those lines
to ``models/logs/tf.log`` (when the process runs in a project checkout; else drops them) and
passes everything else on at once, progress bars included.

The factory checks a ``.tflite`` file before TFLite sees it: the interpreter reads a damaged
flatbuffer unchecked, and a truncated model crashes the process (segmentation fault) instead of
raising an error.

TensorFlow is imported inside functions, not at module level, so that stages and tools that do
not need it (split, download, the plots) start in a fraction of a second.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

from pipeline.core.errors import StageError, first_line

# Lines of TensorFlow's native logging that say nothing to act on: absl's INFO and WARNING lines
# (``I0000 00:00:1796409317.886272   17369 port.cc:153] oneDNN ...``), absl's note that it is
# not initialised, TFLite's INFO lines and the quantizer's settings. Errors (E, F) pass.
NOISE = re.compile(
    rb"^(?:[IW]\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|INFO: (?:Created TensorFlow Lite|Initialized TensorFlow Lite)"
    rb"|fully_quantize: \d+, inference_type: )"
)
# How noise lines start, to tell whether a line not yet ended may become one: a partial line
# that cannot is passed on at once (a progress bar redraws its line without ending it), one that
# may waits for its end (native code writes a line in pieces).
_NOISE_HEADS = (
    b"WARNING: All log messages before absl",
    b"INFO: Created TensorFlow Lite",
    b"INFO: Initialized TensorFlow Lite",
    b"fully_quantize: ",
)
_ABSL_HEAD = re.compile(rb"[IW]\d{0,4}$|[IW]\d{4} ")


def _may_become_noise(partial: bytes) -> bool:
    return bool(_ABSL_HEAD.match(partial)) or any(
        head.startswith(partial[: len(head)]) for head in _NOISE_HEADS
    )


NATIVE_LOG = Path("models/logs/tf.log")


def quiet_tensorflow() -> None:
    """Hide TensorFlow's Python-side start-up chatter; keep warnings and errors.

    (The native side: :func:`filter_native_stderr`.)
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # absl: the converter's deprecation notes about its own internals; tensorflow: "Assets
    # written to" and the like
    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.WARNING)


def relay(source: int, sink: int, log_path: str = "") -> None:
    """Copy ``source`` to ``sink`` until end of file, the :data:`NOISE` lines to ``log_path``
    instead (appended; none when empty): the child process of :func:`filter_native_stderr`."""
    pending, log = b"", None
    while True:
        chunk = os.read(source, 65536)
        pending += chunk
        while pending:
            ends = [i for i in (pending.find(b"\n"), pending.find(b"\r")) if i >= 0]
            if ends:
                line, pending = pending[: min(ends) + 1], pending[min(ends) + 1 :]
            elif chunk and _may_become_noise(pending):
                break  # maybe the start of a noise line: wait for its end
            else:
                line, pending = pending, b""
            if NOISE.match(line):
                if log_path and log is None:
                    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
                    log = open(log_path, "ab")  # noqa: SIM115 (open until the end)
                if log is not None:
                    log.write(line)
                    log.flush()
            else:
                os.write(sink, line)
        if not chunk:
            return


def filter_native_stderr() -> None:
    """Send this process's stderr (file descriptor 2, so native code's too) through a
    :func:`relay` child; at exit, wait for it to pass on the last lines. Once per process; not
    when stderr is no file descriptor, nor with ``KWS_RAW_STDERR`` set (to see everything)."""
    if os.environ.get("KWS_RAW_STDERR") or getattr(filter_native_stderr, "started", False):
        return
    try:
        sys.stderr.flush()
        original = os.dup(2)
    except (OSError, ValueError):
        return
    read_end, write_end = os.pipe()
    log_path = str(NATIVE_LOG.resolve()) if NATIVE_LOG.parent.parent.is_dir() else ""
    code = f"from pipeline.core.tf import relay; relay(0, 1, {log_path!r})"
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=read_end,
            stdout=original,
            stderr=original,
            start_new_session=True,  # Ctrl-C stops the stage; the relay drains its last lines
        )
    except OSError:
        os.close(read_end), os.close(write_end), os.close(original)
        return
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    filter_native_stderr.started = True

    def finish() -> None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(original, 2)  # the pipe's last write end in this process closes
        # (a subprocess that outlives this process still holds the pipe: do not wait for it)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)

    atexit.register(finish)


def tensorflow():
    """The ``tensorflow`` module, imported quietly."""
    quiet_tensorflow()
    import tensorflow as tf

    return tf


def check_tflite(data: bytes, name) -> None:
    """A StageError naming ``name`` unless ``data`` is a whole, consistent TFLite flatbuffer.

    Every table is read through the schema's Python reader, which bounds-checks each offset (a
    truncated or damaged file fails here), and every index that the C++ interpreter would follow
    unchecked (tensor buffers, operator codes, operator tensors) is checked to exist.
    """
    if not data:
        raise StageError(f"{name}: empty file, not a TFLite model")
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise StageError(
            f"{name}: not a TFLite model (no TFL3 identifier; damaged, or another format)"
        )
    tensorflow()
    from tensorflow.lite.python import schema_py_generated as schema

    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception:  # struct.error, IndexError, ... from reading past the end or garbage
        raise StageError(f"{name}: damaged or truncated TFLite model ({len(data)} bytes)") from None
    problem = _tflite_inconsistency(model, len(data))
    if problem:
        raise StageError(f"{name}: damaged TFLite model ({problem})")


def _tflite_inconsistency(model, size: int) -> str:
    buffers, codes = model.buffers or [], model.operatorCodes or []
    if not model.subgraphs:
        return "no subgraph"
    for buffer in buffers:  # large models keep buffer data after the flatbuffer
        if buffer.offset > 1 and buffer.offset + buffer.size > size:
            return f"a buffer ends at byte {buffer.offset + buffer.size}, past the end"
    for graph in model.subgraphs:
        tensors = graph.tensors or []
        if any(not 0 <= t.buffer < max(len(buffers), 1) for t in tensors):
            return "a tensor names a buffer that does not exist"
        for op in graph.operators or []:
            if not 0 <= op.opcodeIndex < len(codes):
                return "an operator names an operator code that does not exist"
            used = [
                *(op.inputs if op.inputs is not None else []),
                *(op.outputs if op.outputs is not None else []),
            ]
            if any(not -1 <= int(i) < len(tensors) for i in used):
                return "an operator names a tensor that does not exist"
        ends = [
            *(graph.inputs if graph.inputs is not None else []),
            *(graph.outputs if graph.outputs is not None else []),
        ]
        if any(not 0 <= int(i) < len(tensors) for i in ends):
            return "a model input or output names a tensor that does not exist"
    return ""


def tflite_interpreter(model_path=None, model_content: bytes | None = None, **kwargs):
    """``tf.lite.Interpreter`` for a file or bytes, checked first (:func:`check_tflite`), without
    its deprecation warning (ai_edge_litert is not a dependency); the caller allocates tensors.

    A model that cannot be opened is a StageError naming the file.
    """
    name = model_path if model_path is not None else "the converted model"
    if model_path is not None:
        try:
            model_content = Path(model_path).read_bytes()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StageError(f"{model_path}: cannot read ({exc.strerror or exc})") from None
    check_tflite(model_content, name)
    tf = tensorflow()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return tf.lite.Interpreter(model_content=model_content, **kwargs)
        except Exception as exc:  # ValueError, RuntimeError; messages may not even decode
            raise StageError(f"{name}: TFLite cannot open the model ({first_line(exc)})") from None
