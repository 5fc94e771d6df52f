"""Stage `featurize`: the features of every manifest row, with precomputed augmentation.

Usage: ``python -m pipeline.stages.featurize [--params params.yaml] [--split-dir data/split]
[--raw data/raw] [--out data/features]``.

With ``stream_windows.streams`` > 0 it also adds to the training split the windows of that many
recordings synthesized from the training split's clips (pipeline/data/stream_windows.py).
"""

from __future__ import annotations

import argparse

from pipeline.cli import parse_args, run_stage
from pipeline.core import paths
from pipeline.core.params import load_params
from pipeline.data.augment import AugmentConfig
from pipeline.data.featurize import featurize
from pipeline.data.stream_synthesis import StreamConfig
from pipeline.data.stream_windows import StreamWindowsConfig
from pipeline.frontends import FeatureConfig

DESCRIPTION = "Stage featurize: the features of every manifest row, with augmentation."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=str(paths.PARAMS), help="the parameters file")
    parser.add_argument(
        "--split-dir", default=str(paths.SPLIT_DIR), help="the split stage's manifests"
    )
    parser.add_argument(
        "--raw", default=str(paths.RAW_DIR), help="the download stage's clip stores"
    )
    parser.add_argument("--out", default=str(paths.FEATURES_DIR), help="where the features go")


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    features, augment, windows, stream = load_params(
        args.params, FeatureConfig, AugmentConfig, StreamWindowsConfig, StreamConfig
    )
    meta = featurize(
        args.split_dir,
        args.raw,
        args.out,
        features,
        augment,
        stream_windows=windows,
        stream=stream,
    )
    counts = ", ".join(f"{split} {c['examples']}" for split, c in meta["counts"].items())
    print(f"featurize: {counts} examples, feature shape {meta['feature_shape']} -> {args.out}")
    return 0


if __name__ == "__main__":
    run_stage(main)
