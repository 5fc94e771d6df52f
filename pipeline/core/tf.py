"""TensorFlow imported one way everywhere: quiet start-up, and one TFLite interpreter factory.

TensorFlow is imported inside functions, not at module level, so that stages and tools that do
not need it (split, download, the plots) start in a fraction of a second.
"""
from __future__ import annotations

import os
import warnings


def quiet_tensorflow() -> None:
    """Hide TensorFlow's start-up chatter; keep warnings and errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def tensorflow():
    """The ``tensorflow`` module, imported quietly."""
    quiet_tensorflow()
    import tensorflow as tf

    return tf


def tflite_interpreter(**kwargs):
    """``tf.lite.Interpreter(**kwargs)`` without its deprecation warning (ai_edge_litert is not a
    dependency); the caller allocates tensors."""
    tf = tensorflow()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(**kwargs)
