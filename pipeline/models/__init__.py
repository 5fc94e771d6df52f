"""The model zoo: one module per architecture, registered in registry.py."""

from pipeline.models.registry import (
    MODELS,
    ORIGINAL_PARAMETER_COUNTS,
    build_model,
    get_model,
)

__all__ = ["MODELS", "ORIGINAL_PARAMETER_COUNTS", "build_model", "get_model"]
