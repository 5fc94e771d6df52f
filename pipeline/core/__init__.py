"""The layer every other layer may import: errors, files, WAV audio, labels, params, paths."""
