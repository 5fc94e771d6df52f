"""Acquisition (the download stage): data/raw from a source, every clip checked, then packed."""
