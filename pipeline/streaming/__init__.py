"""Streaming: the long test recording, window scoring, the original decoder, and scoring."""
