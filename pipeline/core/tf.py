"""TensorFlow imported one way everywhere: quiet start-up, and one TFLite interpreter factory.

The factory checks a ``.tflite`` file before TFLite sees it: the interpreter reads a damaged
flatbuffer unchecked, and a truncated model crashes the process (segmentation fault) instead of
raising an error.

TensorFlow is imported inside functions, not at module level, so that stages and tools that do
not need it (split, download, the plots) start in a fraction of a second.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from pipeline.core.errors import StageError, first_line


def quiet_tensorflow() -> None:
    """Hide TensorFlow's start-up chatter; keep warnings and errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
