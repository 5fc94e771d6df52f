"""Keyword spotting as a reproducible DVC pipeline (see docs/architecture.md for the layers)."""

from pipeline.core.tf import quiet_tensorflow

# TensorFlow's C++ start-up chatter, hidden before any stage or tool imports it (warnings and
# errors still show; set TF_CPP_MIN_LOG_LEVEL yourself to see everything).
quiet_tensorflow()
