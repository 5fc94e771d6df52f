"""Command-line tools (python -m pipeline.tools.<tool>, or kws <tool>)."""
