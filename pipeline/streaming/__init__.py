"""Streaming: window scoring of a long recording, the original decoder, and scoring."""
