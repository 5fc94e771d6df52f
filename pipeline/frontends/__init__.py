"""Audio front ends (one module each, registered in registry.py) and their ``features`` config."""

from pipeline.frontends.compute import compute_features, features_numpy
from pipeline.frontends.config import FeatureConfig
from pipeline.frontends.registry import FRONTENDS, get_frontend

__all__ = ["FRONTENDS", "FeatureConfig", "compute_features", "features_numpy", "get_frontend"]
