"""Running models: every format behind one interface (``load_model``)."""

from pipeline.inference.loader import load_model

__all__ = ["load_model"]
