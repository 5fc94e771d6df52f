"""Audio front ends (one module each, registered in registry.py), the window they compute with
and their ``features`` config."""

from pipeline.frontends.compute import compute_features, features_numpy
from pipeline.frontends.config import FeatureConfig
from pipeline.frontends.registry import FRONTENDS, get_frontend
from pipeline.frontends.window import FeatureWindow

__all__ = [
    "FRONTENDS",
    "FeatureConfig",
    "FeatureWindow",
    "compute_features",
    "features_numpy",
    "get_frontend",
]
